package loadtester

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Task types (metadata.type).
const (
	TaskCmd     = "cmd"
	TaskBash    = "bash"
	TaskHelm    = "helm"
	TaskHelmv3  = "helmv3"
	TaskKubectl = "kubectl"
	TaskLoad    = "load"
)

// Task results, the values of the result label.
const (
	ResultSucceeded = "succeeded"
	ResultFailed    = "failed"
	ResultSkipped   = "skipped" // a cmd task already running for that release
)

// Metrics are sluice-loadtester's Prometheus metrics, on their own registry (with the Go and
// process collectors, as Flagger's tester has).
type Metrics struct {
	Registry     *prometheus.Registry
	tasks        *prometheus.CounterVec
	taskDuration *prometheus.HistogramVec
	runningTasks *prometheus.GaugeVec
	gateChecks   *prometheus.CounterVec
	gateChanges  *prometheus.CounterVec
	loadRequests *prometheus.CounterVec
	requests     *prometheus.CounterVec
}

// NewMetrics registers the metrics on a new registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_loadtester_tasks_total",
			Help: "Tasks run, by type and result (succeeded, failed, skipped: a cmd task already running).",
		}, []string{"type", "result"}),
		taskDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_loadtester_task_duration_seconds",
			Help:    "How long finished tasks ran, by type.",
			Buckets: []float64{0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600},
		}, []string{"type"}),
		runningTasks: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_loadtester_running_tasks",
			Help: "Tasks running now, by type.",
		}, []string{"type"}),
		gateChecks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_loadtester_gate_checks_total",
			Help: "Gate checks, by gate kind (gate, rollback) and answer (open, closed, error).",
		}, []string{"gate", "result"}),
		gateChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_loadtester_gate_changes_total",
			Help: "Gates opened or closed, by gate kind (gate, rollback) and new state.",
		}, []string{"gate", "state"}),
		loadRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_loadtester_load_requests_total",
			Help: "Requests sent by load tasks, by result (success, error: no response or a 5xx).",
		}, []string{"result"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_loadtester_http_requests_total",
			Help: "Requests served by the API, by path and status code.",
		}, []string{"path", "code"}),
	}
	m.Registry.MustRegister(m.tasks, m.taskDuration, m.runningTasks, m.gateChecks, m.gateChanges,
		m.loadRequests, m.requests,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// instrument counts the requests of one path.
func (m *Metrics) instrument(path string, h http.Handler) http.Handler {
	if m == nil {
		return h
	}
	return promhttp.InstrumentHandlerCounter(m.requests.MustCurryWith(prometheus.Labels{"path": path}), h)
}

func (m *Metrics) task(typ, result string, took time.Duration) {
	if m == nil {
		return
	}
	m.tasks.WithLabelValues(typ, result).Inc()
	if result != ResultSkipped {
		m.taskDuration.WithLabelValues(typ).Observe(took.Seconds())
	}
}

func (m *Metrics) running(typ string, delta float64) {
	if m != nil {
		m.runningTasks.WithLabelValues(typ).Add(delta)
	}
}

func (m *Metrics) gateCheck(kind, result string) {
	if m != nil {
		m.gateChecks.WithLabelValues(kind, result).Inc()
	}
}

func (m *Metrics) gateChange(kind string, open bool) {
	if m == nil {
		return
	}
	state := GateClosed
	if open {
		state = GateOpen
	}
	m.gateChanges.WithLabelValues(kind, state).Inc()
}

func (m *Metrics) loadResult(ok, errs uint64) {
	if m != nil {
		m.loadRequests.WithLabelValues("success").Add(float64(ok))
		m.loadRequests.WithLabelValues("error").Add(float64(errs))
	}
}
