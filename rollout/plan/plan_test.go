package plan_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/sluice-dev/sluice/providers/catalogtest"
	"github.com/sluice-dev/sluice/rollout/plan"
	"github.com/sluice-dev/sluice/rollout/spec"
)

const (
	name   = "web"
	canary = "web-canary"
	rev    = "newrev0001"
	stable = "stablerev1"
	image  = "app=ghcr.io/x/app:v2"
)

// t0 is when the release was held; the canary reached its current step at t0+1m.
var (
	t0     = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	stepAt = t0.Add(time.Minute)
)

func ptr[T any](v T) *T { return &v }

// config is the default configuration (steps 10..50, interval 1m, threshold 5, deadline 10m).
func config(mods ...func(*spec.Config)) *spec.Config {
	c, errs := spec.Parse(nil, catalogtest.Defaults())
	if len(errs) > 0 {
		panic(spec.FormatErrors(errs))
	}
	for _, m := range mods {
		m(&c)
	}
	return &c
}

// held is the state the webhook writes when it holds a new template.
func held(mods ...func(*spec.State)) spec.State {
	st := spec.State{
		Phase: spec.PhaseProgressing, Revision: rev, Stable: stable, Image: image,
		StartedAt: t0, Plan: config(), Message: "held for canary analysis",
	}
	for _, m := range mods {
		m(&st)
	}
	return st
}

// atStep is a progressing release whose canary is ready at steps[step], last analysed at
// LastRunAt (the step's start unless changed).
func atStep(step int, mods ...func(*spec.State)) spec.State {
	return held(append([]func(*spec.State){func(s *spec.State) {
		s.Step, s.Weight = step, s.Plan.Steps[step]
		s.CanaryReady, s.StepAt, s.LastRunAt = true, stepAt, stepAt
		s.Message = "analysis passed"
	}}, mods...)...)
}

func phase(p spec.Phase) func(*spec.State) { return func(s *spec.State) { s.Phase = p } }

// parent is the held parent: paused, 3 replicas, all on the stable ReplicaSet.
func parent(mods ...func(*plan.Workload)) plan.Workload {
	w := plan.Workload{
		Revision: rev, Paused: true, Generation: 2, ObservedGeneration: 2,
		Replicas: 3, StatusReplicas: 3, UpdatedReplicas: 0, AvailableReplicas: 3,
	}
	for _, m := range mods {
		m(&w)
	}
	return w
}

func unpaused(w *plan.Workload) { w.Paused = false }

// rolledOut is a promoted parent whose rolling update has finished.
func rolledOut(w *plan.Workload) {
	w.Paused, w.Generation, w.ObservedGeneration, w.UpdatedReplicas = false, 3, 3, 3
}

// readyCanary is a canary of rev, ready with n replicas.
func readyCanary(n int32) *plan.Workload {
	return &plan.Workload{Revision: rev, Generation: 1, ObservedGeneration: 1, Replicas: n, StatusReplicas: n, UpdatedReplicas: n, AvailableReplicas: n}
}

// startingCanary is a canary of rev with n replicas, none available yet.
func startingCanary(n int32) *plan.Workload {
	return &plan.Workload{Revision: rev, Generation: 1, ObservedGeneration: 1, Replicas: n, StatusReplicas: n, UpdatedReplicas: n}
}

func pass(name string, v float64) spec.CheckResult {
	return spec.CheckResult{Name: name, Value: &v, Verdict: spec.VerdictPass, Reason: "within"}
}

func fail(name string, v float64) spec.CheckResult {
	bound := map[string]string{spec.CheckSuccessRate: "[99, +inf]", spec.CheckDuration: "[-inf, 500]"}[name]
	if bound == "" {
		bound = "[-inf, 1]"
	}
	return spec.CheckResult{Name: name, Value: &v, Verdict: spec.VerdictFail, Reason: fmt.Sprintf("%g outside %s", v, bound)}
}

func abort(name string, v float64) spec.CheckResult {
	return spec.CheckResult{Name: name, Value: &v, Verdict: spec.VerdictAbort, Reason: "42 outside abort range [80, +inf]"}
}

func noData(name string) spec.CheckResult {
	return spec.CheckResult{Name: name, Verdict: spec.VerdictInconclusive, Reason: "no data"}
}

func queryError(name string) spec.CheckResult {
	return spec.CheckResult{Name: name, Verdict: spec.VerdictError, Reason: "backend unreachable"}
}

func dryRun(r spec.CheckResult) spec.CheckResult { r.DryRun = true; return r }

var (
	goodRun = []spec.CheckResult{pass(spec.CheckSuccessRate, 99.9), pass(spec.CheckDuration, 120)}
	badRun  = []spec.CheckResult{fail(spec.CheckSuccessRate, 95), pass(spec.CheckDuration, 120)}
)

func normal(reason spec.Reason, msg string) spec.Event {
	return spec.Event{Type: corev1.EventTypeNormal, Reason: reason, Message: msg}
}
func warning(reason spec.Reason, msg string) spec.Event {
	return spec.Event{Type: corev1.EventTypeWarning, Reason: reason, Message: msg}
}

func TestPlanProgressing(t *testing.T) {
	now := stepAt.Add(time.Minute) // one interval after the step started: a run is due
	tests := map[string]struct {
		snap plan.Snapshot
		now  time.Time
		want plan.Decision
	}{
		"first entry sets the first weight and ensures the canary": {
			snap: plan.Snapshot{Name: name, State: held(), Parent: parent()},
			now:  t0.Add(time.Second),
			want: plan.Decision{
				State: held(func(s *spec.State) {
					s.Step, s.Weight, s.StepAt = 0, 10, t0.Add(time.Second)
					s.Message = "waiting for canary web-canary to be ready (1 replicas at weight 10%)"
				}),
				Canary: plan.CanaryEnsure, CanaryReplicas: 1, RequeueAfter: 10*time.Minute + time.Second,
			},
		},
		"first entry with explicit steps and more replicas": {
			snap: plan.Snapshot{Name: name, State: held(func(s *spec.State) { s.Plan = config(func(c *spec.Config) { c.Steps = []int{25, 50} }) }),
				Parent: parent(func(w *plan.Workload) { w.Replicas = 10 })},
			now: t0,
			want: plan.Decision{
				State: held(func(s *spec.State) {
					s.Plan = config(func(c *spec.Config) { c.Steps = []int{25, 50} })
					s.Step, s.Weight, s.StepAt = 0, 25, t0
					s.Message = "waiting for canary web-canary to be ready (4 replicas at weight 25%)"
				}),
				Canary: plan.CanaryEnsure, CanaryReplicas: 4, RequeueAfter: 10*time.Minute + time.Second,
			},
		},
		"an unpaused parent is held again": {
			snap: plan.Snapshot{Name: name, State: held(), Parent: parent(unpaused)},
			now:  t0,
			want: plan.Decision{
				State: held(func(s *spec.State) {
					s.Weight, s.StepAt = 10, t0
					s.Message = "waiting for canary web-canary to be ready (1 replicas at weight 10%)"
				}),
				Canary: plan.CanaryEnsure, CanaryReplicas: 1, Paused: ptr(true), RequeueAfter: 10*time.Minute + time.Second,
			},
		},
		"canary not ready: wait": {
			snap: plan.Snapshot{Name: name, State: atStep(0, func(s *spec.State) { s.CanaryReady = false }), Parent: parent(), Canary: startingCanary(1)},
			now:  stepAt.Add(5 * time.Minute),
			want: plan.Decision{
				State: atStep(0, func(s *spec.State) {
					s.CanaryReady = false
					s.Message = "waiting for canary web-canary to be ready (1 replicas at weight 10%)"
				}),
				Canary: plan.CanaryEnsure, CanaryReplicas: 1, RequeueAfter: 5*time.Minute + time.Second,
			},
		},
		"canary at another revision is not ready": {
			snap: plan.Snapshot{Name: name, State: atStep(0, func(s *spec.State) { s.CanaryReady = false }), Parent: parent(),
				Canary: func() *plan.Workload { c := readyCanary(1); c.Revision = "otherrev01"; return c }()},
			now: stepAt.Add(time.Second),
			want: plan.Decision{
				State: atStep(0, func(s *spec.State) {
					s.CanaryReady = false
					s.Message = "waiting for canary web-canary to be ready (1 replicas at weight 10%)"
				}),
				Canary: plan.CanaryEnsure, CanaryReplicas: 1, RequeueAfter: 10 * time.Minute,
			},
		},
		"canary not scaled to the step yet is not ready (generation not observed)": {
			snap: plan.Snapshot{Name: name, State: atStep(2), Parent: parent(),
				Canary: func() *plan.Workload { c := readyCanary(2); c.Generation = 2; return c }()},
			now: now,
			want: plan.Decision{
				State: atStep(2, func(s *spec.State) {
					s.Message = "waiting for canary web-canary to be ready (2 replicas at weight 30%)"
				}),
				Canary: plan.CanaryEnsure, CanaryReplicas: 2, RequeueAfter: 9*time.Minute + time.Second,
			},
		},
		"canary not ready close to the deadline: look again at the deadline": {
			snap: plan.Snapshot{Name: name, State: atStep(0, func(s *spec.State) { s.CanaryReady = false }), Parent: parent(), Canary: startingCanary(1)},
			now:  stepAt.Add(10*time.Minute - 500*time.Millisecond),
			want: plan.Decision{
				State: atStep(0, func(s *spec.State) {
					s.CanaryReady = false
					s.Message = "waiting for canary web-canary to be ready (1 replicas at weight 10%)"
				}),
				Canary: plan.CanaryEnsure, CanaryReplicas: 1, RequeueAfter: 1500 * time.Millisecond,
			},
		},
		"canary not ready past the progress deadline: roll back": {
			snap: plan.Snapshot{Name: name, State: atStep(0, func(s *spec.State) { s.CanaryReady = false }), Parent: parent(), Canary: startingCanary(1)},
			now:  stepAt.Add(10*time.Minute + time.Second),
			want: plan.Decision{
				State: atStep(0, func(s *spec.State) {
					s.CanaryReady = false
					s.Phase = spec.PhaseRollingBack
					s.AbortReason = "canary not ready within the progress deadline of 10m0s"
					s.Message = "rolling back: canary not ready within the progress deadline of 10m0s"
				}),
				CanaryReplicas: 1, RequeueAfter: 2 * time.Second,
				Events: []spec.Event{warning("RollingBack", "rolling back revision newrev0001: canary not ready within the progress deadline of 10m0s")},
			},
		},
		"canary ready for the first time: CanaryReady, first run one interval later": {
			snap: plan.Snapshot{Name: name, State: atStep(0, func(s *spec.State) { s.CanaryReady, s.LastRunAt = false, time.Time{} }), Parent: parent(), Canary: readyCanary(1)},
			now:  stepAt.Add(20 * time.Second),
			want: plan.Decision{
				State: atStep(0, func(s *spec.State) {
					s.LastRunAt = stepAt.Add(20 * time.Second)
					s.Message = "canary ready at weight 10%; first analysis in 1m0s"
				}),
				Canary: plan.CanaryEnsure, CanaryReplicas: 1, RequeueAfter: time.Minute,
				Events: []spec.Event{normal("CanaryReady", "canary web-canary ready with 1 replicas at weight 10%")},
			},
		},
		"ready, next run not due: wait for it": {
			snap: plan.Snapshot{Name: name, State: atStep(0), Parent: parent(), Canary: readyCanary(1)},
			now:  stepAt.Add(20 * time.Second),
			want: plan.Decision{State: atStep(0), Canary: plan.CanaryEnsure, CanaryReplicas: 1, RequeueAfter: 40 * time.Second},
		},
		"ready, looked at just before the run is due: ask for the run on time, not a poll later": {
			snap: plan.Snapshot{Name: name, State: atStep(0), Parent: parent(), Canary: readyCanary(1)},
			now:  stepAt.Add(time.Minute - 300*time.Millisecond),
			want: plan.Decision{State: atStep(0), Canary: plan.CanaryEnsure, CanaryReplicas: 1, RequeueAfter: 300 * time.Millisecond},
		},
		"ready, run overdue but none ran: look again in a second": {
			snap: plan.Snapshot{Name: name, State: atStep(0), Parent: parent(), Canary: readyCanary(1)},
			now:  stepAt.Add(5 * time.Minute),
			want: plan.Decision{State: atStep(0), Canary: plan.CanaryEnsure, CanaryReplicas: 1, RequeueAfter: time.Second},
		},
		"analysis passed: next weight, WeightAdvanced": {
			snap: plan.Snapshot{Name: name, State: atStep(1, func(s *spec.State) { s.Inconclusive, s.FailedChecks = 1, 1 }),
				Parent: parent(), Canary: readyCanary(1), Analysis: goodRun},
			now: now,
			want: plan.Decision{
				State: atStep(2, func(s *spec.State) {
					s.FailedChecks = 1
					s.Checks, s.LastRunAt, s.StepAt = goodRun, now, now
					s.Message = "analysis passed; weight 30%"
				}),
				Canary: plan.CanaryEnsure, CanaryReplicas: 2, RequeueAfter: time.Minute,
				Events: []spec.Event{normal("WeightAdvanced",
					"analysis passed (request-success-rate=99.9, request-duration=120); advancing canary weight to 30% (2 replicas)")},
			},
		},
		"analysis passed at the last step: Promoting, parent unpaused": {
			snap: plan.Snapshot{Name: name, State: atStep(4), Parent: parent(), Canary: readyCanary(3), Analysis: goodRun},
			now:  now,
			want: plan.Decision{
				State: atStep(4, func(s *spec.State) {
					s.Phase, s.PromotingAt = spec.PhasePromoting, now
					s.Checks, s.LastRunAt = goodRun, now
					// The promotion's first step in the same decision: the parent released, and
					// nothing to wait for but its rolling update, which a watch reports.
					s.Message = "promoting: rolling out the Deployment"
				}),
				Canary: plan.CanaryKeep, CanaryReplicas: 3, Paused: ptr(false), RequeueAfter: 10*time.Minute + time.Second,
				Events: []spec.Event{normal("Promoting",
					"promoting revision newrev0001: analysis passed at the final weight 50% (request-success-rate=99.9, request-duration=120)")},
			},
		},
		"failed run: FailedChecks++, CheckFailed, same weight": {
			snap: plan.Snapshot{Name: name, State: atStep(1, func(s *spec.State) { s.FailedChecks, s.Inconclusive = 1, 2 }),
				Parent: parent(), Canary: readyCanary(1), Analysis: badRun},
			now: now,
			want: plan.Decision{
				State: atStep(1, func(s *spec.State) {
					s.FailedChecks, s.Checks, s.LastRunAt = 2, badRun, now
					s.Message = "analysis failed (2/5) at weight 20%: request-success-rate: 95 outside [99, +inf]"
				}),
				Canary: plan.CanaryEnsure, CanaryReplicas: 1, RequeueAfter: time.Minute,
				Events: []spec.Event{warning("CheckFailed", "analysis failed (2/5) at weight 20%: request-success-rate: 95 outside [99, +inf]")},
			},
		},
		"query error counts as a failed run and says why": {
			snap: plan.Snapshot{Name: name, State: atStep(0), Parent: parent(), Canary: readyCanary(1),
				Analysis: []spec.CheckResult{pass(spec.CheckSuccessRate, 100), queryError(spec.CheckDuration)}},
			now: now,
			want: plan.Decision{
				State: atStep(0, func(s *spec.State) {
					s.FailedChecks, s.LastRunAt = 1, now
					s.Checks = []spec.CheckResult{pass(spec.CheckSuccessRate, 100), queryError(spec.CheckDuration)}
					s.Message = "analysis failed (1/5) at weight 10%: request-duration: backend unreachable"
				}),
				Canary: plan.CanaryEnsure, CanaryReplicas: 1, RequeueAfter: time.Minute,
				Events: []spec.Event{warning("CheckFailed", "analysis failed (1/5) at weight 10%: request-duration: backend unreachable")},
			},
		},
		"failed run reaching the threshold: RollingBack": {
			snap: plan.Snapshot{Name: name, State: atStep(1, func(s *spec.State) { s.FailedChecks = 4 }), Parent: parent(), Canary: readyCanary(1), Analysis: badRun},
			now:  now,
			want: plan.Decision{
				State: atStep(1, func(s *spec.State) {
					s.FailedChecks, s.Checks, s.LastRunAt = 5, badRun, now
					s.Phase = spec.PhaseRollingBack
					s.AbortReason = "5 failed analysis runs reached the threshold of 5"
					s.Message = "rolling back: 5 failed analysis runs reached the threshold of 5"
				}),
				CanaryReplicas: 1, RequeueAfter: 2 * time.Second,
				Events: []spec.Event{
					warning("CheckFailed", "analysis failed (5/5) at weight 20%: request-success-rate: 95 outside [99, +inf]"),
					warning("RollingBack", "rolling back revision newrev0001: 5 failed analysis runs reached the threshold of 5"),
				},
			},
		},
		"threshold 1: the first failed run rolls back": {
			snap: plan.Snapshot{Name: name, State: atStep(0, func(s *spec.State) { s.Plan = config(func(c *spec.Config) { c.Threshold = 1 }) }),
				Parent: parent(), Canary: readyCanary(1), Analysis: badRun},
			now: now,
			want: plan.Decision{
				State: atStep(0, func(s *spec.State) {
					s.Plan = config(func(c *spec.Config) { c.Threshold = 1 })
					s.FailedChecks, s.Checks, s.LastRunAt = 1, badRun, now
					s.Phase = spec.PhaseRollingBack
					s.AbortReason = "1 failed analysis runs reached the threshold of 1"
					s.Message = "rolling back: 1 failed analysis runs reached the threshold of 1"
				}),
				CanaryReplicas: 1, RequeueAfter: 2 * time.Second,
				Events: []spec.Event{
					warning("CheckFailed", "analysis failed (1/1) at weight 10%: request-success-rate: 95 outside [99, +inf]"),
					warning("RollingBack", "rolling back revision newrev0001: 1 failed analysis runs reached the threshold of 1"),
				},
			},
		},
		"abort verdict: RollingBack at once, not counted as a failed run": {
			snap: plan.Snapshot{Name: name, State: atStep(2), Parent: parent(), Canary: readyCanary(2),
				Analysis: []spec.CheckResult{abort(spec.CheckSuccessRate, 42), fail(spec.CheckDuration, 900)}},
			now: now,
			want: plan.Decision{
				State: atStep(2, func(s *spec.State) {
					s.Checks, s.LastRunAt = []spec.CheckResult{abort(spec.CheckSuccessRate, 42), fail(spec.CheckDuration, 900)}, now
					s.Phase = spec.PhaseRollingBack
					s.AbortReason = "abort range breached: request-success-rate: 42 outside abort range [80, +inf]"
					s.Message = "rolling back: abort range breached: request-success-rate: 42 outside abort range [80, +inf]"
				}),
				CanaryReplicas: 2, RequeueAfter: 2 * time.Second,
				Events: []spec.Event{warning("RollingBack",
					"rolling back revision newrev0001: abort range breached: request-success-rate: 42 outside abort range [80, +inf]")},
			},
		},
		"inconclusive run waits with an Inconclusive event": {
			snap: plan.Snapshot{Name: name, State: atStep(0), Parent: parent(), Canary: readyCanary(1),
				Analysis: []spec.CheckResult{noData(spec.CheckSuccessRate), pass(spec.CheckDuration, 100)}},
			now: now,
			want: plan.Decision{
				State: atStep(0, func(s *spec.State) {
					s.Inconclusive, s.LastRunAt = 1, now
					s.Checks = []spec.CheckResult{noData(spec.CheckSuccessRate), pass(spec.CheckDuration, 100)}
					s.Message = "analysis inconclusive (1 of 10 allowed) at weight 10%: request-success-rate: no data; waiting (kubectl sluice promote or abort to decide sooner)"
				}),
				Canary: plan.CanaryEnsure, CanaryReplicas: 1, RequeueAfter: time.Minute,
				Events: []spec.Event{warning("Inconclusive",
					"analysis inconclusive (1 of 10 allowed) at weight 10%: request-success-rate: no data; waiting (kubectl sluice promote or abort to decide sooner)")},
			},
		},
		"inconclusive run below the inconclusiveLimit": {
			snap: plan.Snapshot{Name: name, State: atStep(0, limits(3, 0), func(s *spec.State) { s.Inconclusive = 1 }), Parent: parent(), Canary: readyCanary(1),
				Analysis: []spec.CheckResult{noData(spec.CheckSuccessRate), pass(spec.CheckDuration, 100)}},
			now: now,
			want: plan.Decision{
				State: atStep(0, limits(3, 0), func(s *spec.State) {
					s.Inconclusive, s.LastRunAt = 2, now
					s.Checks = []spec.CheckResult{noData(spec.CheckSuccessRate), pass(spec.CheckDuration, 100)}
					s.Message = "analysis inconclusive (2 of 3 allowed) at weight 10%: request-success-rate: no data; waiting (kubectl sluice promote or abort to decide sooner)"
				}),
				Canary: plan.CanaryEnsure, CanaryReplicas: 1, RequeueAfter: time.Minute,
				Events: []spec.Event{warning("Inconclusive", "analysis inconclusive (2 of 3 allowed) at weight 10%: request-success-rate: no data; waiting (kubectl sluice promote or abort to decide sooner)")},
			},
		},
		"inconclusive run reaching the inconclusiveLimit: RollingBack": {
			snap: plan.Snapshot{Name: name, State: atStep(0, limits(3, 0), func(s *spec.State) { s.Inconclusive = 2 }), Parent: parent(), Canary: readyCanary(1),
				Analysis: []spec.CheckResult{noData(spec.CheckSuccessRate), pass(spec.CheckDuration, 100)}},
			now: now,
			want: plan.Decision{
				State: atStep(0, limits(3, 0), func(s *spec.State) {
					s.Inconclusive, s.LastRunAt = 3, now
					s.Checks = []spec.CheckResult{noData(spec.CheckSuccessRate), pass(spec.CheckDuration, 100)}
					s.Phase = spec.PhaseRollingBack
					s.AbortReason = "3 inconclusive analysis runs reached the limit of 3"
					s.Message = "rolling back: 3 inconclusive analysis runs reached the limit of 3"
				}),
				CanaryReplicas: 1, RequeueAfter: 2 * time.Second,
				Events: []spec.Event{
					warning("Inconclusive", "analysis inconclusive (3 of 3 allowed) at weight 10%: request-success-rate: no data"),
					warning("RollingBack", "rolling back revision newrev0001: 3 inconclusive analysis runs reached the limit of 3"),
				},
			},
		},
		"the smallest inconclusiveLimit of the inconclusive checks applies": {
			snap: plan.Snapshot{Name: name, State: atStep(0, limits(5, 2), func(s *spec.State) { s.Inconclusive = 1 }), Parent: parent(), Canary: readyCanary(1),
				Analysis: []spec.CheckResult{noData(spec.CheckSuccessRate), noData(spec.CheckDuration)}},
			now: now,
			want: plan.Decision{
				State: atStep(0, limits(5, 2), func(s *spec.State) {
					s.Inconclusive, s.LastRunAt = 2, now
					s.Checks = []spec.CheckResult{noData(spec.CheckSuccessRate), noData(spec.CheckDuration)}
					s.Phase = spec.PhaseRollingBack
					s.AbortReason = "2 inconclusive analysis runs reached the limit of 2"
					s.Message = "rolling back: 2 inconclusive analysis runs reached the limit of 2"
				}),
				CanaryReplicas: 1, RequeueAfter: 2 * time.Second,
				Events: []spec.Event{
					warning("Inconclusive", "analysis inconclusive (2 of 2 allowed) at weight 10%: request-success-rate: no data; request-duration: no data"),
					warning("RollingBack", "rolling back revision newrev0001: 2 inconclusive analysis runs reached the limit of 2"),
				},
			},
		},
		"a check without a limit reaching the default limit: RollingBack": {
			snap: plan.Snapshot{Name: name, State: atStep(0, func(s *spec.State) { s.Inconclusive = 9 }), Parent: parent(), Canary: readyCanary(1),
				Analysis: []spec.CheckResult{noData(spec.CheckSuccessRate), pass(spec.CheckDuration, 1)}},
			now: now,
			want: plan.Decision{
				State: atStep(0, func(s *spec.State) {
					s.Inconclusive, s.LastRunAt = 10, now
					s.Checks = []spec.CheckResult{noData(spec.CheckSuccessRate), pass(spec.CheckDuration, 1)}
					s.Phase, s.AbortReason = spec.PhaseRollingBack, "10 inconclusive analysis runs reached the limit of 10"
					s.Message = "rolling back: 10 inconclusive analysis runs reached the limit of 10"
				}),
				CanaryReplicas: 1, RequeueAfter: 2 * time.Second,
				Events: []spec.Event{
					warning("Inconclusive", "analysis inconclusive (10 of 10 allowed) at weight 10%: request-success-rate: no data"),
					warning("RollingBack", "rolling back revision newrev0001: 10 inconclusive analysis runs reached the limit of 10"),
				},
			},
		},
		"a check without a limit has the default limit, even next to one with a smaller limit that has data": {
			snap: plan.Snapshot{Name: name, State: atStep(0, limits(0, 1), func(s *spec.State) { s.Inconclusive = 7 }), Parent: parent(), Canary: readyCanary(1),
				Analysis: []spec.CheckResult{noData(spec.CheckSuccessRate), pass(spec.CheckDuration, 1)}},
			now: now,
			want: plan.Decision{
				State: atStep(0, limits(0, 1), func(s *spec.State) {
					s.Inconclusive, s.LastRunAt = 8, now
					s.Checks = []spec.CheckResult{noData(spec.CheckSuccessRate), pass(spec.CheckDuration, 1)}
					s.Message = "analysis inconclusive (8 of 10 allowed) at weight 10%: request-success-rate: no data; waiting (kubectl sluice promote or abort to decide sooner)"
				}),
				Canary: plan.CanaryEnsure, CanaryReplicas: 1, RequeueAfter: time.Minute,
				Events: []spec.Event{warning("Inconclusive",
					"analysis inconclusive (8 of 10 allowed) at weight 10%: request-success-rate: no data; waiting (kubectl sluice promote or abort to decide sooner)")},
			},
		},
		"a failure in the same run wins over inconclusive and resets the inconclusive count": {
			snap: plan.Snapshot{Name: name, State: atStep(0, func(s *spec.State) { s.Inconclusive = 3 }), Parent: parent(), Canary: readyCanary(1),
				Analysis: []spec.CheckResult{noData(spec.CheckSuccessRate), fail(spec.CheckDuration, 900)}},
			now: now,
			want: plan.Decision{
				State: atStep(0, func(s *spec.State) {
					s.FailedChecks, s.LastRunAt = 1, now
					s.Checks = []spec.CheckResult{noData(spec.CheckSuccessRate), fail(spec.CheckDuration, 900)}
					s.Message = "analysis failed (1/5) at weight 10%: request-duration: 900 outside [-inf, 500]"
				}),
				Canary: plan.CanaryEnsure, CanaryReplicas: 1, RequeueAfter: time.Minute,
				Events: []spec.Event{warning("CheckFailed", "analysis failed (1/5) at weight 10%: request-duration: 900 outside [-inf, 500]")},
			},
		},
		"dry-run failures, aborts and no data are ignored": {
			snap: plan.Snapshot{Name: name, State: atStep(0), Parent: parent(), Canary: readyCanary(1),
				Analysis: []spec.CheckResult{pass(spec.CheckSuccessRate, 99.5), dryRun(fail("errors", 5)), dryRun(abort("panics", 1)), dryRun(noData("new"))}},
			now: now,
			want: plan.Decision{
				State: atStep(1, func(s *spec.State) {
					s.Checks = []spec.CheckResult{pass(spec.CheckSuccessRate, 99.5), dryRun(fail("errors", 5)), dryRun(abort("panics", 1)), dryRun(noData("new"))}
					s.LastRunAt, s.StepAt = now, now
					s.Message = "analysis passed; weight 20%"
				}),
				Canary: plan.CanaryEnsure, CanaryReplicas: 1, RequeueAfter: time.Minute,
				Events: []spec.Event{normal("WeightAdvanced",
					"analysis passed (request-success-rate=99.5, errors=5, panics=1, new=no data); advancing canary weight to 20% (1 replicas)")},
			},
		},
		"abort control: RollingBack, control cleared": {
			snap: plan.Snapshot{Name: name, State: atStep(1), Parent: parent(), Canary: readyCanary(1), Controls: plan.Controls{Abort: rev, Pause: rev, Promote: rev}},
			now:  now,
			want: plan.Decision{
				State: atStep(1, func(s *spec.State) {
					s.Phase, s.AbortReason = spec.PhaseRollingBack, "aborted by sluice.dev/abort"
					s.Message = "rolling back: aborted by sluice.dev/abort"
				}),
				Clear: []string{spec.AnnAbort}, RequeueAfter: 2 * time.Second,
				Events: []spec.Event{warning("RollingBack", "rolling back revision newrev0001: aborted by sluice.dev/abort")},
			},
		},
		"abort reason from the webhook (revert): RollingBack": {
			snap: plan.Snapshot{Name: name, State: atStep(1, reverted), Parent: parent(func(w *plan.Workload) { w.Revision = stable }), Canary: readyCanary(1)},
			now:  now,
			want: plan.Decision{
				State: atStep(1, reverted, func(s *spec.State) {
					s.Phase = spec.PhaseRollingBack
					s.Message = "rolling back: template set back to the stable revision stablerev1"
				}),
				RequeueAfter: 2 * time.Second,
				Events:       []spec.Event{warning("RollingBack", "rolling back revision newrev0001: template set back to the stable revision stablerev1")},
			},
		},
		"parent template no longer the release's: RollingBack": {
			snap: plan.Snapshot{Name: name, State: atStep(1), Parent: parent(func(w *plan.Workload) { w.Revision = "otherrev01" }), Canary: readyCanary(1)},
			now:  now,
			want: plan.Decision{
				State: atStep(1, func(s *spec.State) {
					s.Phase = spec.PhaseRollingBack
					s.AbortReason = "the Deployment's template (otherrev01) no longer matches release newrev0001"
					s.Message = "rolling back: the Deployment's template (otherrev01) no longer matches release newrev0001"
				}),
				RequeueAfter: 2 * time.Second,
				Events:       []spec.Event{warning("RollingBack", "rolling back revision newrev0001: the Deployment's template (otherrev01) no longer matches release newrev0001")},
			},
		},
		"pause control: Paused": {
			snap: plan.Snapshot{Name: name, State: atStep(1), Parent: parent(), Canary: readyCanary(1), Controls: plan.Controls{Pause: rev, Promote: rev}, Analysis: badRun},
			now:  now,
			want: plan.Decision{
				State: atStep(1, func(s *spec.State) {
					s.Phase, s.PausedFrom, s.Message = spec.PhasePaused, spec.PhaseProgressing, "paused by sluice.dev/pause"
				}),
				Events: []spec.Event{normal("Paused", "release newrev0001 paused at weight 20% by sluice.dev/pause")},
			},
		},
		"promote approval naming the release: Promoting": {
			snap: plan.Snapshot{Name: name, State: atStep(1), Parent: parent(), Canary: readyCanary(1), Controls: plan.Controls{Promote: rev}, Analysis: badRun},
			now:  now,
			want: plan.Decision{
				State: atStep(1, func(s *spec.State) {
					s.Phase, s.PromotingAt, s.Message = spec.PhasePromoting, now, "promoting: rolling out the Deployment"
				}),
				Paused: ptr(false), Clear: []string{spec.AnnPromote}, RequeueAfter: 10*time.Minute + time.Second,
				Events: []spec.Event{normal("Promoting", "promoting revision newrev0001: promoted by sluice.dev/promote")},
			},
		},
		"promote naming the release approves it before any analysis": {
			snap: plan.Snapshot{Name: name, State: atStep(0, func(s *spec.State) { s.CanaryReady = false }), Parent: parent(), Canary: startingCanary(1), Controls: plan.Controls{Promote: rev}},
			now:  now,
			want: plan.Decision{
				State: atStep(0, func(s *spec.State) {
					s.CanaryReady = false
					s.Phase, s.PromotingAt, s.Message = spec.PhasePromoting, now, "promoting: rolling out the Deployment"
				}),
				Paused: ptr(false), Clear: []string{spec.AnnPromote}, RequeueAfter: 10*time.Minute + time.Second,
				Events: []spec.Event{normal("Promoting", "promoting revision newrev0001: promoted by sluice.dev/promote")},
			},
		},
		"a bare promote true (written past the webhook) approves nothing: cleared, the release goes on": {
			snap: plan.Snapshot{Name: name, State: atStep(1), Parent: parent(), Canary: readyCanary(1), Controls: plan.Controls{Promote: "true", Abort: "true", Pause: "true"}, Analysis: goodRun},
			now:  now,
			want: plan.Decision{
				State: atStep(2, func(s *spec.State) {
					s.Checks, s.LastRunAt, s.StepAt = goodRun, now, now
					s.Message = "analysis passed; weight 30%"
				}),
				Canary: plan.CanaryEnsure, CanaryReplicas: 2, RequeueAfter: time.Minute,
				Clear: []string{spec.AnnPromote, spec.AnnAbort, spec.AnnPause}, Stale: []string{spec.AnnPromote, spec.AnnAbort, spec.AnnPause},
				Events: []spec.Event{
					warning("StaleControl", "sluice.dev/promote=true cleared: this release is revision newrev0001; a control acts only on the revision it names"),
					warning("StaleControl", "sluice.dev/abort=true cleared: this release is revision newrev0001; a control acts only on the revision it names"),
					warning("StaleControl", "sluice.dev/pause=true cleared: this release is revision newrev0001; a control acts only on the revision it names"),
					normal("WeightAdvanced", "analysis passed (request-success-rate=99.9, request-duration=120); advancing canary weight to 30% (2 replicas)"),
				},
			},
		},
		"stale approval (another revision): ignored, cleared, release goes on": {
			snap: plan.Snapshot{Name: name, State: atStep(1), Parent: parent(), Canary: readyCanary(1), Controls: plan.Controls{Promote: "oldrev0001"}, Analysis: goodRun},
			now:  now,
			want: plan.Decision{
				State: atStep(2, func(s *spec.State) {
					s.Checks, s.LastRunAt, s.StepAt = goodRun, now, now
					s.Message = "analysis passed; weight 30%"
				}),
				Canary: plan.CanaryEnsure, CanaryReplicas: 2, Clear: []string{spec.AnnPromote}, Stale: []string{spec.AnnPromote}, RequeueAfter: time.Minute,
				Events: []spec.Event{
					warning("StaleControl", "sluice.dev/promote=oldrev0001 cleared: this release is revision newrev0001; a control acts only on the revision it names"),
					normal("WeightAdvanced", "analysis passed (request-success-rate=99.9, request-duration=120); advancing canary weight to 30% (2 replicas)"),
				},
			},
		},
		"release without a plan: Failed, canary removed": {
			snap: plan.Snapshot{Name: name, State: atStep(1, func(s *spec.State) { s.Plan = nil }), Parent: parent(), Canary: readyCanary(1)},
			now:  now,
			want: plan.Decision{
				State: atStep(1, func(s *spec.State) {
					s.Plan, s.Phase = nil, spec.PhaseFailed
					s.Message = "release state has no plan; re-apply the Deployment to start a new release"
				}),
				Canary: plan.CanaryDelete,
				Events: []spec.Event{warning("InvalidState", "release state has no plan; re-apply the Deployment to start a new release")},
			},
		},
	}
	run(t, tests)
}

// limits sets the inconclusiveLimit of the two default checks.
func limits(successRate, duration int) func(*spec.State) {
	return func(s *spec.State) {
		s.Plan = config(func(c *spec.Config) {
			c.Metrics[0].InconclusiveLimit, c.Metrics[1].InconclusiveLimit = successRate, duration
		})
	}
}

// reverted is what the webhook records when the template goes back to the stable one.
func reverted(s *spec.State) {
	s.Revert, s.AbortReason = true, "template set back to the stable revision stablerev1"
}

func TestPlanPaused(t *testing.T) {
	now := stepAt.Add(30 * time.Minute)
	paused := func(s *spec.State) {
		s.Phase, s.PausedFrom, s.Message = spec.PhasePaused, spec.PhaseProgressing, "paused by sluice.dev/pause"
	}
	tests := map[string]struct {
		snap plan.Snapshot
		now  time.Time
		want plan.Decision
	}{
		"stays paused while the annotation is set": {
			snap: plan.Snapshot{Name: name, State: atStep(1, paused), Parent: parent(), Canary: readyCanary(1), Controls: plan.Controls{Pause: rev, Promote: rev}},
			now:  now,
			want: plan.Decision{State: atStep(1, paused)},
		},
		"an unpaused parent is held again": {
			snap: plan.Snapshot{Name: name, State: atStep(1, paused), Parent: parent(unpaused), Canary: readyCanary(1), Controls: plan.Controls{Pause: rev}},
			now:  now,
			want: plan.Decision{State: atStep(1, paused), Paused: ptr(true)},
		},
		"pause removed: Resumed with a fresh interval and deadline": {
			snap: plan.Snapshot{Name: name, State: atStep(1, paused), Parent: parent(), Canary: readyCanary(1)},
			now:  now,
			want: plan.Decision{
				State: atStep(1, func(s *spec.State) {
					s.LastRunAt, s.StepAt, s.Message = now, now, "resumed"
				}),
				RequeueAfter: time.Second,
				Events:       []spec.Event{normal("Resumed", "release newrev0001 resumed at weight 20%")},
			},
		},
		"paused without a recorded phase resumes Progressing": {
			snap: plan.Snapshot{Name: name, State: atStep(1, paused, func(s *spec.State) { s.PausedFrom = "" }), Parent: parent(), Canary: readyCanary(1)},
			now:  now,
			want: plan.Decision{
				State:        atStep(1, func(s *spec.State) { s.LastRunAt, s.StepAt, s.Message = now, now, "resumed" }),
				RequeueAfter: time.Second,
				Events:       []spec.Event{normal("Resumed", "release newrev0001 resumed at weight 20%")},
			},
		},
		"abort while paused: RollingBack": {
			snap: plan.Snapshot{Name: name, State: atStep(1, paused), Parent: parent(), Canary: readyCanary(1), Controls: plan.Controls{Pause: rev, Abort: rev}},
			now:  now,
			want: plan.Decision{
				State: atStep(1, paused, func(s *spec.State) {
					s.Phase, s.AbortReason, s.Message = spec.PhaseRollingBack, "aborted by sluice.dev/abort", "rolling back: aborted by sluice.dev/abort"
				}),
				Clear: []string{spec.AnnAbort}, RequeueAfter: 2 * time.Second,
				Events: []spec.Event{warning("RollingBack", "rolling back revision newrev0001: aborted by sluice.dev/abort")},
			},
		},
		"revert while paused: RollingBack": {
			snap: plan.Snapshot{Name: name, State: atStep(1, paused, reverted), Parent: parent(func(w *plan.Workload) { w.Revision = stable }), Canary: readyCanary(1), Controls: plan.Controls{Pause: rev}},
			now:  now,
			want: plan.Decision{
				State: atStep(1, paused, reverted, func(s *spec.State) {
					s.Phase, s.Message = spec.PhaseRollingBack, "rolling back: template set back to the stable revision stablerev1"
				}),
				RequeueAfter: 2 * time.Second,
				Events:       []spec.Event{warning("RollingBack", "rolling back revision newrev0001: template set back to the stable revision stablerev1")},
			},
		},
	}
	run(t, tests)
}

func TestPlanPromoting(t *testing.T) {
	promotingAt := stepAt.Add(5 * time.Minute)
	promoting := func(s *spec.State) { s.Phase, s.PromotingAt, s.Message = spec.PhasePromoting, promotingAt, "promoting" }
	now := promotingAt.Add(time.Minute)
	tests := map[string]struct {
		snap plan.Snapshot
		now  time.Time
		want plan.Decision
	}{
		"parent still paused: unpause and wait": {
			snap: plan.Snapshot{Name: name, State: atStep(4, promoting), Parent: parent(), Canary: readyCanary(3)},
			now:  now,
			want: plan.Decision{
				State:  atStep(4, promoting, func(s *spec.State) { s.Message = "promoting: rolling out the Deployment" }),
				Paused: ptr(false), RequeueAfter: 9*time.Minute + time.Second,
			},
		},
		"rolling update under way: wait until the parent is fully rolled": {
			snap: plan.Snapshot{Name: name, State: atStep(4, promoting), Parent: parent(unpaused, func(w *plan.Workload) {
				w.Generation, w.ObservedGeneration, w.StatusReplicas, w.UpdatedReplicas, w.AvailableReplicas = 3, 3, 4, 1, 3
			}), Canary: readyCanary(3)},
			now: now,
			want: plan.Decision{
				State:  atStep(4, promoting, func(s *spec.State) { s.Message = "promoting: rolling out the Deployment" }),
				Paused: ptr(false), RequeueAfter: 9*time.Minute + time.Second,
			},
		},
		"unpause not yet observed by the Deployment controller: wait": {
			snap: plan.Snapshot{Name: name, State: atStep(4, promoting), Parent: parent(rolledOut, func(w *plan.Workload) { w.ObservedGeneration = 2 }), Canary: readyCanary(3)},
			now:  now,
			want: plan.Decision{
				State:  atStep(4, promoting, func(s *spec.State) { s.Message = "promoting: rolling out the Deployment" }),
				Paused: ptr(false), RequeueAfter: 9*time.Minute + time.Second,
			},
		},
		"updated but not all available: wait": {
			snap: plan.Snapshot{Name: name, State: atStep(4, promoting), Parent: parent(rolledOut, func(w *plan.Workload) { w.AvailableReplicas = 2 }), Canary: readyCanary(3)},
			now:  now,
			want: plan.Decision{
				State:  atStep(4, promoting, func(s *spec.State) { s.Message = "promoting: rolling out the Deployment" }),
				Paused: ptr(false), RequeueAfter: 9*time.Minute + time.Second,
			},
		},
		"fully rolled: the canary is deleted and Succeeded recorded in one step": {
			snap: plan.Snapshot{Name: name, State: atStep(4, promoting), Parent: parent(rolledOut), Canary: readyCanary(3)},
			now:  now,
			want: plan.Decision{
				State: atStep(4, promoting, func(s *spec.State) {
					s.Phase, s.FinishedAt, s.Stable, s.Weight, s.CanaryReady = spec.PhaseSucceeded, now, rev, 0, false
					s.Message = "promoted app=ghcr.io/x/app:v2"
				}),
				Canary: plan.CanaryDelete, Paused: ptr(false),
				Events: []spec.Event{normal("Promoted", "revision newrev0001 (app=ghcr.io/x/app:v2) promoted and fully rolled out; canary removed")},
			},
		},
		"fully rolled, canary gone: Succeeded, the revision is stable": {
			snap: plan.Snapshot{Name: name, State: atStep(4, promoting), Parent: parent(rolledOut)},
			now:  now,
			want: plan.Decision{
				State: atStep(4, promoting, func(s *spec.State) {
					s.Phase, s.FinishedAt, s.Stable, s.Weight, s.CanaryReady = spec.PhaseSucceeded, now, rev, 0, false
					s.Message = "promoted app=ghcr.io/x/app:v2"
				}),
				Paused: ptr(false),
				Events: []spec.Event{normal("Promoted", "revision newrev0001 (app=ghcr.io/x/app:v2) promoted and fully rolled out; canary removed")},
			},
		},
		"not rolled within the progress deadline: Failed, canary removed": {
			snap: plan.Snapshot{Name: name, State: atStep(4, promoting), Parent: parent(unpaused), Canary: readyCanary(3)},
			now:  promotingAt.Add(10*time.Minute + time.Second),
			want: plan.Decision{
				State: atStep(4, promoting, func(s *spec.State) {
					s.Phase, s.FinishedAt = spec.PhaseFailed, promotingAt.Add(10*time.Minute+time.Second)
					s.Message = "promoted Deployment not fully rolled out within the progress deadline of 10m0s"
				}),
				Canary: plan.CanaryDelete, Paused: ptr(false),
				Events: []spec.Event{warning("PromotionFailed", "promoted Deployment not fully rolled out within the progress deadline of 10m0s")},
			},
		},
		"abort control is ignored once promoting": {
			snap: plan.Snapshot{Name: name, State: atStep(4, promoting), Parent: parent(rolledOut), Controls: plan.Controls{Abort: rev, Pause: rev}},
			now:  now,
			want: plan.Decision{
				State: atStep(4, promoting, func(s *spec.State) {
					s.Phase, s.FinishedAt, s.Stable, s.Weight, s.CanaryReady = spec.PhaseSucceeded, now, rev, 0, false
					s.Message = "promoted app=ghcr.io/x/app:v2"
				}),
				Paused: ptr(false),
				Events: []spec.Event{normal("Promoted", "revision newrev0001 (app=ghcr.io/x/app:v2) promoted and fully rolled out; canary removed")},
			},
		},
		"template set back to stable mid-promotion (revert from the webhook): RollingBack": {
			snap: plan.Snapshot{Name: name, State: atStep(4, promoting, reverted), Parent: parent(func(w *plan.Workload) { w.Revision = stable }), Canary: readyCanary(3)},
			now:  now,
			want: plan.Decision{
				State: atStep(4, promoting, reverted, func(s *spec.State) {
					s.Phase, s.Message = spec.PhaseRollingBack, "rolling back: template set back to the stable revision stablerev1"
				}),
				RequeueAfter: 2 * time.Second,
				Events:       []spec.Event{warning("RollingBack", "rolling back revision newrev0001: template set back to the stable revision stablerev1")},
			},
		},
	}
	run(t, tests)
}

func TestPlanRollingBack(t *testing.T) {
	const reason = "5 failed analysis runs reached the threshold of 5"
	rollingBack := func(s *spec.State) {
		s.Phase, s.AbortReason, s.FailedChecks, s.Message = spec.PhaseRollingBack, reason, 5, "rolling back: "+reason
	}
	now := stepAt.Add(6 * time.Minute)
	tests := map[string]struct {
		snap plan.Snapshot
		now  time.Time
		want plan.Decision
	}{
		"canary still there: deleted, Failed recorded in the same step, the hold kept": {
			snap: plan.Snapshot{Name: name, State: atStep(1, rollingBack), Parent: parent(), Canary: readyCanary(1)},
			now:  now,
			want: plan.Decision{
				State: atStep(1, rollingBack, func(s *spec.State) {
					s.Phase, s.FailedRevision, s.Weight, s.CanaryReady, s.FinishedAt = spec.PhaseFailed, rev, 0, false, now
					s.Message = "rolled back: " + reason
				}),
				Canary: plan.CanaryDelete,
				Events: []spec.Event{warning("RolledBack", "canary of revision newrev0001 removed; stable revision stablerev1 keeps serving ("+reason+")")},
			},
		},
		"canary still there, parent unpaused: deleted, Failed, held again": {
			snap: plan.Snapshot{Name: name, State: atStep(1, rollingBack), Parent: parent(unpaused), Canary: readyCanary(1)},
			now:  now,
			want: plan.Decision{
				State: atStep(1, rollingBack, func(s *spec.State) {
					s.Phase, s.FailedRevision, s.Weight, s.CanaryReady, s.FinishedAt = spec.PhaseFailed, rev, 0, false, now
					s.Message = "rolled back: " + reason
				}),
				Canary: plan.CanaryDelete, Paused: ptr(true),
				Events: []spec.Event{warning("RolledBack", "canary of revision newrev0001 removed; stable revision stablerev1 keeps serving ("+reason+")")},
			},
		},
		"canary gone: Failed, revision remembered, parent stays held on stable": {
			snap: plan.Snapshot{Name: name, State: atStep(1, rollingBack), Parent: parent()},
			now:  now,
			want: plan.Decision{
				State: atStep(1, rollingBack, func(s *spec.State) {
					s.Phase, s.FailedRevision, s.Weight, s.CanaryReady, s.FinishedAt = spec.PhaseFailed, rev, 0, false, now
					s.Message = "rolled back: " + reason
				}),
				Events: []spec.Event{warning("RolledBack", "canary of revision newrev0001 removed; stable revision stablerev1 keeps serving ("+reason+")")},
			},
		},
		"canary gone, parent unpaused: Failed and held again": {
			snap: plan.Snapshot{Name: name, State: atStep(1, rollingBack), Parent: parent(unpaused)},
			now:  now,
			want: plan.Decision{
				State: atStep(1, rollingBack, func(s *spec.State) {
					s.Phase, s.FailedRevision, s.Weight, s.CanaryReady, s.FinishedAt = spec.PhaseFailed, rev, 0, false, now
					s.Message = "rolled back: " + reason
				}),
				Paused: ptr(true),
				Events: []spec.Event{warning("RolledBack", "canary of revision newrev0001 removed; stable revision stablerev1 keeps serving ("+reason+")")},
			},
		},
		"revert, canary still there: deleted, Idle and released in the same step": {
			snap: plan.Snapshot{Name: name, State: atStep(1, reverted, phase(spec.PhaseRollingBack)), Parent: parent(func(w *plan.Workload) { w.Revision = stable }), Canary: readyCanary(1)},
			now:  now,
			want: plan.Decision{
				State: atStep(1, func(s *spec.State) {
					s.Phase, s.Weight, s.CanaryReady, s.FinishedAt = spec.PhaseIdle, 0, false, now
					s.Message = "rolled back: the template is the stable revision stablerev1 again"
				}),
				Canary: plan.CanaryDelete, Paused: ptr(false),
				Events: []spec.Event{normal("RolledBack", "canary of revision newrev0001 removed; the Deployment is back on stable revision stablerev1")},
			},
		},
		"revert, canary gone: Idle and the parent released on stable": {
			snap: plan.Snapshot{Name: name, State: atStep(1, reverted, phase(spec.PhaseRollingBack)), Parent: parent(func(w *plan.Workload) { w.Revision = stable })},
			now:  now,
			want: plan.Decision{
				State: atStep(1, func(s *spec.State) {
					s.Phase, s.Weight, s.CanaryReady, s.FinishedAt = spec.PhaseIdle, 0, false, now
					s.Message = "rolled back: the template is the stable revision stablerev1 again"
				}),
				Paused: ptr(false),
				Events: []spec.Event{normal("RolledBack", "canary of revision newrev0001 removed; the Deployment is back on stable revision stablerev1")},
			},
		},
	}
	run(t, tests)
}

func TestPlanFailedAndIdle(t *testing.T) {
	now := stepAt.Add(time.Hour)
	failed := func(s *spec.State) {
		s.Phase, s.FailedRevision, s.Weight, s.CanaryReady, s.FailedChecks = spec.PhaseFailed, rev, 0, false, 5
		s.AbortReason, s.FinishedAt, s.Message = "5 failed analysis runs reached the threshold of 5", stepAt, "rolled back"
	}
	retryConfig := config(func(c *spec.Config) { c.Threshold, c.Steps = 2, []int{5, 50} })
	tests := map[string]struct {
		snap plan.Snapshot
		now  time.Time
		want plan.Decision
	}{
		"Failed stays Failed": {
			snap: plan.Snapshot{Name: name, State: atStep(1, failed), Parent: parent(), Config: retryConfig},
			now:  now,
			want: plan.Decision{State: atStep(1, failed)},
		},
		"Failed with a leftover canary: delete it": {
			snap: plan.Snapshot{Name: name, State: atStep(1, failed), Parent: parent(), Canary: readyCanary(1)},
			now:  now,
			want: plan.Decision{State: atStep(1, failed), Canary: plan.CanaryDelete},
		},
		"retry: a new release of the current template with the current configuration": {
			snap: plan.Snapshot{Name: name, State: atStep(1, failed), Parent: parent(), Controls: plan.Controls{Retry: rev}, Config: retryConfig},
			now:  now,
			want: plan.Decision{
				State: spec.State{
					Phase: spec.PhaseProgressing, Revision: rev, Stable: stable, Image: image,
					StartedAt: now, Plan: retryConfig, Message: "retrying",
				},
				Clear: []string{spec.AnnRetry}, RequeueAfter: time.Second, Starts: true,
				Events: []spec.Event{normal("Retrying", "retrying revision newrev0001 by sluice.dev/retry")},
			},
		},
		"retry with an unpaused parent holds it": {
			snap: plan.Snapshot{Name: name, State: atStep(1, failed), Parent: parent(unpaused), Controls: plan.Controls{Retry: rev}, Config: retryConfig},
			now:  now,
			want: plan.Decision{
				State: spec.State{
					Phase: spec.PhaseProgressing, Revision: rev, Stable: stable, Image: image,
					StartedAt: now, Plan: retryConfig, Message: "retrying",
				},
				Paused: ptr(true), Clear: []string{spec.AnnRetry}, RequeueAfter: time.Second, Starts: true,
				Events: []spec.Event{normal("Retrying", "retrying revision newrev0001 by sluice.dev/retry")},
			},
		},
		"retry with an invalid configuration: stays Failed, says why": {
			snap: plan.Snapshot{Name: name, State: atStep(1, failed), Parent: parent(), Controls: plan.Controls{Retry: rev},
				ConfigErr: `sluice.dev/max-weight: must be 1..100, got "150"`},
			now: now,
			want: plan.Decision{
				State: atStep(1, failed), Clear: []string{spec.AnnRetry},
				Events: []spec.Event{warning("InvalidConfig", `cannot retry: sluice.dev/max-weight: must be 1..100, got "150"`)},
			},
		},
		"Idle: nothing to do": {
			snap: plan.Snapshot{Name: name, State: spec.State{Phase: spec.PhaseIdle, Stable: rev}, Parent: parent(unpaused)},
			now:  now,
			want: plan.Decision{State: spec.State{Phase: spec.PhaseIdle, Stable: rev}},
		},
		"Idle seen for the first time: its running template recorded as stable": {
			snap: plan.Snapshot{Name: name, State: spec.State{Phase: spec.PhaseIdle}, Parent: parent(unpaused)},
			now:  now,
			want: plan.Decision{State: spec.State{Phase: spec.PhaseIdle, Stable: rev, Message: "watching; stable revision newrev0001"}},
		},
		"Idle seen for the first time while paused: nothing recorded yet": {
			snap: plan.Snapshot{Name: name, State: spec.State{Phase: spec.PhaseIdle}, Parent: parent()},
			now:  now,
			want: plan.Decision{State: spec.State{Phase: spec.PhaseIdle}},
		},
		"Idle with leftover controls: cleared with a warning": {
			snap: plan.Snapshot{Name: name, State: spec.State{Phase: spec.PhaseIdle, Stable: rev}, Parent: parent(unpaused), Controls: plan.Controls{Promote: "true", Retry: rev, Abort: rev}},
			now:  now,
			want: plan.Decision{State: spec.State{Phase: spec.PhaseIdle, Stable: rev},
				Clear: []string{spec.AnnPromote, spec.AnnAbort, spec.AnnRetry}, Stale: []string{spec.AnnPromote, spec.AnnAbort, spec.AnnRetry},
				Events: []spec.Event{
					warning("StaleControl", "sluice.dev/promote=true cleared: no release is in flight; a control acts only on the revision it names"),
					warning("StaleControl", "sluice.dev/abort=newrev0001 cleared: no release is in flight; a control acts only on the revision it names"),
					warning("StaleControl", "sluice.dev/retry=newrev0001 cleared: no release is in flight; a control acts only on the revision it names"),
				}},
		},
		"Idle with a canary: delete it": {
			snap: plan.Snapshot{Name: name, State: spec.State{Phase: spec.PhaseIdle, Stable: rev}, Parent: parent(unpaused), Canary: readyCanary(1)},
			now:  now,
			want: plan.Decision{State: spec.State{Phase: spec.PhaseIdle, Stable: rev}, Canary: plan.CanaryDelete},
		},
		"Succeeded, a template that bypassed the hold runs: Unanalysed, never stable": {
			snap: plan.Snapshot{Name: name, State: spec.State{Phase: spec.PhaseSucceeded, Stable: stable}, Parent: parent(unpaused)},
			now:  now,
			want: plan.Decision{
				State: spec.State{Phase: spec.PhaseSucceeded, Stable: stable, Unanalysed: rev, UnanalysedAt: now,
					Message: "revision newrev0001 runs without canary analysis (last analysed stable revision: stablerev1)"},
				Events: []spec.Event{warning("Unanalysed", "template revision newrev0001 reached the pods without canary analysis (the admission webhook was bypassed, down with failurePolicy Ignore, or excludes this namespace); the last analysed stable revision is stablerev1. Re-apply through the webhook or set the template back")},
			},
		},
		"Unanalysed already reported for this revision: no new event": {
			snap: plan.Snapshot{Name: name, State: spec.State{Phase: spec.PhaseIdle, Stable: stable, Unanalysed: rev, UnanalysedAt: stepAt}, Parent: parent(unpaused)},
			now:  now,
			want: plan.Decision{State: spec.State{Phase: spec.PhaseIdle, Stable: stable, Unanalysed: rev, UnanalysedAt: stepAt}},
		},
		"back on the stable template: Unanalysed cleared": {
			snap: plan.Snapshot{Name: name, State: spec.State{Phase: spec.PhaseIdle, Stable: rev, Unanalysed: "otherrev01", UnanalysedAt: stepAt}, Parent: parent(unpaused)},
			now:  now,
			want: plan.Decision{State: spec.State{Phase: spec.PhaseIdle, Stable: rev}},
		},
		"Idle, a changed template still paused by its user: not on the pods, nothing to report": {
			snap: plan.Snapshot{Name: name, State: spec.State{Phase: spec.PhaseIdle, Stable: stable}, Parent: parent()},
			now:  now,
			want: plan.Decision{State: spec.State{Phase: spec.PhaseIdle, Stable: stable}},
		},
		"Failed, its rolled-back template unpaused behind Sluice's back: Unanalysed": {
			snap: plan.Snapshot{Name: name, State: atStep(1, failed), Parent: parent(unpaused)},
			now:  now,
			want: plan.Decision{
				State: atStep(1, failed, func(s *spec.State) {
					s.Unanalysed, s.UnanalysedAt = rev, now
					s.Message = "revision newrev0001 runs without canary analysis (last analysed stable revision: stablerev1)"
				}),
				Events: []spec.Event{warning("Unanalysed", "template revision newrev0001 reached the pods without canary analysis (the admission webhook was bypassed, down with failurePolicy Ignore, or excludes this namespace); the last analysed stable revision is stablerev1. Re-apply through the webhook or set the template back")},
			},
		},
		"Failed while promoting (analysis passed, rollout timed out): rolling on is not unanalysed": {
			snap: plan.Snapshot{Name: name, State: atStep(1, func(s *spec.State) { s.Phase, s.FailedRevision = spec.PhaseFailed, "oldfailed1" }), Parent: parent(unpaused)},
			now:  now,
			want: plan.Decision{State: atStep(1, func(s *spec.State) { s.Phase, s.FailedRevision = spec.PhaseFailed, "oldfailed1" })},
		},
		"Succeeded with a canary: delete it": {
			snap: plan.Snapshot{Name: name, State: spec.State{Phase: spec.PhaseSucceeded, Stable: rev}, Parent: parent(rolledOut), Canary: readyCanary(3)},
			now:  now,
			want: plan.Decision{State: spec.State{Phase: spec.PhaseSucceeded, Stable: rev}, Canary: plan.CanaryDelete},
		},
		"unknown phase with a canary: delete it": {
			snap: plan.Snapshot{Name: name, State: spec.State{Phase: "Whatever"}, Parent: parent(), Canary: readyCanary(1)},
			now:  now,
			want: plan.Decision{State: spec.State{Phase: "Whatever"}, Canary: plan.CanaryDelete},
		},
	}
	run(t, tests)
}

func run(t *testing.T, tests map[string]struct {
	snap plan.Snapshot
	now  time.Time
	want plan.Decision
}) {
	t.Helper()
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			in := tc.snap
			before := in.State.Encode()
			got := plan.Plan(in, tc.now)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Plan() mismatch (-want +got):\n%s", diff)
			}
			if after := tc.snap.State.Encode(); after != before {
				t.Errorf("Plan() modified its input state:\nbefore %s\n after %s", before, after)
			}
			// Deterministic: the same snapshot and time give the same decision.
			if diff := cmp.Diff(got, plan.Plan(tc.snap, tc.now)); diff != "" {
				t.Errorf("Plan() is not deterministic (-first +second):\n%s", diff)
			}
		})
	}
}

func TestAnalysisDue(t *testing.T) {
	due := stepAt.Add(time.Minute)
	base := plan.Snapshot{Name: name, State: atStep(1), Parent: parent(), Canary: readyCanary(1)}
	with := func(m func(*plan.Snapshot)) plan.Snapshot {
		s := base
		s.State = atStep(1)
		m(&s)
		return s
	}
	tests := map[string]struct {
		snap plan.Snapshot
		now  time.Time
		want bool
	}{
		"one interval after the last run":  {snap: base, now: due, want: true},
		"long after the last run":          {snap: base, now: due.Add(time.Hour), want: true},
		"just before the interval is over": {snap: base, now: due.Add(-time.Nanosecond), want: false},
		"the plan's interval is used": {snap: with(func(s *plan.Snapshot) {
			s.State.Plan = config(func(c *spec.Config) { c.Interval.Duration = 30 * time.Second })
		}), now: stepAt.Add(30 * time.Second), want: true},
		"canary not ready yet (first time)":   {snap: with(func(s *plan.Snapshot) { s.State.CanaryReady = false }), now: due, want: false},
		"canary missing":                      {snap: with(func(s *plan.Snapshot) { s.Canary = nil }), now: due, want: false},
		"canary not at the step's replicas":   {snap: with(func(s *plan.Snapshot) { s.Canary = readyCanary(2) }), now: due, want: false},
		"canary replicas not available":       {snap: with(func(s *plan.Snapshot) { s.Canary = startingCanary(1) }), now: due, want: false},
		"abort reason set":                    {snap: with(func(s *plan.Snapshot) { s.State.AbortReason = "x" }), now: due, want: false},
		"abort control set":                   {snap: with(func(s *plan.Snapshot) { s.Controls.Abort = rev }), now: due, want: false},
		"pause control set":                   {snap: with(func(s *plan.Snapshot) { s.Controls.Pause = rev }), now: due, want: false},
		"routing object not set":              {snap: with(func(s *plan.Snapshot) { s.RoutingErr = "HTTPRoute web not found" }), now: due, want: false},
		"no plan":                             {snap: with(func(s *plan.Snapshot) { s.State.Plan = nil }), now: due, want: false},
		"paused":                              {snap: with(func(s *plan.Snapshot) { s.State.Phase = spec.PhasePaused }), now: due, want: false},
		"promoting":                           {snap: with(func(s *plan.Snapshot) { s.State.Phase = spec.PhasePromoting }), now: due, want: false},
		"rolling back":                        {snap: with(func(s *plan.Snapshot) { s.State.Phase = spec.PhaseRollingBack }), now: due, want: false},
		"idle":                                {snap: plan.Snapshot{Name: name, State: spec.State{Phase: spec.PhaseIdle}}, now: due, want: false},
		"replica share follows the parent":    {snap: with(func(s *plan.Snapshot) { s.Parent.Replicas = 10; s.Canary = readyCanary(3) }), now: due, want: true},
		"stale parent replicas: not at share": {snap: with(func(s *plan.Snapshot) { s.Parent.Replicas = 10 }), now: due, want: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := plan.AnalysisDue(tc.snap, tc.now); got != tc.want {
				t.Errorf("AnalysisDue() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCanaryReplicas(t *testing.T) {
	tests := map[string]struct {
		parent int32
		weight int
		want   int32
	}{
		"parent 3, weight 10: 1":                 {parent: 3, weight: 10, want: 1},
		"parent 3, weight 20: 1":                 {parent: 3, weight: 20, want: 1},
		"parent 3, weight 30: 2":                 {parent: 3, weight: 30, want: 2},
		"parent 3, weight 50: as many as parent": {parent: 3, weight: 50, want: 3},
		"parent 3, weight 100: the parent's":     {parent: 3, weight: 100, want: 3},
		"parent 10, weight 10: rounds up":        {parent: 10, weight: 10, want: 2},
		"parent 10, weight 25":                   {parent: 10, weight: 25, want: 4},
		"parent 9, weight 10: exact":             {parent: 9, weight: 10, want: 1},
		"parent 4, weight 80":                    {parent: 4, weight: 80, want: 16},
		"parent 1, weight 99":                    {parent: 1, weight: 99, want: 99},
		"parent 0 (scaled to zero): at least 1":  {parent: 0, weight: 10, want: 1},
		"parent 0, weight 100: at least 1":       {parent: 0, weight: 100, want: 1},
		"weight above 100 is the parent's":       {parent: 5, weight: 150, want: 5},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := plan.CanaryReplicas(tc.parent, tc.weight); got != tc.want {
				t.Errorf("CanaryReplicas(%d, %d) = %d, want %d", tc.parent, tc.weight, got, tc.want)
			}
		})
	}
}

func TestScheduled(t *testing.T) {
	st := atStep(1) // last run at stepAt, interval 1m
	tests := map[string]struct {
		st      spec.State
		requeue time.Duration
		now     time.Time
		want    bool
	}{
		"the next analysis run":            {st: st, requeue: time.Minute, now: stepAt, want: true},
		"what is left of the interval":     {st: st, requeue: 20 * time.Second, now: stepAt.Add(40 * time.Second), want: true},
		"a poll before the run is due":     {st: st, requeue: 2 * time.Second, now: stepAt.Add(10 * time.Second), want: false},
		"canary not ready yet":             {st: atStep(1, func(s *spec.State) { s.CanaryReady = false }), requeue: time.Minute, now: stepAt, want: false},
		"not progressing":                  {st: atStep(1, phase(spec.PhasePromoting)), requeue: time.Minute, now: stepAt, want: false},
		"no requeue":                       {st: st, requeue: 0, now: stepAt, want: false},
		"a release with no plan (invalid)": {st: atStep(1, func(s *spec.State) { s.Plan = nil }), requeue: time.Minute, now: stepAt, want: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := plan.Scheduled(tc.st, tc.requeue, tc.now); got != tc.want {
				t.Errorf("Scheduled() = %v, want %v", got, tc.want)
			}
		})
	}
}
