package spec

import (
	"encoding/json"
	"fmt"
	"time"
)

// Phase is where a release stands.
//
//	Idle ──held──▶ Progressing ──checks pass at last step / promote──▶ Promoting ──rolled──▶ Succeeded
//	                 │   ▲  │
//	          pause  ▼   │  └──threshold / abortRange / abort / deadline──▶ RollingBack ──▶ Failed
//	               Paused┘
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

// Holds reports whether the parent must stay paused in this phase.
func (p Phase) Holds() bool {
	switch p {
	case PhaseProgressing, PhaseWaiting, PhasePaused, PhaseRollingBack, PhaseFailed:
		return true
	}
	return false
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
