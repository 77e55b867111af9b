package gatewayapi

import (
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/sluice-dev/sluice/providers/routers"
	"github.com/sluice-dev/sluice/providers/routers/contour"
	"github.com/sluice-dev/sluice/providers/routers/istio"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// Builtin PromQL: the query of the implementation whose series exist, Envoy clusters first, else
// Istio (`A or B` returns B only when A has no result):
//
//   - Contour as a Gateway API implementation names its clusters per Service, as for the contour
//     router (whose queries these are);
//   - Istio as a Gateway API implementation: the workloads' sidecars report as for the istio
//     router.
//
// Envoy Gateway builds a single Envoy cluster per route rule (`httproute/<ns>/<route>/rule/<n>`)
// holding the endpoints of every backendRef, so its metrics cannot tell the canary from stable:
// these queries find no series there (inconclusive), and such a release needs custom checks.
var queries = spec.Queries{
	SuccessRate: either(contour.Info.Queries.SuccessRate, istio.Info.Queries.SuccessRate),
	Duration:    either(contour.Info.Queries.Duration, istio.Info.Queries.Duration),
	Requests:    either(contour.Info.Queries.Requests, istio.Info.Queries.Requests),

	StableSuccessRate: either(contour.Info.Queries.StableSuccessRate, istio.Info.Queries.SuccessRate),
	StableDuration:    either(contour.Info.Queries.StableDuration, istio.Info.Queries.Duration),
}

func either(a, b string) string { return "(" + a + ") or (" + b + ")" }

// Info describes the gatewayapi router: HTTPRoutes (default) and GRPCRoutes.
var Info = spec.RouterInfo{
	Name: spec.RouterGatewayAPI,
	Kinds: []spec.RouteKind{
		{Kind: "httproute", Capability: spec.Capability{
			Strategies: []spec.Strategy{spec.StrategyCanary, spec.StrategyBlueGreen, spec.StrategyAB, spec.StrategyMirror},
			Headers:    spec.Comparisons, Cookies: spec.Comparisons, QueryParams: spec.Comparisons, Sticky: true,
		}},
		{Kind: "grpcroute", Capability: spec.Capability{
			Strategies: []spec.Strategy{spec.StrategyCanary, spec.StrategyBlueGreen, spec.StrategyAB, spec.StrategyMirror},
			Headers:    spec.Comparisons,
		}},
	},
	Queries: queries,
	RBAC: []rbacv1.PolicyRule{
		routers.OwnedServices,
		{APIGroups: []string{HTTPRoute.Group}, Resources: []string{"httproutes", "grpcroutes"}, Verbs: routers.VerbsOwn},
	},
}

// New builds the router.
func New(o routers.Objects) routers.Router { return Router{Objects: o} }
