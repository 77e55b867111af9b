package gatewayapi_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-dev/sluice/providers/routers"
	"github.com/sluice-dev/sluice/providers/routers/gatewayapi"
	"github.com/sluice-dev/sluice/providers/routers/internal/routertest"
	"github.com/sluice-dev/sluice/rollout/spec"
)

var target = routers.Target{Namespace: "shop", Service: "web", Port: 80, Route: "web"}

// userRoute has one rule for the Service (with the user's own filter and timeouts) and one
// for another Service, which must never change.
const userRoute = `
spec:
  parentRefs: [{name: gw}]
  hostnames: [shop.example.com]
  rules:
  - matches: [{path: {type: PathPrefix, value: /api}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {add: [{name: x-team, value: shop}]}
    backendRefs: [{name: web, port: 80}]
    timeouts: {request: 10s}
  - backendRefs: [{name: static, port: 8080}]
`

func TestSetWeights(t *testing.T) {
	route := routertest.Parse(t, userRoute)
	if err := gatewayapi.Set(route, target, routers.Routing{Weight: 30}); err != nil {
		t.Fatal(err)
	}
	want := routertest.Parse(t, `
spec:
  parentRefs: [{name: gw}]
  hostnames: [shop.example.com]
  rules:
  - matches: [{path: {type: PathPrefix, value: /api}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {add: [{name: x-team, value: shop}]}
    backendRefs: [{name: web-stable, port: 80, weight: 70}, {name: web-canary, port: 80, weight: 30}]
    timeouts: {request: 10s}
  - backendRefs: [{name: static, port: 8080}]
`)
	if diff := cmp.Diff(routertest.Norm(t, want), routertest.Norm(t, route)); diff != "" {
		t.Errorf("route (-want +got):\n%s", diff)
	}
	if got := gatewayapi.Observe(route, target); got != (routers.Observed{Managed: true, Weight: 30}) {
		t.Errorf("Observe = %+v", got)
	}
}

func TestSetABAndMirror(t *testing.T) {
	route := routertest.Parse(t, userRoute)
	ab := routers.Routing{Matches: []spec.Match{
		{Headers: map[string]spec.StringMatch{"x-canary": {Exact: "insider"}}},
		{Cookies: map[string]spec.StringMatch{"canary": {Exact: "always"}}},
	}}
	if err := gatewayapi.Set(route, target, ab); err != nil {
		t.Fatal(err)
	}
	want := routertest.Parse(t, `
spec:
  parentRefs: [{name: gw}]
  hostnames: [shop.example.com]
  rules:
  - name: sluice-ab-0
    matches:
    - path: {type: PathPrefix, value: /api}
      headers: [{type: Exact, name: x-canary, value: insider}]
    - path: {type: PathPrefix, value: /api}
      headers: [{type: RegularExpression, name: Cookie, value: '^(.*;\s*)?canary=always(;.*)?$'}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {add: [{name: x-team, value: shop}]}
    backendRefs: [{name: web-canary, port: 80}]
    timeouts: {request: 10s}
  - matches: [{path: {type: PathPrefix, value: /api}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {add: [{name: x-team, value: shop}]}
    backendRefs: [{name: web-stable, port: 80, weight: 100}, {name: web-canary, port: 80, weight: 0}]
    timeouts: {request: 10s}
  - backendRefs: [{name: static, port: 8080}]
`)
	if diff := cmp.Diff(routertest.Norm(t, want), routertest.Norm(t, route)); diff != "" {
		t.Errorf("ab route (-want +got):\n%s", diff)
	}
	if got := gatewayapi.Observe(route, target); got != (routers.Observed{Managed: true, MatchRules: 1}) {
		t.Errorf("Observe = %+v", got)
	}

	// Switching to a mirror drops the A/B rule and adds the filter after the user's own.
	if err := gatewayapi.Set(route, target, routers.Routing{Mirror: 25}); err != nil {
		t.Fatal(err)
	}
	rules := routers.Maps(route, "spec", "rules")
	if len(rules) != 2 {
		t.Fatalf("rules after mirror = %d, want 2", len(rules))
	}
	filters := routers.Maps(rules[0], "filters")
	wantFilter := routertest.Parse(t, `{type: RequestMirror, requestMirror: {backendRef: {name: web-canary, port: 80}, percent: 25}}`)
	if len(filters) != 2 || !cmp.Equal(routertest.Norm(t, wantFilter), routertest.Norm(t, filters[1])) {
		t.Errorf("filters = %v", filters)
	}
	if got := gatewayapi.Observe(route, target); got != (routers.Observed{Managed: true, Mirror: 25}) {
		t.Errorf("Observe = %+v", got)
	}
}

// TestSetIsIdempotentAndUnsetRestores: applying any routing twice changes nothing the second
// time, and Unset gives back the route exactly as the user wrote it.
func TestSetIsIdempotentAndUnsetRestores(t *testing.T) {
	for _, r := range []routers.Routing{
		{Weight: 0}, {Weight: 10}, {Weight: 100}, {Mirror: 100},
		{Matches: []spec.Match{{QueryParams: map[string]spec.StringMatch{"beta": {Prefix: "y"}}}}},
		{Weight: 10, Sticky: &spec.Sticky{Cookie: "canary-session", Value: "abc123", MaxAge: 3600}},
	} {
		route := routertest.Parse(t, userRoute)
		if err := gatewayapi.Set(route, target, r); err != nil {
			t.Fatal(err)
		}
		once := routertest.Norm(t, route)
		if err := gatewayapi.Set(route, target, r); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(once, routertest.Norm(t, route)); diff != "" {
			t.Errorf("%v: second Set changed the route (-first +second):\n%s", r, diff)
		}
		gatewayapi.Unset(route, target)
		if diff := cmp.Diff(routertest.Norm(t, routertest.Parse(t, userRoute)), routertest.Norm(t, route)); diff != "" {
			t.Errorf("%v: Unset did not restore the user's route (-want +got):\n%s", r, diff)
		}
	}
}

// TestSetSticky: the canary's responses set the session cookie (merged into the backend's own
// ResponseHeaderModifier when it has one), and a rule placed first sends requests carrying it
// to the canary; moving to the next weight keeps both, and dropping affinity removes both.
func TestSetSticky(t *testing.T) {
	route := routertest.Parse(t, `
spec:
  rules:
  - backendRefs:
    - name: web
      port: 80
      filters: [{type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: x-served-by, value: web}]}}]
`)
	sticky := &spec.Sticky{Cookie: "canary-session", Value: "abc123", MaxAge: 3600}
	for _, w := range []int{10, 30} {
		if err := gatewayapi.Set(route, target, routers.Routing{Weight: w, Sticky: sticky}); err != nil {
			t.Fatal(err)
		}
	}
	want := routertest.Parse(t, `
spec:
  rules:
  - name: sluice-ab-0
    matches: [{headers: [{type: RegularExpression, name: Cookie, value: '^(.*;\s*)?canary-session=abc123(;.*)?$'}]}]
    backendRefs:
    - name: web-canary
      port: 80
      filters: [{type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: x-served-by, value: web}]}}]
  - backendRefs:
    - name: web-stable
      port: 80
      weight: 70
      filters: [{type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: x-served-by, value: web}]}}]
    - name: web-canary
      port: 80
      weight: 30
      filters:
      - type: ResponseHeaderModifier
        responseHeaderModifier:
          set: [{name: x-served-by, value: web}]
          add: [{name: Set-Cookie, value: "canary-session=abc123; Max-Age=3600; Path=/"}]
`)
	if diff := cmp.Diff(routertest.Norm(t, want), routertest.Norm(t, route)); diff != "" {
		t.Errorf("route (-want +got):\n%s", diff)
	}
	if got := gatewayapi.Observe(route, target); got != (routers.Observed{Managed: true, Weight: 30, MatchRules: 1, Sticky: true}) {
		t.Errorf("Observe = %+v", got)
	}
	if err := gatewayapi.Set(route, target, routers.Routing{Weight: 100}); err != nil {
		t.Fatal(err)
	}
	if got := gatewayapi.Observe(route, target); got != (routers.Observed{Managed: true, Weight: 100}) {
		t.Errorf("Observe after dropping affinity = %+v", got)
	}
}

func TestSetWithoutManagedRule(t *testing.T) {
	route := routertest.Parse(t, `spec: {rules: [{backendRefs: [{name: other, port: 80}]}]}`)
	err := gatewayapi.Set(route, target, routers.Routing{Weight: 10})
	if err == nil || err.Error() != "no rule sends traffic to Service web (or web-stable/web-canary); add a backendRef to it" {
		t.Fatalf("Set() error = %v", err)
	}
}

func TestOwnedRouteIsAMeshRoute(t *testing.T) {
	u := gatewayapi.Owned(gatewayapi.HTTPRoute, target)
	if err := gatewayapi.Set(u.Object, target, routers.Routing{Weight: 20}); err != nil {
		t.Fatal(err)
	}
	want := routertest.Parse(t, `
spec:
  parentRefs: [{group: "", kind: Service, name: web, port: 80}]
  rules:
  - backendRefs: [{name: web-stable, port: 80, weight: 80}, {name: web-canary, port: 80, weight: 20}]
`)
	if diff := cmp.Diff(routertest.Norm(t, want["spec"].(map[string]any)), routertest.Norm(t, u.Object["spec"].(map[string]any))); diff != "" {
		t.Errorf("owned route (-want +got):\n%s", diff)
	}
	if u.GetLabels()[routers.LabelManagedBy] != routers.ManagedBy {
		t.Errorf("owned route labels = %v", u.GetLabels())
	}
}

// norm round-trips through JSON so int64 and float64 numbers compare equal.
