package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

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
	// Excluded are the namespaces the admission webhook does not see (its namespaceSelector):
	// their template changes are never held, so their Deployments are not released; each is
	// reported once (Event NotGuarded).
	Excluded []string
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu       sync.Mutex
	replaced map[types.NamespacedName]replacedState
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

// cacheLag is how soon a step is looked at again when the cache is behind: it has not shown
// the previous step's own write yet, or a write conflicted with a newer version (the update
// event that brings the newer version usually comes first).
const cacheLag = 250 * time.Millisecond

// Reconcile gathers, plans, applies and records one step of one release, reading from the
// informer cache. The state patch applies only to the release that was read (patchParent);
// when another write replaced it meanwhile (a template the webhook held, an opt-out), or a
// cached object was behind, the step is planned again once the cache has caught up: every
// write of a step is idempotent. A cached parent that still shows the state this worker's last
// step replaced is behind: the step waits rather than replay the step before (and write its
// routing and canary size over the current one's).
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	// A step once begun is finished when the manager stops (SIGTERM): the manager waits up to
	// its graceful-shutdown timeout for it, so its analysis is not cut into a failed check and
	// its writes are not left half done. (A lost lease stops the process at once instead.)
	ctx = context.WithoutCancel(ctx)
	res, err := r.step(ctx, req, r.now())
	if apierrors.IsConflict(err) {
		// Not an error: the cache was behind a write made meanwhile.
		log.FromContext(ctx).V(1).Info("the Deployment changed under this step; planning it again", "error", err.Error())
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

// replacedState is the state annotation a step of this worker replaced, kept until the cache
// shows something else.
type replacedState struct {
	raw string
	at  time.Time
}

// behind reports whether parent, as read from the cache, still carries the state this worker's
// last step replaced. An entry is dropped once the cache shows anything else, or after a
// minute (a cache is not that late).
func (r *Reconciler) behind(key types.NamespacedName, parent *appsv1.Deployment) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep, ok := r.replaced[key]
	if ok && parent.Annotations[spec.AnnState] == rep.raw && time.Since(rep.at) < time.Minute {
		return true
	}
	delete(r.replaced, key)
	return false
}

// wrote records that a step replaced the state annotation raw of key.
func (r *Reconciler) wrote(key types.NamespacedName, raw string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.replaced == nil {
		r.replaced = map[types.NamespacedName]replacedState{}
	}
	r.replaced[key] = replacedState{raw: raw, at: time.Now()}
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

// step runs one step of req's release.
func (r *Reconciler) step(ctx context.Context, req reconcile.Request, now time.Time) (reconcile.Result, error) {
	logger := log.FromContext(ctx)
	parent := &appsv1.Deployment{}
	err := r.Client.Get(ctx, req.NamespacedName, parent)
	if apierrors.IsNotFound(err) {
		// Deleted, or opted out (the cache only holds opted-in Deployments).
		forget(req.Namespace, req.Name)
		r.behind(req.NamespacedName, parent) // drops what it remembers of the parent
		return reconcile.Result{}, r.abandon(ctx, req.Namespace, req.Name)
	}
	if err != nil {
		return reconcile.Result{}, err
	}
	if r.behind(req.NamespacedName, parent) {
		logger.V(1).Info("the cache has not shown the last step yet; waiting for it")
		return reconcile.Result{RequeueAfter: cacheLag}, nil
	}
	if parent.Labels[spec.LabelEnabled] != spec.ValueEnabled || !parent.DeletionTimestamp.IsZero() {
		return reconcile.Result{}, r.abandon(ctx, req.Namespace, req.Name)
	}
	if slices.Contains(r.Excluded, parent.Namespace) {
		r.notGuarded(parent)
		return reconcile.Result{}, nil
	}

	st, err := spec.ReadState(parent.Annotations)
	if err != nil {
		r.Recorder.Eventf(parent, nil, corev1.EventTypeWarning, string(spec.ReasonInvalidState), "Reconcile", "%s", spec.EventNote(err.Error()))
		return reconcile.Result{}, reconcile.TerminalError(err)
	}
	canary, err := r.getCanary(ctx, parent)
	if err != nil {
		return reconcile.Result{}, err
	}

	snap := snapshot(parent, canary, st, r.Defaults)
	// An isolated canary is reached only through the routing object and the Sluice-owned
	// Services; what they need is read here (from the cache), and nothing is written before the
	// plan, so a step re-run after a restart writes what it wrote before and nothing older.
	var tr *traffic
	if st.Plan != nil && st.Plan.Isolated() {
		if tr, err = r.traffic(ctx, parent, st.Plan); err != nil {
			return reconcile.Result{}, err
		}
		snap.Parent.PodHash = tr.podHash
	}
	if plan.AnalysisDue(snap, now) {
		snap.Analysis = r.Analyzer.Run(ctx, parent.Namespace, parent.Name, st.Plan)
		recordChecks(parent.Namespace, parent.Name, snap.Analysis)
	}
	d := plan.Plan(snap, now)

	// Then as the decision says: Services before routes (a re-pinned <svc>-stable takes the
	// traffic that moves back to it), routes before the canary (traffic leaves it before its
	// pods go), and the state last, so a step cut short is redone.
	if d.State.Plan != nil && d.State.Plan.Isolated() {
		if tr == nil || d.State.Plan != st.Plan {
			if tr, err = r.traffic(ctx, parent, d.State.Plan); err != nil {
				return reconcile.Result{}, err
			}
		}
		if err := r.setTraffic(ctx, parent, tr, d.State); err != nil {
			r.Recorder.Eventf(parent, nil, corev1.EventTypeWarning, string(spec.ReasonRoutingFailed), "Route", "%s", spec.EventNote(err.Error()))
			// Plan again knowing the routing object cannot be set: the release waits for it
			// (and rolls back at the progress deadline). A decision that needs a routing change
			// it cannot make is not recorded; the step is retried.
			snap.RoutingErr = err.Error()
			d = plan.Plan(snap, now)
			if err := r.setTraffic(ctx, parent, tr, d.State); err != nil && !sameRouting(st, d.State) {
				return reconcile.Result{}, err
			}
		}
	}
	var isolate []string
	if d.State.Plan != nil && d.State.Plan.Isolated() {
		isolate = isolationKeys(parent, tr.svc)
	}
	if err := r.applyCanary(ctx, parent, canary, d, isolate); err != nil {
		return reconcile.Result{}, err
	}
	replaced := parent.Annotations[spec.AnnState] // the patch updates parent
	if err := r.patchParent(ctx, parent, st, d); err != nil {
		return reconcile.Result{}, err
	}
	if d.State.Encode() != st.Encode() {
		r.wrote(req.NamespacedName, replaced)
	}
	for _, e := range d.Events {
		r.Recorder.Eventf(parent, nil, e.Type, string(e.Reason), "Release", "%s", spec.EventNote(e.Message))
	}
	for _, k := range d.Stale {
		staleControls.WithLabelValues(k).Inc()
	}
	if d.State.Phase != st.Phase || d.State.Weight != st.Weight {
		logger.Info("release step", "revision", d.State.Revision, "phase", d.State.Phase, "weight", d.State.Weight, "message", d.State.Message)
	}
	if d.State.Phase != st.Phase && (d.State.Phase == spec.PhaseSucceeded || d.State.Phase == spec.PhaseFailed) && !st.StartedAt.IsZero() {
		releaseDuration.WithLabelValues(string(d.State.Phase)).Observe(now.Sub(st.StartedAt).Seconds())
	}
	recordState(parent.Namespace, parent.Name, d.State)
	return reconcile.Result{RequeueAfter: d.RequeueAfter}, nil
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now().UTC()
	}
	return time.Now().UTC()
}

func snapshot(parent, canary *appsv1.Deployment, st spec.State, defaults spec.Defaults) plan.Snapshot {
	s := plan.Snapshot{
		Name:   parent.Name,
		State:  st,
		Parent: workload(parent, spec.TemplateHash(&parent.Spec.Template)),
		Controls: plan.Controls{
			Promote: parent.Annotations[spec.AnnPromote],
			Abort:   parent.Annotations[spec.AnnAbort],
			Pause:   parent.Annotations[spec.AnnPause],
			Retry:   parent.Annotations[spec.AnnRetry],
		},
	}
	if canary != nil {
		c := workload(canary, canary.Annotations[spec.AnnRevision])
		s.Canary = &c
	}
	if cfg, errs := spec.Parse(parent.Annotations, defaults); len(errs) > 0 {
		s.ConfigErr = spec.FormatErrors(errs)
	} else {
		s.Config = &cfg
	}
	return s
}

func workload(d *appsv1.Deployment, revision string) plan.Workload {
	replicas := int32(1)
	if d.Spec.Replicas != nil {
		replicas = *d.Spec.Replicas
	}
	return plan.Workload{
		Revision: revision, Paused: d.Spec.Paused,
		Generation: d.Generation, ObservedGeneration: d.Status.ObservedGeneration,
		Replicas: replicas, StatusReplicas: d.Status.Replicas,
		UpdatedReplicas: d.Status.UpdatedReplicas, AvailableReplicas: d.Status.AvailableReplicas,
	}
}

func (r *Reconciler) getCanary(ctx context.Context, parent *appsv1.Deployment) (*appsv1.Deployment, error) {
	c := &appsv1.Deployment{}
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: parent.Namespace, Name: spec.CanaryName(parent.Name)}, c)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get canary of %s: %w", klog.KObj(parent), err)
	}
	if c.Labels[spec.LabelParent] != parent.Name {
		return nil, reconcile.TerminalError(fmt.Errorf("deployment %s exists but is not Sluice's canary of %s", klog.KObj(c), parent.Name))
	}
	return c, nil
}

func (r *Reconciler) deleteCanary(ctx context.Context, namespace, parent string) error {
	c := &appsv1.Deployment{}
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: spec.CanaryName(parent)}, c)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if c.Labels[spec.LabelParent] != parent {
		return nil
	}
	return client.IgnoreNotFound(r.Client.Delete(ctx, c, client.Preconditions{UID: &c.UID}))
}

func (r *Reconciler) applyCanary(ctx context.Context, parent, canary *appsv1.Deployment, d plan.Decision, isolate []string) error {
	switch d.Canary {
	case plan.CanaryDelete:
		if canary == nil {
			return nil
		}
		if err := r.Client.Delete(ctx, canary, client.Preconditions{UID: &canary.UID}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete canary %s: %w", klog.KObj(canary), err)
		}
	case plan.CanaryEnsure:
		want := desiredCanary(parent, d.State.Revision, d.CanaryReplicas, isolate)
		if canary == nil {
			if err := r.Client.Create(ctx, want); err != nil {
				return fmt.Errorf("create canary %s: %w", klog.KObj(want), err)
			}
			return nil
		}
		if canary.Annotations[spec.AnnRevision] == d.State.Revision && *canary.Spec.Replicas == d.CanaryReplicas {
			return nil
		}
		updated := canary.DeepCopy()
		updated.Annotations = want.Annotations
		updated.Labels = want.Labels
		updated.Spec = want.Spec
		if err := r.Client.Update(ctx, updated); err != nil {
			return fmt.Errorf("update canary %s: %w", klog.KObj(updated), err)
		}
	}
	return nil
}

// desiredCanary is the canary copy of parent: the held template plus the canary track label,
// owned by the parent so it is garbage-collected with it. For the replicas router its pods keep
// the parent's labels, so the parent's Services send them their share of traffic. An isolated
// canary's pods carry other values for the labels in isolate (those the Deployment's selector
// and Service select on), so only `<svc>-canary` and the routing object reach them.
func desiredCanary(parent *appsv1.Deployment, revision string, replicas int32, isolate []string) *appsv1.Deployment {
	tmpl := parent.Spec.Template.DeepCopy()
	tmpl.Labels = maps.Clone(tmpl.Labels)
	if tmpl.Labels == nil {
		tmpl.Labels = map[string]string{}
	}
	tmpl.Labels[spec.LabelTrack] = spec.ValueCanary
	sel := parent.Spec.Selector.DeepCopy()
	if sel.MatchLabels == nil {
		sel.MatchLabels = map[string]string{}
	}
	sel.MatchLabels[spec.LabelTrack] = spec.ValueCanary
	for _, k := range isolate {
		if v, ok := tmpl.Labels[k]; ok {
			tmpl.Labels[k] = canaryValue(v)
		}
		if v, ok := sel.MatchLabels[k]; ok {
			sel.MatchLabels[k] = canaryValue(v)
		}
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name:      spec.CanaryName(parent.Name),
			Namespace: parent.Namespace,
			Labels: map[string]string{
				spec.LabelEnabled:              spec.ValueCanary,
				spec.LabelParent:               parent.Name,
				"app.kubernetes.io/managed-by": "sluice",
			},
			Annotations: map[string]string{spec.AnnRevision: revision},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(parent,
				appsv1.SchemeGroupVersion.WithKind("Deployment"))},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas:                &replicas,
			Selector:                sel,
			Template:                *tmpl,
			Strategy:                parent.Spec.Strategy,
			MinReadySeconds:         parent.Spec.MinReadySeconds,
			RevisionHistoryLimit:    ptr(int32(1)),
			ProgressDeadlineSeconds: parent.Spec.ProgressDeadlineSeconds,
		},
	}
}

// patchParent writes the decision to the parent in one JSON patch: the state annotation,
// spec.paused and the consumed control annotations. Nothing is sent when nothing changed.
//
// The patch applies only if the release is still the one the decision was made on: it tests
// the state annotation (and each consumed control) as read. Anything that starts, replaces or
// ends a release (a template the webhook held, an opt-out) rewrites that annotation, so the
// patch fails with a conflict and the step is planned again. Writes that leave the release
// alone (the Deployment controller's status, an autoscaler's scale, a label) do not fail it:
// under an autoscaler a resourceVersion precondition would fail step after step.
func (r *Reconciler) patchParent(ctx context.Context, parent *appsv1.Deployment, old spec.State, d plan.Decision) error {
	var ops []jsonPatchOp
	if enc := d.State.Encode(); enc != old.Encode() {
		ops = append(ops, jsonPatchOp{Op: "add", Path: annotationPath(spec.AnnState), Value: enc})
	}
	for _, k := range d.Clear {
		if v, ok := parent.Annotations[k]; ok {
			ops = append(ops,
				jsonPatchOp{Op: "test", Path: annotationPath(k), Value: v},
				jsonPatchOp{Op: "remove", Path: annotationPath(k)})
		}
	}
	if d.Paused != nil && *d.Paused != parent.Spec.Paused {
		ops = append(ops, jsonPatchOp{Op: "add", Path: "/spec/paused", Value: *d.Paused})
	}
	if len(ops) == 0 {
		return nil
	}
	guard := jsonPatchOp{Op: "test", Path: annotationPath(spec.AnnState), Value: parent.Annotations[spec.AnnState]}
	if _, ok := parent.Annotations[spec.AnnState]; !ok {
		// No release recorded yet: nothing narrower to test than the version read.
		guard = jsonPatchOp{Op: "test", Path: "/metadata/resourceVersion", Value: parent.ResourceVersion}
		if parent.Annotations == nil {
			ops = append([]jsonPatchOp{{Op: "add", Path: "/metadata/annotations", Value: map[string]string{}}}, ops...)
		}
	}
	raw, err := json.Marshal(append([]jsonPatchOp{guard}, ops...))
	if err != nil {
		return err
	}
	if err := r.Client.Patch(ctx, parent, client.RawPatch(types.JSONPatchType, raw)); err != nil {
		if apierrors.IsInvalid(err) && r.changedSince(ctx, parent, d.Clear) {
			// A failed test is answered as any invalid patch (422, no details): it is a conflict
			// if what it tested has changed.
			err = apierrors.NewConflict(appsv1.Resource("deployments"), parent.Name,
				fmt.Errorf("its release changed since it was read"))
		}
		return fmt.Errorf("patch %s: %w", klog.KObj(parent), err)
	}
	return nil
}

// changedSince reports whether the API server now holds another release state, or other
// values of the controls in keys, than parent.
func (r *Reconciler) changedSince(ctx context.Context, parent *appsv1.Deployment, keys []string) bool {
	now := &appsv1.Deployment{}
	if err := r.uncached().Get(ctx, client.ObjectKeyFromObject(parent), now); err != nil {
		return apierrors.IsNotFound(err)
	}
	if _, ok := parent.Annotations[spec.AnnState]; !ok && now.ResourceVersion != parent.ResourceVersion {
		return true
	}
	for _, k := range append([]string{spec.AnnState}, keys...) {
		v, ok := parent.Annotations[k]
		nv, nok := now.Annotations[k]
		if v != nv || ok != nok {
			return true
		}
	}
	return false
}

type jsonPatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// annotationPath is the JSON pointer to annotation key.
func annotationPath(key string) string {
	return "/metadata/annotations/" + strings.NewReplacer("~", "~0", "/", "~1").Replace(key)
}

func ptr[T any](v T) *T { return &v }
