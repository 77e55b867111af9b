package plan_test

import (
	"testing"
	"time"

	"github.com/sluice-dev/sluice/rollout/plan"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// TestPause pins Decision.Paused, the planner's one decision on spec.paused (from
// spec.State.Holds), in the cases where holding or releasing is not the whole rule: what a user
// paused outside a release stays theirs, a Failed parent the planner did not hold is not held
// again, a promotion the webhook aborts is left as the webhook wrote it, and an isolated
// promotion holds until its traffic shift has settled.
func TestPause(t *testing.T) {
	now := stepAt.Add(time.Hour)
	promotingAt := now.Add(-time.Minute)
	promoting := func(s *spec.State) { s.Phase, s.PromotingAt = spec.PhasePromoting, promotingAt }
	failed := func(s *spec.State) {
		s.Phase, s.FailedRevision, s.CanaryReady, s.Weight = spec.PhaseFailed, rev, false, 0
	}
	paused := func(s *spec.State) { s.Phase, s.PausedFrom = spec.PhasePaused, spec.PhaseProgressing }
	rollingBack := func(s *spec.State) { s.Phase, s.AbortReason = spec.PhaseRollingBack, "aborted" }
	noPlan := func(s *spec.State) { s.Plan = nil }
	onStable := func(w *plan.Workload) { w.Revision = stable }
	tests := map[string]struct {
		state    spec.State
		parent   plan.Workload
		canary   *plan.Workload
		controls plan.Controls
		// badConfig: the Deployment's current configuration does not parse (a retry cannot start).
		badConfig bool
		now       time.Time
		want      *bool // nil: spec.paused left as it is
	}{
		// No release running: the planner never touches spec.paused.
		"Idle, paused by its user: stays paused": {
			state: spec.State{Phase: spec.PhaseIdle, Stable: rev}, parent: parent(), want: nil,
		},
		"Succeeded, paused by its user: stays paused": {
			state: spec.State{Phase: spec.PhaseSucceeded, Stable: rev, Revision: rev}, parent: parent(), want: nil,
		},
		"unknown phase, paused: stays paused": {
			state: spec.State{Phase: "Whatever"}, parent: parent(), want: nil,
		},
		"Failed (rolled back), resumed past the webhook: not paused again": {
			state: atStep(1, failed), parent: parent(unpaused), want: nil,
		},
		"Failed with an invalid retry configuration: not paused again": {
			state: atStep(1, failed), parent: parent(unpaused), controls: plan.Controls{Retry: rev}, badConfig: true, want: nil,
		},
		"Waiting at a gate, resumed past the webhook: paused again": {
			state: atStep(1, phase(spec.PhaseWaiting)), parent: parent(unpaused), want: ptr(true),
		},
		"a release without a plan (Failed now): untouched": {
			state: atStep(1, noPlan), parent: parent(unpaused), want: nil,
		},

		// A release the planner runs holds the parent while spec.State.Holds says so.
		"Progressing, resumed past the webhook: paused again": {
			state: atStep(1), parent: parent(unpaused), canary: readyCanary(1), want: ptr(true),
		},
		"Progressing, paused: nothing to write": {
			state: atStep(1), parent: parent(), canary: readyCanary(1), want: nil,
		},
		"Paused by sluice.dev/pause, resumed past the webhook: paused again": {
			state: atStep(1, paused), parent: parent(unpaused), controls: plan.Controls{Pause: rev}, want: ptr(true),
		},
		"promoted (replicas router): released": {
			state: atStep(1), parent: parent(), canary: readyCanary(1), controls: plan.Controls{Promote: rev}, want: ptr(false),
		},
		"promoted (isolated): held until all traffic is on the canary": {
			state: atStep(1, isolated), parent: parent(unpaused), canary: readyCanary(3), controls: plan.Controls{Promote: rev}, want: ptr(true),
		},
		"promoting (replicas router), paused by someone: released again": {
			state: atStep(4, promoting), parent: parent(), canary: readyCanary(3), want: ptr(false),
		},
		"isolated promotion, shift settling: held": {
			state: atStep(4, isolated, promoting, shifted(now.Add(-time.Second))), parent: parent(unpaused), canary: readyCanary(3), want: ptr(true),
		},
		"isolated promotion, shift settled: released to roll": {
			state: atStep(4, isolated, promoting, shifted(now.Add(-time.Minute))), parent: parent(), canary: readyCanary(3), want: ptr(false),
		},
		"promotion ran out of time (Failed): released, not held again": {
			state: atStep(4, promoting), parent: parent(unpaused), canary: readyCanary(3), now: promotingAt.Add(11 * time.Minute), want: ptr(false),
		},
		"promotion ran out of time, paused by someone: released": {
			state: atStep(4, promoting), parent: parent(), canary: readyCanary(3), now: promotingAt.Add(11 * time.Minute), want: ptr(false),
		},
		"promotion reverted by the webhook (RollingBack now), parent paused: untouched": {
			state: atStep(4, promoting, reverted), parent: parent(onStable), canary: readyCanary(3), want: nil,
		},
		"promotion reverted by the webhook, then resumed by a user: untouched this step": {
			state: atStep(4, promoting, reverted), parent: parent(onStable, unpaused), canary: readyCanary(3), want: nil,
		},
		"rolling back with the canary, resumed: paused again": {
			state: atStep(1, rollingBack), parent: parent(unpaused), canary: readyCanary(1), want: ptr(true),
		},
		"rolled back (Failed now), resumed: paused again": {
			state: atStep(1, rollingBack), parent: parent(unpaused), want: ptr(true),
		},
		"reverted, canary gone (Idle now): released on stable": {
			state: atStep(1, reverted, phase(spec.PhaseRollingBack)), parent: parent(onStable), want: ptr(false),
		},
		"retry (Progressing now), resumed: paused again": {
			state: atStep(1, failed), parent: parent(unpaused), controls: plan.Controls{Retry: rev}, want: ptr(true),
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			at := tc.now
			if at.IsZero() {
				at = now
			}
			s := plan.Snapshot{Name: "web", State: tc.state, Parent: tc.parent, Canary: tc.canary, Controls: tc.controls}
			if tc.badConfig {
				s.ConfigErr = "invalid"
			} else {
				s.Config = config()
			}
			d := plan.Plan(s, at)
			if got := d.Paused; (got == nil) != (tc.want == nil) || got != nil && *got != *tc.want {
				t.Errorf("Paused = %s, want %s (phase %s -> %s)", fmtPaused(got), fmtPaused(tc.want), tc.state.Phase, d.State.Phase)
			}
		})
	}
}
