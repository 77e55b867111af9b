package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/sluice-dev/sluice/providers/metrics"
	"github.com/sluice-dev/sluice/providers/metrics/prometheus"
)

// queueStats are Sluice's rollout work queue and workers over a run's window, read from
// Prometheus, which scrapes Sluice's /metrics every second (controller-runtime's metrics).
type queueStats struct {
	// Reconciles is the number of steps run (controller_runtime_reconcile_total).
	Reconciles float64 `json:"reconciles"`
	// ReconcileP50 and ReconcileP99 are how long a step took, seconds.
	ReconcileP50 float64 `json:"reconcileP50"`
	ReconcileP99 float64 `json:"reconcileP99"`
	// WaitP50 and WaitP99 are how long an item waited in the queue once due, seconds (the
	// histogram's buckets are powers of ten, so these are coarse).
	WaitP50 float64 `json:"waitP50"`
	WaitP99 float64 `json:"waitP99"`
	// MaxWorkers is the most workers busy at once (of --concurrency); MaxDepth the most items
	// due at once.
	MaxWorkers float64 `json:"maxWorkers"`
	MaxDepth   float64 `json:"maxDepth"`
}

// readQueueStats queries promURL for the window that ended now and lasted window.
func readQueueStats(ctx context.Context, promURL string, window time.Duration) (*queueStats, error) {
	p, err := prometheus.New(prometheus.Options{Address: promURL})
	if err != nil {
		return nil, err
	}
	// Two scrapes more than the window, so the first increase is counted.
	w := fmt.Sprintf("%ds", int(math.Ceil(window.Seconds()))+2)
	q := &queueStats{}
	var errs []error
	for _, m := range []struct {
		dst  *float64
		expr string
	}{
		{&q.Reconciles, `sum(increase(controller_runtime_reconcile_total{controller="rollout"}[` + w + `]))`},
		{&q.ReconcileP50, `histogram_quantile(0.5, sum by (le) (increase(controller_runtime_reconcile_time_seconds_bucket{controller="rollout"}[` + w + `])))`},
		{&q.ReconcileP99, `histogram_quantile(0.99, sum by (le) (increase(controller_runtime_reconcile_time_seconds_bucket{controller="rollout"}[` + w + `])))`},
		{&q.WaitP50, `histogram_quantile(0.5, sum by (le) (increase(workqueue_queue_duration_seconds_bucket{name="rollout"}[` + w + `])))`},
		{&q.WaitP99, `histogram_quantile(0.99, sum by (le) (increase(workqueue_queue_duration_seconds_bucket{name="rollout"}[` + w + `])))`},
		{&q.MaxWorkers, `max(max_over_time(controller_runtime_active_workers{controller="rollout"}[` + w + `]))`},
		{&q.MaxDepth, `max(max_over_time(workqueue_depth{name="rollout"}[` + w + `]))`},
	} {
		v, err := p.Query(ctx, m.expr)
		if errors.Is(err, metrics.ErrNoData) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", m.expr, err))
			continue
		}
		*m.dst = v
	}
	return q, errors.Join(errs...)
}
