package spec_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// TestNewRelease: a release starts from nothing of the one it replaces but the failed revision,
// and forgets that too when it releases the failed revision itself (a retry, or a re-apply after
// the template went elsewhere).
func TestNewRelease(t *testing.T) {
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	plan := config(func(c *spec.Config) { c.Threshold = 2 })
	// prev is a release in the middle of things: every field a new release must not inherit.
	prev := func(failed string) spec.State {
		old := config()
		return spec.State{
			Phase: spec.PhasePromoting, Revision: "aaaaaaaaaa", Stable: "bbbbbbbbbb", FailedRevision: failed,
			Image: "app=old", Step: 3, Weight: 40, Iteration: 2, FailedChecks: 1, Inconclusive: 2,
			Checks:      []spec.CheckResult{{Name: spec.CheckSuccessRate, Verdict: spec.VerdictPass}},
			CanaryReady: true, AbortReason: "x", Revert: true, PausedFrom: spec.PhaseProgressing, StablePod: "pods",
			PromoteStep: spec.PromoteShift, Unanalysed: "dddddddddd", UnanalysedAt: at.Add(-time.Hour),
			StartedAt: at.Add(-time.Hour), StepAt: at.Add(-time.Minute), LastRunAt: at.Add(-time.Minute),
			PromotingAt: at.Add(-time.Minute), FinishedAt: at.Add(-time.Minute), Message: "promoting", Plan: &old,
		}
	}
	release := spec.Release{Revision: "cccccccccc", Stable: "bbbbbbbbbb", Image: "app=new", Plan: plan, At: at, Message: "held for canary analysis"}
	fresh := func(failed string) spec.State {
		return spec.State{
			Phase: spec.PhaseProgressing, Revision: "cccccccccc", Stable: "bbbbbbbbbb", FailedRevision: failed,
			Image: "app=new", StartedAt: at, Plan: &plan, Message: "held for canary analysis",
		}
	}
	tests := map[string]struct {
		prev spec.State
		want spec.State
	}{
		"first release": {prev: spec.State{Phase: spec.PhaseIdle}, want: fresh("")},
		"replacing a release: only a failed revision carries over": {prev: prev("eeeeeeeeee"), want: fresh("eeeeeeeeee")},
		"releasing the failed revision again: it is a new attempt": {prev: prev("cccccccccc"), want: fresh("")},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := spec.NewRelease(tc.prev, release)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("NewRelease() mismatch (-want +got):\n%s", diff)
			}
			if got.Plan == &release.Plan {
				t.Error("NewRelease() points at the caller's Config instead of its own copy")
			}
		})
	}
}
