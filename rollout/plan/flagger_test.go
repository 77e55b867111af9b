package plan_test

import (
	"slices"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/rollout/plan"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// Flagger's analysis fields with a meaning in the planner (issue 12, acceptance 3).

func TestCanaryReadyThreshold(t *testing.T) {
	// At weight 10 % of 30 parent pods the canary has 4; 2 are available.
	halfUp := &plan.Workload{Revision: rev, Generation: 1, ObservedGeneration: 1, Replicas: 4, StatusReplicas: 4, UpdatedReplicas: 4, AvailableReplicas: 2}
	for _, tc := range []struct {
		threshold int
		ready     bool
	}{{0, false}, {100, false}, {50, true}, {75, false}} {
		st := atStep(0, func(s *spec.State) {
			s.CanaryReady, s.LastRunAt = false, time.Time{}
			s.Plan.CanaryReadyThreshold = tc.threshold
		})
		d := plan.Plan(plan.Snapshot{Name: name, State: st, Parent: parent(func(w *plan.Workload) { w.Replicas = 30 }), Canary: halfUp}, stepAt.Add(time.Second))
		if d.State.CanaryReady != tc.ready {
			t.Errorf("canaryReadyThreshold %d with 2 of 4 canary pods available: ready %v, want %v (%s)", tc.threshold, d.State.CanaryReady, tc.ready, d.State.Message)
		}
	}
}

func TestPrimaryReadyThreshold(t *testing.T) {
	for _, tc := range []struct {
		threshold int
		done      bool
	}{{0, false}, {80, true}, {90, false}} {
		st := atStep(4, func(s *spec.State) {
			s.Phase, s.PromotingAt = spec.PhasePromoting, stepAt
			s.Plan.PrimaryReadyThreshold = tc.threshold
		})
		p := parent(rolledOut, func(w *plan.Workload) {
			w.Replicas, w.StatusReplicas, w.UpdatedReplicas, w.AvailableReplicas = 10, 10, 10, 8
		})
		d := plan.Plan(plan.Snapshot{Name: name, State: st, Parent: p}, stepAt.Add(time.Minute))
		if got := d.State.Phase == spec.PhaseSucceeded; got != tc.done {
			t.Errorf("primaryReadyThreshold %d with 8 of 10 pods available: promoted %v, want %v (%s)", tc.threshold, got, tc.done, d.State.Message)
		}
	}
}

// TestStepWeightPromotion: an isolated promotion moves the traffic back to the re-pinned stable
// Service in steps of stepWeightPromotion, one per interval, then removes the canary.
func TestStepWeightPromotion(t *testing.T) {
	st := atStep(4, func(s *spec.State) {
		c := *s.Plan
		c.Router, c.Service, c.Route, c.StepWeightPromotion = spec.RouterGatewayAPI, "web", "web", 40
		s.Plan = &c
		s.Phase, s.PromotingAt, s.PromoteStep, s.Weight, s.StablePod = spec.PhasePromoting, stepAt, spec.PromoteRollout, 100, "oldhash"
	})
	p := parent(rolledOut, func(w *plan.Workload) { w.PodHash = "newhash" })
	now := stepAt.Add(time.Minute)
	var weights []int
	for range 6 {
		d := plan.Plan(plan.Snapshot{Name: name, State: st, Parent: p, Canary: readyCanary(3)}, now)
		if d.Canary == plan.CanaryDelete {
			if d.State.Phase != spec.PhaseSucceeded || d.State.Weight != 0 {
				t.Fatalf("canary deleted at %s weight %d", d.State.Phase, d.State.Weight)
			}
			break
		}
		if r, _ := d.State.Routing(); len(weights) == 0 || weights[len(weights)-1] != r.Weight {
			weights = append(weights, r.Weight)
		}
		st = d.State
		now = now.Add(d.RequeueAfter)
	}
	if want := []int{60, 20, 0}; !slices.Equal(weights, want) {
		t.Errorf("canary weights on the way back %v, want %v", weights, want)
	}
	if st.StablePod != "newhash" {
		t.Errorf("stable Service pinned to %q, want the rolled ReplicaSet", st.StablePod)
	}
}
