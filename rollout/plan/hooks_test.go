package plan_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-dev/sluice/rollout/plan"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// withHooks gives the release's plan hooks of the types listed, one each, named after them.
func withHooks(types ...spec.HookType) func(*spec.State) {
	return func(s *spec.State) {
		c := *s.Plan
		c.Hooks = nil
		for _, t := range types {
			c.Hooks = append(c.Hooks, spec.Hook{Name: string(t), Type: t, URL: "http://hooks.test/" + string(t)})
		}
		s.Plan = &c
	}
}

func yes(t spec.HookType) []spec.HookResult {
	return []spec.HookResult{{Name: string(t), Type: t, Outcome: spec.HookPassed, Reason: "HTTP 200"}}
}

func no(t spec.HookType) []spec.HookResult {
	return []spec.HookResult{{Name: string(t), Type: t, Outcome: spec.HookRefused, Reason: `HTTP 403 "Forbidden"`}}
}

func answers(rs ...[]spec.HookResult) map[spec.HookType][]spec.HookResult {
	m := map[spec.HookType][]spec.HookResult{}
	for _, r := range rs {
		m[r[0].Type] = r
	}
	return m
}

func waitingAt(t spec.HookType, since time.Time) func(*spec.State) {
	return func(s *spec.State) {
		s.Phase = spec.PhaseWaiting
		s.Gate = &spec.Gate{Type: t, Hook: string(t), Reason: `HTTP 403 "Forbidden"`, Since: since, CheckedAt: since}
	}
}

func TestHooksDue(t *testing.T) {
	all := withHooks(spec.HookTypes...)
	runDue := stepAt.Add(time.Minute)
	tests := map[string]struct {
		snap plan.Snapshot
		now  time.Time
		want []plan.HookRound
	}{
		"no hooks: nothing": {
			snap: plan.Snapshot{State: held(), Parent: parent()}, now: t0,
		},
		"not started: the confirm-rollout gate and rollback hooks, the round is the start": {
			snap: plan.Snapshot{State: held(all), Parent: parent()}, now: t0.Add(time.Second),
			want: []plan.HookRound{{Type: spec.HookConfirmRollout, At: t0}, {Type: spec.HookRollback, At: t0}},
		},
		"waiting at confirm-rollout: asked again an interval after the last check": {
			snap: plan.Snapshot{State: held(all, waitingAt(spec.HookConfirmRollout, t0)), Parent: parent()}, now: t0.Add(time.Minute),
			want: []plan.HookRound{{Type: spec.HookConfirmRollout, At: t0}, {Type: spec.HookRollback, At: t0}},
		},
		"waiting at confirm-rollout: not before": {
			snap: plan.Snapshot{State: held(all, waitingAt(spec.HookConfirmRollout, t0)), Parent: parent()}, now: t0.Add(59 * time.Second),
		},
		"canary ready, no traffic yet: pre-rollout": {
			snap: plan.Snapshot{State: atStep(0, all, func(s *spec.State) { s.CanaryReady, s.LastRunAt = false, time.Time{} }), Parent: parent(), Canary: readyCanary(1)},
			now:  stepAt.Add(time.Second),
			want: []plan.HookRound{{Type: spec.HookPreRollout}, {Type: spec.HookRollback}},
		},
		"canary not ready: no pre-rollout yet": {
			snap: plan.Snapshot{State: atStep(0, all, func(s *spec.State) { s.CanaryReady, s.LastRunAt = false, time.Time{} }), Parent: parent(), Canary: startingCanary(1)},
			now:  stepAt.Add(time.Second),
		},
		"analysis due before a weight increase: rollout, rollback, confirm-traffic-increase": {
			snap: plan.Snapshot{State: atStep(1, all), Parent: parent(), Canary: readyCanary(1)}, now: runDue,
			want: []plan.HookRound{{Type: spec.HookRollout, At: stepAt}, {Type: spec.HookRollback, At: stepAt}, {Type: spec.HookConfirmTrafficIncrease, At: stepAt}},
		},
		"analysis due at the last step: confirm-promotion": {
			snap: plan.Snapshot{State: atStep(4, all), Parent: parent(), Canary: readyCanary(3)}, now: runDue,
			want: []plan.HookRound{{Type: spec.HookRollout, At: stepAt}, {Type: spec.HookRollback, At: stepAt}, {Type: spec.HookConfirmPromotion, At: stepAt}},
		},
		"waiting at confirm-promotion: analysis goes on, the gate is asked again": {
			snap: plan.Snapshot{State: atStep(4, all, waitingAt(spec.HookConfirmPromotion, stepAt)), Parent: parent(), Canary: readyCanary(3)}, now: runDue,
			want: []plan.HookRound{{Type: spec.HookRollout, At: stepAt}, {Type: spec.HookRollback, At: stepAt}, {Type: spec.HookConfirmPromotion, At: stepAt}},
		},
		"halted: the gate is not asked": {
			snap: plan.Snapshot{State: atStep(4, all), Parent: parent(), Canary: readyCanary(3), Controls: plan.Controls{Halt: rev}}, now: runDue,
			want: []plan.HookRound{{Type: spec.HookRollout, At: stepAt}, {Type: spec.HookRollback, At: stepAt}},
		},
		"analysis not due: nothing": {
			snap: plan.Snapshot{State: atStep(1, all), Parent: parent(), Canary: readyCanary(1)}, now: runDue.Add(-time.Second),
		},
		"an abort is about to roll back: nothing": {
			snap: plan.Snapshot{State: atStep(1, all), Parent: parent(), Canary: readyCanary(1), Controls: plan.Controls{Abort: rev}}, now: runDue,
		},
		"ended with post-rollout hooks pending: post-rollout, the round is the end": {
			snap: plan.Snapshot{State: held(all, func(s *spec.State) { s.Phase, s.PostRollout, s.FinishedAt = spec.PhaseSucceeded, true, runDue }), Parent: parent(rolledOut)},
			now:  runDue.Add(time.Second),
			want: []plan.HookRound{{Type: spec.HookPostRollout, At: runDue}},
		},
		"paused: nothing": {
			snap: plan.Snapshot{State: atStep(1, all, phase(spec.PhasePaused)), Parent: parent(), Canary: readyCanary(1)}, now: runDue,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := plan.HooksDue(tc.snap, tc.now)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("HooksDue (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPlanHooks: what each hook type's answer does to a release (Flagger's semantics).
func TestPlanHooks(t *testing.T) {
	runDue := stepAt.Add(time.Minute)
	type check func(t *testing.T, d plan.Decision)
	phaseIs := func(p spec.Phase) check {
		return func(t *testing.T, d plan.Decision) {
			if d.State.Phase != p {
				t.Errorf("phase %s, want %s (%s)", d.State.Phase, p, d.State.Message)
			}
		}
	}
	event := func(reason spec.Reason, contains string) check {
		return func(t *testing.T, d plan.Decision) {
			for _, e := range d.Events {
				if e.Reason == reason && strings.Contains(e.Message, contains) {
					return
				}
			}
			t.Errorf("no %s event containing %q in %+v", reason, contains, d.Events)
		}
	}
	noEvents := func(t *testing.T, d plan.Decision) {
		if len(d.Events) > 0 {
			t.Errorf("events %+v, want none", d.Events)
		}
	}
	canary := func(a plan.CanaryAction) check {
		return func(t *testing.T, d plan.Decision) {
			if d.Canary != a {
				t.Errorf("canary action %q, want %q", d.Canary, a)
			}
		}
	}
	state := func(what string, ok func(spec.State) bool) check {
		return func(t *testing.T, d plan.Decision) {
			if !ok(d.State) {
				t.Errorf("state: want %s; got %s", what, d.State.Encode())
			}
		}
	}
	unchanged := func(snap plan.Snapshot) check {
		return func(t *testing.T, d plan.Decision) {
			if d.State.Encode() != snap.State.Encode() {
				t.Errorf("state changed while hooks are pending:\n%s\n%s", snap.State.Encode(), d.State.Encode())
			}
		}
	}
	gateAt := func(typ spec.HookType, since time.Time) check {
		return state("waiting at "+string(typ)+" since "+since.String(), func(s spec.State) bool {
			return s.Phase == spec.PhaseWaiting && s.Gate != nil && s.Gate.Type == typ && s.Gate.Since.Equal(since)
		})
	}
	cleared := func(key string) check {
		return func(t *testing.T, d plan.Decision) {
			for _, k := range d.Clear {
				if k == key {
					return
				}
			}
			t.Errorf("Clear %v, want %s", d.Clear, key)
		}
	}

	notStarted := plan.Snapshot{Name: name, State: held(withHooks(spec.HookConfirmRollout)), Parent: parent()}
	tests := map[string]struct {
		snap   plan.Snapshot
		now    time.Time
		checks []check
	}{
		"confirm-rollout not answered yet: nothing decided, no canary": {
			snap: notStarted, now: t0.Add(time.Second),
			checks: []check{unchanged(notStarted), canary(plan.CanaryKeep), noEvents},
		},
		"confirm-rollout closed: Waiting, no canary, one Waiting event": {
			snap: with(notStarted, answers(no(spec.HookConfirmRollout))), now: t0.Add(time.Second),
			checks: []check{gateAt(spec.HookConfirmRollout, t0.Add(time.Second)), canary(plan.CanaryKeep),
				event(spec.ReasonWaiting, `confirm-rollout gate (webhook confirm-rollout: HTTP 403 "Forbidden")`)},
		},
		"confirm-rollout still closed an interval later: still Waiting since then, no new event": {
			snap: plan.Snapshot{Name: name, State: held(withHooks(spec.HookConfirmRollout), waitingAt(spec.HookConfirmRollout, t0)), Parent: parent(),
				Hooks: answers(no(spec.HookConfirmRollout))},
			now:    t0.Add(time.Minute),
			checks: []check{gateAt(spec.HookConfirmRollout, t0), canary(plan.CanaryKeep), noEvents},
		},
		"confirm-rollout opens: the release starts, GateOpened": {
			snap: plan.Snapshot{Name: name, State: held(withHooks(spec.HookConfirmRollout), waitingAt(spec.HookConfirmRollout, t0)), Parent: parent(),
				Hooks: answers(yes(spec.HookConfirmRollout))},
			now: t0.Add(time.Minute),
			checks: []check{phaseIs(spec.PhaseProgressing), canary(plan.CanaryEnsure), event(spec.ReasonGateOpened, "after 1m0s"),
				state("started now without a gate", func(s spec.State) bool { return s.Gate == nil && s.StepAt.Equal(t0.Add(time.Minute)) })},
		},
		"confirm-rollout with muteAlert: the Waiting event is not alerted": {
			snap: with(plan.Snapshot{Name: name, State: held(func(s *spec.State) {
				c := *s.Plan
				c.Hooks = []spec.Hook{{Name: string(spec.HookConfirmRollout), Type: spec.HookConfirmRollout, URL: "http://x/", MuteAlert: true}}
				s.Plan = &c
			}), Parent: parent()}, answers(no(spec.HookConfirmRollout))),
			now: t0,
			checks: []check{func(t *testing.T, d plan.Decision) {
				if len(d.Events) != 1 || !d.Events[0].MuteAlert {
					t.Errorf("events %+v, want one muted", d.Events)
				}
			}},
		},
		"halt closes the confirm-rollout gate without asking": {
			snap: plan.Snapshot{Name: name, State: held(), Parent: parent(), Controls: plan.Controls{Halt: rev}}, now: t0,
			checks: []check{gateAt(spec.HookConfirmRollout, t0), event(spec.ReasonWaiting, "halted by sluice.dev/halt")},
		},
		"pre-rollout refused: a failed run, no traffic yet": {
			snap: plan.Snapshot{Name: name, State: atStep(0, withHooks(spec.HookPreRollout), func(s *spec.State) { s.CanaryReady, s.LastRunAt = false, time.Time{} }),
				Parent: parent(), Canary: readyCanary(1), Hooks: answers(no(spec.HookPreRollout))},
			now: stepAt.Add(time.Second),
			checks: []check{phaseIs(spec.PhaseProgressing), event(spec.ReasonCheckFailed, "analysis failed (1/5) at weight 10%: pre-rollout webhook pre-rollout"),
				state("no traffic, tried again an interval later", func(s spec.State) bool {
					return !s.CanaryReady && s.FailedChecks == 1 && s.LastRunAt.Equal(stepAt.Add(time.Second))
				})},
		},
		"pre-rollout refused at the threshold: roll back": {
			snap: plan.Snapshot{Name: name, State: atStep(0, withHooks(spec.HookPreRollout), func(s *spec.State) { s.CanaryReady, s.FailedChecks = false, 4 }),
				Parent: parent(), Canary: readyCanary(1), Hooks: answers(no(spec.HookPreRollout))},
			now:    stepAt.Add(time.Minute),
			checks: []check{phaseIs(spec.PhaseRollingBack)},
		},
		"pre-rollout refused, next round not due: wait": {
			snap: plan.Snapshot{Name: name, State: atStep(0, withHooks(spec.HookPreRollout), func(s *spec.State) { s.CanaryReady = false }),
				Parent: parent(), Canary: readyCanary(1)},
			now:    stepAt.Add(30 * time.Second),
			checks: []check{phaseIs(spec.PhaseProgressing), noEvents, state("still no traffic", func(s spec.State) bool { return !s.CanaryReady })},
		},
		"pre-rollout passed: traffic to the canary": {
			snap: plan.Snapshot{Name: name, State: atStep(0, withHooks(spec.HookPreRollout), func(s *spec.State) { s.CanaryReady, s.LastRunAt = false, time.Time{} }),
				Parent: parent(), Canary: readyCanary(1), Hooks: answers(yes(spec.HookPreRollout))},
			now:    stepAt.Add(time.Second),
			checks: []check{event(spec.ReasonCanaryReady, ""), state("canary ready", func(s spec.State) bool { return s.CanaryReady })},
		},
		"rollout hook refused with passing checks: a failed run": {
			snap: plan.Snapshot{Name: name, State: atStep(1, withHooks(spec.HookRollout)), Parent: parent(), Canary: readyCanary(1),
				Analysis: goodRun, Hooks: answers(no(spec.HookRollout))},
			now: runDue,
			checks: []check{phaseIs(spec.PhaseProgressing), event(spec.ReasonCheckFailed, `webhook/rollout: HTTP 403 "Forbidden"`),
				state("weight kept, the hook's answer among the checks", func(s spec.State) bool {
					return s.Step == 1 && s.FailedChecks == 1 && len(s.Checks) == 3 && s.Checks[2].Name == "webhook/rollout"
				})},
		},
		"rollout hook passed: the weight advances": {
			snap: plan.Snapshot{Name: name, State: atStep(1, withHooks(spec.HookRollout)), Parent: parent(), Canary: readyCanary(1),
				Analysis: goodRun, Hooks: answers(yes(spec.HookRollout))},
			now:    runDue,
			checks: []check{event(spec.ReasonWeightAdvanced, "webhook/rollout=ok"), state("step 2", func(s spec.State) bool { return s.Step == 2 })},
		},
		"confirm-traffic-increase closed at a passing run: Waiting at the same weight": {
			snap: plan.Snapshot{Name: name, State: atStep(1, withHooks(spec.HookConfirmTrafficIncrease)), Parent: parent(), Canary: readyCanary(1),
				Analysis: goodRun, Hooks: answers(no(spec.HookConfirmTrafficIncrease))},
			now: runDue,
			checks: []check{gateAt(spec.HookConfirmTrafficIncrease, runDue), event(spec.ReasonWaiting, "at weight 20%"), canary(plan.CanaryEnsure),
				state("same step", func(s spec.State) bool { return s.Step == 1 && s.Weight == 20 && s.LastRunAt.Equal(runDue) })},
		},
		"confirm-traffic-increase opens at the next passing run: the weight advances": {
			snap: plan.Snapshot{Name: name, State: atStep(1, withHooks(spec.HookConfirmTrafficIncrease), waitingAt(spec.HookConfirmTrafficIncrease, stepAt)),
				Parent: parent(), Canary: readyCanary(1), Analysis: goodRun, Hooks: answers(yes(spec.HookConfirmTrafficIncrease))},
			now: runDue,
			checks: []check{phaseIs(spec.PhaseProgressing), event(spec.ReasonGateOpened, "confirm-traffic-increase"), event(spec.ReasonWeightAdvanced, "30%"),
				state("step 2, no gate", func(s spec.State) bool { return s.Step == 2 && s.Gate == nil })},
		},
		"waiting at confirm-promotion, a failing run counts": {
			snap: plan.Snapshot{Name: name, State: atStep(4, withHooks(spec.HookConfirmPromotion), waitingAt(spec.HookConfirmPromotion, stepAt)),
				Parent: parent(), Canary: readyCanary(3), Analysis: badRun, Hooks: answers(no(spec.HookConfirmPromotion))},
			now: runDue,
			checks: []check{gateAt(spec.HookConfirmPromotion, stepAt), event(spec.ReasonCheckFailed, "(1/5)"),
				state("one failed run", func(s spec.State) bool { return s.FailedChecks == 1 })},
		},
		"waiting at confirm-promotion, a failing run at the threshold rolls back": {
			snap: plan.Snapshot{Name: name, State: atStep(4, withHooks(spec.HookConfirmPromotion), waitingAt(spec.HookConfirmPromotion, stepAt), func(s *spec.State) { s.FailedChecks = 4 }),
				Parent: parent(), Canary: readyCanary(3), Analysis: badRun, Hooks: answers(no(spec.HookConfirmPromotion))},
			now:    runDue,
			checks: []check{phaseIs(spec.PhaseRollingBack), state("gate gone", func(s spec.State) bool { return s.Gate == nil })},
		},
		"confirm-promotion closed at the last passing run: Waiting, not Promoting": {
			snap: plan.Snapshot{Name: name, State: atStep(4, withHooks(spec.HookConfirmPromotion)), Parent: parent(), Canary: readyCanary(3),
				Analysis: goodRun, Hooks: answers(no(spec.HookConfirmPromotion))},
			now:    runDue,
			checks: []check{gateAt(spec.HookConfirmPromotion, runDue), event(spec.ReasonWaiting, "confirm-promotion")},
		},
		"confirm-promotion opens at a passing run: Promoting": {
			snap: plan.Snapshot{Name: name, State: atStep(4, withHooks(spec.HookConfirmPromotion), waitingAt(spec.HookConfirmPromotion, stepAt)),
				Parent: parent(), Canary: readyCanary(3), Analysis: goodRun, Hooks: answers(yes(spec.HookConfirmPromotion))},
			now:    runDue,
			checks: []check{phaseIs(spec.PhasePromoting), event(spec.ReasonGateOpened, "confirm-promotion"), event(spec.ReasonPromoting, "final weight")},
		},
		"an iterative release meets confirm-promotion only after its last iteration": {
			snap: plan.Snapshot{Name: name, State: atStep(0, withHooks(spec.HookConfirmPromotion), func(s *spec.State) {
				s.Plan.Strategy, s.Iteration, s.StablePod = spec.StrategyBlueGreen, s.Plan.Iterations-1, "stablehash"
			}), Parent: parent(), Canary: readyCanary(3), Analysis: goodRun, Hooks: answers(no(spec.HookConfirmPromotion))},
			now: runDue,
			checks: []check{gateAt(spec.HookConfirmPromotion, runDue),
				state("iteration not counted again", func(s spec.State) bool { return s.Iteration == s.Plan.Iterations-1 })},
		},
		"halt holds a release without hooks at promotion, analysis going on": {
			snap: plan.Snapshot{Name: name, State: atStep(4), Parent: parent(), Canary: readyCanary(3), Analysis: goodRun, Controls: plan.Controls{Halt: rev}},
			now:  runDue,
			checks: []check{gateAt(spec.HookConfirmPromotion, runDue), event(spec.ReasonWaiting, "halted by sluice.dev/halt"),
				state("the run recorded", func(s spec.State) bool { return s.LastRunAt.Equal(runDue) && len(s.Checks) == 2 })},
		},
		"approve opens the gate the release waits at, once": {
			snap: plan.Snapshot{Name: name, State: atStep(4, withHooks(spec.HookConfirmPromotion), waitingAt(spec.HookConfirmPromotion, stepAt)),
				Parent: parent(), Canary: readyCanary(3), Analysis: goodRun, Controls: plan.Controls{Approve: rev}},
			now:    runDue,
			checks: []check{phaseIs(spec.PhasePromoting), event(spec.ReasonGateOpened, "approved by sluice.dev/approve"), cleared(spec.AnnApprove)},
		},
		"approve does not promote before a passing run": {
			snap: plan.Snapshot{Name: name, State: atStep(4, withHooks(spec.HookConfirmPromotion), waitingAt(spec.HookConfirmPromotion, stepAt)),
				Parent: parent(), Canary: readyCanary(3), Controls: plan.Controls{Approve: rev}},
			now:    runDue.Add(-time.Second),
			checks: []check{phaseIs(spec.PhaseWaiting), noEvents},
		},
		"approve naming another revision is cleared as stale": {
			snap: plan.Snapshot{Name: name, State: atStep(4, withHooks(spec.HookConfirmPromotion), waitingAt(spec.HookConfirmPromotion, stepAt)),
				Parent: parent(), Canary: readyCanary(3), Analysis: goodRun, Controls: plan.Controls{Approve: stable}, Hooks: answers(no(spec.HookConfirmPromotion))},
			now:    runDue,
			checks: []check{phaseIs(spec.PhaseWaiting), cleared(spec.AnnApprove), event(spec.ReasonStaleControl, "sluice.dev/approve")},
		},
		"a rollback hook that says yes rolls back": {
			snap: plan.Snapshot{Name: name, State: atStep(1, withHooks(spec.HookRollback)), Parent: parent(), Canary: readyCanary(1),
				Analysis: goodRun, Hooks: answers(yes(spec.HookRollback))},
			now: runDue,
			checks: []check{phaseIs(spec.PhaseRollingBack), event(spec.ReasonRollbackRequested, "rollback webhook rollback answered yes"),
				state("reason", func(s spec.State) bool { return s.AbortReason == "rollback requested by webhook rollback" })},
		},
		"a rollback hook that says no changes nothing": {
			snap: plan.Snapshot{Name: name, State: atStep(1, withHooks(spec.HookRollback)), Parent: parent(), Canary: readyCanary(1),
				Analysis: goodRun, Hooks: answers(no(spec.HookRollback))},
			now:    runDue,
			checks: []check{event(spec.ReasonWeightAdvanced, "")},
		},
		"a rollback hook is asked while waiting at confirm-rollout": {
			snap: plan.Snapshot{Name: name, State: held(withHooks(spec.HookConfirmRollout, spec.HookRollback), waitingAt(spec.HookConfirmRollout, t0)),
				Parent: parent(), Hooks: answers(no(spec.HookConfirmRollout), yes(spec.HookRollback))},
			now:    t0.Add(time.Minute),
			checks: []check{phaseIs(spec.PhaseRollingBack)},
		},
		"rollout hook pending: no step, no write": {
			snap: plan.Snapshot{Name: name, State: atStep(1, withHooks(spec.HookRollout)), Parent: parent(), Canary: readyCanary(1)},
			now:  runDue,
			checks: []check{noEvents, func(t *testing.T, d plan.Decision) {
				if d.State.Encode() != atStep(1, withHooks(spec.HookRollout)).Encode() {
					t.Errorf("state changed: %s", d.State.Encode())
				}
			}},
		},
		"the deadline does not run while a gate is closed": {
			snap: plan.Snapshot{Name: name, State: atStep(2, withHooks(spec.HookConfirmTrafficIncrease), waitingAt(spec.HookConfirmTrafficIncrease, stepAt.Add(20*time.Minute))),
				Parent: parent(), Canary: startingCanary(2)},
			now:    stepAt.Add(25 * time.Minute),
			checks: []check{phaseIs(spec.PhaseWaiting)},
		},
		"promotion ends: post-rollout hooks pending": {
			snap: plan.Snapshot{Name: name, State: atStep(4, withHooks(spec.HookPostRollout), func(s *spec.State) {
				s.Phase, s.PromotingAt = spec.PhasePromoting, stepAt
			}), Parent: parent(rolledOut)},
			now:    runDue,
			checks: []check{phaseIs(spec.PhaseSucceeded), state("post-rollout pending", func(s spec.State) bool { return s.PostRollout })},
		},
		"rollback ends: post-rollout hooks pending": {
			snap: plan.Snapshot{Name: name, State: atStep(1, withHooks(spec.HookPostRollout), func(s *spec.State) {
				s.Phase, s.AbortReason = spec.PhaseRollingBack, "x"
			}), Parent: parent()},
			now:    runDue,
			checks: []check{phaseIs(spec.PhaseFailed), state("post-rollout pending", func(s spec.State) bool { return s.PostRollout })},
		},
		"post-rollout refused after the end: reported only": {
			snap: plan.Snapshot{Name: name, State: atStep(1, withHooks(spec.HookPostRollout), func(s *spec.State) {
				s.Phase, s.PostRollout, s.FinishedAt, s.FailedRevision = spec.PhaseFailed, true, runDue, rev
			}), Parent: parent(), Hooks: answers(no(spec.HookPostRollout))},
			now: runDue.Add(time.Second),
			checks: []check{phaseIs(spec.PhaseFailed), event(spec.ReasonHookFailed, "post-rollout webhook post-rollout"),
				state("done", func(s spec.State) bool { return !s.PostRollout })},
		},
		"post-rollout not answered yet: wait": {
			snap: plan.Snapshot{Name: name, State: atStep(1, withHooks(spec.HookPostRollout), func(s *spec.State) {
				s.Phase, s.PostRollout, s.FinishedAt, s.Stable = spec.PhaseSucceeded, true, runDue, rev
			}), Parent: parent(rolledOut)},
			now:    runDue.Add(time.Second),
			checks: []check{noEvents, state("still pending", func(s spec.State) bool { return s.PostRollout })},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d := plan.Plan(tc.snap, tc.now)
			for _, c := range tc.checks {
				c(t, d)
			}
		})
	}
}

func with(s plan.Snapshot, hooks map[spec.HookType][]spec.HookResult) plan.Snapshot {
	s.Hooks = hooks
	return s
}
