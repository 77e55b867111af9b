package faults

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"

	"github.com/sluice-dev/sluice/e2e/demoapp"
	"github.com/sluice-dev/sluice/e2e/stack"
	"github.com/sluice-dev/sluice/providers/routers"
	"github.com/sluice-dev/sluice/providers/routers/gatewayapi"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// point names where a release stands in st, as the rows of docs/faults.md do.
func point(st spec.State) string {
	switch st.Phase {
	case spec.PhaseProgressing:
		switch {
		case st.StepAt.IsZero():
			return "creating-canary"
		case !st.CanaryReady:
			return fmt.Sprintf("Progressing-step%d-w%d-canary-not-ready", st.Step, st.Weight)
		}
		return fmt.Sprintf("Progressing-step%d-w%d", st.Step, st.Weight)
	case spec.PhasePromoting:
		if st.Plan != nil && !st.Plan.Isolated() {
			return "Promoting-rollout"
		}
		if st.PromoteStep == spec.PromoteScale {
			return "Promoting-scale"
		}
		return "Promoting-" + string(st.PromoteStep)
	}
	return string(st.Phase)
}

// Kill points of a "20,50" release, each killed on the write that leaves it. A kill while
// creating the canary resumes with a canary that is usually ready already (the restarted worker
// records the step and its readiness in one write), so the promoted releases kill from the
// point after it, and the rolled-back ones at creation.
var (
	progressPoints   = []string{"Progressing-step0-w20-canary-not-ready", "Progressing-step0-w20", "Progressing-step1-w50"}
	replicasPoints   = append(slices.Clone(progressPoints), "Promoting-rollout")
	isolatedPoints   = append(slices.Clone(progressPoints), "Promoting-shift", "Promoting-rollout", "Promoting-cleanup")
	rollingBackPoint = []string{"creating-canary", "Progressing-step0-w20", "RollingBack"}
)

// killAtEveryPoint arms the kills, starts a's release (start) and drives it to phase end,
// killing sluice with SIGKILL when it records its move from each of points (its first state
// write that leaves the point), one subtest per kill: sluice is held in that write by the API
// proxy, after the step's other writes; the state stored must still be the point's; sluice is
// killed, started again, and its next write must carry on from there: still at the killed
// point, at the step the killed one meant, or the one after (want is the release's sequence).
func killAtEveryPoint(t *testing.T, a *app, rec *recorder, points []string, end spec.Phase, want []string, start func()) {
	t.Helper()
	killed := map[string]bool{}
	arm := func() *stack.Hold {
		left := slices.DeleteFunc(slices.Clone(points), func(p string) bool { return killed[p] })
		return apiProxy.HoldStateWrite(func(w stack.StateWrite) bool {
			return w.Namespace == a.ns && w.Name == a.name && slices.Contains(left, point(w.From)) && point(w.To) != point(w.From)
		})
	}
	hold := arm()
	defer func() { apiProxy.Disarm(hold) }()
	start()
	deadline := time.Now().Add(5 * time.Minute)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case w := <-hold.C:
			p := point(w.From)
			killed[p] = true
			// The next hold is armed while sluice is down, before it writes again.
			t.Run("SIGKILL-at-"+p, func(t *testing.T) { killAndResume(t, a, rec, w, want, func() { hold = arm() }) })
			continue
		case <-tick.C:
		}
		if st := rec.latest(); st.Phase == end {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("release did not reach %s; history:\n%s", end, rec.describe())
		}
	}
	for _, p := range points {
		if !killed[p] {
			t.Errorf("the release never recorded a move from %s: no kill there", p)
		}
	}
}

func killAndResume(t *testing.T, a *app, rec *recorder, w stack.StateWrite, want []string, rearm func()) {
	stored := readState(t, a)
	if stored.Encode() != w.From.Encode() {
		t.Errorf("sluice is held writing over %s, but the stored state is %s", key(w.From), key(stored))
	}
	func() {
		down.Lock()
		defer down.Unlock()
		err := env.KillSluice() // its held request goes with it: the proxy never forwards it
		rearm()
		if err != nil {
			t.Fatal(err)
		}
		if after := readState(t, a); after.Encode() != stored.Encode() {
			t.Errorf("the state changed while sluice was down: %s → %s", key(stored), key(after))
		}
		restartSluice(t)
	}()
	next := rec.waitAfter(t, stored.Encode(), 2*time.Minute)
	// The restarted sluice decides anew: its state carries its own timestamps, so it is never
	// byte for byte the killed one's (but for the move to the rollout sub-step, which sets none).
	if next.Encode() == w.To.Encode() && w.To.PromoteStep != spec.PromoteRollout {
		t.Errorf("the killed sluice's write reached the API server: %s", w.To.Encode())
	}
	from, to, got := slices.Index(want, key(w.From)), slices.Index(want, key(w.To)), slices.Index(want, key(next))
	if got < from || got > to+1 {
		t.Errorf("killed at %s while it recorded %s; after the restart it recorded %s", key(w.From), key(w.To), key(next))
	}
	t.Logf("killed at %s (recording %s); resumed with %s: %s", key(w.From), key(w.To), key(next), next.Message)
}

// readState reads a's state for the (sub)test t.
func readState(t *testing.T, a *app) spec.State {
	t.Helper()
	d, err := env.Client.AppsV1().Deployments(a.ns).Get(t.Context(), a.name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get deployment: %v", err)
	}
	return stateOf(t, d)
}

// SIGKILL at every point of a promoted release, replicas router: waiting for the canary, each
// step, the promotion (the parent rolling out).
func TestKillReplicasPromoted(t *testing.T) {
	t.Parallel()
	disruptive.Lock()
	defer disruptive.Unlock()
	a := newApp(t, "web", fastAnnotations(spec.AnnMetrics, passing))
	a.deploy("demo:v1")
	rec := a.record()
	killAtEveryPoint(t, a, rec, replicasPoints, spec.PhaseSucceeded, promotedReplicas, setImage(a))
	rec.checkRelease(t, promotedReplicas...)
}

// SIGKILL while creating the canary and while rolling back, replicas router: when the failed
// run's rollback is being recorded (the canary's deletion already sent), and in RollingBack.
func TestKillReplicasRollingBack(t *testing.T) {
	t.Parallel()
	disruptive.Lock()
	defer disruptive.Unlock()
	a := newApp(t, "web", fastAnnotations(spec.AnnMetrics, failing))
	a.deploy("demo:v1")
	rec := a.record()
	killAtEveryPoint(t, a, rec, rollingBackPoint, spec.PhaseFailed, rolledBackAtFirstStep, setImage(a))
	rec.checkRelease(t, rolledBackAtFirstStep...)
}

// SIGKILL at every point of a promoted release, Gateway API (an isolated canary): as for
// replicas, and at each promotion sub-step: shift, rollout, cleanup (scale is taken in the
// promoting step when the canary is at the parent's size already, as here).
func TestKillGatewayAPIPromoted(t *testing.T) {
	t.Parallel()
	disruptive.Lock()
	defer disruptive.Unlock()
	a := gatewayApp(t, passing)
	rec, route := a.record(), a.recordRoute()
	killAtEveryPoint(t, a, rec, isolatedPoints, spec.PhaseSucceeded, promotedIsolated, setImage(a))
	rec.checkRelease(t, promotedIsolated...)
	// Every routing step of the plan, in order (a restart may set the route back to the recorded
	// step's weight while that step's analysis is redone: a designed repeat, logged).
	a.waitFor(time.Minute, "the route back to the user's", func(*appsv1.Deployment) (bool, string) {
		h := route.history()
		return h[len(h)-1] == "user's", strings.Join(h, " → ")
	})
	h := route.history()
	t.Logf("HTTPRoute: %s", strings.Join(h, " → "))
	if !inOrder(h, "w20", "w50", "w100", "w0", "user's") {
		t.Errorf("HTTPRoute went %s; want w20, w50, w100, w0, user's in that order", strings.Join(h, " → "))
	}
}

// SIGKILL while creating the canary and while rolling back, Gateway API: traffic already
// moved off the canary, then in RollingBack (the canary's deletion after the settle wait).
func TestKillGatewayAPIRollingBack(t *testing.T) {
	t.Parallel()
	disruptive.Lock()
	defer disruptive.Unlock()
	a := gatewayApp(t, failing)
	rec, route := a.record(), a.recordRoute()
	killAtEveryPoint(t, a, rec, rollingBackPoint, spec.PhaseFailed, rolledBackAtFirstStep, setImage(a))
	rec.checkRelease(t, rolledBackAtFirstStep...)
	// Once the rollback took traffic off the failed canary, it never gets any again.
	a.waitFor(time.Minute, "the route back to the user's", func(*appsv1.Deployment) (bool, string) {
		h := route.history()
		return h[len(h)-1] == "user's", strings.Join(h, " → ")
	})
	h := route.history()
	t.Logf("HTTPRoute: %s", strings.Join(h, " → "))
	if i := slices.Index(h, "w20"); i >= 0 {
		if j := slices.Index(h[i:], "w0"); j >= 0 && slices.Contains(h[i+j:], "w20") {
			t.Errorf("traffic went back to the failed canary after the rollback moved it off: %s", strings.Join(h, " → "))
		}
	}
}

// userHTTPRoute is the route a user keeps in Git for the Service web.
const userHTTPRoute = `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs: [{name: web, port: 80}]
`

// gatewayApp is web behind the user's Service and HTTPRoute, routed by Gateway API, with v1
// deployed.
func gatewayApp(t *testing.T, metrics string) *app {
	t.Helper()
	a := newApp(t, "web", fastAnnotations(spec.AnnRouter, spec.RouterGatewayAPI, spec.AnnMetrics, metrics))
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: a.ns},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(demoapp.DefaultPort)}},
		},
	}
	if _, err := env.Client.CoreV1().Services(a.ns).Create(t.Context(), svc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create Service web: %v", err)
	}
	path := a.manifests + "/route.yaml"
	writeFile(t, path, userHTTPRoute)
	a.kubectl("apply", "-f", path)
	a.deploy("demo:v1")
	return a
}

// setImage releases demo:v2 as a user would.
func setImage(a *app) func() {
	return func() { a.kubectl("set", "image", "deployment/web", "app=demo:v2") }
}

var httpRoutes = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}

// routeRecorder follows the app's HTTPRoute through a watch and records each distinct routing
// it had: "user's" (as the user wrote it) or "w<canary weight>".
type routeRecorder struct {
	mu    sync.Mutex
	steps []string
}

func (a *app) recordRoute() *routeRecorder {
	a.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dyn, err := dynamic.NewForConfig(env.Cluster.RESTConfig())
	if err != nil {
		a.t.Fatal(err)
	}
	res := dyn.Resource(httpRoutes).Namespace(a.ns)
	u, err := res.Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		a.t.Fatal(err)
	}
	rr := &routeRecorder{}
	target := routers.Target{Namespace: a.ns, Service: "web", Port: 80, Route: "web"}
	observe := func(obj map[string]any) {
		o := gatewayapi.Observe(obj, target)
		s := "user's"
		if o.Managed {
			s = fmt.Sprintf("w%d", o.Weight)
		}
		rr.mu.Lock()
		if len(rr.steps) == 0 || rr.steps[len(rr.steps)-1] != s {
			rr.steps = append(rr.steps, s)
		}
		rr.mu.Unlock()
	}
	observe(u.Object)
	w, err := retryWatch(ctx, u.GetResourceVersion(), func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
		o.FieldSelector = "metadata.name=web"
		return res.Watch(ctx, o)
	})
	if err != nil {
		a.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			if u, ok := ev.Object.(*unstructured.Unstructured); ok && ev.Type != watch.Bookmark {
				observe(u.Object)
			}
		}
	}()
	a.t.Cleanup(func() { cancel(); w.Stop(); <-done })
	return rr
}

func (rr *routeRecorder) history() []string {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return slices.Clone(rr.steps)
}

// inOrder reports whether want occur in h in that order (other entries between them allowed).
func inOrder(h []string, want ...string) bool {
	for _, s := range h {
		if len(want) > 0 && s == want[0] {
			want = want[1:]
		}
	}
	return len(want) == 0
}
