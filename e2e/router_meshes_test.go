package e2e

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/sluice-dev/sluice/providers/routers"
	"github.com/sluice-dev/sluice/providers/routers/appmesh"
	"github.com/sluice-dev/sluice/providers/routers/contour"
	"github.com/sluice-dev/sluice/providers/routers/istio"
	"github.com/sluice-dev/sluice/providers/routers/linkerd"
	"github.com/sluice-dev/sluice/providers/routers/nginx"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// withoutKeys copies the maps of list without the given keys: what is left is the user's.
func withoutKeys(list []map[string]any, keys ...string) []any {
	var out []any
	for _, m := range list {
		c := routers.Copy(m)
		for _, k := range keys {
			delete(c, k)
		}
		out = append(out, c)
	}
	return out
}

func istioCase() routerCase {
	return routerCase{
		router: spec.RouterIstio, name: "web",
		watched: schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"},
		objects: []string{`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web}
spec:
  hosts: [shop.example.com]
  gateways: [mesh, shop/gw]
  http:
  - name: api
    match: [{uri: {prefix: /}}]
    route:
    - destination: {host: web, port: {number: 80}}
      headers: {request: {set: {x-team: shop}}}
    retries: {attempts: 3}
    timeout: 10s
  - route:
    - destination: {host: static, port: {number: 8080}}
`},
		observe: istio.Observe,
		userFields: func(obj map[string]any) any {
			var kept []map[string]any
			for _, h := range routers.Maps(obj, "spec", "http") {
				if routers.Str(h, "name") == "api" || routers.Str(h, "name") == "" {
					kept = append(kept, h)
				}
			}
			s := obj["spec"].(map[string]any)
			return []any{s["hosts"], s["gateways"], withoutKeys(kept, "route", "mirror", "mirrorPercentage")}
		},
	}
}

func TestIstioCanaryPromoted(t *testing.T) {
	canaryPromoted(t, istioCase())
}

func TestIstioCanaryRolledBack(t *testing.T) {
	canaryRolledBack(t, istioCase())
}

func TestIstioStickyCanaryRolledBack(t *testing.T) {
	t.Parallel()
	steps := runRouterRelease(t, istioCase(), fastAnnotations(spec.AnnStepWeights, "20,50", spec.AnnSessionAffinity, "canary-session",
		spec.AnnMetrics, failing, spec.AnnThreshold, "1"), spec.PhaseFailed)
	wantSteps(t, steps, "user's", "w0", "w20+ab1+sticky", "w0", "user's")
}

func TestIstioABPromoted(t *testing.T) {
	t.Parallel()
	steps := runRouterRelease(t, istioCase(), fastAnnotations(spec.AnnStrategy, "ab", spec.AnnIterations, "2",
		spec.AnnMatch, "- headers: {x-canary: {exact: insider}}\n- cookies: {canary: {exact: always}}\n", spec.AnnMetrics, passing), spec.PhaseSucceeded)
	wantSteps(t, steps, "user's", "w0", "w0+ab1", "w100", "w0", "user's")
}

func TestIstioMirrorPromoted(t *testing.T) {
	t.Parallel()
	steps := runRouterRelease(t, istioCase(), fastAnnotations(spec.AnnStrategy, "mirror", spec.AnnIterations, "2", spec.AnnMetrics, passing), spec.PhaseSucceeded)
	wantSteps(t, steps, "user's", "w0", "w0+mirror100", "w100", "w0", "user's")
}

func TestIstioBlueGreenRolledBack(t *testing.T) {
	t.Parallel()
	steps := runRouterRelease(t, istioCase(), fastAnnotations(spec.AnnStrategy, "bluegreen", spec.AnnIterations, "2", spec.AnnMetrics, failing, spec.AnnThreshold, "1"), spec.PhaseFailed)
	wantSteps(t, steps, "user's", "w0", "user's")
}

func contourCase() routerCase {
	return routerCase{
		router: spec.RouterContour, name: "web",
		watched: schema.GroupVersionResource{Group: "projectcontour.io", Version: "v1", Resource: "httpproxies"},
		objects: []string{`
apiVersion: projectcontour.io/v1
kind: HTTPProxy
metadata: {name: web}
spec:
  virtualhost: {fqdn: shop.example.com}
  routes:
  - conditions: [{prefix: /}]
    services: [{name: web, port: 80}]
    timeoutPolicy: {response: 10s}
  - conditions: [{prefix: /static}]
    services: [{name: static, port: 8080}]
`},
		observe: contour.Observe,
		userFields: func(obj map[string]any) any {
			s := obj["spec"].(map[string]any)
			rules := routers.Maps(obj, "spec", "routes")
			return []any{s["virtualhost"], withoutKeys(rules[len(rules)-2:], "services")}
		},
	}
}

func TestContourCanaryPromoted(t *testing.T) {
	canaryPromoted(t, contourCase())
}

func TestContourCanaryRolledBack(t *testing.T) {
	canaryRolledBack(t, contourCase())
}

func appMeshCase() routerCase {
	return routerCase{
		router: spec.RouterAppMesh, name: "web",
		watched: schema.GroupVersionResource{Group: "appmesh.k8s.aws", Version: "v1beta2", Resource: "virtualrouters"},
		objects: []string{`
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualRouter
metadata: {name: web}
spec:
  listeners: [{portMapping: {port: 80, protocol: http}}]
  routes:
  - name: api
    httpRoute:
      match: {prefix: /}
      action:
        weightedTargets: [{virtualNodeRef: {name: web}, weight: 1}]
`},
		observe: appmesh.Observe,
		userFields: func(obj map[string]any) any {
			s := obj["spec"].(map[string]any)
			var kept []any
			for _, r := range routers.Maps(obj, "spec", "routes") {
				h, _, _ := unstructured.NestedMap(r, "httpRoute")
				kept = append(kept, []any{r["name"], h["match"]})
			}
			return []any{s["listeners"], kept}
		},
	}
}

func TestAppMeshCanaryPromoted(t *testing.T) {
	canaryPromoted(t, appMeshCase())
}

func TestAppMeshCanaryRolledBack(t *testing.T) {
	canaryRolledBack(t, appMeshCase())
}

// Current Linkerd routes with Gateway API HTTPRoutes; older Linkerd with SMI TrafficSplits,
// which Sluice owns (created for the release, deleted after it).
func linkerdCases() map[string]routerCase {
	viaRoute := gatewayAPICase()
	viaRoute.router = spec.RouterLinkerd
	return map[string]routerCase{
		"httproute": viaRoute,
		"trafficsplit": {
			router: spec.RouterLinkerd, route: "trafficsplit/web", name: "web", owned: true,
			watched: schema.GroupVersionResource{Group: "split.smi-spec.io", Version: "v1alpha2", Resource: "trafficsplits"},
			observe: func(obj map[string]any, t routers.Target) routers.Observed {
				return linkerd.Observe(&unstructured.Unstructured{Object: obj}, t)
			},
		},
	}
}

func TestLinkerdReleases(t *testing.T) {
	t.Parallel()
	for name, rc := range linkerdCases() {
		t.Run(name+"/promoted", func(t *testing.T) {
			canaryPromoted(t, rc)
		})
		t.Run(name+"/rolledback", func(t *testing.T) {
			canaryRolledBack(t, rc)
		})
	}
}

// ingress-nginx: Sluice owns the canary Ingress `<ingress>-canary`; the user's Ingress is never
// written (its resourceVersion does not move).
func nginxCase() routerCase {
	return routerCase{
		router: spec.RouterNginx, name: nginx.CanaryName("web"), owned: true,
		watched: schema.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "ingresses"},
		objects: []string{`
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  annotations: {nginx.ingress.kubernetes.io/rewrite-target: /}
spec:
  ingressClassName: nginx
  rules:
  - host: shop.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
      - {path: /static, pathType: Prefix, backend: {service: {name: static, port: {number: 8080}}}}
`},
		observe: func(obj map[string]any, _ routers.Target) routers.Observed {
			return nginx.Observe(&unstructured.Unstructured{Object: obj})
		},
	}
}

func TestNginxReleases(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		ann   map[string]string
		phase spec.Phase
		want  []string
	}{
		{"promoted", fastAnnotations(spec.AnnStepWeights, "20,50", spec.AnnMetrics, passing), spec.PhaseSucceeded,
			[]string{"user's", "w0", "w20", "w50", "w100", "w0", "user's"}},
		{"rolledback", fastAnnotations(spec.AnnStepWeights, "20,50", spec.AnnMetrics, failing, spec.AnnThreshold, "1"), spec.PhaseFailed,
			[]string{"user's", "w0", "w20", "w0", "user's"}},
		{"ab", fastAnnotations(spec.AnnStrategy, "ab", spec.AnnIterations, "2", spec.AnnMatch, "- headers: {x-canary: {exact: insider}}\n", spec.AnnMetrics, passing), spec.PhaseSucceeded,
			[]string{"user's", "w0", "w0+ab1", "w100", "w0", "user's"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var before string
			rc := nginxCase()
			rc.userFields = nil
			steps := runRouterRelease(t, rc, tc.ann, tc.phase, func(ns string) {
				ing, err := env.Client.NetworkingV1().Ingresses(ns).Get(t.Context(), "web", metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if before == "" {
					before = ing.ResourceVersion
				} else if ing.ResourceVersion != before {
					t.Fatalf("the user's Ingress was written (resourceVersion %s → %s)", before, ing.ResourceVersion)
				}
			})
			wantSteps(t, steps, tc.want...)
		})
	}
}
