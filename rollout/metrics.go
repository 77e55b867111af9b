package rollout

import (
	"math"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/sluice-dev/sluice/rollout/spec"
)

var (
	phaseGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sluice_release_phase",
		Help: "1 for the phase the Deployment's release is in, 0 for the others.",
	}, []string{"namespace", "name", "phase"})
	weightGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sluice_release_weight",
		Help: "Traffic weight (percent) of the canary.",
	}, []string{"namespace", "name"})
	releaseDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "sluice_release_duration_seconds",
		Help:    "Time from hold to the end of a release, by outcome phase.",
		Buckets: prometheus.ExponentialBuckets(15, 2, 10),
	}, []string{"phase"})
	unanalysedGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sluice_release_unanalysed",
		Help: "1 while the Deployment's pods run a template that reached them without canary analysis (Event Unanalysed).",
	}, []string{"namespace", "name"})
	staleControls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_control_stale_total",
		Help: "Control annotations the worker cleared without acting because they named another revision (written past the webhook), by annotation.",
	}, []string{"annotation"})
	checkTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_analysis_check_total",
		Help: "Analysis check readings by verdict.",
	}, []string{"result"})
	checkValue = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sluice_analysis_value",
		Help: "Last value read by each check (the canary's).",
	}, []string{"namespace", "name", "check"})
	stableValue = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sluice_analysis_stable_value",
		Help: "Last value read on the stable pods by each check with compareTo: stable.",
	}, []string{"namespace", "name", "check"})
	checkThreshold = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sluice_analysis_threshold",
		Help: "Bounds of each check's thresholdRange in the release's plan (bound: min or max).",
	}, []string{"namespace", "name", "check", "bound"})
	queryDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "sluice_analysis_query_duration_seconds",
		Help:    "Latency of metric provider queries.",
		Buckets: prometheus.DefBuckets,
	})
)

var phases = []spec.Phase{spec.PhaseIdle, spec.PhaseProgressing, spec.PhaseWaiting, spec.PhasePaused,
	spec.PhasePromoting, spec.PhaseSucceeded, spec.PhaseRollingBack, spec.PhaseFailed}

func init() {
	metrics.Registry.MustRegister(phaseGauge, weightGauge, unanalysedGauge, staleControls, releaseDuration, checkTotal, checkValue, stableValue, checkThreshold, queryDuration)
	// Counters start at zero, so that the first release to end (or the first reading of a
	// verdict) shows in rate() and increase() instead of appearing already at 1.
	for _, p := range []spec.Phase{spec.PhaseSucceeded, spec.PhaseFailed} {
		releaseDuration.WithLabelValues(string(p))
	}
	for _, v := range []spec.Verdict{spec.VerdictPass, spec.VerdictFail, spec.VerdictAbort, spec.VerdictInconclusive, spec.VerdictError} {
		checkTotal.WithLabelValues(string(v))
	}
	for _, k := range spec.ControlAnnotations {
		staleControls.WithLabelValues(k)
	}
}

func recordState(namespace, name string, st spec.State) {
	for _, p := range phases {
		v := 0.0
		if p == st.Phase {
			v = 1
		}
		phaseGauge.WithLabelValues(namespace, name, string(p)).Set(v)
	}
	weightGauge.WithLabelValues(namespace, name).Set(float64(st.Weight))
	unanalysed := 0.0
	if st.Unanalysed != "" {
		unanalysed = 1
	}
	unanalysedGauge.WithLabelValues(namespace, name).Set(unanalysed)
	if st.Plan != nil {
		for _, m := range st.Plan.Metrics {
			if r := m.ThresholdRange; r != nil && r.Min != nil {
				checkThreshold.WithLabelValues(namespace, name, m.Name, "min").Set(*r.Min)
			}
			if r := m.ThresholdRange; r != nil && r.Max != nil {
				checkThreshold.WithLabelValues(namespace, name, m.Name, "max").Set(*r.Max)
			}
		}
	}
}

func recordChecks(namespace, name string, rs []spec.CheckResult) {
	for _, r := range rs {
		checkTotal.WithLabelValues(string(r.Verdict)).Inc()
		if r.Value != nil {
			checkValue.WithLabelValues(namespace, name, r.Name).Set(*r.Value)
		}
	}
}

// recordStable records a check's reading on the stable pods (compareTo: stable).
func recordStable(namespace, name, check string, v float64) {
	if math.IsNaN(v) {
		return
	}
	stableValue.WithLabelValues(namespace, name, check).Set(v)
}

// forget deletes the series of a Deployment that is gone (deleted or opted out).
func forget(namespace, name string) {
	labels := prometheus.Labels{"namespace": namespace, "name": name}
	phaseGauge.DeletePartialMatch(labels)
	weightGauge.DeletePartialMatch(labels)
	unanalysedGauge.DeletePartialMatch(labels)
	checkValue.DeletePartialMatch(labels)
	stableValue.DeletePartialMatch(labels)
	checkThreshold.DeletePartialMatch(labels)
}
