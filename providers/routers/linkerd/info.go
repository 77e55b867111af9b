package linkerd

import (
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/sluice-dev/sluice/providers/routers"
	"github.com/sluice-dev/sluice/providers/routers/gatewayapi"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// Builtin PromQL: the proxy's inbound metrics (direction="inbound": requests the workload
// served, not the calls it made). The `deployment` label is the pod's owning Deployment
// (linkerd-viz's scrape configuration copies it from the pod label linkerd.io/proxy-deployment),
// so one query serves both sides of compareTo: stable. A response is a failure by Linkerd's own
// classification: a 5xx status, or a gRPC error status.
//
//	response_total{classification="success",status_code="200",...}  counter
//	response_latency_ms_bucket{le="100",...}                         histogram, milliseconds
const (
	selector = `namespace="{{ namespace }}",deployment="{{ canary }}",direction="inbound"`

	successRate = `(sum(rate(response_total{` + selector + `,classification!="failure"}[{{ interval }}]))` +
		` or vector(0)) / sum(rate(response_total{` + selector + `}[{{ interval }}])) * 100`
	duration = `histogram_quantile(0.99, sum by (le) (rate(response_latency_ms_bucket{` + selector + `}[{{ interval }}])))`
	requests = `sum(increase(response_total{` + selector + `}[{{ interval }}]))`
)

// Info describes the linkerd router: HTTPRoutes (default) or an SMI TrafficSplit.
var Info = spec.RouterInfo{
	Name: spec.RouterLinkerd,
	Kinds: []spec.RouteKind{
		{Kind: KindHTTPRoute, Capability: spec.Capability{
			Strategies: []spec.Strategy{spec.StrategyCanary, spec.StrategyBlueGreen, spec.StrategyAB},
			Headers:    spec.Comparisons, Cookies: spec.Comparisons, QueryParams: spec.Comparisons,
		}},
		{Kind: KindTrafficSplit, Capability: spec.Capability{Strategies: []spec.Strategy{spec.StrategyCanary, spec.StrategyBlueGreen}}},
	},
	Queries: spec.Queries{SuccessRate: successRate, Duration: duration, Requests: requests},
	RBAC: []rbacv1.PolicyRule{
		routers.OwnedServices,
		{APIGroups: []string{gatewayapi.HTTPRoute.Group}, Resources: []string{"httproutes"}, Verbs: routers.VerbsOwn},
		{APIGroups: []string{TrafficSplit.Group}, Resources: []string{"trafficsplits"}, Verbs: routers.VerbsOwn},
	},
}

// New builds the router.
func New(o routers.Objects) routers.Router { return Router{Objects: o} }
