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

func unpinned(s *spec.State) { s.StablePod = "" }

// shifted is an isolated promotion that moved all traffic to the canary at at.
func shifted(at time.Time) func(*spec.State) {
	return func(s *spec.State) { s.PromoteStep, s.Weight, s.StepAt = spec.PromoteShift, 100, at }
}

// cleanedUp is an isolated promotion whose parent rolled: <svc>-stable re-pinned to the rolled
// ReplicaSet and all traffic moved back to it at at.
func cleanedUp(at time.Time) func(*spec.State) {
	return func(s *spec.State) {
		s.PromoteStep, s.Weight, s.StepAt, s.StablePod = spec.PromoteCleanup, 0, at, "newpods"
		s.Message = "rolled out; traffic back to the stable Service"
	}
}

// generationAhead is a parent whose latest change (an annotation) the Deployment controller
// has not observed yet.
func generationAhead(w *plan.Workload) { w.Generation = w.ObservedGeneration + 1 }

// consecutive makes the success-rate check count consecutive failed runs only.
func consecutive(s *spec.State) {
	s.Plan = config(func(c *spec.Config) { c.Metrics[0].Consecutive = true })
}

// iterative is a blue/green release of 3 iterations through a mesh router, consecutive.
func iterative(s *spec.State) {
	isolated(s)
	s.Plan = config(mesh, strategy(spec.StrategyBlueGreen), func(c *spec.Config) { c.Route, c.Metrics[0].Consecutive = name, true })
}

func counts(s *spec.State) { s.Inconclusive, s.FailedChecks = 2, 1 }

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
	rolledBack := func(at time.Time) func(*spec.State) {
		return func(s *spec.State) {
			s.Phase, s.FailedRevision, s.Weight, s.CanaryReady, s.FinishedAt = spec.PhaseFailed, rev, 0, false, at
			s.Message = "rolled back: " + reason
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
		"isolated rollback, settled: delete the canary, Failed": {
			snap: plan.Snapshot{Name: name, State: atStep(1, isolatedRollback(now.Add(-3*time.Second))), Parent: parent(), Canary: readyCanary(3)},
			now:  now,
			want: plan.Decision{State: atStep(1, isolatedRollback(now.Add(-3*time.Second)), rolledBack(now)), Canary: plan.CanaryDelete,
				Events: []spec.Event{warning("RolledBack", "canary of revision newrev0001 removed; stable revision stablerev1 keeps serving ("+reason+")")}},
		},
		"replicas router rollback just started: the canary goes at once (no routing object to settle)": {
			snap: plan.Snapshot{Name: name, State: atStep(1, isolatedRollback(movedAt), func(s *spec.State) { s.Plan, s.StablePod = config(), "" }),
				Parent: parent(), Canary: readyCanary(1)},
			now: now,
			want: plan.Decision{State: atStep(1, isolatedRollback(movedAt), func(s *spec.State) { s.Plan, s.StablePod = config(), "" }, rolledBack(now)),
				Canary: plan.CanaryDelete,
				Events: []spec.Event{warning("RolledBack", "canary of revision newrev0001 removed; stable revision stablerev1 keeps serving ("+reason+")")}},
		},
		// An isolated promotion first grows the canary to the parent's size, within the
		// progress deadline.
		"isolated promotion, canary still scaling: wait": {
			snap: plan.Snapshot{Name: name, State: atStep(4, isolated, promoting), Parent: parent(), Canary: startingCanary(3)},
			now:  promotingAt.Add(time.Minute),
			want: plan.Decision{
				State:  atStep(4, isolated, promoting, func(s *spec.State) { s.Message = "promoting: scaling canary to 3 replicas" }),
				Canary: plan.CanaryEnsure, CanaryReplicas: 3, RequeueAfter: 9*time.Minute + time.Second,
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
				Events: []spec.Event{warning("RollingBack", "rolling back revision newrev0001: canary not scaled to 3 ready replicas within the progress deadline of 10m0s")},
			},
		},
		// <svc>-stable is pinned to the stable ReplicaSet before any traffic moves.
		"isolated, no stable ReplicaSet yet: wait for it": {
			snap: plan.Snapshot{Name: name, State: held(isolated, unpinned), Parent: parent()},
			now:  t0,
			want: plan.Decision{
				State: held(isolated, unpinned, func(s *spec.State) {
					s.Weight, s.StepAt, s.Message = 10, t0, "waiting for the Deployment's stable ReplicaSet"
				}),
				RequeueAfter: 2 * time.Second,
			},
		},
		"isolated, no stable ReplicaSet within the progress deadline: roll back": {
			snap: plan.Snapshot{Name: name, State: atStep(0, isolated, unpinned), Parent: parent()},
			now:  stepAt.Add(10*time.Minute + time.Second),
			want: plan.Decision{
				State: atStep(0, isolated, unpinned, func(s *spec.State) {
					s.Phase, s.StepAt = spec.PhaseRollingBack, stepAt.Add(10*time.Minute+time.Second)
					s.AbortReason = "the Deployment has no ReplicaSet to pin web-stable to"
					s.Message = "rolling back: " + s.AbortReason
				}),
				RequeueAfter: 2 * time.Second,
				Events:       []spec.Event{warning("RollingBack", "rolling back revision newrev0001: the Deployment has no ReplicaSet to pin web-stable to")},
			},
		},
		"isolated, stable ReplicaSet found: pinned, then the canary": {
			snap: plan.Snapshot{Name: name, State: held(isolated, unpinned), Parent: parent(func(w *plan.Workload) { w.PodHash = "oldpods" })},
			now:  t0,
			want: plan.Decision{
				State: held(isolated, func(s *spec.State) {
					s.Weight, s.StepAt = 10, t0
					s.Message = "waiting for canary web-canary to be ready (3 replicas at weight 10%)"
				}),
				Canary: plan.CanaryEnsure, CanaryReplicas: 3, RequeueAfter: 10*time.Minute + time.Second,
			},
		},
		// A routing object the router cannot set holds the release like an unready canary.
		"routing object not set: wait": {
			snap: plan.Snapshot{Name: name, State: atStep(1), Parent: parent(), Canary: readyCanary(1), RoutingErr: "HTTPRoute web not found"},
			now:  stepAt.Add(time.Minute),
			want: plan.Decision{
				State:  atStep(1, func(s *spec.State) { s.Message = "waiting for the routing object: HTTPRoute web not found" }),
				Canary: plan.CanaryEnsure, CanaryReplicas: 1, RequeueAfter: 2 * time.Second, RoutingMayFail: true,
			},
		},
		// Before the canary exists: it is made meanwhile, and the wait is recorded (with its
		// step time, so the progress deadline runs) even if the routing fails again.
		"routing object not set, no canary yet: canary made, wait recorded": {
			snap: plan.Snapshot{Name: name, State: held(), Parent: parent(), RoutingErr: "HTTPRoute web not found"},
			now:  stepAt,
			want: plan.Decision{
				State: held(func(s *spec.State) {
					s.StepAt, s.Weight = stepAt, 10
					s.Message = "waiting for the routing object: HTTPRoute web not found"
				}),
				Canary: plan.CanaryEnsure, CanaryReplicas: 1, RequeueAfter: 2 * time.Second, RoutingMayFail: true,
			},
		},
		"routing object not set within the progress deadline: roll back": {
			snap: plan.Snapshot{Name: name, State: atStep(1), Parent: parent(), Canary: readyCanary(1), RoutingErr: "HTTPRoute web not found"},
			now:  stepAt.Add(10*time.Minute + time.Second),
			want: plan.Decision{
				State: atStep(1, func(s *spec.State) {
					s.Phase, s.AbortReason = spec.PhaseRollingBack, "routing: HTTPRoute web not found"
					s.Message = "rolling back: routing: HTTPRoute web not found"
				}),
				CanaryReplicas: 1, RequeueAfter: 2 * time.Second,
				Events: []spec.Event{warning("RollingBack", "rolling back revision newrev0001: routing: HTTPRoute web not found")},
			},
		},
		// Until all traffic is on the canary, an unpaused parent is held again.
		"isolated promotion scaling, parent unpaused: held again": {
			snap: plan.Snapshot{Name: name, State: atStep(4, isolated, promoting), Parent: parent(unpaused), Canary: startingCanary(3)},
			now:  promotingAt.Add(time.Minute),
			want: plan.Decision{
				State:  atStep(4, isolated, promoting, func(s *spec.State) { s.Message = "promoting: scaling canary to 3 replicas" }),
				Canary: plan.CanaryEnsure, CanaryReplicas: 3, Paused: ptr(true), RequeueAfter: 9*time.Minute + time.Second,
			},
		},
		"isolated promotion shifting, parent unpaused: held again until it settles": {
			snap: plan.Snapshot{Name: name, State: atStep(4, isolated, promoting, shifted(movedAt)), Parent: parent(unpaused), Canary: readyCanary(3)},
			now:  now,
			want: plan.Decision{
				State: atStep(4, isolated, promoting, shifted(movedAt)), Paused: ptr(true), RequeueAfter: 1500 * time.Millisecond,
			},
		},
		"isolated promotion shift settled: the parent rolls": {
			snap: plan.Snapshot{Name: name, State: atStep(4, isolated, promoting, shifted(now.Add(-3*time.Second))), Parent: parent(), Canary: readyCanary(3)},
			now:  now,
			want: plan.Decision{
				State: atStep(4, isolated, promoting, shifted(now.Add(-3*time.Second)), func(s *spec.State) {
					s.PromoteStep, s.Message = spec.PromoteRollout, "promoting: rolling out the Deployment"
				}),
				Paused: ptr(false), RequeueAfter: 9*time.Minute + time.Second,
			},
		},
		// The step that re-pins <svc>-stable and records cleanup changes the Deployment's
		// annotations, which bumps its generation: until the Deployment controller observes
		// that, the parent looks not rolled. The recorded cleanup is not undone for it.
		"isolated promotion cleanup, state patch not yet observed: wait for the settle, nothing rewritten": {
			snap: plan.Snapshot{Name: name, State: atStep(4, isolated, promoting, cleanedUp(movedAt)), Parent: parent(rolledOut, generationAhead), Canary: readyCanary(3)},
			now:  now,
			want: plan.Decision{
				State: atStep(4, isolated, promoting, cleanedUp(movedAt)), Paused: ptr(false), RequeueAfter: 1500 * time.Millisecond,
			},
		},
		"isolated promotion cleanup settled, state patch not yet observed: canary deleted, Succeeded": {
			snap: plan.Snapshot{Name: name, State: atStep(4, isolated, promoting, cleanedUp(now.Add(-3*time.Second))), Parent: parent(rolledOut, generationAhead), Canary: readyCanary(3)},
			now:  now,
			want: plan.Decision{
				State: atStep(4, isolated, promoting, cleanedUp(now.Add(-3*time.Second)), func(s *spec.State) {
					s.Phase, s.FinishedAt, s.Stable, s.Weight, s.CanaryReady, s.PromoteStep = spec.PhaseSucceeded, now, rev, 0, false, ""
					s.Message = "promoted app=ghcr.io/x/app:v2"
				}),
				Canary: plan.CanaryDelete, Paused: ptr(false),
				Events: []spec.Event{normal("Promoted", "revision newrev0001 (app=ghcr.io/x/app:v2) promoted and fully rolled out; canary removed")},
			},
		},
		// A passing run clears the inconclusive count, and the failed count of a consecutive
		// check, on every path: next iteration, last iteration, last step.
		"iteration passed: next iteration, counts reset": {
			snap: plan.Snapshot{Name: name, State: atStep(0, iterative, counts), Parent: parent(), Canary: readyCanary(3), Analysis: goodRun},
			now:  now,
			want: plan.Decision{
				State: atStep(0, iterative, func(s *spec.State) {
					s.Iteration, s.Checks, s.LastRunAt, s.Message = 1, goodRun, now, "analysis passed (1/3)"
				}),
				Canary: plan.CanaryEnsure, CanaryReplicas: 3, RequeueAfter: time.Minute,
				Events: []spec.Event{normal("AnalysisPassed", "analysis passed (request-success-rate=99.9, request-duration=120); bluegreen iteration 1/3")},
			},
		},
		"last iteration passed: Promoting, counts reset": {
			snap: plan.Snapshot{Name: name, State: atStep(0, iterative, counts, func(s *spec.State) { s.Iteration = 2 }), Parent: parent(), Canary: readyCanary(3), Analysis: goodRun},
			now:  now,
			want: plan.Decision{
				State: atStep(0, iterative, func(s *spec.State) {
					s.Iteration, s.Checks, s.LastRunAt = 3, goodRun, now
					// A blue/green canary is at the parent's size already: all traffic moves to
					// it in the same decision.
					s.Phase, s.PromotingAt = spec.PhasePromoting, now
					s.PromoteStep, s.Weight, s.StepAt = spec.PromoteShift, 100, now
					s.Message = "promoting: all traffic to the canary"
				}),
				Canary: plan.CanaryEnsure, CanaryReplicas: 3, RequeueAfter: time.Second,
				Events: []spec.Event{
					normal("Promoting", "promoting revision newrev0001: analysis passed 3 bluegreen iterations (request-success-rate=99.9, request-duration=120)"),
					normal("TrafficShifted", "all traffic to canary web-canary (3 replicas) before the Deployment rolls"),
				},
			},
		},
		"last step passed: Promoting, counts reset": {
			snap: plan.Snapshot{Name: name, State: atStep(4, consecutive, counts), Parent: parent(), Canary: readyCanary(3), Analysis: goodRun},
			now:  now,
			want: plan.Decision{
				State: atStep(4, consecutive, func(s *spec.State) {
					s.Checks, s.LastRunAt, s.Phase, s.PromotingAt = goodRun, now, spec.PhasePromoting, now
					s.Message = "promoting: rolling out the Deployment"
				}),
				Canary: plan.CanaryKeep, CanaryReplicas: 3, Paused: ptr(false), RequeueAfter: 10*time.Minute + time.Second,
				Events: []spec.Event{normal("Promoting", "promoting revision newrev0001: analysis passed at the final weight 50% (request-success-rate=99.9, request-duration=120)")},
			},
		},
		// A reverted release's template that reaches the pods anyway (webhook bypassed) was never
		// analysed: reported, like any other.
		"Idle after a revert, the reverted template on the pods: Unanalysed": {
			snap: plan.Snapshot{Name: name, State: spec.State{Phase: spec.PhaseIdle, Revision: rev, Stable: stable}, Parent: parent(unpaused)},
			now:  now,
			want: plan.Decision{
				State: spec.State{Phase: spec.PhaseIdle, Revision: rev, Stable: stable, Unanalysed: rev, UnanalysedAt: now,
					Message: "revision newrev0001 runs without canary analysis (last analysed stable revision: stablerev1)"},
				Events: []spec.Event{warning("Unanalysed", "template revision newrev0001 reached the pods without canary analysis (the admission webhook was bypassed, down with failurePolicy Ignore, or excludes this namespace); the last analysed stable revision is stablerev1. Re-apply through the webhook or set the template back")},
			},
		},
		// inconclusiveLimit 1: the first run without data rolls back.
		"inconclusiveLimit 1: the first inconclusive run rolls back": {
			snap: plan.Snapshot{Name: name, State: atStep(0, limits(1, 0)), Parent: parent(), Canary: readyCanary(1),
				Analysis: []spec.CheckResult{noData(spec.CheckSuccessRate), pass(spec.CheckDuration, 100)}},
			now: now,
			want: plan.Decision{
				State: atStep(0, limits(1, 0), func(s *spec.State) {
					s.Inconclusive, s.LastRunAt = 1, now
					s.Checks = []spec.CheckResult{noData(spec.CheckSuccessRate), pass(spec.CheckDuration, 100)}
					s.Phase = spec.PhaseRollingBack
					s.AbortReason = "1 inconclusive analysis runs reached the limit of 1"
					s.Message = "rolling back: 1 inconclusive analysis runs reached the limit of 1"
				}),
				CanaryReplicas: 1, RequeueAfter: 2 * time.Second,
				Events: []spec.Event{
					warning("Inconclusive", "analysis inconclusive (1 of 1 allowed) at weight 10%: request-success-rate: no data"),
					warning("RollingBack", "rolling back revision newrev0001: 1 inconclusive analysis runs reached the limit of 1"),
				},
			},
		},
		// A parent rolled out, but not to the release's revision (its template changed under
		// the promotion), is not a success of this release.
		"rolled out to another revision: not Succeeded": {
			snap: plan.Snapshot{Name: name, State: atStep(4, promoting), Parent: parent(rolledOut, func(w *plan.Workload) { w.Revision = "otherrev01" })},
			now:  promotingAt.Add(time.Minute),
			want: plan.Decision{
				State:  atStep(4, promoting, func(s *spec.State) { s.Message = "promoting: rolling out the Deployment" }),
				Paused: ptr(false), RequeueAfter: 9*time.Minute + time.Second,
			},
		},
	}
	run(t, tests)
}
