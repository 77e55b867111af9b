package e2e

// The routers against the real API server with the router CRDs the stack installs (Istio's and
// Contour's from their pinned modules, the SMI TrafficSplit, the App Mesh stand-in): what
// Sluice writes is accepted and survives structural pruning, re-running a step (a second Apply
// of the same routing, as after a restart between the write and the state patch) writes
// nothing, and Reset gives back the user's object as the API server stored it.

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/providers/routers"
	"github.com/sluice-dev/sluice/providers/routers/appmesh"
	"github.com/sluice-dev/sluice/providers/routers/contour"
	"github.com/sluice-dev/sluice/providers/routers/istio"
	"github.com/sluice-dev/sluice/providers/routers/linkerd"
	"github.com/sluice-dev/sluice/providers/routers/nginx"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// setup returns a client and a fresh namespace.
func routerSetup(t *testing.T) (client.Client, string) {
	t.Helper()
	c, err := client.New(env.Cluster.RESTConfig(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "routers-"}}
	if err := c.Create(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(context.Background(), ns) })
	return c, ns.Name
}

// create stores the user's object given as YAML and returns it as the API server keeps it.
func createObject(t *testing.T, c client.Client, gvk schema.GroupVersionKind, ns, name, content string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(content), &u.Object); err != nil {
		t.Fatal(err)
	}
	u.SetGroupVersionKind(gvk)
	u.SetNamespace(ns)
	u.SetName(name)
	if err := c.Create(t.Context(), u); err != nil {
		t.Fatalf("create %s %s: %v", gvk.Kind, name, err)
	}
	return u
}

func getObject(t *testing.T, c client.Client, gvk schema.GroupVersionKind, ns, name string) (*unstructured.Unstructured, bool) {
	t.Helper()
	u, found, err := routers.Objects{Client: c}.Get(t.Context(), gvk, ns, name)
	if err != nil {
		t.Fatal(err)
	}
	return u, found
}

// step applies r, checks what Current reads back, and that applying it again writes nothing.
func routerStep(t *testing.T, c client.Client, router routers.Router, tg routers.Target, r routers.Routing, want routers.Observed, gvk schema.GroupVersionKind, name string) {
	t.Helper()
	ctx := t.Context()
	if err := router.Apply(ctx, tg, r); err != nil {
		t.Fatalf("Apply(%v): %v", r, err)
	}
	before, _ := getObject(t, c, gvk, tg.Namespace, name)
	if err := router.Apply(ctx, tg, r); err != nil {
		t.Fatalf("Apply(%v) again: %v", r, err)
	}
	after, _ := getObject(t, c, gvk, tg.Namespace, name)
	if before.GetResourceVersion() != after.GetResourceVersion() {
		t.Errorf("Apply(%v) again wrote %s %s: %s", r, gvk.Kind, name, cmp.Diff(before.Object, after.Object))
	}
	got, err := router.Current(ctx, tg)
	if err != nil || got != want {
		t.Errorf("Current after Apply(%v) = %+v, %v; want %+v", r, got, err, want)
	}
}

// sameSpec fails unless the object's spec is the user's as first stored.
func sameUserSpec(t *testing.T, c client.Client, user *unstructured.Unstructured) {
	t.Helper()
	got, found := getObject(t, c, user.GroupVersionKind(), user.GetNamespace(), user.GetName())
	if !found {
		t.Fatalf("%s %s is gone", user.GetKind(), user.GetName())
	}
	if diff := cmp.Diff(user.Object["spec"], got.Object["spec"]); diff != "" {
		t.Errorf("%s %s not as the user wrote it (-want +got):\n%s", user.GetKind(), user.GetName(), diff)
	}
}

var abMatch = []spec.Match{{Headers: map[string]spec.StringMatch{"x-canary": {Exact: "insider"}}}}

func TestIstioOnTheAPIServer(t *testing.T) {
	c, ns := routerSetup(t)
	router := istio.Router{Objects: routers.Objects{Client: c}}
	user := createObject(t, c, istio.VirtualService, ns, "web", fmt.Sprintf(`
spec:
  hosts: [web]
  http:
  - name: api
    match: [{uri: {prefix: /api}}]
    route: [{destination: {host: web.%s.svc.cluster.local, port: {number: 80}}}]
    retries: {attempts: 3}
  - route: [{destination: {host: other}, weight: 90}, {destination: {host: web}, weight: 10}]
`, ns))
	tg := routers.Target{Namespace: ns, Service: "web", Port: 80, Route: "web"}
	routerStep(t, c, router, tg, routers.Routing{Weight: 30}, routers.Observed{Managed: true, Weight: 30}, istio.VirtualService, "web")
	routerStep(t, c, router, tg, routers.Routing{Matches: abMatch}, routers.Observed{Managed: true, MatchRules: 2}, istio.VirtualService, "web")
	routerStep(t, c, router, tg, routers.Routing{Mirror: 20}, routers.Observed{Managed: true, Mirror: 20}, istio.VirtualService, "web")
	if err := router.Reset(t.Context(), tg); err != nil {
		t.Fatal(err)
	}
	sameUserSpec(t, c, user)

	owned := routers.Target{Namespace: ns, Service: "api", Port: 8080, Route: "api", Create: true}
	routerStep(t, c, router, owned, routers.Routing{Weight: 5}, routers.Observed{Managed: true, Weight: 5}, istio.VirtualService, "api")
	if err := router.Reset(t.Context(), owned); err != nil {
		t.Fatal(err)
	}
	if _, found := getObject(t, c, istio.VirtualService, ns, "api"); found {
		t.Error("Reset kept Sluice's own VirtualService")
	}
}

func TestContourOnTheAPIServer(t *testing.T) {
	c, ns := routerSetup(t)
	router := contour.Router{Objects: routers.Objects{Client: c}}
	user := createObject(t, c, contour.HTTPProxy, ns, "shop", `
spec:
  virtualhost: {fqdn: shop.example.com}
  routes:
  - conditions: [{prefix: /api}]
    services: [{name: web, port: 80, requestHeadersPolicy: {set: [{name: x-team, value: shop}]}}]
    timeoutPolicy: {response: 10s}
  - services: [{name: static, port: 8080}]
`)
	tg := routers.Target{Namespace: ns, Service: "web", Port: 80, Route: "shop"}
	routerStep(t, c, router, tg, routers.Routing{Weight: 30}, routers.Observed{Managed: true, Weight: 30}, contour.HTTPProxy, "shop")
	query := []spec.Match{abMatch[0], {QueryParams: map[string]spec.StringMatch{"beta": {Regex: "^(1|yes)$"}}}}
	routerStep(t, c, router, tg, routers.Routing{Matches: query}, routers.Observed{Managed: true, MatchRules: 2}, contour.HTTPProxy, "shop")
	if err := router.Reset(t.Context(), tg); err != nil {
		t.Fatal(err)
	}
	sameUserSpec(t, c, user)
}

func TestNginxOnTheAPIServer(t *testing.T) {
	c, ns := routerSetup(t)
	router := nginx.Router{Objects: routers.Objects{Client: c}}
	user := createObject(t, c, nginx.Ingress, ns, "shop", `
spec:
  ingressClassName: nginx
  rules:
  - host: shop.example.com
    http:
      paths:
      - {path: /api, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
      - {path: /static, pathType: Prefix, backend: {service: {name: static, port: {number: 8080}}}}
`)
	tg := routers.Target{Namespace: ns, Service: "web", Port: 80, Route: "shop"}
	routerStep(t, c, router, tg, routers.Routing{Weight: 30}, routers.Observed{Managed: true, Weight: 30}, nginx.Ingress, "shop-canary")
	routerStep(t, c, router, tg, routers.Routing{Matches: abMatch}, routers.Observed{Managed: true, MatchRules: 1}, nginx.Ingress, "shop-canary")
	if got, _ := getObject(t, c, nginx.Ingress, ns, "shop"); got.GetResourceVersion() != user.GetResourceVersion() {
		t.Errorf("the user's Ingress was written: resourceVersion %s, created as %s", got.GetResourceVersion(), user.GetResourceVersion())
	}
	if err := router.Reset(t.Context(), tg); err != nil {
		t.Fatal(err)
	}
	if _, found := getObject(t, c, nginx.Ingress, ns, "shop-canary"); found {
		t.Error("Reset kept the canary Ingress")
	}
}

func TestAppMeshOnTheAPIServer(t *testing.T) {
	c, ns := routerSetup(t)
	router := appmesh.Router{Objects: routers.Objects{Client: c}}
	user := createObject(t, c, appmesh.VirtualRouter, ns, "web", `
spec:
  listeners: [{portMapping: {port: 80, protocol: http}}]
  routes:
  - name: api
    httpRoute:
      match: {prefix: /}
      action: {weightedTargets: [{virtualNodeRef: {name: web}, weight: 1}]}
`)
	createObject(t, c, appmesh.VirtualNode, ns, "web", fmt.Sprintf(`
spec:
  podSelector: {matchLabels: {app: web}}
  listeners: [{portMapping: {port: 80, protocol: http}}]
  serviceDiscovery: {dns: {hostname: web.%s.svc.cluster.local}}
`, ns))
	tg := routers.Target{Namespace: ns, Service: "web", Port: 80, Route: "web",
		StableSelector: map[string]string{"app": "web", "pod-template-hash": "abc"},
		CanarySelector: map[string]string{"app": "web-canary"}}
	if err := router.Apply(t.Context(), tg, routers.Routing{}); err != nil {
		t.Fatal(err)
	}
	node, found := getObject(t, c, appmesh.VirtualNode, ns, "web-canary")
	if !found || routers.Str(node.Object, "spec", "serviceDiscovery", "dns", "hostname") != "web-canary."+ns+".svc.cluster.local" {
		t.Errorf("VirtualNode web-canary: found %v, spec %v", found, node)
	}
	routerStep(t, c, router, tg, routers.Routing{Weight: 30}, routers.Observed{Managed: true, Weight: 30}, appmesh.VirtualRouter, "web")
	if err := router.Reset(t.Context(), tg); err != nil {
		t.Fatal(err)
	}
	sameUserSpec(t, c, user)
	got, _ := getObject(t, c, appmesh.VirtualRouter, ns, "web")
	if _, ok := got.GetAnnotations()[appmesh.AnnUserWeights]; ok {
		t.Errorf("Reset kept %s", appmesh.AnnUserWeights)
	}
	for _, name := range []string{"web-stable", "web-canary"} {
		if _, found := getObject(t, c, appmesh.VirtualNode, ns, name); found {
			t.Errorf("Reset kept VirtualNode %s", name)
		}
	}
}

func TestLinkerdTrafficSplitOnTheAPIServer(t *testing.T) {
	c, ns := routerSetup(t)
	router := linkerd.Router{Objects: routers.Objects{Client: c}}
	tg := routers.Target{Namespace: ns, Service: "web", Port: 80, Route: "web", Kind: linkerd.KindTrafficSplit, Create: true}
	routerStep(t, c, router, tg, routers.Routing{Weight: 0}, routers.Observed{Managed: true}, linkerd.TrafficSplit, "web")
	routerStep(t, c, router, tg, routers.Routing{Weight: 40}, routers.Observed{Managed: true, Weight: 40}, linkerd.TrafficSplit, "web")

	// Linkerd's adaptor reads v1alpha1 (its storage version): the same backends, no conversion.
	v1alpha1 := linkerd.TrafficSplit
	v1alpha1.Version = "v1alpha1"
	old, _ := getObject(t, c, v1alpha1, ns, "web")
	if got := fmt.Sprint(old.Object["spec"]); got != "map[backends:[map[service:web-stable weight:60] map[service:web-canary weight:40]] service:web]" {
		t.Errorf("TrafficSplit read as v1alpha1: %s", got)
	}
	if err := router.Reset(t.Context(), tg); err != nil {
		t.Fatal(err)
	}
	if _, found := getObject(t, c, linkerd.TrafficSplit, ns, "web"); found {
		t.Error("Reset kept the TrafficSplit")
	}
}
