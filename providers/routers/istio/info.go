package istio

import (
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/sluice-dev/sluice/providers/routers"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// Builtin PromQL: the sidecar's standard metrics as reported by the server side
// (reporter="destination"), so only requests the workload itself answered count, once.
// destination_workload is the Deployment name: `<deployment>-canary` for the canary,
// `<deployment>` for stable, so one query serves both sides of compareTo: stable.
//
//	istio_requests_total{response_code="200",...}                  counter
//	istio_request_duration_milliseconds_bucket{le="100",...}       histogram, milliseconds
const (
	selector = `reporter="destination",destination_workload_namespace="{{ namespace }}",destination_workload="{{ canary }}"`

	successRate = `(sum(rate(istio_requests_total{` + selector + `,response_code!~"5.."}[{{ interval }}]))` +
		` or vector(0)) / sum(rate(istio_requests_total{` + selector + `}[{{ interval }}])) * 100`
	duration = `histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket{` + selector + `}[{{ interval }}])))`
	requests = `sum(increase(istio_requests_total{` + selector + `}[{{ interval }}]))`
)

// Info describes the istio router.
var Info = spec.RouterInfo{
	Name: spec.RouterIstio,
	Kinds: []spec.RouteKind{{Kind: "virtualservice", Capability: spec.Capability{
		Strategies: []spec.Strategy{spec.StrategyCanary, spec.StrategyBlueGreen, spec.StrategyAB, spec.StrategyMirror},
		Headers:    spec.Comparisons, Cookies: spec.Comparisons, QueryParams: spec.Comparisons, Sticky: true,
	}}},
	Queries: spec.Queries{SuccessRate: successRate, Duration: duration, Requests: requests},
	RBAC: []rbacv1.PolicyRule{
		routers.OwnedServices,
		{APIGroups: []string{VirtualService.Group}, Resources: []string{"virtualservices"}, Verbs: routers.VerbsOwn},
	},
}

// New builds the router.
func New(o routers.Objects) routers.Router { return Router{Objects: o} }
