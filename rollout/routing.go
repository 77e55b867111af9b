package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/sluice-dev/sluice/providers/routers"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// Routing labels and annotations on the Sluice-owned Services.
const (
	// annTarget on `<svc>-canary` records what the router manages, so the routing object can
	// be put back after the Deployment is opted out (its state is gone) or deleted.
	annTarget = spec.AnnRouteTarget
	// finalizerRoute keeps `<svc>-canary` until the routing object no longer points at it.
	finalizerRoute = spec.FinalizerRoute
	labelPodHash   = "pod-template-hash"
	canarySuffix   = "-canary"
)

// newRouter builds the router named in a plan from the registry; a name it lacks is an error.
func (r *Reconciler) newRouter(name string) (routers.Router, error) {
	return r.Routers.New(name, routers.Objects{Client: r.Client})
}

// target is what the plan's router manages for parent. svc is the user's Service (nil when it
// does not exist, which only Apply minds).
func target(parent *appsv1.Deployment, plan *spec.Config, svc *corev1.Service) (routers.Target, error) {
	t := routers.Target{
		Namespace: parent.Namespace, Service: plan.ServiceFor(parent.Name),
		Route: plan.Route, Kind: plan.RouteKind, Create: plan.Route == "",
		Owner: *metav1.NewControllerRef(parent, appsv1.SchemeGroupVersion.WithKind("Deployment")),
	}
	if t.Route == "" {
		t.Route = parent.Name
	}
	if svc == nil {
		return t, fmt.Errorf("Service %s/%s not found (set %s to the Service in front of the Deployment)", t.Namespace, t.Service, spec.AnnService)
	}
	port, err := servicePort(svc, plan.Port)
	if err != nil {
		return t, err
	}
	t.Port = port.Port
	return t, nil
}

func servicePort(svc *corev1.Service, want string) (corev1.ServicePort, error) {
	if len(svc.Spec.Ports) == 0 {
		return corev1.ServicePort{}, fmt.Errorf("Service %s has no ports", klog.KObj(svc))
	}
	if want == "" {
		return svc.Spec.Ports[0], nil
	}
	n, _ := strconv.Atoi(want) // a port name is not a number: matched by name only
	for _, p := range svc.Spec.Ports {
		if p.Name == want || int(p.Port) == n {
			return p, nil
		}
	}
	return corev1.ServicePort{}, fmt.Errorf("Service %s has no port %q (%s)", klog.KObj(svc), want, spec.AnnPort)
}

func (r *Reconciler) userService(ctx context.Context, namespace, name string) (*corev1.Service, error) {
	svc := &corev1.Service{}
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, svc)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get Service %s/%s: %w", namespace, name, err)
	}
	return svc, nil
}

// newestPodHash is the pod-template-hash of the parent's newest ReplicaSet (by the Deployment
// controller's revision annotation), read from the metadata-only cache.
func (r *Reconciler) newestPodHash(ctx context.Context, parent *appsv1.Deployment) (string, error) {
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind("ReplicaSetList"))
	if err := r.Client.List(ctx, list, client.InNamespace(parent.Namespace)); err != nil {
		return "", fmt.Errorf("list ReplicaSets of %s: %w", klog.KObj(parent), err)
	}
	best, hash := int64(-1), ""
	for _, rs := range list.Items {
		if !metav1.IsControlledBy(&rs, parent) {
			continue
		}
		rev, _ := strconv.ParseInt(rs.Annotations["deployment.kubernetes.io/revision"], 10, 64) // none yet: oldest
		if rev > best {
			best, hash = rev, rs.Labels[labelPodHash]
		}
	}
	return hash, nil
}

// canaryValue is the value an isolated canary's pods carry for a label the Deployment's
// Service selects on, so that Service never selects them.
func canaryValue(v string) string {
	if len(v)+len(canarySuffix) > 63 {
		v = v[:63-len(canarySuffix)]
	}
	return v + canarySuffix
}

// isolationKeys are the pod labels an isolated canary changes: those the parent's selector and
// the user's Service select on.
func isolationKeys(parent *appsv1.Deployment, svc *corev1.Service) []string {
	keys := slices.Collect(maps.Keys(parent.Spec.Selector.MatchLabels))
	if svc != nil {
		for k := range svc.Spec.Selector {
			if _, ok := parent.Spec.Template.Labels[k]; ok && !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	slices.Sort(keys)
	return keys
}

// ensureServices makes `<svc>-stable` (the user's selector pinned to the stable ReplicaSet) and
// `<svc>-canary` (the canary's pods) match the state.
func (r *Reconciler) ensureServices(ctx context.Context, parent *appsv1.Deployment, svc *corev1.Service, t routers.Target, st spec.State) error {
	if svc == nil || st.StablePod == "" {
		return nil
	}
	stableSel, canarySel := t.StableSelector, t.CanarySelector
	raw, err := json.Marshal(t)
	if err != nil {
		return err
	}
	for _, s := range []struct {
		name string
		sel  map[string]string
		ann  map[string]string
		fin  bool
	}{
		{t.Stable(), stableSel, nil, false},
		{t.Canary(), canarySel, map[string]string{annTarget: string(raw), annRouter: st.Plan.Router}, true},
	} {
		if err := r.ensureService(ctx, parent, svc, s.name, s.sel, s.ann, s.fin); err != nil {
			return err
		}
	}
	return nil
}

func (r *Reconciler) ensureService(ctx context.Context, parent *appsv1.Deployment, user *corev1.Service, name string, sel, ann map[string]string, finalizer bool) error {
	want := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: parent.Namespace, Annotations: ann,
			Labels: map[string]string{routers.LabelManagedBy: routers.ManagedBy, spec.LabelParent: parent.Name},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(parent,
				appsv1.SchemeGroupVersion.WithKind("Deployment"))},
		},
		Spec: corev1.ServiceSpec{Selector: sel, Type: corev1.ServiceTypeClusterIP},
	}
	for _, p := range user.Spec.Ports {
		want.Spec.Ports = append(want.Spec.Ports, corev1.ServicePort{
			Name: p.Name, Protocol: p.Protocol, AppProtocol: p.AppProtocol, Port: p.Port, TargetPort: p.TargetPort,
		})
	}
	if finalizer {
		want.Finalizers = []string{finalizerRoute}
	}
	have := &corev1.Service{}
	err := r.Client.Get(ctx, client.ObjectKeyFromObject(want), have)
	if apierrors.IsNotFound(err) {
		if err := r.Client.Create(ctx, want); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create Service %s: %w", klog.KObj(want), err)
		}
		return nil
	}
	if err != nil {
		return err
	}
	if have.Labels[routers.LabelManagedBy] != routers.ManagedBy || have.Labels[spec.LabelParent] != parent.Name {
		return fmt.Errorf("Service %s exists and is not Sluice's; rename it or set %s", klog.KObj(have), spec.AnnService)
	}
	if !have.DeletionTimestamp.IsZero() {
		return fmt.Errorf("Service %s is being deleted", klog.KObj(have))
	}
	updated := have.DeepCopy()
	updated.Labels, updated.Annotations, updated.OwnerReferences = want.Labels, want.Annotations, want.OwnerReferences
	if finalizer {
		controllerutil.AddFinalizer(updated, finalizerRoute)
	}
	updated.Spec.Selector = want.Spec.Selector
	updated.Spec.Ports = mergePorts(have.Spec.Ports, want.Spec.Ports)
	if equality.Semantic.DeepEqual(updated, have) {
		return nil
	}
	if err := r.Client.Update(ctx, updated); err != nil {
		return fmt.Errorf("update Service %s: %w", klog.KObj(updated), err)
	}
	return nil
}

// mergePorts keeps the API server's defaults (node ports, protocols) of ports that did not change.
func mergePorts(have, want []corev1.ServicePort) []corev1.ServicePort {
	out := make([]corev1.ServicePort, len(want))
	for i, w := range want {
		out[i] = w
		for _, h := range have {
			if h.Port == w.Port && h.Name == w.Name && h.TargetPort == w.TargetPort &&
				(w.Protocol == "" || h.Protocol == w.Protocol) {
				out[i] = h
			}
		}
	}
	return out
}

// route sets the routing object for state st: Apply while a release needs it, Reset otherwise.
func (r *Reconciler) route(ctx context.Context, t routers.Target, targetErr error, st spec.State) error {
	router, err := r.newRouter(st.Plan.Router)
	if err != nil {
		return err
	}
	want, active := st.Routing()
	if !active {
		return router.Reset(ctx, t)
	}
	if targetErr != nil {
		return targetErr
	}
	return router.Apply(ctx, t, want)
}

// cleanupRouting puts back the routing object recorded on a parent's `<svc>-canary` Services
// and lets them go: after an opt-out (the state is gone with the label) or while the parent
// is being deleted (the Services are garbage-collected, held by their finalizer until then).
func (r *Reconciler) cleanupRouting(ctx context.Context, namespace, parent string) error {
	var list corev1.ServiceList
	if err := r.Client.List(ctx, &list, client.InNamespace(namespace), client.MatchingLabels{spec.LabelParent: parent}); err != nil {
		return fmt.Errorf("list Services of %s/%s: %w", namespace, parent, err)
	}
	for i := range list.Items {
		svc := &list.Items[i]
		if svc.Labels[routers.LabelManagedBy] != routers.ManagedBy {
			continue
		}
		if raw, ok := svc.Annotations[annTarget]; ok && controllerutil.ContainsFinalizer(svc, finalizerRoute) {
			var t routers.Target
			var plan struct{ Router string }
			if err := json.Unmarshal([]byte(raw), &t); err != nil {
				return fmt.Errorf("Service %s: %s: %w", klog.KObj(svc), annTarget, err)
			}
			plan.Router = svc.Annotations[annRouter]
			router, err := r.newRouter(plan.Router)
			if err != nil {
				return fmt.Errorf("reset routing of %s/%s: %w", namespace, parent, err)
			}
			if err := router.Reset(ctx, t); err != nil && !isGone(err) {
				return fmt.Errorf("reset routing of %s/%s: %w", namespace, parent, err)
			}
			updated := svc.DeepCopy()
			controllerutil.RemoveFinalizer(updated, finalizerRoute)
			if err := r.Client.Update(ctx, updated); client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("release Service %s: %w", klog.KObj(svc), err)
			}
		}
		if svc.DeletionTimestamp.IsZero() {
			if err := r.Client.Delete(ctx, svc, client.Preconditions{UID: &svc.UID}); client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("delete Service %s: %w", klog.KObj(svc), err)
			}
		}
	}
	return nil
}

// annRouter on `<svc>-canary` names the router that annTarget is for.
const annRouter = spec.AnnRouter

// isGone reports errors meaning the routing object (or its kind) is not there to reset.
func isGone(err error) bool {
	var nf *routers.ErrNotFound
	return errors.As(err, &nf) || apierrors.IsNotFound(err) || meta.IsNoMatchError(err)
}

// traffic is what routing a release needs, read once per reconcile from the cache.
type traffic struct {
	svc       *corev1.Service
	target    routers.Target
	targetErr error
	podHash   string
}

func (r *Reconciler) traffic(ctx context.Context, parent *appsv1.Deployment, plan *spec.Config) (*traffic, error) {
	hash, err := r.newestPodHash(ctx, parent)
	if err != nil {
		return nil, err
	}
	svc, err := r.userService(ctx, parent.Namespace, plan.ServiceFor(parent.Name))
	if err != nil {
		return nil, err
	}
	t, terr := target(parent, plan, svc)
	return &traffic{svc: svc, target: t, targetErr: terr, podHash: hash}, nil
}

// selectors are those of `<svc>-stable` (the user's Service's, pinned to the stable
// ReplicaSet) and `<svc>-canary` (the canary's pods only); nil before the stable ReplicaSet is
// known.
func selectors(parent *appsv1.Deployment, svc *corev1.Service, st spec.State) (stable, canary map[string]string) {
	if svc == nil || st.StablePod == "" {
		return nil, nil
	}
	stable = maps.Clone(svc.Spec.Selector)
	if stable == nil {
		stable = map[string]string{}
	}
	stable[labelPodHash] = st.StablePod
	canary = map[string]string{spec.LabelTrack: spec.ValueCanary}
	keys := isolationKeys(parent, svc)
	for k, v := range svc.Spec.Selector {
		canary[k] = v
		if slices.Contains(keys, k) {
			canary[k] = canaryValue(v)
		}
	}
	return stable, canary
}

// setTraffic makes the Services and the routing object match st.
func (r *Reconciler) setTraffic(ctx context.Context, parent *appsv1.Deployment, tr *traffic, st spec.State) error {
	tr.target.StableSelector, tr.target.CanarySelector = selectors(parent, tr.svc, st)
	if err := r.ensureServices(ctx, parent, tr.svc, tr.target, st); err != nil {
		return err
	}
	err := r.route(ctx, tr.target, tr.targetErr, st)
	if _, active := st.Routing(); !active && isGone(err) {
		return nil
	}
	return err
}

// abandon cleans up after a Deployment that left Sluice's hands (deleted or opted out): the
// routing object goes back to the user's, then the canary and Sluice's Services go.
func (r *Reconciler) abandon(ctx context.Context, namespace, name string) error {
	if err := r.cleanupRouting(ctx, namespace, name); err != nil {
		return err
	}
	return r.deleteCanary(ctx, namespace, name)
}
