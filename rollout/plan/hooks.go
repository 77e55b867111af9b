package plan

import (
	"fmt"
	"time"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// HookRound is one round of calls of the hooks of one type that a step needs answers from: At
// identifies it (when it became due), so a round is called once however often the release is
// looked at before the answers come.
type HookRound struct {
	Type spec.HookType
	At   time.Time
}

// HooksDue lists the hook rounds the step of s at now needs answered before it can decide;
// the gatherer calls them (in the background) and the step waits, writing nothing, until
// every one has answered (Snapshot.Hooks). Only types the release has hooks of are listed.
//
// A release meets its hooks as Flagger's canaries do, at each tick of its interval: before it
// starts, the confirm-rollout gate; once its canary is ready, pre-rollout before any traffic
// is sent to it; at every analysis run, rollout hooks beside the checks and the gate of the
// move a passing run makes (confirm-traffic-increase before the next weight,
// confirm-promotion before promotion); rollback hooks at every one of these ticks; and
// post-rollout once the release has ended.
func HooksDue(s Snapshot, now time.Time) []HookRound {
	st := s.State
	if st.Plan == nil || len(st.Plan.Hooks) == 0 {
		return nil
	}
	var types []spec.HookType
	var at time.Time
	switch {
	case st.PostRollout && !st.Phase.InFlight():
		types, at = []spec.HookType{spec.HookPostRollout}, st.FinishedAt
	case !stepping(s):
		return nil
	case !started(st):
		if g := st.Gate; g != nil {
			if now.Before(g.CheckedAt.Add(st.Plan.Interval.Duration)) {
				return nil
			}
			at = g.CheckedAt
		} else {
			at = st.StartedAt
		}
		types = []spec.HookType{spec.HookConfirmRollout, spec.HookRollback}
	case preRolloutDue(s, now):
		types, at = []spec.HookType{spec.HookPreRollout, spec.HookRollback}, st.LastRunAt
	case AnalysisDue(s, now):
		types, at = []spec.HookType{spec.HookRollout, spec.HookRollback, nextGate(&st)}, st.LastRunAt
	}
	var due []HookRound
	for _, t := range types {
		if len(spec.HooksOf(st.Plan.Hooks, t)) == 0 || isGate(t) && gateDecided(s) {
			continue
		}
		due = append(due, HookRound{Type: t, At: at})
	}
	return due
}

// stepping reports whether the release moves on its own this step: Progressing or Waiting,
// with nothing (abort, pause, an approval, a changed template) about to take it elsewhere.
func stepping(s Snapshot) bool {
	st := s.State
	return (st.Phase == spec.PhaseProgressing || st.Phase == spec.PhaseWaiting) && st.AbortReason == "" &&
		!names(s.Controls.Abort, st.Revision) && !names(s.Controls.Pause, st.Revision) &&
		!names(s.Controls.Promote, st.Revision) && s.Parent.Revision == st.Revision
}

// started reports whether the release got past its confirm-rollout gate (its canary may exist):
// its first step has a time (a resume from a pause before the start keeps it zero).
func started(st spec.State) bool { return !st.StepAt.IsZero() }

// analysing reports whether st is a release whose canary is analysed every interval: one that
// progresses, or waits at a gate after its start (analysis goes on while it waits).
func analysing(st spec.State) bool {
	return (st.Phase == spec.PhaseProgressing || st.Phase == spec.PhaseWaiting) && started(st)
}

// preRolloutDue reports whether the release's pre-rollout hooks are to be called now: its
// canary is ready, no traffic has been sent to it yet, and an interval has passed since the
// last refused round (the first round is due at once).
func preRolloutDue(s Snapshot, now time.Time) bool {
	st := s.State
	return st.Phase == spec.PhaseProgressing && started(st) && !st.CanaryReady && s.RoutingErr == "" &&
		len(spec.HooksOf(st.Plan.Hooks, spec.HookPreRollout)) > 0 &&
		canaryReady(s, wantCanary(s, &st)) &&
		(st.LastRunAt.IsZero() || !now.Before(st.LastRunAt.Add(st.Plan.Interval.Duration)))
}

// nextGate is the gate the next passing analysis run of st meets: confirm-traffic-increase
// before a weight increase, confirm-promotion before promotion.
func nextGate(st *spec.State) spec.HookType {
	plan := st.Plan
	if plan.Iterative() {
		return spec.HookConfirmPromotion
	}
	if st.Step+1 < len(plan.Steps) {
		return spec.HookConfirmTrafficIncrease
	}
	return spec.HookConfirmPromotion
}

func isGate(t spec.HookType) bool {
	return t == spec.HookConfirmRollout || t == spec.HookConfirmTrafficIncrease || t == spec.HookConfirmPromotion
}

// gateDecided reports whether a control decides the release's gates without asking its hooks:
// `sluice.dev/halt` closes them, `sluice.dev/approve` opens the next one.
func gateDecided(s Snapshot) bool {
	return names(s.Controls.Halt, s.State.Revision) || names(s.Controls.Approve, s.State.Revision)
}

// hooksPending reports whether a hook round the step needs has not answered yet.
func hooksPending(s Snapshot, now time.Time) bool {
	for _, r := range HooksDue(s, now) {
		if _, ok := s.Hooks[r.Type]; !ok {
			return true
		}
	}
	return false
}

// gate decides the confirm gate of type t for the release in flight: nil when it is open, else
// the closed gate (`sluice.dev/halt`, or the first of its hooks that did not say yes). An
// approval naming the release opens it, and is consumed.
func gate(s Snapshot, d *Decision, t spec.HookType) *spec.Gate {
	st := &d.State
	switch {
	case names(s.Controls.Halt, st.Revision):
		return &spec.Gate{Type: t, Reason: "halted by " + spec.AnnHalt}
	case names(s.Controls.Approve, st.Revision):
		d.Clear = append(d.Clear, spec.AnnApprove)
		return nil
	}
	hooks := spec.HooksOf(st.Plan.Hooks, t)
	for _, r := range s.Hooks[t] {
		if r.Passed() {
			continue
		}
		g := &spec.Gate{Type: t, Hook: r.Name, Reason: r.Reason}
		for _, h := range hooks {
			if h.Name == r.Name {
				g.MuteAlert = h.MuteAlert
			}
		}
		return g
	}
	return nil
}

// wait records that the release waits at closed gate g: phase Waiting, with a Warning Event
// when it begins to wait there (not at every check: the message stays the same while it
// waits, so a closed gate costs a write per interval at most).
func wait(d *Decision, g *spec.Gate, now time.Time) {
	st := &d.State
	g.CheckedAt = now
	if st.Phase == spec.PhaseWaiting && st.Gate != nil && st.Gate.Type == g.Type {
		g.Since = st.Gate.Since
		st.Gate = g
		return
	}
	g.Since = now
	st.Phase, st.Gate = spec.PhaseWaiting, g
	st.Message = "waiting at the " + gateText(g)
	e := spec.WarningEvent(spec.ReasonWaiting, fmt.Sprintf("release %s waits at the %s%s", st.Revision, gateText(g), atWeight(st)))
	e.MuteAlert = g.MuteAlert
	d.Events = append(d.Events, e)
}

// pass records that the release passed its gate of type t (nothing when it was not waiting).
func pass(s Snapshot, d *Decision, t spec.HookType, now time.Time) {
	st := &d.State
	if st.Phase != spec.PhaseWaiting {
		return
	}
	by := "its webhooks said yes"
	if names(s.Controls.Approve, st.Revision) {
		by = "approved by " + spec.AnnApprove
	}
	waited := ""
	if st.Gate != nil {
		waited = fmt.Sprintf(" after %s", now.Sub(st.Gate.Since).Round(time.Second))
	}
	st.Phase, st.Gate = spec.PhaseProgressing, nil
	d.normal(spec.ReasonGateOpened, fmt.Sprintf("the %s gate of release %s opened%s: %s", t, st.Revision, waited, by))
}

func gateText(g *spec.Gate) string {
	if g.Hook == "" {
		return fmt.Sprintf("%s gate (%s)", g.Type, g.Reason)
	}
	return fmt.Sprintf("%s gate (webhook %s: %s)", g.Type, g.Hook, g.Reason)
}

// rollbackAsked returns the rollback hook that answered yes this step, or "".
func rollbackAsked(s Snapshot) (name, reason string) {
	for _, r := range s.Hooks[spec.HookRollback] {
		if r.Passed() {
			return r.Name, r.Reason
		}
	}
	return "", ""
}

// refusals lists, one line each, the hooks of type t that did not say yes this step.
func refusals(s Snapshot, t spec.HookType) []string {
	var out []string
	for _, r := range s.Hooks[t] {
		if !r.Passed() {
			out = append(out, fmt.Sprintf("%s webhook %s: %s", t, r.Name, r.Reason))
		}
	}
	return out
}

// hookChecks are the rollout hooks' answers as readings of the analysis run they ran with: a
// refusal is a failed check.
func hookChecks(rs []spec.HookResult) []spec.CheckResult {
	out := make([]spec.CheckResult, 0, len(rs))
	for _, r := range rs {
		c := spec.CheckResult{Name: "webhook/" + r.Name, Verdict: spec.VerdictPass, Reason: r.Reason}
		if !r.Passed() {
			c.Verdict = spec.VerdictFail
		}
		out = append(out, c)
	}
	return out
}

// ended marks a release that has just ended for its post-rollout hooks (called by the next
// step, so a restart in between still calls them).
func ended(st *spec.State) {
	st.Gate = nil
	st.PostRollout = st.Plan != nil && len(spec.HooksOf(st.Plan.Hooks, spec.HookPostRollout)) > 0
}

// postRollout takes the answers of the post-rollout hooks of a release that ended: they are
// reported, and change nothing else. It returns false while they have not all answered.
func postRollout(s Snapshot, d *Decision) bool {
	st := &d.State
	if !st.PostRollout {
		return true
	}
	if _, ok := s.Hooks[spec.HookPostRollout]; !ok {
		d.RequeueAfter = st.Plan.Interval.Duration
		return false
	}
	st.PostRollout = false
	for _, line := range refusals(s, spec.HookPostRollout) {
		d.warn(spec.ReasonHookFailed, line+" (reported only: the release has ended)")
	}
	return true
}
