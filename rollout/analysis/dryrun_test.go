package analysis

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/providers/metrics"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// TestDryRunNeverBlocks: every reading of a dry-run check comes back marked DryRun, whatever
// went wrong and on which side, so the planner records it and moves on; a compareTo check whose
// stable side has no data (or fails) must not hold or fail the release.
func TestDryRunNeverBlocks(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	m := spec.Metric{Name: "p99", ThresholdRange: &spec.Range{Max: f(500)}, AbortRange: &spec.Range{Max: f(900)},
		CompareTo: spec.CompareStable, MaxDelta: f(50), DryRun: true}
	noData := fmt.Errorf("empty: %w", metrics.ErrNoData)
	tests := map[string]struct {
		r    spec.CheckResult
		want spec.Verdict
		// reason is how the reason starts: a stable-side problem says it is one.
		reason string
	}{
		"stable without data":  {r: JudgeCompare(m, 100, 0, nil, noData), want: spec.VerdictInconclusive, reason: "stable: empty"},
		"stable query error":   {r: JudgeCompare(m, 100, 0, nil, fmt.Errorf("boom")), want: spec.VerdictError, reason: "stable: boom"},
		"stable NaN":           {r: JudgeCompare(m, 100, nan(), nil, nil), want: spec.VerdictInconclusive, reason: "stable: query returned NaN"},
		"canary without data":  {r: JudgeCompare(m, 0, 100, noData, nil), want: spec.VerdictInconclusive},
		"worse than stable":    {r: JudgeCompare(m, 300, 100, nil, nil), want: spec.VerdictFail},
		"abort range breached": {r: JudgeCompare(m, 950, 100, nil, nil), want: spec.VerdictAbort},
		"too few requests":     {r: JudgeRequests(JudgeCompare(m, 100, 90, nil, nil), 10, 2, nil), want: spec.VerdictInconclusive},
		"request count fails":  {r: JudgeRequests(JudgeCompare(m, 100, 90, nil, nil), 10, 0, fmt.Errorf("boom")), want: spec.VerdictError},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if tc.r.Verdict != tc.want || !tc.r.DryRun {
				t.Errorf("got %+v, want verdict %s marked dry-run", tc.r, tc.want)
			}
			if !strings.HasPrefix(tc.r.Reason, tc.reason) {
				t.Errorf("reason %q, want it to start with %q", tc.r.Reason, tc.reason)
			}
		})
	}
}

func nan() float64 { return math.NaN() }
