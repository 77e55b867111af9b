package analysis

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-dev/sluice/providers/catalogtest"
	"github.com/sluice-dev/sluice/providers/metrics"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// TestJudgeEdges pins the edges of the verdicts that mutation testing found unpinned
// (docs/testing.md): exactly maxDelta worse still passes and the reasons say which side of it
// the canary is; exactly minRequests is enough, one is a minimum too, "no series" is zero
// requests whatever count came with it, and an error or abort reading is never softened into
// inconclusive by a low request count.
func TestJudgeEdges(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	sr := spec.Metric{Name: "sr", ThresholdRange: &spec.Range{Min: f(90)}, CompareTo: spec.CompareStable, MaxDelta: f(2)}
	v := 99.0
	pass := spec.CheckResult{Name: "sr", Verdict: spec.VerdictPass, Value: &v}
	errored := spec.CheckResult{Name: "sr", Verdict: spec.VerdictError, Reason: "backend unreachable"}
	aborted := spec.CheckResult{Name: "sr", Verdict: spec.VerdictAbort, Value: &v, Reason: "outside abort range"}
	tests := map[string]struct {
		got  spec.CheckResult
		want spec.CheckResult
	}{
		"exactly maxDelta worse passes": {
			got:  JudgeCompare(sr, 97, 99, nil, nil),
			want: spec.CheckResult{Name: "sr", Verdict: spec.VerdictPass, Value: f(97), Reason: "canary 97 vs stable 99, within maxDelta 2"},
		},
		"more than maxDelta worse fails and says by how much": {
			got:  JudgeCompare(sr, 96, 99, nil, nil),
			want: spec.CheckResult{Name: "sr", Verdict: spec.VerdictFail, Value: f(96), Reason: "canary 96 vs stable 99: worse by 3, more than maxDelta 2"},
		},
		"not asked: the count is not read":   {got: JudgeRequests(pass, 0, 0, fmt.Errorf("boom")), want: pass},
		"exactly minRequests is enough":      {got: JudgeRequests(pass, 10, 10, nil), want: pass},
		"minRequests 1 with no request":      {got: JudgeRequests(pass, 1, 0, nil), want: tooFew(pass, 0, 1)},
		"no series is zero requests":         {got: JudgeRequests(pass, 10, 25, fmt.Errorf("empty: %w", metrics.ErrNoData)), want: tooFew(pass, 0, 10)},
		"an error reading stays an error":    {got: JudgeRequests(errored, 10, 3, nil), want: errored},
		"an abort reading stays an abort":    {got: JudgeRequests(aborted, 10, 3, nil), want: aborted},
		"an abort reading with no count yet": {got: JudgeRequests(aborted, 10, 0, fmt.Errorf("boom")), want: aborted},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func tooFew(r spec.CheckResult, served, min int) spec.CheckResult {
	return spec.CheckResult{Name: r.Name, Verdict: spec.VerdictInconclusive, Value: r.Value,
		Reason: fmt.Sprintf("canary served %d requests in the window, fewer than minRequests %d", served, min)}
}

func TestRequestCountQueryUnknownRouter(t *testing.T) {
	_, err := RequestCountQuery(catalogtest.Router("haproxy"), spec.Metric{Name: "sr"}, 0, Vars{})
	if err == nil || !strings.Contains(err.Error(), `minRequests: no request count query for router "haproxy"`) {
		t.Errorf("RequestCountQuery for an unknown router: %v, want the minRequests error", err)
	}
}
