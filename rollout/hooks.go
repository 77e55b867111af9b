package rollout

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/sluice-dev/sluice/rollout/plan"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// HookRunner calls a release's hooks in the background, so that no hook call — which may take
// as long as its timeout, an hour at most — ever occupies a reconcile worker (cmd/sluice wires
// providers/hooks.Runner).
type HookRunner interface {
	// Results returns the answers of hooks hs (all of one type, in order) for call round round
	// of the release c: the time the round became due, so a round is called once however often
	// the release is reconciled meanwhile. Calls not yet made are started; done is false while
	// any is in flight, and the runner then wakes the release (Reconciler.Wake) once all have
	// answered. Results of earlier rounds of the same release and type are forgotten.
	Results(c spec.HookCall, hs []spec.Hook, round time.Time) (rs []spec.HookResult, done bool)
}

// Notifier hands a step's Events to the release's event hooks and alert targets (cmd/sluice
// wires providers/alerts.Dispatcher). Notify never blocks: a slow or failing receiver costs the
// release nothing.
type Notifier interface {
	Notify(n spec.Notice)
}

// Wake asks for a step of the release of Deployment namespace/name soon: the hook runner calls
// it when a round of hooks has answered. It blocks only while the wake-up queue is full.
func (r *Reconciler) Wake(namespace, name string) {
	r.wakeups() <- event.GenericEvent{Object: &metav1.PartialObjectMetadata{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
	}}
}

// wakeups is the channel Wake writes and the controller reads (a source of SetupWithManager).
func (r *Reconciler) wakeups() chan event.GenericEvent {
	r.wakeOnce.Do(func() { r.wake = make(chan event.GenericEvent, 1024) })
	return r.wake
}

// hookResults asks the hook runner for the rounds the step of o needs (plan.HooksDue) and puts
// the answers that are in into the snapshot; it reports whether any round is still running.
func (r *Reconciler) hookResults(o *observed, now time.Time) (pending bool) {
	st := o.state
	for _, round := range plan.HooksDue(o.snap, now) {
		hs := spec.HooksOf(st.Plan.Hooks, round.Type)
		call := spec.HookCall{Namespace: o.parent.Namespace, Name: o.parent.Name, Phase: st.Phase, Revision: st.Revision}
		var rs []spec.HookResult
		done := true
		if r.Hooks == nil {
			rs = noRunner(hs)
		} else {
			rs, done = r.Hooks.Results(call, hs, round.At)
		}
		if !done {
			pending = true
			continue
		}
		if o.snap.Hooks == nil {
			o.snap.Hooks = map[spec.HookType][]spec.HookResult{}
		}
		o.snap.Hooks[round.Type] = rs
	}
	return pending
}

// noRunner answers hooks when the controller runs without a hook runner (never in cmd/sluice).
func noRunner(hs []spec.Hook) []spec.HookResult {
	rs := make([]spec.HookResult, len(hs))
	for i, h := range hs {
		rs[i] = spec.HookResult{Name: h.Name, Type: h.HookKind(), Outcome: spec.HookUnreachable, Reason: "this controller calls no hooks"}
	}
	return rs
}

// notify hands the step's Events to the release's event hooks and alert targets.
func (r *Reconciler) notify(o *observed, d plan.Decision, now time.Time) {
	if r.Notifier == nil || len(d.Events) == 0 {
		return
	}
	st := d.State
	n := spec.Notice{
		Namespace: o.parent.Namespace, Name: o.parent.Name, Revision: st.Revision, Image: st.Image,
		Phase: st.Phase, Weight: st.Weight, Checks: st.Checks, Events: d.Events, At: now,
	}
	if st.Plan != nil {
		n.Hooks, n.Alerts = st.Plan.Hooks, st.Plan.Alerts
	}
	r.Notifier.Notify(n)
}
