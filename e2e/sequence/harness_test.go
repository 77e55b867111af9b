package sequence_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/providers/metrics/prometheus"
	"github.com/sluice-dev/sluice/providers/routers"
	"github.com/sluice-dev/sluice/providers/routers/gatewayapi"
	"github.com/sluice-dev/sluice/rollout"
	"github.com/sluice-dev/sluice/rollout/spec"
	"github.com/sluice-dev/sluice/webhook"
)

const name = "web"

// t0 is where the fake clock starts; the golden files show offsets from it.
var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// harness is one release on its own namespace of the shared control plane.
type harness struct {
	t      *testing.T
	ns     string
	direct client.Client // the test's own, uncached; never faulted
	now    time.Time
	r      *rollout.Reconciler
	events *recorder
	tap    *tap
	out    strings.Builder
	router string
	// woken names the Deployments whose status changed while the last step's writes converged:
	// the worker's watch would wake it for them before its requeue (see run).
	woken []string
	// startPrometheus starts Prometheus again after stopPrometheus.
	startPrometheus func() error
}

// newHarness creates the namespace, the Service and the Deployment `web` (v1, 2 replicas,
// opted in with annotations) and waits for it to roll out.
func newHarness(t *testing.T, router string, annotations map[string]string) *harness {
	t.Helper()
	ctx := t.Context()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := spec.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	direct, err := client.New(env.RESTConfig(), client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, ns: "seq-" + strings.ReplaceAll(strings.ToLower(t.Name()[strings.LastIndex(t.Name(), "/")+1:]), "_", "-"),
		direct: direct, now: t0, events: &recorder{}, router: router}
	h.tap = &tap{Client: direct, h: h}
	h.r = h.newReconciler()
	if err := direct.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: h.ns}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = direct.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: h.ns}})
	})
	labels := map[string]string{"app": name}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}
	if err := direct.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	ann := map[string]string{
		spec.AnnRouter: router, spec.AnnInterval: "1m", spec.AnnThreshold: "2",
		spec.AnnStepWeights: "25,50",
		spec.AnnMetrics: `[{name: success, query: "vector(99.9)", thresholdRange: {min: 99}},
 {name: latency, query: "vector(120)", thresholdRange: {max: 500}}]`,
	}
	for k, v := range annotations {
		ann[k] = v
	}
	replicas := int32(2)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns, Labels: map[string]string{spec.LabelEnabled: spec.ValueEnabled}, Annotations: ann},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "shop:v1"}}},
			},
		},
	}
	// As the webhook would admit it (a CREATE is validated, nothing held).
	v := webhook.Decide(webhook.Input{Operation: admissionv1.Create, New: d, Now: h.now, Defaults: h.r.Defaults})
	if !v.Allowed {
		t.Fatalf("the webhook refuses the Deployment: %s", v.Denial)
	}
	if err := direct.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	h.converge()
	return h
}

func (h *harness) newReconciler() *rollout.Reconciler {
	prom, err := prometheus.New(prometheus.Options{Address: promURL, Timeout: 5 * time.Second})
	if err != nil {
		h.t.Fatal(err)
	}
	analyzer := rollout.NewAnalyzer(prom, 4)
	reg := registry()
	analyzer.Routers = reg.Catalog()
	return &rollout.Reconciler{
		Client: h.tap, APIReader: &apiReads{Reader: h.direct, tap: h.tap}, Recorder: h.events,
		Analyzer: analyzer,
		Defaults: spec.Defaults{Router: spec.RouterReplicas, Routers: reg.Catalog()},
		Routers:  reg,
		Now:      func() time.Time { return h.now },
	}
}

// crash replaces the worker with a new one, as a restarted process: nothing it remembered
// survives.
func (h *harness) crash() { h.r = h.newReconciler() }

func (h *harness) parent() *appsv1.Deployment {
	h.t.Helper()
	d := &appsv1.Deployment{}
	if err := h.direct.Get(h.t.Context(), types.NamespacedName{Namespace: h.ns, Name: name}, d); err != nil {
		h.t.Fatal(err)
	}
	return d
}

func (h *harness) state() spec.State {
	h.t.Helper()
	st, err := spec.ReadState(h.parent().Annotations)
	if err != nil {
		h.t.Fatal(err)
	}
	return st
}

// setImage changes the parent's image through the admission decision, as `kubectl set image`
// through the webhook would.
func (h *harness) setImage(image string) {
	h.t.Helper()
	err := wait.PollUntilContextTimeout(h.t.Context(), 100*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		old := h.parent()
		upd := old.DeepCopy()
		upd.Spec.Template.Spec.Containers[0].Image = image
		v := webhook.Decide(webhook.Input{Operation: admissionv1.Update, Old: old, New: upd, Now: h.now, Defaults: h.r.Defaults})
		if !v.Allowed {
			return false, fmt.Errorf("the webhook refuses %s: %s", image, v.Denial)
		}
		if v.Object != nil {
			upd = v.Object
		}
		err := h.direct.Update(ctx, upd)
		if apierrors.IsConflict(err) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		h.t.Fatal(err)
	}
	fmt.Fprintf(&h.out, "t+%-6s set image %s (held: %s)\n", h.now.Sub(t0), image, h.state().Message)
}

// step runs one reconcile at the fake clock's time and renders what it did; it returns the
// requeue the worker asked for.
func (h *harness) step() time.Duration {
	h.t.Helper()
	h.tap.reset()
	h.events.reset()
	before := h.watchedStatus()
	res, err := h.r.Reconcile(h.t.Context(), reconcile.Request{NamespacedName: types.NamespacedName{Namespace: h.ns, Name: name}})
	result := fmt.Sprintf("requeue=%s", res.RequeueAfter)
	if err != nil {
		result = "error: " + err.Error()
	}
	h.converge()
	h.woken = changed(before, h.watchedStatus())
	st := h.state()
	p := h.parent()
	canary := "-"
	c := &appsv1.Deployment{}
	if err := h.direct.Get(h.t.Context(), types.NamespacedName{Namespace: h.ns, Name: spec.CanaryName(name)}, c); err == nil {
		canary = fmt.Sprintf("%d/%d", c.Status.AvailableReplicas, *c.Spec.Replicas)
	}
	fmt.Fprintf(&h.out, "t+%-6s %-11s w=%-3d canary=%-4s parent=(paused=%t %d/%d)%s %s\n",
		h.now.Sub(t0), st.Phase, st.Weight, canary, p.Spec.Paused, p.Status.UpdatedReplicas, *p.Spec.Replicas, h.route(), result)
	fmt.Fprintf(&h.out, "    message: %s\n", stable(st.Message))
	for _, w := range h.tap.writes() {
		fmt.Fprintf(&h.out, "    %s\n", stable(w))
	}
	for _, e := range h.events.list() {
		fmt.Fprintf(&h.out, "    event: %s\n", stable(e))
	}
	if err != nil {
		return 0
	}
	return res.RequeueAfter
}

// route renders the routing object's split, for the routers that have one.
func (h *harness) route() string {
	if h.router == splitRouterName {
		cm := &corev1.ConfigMap{}
		if err := h.direct.Get(h.t.Context(), types.NamespacedName{Namespace: h.ns, Name: name + "-split"}, cm); err != nil {
			return " split=none"
		}
		return " split=canary " + cm.Data["weight"] + "%"
	}
	if h.router != spec.RouterGatewayAPI {
		return ""
	}
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("gateway.networking.k8s.io/v1")
	u.SetKind("HTTPRoute")
	if err := h.direct.Get(h.t.Context(), types.NamespacedName{Namespace: h.ns, Name: name}, u); err != nil {
		return " route=missing"
	}
	o := gatewayapi.Observe(u.Object, routers.Target{Namespace: h.ns, Service: name, Port: 80})
	if !o.Managed {
		return " route=user's"
	}
	return fmt.Sprintf(" route=canary %d%%", o.Weight)
}

// wake is how long after a step the fake clock puts the step that a watched change wakes.
const wake = time.Second

// watchedStatus is, per Deployment of the namespace (the parent and its canary), the part of
// its status whose change the worker's watch delivers (SetupWithManager maps both to the
// parent): what the Deployment controller reports, never the worker's own writes.
func (h *harness) watchedStatus() map[string]string {
	h.t.Helper()
	var list appsv1.DeploymentList
	if err := h.direct.List(h.t.Context(), &list, client.InNamespace(h.ns)); err != nil {
		h.t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range list.Items {
		s := d.Status
		out[d.Name] = fmt.Sprintf("observed=%d replicas=%d updated=%d ready=%d available=%d",
			s.ObservedGeneration, s.Replicas, s.UpdatedReplicas, s.ReadyReplicas, s.AvailableReplicas)
	}
	return out
}

// changed names the Deployments whose watched status differs between a and b (created and
// deleted ones included), sorted.
func changed(a, b map[string]string) []string {
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// run steps the release until it settles, calling before (when set) ahead of each step with the
// step's index. The clock moves by each requeue, or by wake when the step's writes made the
// parent's or the canary's status change and the requeue is later (the watch wakes the worker
// then: a wait for Kubernetes is not polled); an error is retried after a second.
func (h *harness) run(before func(i int, st spec.State)) {
	h.t.Helper()
	for i := 0; ; i++ {
		if i > 200 {
			h.t.Fatalf("the release did not settle in 200 steps:\n%s", h.out.String())
		}
		if before != nil {
			before(i, h.state())
		}
		requeue := h.step()
		st := h.state()
		if requeue == 0 && (st.Phase == spec.PhaseSucceeded || st.Phase == spec.PhaseFailed || st.Phase == spec.PhaseIdle) {
			return
		}
		if len(h.woken) > 0 && (requeue == 0 || requeue > wake) {
			fmt.Fprintf(&h.out, "    woken after %s: status of %s changed\n", wake, strings.Join(h.woken, ", "))
			requeue = wake
		}
		if requeue == 0 {
			requeue = time.Second
		}
		h.now = h.now.Add(requeue)
	}
}

// converge waits until the Deployment controller and kwok have done what the last writes ask:
// each Deployment observed, and rolled out unless paused.
func (h *harness) converge() {
	h.t.Helper()
	err := wait.PollUntilContextTimeout(h.t.Context(), 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		var list appsv1.DeploymentList
		if err := h.direct.List(ctx, &list, client.InNamespace(h.ns)); err != nil {
			return false, err
		}
		for _, d := range list.Items {
			want := *d.Spec.Replicas
			s := d.Status
			if s.ObservedGeneration < d.Generation {
				return false, nil
			}
			if d.Spec.Paused {
				continue
			}
			if s.UpdatedReplicas != want || s.AvailableReplicas != want || s.Replicas != want {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		h.t.Fatalf("the cluster did not converge: %v\n%s", err, h.out.String())
	}
}

func (h *harness) golden(path string) {
	h.t.Helper()
	got := h.out.String()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			h.t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			h.t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		h.t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		h.t.Errorf("%s mismatch (-want +got); run with -update if the change is intended:\n%s", path, diff)
	}
}

// tap is the worker's client: it records every write, and injects the faults a row asks for.
type tap struct {
	client.Client
	h *harness

	mu  sync.Mutex
	log []string
	// stale, when set, is served for the next read of the parent (a cache behind the writes).
	stale *appsv1.Deployment
	// beforeParentPatch, when set, runs once just before the parent's state patch; an error it
	// returns fails the patch without sending it.
	beforeParentPatch func() error
}

func (c *tap) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.log = nil
}

func (c *tap) writes() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.log)
}

func (c *tap) record(verb string, obj client.Object, err error) {
	kind := obj.GetObjectKind().GroupVersionKind().Kind
	switch obj.(type) {
	case *appsv1.Deployment:
		kind = "Deployment"
	case *corev1.Service:
		kind = "Service"
	case *corev1.ConfigMap:
		kind = "ConfigMap"
	}
	line := fmt.Sprintf("write: %s %s %s", verb, kind, obj.GetName())
	if err != nil {
		line += " failed: " + oneLine(err)
	}
	c.add(line)
}

func (c *tap) add(line string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.log = append(c.log, line)
}

// apiReads is the worker's APIReader: reads past the cache, each a request to the API server,
// are rendered with the step's writes ("read: …"), so a golden shows what a release costs.
type apiReads struct {
	client.Reader
	tap *tap
}

func (a *apiReads) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	err := a.Reader.Get(ctx, key, obj, opts...)
	a.tap.add(fmt.Sprintf("read: get %s %s (API server)%s", kindOf(obj), key.Name, outcome(err)))
	return err
}

func (a *apiReads) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	err := a.Reader.List(ctx, list, opts...)
	lo := (&client.ListOptions{}).ApplyOptions(opts)
	a.tap.add(fmt.Sprintf("read: list %s %s (API server)%s", strings.TrimSuffix(kindOf(list), "List"), lo.LabelSelector, outcome(err)))
	return err
}

func kindOf(obj runtime.Object) string {
	if k := obj.GetObjectKind().GroupVersionKind().Kind; k != "" {
		return k
	}
	switch obj.(type) {
	case *appsv1.Deployment:
		return "Deployment"
	case *corev1.Service:
		return "Service"
	}
	return fmt.Sprintf("%T", obj)
}

func outcome(err error) string {
	switch {
	case err == nil:
		return ""
	case apierrors.IsNotFound(err):
		return ": not found"
	}
	return " failed: " + oneLine(err)
}

// cached reports whether the controller's informer cache holds obj (cmd/sluice's
// cacheOptions): opted-in Deployments and their canaries, and Sluice's own Services. The tap
// answers reads of anything else as the cache would, not found, so a step that needs such an
// object must read it past the cache (apiReads).
func cached(obj client.Object) bool {
	switch obj.(type) {
	case *appsv1.Deployment:
		v := obj.GetLabels()[spec.LabelEnabled]
		return v == spec.ValueEnabled || v == spec.ValueCanary
	case *corev1.Service:
		return obj.GetLabels()[routers.LabelManagedBy] == routers.ManagedBy
	}
	return true
}

// stable replaces what differs between runs (Prometheus's port) in a rendered line.
func stable(s string) string {
	s = strings.ReplaceAll(s, strings.TrimPrefix(promURL, "http://"), "PROMETHEUS")
	return s
}

func oneLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

func (c *tap) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	c.mu.Lock()
	stale := c.stale
	if d, ok := obj.(*appsv1.Deployment); ok && stale != nil && key.Name == name {
		c.stale = nil
		c.mu.Unlock()
		stale.DeepCopyInto(d)
		return nil
	}
	c.mu.Unlock()
	if err := c.refuseUncachable(obj); err != nil {
		return err
	}
	if err := c.Client.Get(ctx, key, obj, opts...); err != nil {
		return err
	}
	if !cached(obj) {
		return apierrors.NewNotFound(schema.GroupResource{Resource: strings.ToLower(kindOf(obj)) + "s"}, key.Name)
	}
	return nil
}

// List serves what the cache holds of a list: the items cached selects.
func (c *tap) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if err := c.refuseUncachable(list); err != nil {
		return err
	}
	if err := c.Client.List(ctx, list, opts...); err != nil {
		return err
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return err
	}
	kept := items[:0]
	for _, it := range items {
		if o, ok := it.(client.Object); !ok || cached(o) {
			kept = append(kept, it)
		}
	}
	return meta.SetList(list, kept)
}

// refuseUncachable fails the test when the worker reads through its cached client what the
// controller never caches (cmd/sluice disables the cache for ReplicaSets: an informer would
// hold every ReplicaSet of the cluster).
func (c *tap) refuseUncachable(obj runtime.Object) error {
	if strings.HasPrefix(obj.GetObjectKind().GroupVersionKind().Kind, "ReplicaSet") {
		c.h.t.Errorf("the worker read %s through its cached client; the controller caches no ReplicaSets", obj.GetObjectKind().GroupVersionKind().Kind)
		return errors.New("ReplicaSets are not cached")
	}
	return nil
}

func (c *tap) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	err := c.Client.Create(ctx, obj, opts...)
	c.record("create", obj, err)
	return err
}

func (c *tap) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	err := c.Client.Update(ctx, obj, opts...)
	c.record("update", obj, err)
	return err
}

func (c *tap) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	err := c.Client.Delete(ctx, obj, opts...)
	c.record("delete", obj, err)
	return err
}

func (c *tap) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	if _, ok := obj.(*appsv1.Deployment); ok && obj.GetName() == name {
		c.mu.Lock()
		hook := c.beforeParentPatch
		c.beforeParentPatch = nil
		c.mu.Unlock()
		if hook != nil {
			if err := hook(); err != nil {
				c.record("patch", obj, err)
				return err
			}
		}
	}
	err := c.Client.Patch(ctx, obj, patch, opts...)
	c.record("patch", obj, err)
	return err
}

// errCrash stands for the process dying before the state patch reaches the API server.
var errCrash = errors.New("the worker was killed before the state patch was sent")

// recorder keeps the Events a step emits.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) Eventf(_ runtime.Object, _ runtime.Object, eventtype, reason, _, note string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, fmt.Sprintf("%s %s: %s", eventtype, reason, fmt.Sprintf(note, args...)))
}

func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = nil
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// apply creates the YAML object in the harness's namespace.
func (h *harness) apply(manifest string) {
	h.t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(manifest), &u.Object); err != nil {
		h.t.Fatal(err)
	}
	u.SetNamespace(h.ns)
	if err := h.direct.Create(h.t.Context(), u); err != nil {
		h.t.Fatal(err)
	}
	fmt.Fprintf(&h.out, "t+%-6s created %s %s\n", h.now.Sub(t0), u.GetKind(), u.GetName())
}

// remove deletes obj (the user's doing) and waits until it is gone.
func (h *harness) remove(obj client.Object) {
	h.t.Helper()
	if err := h.direct.Delete(h.t.Context(), obj); err != nil {
		h.t.Fatal(err)
	}
	err := wait.PollUntilContextTimeout(h.t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		err := h.direct.Get(ctx, client.ObjectKeyFromObject(obj), obj)
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
	if err != nil {
		h.t.Fatal(err)
	}
	fmt.Fprintf(&h.out, "t+%-6s deleted %s %s\n", h.now.Sub(t0), kindOf(obj), obj.GetName())
}
