package appmesh

import (
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/sluice-dev/sluice/providers/routers"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// Builtin PromQL: the Envoy sidecar's own metrics, per pod; kubernetes_namespace and
// kubernetes_pod_name are the target labels of the App Mesh Prometheus scrape configuration.
// The sidecar sends the requests the pod serves to its `cds_ingress_<mesh>_<virtual node>_...`
// cluster and the pod's own outbound calls to `cds_egress_...` clusters; only the first count.
// The pod name selects the Deployment, so one query serves both sides of compareTo: stable.
const (
	selector = `kubernetes_namespace="{{ namespace }}",kubernetes_pod_name=~"{{ canary }}-[0-9a-zA-Z]+-[0-9a-zA-Z]+",envoy_cluster_name=~"cds_ingress_.+"`

	successRate = `(sum(rate(envoy_cluster_upstream_rq{` + selector + `,envoy_response_code!~"5.."}[{{ interval }}]))` +
		` or vector(0)) / sum(rate(envoy_cluster_upstream_rq{` + selector + `}[{{ interval }}])) * 100`
	duration = `histogram_quantile(0.99, sum by (le) (rate(envoy_cluster_upstream_rq_time_bucket{` + selector + `}[{{ interval }}])))`
	requests = `sum(increase(envoy_cluster_upstream_rq{` + selector + `}[{{ interval }}]))`
)

// Info describes the appmesh router: weights only, on the user's VirtualRouter, between the
// VirtualNodes Sluice owns.
var Info = spec.RouterInfo{
	Name:    spec.RouterAppMesh,
	Kinds:   []spec.RouteKind{{Kind: "virtualrouter", Capability: spec.Capability{Strategies: []spec.Strategy{spec.StrategyCanary, spec.StrategyBlueGreen}}}},
	Queries: spec.Queries{SuccessRate: successRate, Duration: duration, Requests: requests},
	RBAC: []rbacv1.PolicyRule{
		routers.OwnedServices,
		{APIGroups: []string{VirtualRouter.Group}, Resources: []string{"virtualrouters"}, Verbs: routers.VerbsEdit},
		{APIGroups: []string{VirtualNode.Group}, Resources: []string{"virtualnodes"}, Verbs: routers.VerbsOwn},
	},
}

// New builds the router.
func New(o routers.Objects) routers.Router { return Router{Objects: o} }
