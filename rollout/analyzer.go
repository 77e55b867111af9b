package rollout

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/providers/metrics"
	"github.com/sluice-dev/sluice/rollout/analysis"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// Analyzer runs a release's checks concurrently against one metrics provider, with a bound on
// the queries in flight across all releases.
type Analyzer struct {
	Provider metrics.Provider
	sem      chan struct{}
}

// NewAnalyzer bounds the queries in flight at once to parallelism.
func NewAnalyzer(p metrics.Provider, parallelism int) *Analyzer {
	return &Analyzer{Provider: p, sem: make(chan struct{}, max(parallelism, 1))}
}

// Run evaluates every check of the plan for the release of Deployment name.
func (a *Analyzer) Run(ctx context.Context, namespace, name string, plan *spec.Config) []spec.CheckResult {
	vars := analysis.Vars{
		Namespace: namespace, Target: name, Service: serviceName(name, plan),
		Canary: spec.CanaryName(name), Stable: name,
	}
	results := make([]spec.CheckResult, len(plan.Metrics))
	var wg sync.WaitGroup
	for i, m := range plan.Metrics {
		q, err := analysis.QueryFor(plan.Router, m, plan.Interval.Duration, vars)
		if err != nil {
			results[i] = analysis.Judge(m, 0, err)
			continue
		}
		wg.Go(func() {
			select {
			case a.sem <- struct{}{}:
				defer func() { <-a.sem }()
			case <-ctx.Done():
				results[i] = analysis.Judge(m, 0, fmt.Errorf("%w: %v", metrics.ErrUnreachable, ctx.Err()))
				return
			}
			start := time.Now()
			v, err := a.Provider.Query(ctx, q)
			queryDuration.Observe(time.Since(start).Seconds())
			if errors.Is(err, metrics.ErrNoData) {
				// Say which query came back empty, so a user can see what series it expected.
				err = fmt.Errorf("%w; query: %s", err, q)
			}
			results[i] = analysis.Judge(m, v, err)
		})
	}
	wg.Wait()
	return results
}

func serviceName(name string, plan *spec.Config) string {
	if plan.Service != "" {
		return plan.Service
	}
	return name
}
