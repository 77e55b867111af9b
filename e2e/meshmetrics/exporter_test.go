package meshmetrics

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// profile is how a workload's traffic behaves: requests per second, the share of each status
// code, and the latency distribution as a piecewise-linear CDF.
type profile struct {
	rps   float64
	codes map[int]float64 // status code → share of requests; the shares sum to 1
	cdf   []point         // (ms, cumulative share), rising to 1; (0, 0) is implied
}

type point struct{ ms, share float64 }

// The CDFs bend only at 5, 10, 50, 100, 500 and 1000 ms, bounds that Envoy's, Istio's, Linkerd's
// and the seconds-based (Prometheus default) bucket layouts all share, so every layout
// interpolates the p99 to the same value.
var (
	// healthyCanary: 0.5% 5xx, p99 = 100 + 400·(0.99−0.9895)/(1−0.9895) ≈ 119.05 ms.
	healthyCanary = profile{
		rps:   100,
		codes: map[int]float64{200: 0.985, 404: 0.010, 503: 0.005},
		cdf:   []point{{10, 0.20}, {50, 0.70}, {100, 0.9895}, {500, 1}},
	}
	// failingCanary: 20% 5xx, p99 = 500 + 500·(0.99−0.95)/(1−0.95) = 900 ms.
	failingCanary = profile{
		rps:   100,
		codes: map[int]float64{200: 0.78, 404: 0.02, 500: 0.15, 503: 0.05},
		cdf:   []point{{10, 0.10}, {50, 0.40}, {100, 0.70}, {500, 0.95}, {1000, 1}},
	}
	// brokenCanary serves only errors: no non-5xx series exists at all, which the builtin success
	// rates must read as 0 %, not as no data. p99 = 100 + 400·(0.99−0.8)/(1−0.8) = 480 ms.
	brokenCanary = profile{
		rps:   100,
		codes: map[int]float64{500: 0.6, 503: 0.4},
		cdf:   []point{{10, 0.10}, {50, 0.50}, {100, 0.80}, {500, 1}},
	}
	// stableTraffic: 0.1% 5xx, p99 = 10 + 40·(0.99−0.92)/(1−0.92) = 45 ms.
	stableTraffic = profile{
		rps:   400,
		codes: map[int]float64{200: 0.989, 404: 0.010, 502: 0.001},
		cdf:   []point{{5, 0.50}, {10, 0.92}, {50, 1}},
	}
	// noise is traffic a query must not count: other services, outbound calls, other reporters.
	// Half of it fails and it is slow, so counting it moves every reading far off.
	noise = profile{
		rps:   50,
		codes: map[int]float64{200: 0.5, 503: 0.5},
		cdf:   []point{{1000, 0.5}, {5000, 1}},
	}
)

// successRate is the percent of non-5xx responses.
func (p profile) successRate() float64 {
	ok := 0.0
	for code, share := range p.codes {
		if code < 500 {
			ok += share
		}
	}
	return ok * 100
}

// at returns the share of requests that took at most ms.
func (p profile) at(ms float64) float64 {
	prev := point{}
	for _, pt := range p.cdf {
		if ms <= pt.ms {
			return prev.share + (pt.share-prev.share)*(ms-prev.ms)/(pt.ms-prev.ms)
		}
		prev = pt
	}
	return 1
}

// meanMS is the mean latency (for the histograms' _sum).
func (p profile) meanMS() float64 {
	mean, prev := 0.0, point{}
	for _, pt := range p.cdf {
		mean += (pt.share - prev.share) * (pt.ms + prev.ms) / 2
		prev = pt
	}
	return mean
}

// slower is p with every latency multiplied by f.
func (p profile) slower(f float64) profile {
	cdf := make([]point, len(p.cdf))
	for i, pt := range p.cdf {
		cdf[i] = point{pt.ms * f, pt.share}
	}
	p.cdf = cdf
	return p
}

// scaled is p at rps·f (a share of the workload's traffic, e.g. one of its pods).
func (p profile) scaled(f float64) profile {
	p.rps *= f
	return p
}

// sortedCodes returns the profile's status codes in order, so scrapes are deterministic.
func (p profile) sortedCodes() []int {
	codes := make([]int, 0, len(p.codes))
	for c := range p.codes {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	return codes
}

// Histogram bucket layouts (upper bounds, in the metric's own unit).
var (
	// envoyBuckets are Envoy's default histogram buckets, in ms; Istio's standard metrics use the
	// same ones.
	envoyBuckets = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000}
	// linkerdBuckets are the Linkerd proxy's response_latency_ms buckets.
	linkerdBuckets = []float64{1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500, 1000, 2000, 3000, 4000, 5000, 10000, 20000, 30000, 40000, 50000}
	// secondsBuckets are client_golang's default buckets, in seconds: ingress-nginx's default
	// time buckets and a typical application's http_request_duration_seconds.
	secondsBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
)

// exposition is one scrape's metric families in the Prometheus text format (0.0.4).
type exposition struct {
	order []string
	types map[string]string
	lines map[string][]string
	// seconds is how long every counter has been counting: all series of one scrape grow in
	// step, so ratios of rates are exact.
	seconds float64
}

func newExposition(seconds float64) *exposition {
	return &exposition{types: map[string]string{}, lines: map[string][]string{}, seconds: seconds}
}

func (e *exposition) add(family, typ, line string) {
	if _, ok := e.types[family]; !ok {
		e.order = append(e.order, family)
		e.types[family] = typ
	}
	e.lines[family] = append(e.lines[family], line)
}

// counter adds name{labels} counting rps requests per second.
func (e *exposition) counter(name string, labels []string, rps float64) {
	e.add(name, "counter", name+"{"+labelText(labels)+"} "+number(rps*e.seconds))
}

// histogram adds the latency histogram name{labels} of p's requests. bounds are in the metric's
// unit, which is unitMS milliseconds (1 for ms, 1000 for seconds).
func (e *exposition) histogram(name string, labels []string, bounds []float64, unitMS float64, p profile) {
	n := p.rps * e.seconds
	for _, b := range bounds {
		e.add(name, "histogram", name+"_bucket{"+labelText(append(slices.Clone(labels), "le", number(b)))+"} "+number(n*p.at(b*unitMS)))
	}
	e.add(name, "histogram", name+"_bucket{"+labelText(append(slices.Clone(labels), "le", "+Inf"))+"} "+number(n))
	e.add(name, "histogram", name+"_sum{"+labelText(labels)+"} "+number(n*p.meanMS()/unitMS))
	e.add(name, "histogram", name+"_count{"+labelText(labels)+"} "+number(n))
}

func (e *exposition) String() string {
	var b strings.Builder
	for _, f := range e.order {
		fmt.Fprintf(&b, "# TYPE %s %s\n", f, e.types[f])
		for _, l := range e.lines[f] {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// labelText formats name/value pairs as `a="1",b="2"`.
func labelText(kv []string) string {
	parts := make([]string, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		parts = append(parts, kv[i]+`="`+labelEscaper.Replace(kv[i+1])+`"`)
	}
	return strings.Join(parts, ",")
}

func number(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// target is one scrape target: a pod (or a proxy) and the labels the usual Kubernetes scrape
// configuration gives its series.
type target struct {
	job         string
	labels      []string // target labels, name/value pairs
	honorLabels bool     // the series' own labels win over the target's (ingress-nginx)
	write       func(e *exposition)
}

// exporter serves every target's series at /metrics/<n>, counting from when it was made as if the
// workloads had already been serving for an hour.
type exporter struct {
	start   time.Time
	targets []target
	mu      sync.Mutex
	scrapes int
}

const alreadyServing = time.Hour

func (x *exporter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	i, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/metrics/"))
	if err != nil || i < 0 || i >= len(x.targets) {
		http.NotFound(w, r)
		return
	}
	x.mu.Lock()
	x.scrapes++
	x.mu.Unlock()
	e := newExposition((alreadyServing + time.Since(x.start)).Seconds())
	x.targets[i].write(e)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = fmt.Fprint(w, e.String())
}

// app is one Deployment in a release: its canary copy runs canary, its stable pods stable.
type app struct {
	name, service  string
	canary, stable profile
}

// side is one half of a release as a data plane sees it.
type side struct {
	deployment string   // web-canary, or web
	service    string   // web-svc-canary, or web-svc-stable
	pods       []string // the Deployment's pods
	traffic    profile
}

func (a app) sides() []side {
	return []side{
		{
			deployment: a.name + "-canary", service: a.service + "-canary",
			pods:    []string{a.name + "-canary-6d5f7b8c9d-x7k2p"},
			traffic: a.canary,
		},
		{
			deployment: a.name, service: a.service + "-stable",
			pods:    []string{a.name + "-7c8d9b6f5c-q4w8z", a.name + "-7c8d9b6f5c-m2n9r"},
			traffic: a.stable,
		},
	}
}

// perPod is a side's traffic as one of its pods serves it.
func (s side) perPod() profile { return s.traffic.scaled(1 / float64(len(s.pods))) }

// podHash is the pod-template-hash in a Deployment's pod name `<deployment>-<hash>-<suffix>`.
func podHash(pod string) string {
	parts := strings.Split(pod, "-")
	return parts[len(parts)-2]
}

// replicasTargets: each pod's own HTTP server metrics (client_golang's promhttp shape), scraped
// by the kubernetes-pods job, which adds namespace and pod.
func replicasTargets(ns string, apps []app) []target {
	var ts []target
	for _, a := range apps {
		for _, s := range a.sides() {
			for _, pod := range s.pods {
				p := s.perPod()
				ts = append(ts, target{
					job:    "kubernetes-pods",
					labels: []string{"namespace", ns, "pod", pod},
					write: func(e *exposition) {
						for _, code := range p.sortedCodes() {
							e.counter("http_requests_total", []string{"code", strconv.Itoa(code), "method", "get"}, p.rps*p.codes[code])
						}
						e.histogram("http_request_duration_seconds", nil, secondsBuckets, 1000, p)
					},
				})
			}
		}
	}
	return ts
}

// istioTargets: the sidecars' standard metrics. Each pod's sidecar reports the requests it
// served (reporter="destination"); the client's sidecar or gateway (source, in namespace
// sourceNS) reports the same requests again as reporter="source", slower by the network.
func istioTargets(source, sourceNS string) func(ns string, apps []app) []target {
	return func(ns string, apps []app) []target {
		var ts []target
		var sourced []func(e *exposition)
		for _, a := range apps {
			for _, s := range a.sides() {
				labels := func(reporter string) []string {
					return []string{
						"reporter", reporter,
						"source_workload", source, "source_workload_namespace", sourceNS, "source_app", source,
						"source_principal", "spiffe://cluster.local/ns/" + sourceNS + "/sa/" + source,
						"destination_workload", s.deployment, "destination_workload_namespace", ns, "destination_app", a.name,
						"destination_principal", "spiffe://cluster.local/ns/" + ns + "/sa/" + a.name,
						"destination_service", s.service + "." + ns + ".svc.cluster.local",
						"destination_service_name", s.service, "destination_service_namespace", ns,
						"destination_canonical_service", a.name, "destination_canonical_revision", "latest",
						"destination_cluster", "Kubernetes", "source_cluster", "Kubernetes",
						"request_protocol", "http", "response_flags", "-", "connection_security_policy", "mutual_tls",
					}
				}
				emit := func(e *exposition, reporter string, p profile) {
					for _, code := range p.sortedCodes() {
						l := append(labels(reporter), "response_code", strconv.Itoa(code), "grpc_response_status", "")
						e.counter("istio_requests_total", l, p.rps*p.codes[code])
						e.histogram("istio_request_duration_milliseconds", l, envoyBuckets, 1, p.scaled(p.codes[code]))
					}
				}
				for _, pod := range s.pods {
					p := s.perPod()
					ts = append(ts, target{
						job:    "kubernetes-pods",
						labels: []string{"namespace", ns, "pod", pod},
						write:  func(e *exposition) { emit(e, "destination", p) },
					})
				}
				p := s.traffic.slower(1.5)
				sourced = append(sourced, func(e *exposition) { emit(e, "source", p) })
			}
		}
		ts = append(ts, target{
			job:    "kubernetes-pods",
			labels: []string{"namespace", sourceNS, "pod", source + "-5b7c9d8f6b-t6v3x"},
			write: func(e *exposition) {
				for _, w := range sourced {
					w(e)
				}
			},
		})
		return ts
	}
}

// linkerdTargets: each pod's Linkerd proxy, scraped by linkerd-viz's linkerd-proxy job, which
// adds namespace, pod and the pod's linkerd.io/proxy-* labels (deployment …). Inbound series
// are the requests the pod served; the outbound ones are its own calls to a database.
func linkerdTargets(ns string, apps []app) []target {
	var ts []target
	for _, a := range apps {
		for _, s := range a.sides() {
			for _, pod := range s.pods {
				p := s.perPod()
				ts = append(ts, target{
					job: "linkerd-proxy",
					labels: []string{
						"namespace", ns, "pod", pod, "deployment", s.deployment, "pod_template_hash", podHash(pod),
						"control_plane_ns", "linkerd", "serviceaccount", a.name,
					},
					write: func(e *exposition) {
						for _, code := range p.sortedCodes() {
							class := "success"
							if code >= 500 {
								class = "failure"
							}
							in := []string{
								"direction", "inbound", "authority", s.service + "." + ns + ".svc.cluster.local:8080",
								"target_addr", "0.0.0.0:8080", "tls", "true",
								"client_id", "loadtester.test.serviceaccount.identity.linkerd.cluster.local",
								"srv_kind", "default", "srv_name", "all-unauthenticated", "status_code", strconv.Itoa(code),
							}
							e.counter("response_total", append(slices.Clone(in), "classification", class), p.rps*p.codes[code])
							e.histogram("response_latency_ms", in, linkerdBuckets, 1, p.scaled(p.codes[code]))
						}
						for _, code := range noise.sortedCodes() {
							class := "success"
							if code >= 500 {
								class = "failure"
							}
							out := []string{
								"direction", "outbound", "authority", "db." + ns + ".svc.cluster.local:5432",
								"target_addr", "10.42.0.9:5432", "tls", "true",
								"dst_deployment", "db", "dst_namespace", ns, "dst_pod", "db-0", "status_code", strconv.Itoa(code),
							}
							e.counter("response_total", append(slices.Clone(out), "classification", class), noise.rps*noise.codes[code])
							e.histogram("response_latency_ms", out, linkerdBuckets, 1, noise.scaled(noise.codes[code]))
						}
					},
				})
			}
		}
	}
	return ts
}

// nginxTargets: one ingress-nginx controller pod. Sluice's canary Ingress (backend
// `<svc>-canary`) is merged into the user's Ingress `<app>` (backend `<svc>`), so every request
// carries ingress=<app> and service=<svc>, and `canary` names the canary backend's upstream
// (`<namespace>-<svc>-canary-<port>`) for the requests sent there. Another Ingress in the same
// namespace is noise. The series carry the Ingress's namespace; the scrape keeps it (honor_labels).
func nginxTargets(ns string, apps []app) []target {
	const pod = "ingress-nginx-controller-7d4b9c8f6d-8kq2n"
	return []target{{
		job:         "ingress-nginx",
		labels:      []string{"namespace", "ingress-nginx", "pod", pod},
		honorLabels: true,
		write: func(e *exposition) {
			emit := func(ingress, service, canary string, p profile) {
				for _, code := range p.sortedCodes() {
					l := []string{
						"controller_class", "k8s.io/ingress-nginx", "controller_namespace", "ingress-nginx", "controller_pod", pod,
						"canary", canary, "ingress", ingress, "method", "GET", "namespace", ns, "path", "/",
						"service", service, "status", strconv.Itoa(code),
					}
					e.counter("nginx_ingress_controller_requests", l, p.rps*p.codes[code])
					e.histogram("nginx_ingress_controller_request_duration_seconds", l, secondsBuckets, 1000, p.scaled(p.codes[code]))
				}
			}
			for _, a := range apps {
				emit(a.name, a.service, ns+"-"+a.service+"-canary-80", a.canary)
				emit(a.name, a.service, "", a.stable)
			}
			emit("admin", "admin", "", noise)
		},
	}}
}

// contourTargets: two Envoy pods of Contour (HTTPProxy or Gateway API), one cluster per Service
// port with the stat name `<namespace>_<service>_<port>`; each pod carries half the traffic.
// Another Service's cluster is noise.
func contourTargets(ns string, apps []app) []target {
	var ts []target
	for _, pod := range []string{"envoy-4xk7p", "envoy-9q2ls"} {
		ts = append(ts, target{
			job:    "contour-envoy",
			labels: []string{"namespace", "projectcontour", "pod", pod},
			write: func(e *exposition) {
				for _, a := range apps {
					for _, s := range a.sides() {
						envoyCluster(e, ns+"_"+s.service+"_80", s.traffic.scaled(0.5))
					}
				}
				envoyCluster(e, ns+"_admin_80", noise)
			},
		})
	}
	return ts
}

// envoyGatewayTargets: Envoy Gateway's proxy, which builds one cluster per route rule holding
// the endpoints of all its backendRefs (`<svc>-stable` and `<svc>-canary` alike).
func envoyGatewayTargets(ns string, apps []app) []target {
	return []target{{
		job:    "envoy-gateway",
		labels: []string{"namespace", "envoy-gateway-system", "pod", "envoy-shop-eg-3c1f8a2d-6b9c7d5f4-h8j2k"},
		write: func(e *exposition) {
			for _, a := range apps {
				envoyCluster(e, "httproute/"+ns+"/"+a.name+"/rule/0", a.stable.scaled(1.25))
			}
		},
	}}
}

// appMeshTargets: each pod's Envoy sidecar, scraped by the App Mesh Prometheus configuration,
// which adds kubernetes_namespace and kubernetes_pod_name. The sidecar sends the requests the
// pod serves to its cds_ingress cluster (named after its virtual node, `<svc>-stable` or
// `<svc>-canary` in namespace ns) and the pod's own calls to cds_egress clusters (noise).
func appMeshTargets(ns string, apps []app) []target {
	const mesh = "shop-mesh"
	var ts []target
	for _, a := range apps {
		for _, s := range a.sides() {
			for _, pod := range s.pods {
				p := s.perPod()
				ts = append(ts, target{
					job:    "appmesh-envoy",
					labels: []string{"kubernetes_namespace", ns, "kubernetes_pod_name", pod, "app", a.name},
					write: func(e *exposition) {
						envoyCluster(e, "cds_ingress_"+mesh+"_"+s.service+"_"+ns+"_http_8080", p)
						envoyCluster(e, "cds_egress_"+mesh+"_db_"+ns+"_http_5432", noise)
					},
				})
			}
		}
	}
	return ts
}

// envoyCluster adds an Envoy cluster's upstream request stats: per code, per code class, total,
// and the upstream request time histogram (ms).
func envoyCluster(e *exposition, cluster string, p profile) {
	classes := map[string]float64{}
	for _, code := range p.sortedCodes() {
		rps := p.rps * p.codes[code]
		e.counter("envoy_cluster_upstream_rq", []string{"envoy_response_code", strconv.Itoa(code), "envoy_cluster_name", cluster}, rps)
		classes[strconv.Itoa(code/100)] += rps
	}
	for _, class := range []string{"2", "4", "5"} {
		e.counter("envoy_cluster_upstream_rq_xx", []string{"envoy_response_code_class", class, "envoy_cluster_name", cluster}, classes[class])
	}
	e.counter("envoy_cluster_upstream_rq_total", []string{"envoy_cluster_name", cluster}, p.rps)
	e.histogram("envoy_cluster_upstream_rq_time", []string{"envoy_cluster_name", cluster}, envoyBuckets, 1, p)
}
