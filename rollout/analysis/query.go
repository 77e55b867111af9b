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
	replicasSuccessRate = `(sum(rate(http_requests_total{namespace="{{ namespace }}",pod=~"{{ canary }}-[0-9a-zA-Z]+-[0-9a-zA-Z]+",code!~"5.."}[{{ interval }}]))` +
		` or vector(0)) / sum(rate(http_requests_total{namespace="{{ namespace }}",pod=~"{{ canary }}-[0-9a-zA-Z]+-[0-9a-zA-Z]+"}[{{ interval }}])) * 100`
	replicasDuration = `histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{namespace="{{ namespace }}",pod=~"{{ canary }}-[0-9a-zA-Z]+-[0-9a-zA-Z]+"}[{{ interval }}]))) * 1000`

	replicasRequests = `sum(increase(http_requests_total{namespace="{{ namespace }}",pod=~"{{ canary }}-[0-9a-zA-Z]+-[0-9a-zA-Z]+"}[{{ interval }}]))`
)

// requestCounts are the queries behind minRequests: requests the canary served in the window.
var requestCounts = map[string]string{
	spec.RouterReplicas:   replicasRequests,
	spec.RouterGatewayAPI: gatewayAPICanaryRequests,
	spec.RouterIstio:      istioRequests,
	spec.RouterLinkerd:    linkerdRequests,
	spec.RouterNginx:      nginxCanaryRequests,
	spec.RouterContour:    contourCanaryRequests,
	spec.RouterAppMesh:    appMeshRequests,
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
	spec.RouterGatewayAPI: {
		spec.CheckSuccessRate: gatewayAPICanarySuccessRate,
		spec.CheckDuration:    gatewayAPICanaryDuration,
	},
	spec.RouterIstio: {
		spec.CheckSuccessRate: istioSuccessRate,
		spec.CheckDuration:    istioDuration,
	},
	spec.RouterLinkerd: {
		spec.CheckSuccessRate: linkerdSuccessRate,
		spec.CheckDuration:    linkerdDuration,
	},
	spec.RouterNginx: {
		spec.CheckSuccessRate: nginxCanarySuccessRate,
		spec.CheckDuration:    nginxCanaryDuration,
	},
	spec.RouterContour: {
		spec.CheckSuccessRate: contourCanarySuccessRate,
		spec.CheckDuration:    contourCanaryDuration,
	},
	spec.RouterAppMesh: {
		spec.CheckSuccessRate: appMeshSuccessRate,
		spec.CheckDuration:    appMeshDuration,
	},
}

// stableBuiltins are the stable-side builtin queries of the routers whose series name the
// `<svc>-canary` Service rather than the canary Deployment, so that rendering with {{ canary }}
// set to the stable Deployment would still select the canary (see mesh.go). The other routers'
// builtins serve both sides.
var stableBuiltins = map[string]map[string]string{
	spec.RouterGatewayAPI: {
		spec.CheckSuccessRate: gatewayAPIStableSuccessRate,
		spec.CheckDuration:    gatewayAPIStableDuration,
	},
	spec.RouterNginx: {
		spec.CheckSuccessRate: nginxStableSuccessRate,
		spec.CheckDuration:    nginxStableDuration,
	},
	spec.RouterContour: {
		spec.CheckSuccessRate: contourStableSuccessRate,
		spec.CheckDuration:    contourStableDuration,
	},
}

// Vars are the template variables a query may use.
type Vars struct {
	Namespace, Target, Service, Canary, Stable string
	Interval                                   time.Duration
	Variables                                  map[string]string
	// StableSide renders the stable side of a compareTo: stable check (Canary is then set to
	// Stable); routers whose series name the Services use their stable-side builtins.
	StableSide bool
}

// QueryFor returns the rendered query of check m for a release through router. For the stable
// side of a builtin check (v.StableSide) it uses the router's stable-side query where it has
// one.
func QueryFor(router string, m spec.Metric, interval time.Duration, v Vars) (string, error) {
	q := m.Query
	if q == "" {
		q = builtins[router][m.Name]
		if q == "" {
			return "", fmt.Errorf("check %s: no builtin query for router %q", m.Name, router)
		}
		if s := stableBuiltins[router][m.Name]; s != "" && v.StableSide {
			q = s
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
