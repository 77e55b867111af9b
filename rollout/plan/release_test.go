package plan_test

import (
	"testing"
	"time"

	"github.com/sluice-dev/sluice/rollout/plan"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// TestRetryThatPassedIsAnalysed: a retry of a rolled-back revision starts a release
// (spec.NewRelease) that no longer records the revision as failed, so when its analysis passes
// and its rolling update then runs out of time, the revision left rolling on the pods is known
// to be analysed: it is not reported Unanalysed (it would be, were the retry still marked as the
// failed revision: Failed with FailedRevision == Revision reads "rolled back").
func TestRetryThatPassedIsAnalysed(t *testing.T) {
	now := stepAt.Add(time.Hour)
	rolledBack := atStep(1, func(s *spec.State) {
		s.Phase, s.FailedRevision, s.CanaryReady, s.Weight = spec.PhaseFailed, rev, false, 0
	})

	// The retry.
	d := plan.Plan(plan.Snapshot{Name: name, State: rolledBack, Parent: parent(), Controls: plan.Controls{Retry: rev}, Config: config()}, now)
	if d.State.Phase != spec.PhaseProgressing {
		t.Fatalf("retry: phase %s, want Progressing", d.State.Phase)
	}

	// Its analysis passed; the promoted Deployment does not finish rolling in time.
	st := d.State
	st.Phase, st.PromotingAt, st.CanaryReady = spec.PhasePromoting, now, true
	later := now.Add(st.Plan.ProgressDeadline.Duration + time.Second)
	d = plan.Plan(plan.Snapshot{Name: name, State: st, Parent: parent(unpaused), Canary: readyCanary(3)}, later)
	if d.State.Phase != spec.PhaseFailed {
		t.Fatalf("promotion past its deadline: phase %s, want Failed", d.State.Phase)
	}

	// Watching the Failed release: the revision rolling on the pods passed analysis.
	d = plan.Plan(plan.Snapshot{Name: name, State: d.State, Parent: parent(unpaused)}, later.Add(time.Minute))
	if d.State.Unanalysed != "" || len(d.Events) > 0 {
		t.Errorf("the retried revision that passed analysis is reported: unanalysed %q, events %v", d.State.Unanalysed, d.Events)
	}
}
