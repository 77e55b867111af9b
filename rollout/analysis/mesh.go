package analysis

// Builtin PromQL for the mesh and ingress routers: request-success-rate (percent of responses
// that are not 5xx), request-duration (p99 in milliseconds) and the request count behind
// minRequests, each over the series the router's data plane emits for the canary. docs/metrics.md
// lists every query with the labels it relies on.
//
// Telling the two sides apart. compareTo: stable renders a check's query a second time with
// {{ canary }} set to the stable Deployment's name (rollout.Analyzer). Routers whose metrics name
// the workload (Istio, Linkerd, App Mesh) select it with {{ canary }}, so that one query serves
// both sides. Routers whose metrics name the Service (Envoy clusters) or the Ingress backend
// (ingress-nginx) select `<svc>-canary`, which that swap does not change: they have a second,
// stable-side query in stableBuiltins (the `<svc>-stable` cluster; for ingress-nginx the
// requests not sent to the canary), which QueryFor picks for the stable rendering.

// Istio: the sidecar's standard metrics as reported by the server side (reporter="destination"),
// so only requests the workload itself answered count, once. destination_workload is the
// Deployment name: `<deployment>-canary` for the canary, `<deployment>` for stable.
//
//	istio_requests_total{response_code="200",...}                  counter
//	istio_request_duration_milliseconds_bucket{le="100",...}       histogram, milliseconds
const (
	istioSelector = `reporter="destination",destination_workload_namespace="{{ namespace }}",destination_workload="{{ canary }}"`

	istioSuccessRate = `(sum(rate(istio_requests_total{` + istioSelector + `,response_code!~"5.."}[{{ interval }}]))` +
		` or vector(0)) / sum(rate(istio_requests_total{` + istioSelector + `}[{{ interval }}])) * 100`
	istioDuration = `histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket{` + istioSelector + `}[{{ interval }}])))`
	istioRequests = `sum(increase(istio_requests_total{` + istioSelector + `}[{{ interval }}]))`
)

// Linkerd: the proxy's inbound metrics (direction="inbound": requests the workload served, not
// the calls it made). The `deployment` label is the pod's owning Deployment (linkerd-viz's scrape
// configuration copies it from the pod label linkerd.io/proxy-deployment). A response is a
// failure by Linkerd's own classification: a 5xx status, or a gRPC error status.
//
//	response_total{classification="success",status_code="200",...}  counter
//	response_latency_ms_bucket{le="100",...}                         histogram, milliseconds
const (
	linkerdSelector = `namespace="{{ namespace }}",deployment="{{ canary }}",direction="inbound"`

	linkerdSuccessRate = `(sum(rate(response_total{` + linkerdSelector + `,classification!="failure"}[{{ interval }}]))` +
		` or vector(0)) / sum(rate(response_total{` + linkerdSelector + `}[{{ interval }}])) * 100`
	linkerdDuration = `histogram_quantile(0.99, sum by (le) (rate(response_latency_ms_bucket{` + linkerdSelector + `}[{{ interval }}])))`
	linkerdRequests = `sum(increase(response_total{` + linkerdSelector + `}[{{ interval }}]))`
)

// ingress-nginx: the controller's per-request metrics. The user's Ingress keeps sending to the
// Service `<svc>` (the nginx router never writes it; during a release `<svc>` no longer selects
// the canary's pods) and Sluice's canary Ingress (nginx.ingress.kubernetes.io/canary) sends to
// `<svc>-canary`. ingress-nginx merges a canary Ingress into the Ingress it shadows, so every
// request carries the user's Ingress's `service` label (`<svc>`) and the `canary` label tells the
// sides apart: the canary backend's upstream name `<namespace>-<svc>-canary-<port>` when the
// request went to the canary, empty when it went to stable. `namespace` is the Ingress's
// namespace (a label of the series, so the scrape job must not overwrite it with the
// controller's own namespace: honor_labels).
//
//	nginx_ingress_controller_requests{status="200",...}                       counter
//	nginx_ingress_controller_request_duration_seconds_bucket{le="0.25",...}  histogram, seconds
const (
	nginxCanarySelector = `namespace="{{ namespace }}",canary=~"{{ namespace }}-{{ service }}-canary-.+"`
	nginxStableSelector = `namespace="{{ namespace }}",service="{{ service }}",canary=""`

	nginxCanarySuccessRate = `(sum(rate(nginx_ingress_controller_requests{` + nginxCanarySelector + `,status!~"5.."}[{{ interval }}]))` +
		` or vector(0)) / sum(rate(nginx_ingress_controller_requests{` + nginxCanarySelector + `}[{{ interval }}])) * 100`
	nginxCanaryDuration = `histogram_quantile(0.99, sum by (le) (rate(nginx_ingress_controller_request_duration_seconds_bucket{` + nginxCanarySelector + `}[{{ interval }}]))) * 1000`
	nginxCanaryRequests = `sum(increase(nginx_ingress_controller_requests{` + nginxCanarySelector + `}[{{ interval }}]))`

	nginxStableSuccessRate = `(sum(rate(nginx_ingress_controller_requests{` + nginxStableSelector + `,status!~"5.."}[{{ interval }}]))` +
		` or vector(0)) / sum(rate(nginx_ingress_controller_requests{` + nginxStableSelector + `}[{{ interval }}])) * 100`
	nginxStableDuration = `histogram_quantile(0.99, sum by (le) (rate(nginx_ingress_controller_request_duration_seconds_bucket{` + nginxStableSelector + `}[{{ interval }}]))) * 1000`
)

// Contour (HTTPProxy, or Contour as a Gateway API implementation): Envoy's upstream cluster
// metrics. Contour gives each Service port its own cluster with the stat name
// `<namespace>_<service>_<port>`, so `<svc>-canary` and `<svc>-stable` are separate clusters.
//
//	envoy_cluster_upstream_rq{envoy_response_code="200",envoy_cluster_name="shop_web-canary_80"}  counter
//	envoy_cluster_upstream_rq_time_bucket{le="100",...}                                          histogram, milliseconds
const (
	envoyCanarySelector = `envoy_cluster_name=~"{{ namespace }}_{{ service }}-canary_[0-9]+"`
	envoyStableSelector = `envoy_cluster_name=~"{{ namespace }}_{{ service }}-stable_[0-9]+"`

	contourCanarySuccessRate = `(sum(rate(envoy_cluster_upstream_rq{` + envoyCanarySelector + `,envoy_response_code!~"5.."}[{{ interval }}]))` +
		` or vector(0)) / sum(rate(envoy_cluster_upstream_rq{` + envoyCanarySelector + `}[{{ interval }}])) * 100`
	contourCanaryDuration = `histogram_quantile(0.99, sum by (le) (rate(envoy_cluster_upstream_rq_time_bucket{` + envoyCanarySelector + `}[{{ interval }}])))`
	contourCanaryRequests = `sum(increase(envoy_cluster_upstream_rq{` + envoyCanarySelector + `}[{{ interval }}]))`

	contourStableSuccessRate = `(sum(rate(envoy_cluster_upstream_rq{` + envoyStableSelector + `,envoy_response_code!~"5.."}[{{ interval }}]))` +
		` or vector(0)) / sum(rate(envoy_cluster_upstream_rq{` + envoyStableSelector + `}[{{ interval }}])) * 100`
	contourStableDuration = `histogram_quantile(0.99, sum by (le) (rate(envoy_cluster_upstream_rq_time_bucket{` + envoyStableSelector + `}[{{ interval }}])))`
)

// Gateway API: the query of the implementation whose series exist, Envoy clusters first, else
// Istio (`A or B` returns B only when A has no result):
//
//   - Contour as a Gateway API implementation names its clusters per Service, as above;
//   - Istio as a Gateway API implementation: the workloads' sidecars report as for the istio
//     router.
//
// Envoy Gateway builds a single Envoy cluster per route rule (`httproute/<ns>/<route>/rule/<n>`)
// holding the endpoints of every backendRef, so its metrics cannot tell the canary from stable:
// these queries find no series there (inconclusive), and such a release needs custom checks.
const (
	gatewayAPICanarySuccessRate = `(` + contourCanarySuccessRate + `) or (` + istioSuccessRate + `)`
	gatewayAPICanaryDuration    = `(` + contourCanaryDuration + `) or (` + istioDuration + `)`
	gatewayAPICanaryRequests    = `(` + contourCanaryRequests + `) or (` + istioRequests + `)`

	gatewayAPIStableSuccessRate = `(` + contourStableSuccessRate + `) or (` + istioSuccessRate + `)`
	gatewayAPIStableDuration    = `(` + contourStableDuration + `) or (` + istioDuration + `)`
)

// App Mesh: the Envoy sidecar's own metrics, per pod; kubernetes_namespace and
// kubernetes_pod_name are the target labels of the App Mesh Prometheus scrape configuration.
// The sidecar sends the requests the pod serves to its `cds_ingress_<mesh>_<virtual node>_...`
// cluster and the pod's own outbound calls to `cds_egress_...` clusters; only the first count.
const (
	appMeshSelector = `kubernetes_namespace="{{ namespace }}",kubernetes_pod_name=~"{{ canary }}-[0-9a-zA-Z]+-[0-9a-zA-Z]+",envoy_cluster_name=~"cds_ingress_.+"`

	appMeshSuccessRate = `(sum(rate(envoy_cluster_upstream_rq{` + appMeshSelector + `,envoy_response_code!~"5.."}[{{ interval }}]))` +
		` or vector(0)) / sum(rate(envoy_cluster_upstream_rq{` + appMeshSelector + `}[{{ interval }}])) * 100`
	appMeshDuration = `histogram_quantile(0.99, sum by (le) (rate(envoy_cluster_upstream_rq_time_bucket{` + appMeshSelector + `}[{{ interval }}])))`
	appMeshRequests = `sum(increase(envoy_cluster_upstream_rq{` + appMeshSelector + `}[{{ interval }}]))`
)
