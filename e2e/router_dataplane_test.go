package e2e

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"

	"github.com/sluice-dev/sluice/e2e/gateway"
	"github.com/sluice-dev/sluice/providers/routers"
	"github.com/sluice-dev/sluice/providers/routers/gatewayapi"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// dataPlaneRoute is a route the Caddy gateway can serve whole: one rule for the Service.
const dataPlaneRoute = `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs: [{name: web, port: 80}]
`

// samplesPerStep is how many requests each sample sends through the gateway. Caddy's
// weighted_round_robin is deterministic, so a few hundred requests measure the split closely.
const samplesPerStep = 300

// TestGatewayAPIDataPlaneFollowsRelease sends real requests through Caddy (e2e/gateway, built
// from its Go module) serving the HTTPRoute that Sluice drives during a promoted release: at
// every routing step the share answered by canary pods is the route's weight within ±5 points,
// and no request fails.
func TestGatewayAPIDataPlaneFollowsRelease(t *testing.T) {
	t.Parallel()
	rc := gatewayAPICase()
	rc.objects, rc.userFields = []string{dataPlaneRoute}, nil

	dyn, err := dynamic.NewForConfig(env.Cluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	client := gateway.NewClient()
	var (
		gw       *gateway.Gateway
		ns       string
		mu       sync.Mutex
		sampled  = map[string]bool{} // routing steps measured
		seen     = map[string]bool{} // routing steps the gateway ran
		measured = map[string]bool{} // route resourceVersions measured
	)
	t.Cleanup(func() {
		if gw == nil {
			return
		}
		if t.Failed() {
			t.Logf("gateway applied: %s\ngateway error: %v\ngateway log:\n%s", gw.Applied(), gw.Err(), gw.Log())
		}
		if err := gw.Stop(); err != nil {
			t.Errorf("stop gateway: %v", err)
		}
	})
	// measure runs between the harness's polls: once the gateway runs the route as the API
	// server holds it, it sends a batch and keeps the result if the route did not change meanwhile.
	measure := func(namespace string) {
		ctx := t.Context()
		ns = namespace
		if gw == nil {
			ctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			if gw, err = gateway.Start(ctx, env.Cluster.Binaries.Caddy, env.Cluster.RESTConfig(), ns, "web"); err != nil {
				t.Fatal(err)
			}
		}
		route, err := dyn.Resource(httpRoutes).Namespace(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get HTTPRoute: %v", err)
		}
		rv := route.GetResourceVersion()
		if gw.Applied().RouteVersion != rv || measured[rv] {
			return
		}
		o := gatewayapi.Observe(route.Object, routers.Target{Namespace: ns, Service: "web", Port: 80})
		st := stepOf(o)
		mu.Lock()
		seen[st.String()] = true
		mu.Unlock()
		got := gateway.Send(ctx, client, gw.URL(), samplesPerStep, http.Header{})
		if gw.Applied().RouteVersion != rv {
			return // the route changed while the batch was in flight
		}
		measured[rv] = true
		want := 0.0
		if o.Managed {
			want = float64(o.Weight) / 100
		}
		share := got.Share("web-canary-")
		t.Logf("route at %s: canary answered %.1f%% of %d requests (%v)", st, 100*share, got.Total, got.ByPod)
		if got.Other > 0 {
			t.Errorf("route at %s: %d of %d requests did not get 200 from a pod: %v\ngateway ran %s", st, got.Other, got.Total, got.Failures, gw.Applied())
		}
		if math.Abs(share-want) > 0.05 {
			t.Errorf("route at %s: canary answered %.1f%% of the requests, want %.0f%% ± 5 points", st, 100*share, 100*want)
		}
		mu.Lock()
		sampled[st.String()] = true
		mu.Unlock()
	}
	steps := runRouterRelease(t, rc, fastAnnotations(spec.AnnStepWeights, "20,50", spec.AnnMetrics, passing), spec.PhaseSucceeded, measure)
	wantSteps(t, steps, "user's", "w0", "w20", "w50", "w100", "w0", "user's")
	// The route is the user's again: everyone reaches the promoted version through web.
	for deadline := time.Now().Add(10 * time.Second); !sampled["user's"] && time.Now().Before(deadline); {
		measure(ns)
		time.Sleep(100 * time.Millisecond)
	}
	for _, s := range []string{"user's", "w20", "w50", "w100"} {
		if !sampled[s] {
			t.Errorf("no batch of requests went through the gateway while the route was at %s (the gateway ran %v)", s, fmt.Sprint(seen))
		}
	}
}
