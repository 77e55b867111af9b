package rollout

import (
	"time"

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
