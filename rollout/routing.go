package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

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
	"github.com/sluice-dev/sluice/rollout/plan"
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

// userService reads the user's Service from the API server: the cache holds only Sluice's own
// Services, so that Services Sluice does not manage cost it no memory.
func (r *Reconciler) userService(ctx context.Context, namespace, name string) (*corev1.Service, error) {
	svc := &corev1.Service{}
	err := r.uncached().Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, svc)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get Service %s/%s: %w", namespace, name, err)
	}
	return svc, nil
}

// releaseServices remembers, per Deployment, the user's Service as read for its release in
// flight, so a release reads it from the API server once rather than at every step: when the
// release starts, again where `<svc>-stable` is re-pinned at promotion (so the pinned selector
// is the Service's current one), and at every step while it cannot be used (missing, or
// without the port), so the release goes on once the user fixes it. An edit of the Service in
// between reaches Sluice's Services at that re-pin, or at the next release. Entries go when the
// release ends or the Deployment leaves Sluice's hands, so the memory follows the releases in
// flight, not the Services of the cluster.
type releaseServices struct {
	mu   sync.Mutex
	byID map[types.NamespacedName]releaseService
}

type releaseService struct {
	release string // releaseID of the release it was read for
	svc     *corev1.Service
}

// releaseID names a release and the Service its frozen plan routes: a new release (a new
// template, a retry) reads the Service again.
func releaseID(st spec.State) string {
	return st.Revision + "/" + st.StartedAt.Format(time.RFC3339Nano) + "/" + st.Plan.Service
}

func (m *releaseServices) get(key types.NamespacedName, release string) *corev1.Service {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.byID[key]; ok && e.release == release {
		return e.svc
	}
	return nil
}

// set remembers svc for key's release; nil forgets it.
func (m *releaseServices) set(key types.NamespacedName, release string, svc *corev1.Service) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if svc == nil {
		delete(m.byID, key)
		return
	}
	if m.byID == nil {
		m.byID = map[types.NamespacedName]releaseService{}
	}
	m.byID[key] = releaseService{release: release, svc: svc}
}

// newestPodHash is the pod-template-hash of the parent's newest ReplicaSet (by the Deployment
// controller's revision annotation). The ReplicaSets are listed from the API server, selected
// by the Deployment's selector and metadata only: the cache holds no ReplicaSets, and only the
// steps that pin `<svc>-stable` ask (plan.PodHashNeeded), about twice per release.
func (r *Reconciler) newestPodHash(ctx context.Context, parent *appsv1.Deployment) (string, error) {
	sel, err := metav1.LabelSelectorAsSelector(parent.Spec.Selector)
	if err != nil {
		return "", fmt.Errorf("selector of %s: %w", klog.KObj(parent), err)
	}
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind("ReplicaSetList"))
	if err := r.uncached().List(ctx, list, client.InNamespace(parent.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
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
		err = r.Client.Create(ctx, want)
		if err == nil {
			return nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create Service %s: %w", klog.KObj(want), err)
		}
		// The cache holds only Sluice's Services (or has not shown a new one yet): read what
		// holds the name.
		err = r.uncached().Get(ctx, client.ObjectKeyFromObject(want), have)
	}
	if err != nil {
		return fmt.Errorf("get Service %s: %w", klog.KObj(want), err)
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

// traffic is what routing a release needs, read once per reconcile. svc is nil outside a
// release in flight: nothing then needs it but the port, which `<svc>-canary` records.
type traffic struct {
	svc       *corev1.Service
	target    routers.Target
	targetErr error
	podHash   string
}

// traffic reads what routing the release in snap needs: the user's Service (once per release,
// releaseServices) and, for the steps that pin `<svc>-stable`, the newest ReplicaSet's pod
// hash. Outside a release in flight it reads nothing from the API server: resetting the routing
// object needs only the target `<svc>-canary` recorded (cached, as Sluice's own Service).
func (r *Reconciler) traffic(ctx context.Context, parent *appsv1.Deployment, snap plan.Snapshot) (*traffic, error) {
	st, cfg := snap.State, snap.State.Plan
	key := client.ObjectKeyFromObject(parent)
	if !st.Phase.InFlight() {
		r.services.set(key, "", nil)
		t, terr := target(parent, cfg, nil)
		if port, err := r.recordedPort(ctx, t); err != nil {
			return nil, err
		} else if port != 0 {
			t.Port = port
		}
		return &traffic{target: t, targetErr: terr}, nil
	}
	tr := &traffic{}
	pin := plan.PodHashNeeded(snap)
	if pin {
		hash, err := r.newestPodHash(ctx, parent)
		if err != nil {
			return nil, err
		}
		tr.podHash = hash
	}
	id := releaseID(st)
	svc := r.services.get(key, id)
	if svc == nil || pin {
		var err error
		if svc, err = r.userService(ctx, parent.Namespace, cfg.ServiceFor(parent.Name)); err != nil {
			return nil, err
		}
	}
	tr.svc = svc
	tr.target, tr.targetErr = target(parent, cfg, svc)
	if tr.targetErr != nil {
		svc = nil // read again next step, until the user has fixed it
	}
	r.services.set(key, id, svc)
	return tr, nil
}

// recordedPort is the Service port `<svc>-canary` records for t (0 when there is none).
func (r *Reconciler) recordedPort(ctx context.Context, t routers.Target) (int32, error) {
	svc := &corev1.Service{}
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: t.Namespace, Name: t.Canary()}, svc)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("get Service %s/%s: %w", t.Namespace, t.Canary(), err)
	}
	var rec routers.Target
	if raw, ok := svc.Annotations[annTarget]; !ok || json.Unmarshal([]byte(raw), &rec) != nil || rec.Service != t.Service {
		return 0, nil
	}
	return rec.Port, nil
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
	r.services.set(types.NamespacedName{Namespace: namespace, Name: name}, "", nil)
	if err := r.cleanupRouting(ctx, namespace, name); err != nil {
		return err
	}
	return r.deleteCanary(ctx, namespace, name)
}
