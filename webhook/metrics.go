package webhook

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/sluice-dev/sluice/rollout/spec"
)

var (
	decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_admission_decisions_total",
		Help: "Admission decisions on opted-in Deployments, by decision table row.",
	}, []string{"decision"})
	discarded = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_control_discarded_total",
		Help: "Control annotations the webhook dropped because they named no revision in flight, by annotation.",
	}, []string{"annotation"})
	latency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "sluice_admission_duration_seconds",
		Help:    "Time Sluice's handler spends on one admission request.",
		Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05},
	})
)

func init() {
	metrics.Registry.MustRegister(decisions, discarded, latency)
	// Every decision (and control) starts at zero, so that its first occurrence shows in rate() and
	// increase() instead of appearing already at 1.
	for _, d := range []Row{RowController, RowNotOptedIn, RowCreate, RowInvalid,
		RowOptOut, RowUnchanged, RowRestart, RowSkip, RowRevert, RowHeldFailed,
		RowHeld, RowReplaced, "ignored", "error"} {
		decisions.WithLabelValues(string(d))
	}
	for _, k := range spec.ControlAnnotations {
		discarded.WithLabelValues(k)
	}
}

func observe(d Row, took time.Duration) {
	decisions.WithLabelValues(string(d)).Inc()
	latency.Observe(took.Seconds())
}
