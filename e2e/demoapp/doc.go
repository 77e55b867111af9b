// Package demoapp simulates the application Sluice rolls out in demos and end-to-end tests, so
// that its traffic and metrics travel the same path as a real application's would.
//
// The local control plane runs pods on kwok's fake nodes: a pod is scheduled, gets a Running
// phase, a Ready condition and a loopback pod IP such as 127.1.0.5, but no process runs in it.
// Linux routes the whole of 127.0.0.0/8 to the loopback interface, so any process on the machine
// can bind any 127.x address. This package puts the missing processes back:
//
//	API server ──watch pods──▶ Fleet ──binds──▶ HTTP server on <podIP>:8080 per Running pod
//	                                                 ▲                     │
//	Load ── GET / to a random Ready pod ─────────────┘                     │ /metrics
//	(plays kube-proxy for a Service selector)                              ▼
//	                                         Prometheus (kubernetes_sd, role pod)
//
// # Fleet
//
// Fleet watches the pods of one namespace that match a label selector. For every pod that is
// Running with a loopback pod IP it serves a real HTTP server on <podIP>:<Port> (8080 by
// default); it never binds anything but loopback addresses. Each server has its own
// prometheus.Registry, instrumented with client_golang's promhttp middleware:
//
//	http_requests_total{code,method}                counter, e.g. {code="500",method="get"}
//	http_request_duration_seconds{code,method}      histogram, default buckets .005 s … 10 s
//	http_requests_in_flight                         gauge
//	demoapp_info{behaviour,image}                   gauge, always 1
//
// and, as the server side of an Istio sidecar would report the same requests (so the istio
// router's builtin checks have the series they read; the workload is the pod's Deployment):
//
//	istio_requests_total{reporter="destination",destination_workload,destination_workload_namespace,response_code}
//	istio_request_duration_milliseconds{…same labels…}   histogram, ms
//
// /metrics on the same port serves them; requests to /metrics are not counted. When the pod is
// deleted, stops running or loses its IP, its server is shut down and the address released. A
// pod whose image changes gets a fresh server (and fresh counters), as a restarted container
// would.
//
// # Prometheus
//
// A real Prometheus discovers the pods through the API server and scrapes <podIP>:8080/metrics.
// Pod templates carry ScrapeAnnotations, and Deployment builds a demo Deployment that does. A
// scrape job that honours them:
//
//	scrape_configs:
//	- job_name: demoapp
//	  kubernetes_sd_configs: [{role: pod, namespaces: {names: [demo]}}]
//	  relabel_configs:
//	  - {source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_scrape], regex: "true", action: keep}
//	  - source_labels: [__meta_kubernetes_pod_ip, __meta_kubernetes_pod_annotation_prometheus_io_port]
//	    regex: "(.+);(.+)"
//	    replacement: "$1:$2"
//	    target_label: __address__
//	  - {source_labels: [__meta_kubernetes_pod_name], target_label: pod}
//
// # Load
//
// Load stands in for kube-proxy. EndpointSlices refuse loopback addresses, so Services in this
// environment have no endpoints; Load instead sends, at a fixed and bounded rate, each request to
// a uniformly random pod among those the Fleet serves that are Ready, not terminating and matched
// by a Service-like selector.
//
// # Behaviours
//
// What a pod does is decided by the tag of its first container's image (see BehaviourFor):
//
//	tag contains  behaviour  responses                         latency
//	"broken"      broken     every request is HTTP 500         ~5 ms
//	"bad"         bad        every second request is HTTP 500  ~5 ms
//	"slow"        slow       200 OK                            ~800 ms
//	anything else good       200 OK                            5–20 ms
//
// So rolling a Deployment from demo:v1 to demo:v2-bad gives the canary a ~50% error rate, and to
// demo:v2-slow a ~800 ms latency, as Prometheus sees them.
//
// # What is simulated
//
// The servers are real: real sockets, real latency, real status codes, real Prometheus
// exposition. But they all live in the one process that runs the Fleet, so CPU, memory and
// crashes are not per pod; readiness is the pod's Ready condition as kwok reports it, not a
// probe; and Load spreads requests one by one, where kube-proxy spreads connections. As with any
// promhttp-instrumented app, a series such as http_requests_total{code="500"} does not exist
// until the first 500 is served, so queries must cope with "no data" (for instance with
// `or vector(0)`).
package demoapp
