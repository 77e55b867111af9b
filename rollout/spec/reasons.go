package spec

import corev1 "k8s.io/api/core/v1"

// Reason is the reason of a Kubernetes Event Sluice emits on a Deployment (SPEC §4: every step
// and transition has its own). `kubectl sluice history` reads them back, so a reason is part of
// the contract: declare each one here, never as a literal where it is emitted
// (TestReasonsDeclared scans the code for that).
type Reason string

// Event is a Kubernetes Event to emit on the Deployment: the webhook's (emitted by its handler,
// never under dry-run) and the planner's (emitted by the reconciler).
type Event struct {
	// Type is corev1.EventTypeNormal or corev1.EventTypeWarning.
	Type    string
	Reason  Reason
	Message string
	// MuteAlert keeps the Event from alert targets (a gate whose hook sets muteAlert); event
	// hooks still receive it.
	MuteAlert bool `json:",omitempty"`
}

// NormalEvent is an Event of type Normal.
func NormalEvent(r Reason, msg string) Event {
	return Event{Type: corev1.EventTypeNormal, Reason: r, Message: msg}
}

// WarningEvent is an Event of type Warning.
func WarningEvent(r Reason, msg string) Event {
	return Event{Type: corev1.EventTypeWarning, Reason: r, Message: msg}
}

// Event reasons. Each doc says when the reason is emitted and with which type: TestReasonsDeclared
// checks the type of every emission whose type it can see against it.
const (
	// The admission webhook.

	// ReasonReleaseHeld (Normal): the webhook held a changed pod template for canary analysis.
	ReasonReleaseHeld Reason = "ReleaseHeld"
	// ReasonRestarted (Normal): a template changed only by `kubectl rollout restart` went through without a canary.
	ReasonRestarted Reason = "Restarted"
	// ReasonBypassed (Warning): `sluice.dev/skip-analysis` let a template through without analysis.
	ReasonBypassed Reason = "Bypassed"
	// ReasonControlDiscarded (Warning): the webhook dropped a control annotation naming no revision in flight.
	ReasonControlDiscarded Reason = "ControlDiscarded"
	// ReasonOptedOut (Normal, or Warning when a release is abandoned or a held template goes out unanalysed): the opt-in label was removed.
	ReasonOptedOut Reason = "OptedOut"

	// The planner: a release's steps.

	// ReasonCanaryReady (Normal): the canary first became ready; the analysis clock starts.
	ReasonCanaryReady Reason = "CanaryReady"
	// ReasonWeightAdvanced (Normal): a run passed and the canary moved to the next weight.
	ReasonWeightAdvanced Reason = "WeightAdvanced"
	// ReasonAnalysisPassed (Normal): a run of a bluegreen, ab or mirror release passed and more iterations follow.
	ReasonAnalysisPassed Reason = "AnalysisPassed"
	// ReasonCheckFailed (Warning): a run failed (a check failed or erred); the failed-run count grew.
	ReasonCheckFailed Reason = "CheckFailed"
	// ReasonInconclusive (Warning): a run returned no data; the release waits.
	ReasonInconclusive Reason = "Inconclusive"
	// ReasonPaused (Normal): `sluice.dev/pause` paused the release.
	ReasonPaused Reason = "Paused"
	// ReasonResumed (Normal): `sluice.dev/pause` was removed and the release resumed.
	ReasonResumed Reason = "Resumed"
	// ReasonPromoting (Normal): analysis passed (or `sluice.dev/promote` approved) and promotion began.
	ReasonPromoting Reason = "Promoting"
	// ReasonTrafficShifted (Normal): an isolated promotion moved all traffic to the canary, or back to the re-pinned stable Service.
	ReasonTrafficShifted Reason = "TrafficShifted"
	// ReasonPromoted (Normal): the promoted Deployment rolled out and the canary is gone.
	ReasonPromoted Reason = "Promoted"
	// ReasonPromotionFailed (Warning): the promoted Deployment did not roll out within the progress deadline.
	ReasonPromotionFailed Reason = "PromotionFailed"
	// ReasonRollingBack (Warning): the release is rolled back (threshold, abortRange, inconclusiveLimit, abort, deadline, revert).
	ReasonRollingBack Reason = "RollingBack"
	// ReasonRolledBack (Warning, or Normal after a revert to the stable template): the canary is gone.
	ReasonRolledBack Reason = "RolledBack"
	// ReasonRetrying (Normal): `sluice.dev/retry` started a new release of the failed revision.
	ReasonRetrying Reason = "Retrying"
	// ReasonWaiting (Warning): a confirm gate is closed (a confirm hook said no, or
	// `sluice.dev/halt`); the release waits in phase Waiting.
	ReasonWaiting Reason = "Waiting"
	// ReasonGateOpened (Normal): the gate a Waiting release waited at opened (its hooks said yes,
	// or `sluice.dev/approve`).
	ReasonGateOpened Reason = "GateOpened"
	// ReasonHookFailed (Warning): a pre-rollout or rollout hook said no (a failed run), or a
	// post-rollout hook did (reported only).
	ReasonHookFailed Reason = "HookFailed"
	// ReasonRollbackRequested (Warning): a rollback hook answered yes.
	ReasonRollbackRequested Reason = "RollbackRequested"

	// The planner: what it refuses or reports.

	// ReasonStaleControl (Warning): the worker cleared a control annotation naming another revision.
	ReasonStaleControl Reason = "StaleControl"
	// ReasonUnanalysed (Warning): a template reached the pods without the admission hold.
	ReasonUnanalysed Reason = "Unanalysed"
	// ReasonInvalidConfig (Warning): a retry could not start because the configuration is invalid.
	ReasonInvalidConfig Reason = "InvalidConfig"
	// ReasonInvalidState (Warning): the release state cannot be read, or a release in flight has no plan.
	ReasonInvalidState Reason = "InvalidState"

	// The reconciler.

	// ReasonNotGuarded (Warning): the Deployment is in a namespace the webhook excludes, so Sluice never releases it.
	ReasonNotGuarded Reason = "NotGuarded"
	// ReasonRoutingFailed (Warning): the routing object could not be set as the release asks.
	ReasonRoutingFailed Reason = "RoutingFailed"
)
