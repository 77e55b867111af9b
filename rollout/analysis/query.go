package analysis

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// RequestCountQuery renders the canary's request count in the check's window for a release
// through router (the query behind minRequests).
func RequestCountQuery(router spec.RouterInfo, m spec.Metric, interval time.Duration, v Vars) (string, error) {
	q := router.Queries.Requests
	if q == "" {
		return "", fmt.Errorf("check %s: minRequests: no request count query for router %q", m.Name, router.Name)
	}
	return QueryFor(router, spec.Metric{Name: m.Name, Query: q, Interval: m.Interval}, interval, v)
}

// builtin is router's query of the builtin check named check ("" when there is none): for the
// stable side of compareTo: stable its stable-side query where it has one.
func builtin(router spec.RouterInfo, check string, stableSide bool) string {
	q := router.Queries
	switch {
	case check == spec.CheckSuccessRate && stableSide && q.StableSuccessRate != "":
		return q.StableSuccessRate
	case check == spec.CheckSuccessRate:
		return q.SuccessRate
	case check == spec.CheckDuration && stableSide && q.StableDuration != "":
		return q.StableDuration
	case check == spec.CheckDuration:
		return q.Duration
	}
	return ""
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

// QueryFor returns the rendered query of check m for a release through router: m's own query,
// or the router's builtin one (spec.RouterInfo.Queries). For the stable side of a builtin check
// (v.StableSide) it uses the router's stable-side query where it has one.
func QueryFor(router spec.RouterInfo, m spec.Metric, interval time.Duration, v Vars) (string, error) {
	q := m.Query
	if q == "" {
		q = builtin(router, m.Name, v.StableSide)
		if q == "" {
			return "", fmt.Errorf("check %s: no builtin query for router %q", m.Name, router.Name)
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
