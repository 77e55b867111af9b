package plan_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-dev/sluice/rollout/plan"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// TestWatchedWaitsWriteNothing walks the waits that a Deployment's status ends — the canary
// becoming ready, the canary scaling for an isolated promotion, the parent rolling — one
// status change at a time, as the watch would wake the worker at each. After the step that
// starts the wait, every such step decides the very state it was given (so nothing is written:
// no message carries a count that changes) and asks to look again only a second after the
// progress deadline (no polling; the watch ends the wait).
func TestWatchedWaitsWriteNothing(t *testing.T) {
	promotingAt := stepAt.Add(5 * time.Minute)
	promoting := func(step spec.PromoteStep) func(*spec.State) {
		return func(s *spec.State) {
			s.Phase, s.PromotingAt, s.PromoteStep, s.Message = spec.PhasePromoting, promotingAt, step, "promoting"
		}
	}
	scaling := func(n int32) func(*plan.Workload) {
		return func(w *plan.Workload) {
			w.Generation, w.ObservedGeneration, w.StatusReplicas, w.UpdatedReplicas, w.AvailableReplicas = 3, 3, 3+n, n, 3-min(n, 1)
		}
	}
	tests := map[string]struct {
		state    spec.State
		deadline time.Time
		// world is the snapshot after each status change, the first one starting the wait.
		world []plan.Snapshot
	}{
		"canary becoming ready, pod by pod": {
			state:    atStep(2, func(s *spec.State) { s.CanaryReady = false }),
			deadline: stepAt.Add(10 * time.Minute),
			world: []plan.Snapshot{
				{Parent: parent(), Canary: startingCanary(2)},
				{Parent: parent(), Canary: func() *plan.Workload { c := startingCanary(2); c.AvailableReplicas = 1; return c }()},
				{Parent: parent(), Canary: func() *plan.Workload { c := startingCanary(2); c.UpdatedReplicas = 1; return c }()},
			},
		},
		"isolated promotion: canary scaling to the parent's size": {
			state:    atStep(4, isolated, promoting(spec.PromoteScale)),
			deadline: promotingAt.Add(10 * time.Minute),
			world: []plan.Snapshot{
				{Parent: parent(), Canary: func() *plan.Workload { c := startingCanary(3); c.AvailableReplicas = 1; return c }()},
				{Parent: parent(), Canary: func() *plan.Workload { c := startingCanary(3); c.AvailableReplicas = 2; return c }()},
			},
		},
		"replicas router promotion: the parent rolling": {
			state:    atStep(4, promoting("")),
			deadline: promotingAt.Add(10 * time.Minute),
			world: []plan.Snapshot{
				{Parent: parent(unpaused, func(w *plan.Workload) { w.Generation = 3 }), Canary: readyCanary(3)},
				{Parent: parent(unpaused, scaling(0)), Canary: readyCanary(3)},
				{Parent: parent(unpaused, scaling(1)), Canary: readyCanary(3)},
				{Parent: parent(unpaused, scaling(2)), Canary: readyCanary(3)},
				{Parent: parent(rolledOut, func(w *plan.Workload) { w.AvailableReplicas = 2 }), Canary: readyCanary(3)},
			},
		},
		"isolated promotion: the parent rolling behind the canary": {
			state:    atStep(4, isolated, promoting(spec.PromoteRollout), func(s *spec.State) { s.Weight = 100 }),
			deadline: promotingAt.Add(10 * time.Minute),
			world: []plan.Snapshot{
				{Parent: parent(unpaused, scaling(0)), Canary: readyCanary(3)},
				{Parent: parent(unpaused, scaling(1)), Canary: readyCanary(3)},
				{Parent: parent(unpaused, scaling(3)), Canary: readyCanary(3)},
				{Parent: parent(rolledOut, func(w *plan.Workload) { w.StatusReplicas = 4 }), Canary: readyCanary(3)},
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			st := tc.state
			now := tc.deadline.Add(-9 * time.Minute)
			for i, w := range tc.world {
				w.Name, w.State = name, st
				d := plan.Plan(w, now)
				if d.State.Phase != st.Phase || len(d.Events) > 0 {
					t.Fatalf("change %d ended the wait: %s %q, events %v", i, d.State.Phase, d.State.Message, d.Events)
				}
				if i > 0 {
					if diff := cmp.Diff(st.Encode(), d.State.Encode()); diff != "" {
						t.Errorf("change %d rewrote the state while waiting (-before +after):\n%s", i, diff)
					}
				}
				if want := tc.deadline.Sub(now) + time.Second; d.RequeueAfter != want {
					t.Errorf("change %d: requeue after %s, want %s (a second past the progress deadline, nothing else)", i, d.RequeueAfter, want)
				}
				st = d.State
				now = now.Add(3 * time.Second)
			}
		})
	}
}
