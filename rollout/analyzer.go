package rollout

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/providers/metrics"
	"github.com/sluice-dev/sluice/rollout/analysis"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// Analyzer runs a release's checks concurrently against one metrics provider, with a bound on
// the queries in flight across all releases.
type Analyzer struct {
	// Provider runs the builtin checks and inline queries.
	Provider metrics.Provider
	// Templates reads MetricTemplates (from the cache); Providers builds their providers.
	Templates client.Reader
	Providers *Providers
	sem       chan struct{}
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
		prov, q, err := a.resolve(ctx, namespace, plan, m, vars)
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
			v, err := prov.Query(ctx, q)
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

// templateTimeout bounds the wait for the MetricTemplate informer (e.g. when the CRD is missing).
const templateTimeout = 10 * time.Second

// resolve finds the provider and rendered query of check m: its MetricTemplate's when it has a
// templateRef, else the default provider with the builtin or inline query.
func (a *Analyzer) resolve(ctx context.Context, namespace string, plan *spec.Config, m spec.Metric, vars analysis.Vars) (metrics.Provider, string, error) {
	vars.Variables = m.TemplateVariables
	if m.TemplateRef == nil {
		q, err := analysis.QueryFor(plan.Router, m, plan.Interval.Duration, vars)
		return a.Provider, q, err
	}
	ns := m.TemplateRef.Namespace
	if ns == "" {
		ns = namespace
	}
	if a.Templates == nil || a.Providers == nil {
		return nil, "", fmt.Errorf("MetricTemplates are not enabled in this controller")
	}
	tctx, cancel := context.WithTimeout(ctx, templateTimeout)
	defer cancel()
	t := &spec.MetricTemplate{}
	if err := a.Templates.Get(tctx, types.NamespacedName{Namespace: ns, Name: m.TemplateRef.Name}, t); err != nil {
		return nil, "", fmt.Errorf("MetricTemplate %s/%s: %w", ns, m.TemplateRef.Name, err)
	}
	prov, err := a.Providers.For(ctx, ns, t.Spec.Provider)
	if err != nil {
		return nil, "", fmt.Errorf("MetricTemplate %s/%s: %w", ns, m.TemplateRef.Name, err)
	}
	m.Query = t.Spec.Query
	q, err := analysis.QueryFor(plan.Router, m, plan.Interval.Duration, vars)
	if err != nil {
		return nil, "", fmt.Errorf("MetricTemplate %s/%s: %w", ns, m.TemplateRef.Name, err)
	}
	return prov, q, nil
}

func serviceName(name string, plan *spec.Config) string {
	if plan.Service != "" {
		return plan.Service
	}
	return name
}
