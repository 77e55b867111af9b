package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/sluice-dev/sluice/e2e/stack"
	"github.com/sluice-dev/sluice/providers/catalogtest"
	"github.com/sluice-dev/sluice/providers/routers"
	"github.com/sluice-dev/sluice/providers/routers/gatewayapi"
	"github.com/sluice-dev/sluice/rollout"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// errCrash is what the crashing client answers instead of writing the release state.
var errCrash = errors.New("injected crash before the state patch")

// crashBeforeState is a client that performs every write but the parent's state patch, as a
// controller killed after its routing and canary writes and before it records the step. It
// keeps the body it refused.
type crashBeforeState struct {
	client.Client
	parent  types.NamespacedName
	refused []byte
}

func (c *crashBeforeState) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	if _, ok := obj.(*appsv1.Deployment); ok && client.ObjectKeyFromObject(obj) == c.parent {
		data, err := patch.Data(obj)
		if err != nil {
			return err
		}
		c.refused = data
		return errCrash
	}
	return c.Client.Patch(ctx, obj, patch, opts...)
}

// passingAnalyzer passes every check: the test is about what a re-run step writes.
type passingAnalyzer struct{}

func (passingAnalyzer) Run(_ context.Context, _, _ string, plan *spec.Config) []spec.CheckResult {
	v := 100.0
	return []spec.CheckResult{{Name: "ok", Value: &v, Verdict: spec.VerdictPass}}
}

// TestRerunStepWritesTheSameObjects drives a Gateway API release with the reconciler in this
// process, on a clock of its own, and at every step first "crashes" it between its writes and
// the state patch, then runs the step again as a restarted controller would: the route, the
// Sluice-owned Services and the canary must be exactly as the crashed step left them, and the
// re-run must record the state the crashed step meant to. Not parallel: it stops sluice.
func TestRerunStepWritesTheSameObjects(t *testing.T) {
	ann := fastAnnotations(spec.AnnRouter, spec.RouterGatewayAPI, spec.AnnStepWeights, "20,50", spec.AnnMetrics, passing)
	a := newApp(t, "web", ann)
	createService(t, a.ns, "web")
	a.applyObjects(userHTTPRoute)
	a.deploy("demo:v1")
	a.kubectl("set", "image", "deployment/web", "app=demo:v2") // held by the webhook
	direct := workerInTest(t)
	key := types.NamespacedName{Namespace: a.ns, Name: "web"}
	now := time.Now().UTC()
	clock := func() time.Time { return now }
	normal := &rollout.Reconciler{Client: direct, Recorder: &events.FakeRecorder{}, Analyzer: passingAnalyzer{}, Now: clock,
		Defaults: catalogtest.Defaults(), Routers: catalogtest.Routers()}
	crashing := &crashBeforeState{Client: direct, parent: key}
	crashed := &rollout.Reconciler{Client: crashing, Recorder: &events.FakeRecorder{}, Analyzer: passingAnalyzer{}, Now: clock,
		Defaults: catalogtest.Defaults(), Routers: catalogtest.Routers()}
	req := reconcile.Request{NamespacedName: key}
	target := routers.Target{Namespace: a.ns, Service: "web", Port: 80, Route: "web"}

	compared := map[string]int{} // routing step → re-runs compared at it
	deadline := time.Now().Add(3 * time.Minute)
	for {
		now = now.Add(time.Second)
		crashing.refused = nil
		if _, err := crashed.Reconcile(t.Context(), req); err != nil && !errors.Is(err, errCrash) {
			t.Logf("crashed step: %v", err) // e.g. a conflict with the Deployment controller; the next step retries
		}
		left := rerunObjects(t, direct, a.ns)
		if _, err := normal.Reconcile(t.Context(), req); err != nil {
			t.Logf("re-run step: %v", err)
		}
		after := rerunObjects(t, direct, a.ns)

		st := a.state()
		route := rerunStep(after, target)
		// The re-run made the decision the crashed step made (nothing it reads changed in
		// between): it must have written nothing but the state.
		if meant, ok := refusedState(t, crashing.refused); ok && meant == st.Encode() {
			compared[route]++
			delete(left, "parent-state")
			delete(after, "parent-state")
			if !equality.Semantic.DeepEqual(left, after) {
				t.Fatalf("re-running the step at %s changed the objects:\ncrashed step left %s\nre-run left       %s", route, mustJSON(left), mustJSON(after))
			}
		}
		if st.Phase == spec.PhaseSucceeded && route == "user's" && a.canary() == nil {
			break
		}
		if st.Phase == spec.PhaseFailed {
			t.Fatalf("release failed: %s", st.Message)
		}
		if time.Now().After(deadline) {
			t.Fatalf("release did not end; phase %s: %s; re-runs compared %v", st.Phase, st.Message, compared)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("re-runs compared by routing step: %v", compared)
	for _, s := range []string{"w0", "w20", "w50", "w100"} {
		if compared[s] == 0 {
			t.Errorf("no step re-run was compared while the route was at %s (compared %v)", s, compared)
		}
	}
}

// workerInTest restarts sluice without its worker (the webhook keeps serving) until the test
// ends, and returns a client with sluice's identity for the test's own reconciler.
func workerInTest(t *testing.T) client.Client {
	t.Helper()
	restartSluice(t, "--disable-reconciler")
	t.Cleanup(func() { restartSluice(t) })
	_, cfg, err := env.Cluster.UserKubeconfig(stack.Identity)
	if err != nil {
		t.Fatal(err)
	}
	direct, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return direct
}

// restartSluice kills sluice and starts it again with the extra flags.
func restartSluice(t *testing.T, extra ...string) {
	t.Helper()
	if err := env.KillSluice(); err != nil {
		t.Fatal(err)
	}
	if err := env.StartSluice(context.Background(), extra...); err != nil {
		t.Fatal(err)
	}
	if err := env.WaitSluice(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// refusedState is the state annotation a refused parent patch (a JSON patch) set.
func refusedState(t *testing.T, body []byte) (string, bool) {
	t.Helper()
	if body == nil {
		return "", false
	}
	var ops []struct {
		Op, Path string
		Value    any
	}
	if err := json.Unmarshal(body, &ops); err != nil {
		t.Fatalf("refused patch %s: %v", body, err)
	}
	for _, op := range ops {
		if s, ok := op.Value.(string); ok && op.Op == "add" && op.Path == "/metadata/annotations/sluice.dev~1state" {
			return s, true
		}
	}
	return "", false
}

// rerunObjects reads what a release step writes: the route, the Sluice-owned Services, the
// canary and the parent (its state and spec.paused apart, under "parent-state").
func rerunObjects(t *testing.T, c client.Client, ns string) map[string]any {
	t.Helper()
	out := map[string]any{}
	route, found := getObject(t, c, gatewayapi.HTTPRoute, ns, "web")
	if !found {
		t.Fatal("the user's HTTPRoute is gone")
	}
	out["route"] = []any{route.Object["spec"], route.GetLabels(), route.GetAnnotations()}
	for _, name := range []string{"web-stable", "web-canary"} {
		svc := &corev1.Service{}
		if err := c.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, svc); apierrors.IsNotFound(err) {
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		out[name] = []any{svc.Spec.Selector, svc.Spec.Ports, svc.Labels, svc.Annotations, svc.Finalizers, svc.DeletionTimestamp != nil}
	}
	for _, name := range []string{"web", "web-canary"} {
		d := &appsv1.Deployment{}
		if err := c.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, d); apierrors.IsNotFound(err) {
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		ann := maps.Clone(d.Annotations)
		delete(ann, "deployment.kubernetes.io/revision") // the Deployment controller's
		if name == "web" {
			// The state patch carries spec.paused too.
			out["parent-state"] = []any{ann[spec.AnnState], d.Spec.Paused}
			delete(ann, spec.AnnState)
			d.Spec.Paused = false
		}
		out[name] = []any{d.Spec, d.Labels, ann, d.DeletionTimestamp != nil}
	}
	return out
}

// rerunStep names the routing step of the route in objs, as the release harness does.
func rerunStep(objs map[string]any, tg routers.Target) string {
	routeSpec := objs["route"].([]any)[0]
	o := gatewayapi.Observe(map[string]any{"spec": routeSpec}, tg)
	return stepOf(o).String()
}
