package alerts

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/providers/hooks"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// Dispatcher defaults.
const (
	// DefaultQueue is how many notices wait to be dispatched before more are dropped.
	DefaultQueue = 1000
	// DefaultDedupeWindow is how long the same alert is not repeated (--alert-dedupe-window).
	DefaultDedupeWindow = time.Hour
	// targetQueue is how many posts wait for one receiver (an event hook's URL, an
	// AlertProvider) before more to it are dropped; targetIdle is how long a receiver's
	// goroutine waits for work before it ends.
	targetQueue = 100
	targetIdle  = 5 * time.Minute
	// providerTTL bounds how long a resolved AlertProvider (and its Secret) is reused, so an
	// edit or a rotated Secret is picked up without an API read per alert.
	providerTTL = time.Minute
)

// Secret keys of an AlertProvider's secretRef.
const (
	SecretAddress = "address"
	SecretToken   = "token"
)

// DispatcherOptions configure a Dispatcher.
type DispatcherOptions struct {
	// Defaults are alert targets every release posts to, besides its own (--default-alerts);
	// each names its AlertProvider's namespace.
	Defaults []spec.Alert
	// DedupeWindow: the same alert (Key) is posted at most once per window; 0 means
	// DefaultDedupeWindow.
	DedupeWindow time.Duration
	// Queue is how many notices may wait; 0 means DefaultQueue.
	Queue int
	Log   logr.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Dispatcher hands the notices of the rollout worker (it implements rollout.Notifier, which
// this package does not import) to each release's event hooks and alert targets:
//
//	Notify ──▶ notices (bounded; full: dropped, counted) ──▶ dispatch:
//	  every Event × every event hook ─────────────────────────────┐
//	  every alerting Event (Severity) × (the release's alerts +   │   one queue and goroutine
//	    Defaults), kept by ShouldPost, not repeated (Deduper) ────┴─▶ per receiver (bounded;
//	                                                                   full: dropped, counted)
//
// Notify never blocks. Each receiver — an event hook's URL, an AlertProvider — has its own
// queue, so one that is slow or down delays only the posts to it (an event hook as long as its
// timeout and retries, an alert DefaultTimeout, 5s), never the release, another receiver or
// the worker. Nothing is retried beyond a hook's own retries; failures are logged (without
// addresses or tokens) and counted (sluice_notifications_total).
//
// An alert's AlertProvider is read from its providerRef's namespace (default: the
// Deployment's) with its Secret (keys address and token), through Reader — uncached, since
// Sluice watches neither — and reused for a minute.
type Dispatcher struct {
	reader   client.Reader
	hooks    *hooks.Caller
	defaults []spec.Alert
	dedupe   *Deduper
	log      logr.Logger
	now      func() time.Time
	notices  chan spec.Notice

	mu        sync.Mutex
	targets   map[string]*target
	providers map[types.NamespacedName]resolved
}

// target is the queue of one receiver.
type target struct {
	queue chan delivery
}

// delivery is one post to a receiver.
type delivery struct {
	kind string // kindEvent or kindAlert
	// about names the post in logs: the Deployment and the hook or alert.
	about []any
	send  func(ctx context.Context) error
}

type resolved struct {
	n     Notifier
	built time.Time
}

// Kinds of post, the label kind of the metrics.
const (
	kindEvent = "event"
	kindAlert = "alert"
)

// NewDispatcher returns a Dispatcher reading AlertProviders and Secrets with r and calling event
// hooks with c. It dispatches once started (Start).
func NewDispatcher(r client.Reader, c *hooks.Caller, o DispatcherOptions) *Dispatcher {
	if o.DedupeWindow <= 0 {
		o.DedupeWindow = DefaultDedupeWindow
	}
	if o.Queue <= 0 {
		o.Queue = DefaultQueue
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Dispatcher{
		reader: r, hooks: c, defaults: o.Defaults, dedupe: NewDeduper(o.DedupeWindow), log: o.Log, now: o.Now,
		notices: make(chan spec.Notice, o.Queue), targets: map[string]*target{}, providers: map[types.NamespacedName]resolved{},
	}
}

// Notify queues n and returns at once; when the queue is full n is dropped and counted. n must
// not be changed afterwards.
func (d *Dispatcher) Notify(n spec.Notice) {
	select {
	case d.notices <- n:
	default:
		dropped.WithLabelValues(queueNotices).Inc()
	}
}

// Start dispatches notices until ctx ends (a manager.Runnable: cmd/sluice adds it to the
// manager). Notices still queued then are dropped; their Events are on the Deployment.
func (d *Dispatcher) Start(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case n := <-d.notices:
			d.dispatch(ctx, n)
		}
	}
}

// NeedLeaderElection is false: every replica dispatches, since every replica serves the
// admission webhook, whose Events (Bypassed, OptedOut …) are notices too.
func (d *Dispatcher) NeedLeaderElection() bool { return false }

// dispatch turns notice n into posts, each queued to its receiver.
func (d *Dispatcher) dispatch(ctx context.Context, n spec.Notice) {
	at := n.At
	if at.IsZero() {
		at = d.now()
	}
	deployment := klog.KRef(n.Namespace, n.Name)
	rel := spec.HookCall{Name: n.Name, Namespace: n.Namespace, Phase: n.Phase, Revision: n.Revision}
	for _, h := range spec.HooksOf(n.Hooks, spec.HookEvent) {
		for _, e := range n.Events {
			p := hooks.NewEventPayload(h, rel, hooks.Event{Message: e.Message, Type: e.Type, Time: at})
			d.deliver(ctx, "hook "+h.URL, delivery{kind: kindEvent, about: []any{"deployment", deployment, "hook", h.Name, "reason", e.Reason},
				send: func(ctx context.Context) error {
					if res := d.hooks.Call(ctx, h, p); res.Outcome != hooks.Passed {
						return errors.New(res.Reason())
					}
					return nil
				}})
		}
	}
	alerts := slices.Concat(n.Alerts, d.defaults)
	for _, e := range n.Events {
		sev, ok := Severity(e)
		if !ok {
			continue
		}
		m := NewMessage(n, e, sev)
		for _, a := range alerts {
			if !ShouldPost(a.Severity, sev) {
				continue
			}
			ref := types.NamespacedName{Namespace: a.ProviderRef.Namespace, Name: a.ProviderRef.Name}
			if ref.Namespace == "" {
				ref.Namespace = n.Namespace
			}
			if !d.dedupe.Allow(dedupeKey(ref.String(), m, e), d.now()) {
				posts.WithLabelValues(kindAlert, resultDeduplicated).Inc()
				continue
			}
			d.deliver(ctx, "alert "+ref.String(), delivery{kind: kindAlert,
				about: []any{"deployment", deployment, "alert", a.Name, "alertProvider", ref.String(), "reason", e.Reason},
				send: func(ctx context.Context) error {
					nt, err := d.notifier(ctx, ref)
					if err != nil {
						return err
					}
					return nt.Post(ctx, m)
				}})
		}
	}
}

// deliver queues dl to the receiver key, starting the receiver's goroutine when it has none.
func (d *Dispatcher) deliver(ctx context.Context, key string, dl delivery) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.targets[key]
	if t == nil {
		t = &target{queue: make(chan delivery, targetQueue)}
		d.targets[key] = t
		go d.serve(ctx, key, t)
	}
	select {
	case t.queue <- dl:
	default:
		dropped.WithLabelValues(queueReceiver).Inc()
	}
}

// serve posts what is queued to one receiver, in order, until ctx ends or nothing came for
// targetIdle.
func (d *Dispatcher) serve(ctx context.Context, key string, t *target) {
	idle := time.NewTimer(targetIdle)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case dl := <-t.queue:
			if err := dl.send(ctx); err != nil {
				posts.WithLabelValues(dl.kind, resultFailed).Inc()
				what := "alert not posted"
				if dl.kind == kindEvent {
					what = "event hook failed"
				}
				d.log.Error(err, what, dl.about...)
			} else {
				posts.WithLabelValues(dl.kind, resultSent).Inc()
			}
			idle.Reset(targetIdle)
		case <-idle.C:
			d.mu.Lock()
			if len(t.queue) == 0 {
				delete(d.targets, key)
				d.mu.Unlock()
				return
			}
			d.mu.Unlock()
			idle.Reset(targetIdle)
		}
	}
}

// notifier is the Notifier of the AlertProvider ref, read with its Secret, or reused for
// providerTTL.
func (d *Dispatcher) notifier(ctx context.Context, ref types.NamespacedName) (Notifier, error) {
	now := d.now()
	d.mu.Lock()
	if r, ok := d.providers[ref]; ok && now.Sub(r.built) < providerTTL {
		d.mu.Unlock()
		return r.n, nil
	}
	d.mu.Unlock()

	n, err := d.resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, r := range d.providers {
		if now.Sub(r.built) >= providerTTL {
			delete(d.providers, k)
		}
	}
	d.providers[ref] = resolved{n: n, built: now}
	return n, nil
}

// resolve reads the AlertProvider ref and its Secret and builds its Notifier. Its errors name
// the objects, never the address or the token.
func (d *Dispatcher) resolve(ctx context.Context, ref types.NamespacedName) (Notifier, error) {
	var p spec.AlertProvider
	if err := d.reader.Get(ctx, ref, &p); err != nil {
		return nil, fmt.Errorf("read AlertProvider %s: %w", ref, err)
	}
	if errs := spec.ValidateAlertProviderSpec(p.Spec); len(errs) > 0 {
		return nil, fmt.Errorf("AlertProvider %s: %w", ref, errs.ToAggregate())
	}
	c := Config{Type: p.Spec.Type, Channel: p.Spec.Channel, Username: p.Spec.Username, Address: p.Spec.Address}
	if s := p.Spec.SecretRef; s != nil {
		var sec corev1.Secret
		key := types.NamespacedName{Namespace: ref.Namespace, Name: s.Name}
		if err := d.reader.Get(ctx, key, &sec); err != nil {
			return nil, fmt.Errorf("read Secret %s of AlertProvider %s: %w", key, ref, err)
		}
		c.Address = strings.TrimSpace(string(sec.Data[SecretAddress]))
		c.Token = strings.TrimSpace(string(sec.Data[SecretToken]))
		if c.Address == "" {
			return nil, fmt.Errorf("Secret %s of AlertProvider %s has no key %s (the service's webhook URL)", key, ref, SecretAddress)
		}
	}
	n, err := New(c)
	if err != nil {
		return nil, fmt.Errorf("AlertProvider %s: %w", ref, err)
	}
	return n, nil
}
