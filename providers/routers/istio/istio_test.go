package istio_test

import (
	"regexp"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-dev/sluice/providers/routers"
	"github.com/sluice-dev/sluice/providers/routers/internal/routertest"
	"github.com/sluice-dev/sluice/providers/routers/istio"
	"github.com/sluice-dev/sluice/rollout/spec"
)

var target = routers.Target{Namespace: "shop", Service: "web", Port: 80, Route: "web"}

// userVS has a route to the Service by its FQDN (with the user's match, per-destination headers,
// retries and timeout), a route splitting between another Service and the Service by short name,
// a route to another Service and a TCP route to the Service; the last two must never change.
const userVS = `
spec:
  hosts: [shop.example.com]
  gateways: [mesh, shop/gw]
  http:
  - name: api
    match: [{uri: {prefix: /api}}]
    route:
    - destination: {host: web.shop.svc.cluster.local, port: {number: 80}}
      headers: {request: {set: {x-team: shop}}}
    retries: {attempts: 3}
    timeout: 10s
  - name: legacy
    route:
    - destination: {host: legacy, port: {number: 8080}}
      weight: 80
    - destination: {host: web, port: {number: 80}}
      weight: 20
  - route:
    - destination: {host: static, port: {number: 8080}}
  tcp:
  - route: [{destination: {host: web, port: {number: 9000}}}]
`

func TestSetWeights(t *testing.T) {
	vs := routertest.Parse(t, userVS)
	if err := istio.Set(vs, target, routers.Routing{Weight: 30}); err != nil {
		t.Fatal(err)
	}
	// The FQDN stays an FQDN; the Service's 20% share next to legacy is what gets split.
	want := routertest.Parse(t, `
spec:
  hosts: [shop.example.com]
  gateways: [mesh, shop/gw]
  http:
  - name: api
    match: [{uri: {prefix: /api}}]
    route:
    - destination: {host: web-stable.shop.svc.cluster.local, port: {number: 80}}
      headers: {request: {set: {x-team: shop}}}
      weight: 70
    - destination: {host: web-canary.shop.svc.cluster.local, port: {number: 80}}
      headers: {request: {set: {x-team: shop}}}
      weight: 30
    retries: {attempts: 3}
    timeout: 10s
  - name: legacy
    route:
    - destination: {host: legacy, port: {number: 8080}}
      weight: 80
    - destination: {host: web-stable, port: {number: 80}}
      weight: 14
    - destination: {host: web-canary, port: {number: 80}}
      weight: 6
  - route:
    - destination: {host: static, port: {number: 8080}}
  tcp:
  - route: [{destination: {host: web, port: {number: 9000}}}]
`)
	if diff := cmp.Diff(routertest.Norm(t, want), routertest.Norm(t, vs)); diff != "" {
		t.Errorf("virtual service (-want +got):\n%s", diff)
	}
	if got := istio.Observe(vs, target); got != (routers.Observed{Managed: true, Weight: 30}) {
		t.Errorf("Observe = %+v", got)
	}
}

// TestSetSticky: the canary destination's responses set the session cookie next to the user's
// own response headers, and a route placed first sends requests carrying it to the canary.
func TestSetSticky(t *testing.T) {
	vs := routertest.Parse(t, `
spec:
  http:
  - route:
    - destination: {host: web}
      headers: {response: {add: {x-served-by: web}}}
`)
	sticky := &spec.Sticky{Cookie: "canary-session", Value: "abc123", MaxAge: 3600}
	if err := istio.Set(vs, target, routers.Routing{Weight: 10, Sticky: sticky}); err != nil {
		t.Fatal(err)
	}
	want := routertest.Parse(t, `
spec:
  http:
  - name: sluice-ab-0
    match: [{headers: {cookie: {regex: '^(.*;\s*)?canary-session=abc123(;.*)?$'}}}]
    route:
    - destination: {host: web-canary}
      headers: {response: {add: {x-served-by: web}}}
  - route:
    - destination: {host: web-stable}
      headers: {response: {add: {x-served-by: web}}}
      weight: 90
    - destination: {host: web-canary}
      headers: {response: {add: {x-served-by: web, Set-Cookie: "canary-session=abc123; Max-Age=3600; Path=/"}}}
      weight: 10
`)
	if diff := cmp.Diff(routertest.Norm(t, want), routertest.Norm(t, vs)); diff != "" {
		t.Errorf("virtual service (-want +got):\n%s", diff)
	}
	if got := istio.Observe(vs, target); got != (routers.Observed{Managed: true, Weight: 10, MatchRules: 1, Sticky: true}) {
		t.Errorf("Observe = %+v", got)
	}
}

func TestSetABAndMirror(t *testing.T) {
	vs := routertest.Parse(t, userVS)
	ab := routers.Routing{Matches: []spec.Match{
		{Headers: map[string]spec.StringMatch{"X-Canary": {Exact: "insider"}}},
		{Cookies: map[string]spec.StringMatch{"canary": {Exact: "always"}}, QueryParams: map[string]spec.StringMatch{"beta": {Prefix: "y"}}},
	}}
	if err := istio.Set(vs, target, ab); err != nil {
		t.Fatal(err)
	}
	want := routertest.Parse(t, `
spec:
  hosts: [shop.example.com]
  gateways: [mesh, shop/gw]
  http:
  - name: sluice-ab-0
    match:
    - uri: {prefix: /api}
      headers: {x-canary: {exact: insider}}
    - uri: {prefix: /api}
      headers: {cookie: {regex: '^(.*;\s*)?canary=always(;.*)?$'}}
      queryParams: {beta: {regex: 'y.*'}}
    route:
    - destination: {host: web-canary.shop.svc.cluster.local, port: {number: 80}}
      headers: {request: {set: {x-team: shop}}}
    retries: {attempts: 3}
    timeout: 10s
  - name: api
    match: [{uri: {prefix: /api}}]
    route:
    - destination: {host: web-stable.shop.svc.cluster.local, port: {number: 80}}
      headers: {request: {set: {x-team: shop}}}
      weight: 100
    - destination: {host: web-canary.shop.svc.cluster.local, port: {number: 80}}
      headers: {request: {set: {x-team: shop}}}
      weight: 0
    retries: {attempts: 3}
    timeout: 10s
  - name: sluice-ab-2
    match:
    - headers: {x-canary: {exact: insider}}
    - headers: {cookie: {regex: '^(.*;\s*)?canary=always(;.*)?$'}}
      queryParams: {beta: {regex: 'y.*'}}
    route:
    - destination: {host: web-canary, port: {number: 80}}
  - name: legacy
    route:
    - destination: {host: legacy, port: {number: 8080}}
      weight: 80
    - destination: {host: web-stable, port: {number: 80}}
      weight: 20
    - destination: {host: web-canary, port: {number: 80}}
      weight: 0
  - route:
    - destination: {host: static, port: {number: 8080}}
  tcp:
  - route: [{destination: {host: web, port: {number: 9000}}}]
`)
	if diff := cmp.Diff(routertest.Norm(t, want), routertest.Norm(t, vs)); diff != "" {
		t.Errorf("ab virtual service (-want +got):\n%s", diff)
	}
	if got := istio.Observe(vs, target); got != (routers.Observed{Managed: true, MatchRules: 2}) {
		t.Errorf("Observe = %+v", got)
	}

	// Switching to a mirror drops the A/B routes and mirrors each managed route to the canary.
	if err := istio.Set(vs, target, routers.Routing{Mirror: 25}); err != nil {
		t.Fatal(err)
	}
	http := routers.Maps(vs, "spec", "http")
	if len(http) != 3 {
		t.Fatalf("http routes after mirror = %d, want 3", len(http))
	}
	for i, wantMirror := range []string{
		`{mirror: {host: web-canary.shop.svc.cluster.local, port: {number: 80}}, mirrorPercentage: {value: 25}}`,
		`{mirror: {host: web-canary, port: {number: 80}}, mirrorPercentage: {value: 25}}`,
	} {
		got := map[string]any{"mirror": http[i]["mirror"], "mirrorPercentage": http[i]["mirrorPercentage"]}
		if diff := cmp.Diff(routertest.Norm(t, routertest.Parse(t, wantMirror)), routertest.Norm(t, got)); diff != "" {
			t.Errorf("route %d mirror (-want +got):\n%s", i, diff)
		}
	}
	if got := istio.Observe(vs, target); got != (routers.Observed{Managed: true, Mirror: 25}) {
		t.Errorf("Observe = %+v", got)
	}
}

// TestMirrorNextToTheUsersMirrors: a route that already lists mirrors gets the canary as one
// more entry; a route with its own single mirror cannot get a second one.
func TestMirrorNextToTheUsersMirrors(t *testing.T) {
	const user = `
spec:
  http:
  - route: [{destination: {host: web}}]
    mirrors: [{destination: {host: shadow}, percentage: {value: 5}}]
`
	vs := routertest.Parse(t, user)
	if err := istio.Set(vs, target, routers.Routing{Mirror: 100}); err != nil {
		t.Fatal(err)
	}
	want := routertest.Parse(t, `
spec:
  http:
  - route: [{destination: {host: web-stable}, weight: 100}, {destination: {host: web-canary}, weight: 0}]
    mirrors:
    - {destination: {host: shadow}, percentage: {value: 5}}
    - {destination: {host: web-canary}, percentage: {value: 100}}
`)
	if diff := cmp.Diff(routertest.Norm(t, want), routertest.Norm(t, vs)); diff != "" {
		t.Errorf("virtual service (-want +got):\n%s", diff)
	}
	if got := istio.Observe(vs, target); got != (routers.Observed{Managed: true, Mirror: 100}) {
		t.Errorf("Observe = %+v", got)
	}
	istio.Unset(vs, target)
	if diff := cmp.Diff(routertest.Norm(t, routertest.Parse(t, user)), routertest.Norm(t, vs)); diff != "" {
		t.Errorf("Unset (-want +got):\n%s", diff)
	}

	own := routertest.Parse(t, `spec: {http: [{route: [{destination: {host: web}}], mirror: {host: shadow}}]}`)
	err := istio.Set(own, target, routers.Routing{Mirror: 10})
	if err == nil || err.Error() != "http route #0: the route already mirrors to shadow and Istio allows one mirror; list it under mirrors instead and Sluice adds web-canary there" {
		t.Errorf("Set() with the user's own mirror: error = %v", err)
	}
}

// TestSetIsIdempotentAndUnsetRestores: applying any routing twice changes nothing the second
// time, and Unset gives back the virtual service exactly as the user wrote it.
func TestSetIsIdempotentAndUnsetRestores(t *testing.T) {
	for _, r := range []routers.Routing{
		{Weight: 0}, {Weight: 1}, {Weight: 55}, {Weight: 100}, {Mirror: 100}, {Mirror: 5},
		{Weight: 20, Sticky: &spec.Sticky{Cookie: "canary-session", Value: "abc123", MaxAge: 60}},
		{Matches: []spec.Match{{QueryParams: map[string]spec.StringMatch{"beta": {Prefix: "y"}}}}},
		{Matches: []spec.Match{
			{Headers: map[string]spec.StringMatch{"x-user": {Regex: "^(a|b)$"}, "x-tier": {Prefix: "gold"}}},
			{Cookies: map[string]spec.StringMatch{"canary": {Exact: "always"}, "region": {Prefix: "eu"}}},
		}},
	} {
		vs := routertest.Parse(t, userVS)
		if err := istio.Set(vs, target, r); err != nil {
			t.Fatal(err)
		}
		once := routertest.Norm(t, vs)
		if err := istio.Set(vs, target, r); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(once, routertest.Norm(t, vs)); diff != "" {
			t.Errorf("%v: second Set changed the virtual service (-first +second):\n%s", r, diff)
		}
		if got := istio.Observe(vs, target); got.Weight != r.Weight || got.Mirror != r.Mirror || !got.Managed {
			t.Errorf("%v: Observe = %+v", r, got)
		}
		istio.Unset(vs, target)
		if diff := cmp.Diff(routertest.Norm(t, routertest.Parse(t, userVS)), routertest.Norm(t, vs)); diff != "" {
			t.Errorf("%v: Unset did not restore the user's virtual service (-want +got):\n%s", r, diff)
		}
	}
}

func TestSetRefuses(t *testing.T) {
	for name, tc := range map[string]struct {
		vs      string
		routing routers.Routing
		want    string
	}{
		"nothing managed": {
			vs:   `spec: {http: [{route: [{destination: {host: other}}]}, {route: [{destination: {host: web.elsewhere}}]}]}`,
			want: "no http route sends traffic to host web (or web-stable/web-canary); add a destination to it",
		},
		"subset": {
			vs:   `spec: {http: [{name: main, route: [{destination: {host: web, subset: v1}}]}]}`,
			want: `http route main: the destination to web names subset "v1"; Sluice splits between the Services web-stable and web-canary, which have no subsets: remove the subset`,
		},
		"match on a header the route already matches": {
			vs:      `spec: {http: [{match: [{headers: {x-canary: {exact: "1"}}}], route: [{destination: {host: web}}]}]}`,
			routing: routers.Routing{Matches: []spec.Match{{Headers: map[string]spec.StringMatch{"x-canary": {Exact: "2"}}}}},
			want:    `http route #0: the route already matches headers "x-canary"; Sluice cannot add its own condition on it`,
		},
	} {
		t.Run(name, func(t *testing.T) {
			err := istio.Set(routertest.Parse(t, tc.vs), target, tc.routing)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Set() error = %v, want %s", err, tc.want)
			}
		})
	}
}

func TestOwnedVirtualService(t *testing.T) {
	u := istio.Owned(target)
	if err := istio.Set(u.Object, target, routers.Routing{Weight: 20}); err != nil {
		t.Fatal(err)
	}
	want := routertest.Parse(t, `
hosts: [web]
http:
- route:
  - {destination: {host: web-stable, port: {number: 80}}, weight: 80}
  - {destination: {host: web-canary, port: {number: 80}}, weight: 20}
`)
	if diff := cmp.Diff(routertest.Norm(t, want), routertest.Norm(t, u.Object["spec"].(map[string]any))); diff != "" {
		t.Errorf("owned virtual service (-want +got):\n%s", diff)
	}
	if u.GetLabels()[routers.LabelManagedBy] != routers.ManagedBy || u.GetName() != "web" || u.GetNamespace() != "shop" {
		t.Errorf("owned virtual service metadata = %v", u.Object["metadata"])
	}
}

func TestCookieRegex(t *testing.T) {
	for name, tc := range map[string]struct {
		cookies    map[string]spec.StringMatch
		match, not []string
	}{
		"exact": {
			cookies: map[string]spec.StringMatch{"canary": {Exact: "always"}},
			match:   []string{"canary=always", "a=1; canary=always", "a=1;canary=always; b=2"},
			not:     []string{"canary=alwaysx", "xcanary=always", "canary=never", "a=canary=always"},
		},
		"prefix": {
			cookies: map[string]spec.StringMatch{"region": {Prefix: "eu."}},
			match:   []string{"region=eu.west", "a=1; region=eu.; b=2"},
			not:     []string{"region=euxwest", "region=us.east; x=eu.1"},
		},
		"regex": {
			cookies: map[string]spec.StringMatch{"user": {Regex: "^(ann|bob)$"}},
			match:   []string{"user=ann", "x=1; user=bob"},
			not:     []string{"user=anna", "user=carl"},
		},
		"two cookies in any order": {
			cookies: map[string]spec.StringMatch{"a": {Exact: "1"}, "b": {Exact: "2"}},
			match:   []string{"a=1; b=2", "b=2; x=0; a=1", "x=0;a=1;b=2;y=3"},
			not:     []string{"a=1", "b=2; a=3", "a=12; b=2"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			re, err := routers.CookieRegex(tc.cookies)
			if err != nil {
				t.Fatal(err)
			}
			r := regexp.MustCompile(re)
			for _, s := range tc.match {
				if !r.MatchString(s) {
					t.Errorf("%s does not match %q", re, s)
				}
			}
			for _, s := range tc.not {
				if r.MatchString(s) {
					t.Errorf("%s matches %q", re, s)
				}
			}
		})
	}
	five := map[string]spec.StringMatch{"a": {Exact: "1"}, "b": {Exact: "1"}, "c": {Exact: "1"}, "d": {Exact: "1"}, "e": {Exact: "1"}}
	if _, err := routers.CookieRegex(five); err == nil {
		t.Error("CookieRegex accepted five cookies")
	}
}
