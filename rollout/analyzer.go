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
	"github.com/sluice-dev/sluice/providers/metrics/redact"
	"github.com/sluice-dev/sluice/rollout/analysis"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// Analyzer runs a release's checks concurrently against one metrics provider, with a bound on
// the queries in flight across all releases.
//
// A templateRef names a MetricTemplate in the Deployment's namespace; one in another namespace
// is refused (a failed check saying so) unless AllowCrossNamespaceTemplates: a template carries
// its namespace's credentials (its Secret), which the Deployment's owner must not borrow. Every
// check reason is redacted (user info of any URL masked) before it is stored, announced or
// logged.
type Analyzer struct {
	// Provider runs the builtin checks and inline queries.
	Provider metrics.Provider
	// Templates reads MetricTemplates (from the cache); Providers builds their providers.
	Templates client.Reader
	Providers *Providers
	// AllowCrossNamespaceTemplates lets a templateRef name another namespace
	// (--allow-cross-namespace-templates).
	AllowCrossNamespaceTemplates bool
	// Routers are the routers the controller offers; the builtin checks run their queries.
	Routers spec.Routers
	sem     chan struct{}
}

// NewAnalyzer bounds the queries in flight at once to parallelism.
func NewAnalyzer(p metrics.Provider, parallelism int) *Analyzer {
	return &Analyzer{Provider: p, sem: make(chan struct{}, max(parallelism, 1))}
}

// Run evaluates every check of the plan for the release of Deployment name.
func (a *Analyzer) Run(ctx context.Context, namespace, name string, plan *spec.Config) []spec.CheckResult {
	vars := analysis.Vars{
		Namespace: namespace, Target: name, Service: plan.ServiceFor(name),
		Canary: spec.CanaryName(name), Stable: name,
	}
	// A router this controller lacks has no builtin queries: its builtin checks fail naming it.
	router, ok := a.Routers.Lookup(plan.Router)
	if !ok {
		router = spec.RouterInfo{Name: plan.Router}
	}
	results := make([]spec.CheckResult, len(plan.Metrics))
	var wg sync.WaitGroup
	for i, m := range plan.Metrics {
		prov, m, err := a.resolve(ctx, namespace, m)
		if err != nil {
			results[i] = analysis.Judge(m, 0, err)
			continue
		}
		vars := vars
		vars.Variables = m.TemplateVariables
		canaryQ, err := analysis.QueryFor(router, m, plan.Interval.Duration, vars)
		if err != nil {
			results[i] = analysis.Judge(m, 0, withTemplate(m, err))
			continue
		}
		wg.Go(func() {
			select {
			case a.sem <- struct{}{}:
				defer func() { <-a.sem }()
			case <-ctx.Done():
				results[i] = analysis.Judge(m, 0, fmt.Errorf("%w: %w", metrics.ErrUnreachable, ctx.Err()))
				return
			}
			results[i] = a.check(ctx, prov, router, plan, m, vars, canaryQ)
		})
	}
	wg.Wait()
	for i := range results {
		results[i].Reason = redact.Text(results[i].Reason)
	}
	return results
}

// templateTimeout bounds the wait for the MetricTemplate informer (e.g. when the CRD is missing).
const templateTimeout = 10 * time.Second

// resolve finds the provider of check m, and for a templateRef check the template's query: its
// MetricTemplate's provider, else the default one.
func (a *Analyzer) resolve(ctx context.Context, namespace string, m spec.Metric) (metrics.Provider, spec.Metric, error) {
	if m.TemplateRef == nil {
		return a.Provider, m, nil
	}
	ns := m.TemplateRef.Namespace
	if ns == "" {
		ns = namespace
		m.TemplateRef = &spec.TemplateRef{Name: m.TemplateRef.Name, Namespace: ns}
	}
	if ns != namespace && !a.AllowCrossNamespaceTemplates {
		return nil, m, withTemplate(m, fmt.Errorf("refused: the template is in namespace %s, not the Deployment's (%s); "+
			"a template uses its own namespace's Secret, so a templateRef to another namespace needs the controller flag --allow-cross-namespace-templates "+
			"(or copy the template into %s)", ns, namespace, namespace))
	}
	if a.Templates == nil || a.Providers == nil {
		return nil, m, fmt.Errorf("MetricTemplates are not enabled in this controller")
	}
	tctx, cancel := context.WithTimeout(ctx, templateTimeout)
	defer cancel()
	t := &spec.MetricTemplate{}
	if err := a.Templates.Get(tctx, types.NamespacedName{Namespace: ns, Name: m.TemplateRef.Name}, t); err != nil {
		return nil, m, withTemplate(m, err)
	}
	prov, err := a.Providers.For(ctx, ns, t.Spec.Provider)
	if err != nil {
		return nil, m, withTemplate(m, err)
	}
	m.Query = t.Spec.Query
	return prov, m, nil
}

// check runs one check: the canary query, and where asked the same query on the stable pods
// (compareTo) and the canary's request count (minRequests).
func (a *Analyzer) check(ctx context.Context, prov metrics.Provider, router spec.RouterInfo, plan *spec.Config, m spec.Metric, vars analysis.Vars, canaryQ string) spec.CheckResult {
	v, err := a.query(ctx, prov, canaryQ)
	r := analysis.Judge(m, v, err)
	if m.CompareTo == spec.CompareStable {
		stableVars := vars
		stableVars.Canary, stableVars.StableSide = vars.Stable, true
		stableQ, qerr := analysis.QueryFor(router, m, plan.Interval.Duration, stableVars)
		sv, serr := 0.0, qerr
		if qerr == nil {
			sv, serr = a.query(ctx, prov, stableQ)
		}
		if serr == nil {
			recordStable(vars.Namespace, vars.Target, m.Name, sv)
		}
		r = analysis.JudgeCompare(m, v, sv, err, serr)
	}
	if m.MinRequests > 0 {
		countQ, qerr := analysis.RequestCountQuery(router, m, plan.Interval.Duration, vars)
		n, nerr := 0.0, qerr
		if qerr == nil {
			n, nerr = a.query(ctx, prov, countQ)
		}
		r = analysis.JudgeRequests(r, m.MinRequests, n, nerr)
	}
	return r
}

func (a *Analyzer) query(ctx context.Context, prov metrics.Provider, q string) (float64, error) {
	start := time.Now()
	v, err := prov.Query(ctx, q)
	queryDuration.Observe(time.Since(start).Seconds())
	if errors.Is(err, metrics.ErrNoData) {
		// Say which query came back empty, so a user can see what series it expected.
		err = fmt.Errorf("%w; query: %s", err, q)
	}
	return v, err
}

func withTemplate(m spec.Metric, err error) error {
	if m.TemplateRef == nil {
		return err
	}
	return fmt.Errorf("MetricTemplate %s/%s: %w", m.TemplateRef.Namespace, m.TemplateRef.Name, err)
}
