package analysis_test

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-dev/sluice/providers/metrics"
	"github.com/sluice-dev/sluice/rollout/analysis"
	"github.com/sluice-dev/sluice/rollout/spec"
)

func ptr[T any](v T) *T { return &v }

func TestJudge(t *testing.T) {
	successRate := spec.Metric{Name: spec.CheckSuccessRate, ThresholdRange: &spec.Range{Min: ptr(99.0)}, AbortRange: &spec.Range{Min: ptr(80.0)}}
	duration := spec.Metric{Name: spec.CheckDuration, ThresholdRange: &spec.Range{Max: ptr(500.0)}}
	abortOnly := spec.Metric{Name: "panics", Query: "x", AbortRange: &spec.Range{Max: ptr(0.0)}}
	dry := spec.Metric{Name: "new-check", Query: "x", ThresholdRange: &spec.Range{Max: ptr(1.0)}, DryRun: true}

	tests := map[string]struct {
		m     spec.Metric
		value float64
		err   error
		want  spec.CheckResult
	}{
		"pass above min": {
			m: successRate, value: 99.5,
			want: spec.CheckResult{Name: spec.CheckSuccessRate, Value: ptr(99.5), Verdict: spec.VerdictPass, Reason: "99.5 within [99, +inf]"},
		},
		"pass on the bound": {
			m: duration, value: 500,
			want: spec.CheckResult{Name: spec.CheckDuration, Value: ptr(500.0), Verdict: spec.VerdictPass, Reason: "500 within [-inf, 500]"},
		},
		"fail below min, inside the abort range": {
			m: successRate, value: 95.123456789,
			want: spec.CheckResult{Name: spec.CheckSuccessRate, Value: ptr(95.123456789), Verdict: spec.VerdictFail, Reason: "95.1235 outside [99, +inf]"},
		},
		"fail above max": {
			m: duration, value: 750,
			want: spec.CheckResult{Name: spec.CheckDuration, Value: ptr(750.0), Verdict: spec.VerdictFail, Reason: "750 outside [-inf, 500]"},
		},
		"abort outside the abort range wins over fail": {
			m: successRate, value: 42,
			want: spec.CheckResult{Name: spec.CheckSuccessRate, Value: ptr(42.0), Verdict: spec.VerdictAbort, Reason: "42 outside abort range [80, +inf]"},
		},
		"abort range only: inside passes": {
			m: abortOnly, value: 0,
			want: spec.CheckResult{Name: "panics", Value: ptr(0.0), Verdict: spec.VerdictPass, Reason: "0 within any"},
		},
		"abort range only: outside aborts": {
			m: abortOnly, value: 1,
			want: spec.CheckResult{Name: "panics", Value: ptr(1.0), Verdict: spec.VerdictAbort, Reason: "1 outside abort range [-inf, 0]"},
		},
		"infinity fails": {
			m: duration, value: math.Inf(1),
			want: spec.CheckResult{Name: spec.CheckDuration, Value: ptr(math.Inf(1)), Verdict: spec.VerdictFail, Reason: "+Inf outside [-inf, 500]"},
		},
		"NaN is inconclusive": {
			m: successRate, value: math.NaN(),
			want: spec.CheckResult{Name: spec.CheckSuccessRate, Verdict: spec.VerdictInconclusive, Reason: "query returned NaN (no requests in the window?)"},
		},
		"no data is inconclusive": {
			m: successRate, err: metrics.ErrNoData,
			want: spec.CheckResult{Name: spec.CheckSuccessRate, Verdict: spec.VerdictInconclusive, Reason: "no data"},
		},
		"wrapped no data is inconclusive and keeps the provider's words": {
			m: successRate, err: fmt.Errorf("prometheus: query %q matched no series: %w", "sum(rate(x))", metrics.ErrNoData),
			want: spec.CheckResult{Name: spec.CheckSuccessRate, Verdict: spec.VerdictInconclusive,
				Reason: `prometheus: query "sum(rate(x))" matched no series: no data`},
		},
		"no data with a NaN value is still inconclusive": {
			m: duration, value: math.NaN(), err: metrics.ErrNoData,
			want: spec.CheckResult{Name: spec.CheckDuration, Verdict: spec.VerdictInconclusive, Reason: "no data"},
		},
		"unreachable backend is an error": {
			m: duration, value: 1, err: fmt.Errorf("prometheus: %w: dial tcp: connection refused", metrics.ErrUnreachable),
			want: spec.CheckResult{Name: spec.CheckDuration, Verdict: spec.VerdictError, Reason: "prometheus: backend unreachable: dial tcp: connection refused"},
		},
		"any other error is an error": {
			m: duration, err: errors.New("bad query"),
			want: spec.CheckResult{Name: spec.CheckDuration, Verdict: spec.VerdictError, Reason: "bad query"},
		},
		"multiple series is an error": {
			m: duration, err: fmt.Errorf("prometheus: 3 series: %w", metrics.ErrMultipleSeries),
			want: spec.CheckResult{Name: spec.CheckDuration, Verdict: spec.VerdictError, Reason: "prometheus: 3 series: more than one series"},
		},
		"dry run carried on a failure": {
			m: dry, value: 2,
			want: spec.CheckResult{Name: "new-check", Value: ptr(2.0), Verdict: spec.VerdictFail, Reason: "2 outside [-inf, 1]", DryRun: true},
		},
		"dry run carried on no data": {
			m: dry, err: metrics.ErrNoData,
			want: spec.CheckResult{Name: "new-check", Verdict: spec.VerdictInconclusive, Reason: "no data", DryRun: true},
		},
		"dry run carried on an error": {
			m: dry, err: errors.New("timeout"),
			want: spec.CheckResult{Name: "new-check", Verdict: spec.VerdictError, Reason: "timeout", DryRun: true},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := analysis.Judge(tc.m, tc.value, tc.err)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Judge() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
