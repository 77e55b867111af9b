package rollout_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/providers/catalogtest"
	"github.com/sluice-dev/sluice/providers/routers"
	"github.com/sluice-dev/sluice/rollout"
	"github.com/sluice-dev/sluice/rollout/plan"
	"github.com/sluice-dev/sluice/rollout/spec"
	"github.com/sluice-dev/sluice/webhook"
)

// fakeInfo is a router that exists only in this test, registered below next to the real ones:
// one kind of routing object, canary and A/B releases by exact header, its own builtin queries.
var fakeInfo = spec.RouterInfo{
	Name: "fake",
	Kinds: []spec.RouteKind{{Kind: "fakeroute", Capability: spec.Capability{
		Strategies: []spec.Strategy{spec.StrategyCanary, spec.StrategyAB},
		Headers:    []string{"exact"},
	}}},
	Queries: spec.Queries{
		SuccessRate:       `fake_success{ns="{{ namespace }}",w="{{ canary }}"}[{{ interval }}]`,
		Duration:          `fake_p99{ns="{{ namespace }}",w="{{ canary }}"}`,
		Requests:          `fake_requests{ns="{{ namespace }}",w="{{ canary }}"}[{{ interval }}]`,
		StableSuccessRate: `fake_success{ns="{{ namespace }}",svc="{{ service }}-stable"}[{{ interval }}]`,
	},
	RBAC: []rbacv1.PolicyRule{{APIGroups: []string{"fake.example"}, Resources: []string{"fakeroutes"}, Verbs: routers.VerbsEdit}},
}

// fakeRouter records what it is asked to do.
type fakeRouter struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeRouter) Apply(_ context.Context, t routers.Target, r routers.Routing) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "apply "+t.Kind+"/"+t.Route+" to "+t.Canary())
	return nil
}

func (f *fakeRouter) Reset(_ context.Context, t routers.Target) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "reset "+t.Route)
	return nil
}

func (f *fakeRouter) Current(context.Context, routers.Target) (routers.Observed, error) {
	return routers.Observed{}, nil
}

// recording answers every query with 100 and remembers it.
type recording struct {
	mu      sync.Mutex
	queries []string
}

func (r *recording) Query(_ context.Context, q string) (float64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queries = append(r.queries, q)
	return 100, nil
}

func deployment(image string, ann map[string]string) *appsv1.Deployment {
	labels := map[string]string{"app": "web"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", Labels: map[string]string{spec.LabelEnabled: spec.ValueEnabled}, Annotations: ann},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
			},
		},
	}
}

// A router registered in one place is a router everywhere: admission accepts it and enforces
// exactly its capabilities, the planner runs its release, the factory builds it, and analysis
// renders its builtin queries. A name nobody registered is refused at admission, naming the
// routers there are, and the factory fails at once.
func TestARouterRegisteredInOnePlace(t *testing.T) {
	registry := catalogtest.Routers()
	fake := &fakeRouter{}
	registry.Register(fakeInfo, func(routers.Objects) routers.Router { return fake })
	defaults := spec.Defaults{Routers: registry.Catalog()}
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	decide := func(ann map[string]string) webhook.Outcome {
		return webhook.Decide(webhook.Input{Operation: admissionv1.Update, Now: now, Defaults: defaults,
			Old: deployment("app:v1", ann), New: deployment("app:v2", ann)})
	}

	// Refused: what the router cannot do, and a router nobody registered.
	for _, tc := range []struct {
		ann  map[string]string
		want string
	}{
		{map[string]string{spec.AnnRouter: "fake", spec.AnnStrategy: "bluegreen"},
			`sluice.dev/strategy: the fake router cannot do bluegreen releases (it can do canary, ab), got "bluegreen"`},
		{map[string]string{spec.AnnRouter: "fake", spec.AnnStrategy: "ab", spec.AnnMatch: "- headers: {x-beta: {regex: '.*'}}"},
			`sluice.dev/match[0].headers.x-beta: the fake router can match headers by exact only, got "regex"`},
		{map[string]string{spec.AnnRouter: "fake", spec.AnnSessionAffinity: "s"},
			`sluice.dev/session-affinity: the fake router cannot keep sessions on the canary (session affinity works with gatewayapi (httproute), istio), got "s"`},
		{map[string]string{spec.AnnRouter: "fake", spec.AnnRoute: "httproute/web"},
			`sluice.dev/route: the fake router manages fakeroute objects, got "httproute/web"`},
		{map[string]string{spec.AnnRouter: "haproxy"},
			`sluice.dev/router: must be one of replicas, gatewayapi, istio, linkerd, nginx, contour, appmesh, fake, got "haproxy"`},
	} {
		if v := decide(tc.ann); v.Allowed || v.Denial != tc.want {
			t.Errorf("%v: allowed=%t denial %q\nwant denial %q", tc.ann, v.Allowed, v.Denial, tc.want)
		}
	}
	if r, err := registry.New("haproxy", routers.Objects{}); r != nil || err == nil || !strings.Contains(err.Error(), `router "haproxy" is not available in this controller (it has replicas, gatewayapi, istio, linkerd, nginx, contour, appmesh, fake)`) {
		t.Errorf("New(haproxy) = %v, %v; want an error naming the registered routers", r, err)
	}

	// Accepted and held, with the fake router in the frozen plan.
	ann := map[string]string{
		spec.AnnRouter: "fake", spec.AnnRoute: "fakeroute/front", spec.AnnStrategy: "ab", spec.AnnMatch: "- headers: {x-beta: {exact: 'yes'}}",
		spec.AnnMetrics: "- {name: request-success-rate, thresholdRange: {min: 99}, compareTo: stable, maxDelta: 1, minRequests: 10}\n" +
			"- {name: request-duration, thresholdRange: {max: 500}}",
	}
	v := decide(ann)
	if !v.Allowed || v.Row != webhook.RowHeld || v.Object == nil {
		t.Fatalf("verdict %+v, want held", v)
	}
	st, err := spec.ReadState(v.Object.Annotations)
	if err != nil || st.Plan == nil || st.Plan.Router != "fake" || st.Plan.RouteKind != "fakeroute" || st.Plan.Route != "front" {
		t.Fatalf("held state %+v, %v; want a frozen plan through the fake router", st, err)
	}

	// Planned: the first step pins the stable pods, creates the canary and routes (isolated:
	// the fake router, like every router but replicas, reaches the canary through its object).
	d := plan.Plan(plan.Snapshot{Name: "web", State: st, Config: st.Plan, Parent: plan.Workload{
		Revision: st.Revision, PodHash: "abc12", Paused: true, Generation: 2, ObservedGeneration: 2,
		Replicas: 3, StatusReplicas: 3, AvailableReplicas: 3,
	}}, now)
	want, active := d.State.Routing()
	if d.Canary != plan.CanaryEnsure || !active || d.State.StablePod != "abc12" {
		t.Fatalf("first step: canary %q, routing %+v active=%t, stable pods %q", d.Canary, want, active, d.State.StablePod)
	}
	router, err := registry.New(d.State.Plan.Router, routers.Objects{})
	if err != nil {
		t.Fatal(err)
	}
	target := routers.Target{Namespace: "shop", Service: "web", Route: d.State.Plan.Route, Kind: d.State.Plan.RouteKind}
	if err := router.Apply(t.Context(), target, want); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"apply fakeroute/front to web-canary"}, fake.calls); diff != "" {
		t.Errorf("router calls (-want +got):\n%s", diff)
	}

	// Analysed with the fake router's own builtin queries: canary and stable side, request
	// count, duration.
	prom := &recording{}
	a := rollout.NewAnalyzer(prom, 4)
	a.Routers = defaults.Routers
	results := a.Run(t.Context(), "shop", "web", d.State.Plan)
	for _, r := range results {
		if r.Verdict == spec.VerdictError {
			t.Errorf("check %s: %s", r.Name, r.Reason)
		}
	}
	wantQueries := []string{
		`fake_success{ns="shop",w="web-canary"}[60s]`,
		`fake_success{ns="shop",svc="web-stable"}[60s]`,
		`fake_requests{ns="shop",w="web-canary"}[60s]`,
		`fake_p99{ns="shop",w="web-canary"}`,
	}
	slices.Sort(wantQueries)
	slices.Sort(prom.queries)
	if diff := cmp.Diff(wantQueries, prom.queries); diff != "" {
		t.Errorf("queries run (-want +got):\n%s", diff)
	}

	// Without the registration the same plan's builtin checks name the router they lack.
	a.Routers = catalogtest.Catalog()
	for _, r := range a.Run(t.Context(), "shop", "web", d.State.Plan) {
		if r.Verdict != spec.VerdictError || !strings.Contains(r.Reason, `no builtin query for router "fake"`) {
			t.Errorf("check %s without the fake router: %s %q", r.Name, r.Verdict, r.Reason)
		}
	}
	var unknown *routers.ErrUnknown
	if _, err := catalogtest.Routers().New("fake", routers.Objects{}); !errors.As(err, &unknown) {
		t.Errorf("New(fake) on a registry without it: %v", err)
	}
}
