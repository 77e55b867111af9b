package rollout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/sluice-dev/sluice/providers/routers"
	"github.com/sluice-dev/sluice/rollout/plan"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// Reconciler drives the releases of opted-in Deployments.
type Reconciler struct {
	// Client reads from the informer cache and writes to the API server.
	Client client.Client
	// APIReader reads from the API server, past the cache, only to tell a patch refused because
	// the release changed from one refused for another reason; nil means Client.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Analyzer  interface {
		Run(ctx context.Context, namespace, name string, plan *spec.Config) []spec.CheckResult
	}
	Defaults spec.Defaults
	// Routers builds the routers releases name (cmd/sluice registers them); Defaults.Routers is
	// its catalog.
	Routers *routers.Registry
	// Excluded are the namespaces the admission webhook does not see (its namespaceSelector):
	// their template changes are never held, so their Deployments are not released; each is
	// reported once (Event NotGuarded).
	Excluded []string
	// Hooks calls the releases' hooks in the background; Notifier hands their Events to event
	// hooks and alert targets (cmd/sluice wires both). Without Hooks a hook answers
	// "unreachable"; without a Notifier nothing is sent.
	Hooks    HookRunner
	Notifier Notifier
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	lag      lagTracker
	routing  failureLog
	services releaseServices

	wakeOnce sync.Once
	wake     chan event.GenericEvent

	mu       sync.Mutex
	reported map[types.UID]bool
}

// SetupWithManager registers the reconciler. One watch on Deployments serves both kinds Sluice
// cares about: an opted-in parent enqueues itself, a canary copy enqueues its parent.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, concurrency int) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("rollout").
		WithOptions(controllerOptions(concurrency)).
		Watches(&appsv1.Deployment{}, handler.EnqueueRequestsFromMapFunc(parentOf)).
		Watches(&corev1.Service{}, handler.EnqueueRequestsFromMapFunc(ownedBy)).
		WatchesRawSource(source.Channel(r.wakeups(), &handler.EnqueueRequestForObject{})).
		Complete(r)
}

// ownedBy maps a Sluice-owned Service (`<svc>-stable`, `<svc>-canary`) to its Deployment, so
// a deleted parent's routing is put back before the Service's finalizer lets it go.
func ownedBy(_ context.Context, o client.Object) []reconcile.Request {
	if o.GetLabels()[routers.LabelManagedBy] != routers.ManagedBy {
		return nil
	}
	if p := o.GetLabels()[spec.LabelParent]; p != "" {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: p}}}
	}
	return nil
}

func parentOf(_ context.Context, o client.Object) []reconcile.Request {
	switch o.GetLabels()[spec.LabelEnabled] {
	case spec.ValueEnabled:
		return []reconcile.Request{{NamespacedName: client.ObjectKeyFromObject(o)}}
	case spec.ValueCanary:
		if p := o.GetLabels()[spec.LabelParent]; p != "" {
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: p}}}
		}
	}
	return nil
}

// Reconcile runs one step of one release (step). The state patch applies only to the release
// that was read (patchParent); when another write replaced it meanwhile (a template the webhook
// held, an opt-out), or the routing could not be set, the step is planned again shortly: every
// write of a step is idempotent. A cached parent that still shows the state this worker's last
// step replaced is behind: the step waits rather than replay the step before (lagTracker).
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	// A step once begun is finished when the manager stops (SIGTERM): the manager waits up to
	// its graceful-shutdown timeout for it, so its analysis is not cut into a failed check and
	// its writes are not left half done. (A lost lease stops the process at once instead.)
	ctx = context.WithoutCancel(ctx)
	res, err := r.step(ctx, req, r.now())
	switch {
	case apierrors.IsConflict(err):
		// Not an error: the cache was behind a write made meanwhile.
		log.FromContext(ctx).V(1).Info("the Deployment changed under this step; planning it again", "error", err.Error())
		return reconcile.Result{RequeueAfter: cacheLag}, nil
	case errors.Is(err, errRoutingPending):
		// Told in a RoutingFailed Event; the next step plans with it (Snapshot.RoutingErr).
		log.FromContext(ctx).V(1).Info("routing not set; planning again with the failure", "error", err.Error())
		return reconcile.Result{RequeueAfter: cacheLag}, nil
	}
	return res, err
}

func (r *Reconciler) uncached() client.Reader {
	if r.APIReader != nil {
		return r.APIReader
	}
	return r.Client
}

// notGuarded says once per Deployment (and process) that its namespace is outside the webhook.
func (r *Reconciler) notGuarded(parent *appsv1.Deployment) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reported[parent.UID] {
		return
	}
	if r.reported == nil {
		r.reported = map[types.UID]bool{}
	}
	r.reported[parent.UID] = true
	r.Recorder.Eventf(parent, nil, corev1.EventTypeWarning, string(spec.ReasonNotGuarded), "Reconcile", "%s", fmt.Sprintf(
		"namespace %s is excluded from Sluice's admission webhook: template changes of this Deployment are not held or analysed, and Sluice does not release it (remove %s or move it to a guarded namespace)",
		parent.Namespace, spec.LabelEnabled))
}

// step runs one step of req's release at now: gather a snapshot from the cache, plan once,
// apply the decision in order, record what happened.
func (r *Reconciler) step(ctx context.Context, req reconcile.Request, now time.Time) (reconcile.Result, error) {
	parent := &appsv1.Deployment{}
	err := r.Client.Get(ctx, req.NamespacedName, parent)
	if apierrors.IsNotFound(err) {
		// Deleted, or opted out (the cache only holds opted-in Deployments).
		forget(req.Namespace, req.Name)
		r.lag.behind(req.NamespacedName, nil, now) // drops what it remembers of the parent
		r.routing.set(req.NamespacedName, "", "")
		return reconcile.Result{}, r.abandon(ctx, req.Namespace, req.Name)
	}
	if err != nil {
		return reconcile.Result{}, err
	}
	if r.lag.behind(req.NamespacedName, parent, now) {
		log.FromContext(ctx).V(1).Info("the cache has not shown the last step yet; waiting for it")
		return reconcile.Result{RequeueAfter: cacheLag}, nil
	}
	if parent.Labels[spec.LabelEnabled] != spec.ValueEnabled || !parent.DeletionTimestamp.IsZero() {
		return reconcile.Result{}, r.abandon(ctx, req.Namespace, req.Name)
	}
	if slices.Contains(r.Excluded, parent.Namespace) {
		r.notGuarded(parent)
		return reconcile.Result{}, nil
	}

	o, err := r.gather(ctx, parent, now)
	if err != nil {
		return reconcile.Result{}, err
	}
	d := plan.Plan(o.snap, now)
	if err := r.apply(ctx, o, d, now); err != nil {
		return reconcile.Result{}, err
	}
	r.record(ctx, o, d, now)
	// Every requeue says its priority (an item keeps the one it came with otherwise, e.g. the
	// initial list's low priority): a scheduled analysis run goes ahead of polls and events.
	priority := 0
	if plan.Scheduled(d.State, d.RequeueAfter, now) {
		priority = scheduledPriority
	}
	return reconcile.Result{RequeueAfter: d.RequeueAfter, Priority: &priority}, nil
}

// scheduledPriority is the work-queue priority of a release's scheduled analysis run.
const scheduledPriority = 10

// record tells what a step did: its Events, metrics and a log line when the phase or the
// weight moved.
func (r *Reconciler) record(ctx context.Context, o *observed, d plan.Decision, now time.Time) {
	parent, st := o.parent, o.state
	for _, e := range d.Events {
		r.Recorder.Eventf(parent, nil, e.Type, string(e.Reason), "Release", "%s", spec.EventNote(e.Message))
	}
	for _, k := range d.Stale {
		staleControls.WithLabelValues(k).Inc()
	}
	if d.State.Phase != st.Phase || d.State.Weight != st.Weight {
		log.FromContext(ctx).Info("release step", "revision", d.State.Revision, "phase", d.State.Phase, "weight", d.State.Weight, "message", d.State.Message)
	}
	if d.State.Phase != st.Phase && (d.State.Phase == spec.PhaseSucceeded || d.State.Phase == spec.PhaseFailed) && !st.StartedAt.IsZero() {
		releaseDuration.WithLabelValues(string(d.State.Phase)).Observe(now.Sub(st.StartedAt).Seconds())
	}
	recordState(parent.Namespace, parent.Name, d.State)
	r.notify(o, d, now)
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now().UTC()
	}
	return time.Now().UTC()
}
