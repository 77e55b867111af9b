package plan_test

import (
	"testing"
	"time"

	"github.com/sluice-dev/sluice/rollout/plan"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// isolated is a release through a mesh router: its canary's traffic is set by the routing
// object, and stable pods are pinned by <svc>-stable.
func isolated(s *spec.State) {
	s.Plan = config(func(c *spec.Config) { c.Router, c.Service, c.Route = spec.RouterGatewayAPI, "web", "web" })
	s.StablePod = "oldpods"
}

// TestPlanEdges pins behaviours that mutation testing found untested (docs/testing.md).
func TestPlanEdges(t *testing.T) {
	const reason = "5 failed analysis runs reached the threshold of 5"
	now := stepAt.Add(6 * time.Minute)
	// The rollback moved all traffic to stable at movedAt.
	movedAt := now.Add(-500 * time.Millisecond)
	isolatedRollback := func(at time.Time) func(*spec.State) {
		return func(s *spec.State) {
			isolated(s)
			s.Phase, s.AbortReason, s.FailedChecks, s.Message = spec.PhaseRollingBack, reason, 5, "rolling back: "+reason
			s.StepAt = at
		}
	}
	promotingAt := stepAt.Add(5 * time.Minute)
	promoting := func(s *spec.State) { s.Phase, s.PromotingAt, s.Message = spec.PhasePromoting, promotingAt, "promoting" }
	tests := map[string]struct {
		snap plan.Snapshot
		now  time.Time
		want plan.Decision
	}{
		// SPEC §4: traffic to stable first, then delete the canary, once that has reached the
		// proxies.
		"isolated rollback, traffic just moved to stable: the canary stays until it settles": {
			snap: plan.Snapshot{Name: name, State: atStep(1, isolatedRollback(movedAt)), Parent: parent(), Canary: readyCanary(3)},
			now:  now,
			want: plan.Decision{State: atStep(1, isolatedRollback(movedAt)), Canary: plan.CanaryKeep, RequeueAfter: 1500 * time.Millisecond},
		},
		"isolated rollback, settled: delete the canary": {
			snap: plan.Snapshot{Name: name, State: atStep(1, isolatedRollback(now.Add(-3*time.Second))), Parent: parent(), Canary: readyCanary(3)},
			now:  now,
			want: plan.Decision{State: atStep(1, isolatedRollback(now.Add(-3*time.Second))), Canary: plan.CanaryDelete, RequeueAfter: 2 * time.Second},
		},
		"replicas router rollback just started: the canary goes at once (no routing object to settle)": {
			snap: plan.Snapshot{Name: name, State: atStep(1, isolatedRollback(movedAt), func(s *spec.State) { s.Plan, s.StablePod = config(), "" }),
				Parent: parent(), Canary: readyCanary(1)},
			now: now,
			want: plan.Decision{State: atStep(1, isolatedRollback(movedAt), func(s *spec.State) { s.Plan, s.StablePod = config(), "" }),
				Canary: plan.CanaryDelete, RequeueAfter: 2 * time.Second},
		},
		// An isolated promotion first grows the canary to the parent's size, within the
		// progress deadline.
		"isolated promotion, canary still scaling: wait": {
			snap: plan.Snapshot{Name: name, State: atStep(4, isolated, promoting), Parent: parent(), Canary: startingCanary(3)},
			now:  promotingAt.Add(time.Minute),
			want: plan.Decision{
				State:  atStep(4, isolated, promoting, func(s *spec.State) { s.Message = "promoting: scaling canary to 3 replicas" }),
				Canary: plan.CanaryEnsure, CanaryReplicas: 3, RequeueAfter: 2 * time.Second,
			},
		},
		"isolated promotion, canary not scaled within the progress deadline: roll back": {
			snap: plan.Snapshot{Name: name, State: atStep(4, isolated, promoting), Parent: parent(), Canary: startingCanary(3)},
			now:  promotingAt.Add(10*time.Minute + time.Second),
			want: plan.Decision{
				State: atStep(4, isolated, promoting, func(s *spec.State) {
					s.Phase, s.StepAt = spec.PhaseRollingBack, promotingAt.Add(10*time.Minute+time.Second)
					s.AbortReason = "canary not scaled to 3 ready replicas within the progress deadline of 10m0s"
					s.Message = "rolling back: " + s.AbortReason
				}),
				Canary: plan.CanaryKeep, CanaryReplicas: 3, RequeueAfter: 2 * time.Second,
				Events: []plan.Event{warning("RollingBack", "rolling back revision newrev0001: canary not scaled to 3 ready replicas within the progress deadline of 10m0s")},
			},
		},
		// A parent rolled out, but not to the release's revision (its template changed under
		// the promotion), is not a success of this release.
		"rolled out to another revision: not Succeeded": {
			snap: plan.Snapshot{Name: name, State: atStep(4, promoting), Parent: parent(rolledOut, func(w *plan.Workload) { w.Revision = "otherrev01" })},
			now:  promotingAt.Add(time.Minute),
			want: plan.Decision{
				State:  atStep(4, promoting, func(s *spec.State) { s.Message = "rolling out: 3/3 replicas updated, 3 available" }),
				Paused: ptr(false), RequeueAfter: 2 * time.Second,
			},
		},
	}
	run(t, tests)
}
