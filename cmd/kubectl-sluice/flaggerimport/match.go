package flaggerimport

import (
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// cookieRegex is how Flagger's docs match a cookie with Istio and Gateway API: a regex on the
// Cookie header, "^(.*?;)?(NAME=VALUE)(;.*)?$".
var cookieRegex = regexp.MustCompile(`^\^\(\.\*\?;\)\?\(([A-Za-z0-9_.-]+)=([^;()|*+?\\]+)\)\(;\.\*\)\?\$$`)

// matches converts analysis.match (Istio's HTTPMatchRequest, as Flagger takes it) into
// sluice.dev/match: headers, cookies and query parameters by exact, prefix or regex.
func (c *canary) matches(ms node, strategy spec.Strategy) {
	if strategy != spec.StrategyAB {
		ms.report("A/B matches apply when iterations is set too (Flagger's A/B testing); this release is %s", strategy)
		return
	}
	var out []spec.Match
	for _, m := range ms.items() {
		var match spec.Match
		for _, k := range m.keys() {
			f := m.key(k)
			switch k {
			case "headers":
				for _, name := range f.keys() {
					c.header(&match, f.key(name), name)
				}
			case "queryParams":
				for _, name := range f.keys() {
					if sm, ok := stringMatch(f.key(name)); ok {
						if match.QueryParams == nil {
							match.QueryParams = map[string]spec.StringMatch{}
						}
						match.QueryParams[name] = sm
					}
				}
			default:
				f.report("Sluice's A/B matches test headers, cookies and query parameters only")
			}
		}
		out = append(out, match)
	}
	if c.router == spec.RouterNginx && len(out) > 1 {
		// ingress-nginx routes to the canary by a header or a cookie, whichever the request
		// has: Flagger's separate matches are one canary Ingress, as in Sluice's single match.
		merged := spec.Match{}
		for _, m := range out {
			for k, v := range m.Headers {
				if merged.Headers == nil {
					merged.Headers = map[string]spec.StringMatch{}
				}
				merged.Headers[k] = v
			}
			for k, v := range m.Cookies {
				addCookie(&merged, k, v)
			}
			for k, v := range m.QueryParams {
				if merged.QueryParams == nil {
					merged.QueryParams = map[string]spec.StringMatch{}
				}
				merged.QueryParams[k] = v
			}
		}
		out = []spec.Match{merged}
	}
	b, _ := yaml.Marshal(out)
	c.ann[spec.AnnMatch] = string(b)
	c.origin[spec.AnnMatch] = ms.path
}

// header converts one header match; the Cookie header becomes a cookie match where Flagger's
// router gave it that meaning.
func (c *canary) header(match *spec.Match, h node, name string) {
	sm, ok := stringMatch(h)
	if !ok {
		return
	}
	cookie := strings.EqualFold(name, "cookie")
	switch {
	case cookie && c.router == spec.RouterNginx && sm.Exact != "":
		// ingress-nginx: canary-by-cookie names the cookie; "always" sends to the canary.
		addCookie(match, sm.Exact, spec.StringMatch{Exact: "always"})
		h.to(spec.AnnMatch + " cookies")
		return
	case cookie && sm.Regex != "":
		if m := cookieRegex.FindStringSubmatch(sm.Regex); m != nil {
			addCookie(match, m[1], spec.StringMatch{Exact: m[2]})
			h.to(spec.AnnMatch + " cookies")
			return
		}
	}
	if match.Headers == nil {
		match.Headers = map[string]spec.StringMatch{}
	}
	match.Headers[name] = sm
}

func addCookie(match *spec.Match, name string, sm spec.StringMatch) {
	if match.Cookies == nil {
		match.Cookies = map[string]spec.StringMatch{}
	}
	match.Cookies[name] = sm
}

// stringMatch converts Istio's StringMatch; suffix becomes a regex.
func stringMatch(n node) (spec.StringMatch, bool) {
	var sm spec.StringMatch
	for _, k := range n.keys() {
		f := n.key(k)
		switch k {
		case "exact":
			sm.Exact = f.str()
		case "prefix":
			sm.Prefix = f.str()
		case "regex":
			sm.Regex = f.str()
		case "suffix":
			sm.Regex = ".*" + regexp.QuoteMeta(f.str())
		default:
			f.report("Sluice compares by exact, prefix or regex")
			continue
		}
		f.to(spec.AnnMatch)
	}
	return sm, sm != (spec.StringMatch{})
}
