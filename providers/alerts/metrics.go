package alerts

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Label values.
const (
	queueNotices  = "notices"
	queueReceiver = "receiver"

	resultSent         = "sent"
	resultFailed       = "failed"
	resultDeduplicated = "deduplicated"
)

var (
	dropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_notifications_dropped_total",
		Help: "Notices of release steps (queue notices), or posts to one event hook or alert provider (queue receiver), dropped because their queue was full.",
	}, []string{"queue"})
	posts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_notifications_total",
		Help: "Posts to event hooks (kind event) and alert providers (kind alert) by result: sent, failed, or deduplicated (an alert repeated within --alert-dedupe-window, not posted).",
	}, []string{"kind", "result"})
)

func init() {
	metrics.Registry.MustRegister(dropped, posts)
	// Counters start at zero, so that the first drop or failure shows in rate() and increase().
	for _, q := range []string{queueNotices, queueReceiver} {
		dropped.WithLabelValues(q)
	}
	for _, k := range []string{kindEvent, kindAlert} {
		for _, r := range []string{resultSent, resultFailed} {
			posts.WithLabelValues(k, r)
		}
	}
	posts.WithLabelValues(kindAlert, resultDeduplicated)
}
