package spec

import "time"

// HookOutcome is how a hook call ended, as the planner sees it.
type HookOutcome string

// Hook outcomes (Flagger's rule: only an answer of 200–202 is a yes).
const (
	// HookPassed: the hook answered 200, 201 or 202 — a gate is open, a check passed, a
	// rollback is asked for.
	HookPassed HookOutcome = "passed"
	// HookRefused: the hook answered with any other status.
	HookRefused HookOutcome = "refused"
	// HookUnreachable: no answer after every retry (connection error, timeout).
	HookUnreachable HookOutcome = "unreachable"
)

// HookResult is the answer of one hook call.
type HookResult struct {
	Name    string      `json:"name"`
	Type    HookType    `json:"type"`
	Outcome HookOutcome `json:"outcome"`
	// Reason is the answer in a few words for messages, e.g. `HTTP 403 "gate closed"`.
	Reason string `json:"reason,omitempty"`
}

// Passed reports whether the hook said yes.
func (r HookResult) Passed() bool { return r.Outcome == HookPassed }

// HookCall is what a hook is told about the release it is called for: Flagger's payload's
// name, namespace, phase and checksum (the revision).
type HookCall struct {
	Namespace, Name string
	Phase           Phase
	Revision        string
}

// HooksOf returns the hooks of hs of type t, in order.
func HooksOf(hs []Hook, t HookType) []Hook {
	var out []Hook
	for _, h := range hs {
		if h.HookKind() == t {
			out = append(out, h)
		}
	}
	return out
}

// Gate is the confirm gate a Waiting release waits at.
type Gate struct {
	// Type is the gate: HookConfirmRollout, HookConfirmTrafficIncrease or HookConfirmPromotion.
	Type HookType `json:"type"`
	// Hook names the hook that said no; empty when AnnHalt closed the gate.
	Hook string `json:"hook,omitempty"`
	// Reason is the hook's answer (or why the gate is closed).
	Reason string `json:"reason,omitempty"`
	// MuteAlert is the refusing hook's muteAlert: the wait is not alerted.
	MuteAlert bool `json:"muteAlert,omitempty"`
	// Since is when the release began to wait; CheckedAt when the gate was last asked.
	Since     time.Time `json:"since"`
	CheckedAt time.Time `json:"checkedAt,omitzero"`
}

// Notice is what one step of a release tells the release's event hooks and alert targets: the
// step's Events and the release as they describe it. The reconciler hands it over after the
// step's writes; sending it never delays a release.
type Notice struct {
	Namespace, Name string
	Revision, Image string
	Phase           Phase
	Weight          int
	// Checks are the last readings (the failing check and its value go into alerts).
	Checks []CheckResult
	// Hooks are the release's hooks (those of type event receive every Event) and Alerts its
	// alert targets.
	Hooks  []Hook
	Alerts []Alert
	Events []Event
	At     time.Time
}
