package spec

import (
	"encoding/json"
	"fmt"
	"time"
)

// Phase is where a release stands; the package doc draws how phases follow each other.
type Phase string

// Phases of SPEC §4.
const (
	PhaseIdle        Phase = "Idle"
	PhaseProgressing Phase = "Progressing"
	PhaseWaiting     Phase = "Waiting"
	PhasePaused      Phase = "Paused"
	PhasePromoting   Phase = "Promoting"
	PhaseSucceeded   Phase = "Succeeded"
	PhaseRollingBack Phase = "RollingBack"
	PhaseFailed      Phase = "Failed"
)

// InFlight reports whether a release is under way: the parent is held (or being promoted) and a
// canary may exist.
func (p Phase) InFlight() bool {
	switch p {
	case PhaseProgressing, PhaseWaiting, PhasePaused, PhasePromoting, PhaseRollingBack:
		return true
	}
	return false
}

// Holds reports whether the parent stays paused in this phase, whatever the release's router
// and promotion step: the phase part of State.Holds, which is the rule to use.
func (p Phase) Holds() bool {
	switch p {
	case PhaseProgressing, PhaseWaiting, PhasePaused, PhaseRollingBack, PhaseFailed:
		return true
	}
	return false
}

// PromoteStep orders the promotion of an isolated canary (SPEC §4, drawn in the package doc):
// the canary is scaled to full size, all traffic moves to it, the parent is unpaused and rolls,
// `<svc>-stable` is re-pinned to the new ReplicaSet and traffic moves back to it, and the
// canary is deleted.
type PromoteStep string

// Promotion steps, in order.
const (
	PromoteScale   PromoteStep = ""
	PromoteShift   PromoteStep = "shift"
	PromoteRollout PromoteStep = "rollout"
	PromoteCleanup PromoteStep = "cleanup"
)

// Holds is the rule for which releases keep the parent paused (spec.paused: true): every phase
// that holds (Phase.Holds: Progressing, Waiting, Paused, RollingBack, Failed), and a promotion of
// an isolated canary until all traffic has moved to the canary and settled (PromoteScale,
// PromoteShift) — an unpause during the shift would roll the parent while the old routing may
// still send it traffic. The webhook re-asserts a hold in place by it, and the planner sets
// spec.paused from it once per step (rollout/plan).
func (s State) Holds() bool {
	return s.Phase.Holds() || s.Phase == PhasePromoting && s.Plan != nil && s.Plan.Isolated() &&
		(s.PromoteStep == PromoteScale || s.PromoteStep == PromoteShift)
}

// Release is what starts a release: the revision (template hash) to release and the
// configuration frozen for it.
type Release struct {
	Revision string
	// Stable is the revision the parent's pods keep serving while the release runs.
	Stable string
	// Image describes the revision's images, for messages.
	Image   string
	Plan    Config
	At      time.Time
	Message string
}

// NewRelease is the state of release r replacing prev: Progressing from its first step, with no
// counters, checks, canary, routing or controls of prev. Only FailedRevision carries over (a
// revision that failed before stays held while another is released) — unless it is the revision
// released now: a retry, or a re-apply after the template went elsewhere, is a new attempt, and
// if its analysis passes but its rolling update runs out of time it must count as analysed
// (Failed with FailedRevision == Revision means "rolled back"). Both the webhook (a new
// template held) and the planner (`sluice.dev/retry`) start releases with it.
func NewRelease(prev State, r Release) State {
	failed := prev.FailedRevision
	if failed == r.Revision {
		failed = ""
	}
	plan := r.Plan
	return State{
		Phase: PhaseProgressing, Revision: r.Revision, Stable: r.Stable, FailedRevision: failed,
		Image: r.Image, StartedAt: r.At, Plan: &plan, Message: r.Message,
	}
}

// Routing is the traffic a router must send to the canary.
type Routing struct {
	// Weight is the percent of requests the canary gets (0..100).
	Weight int `json:"weight"`
	// Matches send requests matching any of them to the canary, whatever the weight.
	Matches []Match `json:"matches,omitempty"`
	// Mirror is the percent of requests copied to the canary, responses discarded (0 = off).
	Mirror int `json:"mirror,omitempty"`
	// Sticky keeps users on the canary once the weights sent them there.
	Sticky *Sticky `json:"sticky,omitempty"`
}

// Sticky is cookie session affinity as a router sets it: the canary's responses carry
// Set-Cookie SetCookie(), and requests whose cookie Cookie has value Value go to the canary.
type Sticky struct {
	Cookie string `json:"cookie"`
	// Value is the release's revision, so a cookie from an earlier release matches nothing.
	Value  string `json:"value"`
	MaxAge int    `json:"maxAge"`
}

// SetCookie is the value of the Set-Cookie header on the canary's responses.
func (s Sticky) SetCookie() string {
	return fmt.Sprintf("%s=%s; Max-Age=%d; Path=/", s.Cookie, s.Value, s.MaxAge)
}

// Match is the A/B match for requests that carry the cookie.
func (s Sticky) Match() Match {
	return Match{Cookies: map[string]StringMatch{s.Cookie: {Exact: s.Value}}}
}

// Routing is what the router must set for this state; active is false when no release needs
// the routing object, which then goes back to the way the user wrote it.
func (s State) Routing() (r Routing, active bool) {
	if s.Plan == nil || !s.Plan.Isolated() {
		return Routing{}, false
	}
	promoting := s.Phase == PhasePromoting && s.PromoteStep != PromoteScale
	switch {
	case promoting:
		return Routing{Weight: s.Weight}, true
	case s.Phase == PhaseProgressing || s.Phase == PhasePaused || s.Phase == PhaseWaiting || s.Phase == PhasePromoting:
		// Until all traffic moves to the canary at promotion, it keeps what analysis saw.
		if !s.CanaryReady {
			return Routing{}, true
		}
		switch s.Plan.Strategy {
		case StrategyCanary:
			r := Routing{Weight: s.Weight}
			if a := s.Plan.SessionAffinity; a != nil && s.Weight > 0 {
				r.Sticky = &Sticky{Cookie: a.CookieName, Value: s.Revision, MaxAge: a.MaxAge}
			}
			return r, true
		case StrategyAB:
			return Routing{Matches: s.Plan.Matches}, true
		case StrategyMirror:
			return Routing{Mirror: s.Plan.MirrorPercent}, true
		}
		return Routing{}, true
	case s.Phase == PhaseRollingBack:
		return Routing{}, true
	}
	return Routing{}, false
}

// Verdict of one check run.
type Verdict string

// Verdicts.
const (
	VerdictPass         Verdict = "pass"
	VerdictFail         Verdict = "fail"
	VerdictAbort        Verdict = "abort"
	VerdictInconclusive Verdict = "inconclusive"
	VerdictError        Verdict = "error"
)

// CheckResult is the last reading of one check.
type CheckResult struct {
	Name    string   `json:"name"`
	Value   *float64 `json:"value,omitempty"`
	Verdict Verdict  `json:"verdict"`
	Reason  string   `json:"reason,omitempty"`
	DryRun  bool     `json:"dryRun,omitempty"`
}

// State is the release record Sluice keeps in the Deployment's `sluice.dev/state` annotation.
// It is the only place release progress lives, so a restarted controller resumes from it.
type State struct {
	Phase Phase `json:"phase"`
	// Revision is the hash of the held (canary) pod template.
	Revision string `json:"revision,omitempty"`
	// Stable is the hash of the pod template the stable ReplicaSet runs.
	Stable string `json:"stable,omitempty"`
	// FailedRevision is the last revision that was rolled back; it is not retried until the
	// template changes or `sluice.dev/retry` is set.
	FailedRevision string `json:"failedRevision,omitempty"`
	// Image is a short description of the held template's images, for messages.
	Image string `json:"image,omitempty"`

	Step         int           `json:"step"`
	Weight       int           `json:"weight"`
	Iteration    int           `json:"iteration,omitempty"`
	FailedChecks int           `json:"failedChecks"`
	Inconclusive int           `json:"inconclusive"`
	Checks       []CheckResult `json:"checks,omitempty"`
	// CanaryReady is set once the canary first became ready.
	CanaryReady bool `json:"canaryReady,omitempty"`
	// AbortReason, when set by the webhook or a user abort, makes the worker roll back.
	AbortReason string `json:"abortReason,omitempty"`
	// Revert marks a rollback because the template went back to the stable one: when the canary
	// is gone the parent is released (no pod changes) and the phase returns to Idle.
	Revert bool `json:"revert,omitempty"`
	// PausedFrom is the phase to resume when `sluice.dev/pause` is removed.
	PausedFrom Phase `json:"pausedFrom,omitempty"`
	// StablePod is the pod-template-hash of the stable ReplicaSet, which `<svc>-stable` selects
	// (isolated canaries only: mesh routers and blue/green).
	StablePod string `json:"stablePod,omitempty"`
	// PromoteStep is where the promotion of an isolated canary stands (PromoteScale …).
	PromoteStep PromoteStep `json:"promoteStep,omitempty"`
	// Gate is the confirm gate a Waiting release waits at.
	Gate *Gate `json:"gate,omitempty"`
	// PostRollout is set when the release ended and its post-rollout hooks are still to be
	// called (the step after the end calls them, so a restart in between still does).
	PostRollout bool `json:"postRollout,omitempty"`
	// Unanalysed is a revision the worker found running on the pods with no release in flight
	// and no analysis (the hold was bypassed); it is reported once and never becomes Stable.
	Unanalysed   string    `json:"unanalysed,omitempty"`
	UnanalysedAt time.Time `json:"unanalysedAt,omitzero"`

	StartedAt   time.Time `json:"startedAt,omitzero"`
	StepAt      time.Time `json:"stepAt,omitzero"`
	LastRunAt   time.Time `json:"lastRunAt,omitzero"`
	PromotingAt time.Time `json:"promotingAt,omitzero"`
	FinishedAt  time.Time `json:"finishedAt,omitzero"`
	// Message says, in a sentence, why the release is where it is.
	Message string `json:"message,omitempty"`

	// Plan is the configuration frozen when the release started.
	Plan *Config `json:"plan,omitempty"`
}

// ReadState parses the state annotation; a missing annotation is the Idle state.
func ReadState(ann map[string]string) (State, error) {
	raw, ok := ann[AnnState]
	if !ok || raw == "" {
		return State{Phase: PhaseIdle}, nil
	}
	var s State
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return State{Phase: PhaseIdle}, fmt.Errorf("parse %s: %w", AnnState, err)
	}
	if s.Phase == "" {
		s.Phase = PhaseIdle
	}
	return s, nil
}

// Encode renders the state for the annotation.
func (s State) Encode() string {
	b, err := json.Marshal(s)
	if err != nil {
		// Every field is a plain value; marshalling cannot fail.
		panic(fmt.Sprintf("encode state: %v", err))
	}
	return string(b)
}
