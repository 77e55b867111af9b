package webhook

import (
	"fmt"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// Input is everything a decision depends on.
type Input struct {
	Operation admissionv1.Operation
	// Old is nil on CREATE.
	Old, New *appsv1.Deployment
	// FromController is true when the writer is Sluice's own identity.
	FromController bool
	Now            time.Time
	Defaults       spec.Defaults
	// RestartBypass lets a template change made only by `kubectl rollout restart` through
	// without a canary.
	RestartBypass bool
	// AllowCrossNamespaceTemplates lets a check's templateRef name another namespace than the
	// Deployment's (the controller's --allow-cross-namespace-templates).
	AllowCrossNamespaceTemplates bool
}

// Row names the row of SPEC §3's decision table that applied; it labels the
// sluice_admission_decisions_total metric and the golden tests.
type Row string

// Rows of the decision table.
const (
	RowController Row = "controller"
	RowNotOptedIn Row = "not-opted-in"
	RowCreate     Row = "create"
	RowInvalid    Row = "invalid"
	RowOptOut     Row = "opt-out"
	RowUnchanged  Row = "unchanged"
	RowRestart    Row = "restart"
	RowSkip       Row = "skip-analysis"
	RowRevert     Row = "revert"
	RowHeldFailed Row = "held-failed"
	RowHeld       Row = "held"
	RowReplaced   Row = "held-replaced"
)

// Outcome is what Decide answers: the row that applied and what to do with the request.
type Outcome struct {
	Row     Row
	Allowed bool
	// Denial is the message of a refused request.
	Denial string
	// Object is the Deployment to store; nil means "as sent".
	Object   *appsv1.Deployment
	Warnings []string
	// Events are emitted by the handler (asynchronously, never under dry-run).
	Events []spec.Event
	// Discarded lists the control annotations the write carried that were dropped because they
	// name no revision in flight.
	Discarded []string
}

// Decide applies SPEC §3's decision table to one admission request.
func Decide(in Input) Outcome {
	if in.FromController {
		return Outcome{Row: RowController, Allowed: true}
	}
	obj := in.New.DeepCopy()
	v := Outcome{Allowed: true}

	if in.Operation == admissionv1.Create || in.Old == nil {
		if !optedIn(obj) {
			return Outcome{Row: RowNotOptedIn, Allowed: true}
		}
		cfg, noEffect, errs := spec.ParseWarn(obj.Annotations, in.Defaults)
		errs = append(errs, crossNamespace(in, obj, cfg)...)
		if errs = append(errs, newControlErrors(nil, obj)...); len(errs) > 0 {
			return deny(spec.FormatErrors(errs))
		}
		v.Warnings = append(v.Warnings, noEffectWarnings(noEffect)...)
		// A new object carries no release: state copied from elsewhere is dropped, and so is
		// any approval (there is nothing to approve yet).
		if dropOwnState(obj) {
			v.Warnings = append(v.Warnings, fmt.Sprintf("sluice: dropped %s: it is written only by Sluice", spec.AnnState))
		}
		v.Row = RowCreate
		discardControls(&v, nil, obj)
		if !equalForPatch(in.New, obj) {
			v.Object = obj
		}
		return v
	}

	old := in.Old
	if !optedIn(old) && !optedIn(obj) {
		return Outcome{Row: RowNotOptedIn, Allowed: true}
	}
	st, err := spec.ReadState(old.Annotations)
	if err != nil {
		// A state Sluice cannot read is treated as no release; the worker reports it.
		st = spec.State{Phase: spec.PhaseIdle}
	}

	if optedIn(old) && !optedIn(obj) {
		// Before the restore below: opting out drops the state, so "kept as it was" would be
		// a false warning.
		return optOut(v, st, old, in.New, obj)
	}
	if restoreOwnState(old, obj) {
		v.Warnings = append(v.Warnings, fmt.Sprintf("sluice: kept %s as it was: it is written only by Sluice", spec.AnnState))
	}

	cfg, noEffect, errs := spec.ParseWarn(obj.Annotations, in.Defaults)
	errs = append(errs, crossNamespace(in, obj, cfg)...)
	if errs = append(errs, newControlErrors(old, obj)...); len(errs) > 0 {
		return deny(spec.FormatErrors(errs))
	}
	if configChanged(old, obj) {
		// Said when the configuration is written, not on every apply of the same manifest.
		v.Warnings = append(v.Warnings, noEffectWarnings(noEffect)...)
	}

	oldHash := spec.TemplateHash(&old.Spec.Template)
	newHash := spec.TemplateHash(&obj.Spec.Template)
	images := spec.Images(&obj.Spec.Template)

	switch {
	case newHash == oldHash:
		v.Row = RowUnchanged
		// Re-assert only a hold that is in place: a promotion that ran out of time is Failed
		// but unpaused, and re-pausing it would freeze a half-finished rolling update.
		if st.Holds() && old.Spec.Paused && !obj.Spec.Paused {
			obj.Spec.Paused = true
			v.Warnings = append(v.Warnings, fmt.Sprintf(
				"sluice: spec.paused stays true while release %s is %s; a manifest that sets spec.paused: false fights the hold on every sync",
				st.Revision, st.Phase))
		}

	case !st.Holds() && st.Phase != spec.PhasePromoting && in.RestartBypass &&
		spec.OnlyRestarted(&old.Spec.Template, &obj.Spec.Template):
		v.Row = RowRestart
		v.Events = append(v.Events, spec.NormalEvent(spec.ReasonRestarted, "template changed only by kubectl rollout restart: restarting without a canary"))
		// The restarted template is the same workload: it stays stable (or unanalysed), so
		// the worker does not report the restart as a change that bypassed the hold.
		switch oldHash {
		case st.Stable:
			next := st
			next.Stable = newHash
			setState(obj, next)
		case st.Unanalysed:
			next := st
			next.Unanalysed = newHash
			setState(obj, next)
		}

	case cfg.SkipAnalysis:
		v.Row = RowSkip
		if st.Holds() || st.Phase.InFlight() {
			obj.Spec.Paused = false
		}
		next := spec.State{Phase: spec.PhaseIdle, Stable: newHash, FailedRevision: st.FailedRevision,
			Message: fmt.Sprintf("%s released without analysis (%s)", images, spec.AnnSkipAnalysis), FinishedAt: in.Now}
		setState(obj, next)
		msg := fmt.Sprintf("%s is \"true\": %s goes out without canary analysis", spec.AnnSkipAnalysis, images)
		v.Warnings = append(v.Warnings, "sluice: "+msg)
		v.Events = append(v.Events, spec.WarningEvent(spec.ReasonBypassed, msg))

	case (st.Holds() || st.Phase.InFlight()) && newHash == st.Stable:
		v.Row = RowRevert
		next := st
		if st.Phase == spec.PhaseFailed {
			// Nothing in flight: the canary is gone and the stable ReplicaSet already runs
			// this template, so releasing the hold changes no pod.
			obj.Spec.Paused = false
			next = spec.State{Phase: spec.PhaseIdle, Stable: st.Stable, FailedRevision: st.FailedRevision,
				Message: "template set back to the stable revision " + st.Stable, FinishedAt: in.Now}
		} else {
			obj.Spec.Paused = true
			next.Revert = true
			next.AbortReason = "template set back to the stable revision " + st.Stable
		}
		setState(obj, next)
		v.Warnings = append(v.Warnings, fmt.Sprintf(
			"sluice: %s is the stable revision %s: release %s is rolled back, stable pods are untouched", images, st.Stable, st.Revision))

	case newHash == st.FailedRevision && (st.Holds() || st.Phase.InFlight()):
		v.Row = RowHeldFailed
		obj.Spec.Paused = true
		next := st
		next.Phase = spec.PhaseFailed
		next.Revision = newHash
		next.Image = images
		next.Message = fmt.Sprintf("revision %s failed before; it is not retried until the template changes or %s is set", newHash, spec.AnnRetry)
		if st.Phase != spec.PhaseFailed {
			next.AbortReason = "replaced by revision " + newHash + ", which failed before"
		}
		setState(obj, next)
		v.Warnings = append(v.Warnings, "sluice: held "+images+": "+next.Message)

	default:
		v.Row = RowHeld
		stable := oldHash
		if st.Holds() || (st.Phase.InFlight() && st.Phase != spec.PhasePromoting) {
			stable = st.Stable
		}
		if st.Phase.InFlight() && st.Phase != spec.PhaseRollingBack {
			v.Row = RowReplaced
			v.Warnings = append(v.Warnings, fmt.Sprintf(
				"sluice: release %s in flight is replaced by %s; analysis restarts on the newest template", st.Revision, newHash))
		}
		obj.Spec.Paused = true
		setState(obj, spec.NewRelease(st, spec.Release{
			Revision: newHash, Stable: stable, Image: images, Plan: cfg, At: in.Now, Message: "held for canary analysis",
		}))
		v.Warnings = append(v.Warnings, fmt.Sprintf(
			"sluice: held %s for canary analysis; watch with kubectl sluice status %s", images, obj.Name))
		v.Events = append(v.Events, spec.NormalEvent(spec.ReasonReleaseHeld,
			fmt.Sprintf("held revision %s (%s) for canary analysis; stable revision %s keeps serving", newHash, images, stable)))
	}

	discardControls(&v, old, obj)
	if !equalForPatch(in.New, obj) {
		v.Object = obj
	}
	return v
}

// crossNamespace refuses a check whose templateRef names a MetricTemplate in another namespace,
// and an alert whose providerRef names an AlertProvider in another namespace, unless the
// controller allows it (--allow-cross-namespace-templates covers both): a template or provider
// runs with the Secrets of its own namespace, so a Deployment could otherwise borrow another
// team's credentials or channel.
func crossNamespace(in Input, obj *appsv1.Deployment, cfg spec.Config) field.ErrorList {
	if in.AllowCrossNamespaceTemplates {
		return nil
	}
	var errs field.ErrorList
	for _, m := range cfg.Metrics {
		if r := m.TemplateRef; r != nil && r.Namespace != "" && r.Namespace != obj.Namespace {
			errs = append(errs, field.Forbidden(field.NewPath(fmt.Sprintf("%s[%s].templateRef.namespace", spec.AnnMetrics, m.Name)),
				fmt.Sprintf("MetricTemplate %s/%s is in another namespace than the Deployment (%s); the controller allows that only with --allow-cross-namespace-templates", r.Namespace, r.Name, obj.Namespace)))
		}
	}
	return append(errs, spec.CrossNamespaceAlerts(spec.AnnAlerts, cfg.Alerts, obj.Namespace)...)
}

// newControlErrors refuses a control annotation this write sets to something that is not a
// revision (a bare "true" approves nothing in particular, so it could approve the next release).
// A malformed value the object already carried — written before this version, or while the
// webhook was bypassed — is not refused here: discardControls drops it, so the write goes on.
func newControlErrors(old, obj *appsv1.Deployment) field.ErrorList {
	var errs field.ErrorList
	for _, k := range spec.ControlAnnotations {
		v, ok := obj.Annotations[k]
		if !ok {
			continue
		}
		if old != nil && old.Annotations[k] == v {
			continue
		}
		if err := spec.CheckControl(k, v); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// discardControls drops every control annotation of obj that does not name the revision in
// flight after this decision (the release held, or the one that failed, for a retry): a
// leftover approval can never act on another release. Each drop is a warning, a Warning Event
// and, counted by the handler, a metric.
func discardControls(v *Outcome, old, obj *appsv1.Deployment) {
	st, err := spec.ReadState(obj.Annotations)
	target := ""
	if err == nil && (st.Phase.InFlight() || st.Phase == spec.PhaseFailed) {
		target = st.Revision
	}
	for _, k := range spec.ControlAnnotations {
		val, ok := obj.Annotations[k]
		if !ok || val == target {
			continue
		}
		delete(obj.Annotations, k)
		why := "no release is in flight"
		if target != "" {
			why = "the release in flight is " + target
		}
		leftover := ""
		if old != nil && old.Annotations[k] == val {
			leftover = " (left over from before)"
		}
		msg := fmt.Sprintf("dropped %s=%s%s: %s; controls act only on the revision they name", k, val, leftover, why)
		v.Warnings = append(v.Warnings, "sluice: "+msg)
		v.Events = append(v.Events, spec.WarningEvent(spec.ReasonControlDiscarded, msg))
		v.Discarded = append(v.Discarded, k)
	}
}

func optOut(v Outcome, st spec.State, old, sent, obj *appsv1.Deployment) Outcome {
	v.Row = RowOptOut
	if st.Holds() && old.Spec.Paused && obj.Spec.Paused {
		obj.Spec.Paused = false
		v.Warnings = append(v.Warnings, fmt.Sprintf(
			"sluice: opted out: unpausing releases %s without analysis", spec.Images(&obj.Spec.Template)))
	}
	msg := "opted out (" + spec.LabelEnabled + " removed): Sluice no longer holds template changes of this Deployment"
	evType := corev1.EventTypeNormal
	if st.Phase.InFlight() {
		v.Warnings = append(v.Warnings, "sluice: opted out: release "+st.Revision+" is abandoned and its canary removed")
		msg += "; release " + st.Revision + " is abandoned and its canary removed"
		evType = corev1.EventTypeWarning
	}
	if !obj.Spec.Paused && old.Spec.Paused && st.Holds() {
		msg += "; unpaused: " + spec.Images(&obj.Spec.Template) + " goes out without analysis"
		evType = corev1.EventTypeWarning
	}
	v.Events = append(v.Events, spec.Event{Type: evType, Reason: spec.ReasonOptedOut, Message: msg})
	dropOwnState(obj)
	if !equalForPatch(sent, obj) {
		v.Object = obj
	}
	return v
}

func deny(msg string) Outcome {
	return Outcome{Row: RowInvalid, Denial: msg}
}

func optedIn(d *appsv1.Deployment) bool {
	return d.Labels[spec.LabelEnabled] == spec.ValueEnabled
}

func setState(d *appsv1.Deployment, st spec.State) {
	if d.Annotations == nil {
		d.Annotations = map[string]string{}
	}
	d.Annotations[spec.AnnState] = st.Encode()
}

// restoreOwnState puts Sluice's own annotations back as they were on old; it reports whether
// the write had changed or dropped any.
func restoreOwnState(old, obj *appsv1.Deployment) bool {
	changed := false
	for _, k := range spec.OwnStateAnnotations {
		ov, oldHas := old.Annotations[k]
		nv, newHas := obj.Annotations[k]
		if oldHas == newHas && ov == nv {
			continue
		}
		changed = true
		if !oldHas {
			delete(obj.Annotations, k)
			continue
		}
		if obj.Annotations == nil {
			obj.Annotations = map[string]string{}
		}
		obj.Annotations[k] = ov
	}
	return changed
}

func dropOwnState(d *appsv1.Deployment) bool {
	dropped := false
	for _, k := range spec.OwnStateAnnotations {
		if _, ok := d.Annotations[k]; ok {
			delete(d.Annotations, k)
			dropped = true
		}
	}
	return dropped
}

// equalForPatch reports whether obj differs from sent in what Decide may change: annotations
// and spec.paused.
func equalForPatch(sent, obj *appsv1.Deployment) bool {
	if sent.Spec.Paused != obj.Spec.Paused || len(sent.Annotations) != len(obj.Annotations) {
		return false
	}
	for k, v := range sent.Annotations {
		if ov, ok := obj.Annotations[k]; !ok || ov != v {
			return false
		}
	}
	return true
}

// noEffectWarnings are the admission warnings for what a configuration asks that has no
// effect (spec.ParseWarn).
func noEffectWarnings(msgs []string) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = "sluice: " + m
	}
	return out
}

// configChanged reports whether an update changes any configuration annotation.
func configChanged(old, obj *appsv1.Deployment) bool {
	for _, k := range spec.ConfigAnnotations {
		v, ok := obj.Annotations[k]
		ov, ook := old.Annotations[k]
		if v != ov || ok != ook {
			return true
		}
	}
	return false
}
