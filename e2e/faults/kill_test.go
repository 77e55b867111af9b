package faults

import (
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/sluice-dev/sluice/e2e/demoapp"
	"github.com/sluice-dev/sluice/e2e/stack"
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
	isolatedPoints   = append(slices.Clone(progressPoints), "Promoting-scale", "Promoting-shift", "Promoting-rollout", "Promoting-cleanup")
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
		restartSluice(t)
	}()
	next := rec.waitAfter(t, stored.Encode(), 2*time.Minute)
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
// replicas, and at each promotion sub-step: scale, shift, rollout, cleanup.
func TestKillGatewayAPIPromoted(t *testing.T) {
	t.Parallel()
	disruptive.Lock()
	defer disruptive.Unlock()
	a := gatewayApp(t, passing)
	rec := a.record()
	killAtEveryPoint(t, a, rec, isolatedPoints, spec.PhaseSucceeded, promotedIsolated, setImage(a))
	rec.checkRelease(t, promotedIsolated...)
}

// SIGKILL while creating the canary and while rolling back, Gateway API: traffic already
// moved off the canary, then in RollingBack (the canary's deletion after the settle wait).
func TestKillGatewayAPIRollingBack(t *testing.T) {
	t.Parallel()
	disruptive.Lock()
	defer disruptive.Unlock()
	a := gatewayApp(t, failing)
	rec := a.record()
	killAtEveryPoint(t, a, rec, rollingBackPoint, spec.PhaseFailed, rolledBackAtFirstStep, setImage(a))
	rec.checkRelease(t, rolledBackAtFirstStep...)
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
