package rollout

import (
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
	checkTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_analysis_check_total",
		Help: "Analysis check readings by verdict.",
	}, []string{"result"})
	checkValue = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sluice_analysis_value",
		Help: "Last value read by each check.",
	}, []string{"namespace", "name", "check"})
	queryDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "sluice_analysis_query_duration_seconds",
		Help:    "Latency of metric provider queries.",
		Buckets: prometheus.DefBuckets,
	})
)

var phases = []spec.Phase{spec.PhaseIdle, spec.PhaseProgressing, spec.PhaseWaiting, spec.PhasePaused,
	spec.PhasePromoting, spec.PhaseSucceeded, spec.PhaseRollingBack, spec.PhaseFailed}

func init() {
	metrics.Registry.MustRegister(phaseGauge, weightGauge, unanalysedGauge, releaseDuration, checkTotal, checkValue, queryDuration)
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
}

func recordChecks(namespace, name string, rs []spec.CheckResult) {
	for _, r := range rs {
		checkTotal.WithLabelValues(string(r.Verdict)).Inc()
		if r.Value != nil {
			checkValue.WithLabelValues(namespace, name, r.Name).Set(*r.Value)
		}
	}
}

func forget(namespace, name string) {
	labels := prometheus.Labels{"namespace": namespace, "name": name}
	phaseGauge.DeletePartialMatch(labels)
	weightGauge.DeletePartialMatch(labels)
	unanalysedGauge.DeletePartialMatch(labels)
	checkValue.DeletePartialMatch(labels)
}
