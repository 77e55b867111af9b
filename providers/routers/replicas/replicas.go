// Package replicas is the router for clusters without a mesh: the canary's pods carry the
// Deployment's pod labels, so the Deployment's own Services select them, and the share of
// traffic they get is their share of the pods (the worker sizes the canary for the weight).
// There is no routing object to write, so Apply and Reset do nothing.
//
// A blue/green release still isolates its canary (it gets no live traffic until the switch),
// behind the Services Sluice owns, `<svc>-stable` and `<svc>-canary`; the worker keeps those,
// which is why this router's RBAC includes Services.
//
// Its builtin checks read the application's own HTTP server metrics, scraped per pod.
package replicas

import (
	"context"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/sluice-dev/sluice/providers/routers"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// Builtin PromQL: the application's own HTTP server metrics, scraped per pod with `namespace`
// and `pod` target labels (the conventional kubernetes-pods scrape job). The canary's pods are
// named `<deployment>-canary-<replicaset hash>-<suffix>`.
//
//	http_requests_total{code="200",...}                 counter, one per status code
//	http_request_duration_seconds_bucket{le="0.5",...}  histogram of request latency
const (
	successRate = `(sum(rate(http_requests_total{namespace="{{ namespace }}",pod=~"{{ canary }}-[0-9a-zA-Z]+-[0-9a-zA-Z]+",code!~"5.."}[{{ interval }}]))` +
		` or vector(0)) / sum(rate(http_requests_total{namespace="{{ namespace }}",pod=~"{{ canary }}-[0-9a-zA-Z]+-[0-9a-zA-Z]+"}[{{ interval }}])) * 100`
	duration = `histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{namespace="{{ namespace }}",pod=~"{{ canary }}-[0-9a-zA-Z]+-[0-9a-zA-Z]+"}[{{ interval }}]))) * 1000`
	requests = `sum(increase(http_requests_total{namespace="{{ namespace }}",pod=~"{{ canary }}-[0-9a-zA-Z]+-[0-9a-zA-Z]+"}[{{ interval }}]))`
)

// Info describes the replicas router: no routing object, canary and blue/green releases.
var Info = spec.RouterInfo{
	Name:    spec.RouterReplicas,
	Kinds:   []spec.RouteKind{{Capability: spec.Capability{Strategies: []spec.Strategy{spec.StrategyCanary, spec.StrategyBlueGreen}}}},
	Queries: spec.Queries{SuccessRate: successRate, Duration: duration, Requests: requests},
	RBAC:    []rbacv1.PolicyRule{routers.OwnedServices},
}

// Router does nothing: the Deployment's Services reach the canary's pods by their labels.
type Router struct{}

var _ routers.Router = Router{}

// New builds the router.
func New(routers.Objects) routers.Router { return Router{} }

// Apply implements routers.Router; there is nothing to write.
func (Router) Apply(context.Context, routers.Target, routers.Routing) error { return nil }

// Reset implements routers.Router; there is nothing to put back.
func (Router) Reset(context.Context, routers.Target) error { return nil }

// Current implements routers.Router: no routing object is managed.
func (Router) Current(context.Context, routers.Target) (routers.Observed, error) {
	return routers.Observed{}, nil
}
