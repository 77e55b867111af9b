package spec_test

import (
	"strings"
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
		// wantPrefix is how the errors start, when the rest is the YAML parser's words.
		wantPrefix string
		// steps are the accepted configuration's steps, when set.
		steps []int
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
		"a range of one value": {
			ann: map[string]string{spec.AnnMetrics: "- name: errors\n  query: up\n  thresholdRange: {min: 0, max: 0}\n"},
		},
		"flat threshold 1":                      {ann: map[string]string{spec.AnnThreshold: "1"}},
		"interval at the minimum":               {ann: map[string]string{spec.AnnInterval: "5s"}},
		"progress deadline at the minimum":      {ann: map[string]string{spec.AnnProgressDeadline: "10s"}},
		"block threshold 1 and 1000":            {ann: map[string]string{spec.AnnAnalysis: "threshold: 1\niterations: 10000"}},
		"block threshold 1001":                  {ann: map[string]string{spec.AnnAnalysis: "threshold: 1001"}, want: `sluice.dev/analysis threshold: must be 1..1000, got "1001"`},
		"block threshold 0":                     {ann: map[string]string{spec.AnnAnalysis: "threshold: 0"}, want: `sluice.dev/analysis threshold: must be 1..1000, got "0"`},
		"a single explicit weight of 100":       {ann: map[string]string{spec.AnnStepWeights: "100"}, steps: []int{100}},
		"a weight of 101":                       {ann: map[string]string{spec.AnnStepWeights: "50,101"}, want: `sluice.dev/step-weights: each weight must be 1..100, got 101, got "50,101"`},
		"a single block weight checked too":     {ann: map[string]string{spec.AnnAnalysis: "stepWeights: [150]"}, want: `sluice.dev/analysis stepWeights: each weight must be 1..100, got 150, got "[150]"`},
		"block weights checked like flat":       {ann: map[string]string{spec.AnnAnalysis: "stepWeights: [5, 5]"}, want: `sluice.dev/analysis stepWeights: weights must increase strictly, got "[5 5]"`},
		"match that is not YAML":                {ann: map[string]string{spec.AnnMatch: "[", spec.AnnStrategy: "ab"}, wantPrefix: `sluice.dev/match: not a valid YAML list of matches: `},
		"check interval that is not a duration": {ann: map[string]string{spec.AnnMetrics: "- name: errors\n  query: up\n  thresholdRange: {max: 1}\n  interval: 0s\n"}, want: `sluice.dev/metrics[errors].interval: must be a positive duration such as 1m, got "0s"`},
		"templateRef to a dotted name in another namespace": {
			ann: map[string]string{spec.AnnMetrics: "- name: errors\n  templateRef: {name: errors.v2, namespace: metrics-1}\n  thresholdRange: {max: 1}\n"},
		},
		"templateRef name that is no object name": {
			ann:  map[string]string{spec.AnnMetrics: "- name: errors\n  templateRef: {name: Errors_V2}\n  thresholdRange: {max: 1}\n"},
			want: `sluice.dev/metrics[errors].templateRef.name: must name a MetricTemplate, got "Errors_V2"`,
		},
		"templateRef name with an empty label": {
			ann:  map[string]string{spec.AnnMetrics: "- name: errors\n  templateRef: {name: errors..v2}\n  thresholdRange: {max: 1}\n"},
			want: `sluice.dev/metrics[errors].templateRef.name: must name a MetricTemplate, got "errors..v2"`,
		},
		"templateRef name ending in a dash": {
			ann:  map[string]string{spec.AnnMetrics: "- name: errors\n  templateRef: {name: errors.v2-}\n  thresholdRange: {max: 1}\n"},
			want: `sluice.dev/metrics[errors].templateRef.name: must name a MetricTemplate, got "errors.v2-"`,
		},
		"templateRef namespace that is no namespace name": {
			ann:  map[string]string{spec.AnnMetrics: "- name: errors\n  templateRef: {name: errors, namespace: Metrics}\n  thresholdRange: {max: 1}\n"},
			want: `sluice.dev/metrics[errors].templateRef.namespace: must be a namespace name, got "Metrics"`,
		},
		"service name of 63 characters": {ann: map[string]string{spec.AnnService: strings.Repeat("a", 63)}},
		"service name of 64 characters": {
			ann:  map[string]string{spec.AnnService: strings.Repeat("a", 64)},
			want: `sluice.dev/service: must be a DNS-1035 name (lower-case letters, digits, '-'), got "` + strings.Repeat("a", 64) + `"`,
		},
		"service name starting with a digit": {
			ann:  map[string]string{spec.AnnService: "1web"},
			want: `sluice.dev/service: must be a DNS-1035 name (lower-case letters, digits, '-'), got "1web"`,
		},
		"service name ending in a dash": {
			ann:  map[string]string{spec.AnnService: "web-"},
			want: `sluice.dev/service: must be a DNS-1035 name (lower-case letters, digits, '-'), got "web-"`,
		},
		"service name with digits and dashes": {ann: map[string]string{spec.AnnService: "web-2-z9"}},
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
			got := spec.FormatErrors(errs)
			if tc.wantPrefix != "" {
				if !strings.HasPrefix(got, tc.wantPrefix) {
					t.Fatalf("Parse errors %q, want them to start with %q", got, tc.wantPrefix)
				}
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("Parse errors (-want +got):\n%s", diff)
			}
			if tc.steps != nil {
				if diff := cmp.Diff(tc.steps, cfg.Steps); diff != "" {
					t.Errorf("steps (-want +got):\n%s", diff)
				}
			}
			if tc.want == "" && tc.ann[spec.AnnStrategy] == "ab" && len(cfg.Matches) != 1 {
				t.Errorf("matches %+v, want the block's one", cfg.Matches)
			}
		})
	}
}
