package contour

import (
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/sluice-dev/sluice/providers/routers"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// Builtin PromQL (for HTTPProxy, and for Contour as a Gateway API implementation): Envoy's
// upstream cluster metrics. Contour gives each Service port its own cluster with the stat name
// `<namespace>_<service>_<port>`, so `<svc>-canary` and `<svc>-stable` are separate clusters;
// the series name the Service, not the Deployment, so the stable side of compareTo: stable has
// queries of its own (the `<svc>-stable` cluster).
//
//	envoy_cluster_upstream_rq{envoy_response_code="200",envoy_cluster_name="shop_web-canary_80"}  counter
//	envoy_cluster_upstream_rq_time_bucket{le="100",...}                                          histogram, milliseconds
const (
	canarySelector = `envoy_cluster_name=~"{{ namespace }}_{{ service }}-canary_[0-9]+"`
	stableSelector = `envoy_cluster_name=~"{{ namespace }}_{{ service }}-stable_[0-9]+"`

	canarySuccessRate = `(sum(rate(envoy_cluster_upstream_rq{` + canarySelector + `,envoy_response_code!~"5.."}[{{ interval }}]))` +
		` or vector(0)) / sum(rate(envoy_cluster_upstream_rq{` + canarySelector + `}[{{ interval }}])) * 100`
	canaryDuration = `histogram_quantile(0.99, sum by (le) (rate(envoy_cluster_upstream_rq_time_bucket{` + canarySelector + `}[{{ interval }}])))`
	canaryRequests = `sum(increase(envoy_cluster_upstream_rq{` + canarySelector + `}[{{ interval }}]))`

	stableSuccessRate = `(sum(rate(envoy_cluster_upstream_rq{` + stableSelector + `,envoy_response_code!~"5.."}[{{ interval }}]))` +
		` or vector(0)) / sum(rate(envoy_cluster_upstream_rq{` + stableSelector + `}[{{ interval }}])) * 100`
	stableDuration = `histogram_quantile(0.99, sum by (le) (rate(envoy_cluster_upstream_rq_time_bucket{` + stableSelector + `}[{{ interval }}])))`
)

// Info describes the contour router: it edits the user's HTTPProxy and creates none.
var Info = spec.RouterInfo{
	Name: spec.RouterContour,
	Kinds: []spec.RouteKind{{Kind: "httpproxy", Capability: spec.Capability{
		Strategies:  []spec.Strategy{spec.StrategyCanary, spec.StrategyBlueGreen, spec.StrategyAB},
		Headers:     []string{"exact"},
		QueryParams: []string{"exact", "prefix", "regex"},
	}}},
	Queries: spec.Queries{SuccessRate: canarySuccessRate, Duration: canaryDuration, Requests: canaryRequests,
		StableSuccessRate: stableSuccessRate, StableDuration: stableDuration},
	RBAC: []rbacv1.PolicyRule{
		routers.OwnedServices,
		{APIGroups: []string{HTTPProxy.Group}, Resources: []string{"httpproxies"}, Verbs: routers.VerbsEdit},
	},
}

// New builds the router.
func New(o routers.Objects) routers.Router { return Router{Objects: o} }
