package contour_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-dev/sluice/providers/routers"
	"github.com/sluice-dev/sluice/providers/routers/contour"
	"github.com/sluice-dev/sluice/providers/routers/internal/routertest"
	"github.com/sluice-dev/sluice/rollout/spec"
)

var target = routers.Target{Namespace: "shop", Service: "web", Port: 80, Route: "web"}

// userProxy has a route to the Service (with the user's condition, per-service header policy,
// route header policy and timeout, and a mirror to a shadow Service), a route splitting between
// another Service and the Service, and a route to another Service that must never change.
const userProxy = `
spec:
  virtualhost: {fqdn: shop.example.com, tls: {secretName: shop-tls}}
  includes: [{name: blog, conditions: [{prefix: /blog}]}]
  routes:
  - conditions: [{prefix: /api}]
    services:
    - name: web
      port: 80
      requestHeadersPolicy: {set: [{name: x-team, value: shop}]}
    - {name: shadow, port: 80, mirror: true}
    requestHeadersPolicy: {set: [{name: x-env, value: prod}]}
    timeoutPolicy: {response: 10s}
  - conditions: [{prefix: /legacy}]
    services:
    - {name: legacy, port: 8080, weight: 80}
    - {name: web, port: 80, weight: 20}
  - services: [{name: static, port: 8080}]
`

func TestSetWeights(t *testing.T) {
	proxy := routertest.Parse(t, userProxy)
	if err := contour.Set(proxy, target, routers.Routing{Weight: 30}); err != nil {
		t.Fatal(err)
	}
	want := routertest.Parse(t, `
spec:
  virtualhost: {fqdn: shop.example.com, tls: {secretName: shop-tls}}
  includes: [{name: blog, conditions: [{prefix: /blog}]}]
  routes:
  - conditions: [{prefix: /api}]
    services:
    - name: web-stable
      port: 80
      requestHeadersPolicy: {set: [{name: x-team, value: shop}]}
      weight: 70
    - name: web-canary
      port: 80
      requestHeadersPolicy: {set: [{name: x-team, value: shop}]}
      weight: 30
    - {name: shadow, port: 80, mirror: true}
    requestHeadersPolicy: {set: [{name: x-env, value: prod}]}
    timeoutPolicy: {response: 10s}
  - conditions: [{prefix: /legacy}]
    services:
    - {name: legacy, port: 8080, weight: 80}
    - {name: web-stable, port: 80, weight: 14}
    - {name: web-canary, port: 80, weight: 6}
  - services: [{name: static, port: 8080}]
`)
	if diff := cmp.Diff(routertest.Norm(t, want), routertest.Norm(t, proxy)); diff != "" {
		t.Errorf("proxy (-want +got):\n%s", diff)
	}
	if got := contour.Observe(proxy, target); got != (routers.Observed{Managed: true, Weight: 30}) {
		t.Errorf("Observe = %+v", got)
	}
}

func TestSetAB(t *testing.T) {
	proxy := routertest.Parse(t, userProxy)
	ab := routers.Routing{Matches: []spec.Match{
		{Headers: map[string]spec.StringMatch{"x-canary": {Exact: "insider"}}},
		{QueryParams: map[string]spec.StringMatch{"beta": {Prefix: "v2"}}, Headers: map[string]spec.StringMatch{"x-region": {Exact: "eu"}}},
	}}
	if err := contour.Set(proxy, target, ab); err != nil {
		t.Fatal(err)
	}
	want := routertest.Parse(t, `
spec:
  virtualhost: {fqdn: shop.example.com, tls: {secretName: shop-tls}}
  includes: [{name: blog, conditions: [{prefix: /blog}]}]
  routes:
  - conditions: [{prefix: /api}, {header: {name: x-canary, exact: insider}}]
    services:
    - name: web-canary
      port: 80
      requestHeadersPolicy: {set: [{name: x-team, value: shop}]}
    requestHeadersPolicy: {set: [{name: x-env, value: prod}, {name: x-sluice-route, value: ab}]}
    timeoutPolicy: {response: 10s}
  - conditions: [{prefix: /api}, {header: {name: x-region, exact: eu}}, {queryParameter: {name: beta, prefix: v2}}]
    services:
    - name: web-canary
      port: 80
      requestHeadersPolicy: {set: [{name: x-team, value: shop}]}
    requestHeadersPolicy: {set: [{name: x-env, value: prod}, {name: x-sluice-route, value: ab}]}
    timeoutPolicy: {response: 10s}
  - conditions: [{prefix: /api}]
    services:
    - name: web-stable
      port: 80
      requestHeadersPolicy: {set: [{name: x-team, value: shop}]}
      weight: 100
    - name: web-canary
      port: 80
      requestHeadersPolicy: {set: [{name: x-team, value: shop}]}
      weight: 0
    - {name: shadow, port: 80, mirror: true}
    requestHeadersPolicy: {set: [{name: x-env, value: prod}]}
    timeoutPolicy: {response: 10s}
  - conditions: [{prefix: /legacy}, {header: {name: x-canary, exact: insider}}]
    services: [{name: web-canary, port: 80}]
    requestHeadersPolicy: {set: [{name: x-sluice-route, value: ab}]}
  - conditions: [{prefix: /legacy}, {header: {name: x-region, exact: eu}}, {queryParameter: {name: beta, prefix: v2}}]
    services: [{name: web-canary, port: 80}]
    requestHeadersPolicy: {set: [{name: x-sluice-route, value: ab}]}
  - conditions: [{prefix: /legacy}]
    services:
    - {name: legacy, port: 8080, weight: 80}
    - {name: web-stable, port: 80, weight: 20}
    - {name: web-canary, port: 80, weight: 0}
  - services: [{name: static, port: 8080}]
`)
	if diff := cmp.Diff(routertest.Norm(t, want), routertest.Norm(t, proxy)); diff != "" {
		t.Errorf("ab proxy (-want +got):\n%s", diff)
	}
	if got := contour.Observe(proxy, target); got != (routers.Observed{Managed: true, MatchRules: 4}) {
		t.Errorf("Observe = %+v", got)
	}
}

// TestSetIsIdempotentAndUnsetRestores: applying any routing twice changes nothing the second
// time, and Unset gives back the proxy exactly as the user wrote it.
func TestSetIsIdempotentAndUnsetRestores(t *testing.T) {
	for _, r := range []routers.Routing{
		{Weight: 0}, {Weight: 1}, {Weight: 55}, {Weight: 100},
		{Matches: []spec.Match{{QueryParams: map[string]spec.StringMatch{"beta": {Regex: "^(1|yes)$"}}}}},
		{Matches: []spec.Match{{Headers: map[string]spec.StringMatch{"x-canary": {Exact: "1"}}}, {QueryParams: map[string]spec.StringMatch{"b": {Exact: "1"}}}}},
	} {
		proxy := routertest.Parse(t, userProxy)
		if err := contour.Set(proxy, target, r); err != nil {
			t.Fatal(err)
		}
		once := routertest.Norm(t, proxy)
		if err := contour.Set(proxy, target, r); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(once, routertest.Norm(t, proxy)); diff != "" {
			t.Errorf("%v: second Set changed the proxy (-first +second):\n%s", r, diff)
		}
		if got := contour.Observe(proxy, target); !got.Managed || got.Weight != r.Weight || got.MatchRules != 2*len(r.Matches) {
			t.Errorf("%v: Observe = %+v", r, got)
		}
		contour.Unset(proxy, target)
		if diff := cmp.Diff(routertest.Norm(t, routertest.Parse(t, userProxy)), routertest.Norm(t, proxy)); diff != "" {
			t.Errorf("%v: Unset did not restore the user's proxy (-want +got):\n%s", r, diff)
		}
	}
}

func TestSetRefuses(t *testing.T) {
	for name, tc := range map[string]struct {
		proxy   string
		routing routers.Routing
		want    string
	}{
		"nothing managed": {
			proxy: `spec: {routes: [{services: [{name: other, port: 80}, {name: web, port: 80, mirror: true}]}]}`,
			want:  "no route sends traffic to Service web (or web-stable/web-canary); add it to a route's services",
		},
		"mirror": {
			proxy:   userProxy,
			routing: routers.Routing{Mirror: 10},
			want:    "the contour router cannot mirror a share of requests",
		},
		"cookie": {
			proxy:   userProxy,
			routing: routers.Routing{Matches: []spec.Match{{Cookies: map[string]spec.StringMatch{"canary": {Exact: "always"}}}}},
			want:    "route 0: the contour router cannot match cookies",
		},
		"header regex": {
			proxy:   userProxy,
			routing: routers.Routing{Matches: []spec.Match{{Headers: map[string]spec.StringMatch{"x-user": {Regex: "a|b"}}}}},
			want:    "route 0: the contour router can match headers by exact value only, header x-user has regex",
		},
		"header the route already tests": {
			proxy:   `spec: {routes: [{conditions: [{header: {name: X-Canary, present: true}}], services: [{name: web, port: 80}]}]}`,
			routing: routers.Routing{Matches: []spec.Match{{Headers: map[string]spec.StringMatch{"x-canary": {Exact: "1"}}}}},
			want:    "route 0: the route already has a condition on header x-canary; Sluice cannot add its own",
		},
		"unweighted next to others": {
			proxy: `spec: {routes: [{services: [{name: web, port: 80}, {name: other, port: 80}]}]}`,
			want:  "route 0: the route sends to web and to other Services without giving web a weight; give it the share it should have",
		},
	} {
		t.Run(name, func(t *testing.T) {
			err := contour.Set(routertest.Parse(t, tc.proxy), target, tc.routing)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Set() error = %v, want %s", err, tc.want)
			}
		})
	}
}
