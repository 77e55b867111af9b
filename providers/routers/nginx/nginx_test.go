package nginx_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-dev/sluice/providers/routers"
	"github.com/sluice-dev/sluice/providers/routers/internal/routertest"
	"github.com/sluice-dev/sluice/providers/routers/nginx"
	"github.com/sluice-dev/sluice/rollout/spec"
)

var target = routers.Target{Namespace: "shop", Service: "web", Port: 80, Route: "shop"}

// userIngress sends two paths of one host to the Service (one by port name) and one path and a
// whole host to other Services, with annotations ingress-nginx inherits (rewrite) and ones it
// reads from a canary too (affinity, the legacy class).
const userIngress = `
metadata:
  annotations:
    kubernetes.io/ingress.class: nginx
    nginx.ingress.kubernetes.io/rewrite-target: /
    nginx.ingress.kubernetes.io/affinity: cookie
    nginx.ingress.kubernetes.io/session-cookie-name: route
    example.com/owner: shop-team
spec:
  tls: [{hosts: [shop.example.com], secretName: shop-tls}]
  rules:
  - host: shop.example.com
    http:
      paths:
      - {path: /api, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
      - {path: /static, pathType: Prefix, backend: {service: {name: static, port: {number: 8080}}}}
      - {path: /ui, pathType: Exact, backend: {service: {name: web, port: {name: http}}}}
  - host: blog.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: blog, port: {number: 80}}}}
`

// canaryOf is the canary Ingress for routing r, as metadata annotations and spec.
func canaryOf(t *testing.T, user map[string]any, r routers.Routing) map[string]any {
	t.Helper()
	u, err := nginx.Canary(user, target, r)
	if err != nil {
		t.Fatal(err)
	}
	if u.GetName() != "shop-canary" || u.GetNamespace() != "shop" || !routers.Owned(u) {
		t.Errorf("canary Ingress metadata = %v", u.Object["metadata"])
	}
	return routertest.Norm(t, map[string]any{"annotations": u.GetAnnotations(), "spec": u.Object["spec"]})
}

func TestCanaryWeights(t *testing.T) {
	user := routertest.Parse(t, userIngress)
	got := canaryOf(t, user, routers.Routing{Weight: 30})
	want := routertest.Parse(t, `
annotations:
  nginx.ingress.kubernetes.io/canary: "true"
  nginx.ingress.kubernetes.io/canary-weight: "30"
  nginx.ingress.kubernetes.io/canary-weight-total: "100"
  kubernetes.io/ingress.class: nginx
  nginx.ingress.kubernetes.io/affinity: cookie
  nginx.ingress.kubernetes.io/session-cookie-name: route
spec:
  tls: [{hosts: [shop.example.com], secretName: shop-tls}]
  rules:
  - host: shop.example.com
    http:
      paths:
      - {path: /api, pathType: Prefix, backend: {service: {name: web-canary, port: {number: 80}}}}
      - {path: /ui, pathType: Exact, backend: {service: {name: web-canary, port: {name: http}}}}
`)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("canary Ingress (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(routertest.Norm(t, routertest.Parse(t, userIngress)), routertest.Norm(t, user)); diff != "" {
		t.Errorf("Canary changed the user's Ingress (-want +got):\n%s", diff)
	}
}

func TestCanaryAB(t *testing.T) {
	for name, tc := range map[string]struct {
		match spec.Match
		want  map[string]string
		rules int
	}{
		"header exact": {
			match: spec.Match{Headers: map[string]spec.StringMatch{"x-canary": {Exact: "insider"}}},
			want:  map[string]string{nginx.AnnCanaryByHeader: "x-canary", nginx.AnnCanaryByHeaderVal: "insider"},
			rules: 1,
		},
		"header regex": {
			match: spec.Match{Headers: map[string]spec.StringMatch{"x-user": {Regex: "^(ann|bob)$"}}},
			want:  map[string]string{nginx.AnnCanaryByHeader: "x-user", nginx.AnnCanaryByHeaderPatt: "^(ann|bob)$"},
			rules: 1,
		},
		"cookie": {
			match: spec.Match{Cookies: map[string]spec.StringMatch{"canary": {Exact: "always"}}},
			want:  map[string]string{nginx.AnnCanaryByCookie: "canary"},
			rules: 1,
		},
		"header and cookie": {
			match: spec.Match{
				Headers: map[string]spec.StringMatch{"x-canary": {Exact: "1"}},
				Cookies: map[string]spec.StringMatch{"canary": {Exact: "always"}},
			},
			// ingress-nginx evaluates the two as separate rules.
			want:  map[string]string{nginx.AnnCanaryByHeader: "x-canary", nginx.AnnCanaryByHeaderVal: "1", nginx.AnnCanaryByCookie: "canary"},
			rules: 2,
		},
	} {
		t.Run(name, func(t *testing.T) {
			u, err := nginx.Canary(routertest.Parse(t, userIngress), target, routers.Routing{Matches: []spec.Match{tc.match}})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for k, v := range u.GetAnnotations() {
				switch k {
				case nginx.AnnCanaryByHeader, nginx.AnnCanaryByHeaderVal, nginx.AnnCanaryByHeaderPatt, nginx.AnnCanaryByCookie:
					got[k] = v
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("match annotations (-want +got):\n%s", diff)
			}
			if o := nginx.Observe(u); o != (routers.Observed{Managed: true, MatchRules: tc.rules}) {
				t.Errorf("Observe = %+v", o)
			}
		})
	}
}

func TestCanaryRefuses(t *testing.T) {
	for name, tc := range map[string]struct {
		ingress string
		routing routers.Routing
		want    string
	}{
		"nothing managed": {
			ingress: `spec: {defaultBackend: {service: {name: other, port: {number: 80}}}, rules: [{host: a, http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: other, port: {number: 80}}}}]}}]}`,
			want:    "no rule or default backend sends traffic to Service web; add a path for it",
		},
		"mirror":       {ingress: userIngress, routing: routers.Routing{Mirror: 10}, want: "the nginx router cannot mirror requests"},
		"two matches":  {ingress: userIngress, routing: routers.Routing{Matches: make([]spec.Match, 2)}, want: "the nginx router can route by one match only, got 2"},
		"query":        {ingress: userIngress, routing: ab(spec.Match{QueryParams: map[string]spec.StringMatch{"b": {Exact: "1"}}}), want: "the nginx router cannot match query parameters"},
		"header prefx": {ingress: userIngress, routing: ab(spec.Match{Headers: map[string]spec.StringMatch{"x": {Prefix: "1"}}}), want: "the nginx router can match header x by exact value or regular expression only"},
		"cookie value": {ingress: userIngress, routing: ab(spec.Match{Cookies: map[string]spec.StringMatch{"c": {Exact: "yes"}}}), want: `ingress-nginx routes cookie c to the canary when its value is "always"; match it with exact: always`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := nginx.Canary(routertest.Parse(t, tc.ingress), target, tc.routing)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Canary() error = %v, want %s", err, tc.want)
			}
		})
	}
}

func ab(m spec.Match) routers.Routing { return routers.Routing{Matches: []spec.Match{m}} }

func TestCanaryDefaultBackend(t *testing.T) {
	got := canaryOf(t, routertest.Parse(t, `
spec:
  ingressClassName: public
  defaultBackend: {service: {name: web, port: {number: 80}}}
  rules:
  - host: shop.example.com
  - host: blog.example.com
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: blog, port: {number: 80}}}}]}
`), routers.Routing{Weight: 5})
	want := routertest.Parse(t, `
ingressClassName: public
defaultBackend: {service: {name: web-canary, port: {number: 80}}}
rules: [{host: shop.example.com}]
`)
	if diff := cmp.Diff(want, got["spec"]); diff != "" {
		t.Errorf("canary spec (-want +got):\n%s", diff)
	}
}
