package e2e

import (
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/sluice-dev/sluice/providers/routers"
	"github.com/sluice-dev/sluice/providers/routers/gatewayapi"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// userHTTPRoute is a route as a user keeps it in Git: a rule for the Service with the user's
// own filter and timeout, and a rule for another Service.
const userHTTPRoute = `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{name: gw}]
  hostnames: [shop.example.com]
  rules:
  - matches: [{path: {type: PathPrefix, value: /}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {add: [{name: x-team, value: shop}]}
    backendRefs: [{name: web, port: 80}]
    timeouts: {request: 10s}
  - matches: [{path: {type: PathPrefix, value: /static}}]
    backendRefs: [{name: static, port: 8080}]
`

var httpRoutes = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}

func gatewayAPICase() routerCase {
	return routerCase{
		router: spec.RouterGatewayAPI, objects: []string{userHTTPRoute},
		watched: httpRoutes, name: "web", observe: gatewayapi.Observe,
		userFields: func(obj map[string]any) any {
			rules := routers.Maps(obj, "spec", "rules")
			var kept []any
			for _, r := range rules {
				if routers.Str(r, "name") != "" {
					continue // Sluice's A/B rules
				}
				kept = append(kept, []any{r["matches"], userFilters(r), r["timeouts"]})
			}
			kept = append(kept, rules[len(rules)-1]) // the other Service's rule, whole
			s := obj["spec"].(map[string]any)
			return []any{s["parentRefs"], s["hostnames"], kept}
		},
	}
}

// userFilters drops the RequestMirror filter Sluice owns.
func userFilters(rule map[string]any) []map[string]any {
	var out []map[string]any
	for _, f := range routers.Maps(rule, "filters") {
		if routers.Str(f, "type") != "RequestMirror" {
			out = append(out, f)
		}
	}
	return out
}

func TestGatewayAPICanaryPromoted(t *testing.T) {
	canaryPromoted(t, gatewayAPICase())
}

func TestGatewayAPICanaryRolledBack(t *testing.T) {
	canaryRolledBack(t, gatewayAPICase())
}

// Session affinity: while the weights send some users to the canary, its responses set the
// cookie and a rule sends requests carrying it to the canary.
func TestGatewayAPIStickyCanaryPromoted(t *testing.T) {
	t.Parallel()
	steps := runRouterRelease(t, gatewayAPICase(), fastAnnotations(spec.AnnStepWeights, "20,50", spec.AnnSessionAffinity, "canary-session", spec.AnnMetrics, passing), spec.PhaseSucceeded)
	wantSteps(t, steps, "user's", "w0", "w20+ab1+sticky", "w50+ab1+sticky", "w100", "w0", "user's")
}

func TestGatewayAPIABPromoted(t *testing.T) {
	t.Parallel()
	steps := runRouterRelease(t, gatewayAPICase(), fastAnnotations(spec.AnnStrategy, "ab", spec.AnnIterations, "2",
		spec.AnnMatch, "- headers: {x-canary: {exact: insider}}\n- cookies: {canary: {exact: always}}\n", spec.AnnMetrics, passing), spec.PhaseSucceeded)
	wantSteps(t, steps, "user's", "w0", "w0+ab1", "w100", "w0", "user's")
}

func TestGatewayAPIMirrorRolledBack(t *testing.T) {
	t.Parallel()
	steps := runRouterRelease(t, gatewayAPICase(), fastAnnotations(spec.AnnStrategy, "mirror", spec.AnnMirrorPercent, "50",
		spec.AnnIterations, "2", spec.AnnMetrics, failing, spec.AnnThreshold, "1"), spec.PhaseFailed)
	wantSteps(t, steps, "user's", "w0", "w0+mirror50", "w0", "user's")
}

func TestGatewayAPIBlueGreenPromoted(t *testing.T) {
	t.Parallel()
	steps := runRouterRelease(t, gatewayAPICase(), fastAnnotations(spec.AnnStrategy, "bluegreen", spec.AnnIterations, "2", spec.AnnMetrics, passing), spec.PhaseSucceeded)
	wantSteps(t, steps, "user's", "w0", "w100", "w0", "user's")
}

// A gRPC service behind a GRPCRoute, and a Service with no route of the user's: Sluice creates
// its own (mesh) HTTPRoute for the release and deletes it after.
func TestGatewayAPIGRPCRouteAndOwnedRoute(t *testing.T) {
	t.Parallel()
	t.Run("grpcroute", func(t *testing.T) {
		t.Parallel()
		rc := gatewayAPICase()
		rc.route, rc.watched = "grpcroute/web", schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "grpcroutes"}
		rc.objects = []string{`
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: web}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{method: {service: shop.Cart}}]
    backendRefs: [{name: web, port: 80}]
  - matches: [{method: {service: shop.Static}}]
    backendRefs: [{name: static, port: 8080}]
`}
		steps := runRouterRelease(t, rc, fastAnnotations(spec.AnnStepWeights, "30", spec.AnnMetrics, passing), spec.PhaseSucceeded)
		wantSteps(t, steps, "user's", "w0", "w30", "w100", "w0", "user's")
	})
	t.Run("owned", func(t *testing.T) {
		t.Parallel()
		rc := gatewayAPICase()
		rc.objects, rc.owned = nil, true
		steps := runRouterRelease(t, rc, fastAnnotations(spec.AnnStepWeights, "30", spec.AnnMetrics, passing), spec.PhaseSucceeded)
		wantSteps(t, steps, "user's", "w0", "w30", "w100", "w0", "user's")
	})
}
