package alerts

import (
	"strconv"

	corev1 "k8s.io/api/core/v1"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// Severity is the severity of the alert Event e causes, and whether it causes one: every path
// by which a release fails, waits on a person or escapes analysis alerts, and so does a
// promotion; the steps of a healthy release do not (event hooks receive every Event).
//
//	info   Promoted; RolledBack of a revert (Normal: the template went back to the stable one)
//	warn   CheckFailed, Inconclusive, Waiting (unless its hook sets muteAlert),
//	       RoutingFailed, InvalidConfig, NotGuarded, OptedOut (Warning: a held template went
//	       out unanalysed), Bypassed
//	error  RollingBack, RolledBack (Warning), PromotionFailed, HookFailed, RollbackRequested,
//	       Unanalysed, InvalidState
//
// Any other reason alerts nobody (TestEveryWarningReasonIsDecided keeps the list whole).
func Severity(e spec.Event) (spec.AlertSeverity, bool) {
	switch e.Reason {
	case spec.ReasonPromoted:
		return spec.SeverityInfo, true
	case spec.ReasonRolledBack:
		if e.Type == corev1.EventTypeNormal {
			return spec.SeverityInfo, true
		}
		return spec.SeverityError, true
	case spec.ReasonWaiting:
		if e.MuteAlert {
			return "", false
		}
		return spec.SeverityWarn, true
	case spec.ReasonCheckFailed, spec.ReasonInconclusive, spec.ReasonRoutingFailed, spec.ReasonInvalidConfig,
		spec.ReasonNotGuarded, spec.ReasonBypassed:
		return spec.SeverityWarn, true
	case spec.ReasonOptedOut:
		if e.Type != corev1.EventTypeWarning {
			return "", false
		}
		return spec.SeverityWarn, true
	case spec.ReasonRollingBack, spec.ReasonPromotionFailed, spec.ReasonHookFailed, spec.ReasonRollbackRequested,
		spec.ReasonUnanalysed, spec.ReasonInvalidState:
		return spec.SeverityError, true
	}
	return "", false
}

// NewMessage is the alert about Event e of the release n tells of, at severity sev: the
// Event's message, the release's Deployment, revision, image, phase and weight, and its first
// failing check (not a dry run) with the reading.
func NewMessage(n spec.Notice, e spec.Event, sev spec.AlertSeverity) Message {
	m := Message{
		Text: e.Message, Deployment: n.Name, Namespace: n.Namespace, Revision: n.Revision, Image: n.Image,
		Phase: string(n.Phase), Weight: n.Weight, Severity: sev,
	}
	if c, ok := FailingCheck(n.Checks); ok {
		m.Check = c.Name
		switch {
		case c.Reason != "": // the reading and the range it left ("87.5 outside min 99"), or why there is none
			m.Value = c.Reason
		case c.Value != nil:
			m.Value = strconv.FormatFloat(*c.Value, 'g', 6, 64)
		}
	}
	return m
}

// FailingCheck is the check an alert names: the first that failed, aborted or erred, else the
// first without data; dry-run checks never.
func FailingCheck(cs []spec.CheckResult) (spec.CheckResult, bool) {
	for _, want := range [][]spec.Verdict{{spec.VerdictFail, spec.VerdictAbort, spec.VerdictError}, {spec.VerdictInconclusive}} {
		for _, c := range cs {
			if c.DryRun {
				continue
			}
			for _, v := range want {
				if c.Verdict == v {
					return c, true
				}
			}
		}
	}
	return spec.CheckResult{}, false
}

// dedupeKey is the Key of alert m about Event e to target: what it is about and the Event's
// reason, not its message, which may carry readings and counts ("failed 3 of 5") that change
// from one interval to the next while the alert stays the same — a release waiting at a
// closed gate, or failing the same check at the same weight, alerts once per window.
func dedupeKey(target string, m Message, e spec.Event) string {
	m.Text = string(e.Reason)
	return Key(target, m)
}
