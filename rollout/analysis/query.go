package analysis

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// Builtin PromQL for the `replicas` router: the application's own HTTP server metrics, scraped
// per pod with `namespace` and `pod` target labels (the conventional kubernetes-pods scrape
// job). The canary's pods are named `<deployment>-canary-<replicaset hash>-<suffix>`.
//
//	http_requests_total{code="200",...}                 counter, one per status code
//	http_request_duration_seconds_bucket{le="0.5",...}  histogram of request latency
const (
	replicasSuccessRate = `sum(rate(http_requests_total{namespace="{{ namespace }}",pod=~"{{ canary }}-[0-9a-zA-Z]+-[0-9a-zA-Z]+",code!~"5.."}[{{ interval }}]))` +
		` / sum(rate(http_requests_total{namespace="{{ namespace }}",pod=~"{{ canary }}-[0-9a-zA-Z]+-[0-9a-zA-Z]+"}[{{ interval }}])) * 100`
	replicasDuration = `histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{namespace="{{ namespace }}",pod=~"{{ canary }}-[0-9a-zA-Z]+-[0-9a-zA-Z]+"}[{{ interval }}]))) * 1000`

	replicasRequests = `sum(increase(http_requests_total{namespace="{{ namespace }}",pod=~"{{ canary }}-[0-9a-zA-Z]+-[0-9a-zA-Z]+"}[{{ interval }}]))`
)

// requestCounts are the queries behind minRequests: requests the canary served in the window.
var requestCounts = map[string]string{
	spec.RouterReplicas: replicasRequests,
}

// RequestCountQuery renders the canary's request count in the check's window for router.
func RequestCountQuery(router string, m spec.Metric, interval time.Duration, v Vars) (string, error) {
	q := requestCounts[router]
	if q == "" {
		return "", fmt.Errorf("check %s: minRequests: no request count query for router %q", m.Name, router)
	}
	return QueryFor(router, spec.Metric{Name: m.Name, Query: q, Interval: m.Interval}, interval, v)
}

var builtins = map[string]map[string]string{
	spec.RouterReplicas: {
		spec.CheckSuccessRate: replicasSuccessRate,
		spec.CheckDuration:    replicasDuration,
	},
}

// Vars are the template variables a query may use.
type Vars struct {
	Namespace, Target, Service, Canary, Stable string
	Interval                                   time.Duration
	Variables                                  map[string]string
}

// QueryFor returns the rendered query of check m for a release through router.
func QueryFor(router string, m spec.Metric, interval time.Duration, v Vars) (string, error) {
	q := m.Query
	if q == "" {
		q = builtins[router][m.Name]
		if q == "" {
			return "", fmt.Errorf("check %s: no builtin query for router %q", m.Name, router)
		}
	}
	if m.Interval != "" {
		d, err := time.ParseDuration(m.Interval)
		if err != nil {
			return "", fmt.Errorf("check %s: interval %q: %w", m.Name, m.Interval, err)
		}
		interval = d
	}
	v.Interval = interval
	return Render(q, v)
}

var varRef = regexp.MustCompile(`{{\s*([a-zA-Z0-9_.]+)\s*}}`)

// Render substitutes `{{ name }}` references. A reference to an unknown variable is an error
// naming it, never an empty substitution.
func Render(q string, v Vars) (string, error) {
	var missing []string
	out := varRef.ReplaceAllStringFunc(q, func(ref string) string {
		name := varRef.FindStringSubmatch(ref)[1]
		switch name {
		case "namespace":
			return v.Namespace
		case "target":
			return v.Target
		case "service":
			return v.Service
		case "canary":
			return v.Canary
		case "stable":
			return v.Stable
		case "interval":
			return promDuration(v.Interval)
		}
		if key, ok := strings.CutPrefix(name, "variables."); ok {
			if val, ok := v.Variables[key]; ok {
				return val
			}
		}
		missing = append(missing, name)
		return ref
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("query uses unknown template variable(s) %s", strings.Join(missing, ", "))
	}
	return out, nil
}

// promDuration renders d in PromQL's duration syntax (whole seconds, at least 1s).
func promDuration(d time.Duration) string {
	s := int64(d / time.Second)
	if s < 1 {
		s = 1
	}
	return fmt.Sprintf("%ds", s)
}
