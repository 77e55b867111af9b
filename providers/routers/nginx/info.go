package nginx

import (
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/sluice-dev/sluice/providers/routers"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// Builtin PromQL: the controller's per-request metrics. The user's Ingress keeps sending to the
// Service `<svc>` (the nginx router never writes it; during a release `<svc>` no longer selects
// the canary's pods) and Sluice's canary Ingress (nginx.ingress.kubernetes.io/canary) sends to
// `<svc>-canary`. ingress-nginx merges a canary Ingress into the Ingress it shadows, so every
// request carries the user's Ingress's `service` label (`<svc>`) and the `canary` label tells the
// sides apart: the canary backend's upstream name `<namespace>-<svc>-canary-<port>` when the
// request went to the canary, empty when it went to stable. `namespace` is the Ingress's
// namespace (a label of the series, so the scrape job must not overwrite it with the
// controller's own namespace: honor_labels). The series name the Service, not the Deployment,
// so the stable side of compareTo: stable has queries of its own.
//
//	nginx_ingress_controller_requests{status="200",...}                       counter
//	nginx_ingress_controller_request_duration_seconds_bucket{le="0.25",...}  histogram, seconds
const (
	canarySelector = `namespace="{{ namespace }}",canary=~"{{ namespace }}-{{ service }}-canary-.+"`
	stableSelector = `namespace="{{ namespace }}",service="{{ service }}",canary=""`

	canarySuccessRate = `(sum(rate(nginx_ingress_controller_requests{` + canarySelector + `,status!~"5.."}[{{ interval }}]))` +
		` or vector(0)) / sum(rate(nginx_ingress_controller_requests{` + canarySelector + `}[{{ interval }}])) * 100`
	canaryDuration = `histogram_quantile(0.99, sum by (le) (rate(nginx_ingress_controller_request_duration_seconds_bucket{` + canarySelector + `}[{{ interval }}]))) * 1000`
	canaryRequests = `sum(increase(nginx_ingress_controller_requests{` + canarySelector + `}[{{ interval }}]))`

	stableSuccessRate = `(sum(rate(nginx_ingress_controller_requests{` + stableSelector + `,status!~"5.."}[{{ interval }}]))` +
		` or vector(0)) / sum(rate(nginx_ingress_controller_requests{` + stableSelector + `}[{{ interval }}])) * 100`
	stableDuration = `histogram_quantile(0.99, sum by (le) (rate(nginx_ingress_controller_request_duration_seconds_bucket{` + stableSelector + `}[{{ interval }}]))) * 1000`
)

// Info describes the nginx router: one header and/or one cookie per A/B release, a cookie
// routed by the value "always" (ingress-nginx's canary-by-cookie).
var Info = spec.RouterInfo{
	Name: spec.RouterNginx,
	Kinds: []spec.RouteKind{{Kind: "ingress", Capability: spec.Capability{
		Strategies:  []spec.Strategy{spec.StrategyCanary, spec.StrategyBlueGreen, spec.StrategyAB},
		Headers:     []string{"exact", "regex"},
		Cookies:     []string{"exact"},
		SingleMatch: true,
		CookieValue: "always", CookieValueWhy: `ingress-nginx routes a cookie to the canary when its value is "always"`,
	}}},
	Queries: spec.Queries{SuccessRate: canarySuccessRate, Duration: canaryDuration, Requests: canaryRequests,
		StableSuccessRate: stableSuccessRate, StableDuration: stableDuration},
	RBAC: []rbacv1.PolicyRule{
		routers.OwnedServices,
		{APIGroups: []string{Ingress.Group}, Resources: []string{"ingresses"}, Verbs: routers.VerbsOwn},
	},
}

// New builds the router.
func New(o routers.Objects) routers.Router { return Router{Objects: o} }
