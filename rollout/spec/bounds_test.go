package spec_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// TestParseBounds pins the edges of the configuration that mutation testing found unpinned
// (docs/testing.md): the port range and port-name length, and that an error names the
// annotation the value came from when the analysis block and a flat annotation both set it.
func TestParseBounds(t *testing.T) {
	abMatch := "match:\n- headers:\n    x-canary: {exact: insider}\n"
	tests := map[string]struct {
		ann  map[string]string
		want string // FormatErrors of the result; "" when accepted
	}{
		"port 1":                     {ann: map[string]string{spec.AnnPort: "1"}},
		"port 0":                     {ann: map[string]string{spec.AnnPort: "0"}, want: `sluice.dev/port: must be a port number 1..65535 or a port name, got "0"`},
		"port 65535":                 {ann: map[string]string{spec.AnnPort: "65535"}},
		"port 65536":                 {ann: map[string]string{spec.AnnPort: "65536"}, want: `sluice.dev/port: must be a port number 1..65535 or a port name, got "65536"`},
		"port name of 15 characters": {ann: map[string]string{spec.AnnPort: "http-web-public"}},
		"port name of 16 characters": {ann: map[string]string{spec.AnnPort: "http-web-publics"}, want: `sluice.dev/port: must be a port number 1..65535 or a port name, got "http-web-publics"`},
		"flat step weight over the block's max weight": {
			ann:  map[string]string{spec.AnnAnalysis: "stepWeight: 60\nmaxWeight: 50", spec.AnnStepWeight: "70"},
			want: `sluice.dev/step-weight: must not exceed sluice.dev/analysis maxWeight (50), got "70"`,
		},
		"block step weight over the flat max weight": {
			ann:  map[string]string{spec.AnnAnalysis: "stepWeight: 60", spec.AnnMaxWeight: "50"},
			want: `sluice.dev/analysis stepWeight: must not exceed sluice.dev/max-weight (50), got "60"`,
		},
		"flat max weight wins over the block's, and the error names it": {
			ann:  map[string]string{spec.AnnAnalysis: "stepWeight: 60\nmaxWeight: 80", spec.AnnMaxWeight: "50"},
			want: `sluice.dev/analysis stepWeight: must not exceed sluice.dev/max-weight (50), got "60"`,
		},
		"block match accepted for strategy ab": {
			ann: map[string]string{spec.AnnAnalysis: abMatch, spec.AnnStrategy: "ab", spec.AnnRouter: "istio", spec.AnnService: "web", spec.AnnRoute: "web"},
		},
		"block match refused for strategy canary, naming the block": {
			ann:  map[string]string{spec.AnnAnalysis: abMatch, spec.AnnStrategy: "canary"},
			want: `sluice.dev/analysis match: matches apply to strategy ab only (strategy is canary)`,
		},
		"block check without bounds, naming the block": {
			ann:  map[string]string{spec.AnnAnalysis: "metrics:\n- name: x\n  query: up\n  thresholdRange: {}\n"},
			want: `sluice.dev/analysis metrics[x].thresholdRange: required: give min and/or max`,
		},
		"flat checks win over the block's, and errors name them": {
			ann: map[string]string{spec.AnnAnalysis: "metrics:\n- name: x\n  query: up\n  thresholdRange: {}\n",
				spec.AnnMetrics: "- name: z\n  query: up\n  thresholdRange: {}\n"},
			want: `sluice.dev/metrics[z].thresholdRange: required: give min and/or max`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, errs := parseWithin(t, tc.ann, spec.Defaults{})
			if diff := cmp.Diff(tc.want, spec.FormatErrors(errs)); diff != "" {
				t.Fatalf("Parse errors (-want +got):\n%s", diff)
			}
			if tc.want == "" && tc.ann[spec.AnnStrategy] == "ab" && len(cfg.Matches) != 1 {
				t.Errorf("matches %+v, want the block's one", cfg.Matches)
			}
		})
	}
}
