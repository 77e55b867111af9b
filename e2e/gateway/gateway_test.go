package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/e2e/cluster"
	"github.com/sluice-dev/sluice/e2e/demoapp"
	"github.com/sluice-dev/sluice/e2e/gateway"
)

// gatewayAPIVersion is the Gateway API release whose HTTPRoute CRD the test installs.
const gatewayAPIVersion = "v1.6.3"

var testCluster *cluster.Cluster

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run()) // the unit tests of the package; the data-plane test skips itself
	}
	// CIDRs of its own, so that this binary can run beside another package's control plane.
	opts := cluster.Options{PodCIDR: "127.5.0.0/16", ServiceCIDR: "127.20.0.0/16"}
	os.Exit(cluster.Main(m, opts, func(c *cluster.Cluster) error {
		testCluster = c
		return nil
	}))
}

// TestTrafficFollowsHTTPRouteWeights sends real requests through Caddy, configured from an
// HTTPRoute on the local control plane, to real servers on the pods' loopback IPs, and checks
// at each setting that the share reaching the canary is the route's within ±5 points.
func TestTrafficFollowsHTTPRouteWeights(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a local control plane")
	}
	ctx := t.Context()
	cfg := testCluster.RESTConfig()
	cs := kubernetes.NewForConfigOrDie(cfg)
	dyn := dynamic.NewForConfigOrDie(cfg)
	installHTTPRouteCRD(t, dyn)

	ns := fmt.Sprintf("gateway-%d", time.Now().UnixNano()%100000)
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })

	fleet := &demoapp.Fleet{Client: cs, Namespace: ns}
	fleetCtx, stopFleet := context.WithCancel(context.Background())
	fleetDone := make(chan error, 1)
	go func() { fleetDone <- fleet.Run(fleetCtx) }()
	t.Cleanup(func() {
		stopFleet()
		if err := <-fleetDone; err != nil {
			t.Errorf("Fleet.Run() = %v", err)
		}
	})

	// Uneven pod counts: a backendRef's weight must be spread over its pods, not given to each.
	const stablePods, canaryPods = 3, 2
	for _, d := range []struct {
		name, image string
		replicas    int32
	}{{"web-stable", "demo:v1", stablePods}, {"web-canary", "demo:v2", canaryPods}} {
		if _, err := cs.AppsV1().Deployments(ns).Create(ctx, demoapp.Deployment(d.name, ns, d.image, d.replicas), metav1.CreateOptions{}); err != nil {
			t.Fatalf("create Deployment %s: %v", d.name, err)
		}
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: d.name, Namespace: ns},
			Spec: corev1.ServiceSpec{
				Selector: map[string]string{"app": d.name},
				Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
			},
		}
		if _, err := cs.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create Service %s: %v", d.name, err)
		}
	}
	waitServed(t, fleet, "web-stable", stablePods)
	waitServed(t, fleet, "web-canary", canaryPods)

	gw, err := gateway.Start(ctx, testCluster.Binaries.Caddy, cfg, ns, "web")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := gw.Stop(); err != nil {
			t.Errorf("stop gateway: %v", err)
		}
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gateway applied: %s\ngateway error: %v\ngateway log (%s):\n%s", gw.Applied(), gw.Err(), gw.LogPath(), gw.Log())
		}
	})
	client := gateway.NewClient()

	routes := dyn.Resource(gateway.HTTPRoutes).Namespace(ns)
	if _, err := routes.Create(ctx, httpRoute(ns, splitRule(90, 10)), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create HTTPRoute: %v", err)
	}

	for _, step := range []struct {
		stable, canary int64
		wantCanary     float64
	}{{90, 10, 0.10}, {50, 50, 0.50}, {0, 100, 1}} {
		t.Run(fmt.Sprintf("%d/%d", step.stable, step.canary), func(t *testing.T) {
			setRules(t, routes, splitRule(step.stable, step.canary))
			waitApplied(t, gw, routes, map[string]int{"web-stable": stablePods, "web-canary": canaryPods})
			got := gateway.Send(t.Context(), client, gw.URL(), 1000, nil)
			t.Logf("%d requests: %v", got.Total, got.ByPod)
			if got.Other > 0 {
				t.Errorf("%d of %d requests did not get 200 from a pod: %v", got.Other, got.Total, got.Failures)
			}
			if share := got.Share("web-canary-"); math.Abs(share-step.wantCanary) > 0.05 {
				t.Errorf("canary got %.1f%% of the requests, want %.0f%% ± 5 points", 100*share, 100*step.wantCanary)
			}
		})
	}

	t.Run("header match", func(t *testing.T) {
		// A/B routing: a rule matching the header goes first and sends everything to the canary;
		// the default rule keeps everyone else on stable.
		headerRule := map[string]any{
			"matches":     []any{map[string]any{"headers": []any{map[string]any{"name": "X-Canary", "value": "always"}}}},
			"backendRefs": []any{map[string]any{"name": "web-canary", "port": int64(80)}},
		}
		setRules(t, routes, headerRule, splitRule(100, 0))
		waitApplied(t, gw, routes, map[string]int{"web-stable": stablePods, "web-canary": canaryPods})

		for _, tc := range []struct {
			header     string
			wantCanary float64
		}{{"always", 1}, {"", 0}, {"never", 0}, {"always-not", 0}} {
			var header http.Header
			if tc.header != "" {
				header = http.Header{"X-Canary": {tc.header}}
			}
			got := gateway.Send(t.Context(), client, gw.URL(), 1000, header)
			if got.Other > 0 {
				t.Errorf("X-Canary %q: %d of %d requests did not get 200 from a pod: %v", tc.header, got.Other, got.Total, got.Failures)
			}
			if share := got.Share("web-canary-"); share != tc.wantCanary {
				t.Errorf("X-Canary %q: canary got %.1f%% of the requests, want %.0f%% (%v)", tc.header, 100*share, 100*tc.wantCanary, got.ByPod)
			}
		}
	})

	t.Run("no ready canary", func(t *testing.T) {
		// A backend with a weight but no ready pod keeps its share, answered 503, as a Gateway
		// API implementation does; the rest still reaches stable.
		scale(t, cs, ns, "web-canary", 0)
		setRules(t, routes, splitRule(80, 20))
		waitApplied(t, gw, routes, map[string]int{"web-stable": stablePods, "web-canary": 0})
		got := gateway.Send(t.Context(), client, gw.URL(), 1000, nil)
		t.Logf("%d requests: %v, status: %v", got.Total, got.ByPod, got.Failures)
		unavailable := float64(got.Failures[http.StatusServiceUnavailable]) / float64(got.Total)
		if math.Abs(unavailable-0.20) > 0.05 || math.Abs(got.Share("web-stable-")-0.80) > 0.05 {
			t.Errorf("%.1f%% got 503 and %.1f%% reached stable, want 20%% and 80%% ± 5 points", 100*unavailable, 100*got.Share("web-stable-"))
		}

		setRules(t, routes, splitRule(0, 0))
		waitApplied(t, gw, routes, map[string]int{"web-stable": stablePods, "web-canary": 0})
		if got := gateway.Send(t.Context(), client, gw.URL(), 50, nil); got.Failures[http.StatusServiceUnavailable] != got.Total {
			t.Errorf("all weights 0: got %v, want 503 for all %d requests", got.Failures, got.Total)
		}
	})

	t.Run("unsupported match", func(t *testing.T) {
		// A match the gateway cannot honour is refused, not ignored: Caddy keeps the last config.
		before := gw.Applied()
		rule := splitRule(100, 0)
		rule["matches"] = []any{map[string]any{"method": "POST"}}
		setRules(t, routes, rule)
		poll(t, 30*time.Second, "the gateway to refuse the method match", func() (bool, string) {
			err := gw.Err()
			return err != nil && strings.Contains(err.Error(), "method matches are not supported"), fmt.Sprintf("error %v", err)
		})
		if after := gw.Applied(); after.RouteVersion != before.RouteVersion {
			t.Errorf("applied %s after the refused change, want still %s", after, before)
		}
	})
}

// installHTTPRouteCRD creates the standard-channel HTTPRoute CRD of the pinned Gateway API
// release, read from the Go module cache, and waits until it is established.
func installHTTPRouteCRD(t *testing.T, dyn dynamic.Interface) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "go", "mod", "download", "-json", "sigs.k8s.io/gateway-api@"+gatewayAPIVersion)
	cmd.Dir = t.TempDir() // outside any module: nothing to edit, the main go.mod needs no entry
	cmd.Env = append(os.Environ(), "GOWORK=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go mod download sigs.k8s.io/gateway-api@%s: %v\n%s", gatewayAPIVersion, err, stderr.String())
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("go mod download printed %q: %v", out, err)
	}
	data, err := os.ReadFile(filepath.Join(mod.Dir, "config", "crd", "standard", "gateway.networking.k8s.io_httproutes.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var crd unstructured.Unstructured
	if err := yaml.Unmarshal(data, &crd.Object); err != nil {
		t.Fatalf("parse HTTPRoute CRD: %v", err)
	}
	crds := dyn.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	if _, err := crds.Create(t.Context(), &crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create HTTPRoute CRD: %v", err)
	}
	poll(t, 30*time.Second, "HTTPRoute CRD established", func() (bool, string) {
		got, err := crds.Get(t.Context(), crd.GetName(), metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		conditions, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
		for _, c := range conditions {
			c, _ := c.(map[string]any)
			if c["type"] == "Established" && c["status"] == "True" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("conditions %v", conditions)
	})
}

// httpRoute is HTTPRoute ns/web with the given rules, attached to a Gateway that need not
// exist (the local gateway serves the route by name).
func httpRoute(ns string, rules ...any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1",
		"kind":       "HTTPRoute",
		"metadata":   map[string]any{"name": "web", "namespace": ns},
		"spec": map[string]any{
			"parentRefs": []any{map[string]any{"name": "local"}},
			"rules":      rules,
		},
	}}
}

// splitRule is a rule without matches splitting between web-stable and web-canary, as a
// router writes it.
func splitRule(stable, canary int64) map[string]any {
	return map[string]any{"backendRefs": []any{
		map[string]any{"name": "web-stable", "port": int64(80), "weight": stable},
		map[string]any{"name": "web-canary", "port": int64(80), "weight": canary},
	}}
}

// setRules replaces the rules of HTTPRoute web.
func setRules(t *testing.T, routes dynamic.ResourceInterface, rules ...any) {
	t.Helper()
	r, err := routes.Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get HTTPRoute: %v", err)
	}
	if err := unstructured.SetNestedSlice(r.Object, rules, "spec", "rules"); err != nil {
		t.Fatal(err)
	}
	if _, err := routes.Update(t.Context(), r, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update HTTPRoute: %v", err)
	}
}

// waitApplied waits until the gateway runs the HTTPRoute as the API server holds it now, with
// the given number of endpoints for each Service.
func waitApplied(t *testing.T, gw *gateway.Gateway, routes dynamic.ResourceInterface, endpoints map[string]int) {
	t.Helper()
	r, err := routes.Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get HTTPRoute: %v", err)
	}
	poll(t, 30*time.Second, "the gateway to apply HTTPRoute resourceVersion "+r.GetResourceVersion(), func() (bool, string) {
		a := gw.Applied()
		if a.RouteVersion != r.GetResourceVersion() {
			return false, fmt.Sprintf("applied %s (error: %v)", a, gw.Err())
		}
		for _, rule := range a.Rules {
			for _, b := range rule.Backends {
				if len(b.Endpoints) != endpoints[b.Service] {
					return false, fmt.Sprintf("applied %s", a)
				}
			}
		}
		return true, ""
	})
	t.Logf("applied %s", gw.Applied())
}

// waitServed waits until the Fleet serves n Ready pods of Deployment name.
func waitServed(t *testing.T, fleet *demoapp.Fleet, name string, n int) {
	t.Helper()
	selector := labels.SelectorFromSet(labels.Set{"app": name})
	poll(t, 60*time.Second, fmt.Sprintf("%d served Ready pods of %s", n, name), func() (bool, string) {
		eps := fleet.Endpoints(selector)
		return len(eps) == n, fmt.Sprintf("%d served: %v", len(eps), eps)
	})
}

func scale(t *testing.T, cs kubernetes.Interface, ns, name string, replicas int32) {
	t.Helper()
	d, err := cs.AppsV1().Deployments(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get Deployment %s: %v", name, err)
	}
	d.Spec.Replicas = ptr.To(replicas)
	if _, err := cs.AppsV1().Deployments(ns).Update(t.Context(), d, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("scale Deployment %s: %v", name, err)
	}
	poll(t, 60*time.Second, fmt.Sprintf("Deployment %s at %d replicas", name, replicas), func() (bool, string) {
		d, err := cs.AppsV1().Deployments(ns).Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return d.Status.Replicas == replicas && d.Status.ReadyReplicas == replicas,
			fmt.Sprintf("replicas=%d ready=%d", d.Status.Replicas, d.Status.ReadyReplicas)
	})
}

// poll calls cond every 100 ms until it holds, failing the test after timeout with the last
// detail it gave.
func poll(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %s", timeout, what, detail)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("waiting for %s: %v", what, t.Context().Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
