package webhook_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/rollout/spec"
	"github.com/sluice-dev/sluice/webhook"
)

// TestDecideEdges are rows of the decision table that mutation testing found unpinned
// (docs/testing.md), in the golden shape of TestDecide.
func TestDecideEdges(t *testing.T) {
	web := func() *deployment { return testDeployment("web") }
	// An isolated (mesh router) promotion at step p: the parent stays held until all traffic
	// is on the canary and has settled (scale, shift), and rolls from the rollout step on.
	isolatedPromotion := func(p spec.PromoteStep) spec.State {
		return release(spec.PhasePromoting, func(s *spec.State) {
			cfg := *s.Plan
			cfg.Router, cfg.Service, cfg.Route = spec.RouterGatewayAPI, "web", "web"
			s.Plan, s.PromoteStep, s.StablePod, s.PromotingAt = &cfg, p, "5d8f7c9b6", now.Add(-time.Minute)
			if p != spec.PromoteScale {
				s.Weight = 100
			}
		})
	}
	shift, rollout := isolatedPromotion(spec.PromoteShift), isolatedPromotion(spec.PromoteRollout)
	idle := spec.State{Phase: spec.PhaseIdle, Stable: hashOf("v1")}
	failedRelease := release(spec.PhaseFailed, func(s *spec.State) {
		s.FailedRevision, s.Weight, s.CanaryReady = hashOf("v2"), 0, false
		s.AbortReason, s.Message = "5 failed analysis runs reached the threshold of 5", "rolled back: 5 failed analysis runs reached the threshold of 5"
	})
	unanalysed := spec.State{Phase: spec.PhaseIdle, Stable: hashOf("v1"), Unanalysed: hashOf("v2"), UnanalysedAt: now.Add(-time.Hour)}
	// v2's promotion ran out of time (Failed, parent unpaused on v2's template); v0 is the
	// revision rolled back before it.
	promotionTimedOut := release(spec.PhaseFailed, func(s *spec.State) {
		s.FailedRevision, s.Weight, s.CanaryReady = hashOf("v0"), 0, false
		s.PromotingAt, s.FinishedAt = now.Add(-20*time.Minute), now.Add(-10*time.Minute)
		s.Message = "promoted Deployment not fully rolled out within the progress deadline of 10m0s"
	})
	tests := map[string]struct {
		in webhook.Input
	}{
		"unchanged_isolated_promotion_shift_paused_false_reasserted": {
			in: update_(web().Image("v2").Paused(true).State(shift), web().Image("v2").Paused(false).State(shift)),
		},
		"unchanged_isolated_promotion_rollout_not_reasserted": {
			in: update_(web().Image("v2").Paused(false).State(rollout), web().Image("v2").Paused(false).State(rollout).Replicas(5)),
		},
		// SPEC §3: the last failed template is held Failed, whatever the phase, until it
		// changes or sluice.dev/retry is set.
		"last_failed_template_after_a_promotion_timeout_held_failed": {
			in: update_(web().Image("v2").State(promotionTimedOut), web().Image("v0").State(promotionTimedOut)),
		},
		// Break glass while Failed (held, nothing in flight): the hold goes with the release.
		"skip_analysis_when_failed_unpauses": {
			in: update_(web().Image("v2").Paused(true).State(failedRelease), web().Image("v3").Paused(true).State(failedRelease).Annotate(spec.AnnSkipAnalysis, "true")),
		},
		// Opting out an Idle Deployment nobody paused releases nothing: the Event says so.
		"opt_out_idle_unpaused_says_nothing_released": {
			in: update_(web().State(idle), web().State(idle).OptOut()),
		},
		// Failed after a promotion timeout, the parent already rolling: opting out unpauses
		// nothing, and the Event does not say it does.
		"opt_out_failed_after_a_promotion_timeout_releases_nothing": {
			in: update_(web().Image("v2").State(promotionTimedOut), web().Image("v2").State(promotionTimedOut).OptOut()),
		},
		// A restart of a template that reached the pods without the hold stays reported.
		"restart_of_an_unanalysed_template_stays_unanalysed": {
			in: update_(web().Image("v2").State(unanalysed), web().Image("v2").State(unanalysed).Restarted("2026-05-01T11:59:00Z"), restartBypass),
		},
		// `kubectl rollout pause` then `rollout resume` by the user, no release: theirs to make.
		"unchanged_idle_users_resume_allowed": {
			in: update_(web().Paused(true).State(idle), web().Paused(false).State(idle)),
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			v := webhook.Decide(tc.in)
			checkOnlyOwnFields(t, tc.in.New, v)
			golden(t, filepath.Join("testdata", "decide", name+".json"), render(tc.in, v))
		})
	}
}
