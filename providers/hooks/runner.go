package hooks

import (
	"context"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// Runner defaults.
const (
	// DefaultConcurrency bounds the hook calls in flight at once, across all releases
	// (--hook-concurrency).
	DefaultConcurrency = 64
	// DefaultForget is how long the answers of a release nobody asks about are kept.
	DefaultForget = time.Hour
)

// Runner calls the hooks of releases in the background for the rollout worker (it implements
// rollout.HookRunner, which this package does not import): the worker asks for the answers of a
// round of calls, gets what has answered so far, and is woken (Wake) once every call of the
// round has answered. No call ever runs on the worker's goroutine, and no lock is held while a
// call is made, so a hook that hangs for its whole timeout delays only its own release.
//
// A round is identified by the release (namespace/name), its revision, the hook type and the
// round's time: asked again, the same round is answered from memory, never called twice; any
// other round of the same release and type replaces it (its calls still in flight are
// cancelled, their answers dropped). At most Concurrency calls are in flight at once; a call
// beyond that waits for a slot instead of failing. The answers of releases nobody asked about
// for Forget are dropped, so memory follows the releases in flight.
type Runner struct {
	// Wake is called, outside any lock, once every call of a round has answered, so that the
	// worker looks at the release again; nil means nobody is told. Set it before the first
	// Results.
	Wake func(namespace, name string)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Forget is how long the answers of a release not asked about are kept; 0 means
	// DefaultForget. Rounds with calls in flight are kept until those end (within their
	// Budget).
	Forget time.Duration

	ctx    context.Context
	caller *Caller
	slots  chan struct{}

	mu     sync.Mutex
	rounds map[roundKey]*round
	swept  time.Time
}

// NewRunner returns a Runner making calls with c, at most concurrency at once (at least 1).
// Calls end, unanswered, when ctx ends.
func NewRunner(ctx context.Context, c *Caller, concurrency int) *Runner {
	return &Runner{ctx: ctx, caller: c, slots: make(chan struct{}, max(concurrency, 1)), rounds: map[roundKey]*round{}}
}

type roundKey struct {
	namespace, name string
	typ             spec.HookType
}

// round is one round of calls of one release's hooks of one type.
type round struct {
	revision string
	at       time.Time
	answers  []*spec.HookResult // in the hooks' order; nil while in flight
	pending  int
	asked    time.Time
	cancel   context.CancelFunc
}

// Results returns the answers of hooks hs (all of one type, in order) for round at of the
// release c, and whether every call has answered. Calls not yet made are started in the
// background; while any is in flight done is false, rs holds the answers so far (in the hooks'
// order, the unanswered left out) and Wake follows once all have answered. No hooks: done.
func (r *Runner) Results(c spec.HookCall, hs []spec.Hook, at time.Time) (rs []spec.HookResult, done bool) {
	if len(hs) == 0 {
		return nil, true
	}
	now := r.now()
	key := roundKey{namespace: c.Namespace, name: c.Name, typ: hs[0].HookKind()}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sweep(now)
	rd := r.rounds[key]
	if rd == nil || rd.revision != c.Revision || !rd.at.Equal(at) || len(rd.answers) != len(hs) {
		if rd != nil {
			rd.cancel()
		}
		rd = r.start(key, c, hs, at)
	}
	rd.asked = now
	for _, a := range rd.answers {
		if a != nil {
			rs = append(rs, *a)
		}
	}
	return rs, rd.pending == 0
}

// start begins round at of hs for release c. r.mu is held.
func (r *Runner) start(key roundKey, c spec.HookCall, hs []spec.Hook, at time.Time) *round {
	ctx, cancel := context.WithCancel(r.ctx)
	rd := &round{revision: c.Revision, at: at, answers: make([]*spec.HookResult, len(hs)), pending: len(hs), cancel: cancel}
	r.rounds[key] = rd
	for i, h := range hs {
		go r.call(ctx, key, rd, i, h, NewPayload(h, c))
	}
	return rd
}

// call makes one call of round rd, once a slot is free, and records its answer.
func (r *Runner) call(ctx context.Context, key roundKey, rd *round, i int, h spec.Hook, p Payload) {
	var res Result
	select {
	case r.slots <- struct{}{}:
		res = r.caller.Call(ctx, h, p)
		<-r.slots
	case <-ctx.Done():
		res = Result{Outcome: Unreachable, Err: ctx.Err()}
	}
	if r.answer(key, rd, i, h, res) && r.Wake != nil {
		r.Wake(key.namespace, key.name)
	}
}

// answer records the answer of call i of rd and reports whether it was the round's last. The
// answer of a round that was replaced is dropped.
func (r *Runner) answer(key roundKey, rd *round, i int, h spec.Hook, res Result) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rounds[key] != rd || rd.answers[i] != nil {
		return false
	}
	rd.answers[i] = &spec.HookResult{Name: h.Name, Type: h.HookKind(), Outcome: outcome(res.Outcome), Reason: res.Reason()}
	rd.pending--
	if rd.pending > 0 {
		return false
	}
	rd.cancel()
	return true
}

// outcome is the planner's name of a call's outcome.
func outcome(o Outcome) spec.HookOutcome {
	switch o {
	case Passed:
		return spec.HookPassed
	case Refused:
		return spec.HookRefused
	default:
		return spec.HookUnreachable
	}
}

// sweep drops the answered rounds nobody asked about for Forget, at most once a tenth of it.
// r.mu is held.
func (r *Runner) sweep(now time.Time) {
	forget := r.Forget
	if forget <= 0 {
		forget = DefaultForget
	}
	if now.Sub(r.swept) < forget/10 {
		return
	}
	r.swept = now
	for k, rd := range r.rounds {
		if rd.pending == 0 && now.Sub(rd.asked) >= forget {
			delete(r.rounds, k)
		}
	}
}

// Len is the number of rounds kept (answered or in flight).
func (r *Runner) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.rounds)
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}
