package spec_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// TestParseCompareAndMinRequests pins the bounds of maxDelta and minRequests: a negative
// maxDelta (the canary would have to be better than stable by that much) is refused, 0 is the
// strictest allowed; minRequests applies to both builtins, request-duration included.
func TestParseCompareAndMinRequests(t *testing.T) {
	tests := map[string]struct {
		metrics string
		want    string // FormatErrors of the result; "" when accepted
	}{
		"maxDelta 0 accepted": {
			metrics: "- name: request-success-rate\n  thresholdRange: {min: 99}\n  compareTo: stable\n  maxDelta: 0\n",
		},
		"negative maxDelta refused": {
			metrics: "- name: request-success-rate\n  thresholdRange: {min: 99}\n  compareTo: stable\n  maxDelta: -0.5\n",
			want:    `sluice.dev/metrics[request-success-rate].maxDelta: required: compareTo: stable needs a maxDelta of 0 or more`,
		},
		"minRequests on request-success-rate accepted": {
			metrics: "- name: request-success-rate\n  thresholdRange: {min: 99}\n  minRequests: 20\n",
		},
		"minRequests on request-duration accepted": {
			metrics: "- name: request-duration\n  thresholdRange: {max: 500}\n  minRequests: 20\n",
		},
		"minRequests 0 on a custom check accepted": {
			metrics: "- name: errors\n  query: up\n  thresholdRange: {max: 1}\n  minRequests: 0\n",
		},
		"minRequests 1 on a custom check refused": {
			metrics: "- name: errors\n  query: up\n  thresholdRange: {max: 1}\n  minRequests: 1\n",
			want:    `sluice.dev/metrics[errors].minRequests: applies to the builtin checks only, got "1"`,
		},
		"negative minRequests refused": {
			metrics: "- name: request-duration\n  thresholdRange: {max: 500}\n  minRequests: -1\n",
			want:    `sluice.dev/metrics[request-duration].minRequests: must be 0 or more, got "-1"`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, errs := parseWithin(t, map[string]string{spec.AnnMetrics: tc.metrics}, spec.Defaults{})
			if diff := cmp.Diff(tc.want, spec.FormatErrors(errs)); diff != "" {
				t.Fatalf("Parse errors (-want +got):\n%s", diff)
			}
			if tc.want == "" && len(cfg.Metrics) != 1 {
				t.Errorf("accepted config has checks %+v, want the one given", cfg.Metrics)
			}
		})
	}
}
