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

// Analyzer runs a release's checks concurrently, with two bounds on the queries in flight
// across all releases: per backend (an address of a provider type) and in all. A query takes
// its backend's place first and only then one of all, so queries waiting for a slow or hanging
// backend hold no place that another backend's queries could use: they wait for their own
// backend alone, and each fails at --query-timeout.
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
	// BackendParallelism bounds the queries in flight to one backend
	// (--query-parallelism-per-backend); 0 means a quarter of the total.
	BackendParallelism int

	sem      chan struct{}
	mu       sync.Mutex
	backends map[string]*backendSlots
}

// backendSlots are the places of one backend's queries, shared by the queries that use them
// (and dropped when none does).
type backendSlots struct {
	sem   chan struct{}
	users int
}

// NewAnalyzer bounds the queries in flight at once to parallelism in all.
func NewAnalyzer(p metrics.Provider, parallelism int) *Analyzer {
	return &Analyzer{Provider: p, sem: make(chan struct{}, max(parallelism, 1))}
}

// slot takes a place for one query to backend, then one of all (see Analyzer); release gives
// both back.
func (a *Analyzer) slot(ctx context.Context, backend string) (release func(), err error) {
	a.mu.Lock()
	if a.backends == nil {
		a.backends = map[string]*backendSlots{}
	}
	b := a.backends[backend]
	if b == nil {
		n := a.BackendParallelism
		if n <= 0 {
			n = cap(a.sem) / 4
		}
		b = &backendSlots{sem: make(chan struct{}, max(n, 1))}
		a.backends[backend] = b
	}
	b.users++
	a.mu.Unlock()
	done := func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if b.users--; b.users == 0 {
			delete(a.backends, backend)
		}
	}
	select {
	case b.sem <- struct{}{}:
	case <-ctx.Done():
		done()
		return nil, ctx.Err()
	}
	select {
	case a.sem <- struct{}{}:
	case <-ctx.Done():
		<-b.sem
		done()
		return nil, ctx.Err()
	}
	return func() { <-a.sem; <-b.sem; done() }, nil
}

// backendKey names the backend a query goes to: its provider type, address and region. The
// builtin checks and inline queries go to the default Prometheus.
func (a *Analyzer) backendKey(p *spec.ProviderSpec) string {
	typ, addr, region := "prometheus", "", ""
	if p != nil {
		typ, addr, region = p.Type, p.Address, p.Region
	}
	if addr == "" && a.Providers != nil {
		addr = a.Providers.DefaultAddresses[typ]
	}
	return typ + " " + addr + " " + region
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
		prov, backend, m, err := a.resolve(ctx, namespace, m)
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
			release, err := a.slot(ctx, backend)
			if err != nil {
				results[i] = analysis.Judge(m, 0, fmt.Errorf("%w: %w", metrics.ErrUnreachable, err))
				return
			}
			defer release()
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

// resolve finds the provider of check m and the backend it queries (backendKey), and for a
// templateRef check the template's query: its MetricTemplate's provider, else the default one.
func (a *Analyzer) resolve(ctx context.Context, namespace string, m spec.Metric) (metrics.Provider, string, spec.Metric, error) {
	if m.TemplateRef == nil {
		return a.Provider, a.backendKey(nil), m, nil
	}
	prov, t, m, err := a.template(ctx, namespace, m)
	if err != nil {
		return nil, "", m, err
	}
	return prov, a.backendKey(&t.Spec.Provider), m, nil
}

// template finds the MetricTemplate of templateRef check m and builds its provider.
func (a *Analyzer) template(ctx context.Context, namespace string, m spec.Metric) (metrics.Provider, *spec.MetricTemplate, spec.Metric, error) {
	ns := m.TemplateRef.Namespace
	if ns == "" {
		ns = namespace
		m.TemplateRef = &spec.TemplateRef{Name: m.TemplateRef.Name, Namespace: ns}
	}
	if ns != namespace && !a.AllowCrossNamespaceTemplates {
		return nil, nil, m, withTemplate(m, fmt.Errorf("refused: the template is in namespace %s, not the Deployment's (%s); "+
			"a template uses its own namespace's Secret, so a templateRef to another namespace needs the controller flag --allow-cross-namespace-templates "+
			"(or copy the template into %s)", ns, namespace, namespace))
	}
	if a.Templates == nil || a.Providers == nil {
		return nil, nil, m, fmt.Errorf("MetricTemplates are not enabled in this controller")
	}
	tctx, cancel := context.WithTimeout(ctx, templateTimeout)
	defer cancel()
	t := &spec.MetricTemplate{}
	if err := a.Templates.Get(tctx, types.NamespacedName{Namespace: ns, Name: m.TemplateRef.Name}, t); err != nil {
		return nil, nil, m, withTemplate(m, err)
	}
	prov, err := a.Providers.For(ctx, ns, t.Spec.Provider)
	if err != nil {
		return nil, nil, m, withTemplate(m, err)
	}
	m.Query = t.Spec.Query
	return prov, t, m, nil
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
