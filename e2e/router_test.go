package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/e2e/demoapp"
	"github.com/sluice-dev/sluice/providers/routers"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// routerCase is one router's routing object as a user keeps it, and how to read it back.
type routerCase struct {
	router string
	// route is the kind/name for sluice.dev/route ("" to let Sluice pick its default).
	route string
	// objects are the user's own routing objects (YAML, namespace filled in).
	objects []string
	// watched is the routing object the test follows.
	watched schema.GroupVersionResource
	name    string
	observe func(obj map[string]any, t routers.Target) routers.Observed
	// userFields returns what Sluice must never change in the watched object.
	userFields func(obj map[string]any) any
	// owned: the watched object is Sluice's own (created for the release, deleted after it).
	owned bool
	// image is the release's image (default demo:v2).
	image string
	// canaryLoad sends requests to the canary's pods too, as the mesh would once the route
	// gives the canary a share (the app's own load, like a Service, reaches stable pods only).
	canaryLoad bool
}

// passing and failing are inline checks: the routing tests are about traffic objects, so their
// analysis verdict is fixed.
const (
	passing = "- name: ok\n  query: vector(100)\n  thresholdRange: {min: 99}\n"
	failing = "- name: broken\n  query: vector(0)\n  thresholdRange: {min: 99}\n"
)

// step is one distinct routing setting seen on the watched object.
type step struct {
	Managed              bool
	Weight, Mirror, Rule int
	Sticky               bool
}

func stepOf(o routers.Observed) step {
	return step{o.Managed, o.Weight, o.Mirror, o.MatchRules, o.Sticky}
}

func (s step) String() string {
	if !s.Managed {
		return "user's"
	}
	out := fmt.Sprintf("w%d", s.Weight)
	if s.Mirror > 0 {
		out += fmt.Sprintf("+mirror%d", s.Mirror)
	}
	if s.Rule > 0 {
		out += fmt.Sprintf("+ab%d", s.Rule)
	}
	if s.Sticky {
		out += "+sticky"
	}
	return out
}

// runRouterRelease deploys v1 behind the router, releases v2, and follows the routing object,
// the Sluice-owned Services and the canary until the release ends. It returns the distinct
// routing steps seen. Throughout it asserts SPEC §4's orders: the canary's pods never go while
// the route still sends it traffic, the user's fields never change, the user's Service never
// selects a canary pod, and `<svc>-stable` stays pinned to one ReplicaSet until promotion.
func runRouterRelease(t *testing.T, rc routerCase, ann map[string]string, wantPhase spec.Phase, checks ...func(ns string)) []step {
	t.Helper()
	ctx := t.Context()
	ann[spec.AnnRouter] = rc.router
	if rc.route != "" {
		ann[spec.AnnRoute] = rc.route
	}
	a := newApp(t, "web", ann)
	createService(t, a.ns, "web")
	if rc.canaryLoad {
		load := &demoapp.Load{Fleet: a.load.Fleet, RPS: 40, Selector: labels.SelectorFromSet(labels.Set{"app": "web-canary"})}
		runCtx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = load.Run(runCtx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	image := rc.image
	if image == "" {
		image = "demo:v2"
	}
	dyn, err := dynamic.NewForConfig(env.Cluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	a.applyObjects(rc.objects...)
	res := dyn.Resource(rc.watched).Namespace(a.ns)
	read := func() (map[string]any, bool) {
		u, err := res.Get(ctx, rc.name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, false
		}
		if err != nil {
			t.Fatalf("get %s: %v", rc.name, err)
		}
		return u.Object, true
	}
	var original map[string]any
	if !rc.owned {
		obj, ok := read()
		if !ok {
			t.Fatalf("%s %s not created", rc.watched.Resource, rc.name)
		}
		original = obj
	}
	target := routers.Target{Namespace: a.ns, Service: "web", Port: 80, Route: rc.name}

	a.deploy("demo:v1")
	var steps []step
	if obj, found := read(); found {
		o := rc.observe(obj, target)
		steps = append(steps, stepOf(o))
	} else {
		steps = append(steps, step{})
	}
	a.kubectl("set", "image", "deployment/web", "app="+image)

	canarySeen, canaryGone := false, false
	pinned := ""
	deadline := time.Now().Add(3 * time.Minute)
	for {
		st := a.state()
		obj, found := read()
		cur := step{}
		if found {
			o := rc.observe(obj, target)
			cur = stepOf(o)
			if rc.userFields != nil && original != nil { // an owned object has no user fields
				if diff := !equality.Semantic.DeepEqual(rc.userFields(original), rc.userFields(obj)); diff {
					t.Fatalf("the user's fields of %s changed:\nbefore %s\nafter  %s", rc.name, mustJSON(rc.userFields(original)), mustJSON(rc.userFields(obj)))
				}
			}
		}
		if len(steps) == 0 || steps[len(steps)-1] != cur {
			steps = append(steps, cur)
			t.Logf("route %s at %s (phase %s: %s)", rc.name, cur, st.Phase, st.Message)
		}
		if c := a.canary(); c != nil && c.DeletionTimestamp == nil {
			canarySeen = true
		} else if canarySeen && !canaryGone {
			canaryGone = true
			if cur.Managed && (cur.Weight > 0 || cur.Mirror > 0 || cur.Rule > 0) {
				t.Errorf("canary deleted while the route still sends it traffic (%s)", cur)
			}
		}
		// <svc>-stable selects the user's selector pinned to one ReplicaSet; <svc>-canary the
		// canary's pods only; the user's Service never selects a canary pod.
		if s := getService(t, a.ns, "web-stable"); s != nil {
			h := s.Spec.Selector["pod-template-hash"]
			if s.Spec.Selector["app"] != "web" || h == "" {
				t.Fatalf("web-stable selector = %v", s.Spec.Selector)
			}
			if pinned != "" && h != pinned && st.Phase != spec.PhasePromoting && st.Phase != spec.PhaseSucceeded {
				t.Fatalf("web-stable re-pinned from %s to %s in phase %s", pinned, h, st.Phase)
			}
			pinned = h
		}
		if s := getService(t, a.ns, "web-canary"); s != nil {
			if s.Spec.Selector["app"] != "web-canary" || s.Spec.Selector[spec.LabelTrack] != spec.ValueCanary {
				t.Fatalf("web-canary selector = %v", s.Spec.Selector)
			}
		}
		assertUserServiceSelectsNoCanary(t, a.ns)
		for _, check := range checks {
			check(a.ns)
		}
		done := st.Phase == wantPhase && !cur.Managed && (rc.owned == !found || !rc.owned) && a.canary() == nil
		if done {
			break
		}
		if st.Phase == spec.PhaseSucceeded && wantPhase != spec.PhaseSucceeded || st.Phase == spec.PhaseFailed && wantPhase != spec.PhaseFailed {
			t.Fatalf("release ended %s (%s), want %s; routing steps %v", st.Phase, st.Message, wantPhase, steps)
		}
		if time.Now().After(deadline) {
			t.Fatalf("release did not end %s with the route reset; phase %s: %s; steps %v\nevents %v\nsluice log:\n%s",
				wantPhase, st.Phase, st.Message, steps, a.events(), env.Cluster.LogTail("sluice", 20))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !rc.owned {
		obj, _ := read()
		if !equality.Semantic.DeepEqual(original["spec"], obj["spec"]) {
			t.Errorf("after the release the route is not the user's again:\nwant %s\ngot  %s", mustJSON(original["spec"]), mustJSON(obj["spec"]))
		}
	}
	if wantPhase == spec.PhaseSucceeded {
		final := getService(t, a.ns, "web-stable")
		if final == nil || final.Spec.Selector["pod-template-hash"] == "" {
			t.Fatalf("web-stable after promotion: %v", final)
		}
		if rs := newestReplicaSetHash(t, a); final.Spec.Selector["pod-template-hash"] != rs {
			t.Errorf("web-stable pinned to %s after promotion, want the rolled ReplicaSet %s", final.Spec.Selector["pod-template-hash"], rs)
		}
	}
	return steps
}

// applyObjects applies the user's objects given as YAML, in the app's namespace, with kubectl.
func (a *app) applyObjects(objects ...string) {
	a.t.Helper()
	for i, o := range objects {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(o), &u.Object); err != nil {
			a.t.Fatalf("parse %s: %v", o, err)
		}
		u.SetNamespace(a.ns)
		path := filepath.Join(a.manifests, fmt.Sprintf("object-%d.json", i))
		writeFile(a.t, path, []byte(mustJSON(u.Object)))
		a.kubectl("apply", "-f", path)
	}
}

func createService(t *testing.T, ns, name string) {
	t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(demoapp.DefaultPort)}},
		},
	}
	if _, err := env.Client.CoreV1().Services(ns).Create(t.Context(), svc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create Service %s: %v", name, err)
	}
}

func getService(t *testing.T, ns, name string) *corev1.Service {
	t.Helper()
	s, err := env.Client.CoreV1().Services(ns).Get(t.Context(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatalf("get Service %s: %v", name, err)
	}
	return s
}

// assertUserServiceSelectsNoCanary checks the user's Service's endpoints: an isolated canary
// is reached only through the routing object.
func assertUserServiceSelectsNoCanary(t *testing.T, ns string) {
	t.Helper()
	slices_, err := env.Client.DiscoveryV1().EndpointSlices(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=web"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range slices_.Items {
		for _, e := range s.Endpoints {
			if e.TargetRef != nil && strings.HasPrefix(e.TargetRef.Name, "web-canary-") {
				t.Fatalf("the user's Service web selects canary pod %s", e.TargetRef.Name)
			}
		}
	}
}

func newestReplicaSetHash(t *testing.T, a *app) string {
	t.Helper()
	list, err := env.Client.AppsV1().ReplicaSets(a.ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	best, hash := -1, ""
	for _, rs := range list.Items {
		rev, err := strconv.Atoi(rs.Annotations["deployment.kubernetes.io/revision"])
		if err != nil {
			t.Fatalf("ReplicaSet %s: deployment.kubernetes.io/revision: %v", rs.Name, err)
		}
		if rev > best {
			best, hash = rev, rs.Labels["pod-template-hash"]
		}
	}
	return hash
}

func wantSteps(t *testing.T, got []step, want ...string) {
	t.Helper()
	names := make([]string, len(got))
	for i, s := range got {
		names[i] = s.String()
	}
	if slices.Equal(names, want) {
		return
	}
	// The route is written (at weight 0) before the canary's pods start; when they are ready
	// at once, that setting can last less than one poll and go unseen.
	if len(want) > 2 && want[1] == "w0" && want[2] != "user's" && slices.Equal(names, slices.Delete(slices.Clone(want), 1, 2)) {
		return
	}
	t.Errorf("routing steps = %v, want %v", names, want)
}

var _ = context.Background

// canaryPromoted runs the canary release every router is tested with (weights 20, 50, passing
// checks) to promotion, in parallel, and checks its routing steps.
func canaryPromoted(t *testing.T, rc routerCase) {
	t.Parallel()
	steps := runRouterRelease(t, rc, fastAnnotations(spec.AnnStepWeights, "20,50", spec.AnnMetrics, passing), spec.PhaseSucceeded)
	wantSteps(t, steps, "user's", "w0", "w20", "w50", "w100", "w0", "user's")
}

// canaryRolledBack runs the same release with a failing check to its rollback at weight 20.
func canaryRolledBack(t *testing.T, rc routerCase) {
	t.Parallel()
	steps := runRouterRelease(t, rc, fastAnnotations(spec.AnnStepWeights, "20,50", spec.AnnMetrics, failing, spec.AnnThreshold, "1"), spec.PhaseFailed)
	wantSteps(t, steps, "user's", "w0", "w20", "w0", "user's")
}
