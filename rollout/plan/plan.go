package plan

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// Workload is the part of a Deployment's spec and status the planner needs.
type Workload struct {
	// Revision is the template hash: the parent's spec.template, or the canary's
	// sluice.dev/revision annotation.
	Revision string
	// PodHash is the pod-template-hash of the parent's newest ReplicaSet (read only for
	// isolated canaries, which pin `<svc>-stable` to it).
	PodHash            string
	Paused             bool
	Generation         int64
	ObservedGeneration int64
	Replicas           int32 // spec.replicas
	StatusReplicas     int32
	UpdatedReplicas    int32
	AvailableReplicas  int32
}

// Controls are the manual control annotations on the parent: each holds the revision the
// annotation names ("" when it is absent). A control acts only on the release of the revision
// it names (a retry: the Failed release's template); any other value is stale and cleared.
type Controls struct {
	Promote, Abort, Pause, Retry, Approve, Halt string
}

// Snapshot is what the planner sees of one release.
type Snapshot struct {
	Name   string
	State  spec.State
	Parent Workload
	// Canary is nil when the canary Deployment does not exist.
	Canary   *Workload
	Controls Controls
	// Config is the Deployment's current configuration (used when a retry starts a new
	// release); ConfigErr says why it could not be parsed.
	Config    *spec.Config
	ConfigErr string
	// Analysis holds the readings of the run that AnalysisDue asked for; nil when none ran.
	Analysis []spec.CheckResult
	// RoutingErr says why the routing object could not be set as the state asks ("" when it
	// is); the release waits for it like for an unready canary.
	RoutingErr string
	// Hooks are the answers of the hook rounds HooksDue asked for, by type; a type it listed
	// that is missing here has not answered yet, and the step waits for it.
	Hooks map[spec.HookType][]spec.HookResult
}

// CanaryAction is what to do with the canary Deployment.
type CanaryAction string

// Canary actions.
const (
	CanaryKeep   CanaryAction = ""
	CanaryEnsure CanaryAction = "ensure"
	CanaryDelete CanaryAction = "delete"
)

// Decision is what the reconciler must do.
type Decision struct {
	State          spec.State
	Canary         CanaryAction
	CanaryReplicas int32
	// Paused, when set, is the spec.paused the parent must have.
	Paused *bool
	// Clear lists control annotations consumed (or found stale) by this decision.
	Clear []string
	// Stale lists the control annotations of Clear that named another revision.
	Stale        []string
	Events       []spec.Event
	RequeueAfter time.Duration
	// Starts is set when the decision starts a new release (a retry): only its state is
	// written in this step; its canary and routing are the next step's, planned on it.
	Starts bool
	// RoutingMayFail is set when the decision waits for a routing object that could not be set
	// (Snapshot.RoutingErr): it is recorded even if setting the routing fails again, which
	// starts its progress deadline. Any other decision of an isolated release is applied only
	// once its routing is in place.
	RoutingMayFail bool
}

// poll is how soon to look again while waiting for what no watch reports: a routing object
// that could not be set, the Deployment's first ReplicaSet.
const poll = 2 * time.Second

// watched is the requeue of a wait that a watch ends: a change of the parent's or the canary's
// Deployment wakes the release (rollout.Reconciler.SetupWithManager), so the only timer left
// is the deadline, looked at a second after it passes. Nothing polls, and nothing is written
// while the wait lasts (its message names no count that changes).
func watched(deadline, now time.Time) time.Duration {
	return max(deadline.Sub(now)+time.Second, time.Second)
}

// settle is how long a routing change is given to reach the proxies before the pods it moved
// traffic away from go, or the parent it moved traffic off starts rolling.
const settle = 2 * time.Second

// settling reports whether a routing change made at st.StepAt is still settling, and asks to
// look again when it is done.
func settling(st *spec.State, now time.Time, d *Decision) bool {
	if left := st.StepAt.Add(settle).Sub(now); left > 0 {
		d.RequeueAfter = left
		return true
	}
	return false
}

// AnalysisDue reports whether an analysis run is due now: the release is progressing, its
// canary has been ready and at its weight for a whole interval.
func AnalysisDue(s Snapshot, now time.Time) bool {
	st := s.State
	if st.Plan == nil || !analysing(st) || !st.CanaryReady || st.AbortReason != "" || s.RoutingErr != "" {
		return false
	}
	if names(s.Controls.Abort, st.Revision) || names(s.Controls.Pause, st.Revision) || !canaryReady(s, wantCanary(s, &st)) {
		return false
	}
	return !now.Before(st.LastRunAt.Add(st.Plan.Interval.Duration))
}

// PodHashNeeded reports whether the step planned on s reads Parent.PodHash: an isolated
// release pins `<svc>-stable` to the stable ReplicaSet when it starts, and re-pins it to the
// rolled one at promotion, once the Deployment has rolled. Only those steps make the gatherer
// read the Deployment's ReplicaSets (from the API server: the cache holds none).
func PodHashNeeded(s Snapshot) bool {
	st := s.State
	if st.Plan == nil || !st.Plan.Isolated() {
		return false
	}
	switch st.Phase {
	case spec.PhaseProgressing:
		return st.StablePod == ""
	case spec.PhasePromoting:
		return st.PromoteStep == spec.PromoteRollout && rolled(s.Parent, &st)
	}
	return false
}

// Scheduled reports whether the step a decision asks for after requeue (from now) is a
// scheduled analysis run of the release in st — work that is due at a set time, which the
// worker's queue puts ahead of polls and watch events so that many releases in flight do not
// delay each other's schedule.
func Scheduled(st spec.State, requeue time.Duration, now time.Time) bool {
	if st.Plan == nil || !analysing(st) || !st.CanaryReady || requeue <= 0 {
		return false
	}
	return !now.Add(requeue).Before(st.LastRunAt.Add(st.Plan.Interval.Duration))
}

// Plan decides the next step of the release in s.
func Plan(s Snapshot, now time.Time) Decision {
	d := Decision{State: s.State}
	st := &d.State
	clearStale(s, &d)
	switch {
	case st.Phase.InFlight() && st.Plan == nil:
		st.Phase, st.Message = spec.PhaseFailed, "release state has no plan; re-apply the Deployment to start a new release"
		d.warn(spec.ReasonInvalidState, st.Message)
		d.Canary = CanaryDelete
	default:
		step(s, now, &d)
	}
	d.Paused = pause(s, d.State)
	return d
}

// step moves the release by its phase.
func step(s Snapshot, now time.Time, d *Decision) {
	st := &d.State
	switch st.Phase {
	case spec.PhaseProgressing, spec.PhaseWaiting:
		progressing(s, now, d)
	case spec.PhasePaused:
		paused(s, now, d)
	case spec.PhasePromoting:
		promoting(s, now, d)
	case spec.PhaseRollingBack:
		rollingBack(s, now, d)
	case spec.PhaseFailed:
		failed(s, now, d)
	default: // Idle, Succeeded, or a phase this version does not know.
		if s.Canary != nil {
			d.Canary = CanaryDelete
		}
		if postRollout(s, d) {
			settled(s, now, d)
		}
	}
}

// pause is the spec.paused the parent must have after this step (nil: leave it as it is), the
// one place the planner decides it. A release the planner runs — one stepping (with a plan)
// before or after this step — keeps the parent paused while its state holds it
// (spec.State.Holds) and releases it once it does not. Outside a release the planner never
// touches spec.paused: a user's own pause of an Idle, Succeeded or Failed Deployment is theirs.
func pause(s Snapshot, out spec.State) *bool {
	in := s.State
	switch {
	case !runs(in) && !runs(out):
		return nil
	case in.Phase == spec.PhasePromoting && in.AbortReason != "":
		// The webhook set abortReason (a revert, or a template that failed before) in the same
		// write that paused the parent; this step only records RollingBack.
		return nil
	case !out.Holds(), in.Phase == spec.PhasePromoting && out.Phase == spec.PhaseFailed:
		// Released; that includes a promotion that ran out of time with its rolling update under
		// way: pausing would freeze it half done, so a Failed release the planner let go of is
		// not held again (the webhook re-asserts only a hold in place, for the same reason).
		return ptr(false)
	case s.Parent.Paused:
		return nil
	}
	return ptr(true)
}

// runs reports whether st is a release the planner steps: one in flight with a plan.
func runs(st spec.State) bool {
	switch st.Phase {
	case spec.PhaseProgressing, spec.PhaseWaiting, spec.PhasePaused, spec.PhasePromoting, spec.PhaseRollingBack:
		return st.Plan != nil
	}
	return false
}

// clearStale clears, with a warning, every control that names no revision this release answers
// to: promote, abort and pause act on the release in flight, retry on the Failed one's template.
// The webhook drops such values already; this catches writes that bypassed it.
func clearStale(s Snapshot, d *Decision) {
	st := &d.State
	inFlight := st.Phase.InFlight()
	for _, c := range []struct {
		key, value, target string
	}{
		{spec.AnnPromote, s.Controls.Promote, revisionIf(inFlight, st.Revision)},
		{spec.AnnAbort, s.Controls.Abort, revisionIf(inFlight, st.Revision)},
		{spec.AnnPause, s.Controls.Pause, revisionIf(inFlight, st.Revision)},
		{spec.AnnRetry, s.Controls.Retry, revisionIf(st.Phase == spec.PhaseFailed, s.Parent.Revision)},
		{spec.AnnApprove, s.Controls.Approve, revisionIf(inFlight, st.Revision)},
		{spec.AnnHalt, s.Controls.Halt, revisionIf(inFlight, st.Revision)},
	} {
		if c.value == "" || c.value == c.target {
			continue
		}
		d.Clear = append(d.Clear, c.key)
		d.Stale = append(d.Stale, c.key)
		why := "no release is in flight"
		if c.target != "" {
			why = "this release is revision " + c.target
		}
		d.warn(spec.ReasonStaleControl, fmt.Sprintf("%s=%s cleared: %s; a control acts only on the revision it names", c.key, c.value, why))
	}
}

// names reports whether control value v names revision rev.
func names(v, rev string) bool { return v != "" && v == rev }

func revisionIf(ok bool, rev string) string {
	if ok {
		return rev
	}
	return ""
}

// settled watches a Deployment with no release in flight (Idle, Succeeded, Failed): a
// Deployment seen for the first time has its running template recorded as stable, and a
// template that reached the pods without the hold — the webhook bypassed or down, the status
// subresource, a namespace the webhook excludes — is reported, once per revision, and never
// recorded as stable (SPEC §4).
func settled(s Snapshot, now time.Time, d *Decision) {
	st := &d.State
	p := s.Parent
	if st.Stable == "" && st.Phase == spec.PhaseIdle && st.Revision == "" {
		if p.Paused || p.Revision == "" {
			return
		}
		st.Stable, st.Message = p.Revision, "watching; stable revision "+p.Revision
		return
	}
	switch {
	case p.Paused || st.Unanalysed == p.Revision:
		return
	case analysed(st, p.Revision):
		st.Unanalysed, st.UnanalysedAt = "", time.Time{}
		return
	}
	st.Unanalysed, st.UnanalysedAt = p.Revision, now
	st.Message = fmt.Sprintf("revision %s runs without canary analysis (last analysed stable revision: %s)", p.Revision, st.Stable)
	d.warn(spec.ReasonUnanalysed, fmt.Sprintf(
		"template revision %s reached the pods without canary analysis (the admission webhook was bypassed, down with failurePolicy Ignore, or excludes this namespace); the last analysed stable revision is %s. Re-apply through the webhook or set the template back", p.Revision, st.Stable))
}

// analysed reports whether revision rev may run on the parent's pods with no release in flight:
// the recorded stable revision, or a release whose analysis passed but whose rolling update ran
// out of time (Failed while promoting, so never recorded as failed).
func analysed(st *spec.State, rev string) bool {
	if rev == st.Stable {
		return true
	}
	return st.Phase == spec.PhaseFailed && rev == st.Revision && st.FailedRevision != st.Revision
}

func progressing(s Snapshot, now time.Time, d *Decision) {
	st := &d.State
	switch {
	case st.AbortReason != "":
		startRollback(d, now, st.AbortReason)
		return
	case names(s.Controls.Abort, st.Revision):
		d.Clear = append(d.Clear, spec.AnnAbort)
		startRollback(d, now, "aborted by "+spec.AnnAbort)
		return
	case names(s.Controls.Pause, st.Revision):
		st.PausedFrom, st.Phase, st.Message = st.Phase, spec.PhasePaused, "paused by "+spec.AnnPause
		d.normal(spec.ReasonPaused, fmt.Sprintf("release %s paused at weight %d%% by %s", st.Revision, st.Weight, spec.AnnPause))
		return
	}
	if approved(s, d) {
		startPromotion(s, d, now, "promoted by "+spec.AnnPromote)
		return
	}
	if s.Parent.Revision != st.Revision {
		startRollback(d, now, fmt.Sprintf("the Deployment's template (%s) no longer matches release %s", s.Parent.Revision, st.Revision))
		return
	}
	plan := st.Plan
	if name, reason := rollbackAsked(s); name != "" {
		d.warn(spec.ReasonRollbackRequested, fmt.Sprintf("rollback webhook %s answered yes (%s)", name, reason))
		startRollback(d, now, "rollback requested by webhook "+name)
		return
	}
	if hooksPending(s, now) {
		// The hooks run in the background and wake the release when they have answered; until
		// then nothing is decided (and nothing written).
		d.RequeueAfter = plan.Interval.Duration
		return
	}
	if !started(*st) {
		if !confirmRollout(s, now, d) {
			return
		}
		st.Step, st.StepAt = 0, now
		if !plan.Iterative() {
			st.Weight = plan.Steps[0]
		}
		st.Message = "starting canary"
	}
	// The progress deadline does not run while a gate is closed: each check of the gate
	// starts it again.
	base := st.StepAt
	if g := st.Gate; g != nil && g.CheckedAt.After(base) {
		base = g.CheckedAt
	}
	deadline := base.Add(plan.ProgressDeadline.Duration)
	if plan.Isolated() && st.StablePod == "" {
		// <svc>-stable is pinned to the stable ReplicaSet before any traffic moves.
		if s.Parent.PodHash == "" {
			if now.After(deadline) {
				startRollback(d, now, "the Deployment has no ReplicaSet to pin "+spec.StableServiceName(plan.ServiceFor(s.Name))+" to")
				return
			}
			st.Message = "waiting for the Deployment's stable ReplicaSet"
			d.RequeueAfter = poll
			return
		}
		st.StablePod = s.Parent.PodHash
	}
	want := wantCanary(s, st)
	d.Canary, d.CanaryReplicas = CanaryEnsure, want
	if s.RoutingErr != "" {
		// The canary is made ready meanwhile (no traffic reaches it without its routing), and
		// this wait is recorded whether or not the routing can be set this time, so the
		// progress deadline runs.
		if now.After(deadline) {
			startRollback(d, now, "routing: "+s.RoutingErr)
			return
		}
		d.RoutingMayFail = true
		st.Message = "waiting for the routing object: " + s.RoutingErr
		d.RequeueAfter = min(poll, deadline.Sub(now)+time.Second)
		return
	}
	if !canaryReady(s, want) {
		if now.After(deadline) {
			startRollback(d, now, fmt.Sprintf("canary not ready within the progress deadline of %s", plan.ProgressDeadline.Duration))
			return
		}
		st.Message = fmt.Sprintf("waiting for canary %s to be ready (%d replicas%s)", spec.CanaryName(s.Name), want, atWeight(st))
		d.RequeueAfter = watched(deadline, now)
		return
	}
	if !st.CanaryReady {
		if !preRollout(s, now, d) {
			return
		}
		st.CanaryReady, st.LastRunAt = true, now
		st.Message = fmt.Sprintf("canary ready%s; first analysis in %s", atWeight(st), plan.Interval.Duration)
		d.normal(spec.ReasonCanaryReady, fmt.Sprintf("canary %s ready with %d replicas%s", spec.CanaryName(s.Name), want, exposure(st)))
		d.RequeueAfter = plan.Interval.Duration
		return
	}
	if s.Analysis == nil {
		d.RequeueAfter = untilDue(st, now)
		return
	}
	analyse(s, now, d)
}

// untilDue is how long until the release's next run is due, exactly: a step that looks at the
// release early (an event about its canary, a Service) asks for the run on time rather than a
// poll later. A run already due but not taken now (its hooks have not answered, a control or a
// routing failure holds it) is looked at again in a second.
func untilDue(st *spec.State, now time.Time) time.Duration {
	if left := st.LastRunAt.Add(st.Plan.Interval.Duration).Sub(now); left > 0 {
		return left
	}
	return time.Second
}

// confirmRollout passes the confirm-rollout gate of a release that has not started: false
// while it is closed (the release waits, asking again every interval).
func confirmRollout(s Snapshot, now time.Time, d *Decision) bool {
	st := &d.State
	if g := st.Gate; g != nil && now.Before(g.CheckedAt.Add(st.Plan.Interval.Duration)) {
		d.RequeueAfter = g.CheckedAt.Add(st.Plan.Interval.Duration).Sub(now)
		return false
	}
	if g := gate(s, d, spec.HookConfirmRollout); g != nil {
		wait(d, g, now)
		d.RequeueAfter = st.Plan.Interval.Duration
		return false
	}
	pass(s, d, spec.HookConfirmRollout, now)
	return true
}

// preRollout runs the pre-rollout hooks of a release whose canary is ready before any traffic
// is sent to it (for the replicas router, whose canary pods serve as soon as they are ready,
// before its analysis clock starts): a refusal is a failed run, tried again an interval later.
// It returns true once they have all said yes (or there are none).
func preRollout(s Snapshot, now time.Time, d *Decision) bool {
	st := &d.State
	if len(spec.HooksOf(st.Plan.Hooks, spec.HookPreRollout)) == 0 {
		return true
	}
	if !preRolloutDue(s, now) {
		d.RequeueAfter = untilDue(st, now)
		return false
	}
	failed := refusals(s, spec.HookPreRollout)
	if len(failed) == 0 {
		return true
	}
	st.LastRunAt = now
	failedRun(d, now, failed)
	d.RequeueAfter = st.Plan.Interval.Duration
	return false
}

// failedRun counts a failed run (a check or a hook said no) towards the threshold, and rolls
// back when it is reached.
func failedRun(d *Decision, now time.Time, failed []string) {
	st := &d.State
	plan := st.Plan
	st.FailedChecks++
	st.Inconclusive = 0
	msg := fmt.Sprintf("analysis failed (%d/%d) at weight %d%%: %s", st.FailedChecks, plan.Threshold, st.Weight, strings.Join(failed, "; "))
	d.warn(spec.ReasonCheckFailed, msg)
	st.Message = msg
	if st.FailedChecks >= plan.Threshold {
		startRollback(d, now, fmt.Sprintf("%d failed analysis runs reached the threshold of %d", st.FailedChecks, plan.Threshold))
	}
}

// analyse applies one run's readings.
func analyse(s Snapshot, now time.Time, d *Decision) {
	st := &d.State
	plan := st.Plan
	readings := append(s.Analysis, hookChecks(s.Hooks[spec.HookRollout])...)
	st.Checks, st.LastRunAt = readings, now
	d.RequeueAfter = plan.Interval.Duration

	var failed, aborted, inconclusive []string
	limit := 0
	for i, r := range readings {
		if r.DryRun {
			continue
		}
		line := r.Name + ": " + r.Reason
		switch r.Verdict {
		case spec.VerdictAbort:
			aborted = append(aborted, line)
		case spec.VerdictFail, spec.VerdictError:
			failed = append(failed, line)
		case spec.VerdictInconclusive:
			inconclusive = append(inconclusive, line)
			l := spec.DefaultInconclusiveLimit
			if i < len(plan.Metrics) && plan.Metrics[i].InconclusiveLimit > 0 {
				l = plan.Metrics[i].InconclusiveLimit
			}
			if limit == 0 || l < limit {
				limit = l
			}
		}
	}
	switch {
	case len(aborted) > 0:
		startRollback(d, now, "abort range breached: "+strings.Join(aborted, "; "))
	case len(failed) > 0:
		failedRun(d, now, failed)
	case len(inconclusive) > 0:
		st.Inconclusive++
		msg := fmt.Sprintf("analysis inconclusive (%d of %d allowed) at weight %d%%: %s", st.Inconclusive, limit, st.Weight, strings.Join(inconclusive, "; "))
		if st.Inconclusive < limit {
			msg += "; waiting (kubectl sluice promote or abort to decide sooner)"
		}
		d.warn(spec.ReasonInconclusive, msg)
		st.Message = msg
		if st.Inconclusive >= limit {
			startRollback(d, now, fmt.Sprintf("%d inconclusive analysis runs reached the limit of %d", st.Inconclusive, limit))
		}
	case plan.Iterative() && st.Iteration+1 < plan.Iterations:
		st.Inconclusive = 0
		resetConsecutive(plan, st)
		st.Iteration++
		st.Message = fmt.Sprintf("analysis passed (%d/%d)", st.Iteration, plan.Iterations)
		d.normal(spec.ReasonAnalysisPassed, fmt.Sprintf("analysis passed (%s); %s iteration %d/%d", summary(readings), plan.Strategy, st.Iteration, plan.Iterations))
	case !gatePassed(s, d, now):
		// A passing run at a closed gate: the release waits there, analysis going on.
		st.Inconclusive = 0
		resetConsecutive(plan, st)
	case plan.Iterative():
		st.Iteration++
		st.Inconclusive = 0
		resetConsecutive(plan, st)
		startPromotion(s, d, now, fmt.Sprintf("analysis passed %d %s iterations (%s)", st.Iteration, plan.Strategy, summary(readings)))
	case st.Step+1 < len(plan.Steps):
		st.Inconclusive = 0
		resetConsecutive(plan, st)
		st.Step++
		st.Weight, st.StepAt = plan.Steps[st.Step], now
		want := wantCanary(s, st)
		d.CanaryReplicas = want
		st.Message = fmt.Sprintf("analysis passed; weight %d%%", st.Weight)
		d.normal(spec.ReasonWeightAdvanced, fmt.Sprintf("analysis passed (%s); advancing canary weight to %d%% (%d replicas)", summary(readings), st.Weight, want))
	default:
		st.Inconclusive = 0
		resetConsecutive(plan, st)
		startPromotion(s, d, now, fmt.Sprintf("analysis passed at the final weight %d%% (%s)", st.Weight, summary(readings)))
	}
}

// gatePassed passes the gate a passing run meets (nextGate), or makes the release wait at it.
func gatePassed(s Snapshot, d *Decision, now time.Time) bool {
	t := nextGate(&d.State)
	if g := gate(s, d, t); g != nil {
		wait(d, g, now)
		return false
	}
	pass(s, d, t, now)
	return true
}

// resetConsecutive clears the failed-run count after a passing run when a check asks for
// consecutive failures only.
func resetConsecutive(plan *spec.Config, st *spec.State) {
	for _, m := range plan.Metrics {
		if m.Consecutive {
			st.FailedChecks = 0
			return
		}
	}
}

func paused(s Snapshot, now time.Time, d *Decision) {
	st := &d.State
	switch {
	case st.AbortReason != "":
		startRollback(d, now, st.AbortReason)
	case names(s.Controls.Abort, st.Revision):
		d.Clear = append(d.Clear, spec.AnnAbort)
		startRollback(d, now, "aborted by "+spec.AnnAbort)
	case !names(s.Controls.Pause, st.Revision):
		st.Phase = st.PausedFrom
		if st.Phase == "" {
			st.Phase = spec.PhaseProgressing
		}
		st.PausedFrom = ""
		// Resume with a fresh interval and deadline: time spent paused says nothing of the canary
		// (a release paused before it started still has its confirm-rollout gate ahead).
		st.LastRunAt = now
		if !st.StepAt.IsZero() {
			st.StepAt = now
		}
		st.Message = "resumed"
		d.normal(spec.ReasonResumed, fmt.Sprintf("release %s resumed at weight %d%%", st.Revision, st.Weight))
		d.RequeueAfter = time.Second
	}
}

func promoting(s Snapshot, now time.Time, d *Decision) {
	st := &d.State
	if st.AbortReason != "" {
		// The webhook saw the template set back to the stable one mid-promotion (a revert):
		// remove the canary; with Revert set, RollingBack then releases the parent on stable.
		startRollback(d, now, st.AbortReason)
		return
	}
	deadline := st.PromotingAt.Add(st.Plan.ProgressDeadline.Duration)
	if st.Plan.Isolated() {
		switch st.PromoteStep {
		case spec.PromoteScale:
			// The canary takes all traffic next, so it first grows to the parent's size.
			want := max(s.Parent.Replicas, 1)
			d.Canary, d.CanaryReplicas = CanaryEnsure, want
			if !canaryReady(s, want) {
				if now.After(deadline) {
					startRollback(d, now, fmt.Sprintf("canary not scaled to %d ready replicas within the progress deadline of %s", want, st.Plan.ProgressDeadline.Duration))
					return
				}
				st.Message = fmt.Sprintf("promoting: scaling canary to %d replicas", want)
				d.RequeueAfter = watched(deadline, now)
				return
			}
			st.PromoteStep, st.Weight, st.StepAt = spec.PromoteShift, 100, now
			st.Message = "promoting: all traffic to the canary"
			d.normal(spec.ReasonTrafficShifted, fmt.Sprintf("all traffic to canary %s (%d replicas) before the Deployment rolls", spec.CanaryName(s.Name), want))
			d.RequeueAfter = time.Second
			return
		case spec.PromoteShift:
			// The routing object sends everything to the canary (written before this state was):
			// once that has settled, the parent may roll.
			if settling(st, now, d) {
				return
			}
			st.PromoteStep = spec.PromoteRollout
			st.Message = rollingOut
			d.RequeueAfter = watched(deadline, now)
			return
		}
	}
	p := s.Parent
	// Once the rollout has been seen done (cleanup), it is not looked at again: the step that
	// recorded it changed the Deployment's annotations, which bumps its generation, so until
	// the Deployment controller observes that, the parent looks not rolled although no pod
	// changes. Cleanup only moves traffic back to the re-pinned <svc>-stable and removes the
	// canary.
	cleanup := st.Plan.Isolated() && st.PromoteStep == spec.PromoteCleanup
	if !cleanup && !rolled(p, st) {
		if now.After(deadline) {
			st.Phase, st.FinishedAt = spec.PhaseFailed, now
			st.Message = fmt.Sprintf("promoted Deployment not fully rolled out within the progress deadline of %s", st.Plan.ProgressDeadline.Duration)
			d.Canary = CanaryDelete
			ended(st)
			d.warn(spec.ReasonPromotionFailed, st.Message)
			return
		}
		// The counts are in the Deployment's status (kubectl sluice status shows them): a message
		// that repeated them would be rewritten at every pod the rolling update replaces.
		st.Message = rollingOut
		d.RequeueAfter = watched(deadline, now)
		return
	}
	if st.Plan.Isolated() && st.PromoteStep == spec.PromoteRollout {
		// Re-pin <svc>-stable to the rolled ReplicaSet and move traffic back to it (in steps of
		// stepWeightPromotion, one per interval, when set); the canary goes only after that.
		st.PromoteStep, st.StablePod, st.Weight, st.StepAt = spec.PromoteCleanup, p.PodHash, backWeight(st.Plan, 100), now
		svc := spec.StableServiceName(st.Plan.ServiceFor(s.Name))
		if st.Weight > 0 {
			st.Message = fmt.Sprintf("rolled out; traffic moving back to the stable Service (%d%% still on the canary)", st.Weight)
			d.normal(spec.ReasonTrafficShifted, fmt.Sprintf("%s re-pinned to the rolled ReplicaSet (%s); %d%% of the traffic back to it", svc, p.PodHash, 100-st.Weight))
			d.RequeueAfter = st.Plan.Interval.Duration
			return
		}
		st.Message = "rolled out; traffic back to the stable Service"
		d.normal(spec.ReasonTrafficShifted, fmt.Sprintf("%s re-pinned to the rolled ReplicaSet (%s); all traffic back to it", svc, p.PodHash))
		d.RequeueAfter = time.Second
		return
	}
	if st.Plan.Isolated() && st.PromoteStep == spec.PromoteCleanup && st.Weight > 0 {
		// stepWeightPromotion: the next step back to stable, an interval after the last.
		if left := st.StepAt.Add(st.Plan.Interval.Duration).Sub(now); left > 0 {
			d.RequeueAfter = left
			return
		}
		st.Weight, st.StepAt = backWeight(st.Plan, st.Weight), now
		st.Message = fmt.Sprintf("rolled out; traffic moving back to the stable Service (%d%% still on the canary)", st.Weight)
		d.normal(spec.ReasonTrafficShifted, fmt.Sprintf("%d%% of the traffic back on the stable Service", 100-st.Weight))
		d.RequeueAfter = st.Plan.Interval.Duration
		if st.Weight == 0 {
			st.Message = "rolled out; traffic back to the stable Service"
			d.RequeueAfter = time.Second
		}
		return
	}
	if s.Canary != nil {
		if st.Plan.Isolated() && settling(st, now, d) {
			return
		}
		// Deleted in this step, before the state that says so is written (a crash in between
		// finds Promoting with no canary, and ends the same way).
		d.Canary = CanaryDelete
	}
	st.Phase, st.FinishedAt = spec.PhaseSucceeded, now
	st.Stable, st.Weight, st.CanaryReady, st.PromoteStep = st.Revision, 0, false, ""
	ended(st)
	st.Message = fmt.Sprintf("promoted %s", st.Image)
	d.normal(spec.ReasonPromoted, fmt.Sprintf("revision %s (%s) promoted and fully rolled out; canary removed", st.Revision, st.Image))
}

// rollingOut is the message of a promotion while the Deployment rolls.
const rollingOut = "promoting: rolling out the Deployment"

// rolled reports whether the parent p has rolled out the revision of st: unpaused on it,
// observed, every replica updated with no old one left, and enough of them available (the
// plan's primaryReadyThreshold).
func rolled(p Workload, st *spec.State) bool {
	return !p.Paused && p.Revision == st.Revision && p.ObservedGeneration >= p.Generation &&
		p.UpdatedReplicas == p.Replicas && p.StatusReplicas == p.Replicas &&
		p.AvailableReplicas >= spec.ReadyCount(p.Replicas, st.Plan.PrimaryReadyThreshold)
}

func rollingBack(s Snapshot, now time.Time, d *Decision) {
	st := &d.State
	if s.Canary != nil {
		if st.Plan != nil && st.Plan.Isolated() && settling(st, now, d) {
			return
		}
		// RollingBack was recorded in an earlier step: the canary goes now, before the state
		// that ends the release is written (a crash in between ends it the same way).
		d.Canary = CanaryDelete
	}
	st.Weight, st.CanaryReady, st.FinishedAt = 0, false, now
	ended(st)
	if st.Revert {
		// The template is the stable one again: releasing the hold changes no pod.
		st.Phase, st.Revert, st.AbortReason = spec.PhaseIdle, false, ""
		st.Message = "rolled back: the template is the stable revision " + st.Stable + " again"
		d.normal(spec.ReasonRolledBack, fmt.Sprintf("canary of revision %s removed; the Deployment is back on stable revision %s", st.Revision, st.Stable))
		return
	}
	st.Phase, st.FailedRevision = spec.PhaseFailed, st.Revision
	st.Message = "rolled back: " + st.AbortReason
	d.warn(spec.ReasonRolledBack, fmt.Sprintf("canary of revision %s removed; stable revision %s keeps serving (%s)", st.Revision, st.Stable, st.AbortReason))
}

func failed(s Snapshot, now time.Time, d *Decision) {
	st := &d.State
	if s.Canary != nil {
		d.Canary = CanaryDelete
	}
	if !postRollout(s, d) {
		return
	}
	if !names(s.Controls.Retry, s.Parent.Revision) {
		settled(s, now, d)
		return
	}
	d.Clear = append(d.Clear, spec.AnnRetry)
	if s.Config == nil {
		d.warn(spec.ReasonInvalidConfig, "cannot retry: "+s.ConfigErr)
		return
	}
	*st = spec.NewRelease(*st, spec.Release{
		Revision: s.Parent.Revision, Stable: st.Stable, Image: st.Image, Plan: *s.Config, At: now, Message: "retrying",
	})
	d.Starts = true
	d.normal(spec.ReasonRetrying, fmt.Sprintf("retrying revision %s by %s", s.Parent.Revision, spec.AnnRetry))
	d.RequeueAfter = time.Second
}

func startRollback(d *Decision, now time.Time, reason string) {
	st := &d.State
	st.Phase, st.AbortReason, st.Message = spec.PhaseRollingBack, reason, "rolling back: "+reason
	st.PromoteStep, st.Gate = "", nil
	// The canary goes in the next step, once RollingBack is recorded: deleted in this one, a
	// crash before the state patch would leave a Progressing release without its canary, and
	// the restarted worker would create the failed version's pods again.
	d.Canary = CanaryKeep
	if st.Plan != nil && st.Plan.Isolated() {
		// Traffic leaves the canary first: this state sends it all to stable, and the canary
		// is deleted once that has settled.
		st.StepAt = now
	}
	d.RequeueAfter = poll
	d.warn(spec.ReasonRollingBack, fmt.Sprintf("rolling back revision %s: %s", st.Revision, reason))
}

// startPromotion decides to promote and takes the promotion's first step in the same decision:
// nothing is awaited between the two, so they are one state write — the parent released (or a
// canary already at the parent's size, a blue/green one, given all traffic) at once, not a poll
// later. The message is that step's; the Promoting Event says why. The one step not taken at
// once is the last: a parent found rolled already (unpaused past Sluice) is recorded Promoting
// first, since Succeeded is only ever recorded from a recorded promotion.
func startPromotion(s Snapshot, d *Decision, now time.Time, reason string) {
	st := &d.State
	st.Phase, st.PromotingAt = spec.PhasePromoting, now
	st.PromoteStep, st.Gate = spec.PromoteScale, nil
	d.Canary = CanaryKeep
	d.normal(spec.ReasonPromoting, fmt.Sprintf("promoting revision %s: %s", st.Revision, reason))
	if !st.Plan.Isolated() && rolled(s.Parent, st) {
		st.Message = "promoting: " + reason
		d.RequeueAfter = poll
		return
	}
	promoting(s, now, d)
}

// approved consumes a promote approval of the release in flight (clearStale has cleared one
// naming any other revision).
func approved(s Snapshot, d *Decision) bool {
	if !names(s.Controls.Promote, d.State.Revision) {
		return false
	}
	d.Clear = append(d.Clear, spec.AnnPromote)
	return true
}

func (d *Decision) normal(reason spec.Reason, msg string) {
	d.Events = append(d.Events, spec.NormalEvent(reason, msg))
}

func (d *Decision) warn(reason spec.Reason, msg string) {
	d.Events = append(d.Events, spec.WarningEvent(reason, msg))
}

// canaryReplicas converts a traffic weight into canary replicas for the replicas router:
// weight w of the traffic goes to the canary when canary/(parent+canary) = w/100.
func canaryReplicas(parent int32, weight int) int32 {
	if weight >= 100 {
		return max(parent, 1)
	}
	n := int32(math.Ceil(float64(parent) * float64(weight) / float64(100-weight)))
	return max(n, 1)
}

// wantCanary is the canary's size while progressing: its share of the parent for the replicas
// router, the parent's size for an isolated canary (the routing object sets its traffic).
func wantCanary(s Snapshot, st *spec.State) int32 {
	if st.Plan != nil && st.Plan.Isolated() {
		return max(s.Parent.Replicas, 1)
	}
	return canaryReplicas(s.Parent.Replicas, st.Weight)
}

// atWeight describes the canary's exposure for messages.
func atWeight(st *spec.State) string {
	if st.Plan.Iterative() {
		return fmt.Sprintf(" (%s, iteration %d/%d)", st.Plan.Strategy, st.Iteration, st.Plan.Iterations)
	}
	return fmt.Sprintf(" at weight %d%%", st.Weight)
}

func exposure(st *spec.State) string {
	switch st.Plan.Strategy {
	case spec.StrategyBlueGreen:
		return " (blue/green: no live traffic)"
	case spec.StrategyAB:
		return fmt.Sprintf(" (A/B: %d match(es) to the canary)", len(st.Plan.Matches))
	case spec.StrategyMirror:
		return fmt.Sprintf(" (mirror: %d%% of requests copied)", st.Plan.MirrorPercent)
	}
	return fmt.Sprintf(" at weight %d%%", st.Weight)
}

// CanaryReplicas is exported for the reconciler's status line.
func CanaryReplicas(parent int32, weight int) int32 { return canaryReplicas(parent, weight) }

func canaryReady(s Snapshot, want int32) bool {
	c := s.Canary
	threshold := 0
	if s.State.Plan != nil {
		threshold = s.State.Plan.CanaryReadyThreshold
	}
	return c != nil && c.Revision == s.State.Revision && c.Replicas == want &&
		c.ObservedGeneration >= c.Generation && c.UpdatedReplicas >= want && c.AvailableReplicas >= spec.ReadyCount(want, threshold)
}

// backWeight is the canary's weight after the next step of traffic back to the stable Service
// at the end of an isolated promotion, from weight: down by stepWeightPromotion, or to 0 at
// once when it is not set.
func backWeight(plan *spec.Config, weight int) int {
	if plan.StepWeightPromotion <= 0 {
		return 0
	}
	return max(weight-plan.StepWeightPromotion, 0)
}

func summary(rs []spec.CheckResult) string {
	parts := make([]string, 0, len(rs))
	for _, r := range rs {
		v := "no data"
		switch {
		case r.Value != nil:
			v = fmt.Sprintf("%.4g", *r.Value)
		case r.Verdict == spec.VerdictPass:
			v = "ok"
		}
		parts = append(parts, r.Name+"="+v)
	}
	return strings.Join(parts, ", ")
}

func ptr[T any](v T) *T { return &v }
