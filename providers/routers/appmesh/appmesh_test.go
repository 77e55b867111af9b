package appmesh_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-dev/sluice/providers/routers"
	"github.com/sluice-dev/sluice/providers/routers/appmesh"
	"github.com/sluice-dev/sluice/providers/routers/internal/routertest"
	"github.com/sluice-dev/sluice/rollout/spec"
)

var target = routers.Target{Namespace: "shop", Service: "web", Port: 80, Route: "web"}

// userRouter has an HTTP route to the Service's node with the usual lone weight 1 (and the
// user's retry policy), an HTTP route splitting between another node and the Service's, a gRPC
// route to the Service's node, and a route to a node of that name in another namespace, which
// must never change.
const userRouter = `
metadata:
  annotations: {example.com/owner: shop-team}
spec:
  awsName: web-router
  listeners: [{portMapping: {port: 80, protocol: http}}]
  routes:
  - name: api
    priority: 10
    httpRoute:
      match: {prefix: /api}
      action:
        weightedTargets: [{virtualNodeRef: {name: web}, weight: 1, port: 80}]
      retryPolicy: {maxRetries: 2, perRetryTimeout: {unit: ms, value: 2000}, httpRetryEvents: [server-error]}
  - name: legacy
    httpRoute:
      match: {prefix: /legacy}
      action:
        weightedTargets:
        - {virtualNodeRef: {name: legacy}, weight: 80}
        - {virtualNodeRef: {name: web, namespace: shop}, weight: 20}
  - name: cart
    grpcRoute:
      match: {serviceName: shop.Cart}
      action: {weightedTargets: [{virtualNodeRef: {name: web}, weight: 100}]}
  - name: other
    httpRoute:
      match: {prefix: /}
      action: {weightedTargets: [{virtualNodeRef: {name: web, namespace: elsewhere}, weight: 1}]}
`

func TestSetWeights(t *testing.T) {
	vr := routertest.Parse(t, userRouter)
	if err := appmesh.Set(vr, target, routers.Routing{Weight: 30}); err != nil {
		t.Fatal(err)
	}
	want := routertest.Parse(t, `
metadata:
  annotations:
    example.com/owner: shop-team
    sluice.dev/appmesh-weights: '{"api":1,"cart":100,"legacy":20}'
spec:
  awsName: web-router
  listeners: [{portMapping: {port: 80, protocol: http}}]
  routes:
  - name: api
    priority: 10
    httpRoute:
      match: {prefix: /api}
      action:
        weightedTargets:
        - {virtualNodeRef: {name: web-stable}, weight: 70, port: 80}
        - {virtualNodeRef: {name: web-canary}, weight: 30, port: 80}
      retryPolicy: {maxRetries: 2, perRetryTimeout: {unit: ms, value: 2000}, httpRetryEvents: [server-error]}
  - name: legacy
    httpRoute:
      match: {prefix: /legacy}
      action:
        weightedTargets:
        - {virtualNodeRef: {name: legacy}, weight: 80}
        - {virtualNodeRef: {name: web-stable, namespace: shop}, weight: 14}
        - {virtualNodeRef: {name: web-canary, namespace: shop}, weight: 6}
  - name: cart
    grpcRoute:
      match: {serviceName: shop.Cart}
      action:
        weightedTargets:
        - {virtualNodeRef: {name: web-stable}, weight: 70}
        - {virtualNodeRef: {name: web-canary}, weight: 30}
  - name: other
    httpRoute:
      match: {prefix: /}
      action: {weightedTargets: [{virtualNodeRef: {name: web, namespace: elsewhere}, weight: 1}]}
`)
	if diff := cmp.Diff(routertest.Norm(t, want), routertest.Norm(t, vr)); diff != "" {
		t.Errorf("virtual router (-want +got):\n%s", diff)
	}
	if got := appmesh.Observe(vr, target); got != (routers.Observed{Managed: true, Weight: 30}) {
		t.Errorf("Observe = %+v", got)
	}
}

// TestSetIsIdempotentAndUnsetRestores: applying any weight twice changes nothing the second
// time, and Unset gives back the router exactly as the user wrote it, lone weight 1 included.
func TestSetIsIdempotentAndUnsetRestores(t *testing.T) {
	for _, w := range []int{0, 1, 10, 55, 100} {
		r := routers.Routing{Weight: w}
		vr := routertest.Parse(t, userRouter)
		if err := appmesh.Set(vr, target, r); err != nil {
			t.Fatal(err)
		}
		once := routertest.Norm(t, vr)
		if err := appmesh.Set(vr, target, r); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(once, routertest.Norm(t, vr)); diff != "" {
			t.Errorf("%v: second Set changed the router (-first +second):\n%s", r, diff)
		}
		if got := appmesh.Observe(vr, target); got != (routers.Observed{Managed: true, Weight: w}) {
			t.Errorf("%v: Observe = %+v", r, got)
		}
		appmesh.Unset(vr, target)
		if diff := cmp.Diff(routertest.Norm(t, routertest.Parse(t, userRouter)), routertest.Norm(t, vr)); diff != "" {
			t.Errorf("%v: Unset did not restore the user's router (-want +got):\n%s", r, diff)
		}
	}
}

func TestSetRefuses(t *testing.T) {
	for name, tc := range map[string]struct {
		vr      string
		routing routers.Routing
		want    string
	}{
		"nothing managed": {
			vr:   `spec: {routes: [{name: a, httpRoute: {action: {weightedTargets: [{virtualNodeRef: {name: other}, weight: 1}]}}}]}`,
			want: "no route sends traffic to virtual node web (or web-stable/web-canary); add a weighted target for it",
		},
		"matches": {
			vr:      userRouter,
			routing: routers.Routing{Matches: []spec.Match{{Headers: map[string]spec.StringMatch{"x": {Exact: "1"}}}}},
			want:    "the appmesh router can split traffic by weight only (no matches, no mirror)",
		},
		"mirror": {
			vr:      userRouter,
			routing: routers.Routing{Mirror: 5},
			want:    "the appmesh router can split traffic by weight only (no matches, no mirror)",
		},
	} {
		t.Run(name, func(t *testing.T) {
			err := appmesh.Set(routertest.Parse(t, tc.vr), target, tc.routing)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Set() error = %v, want %s", err, tc.want)
			}
		})
	}
}

func TestNode(t *testing.T) {
	userNode := routertest.Parse(t, `
awsName: web_shop
meshRef: {name: global, uid: 1234}
podSelector: {matchLabels: {app: web}}
listeners: [{portMapping: {port: 8080, protocol: http}, healthCheck: {protocol: http, path: /healthz, healthyThreshold: 2, unhealthyThreshold: 2, timeoutMillis: 2000, intervalMillis: 5000}}]
backends: [{virtualService: {virtualServiceRef: {name: payments}}}]
serviceDiscovery: {dns: {hostname: web.shop.svc.corp.internal, responseType: ENDPOINTS}}
`)
	for name, tc := range map[string]struct {
		user map[string]any
		want string
	}{
		"copy of the user's node": {
			user: userNode,
			want: `
meshRef: {name: global, uid: 1234}
podSelector: {matchLabels: {app: web-canary, sluice.dev/track: canary}}
listeners: [{portMapping: {port: 8080, protocol: http}, healthCheck: {protocol: http, path: /healthz, healthyThreshold: 2, unhealthyThreshold: 2, timeoutMillis: 2000, intervalMillis: 5000}}]
backends: [{virtualService: {virtualServiceRef: {name: payments}}}]
serviceDiscovery: {dns: {hostname: web-canary.shop.svc.corp.internal, responseType: ENDPOINTS}}
`,
		},
		"cloud map node": {
			user: routertest.Parse(t, `{listeners: [{portMapping: {port: 80, protocol: http2}}], serviceDiscovery: {awsCloudMap: {namespaceName: shop.local, serviceName: web}}}`),
			want: `
podSelector: {matchLabels: {app: web-canary, sluice.dev/track: canary}}
listeners: [{portMapping: {port: 80, protocol: http2}}]
serviceDiscovery: {dns: {hostname: web-canary.shop.svc.cluster.local}}
`,
		},
		"no user node": {
			want: `
podSelector: {matchLabels: {app: web-canary, sluice.dev/track: canary}}
listeners: [{portMapping: {port: 80, protocol: http}}]
serviceDiscovery: {dns: {hostname: web-canary.shop.svc.cluster.local}}
`,
		},
	} {
		t.Run(name, func(t *testing.T) {
			before := routertest.Norm(t, map[string]any{"spec": tc.user})
			u := appmesh.Node(tc.user, target, "web-canary", map[string]string{"app": "web-canary", "sluice.dev/track": "canary"})
			if diff := cmp.Diff(routertest.Parse(t, tc.want), routertest.Norm(t, u.Object["spec"].(map[string]any))); diff != "" {
				t.Errorf("node spec (-want +got):\n%s", diff)
			}
			if u.GetName() != "web-canary" || u.GetNamespace() != "shop" || !routers.Owned(u) {
				t.Errorf("node metadata = %v", u.Object["metadata"])
			}
			if diff := cmp.Diff(before, routertest.Norm(t, map[string]any{"spec": tc.user})); diff != "" {
				t.Errorf("Node changed the user's node (-want +got):\n%s", diff)
			}
		})
	}
}
