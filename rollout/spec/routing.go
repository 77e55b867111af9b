package spec

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Match is one A/B condition, shaped like Flagger's (Istio's HTTPMatchRequest subset): a request
// matches when every condition in it holds; a request matching any Match goes to the canary.
type Match struct {
	Headers     map[string]StringMatch `json:"headers,omitempty"`
	Cookies     map[string]StringMatch `json:"cookies,omitempty"`
	QueryParams map[string]StringMatch `json:"queryParams,omitempty"`
}

// StringMatch compares one value; exactly one field is set.
type StringMatch struct {
	Exact  string `json:"exact,omitempty"`
	Prefix string `json:"prefix,omitempty"`
	Regex  string `json:"regex,omitempty"`
}

// Kind names the set field: "exact", "prefix" or "regex".
func (m StringMatch) Kind() string {
	switch {
	case m.Exact != "":
		return "exact"
	case m.Prefix != "":
		return "prefix"
	}
	return "regex"
}

// Value is the set field's value.
func (m StringMatch) Value() string { return m.Exact + m.Prefix + m.Regex }

// MaxCookiesPerMatch bounds the cookies one match may test: a request carries them in one
// Cookie header in any order, so n cookies become n! alternatives of one regular expression.
const MaxCookiesPerMatch = 4

// Routers lists the routers of SPEC §2.
var Routers = []string{RouterReplicas, RouterGatewayAPI, RouterIstio, RouterLinkerd, RouterNginx, RouterContour, RouterAppMesh}

// routeKinds are the kinds of routing object each router manages, its default first.
var routeKinds = map[string][]string{
	RouterReplicas:   nil,
	RouterGatewayAPI: {"httproute", "grpcroute"},
	RouterIstio:      {"virtualservice"},
	RouterLinkerd:    {"httproute", "trafficsplit"},
	RouterNginx:      {"ingress"},
	RouterContour:    {"httpproxy"},
	RouterAppMesh:    {"virtualrouter"},
}

// RouteKindOf is the kind of routing object the configuration manages ("" for replicas).
func (c *Config) RouteKindOf() string {
	if c.RouteKind != "" {
		return c.RouteKind
	}
	if ks := routeKinds[c.Router]; len(ks) > 0 {
		return ks[0]
	}
	return ""
}

// Isolated reports whether the canary's pods are kept out of the Deployment's own Services:
// true for every router but replicas (traffic reaches the canary only through the routing
// object) and for a blue/green release (the canary gets no live traffic until the switch).
func (c *Config) Isolated() bool {
	return c.Router != RouterReplicas || c.Strategy == StrategyBlueGreen
}

// Iterative reports whether the strategy runs a fixed number of analysis iterations instead of
// stepping weights.
func (c *Config) Iterative() bool { return c.Strategy != StrategyCanary }

// capability is what a router can do with its routing object kind.
type capability struct {
	strategies []Strategy
	// matches: which match fields and comparisons are possible; nil means none.
	headers, cookies, query []string
	// single: at most one Match with at most one header and one cookie (ingress-nginx).
	single bool
	// sticky: cookie session affinity (a response header on the canary's backend and a
	// cookie match).
	sticky bool
}

var all = []string{"exact", "prefix", "regex"}

var capabilities = map[string]capability{
	RouterReplicas:                  {strategies: []Strategy{StrategyCanary, StrategyBlueGreen}},
	RouterGatewayAPI + "/httproute": {strategies: []Strategy{StrategyCanary, StrategyBlueGreen, StrategyAB, StrategyMirror}, headers: all, cookies: all, query: all, sticky: true},
	RouterGatewayAPI + "/grpcroute": {strategies: []Strategy{StrategyCanary, StrategyBlueGreen, StrategyAB, StrategyMirror}, headers: all},
	RouterIstio:                     {strategies: []Strategy{StrategyCanary, StrategyBlueGreen, StrategyAB, StrategyMirror}, headers: all, cookies: all, query: all, sticky: true},
	RouterLinkerd + "/httproute":    {strategies: []Strategy{StrategyCanary, StrategyBlueGreen, StrategyAB}, headers: all, cookies: all, query: all},
	RouterLinkerd + "/trafficsplit": {strategies: []Strategy{StrategyCanary, StrategyBlueGreen}},
	RouterNginx:                     {strategies: []Strategy{StrategyCanary, StrategyBlueGreen, StrategyAB}, headers: []string{"exact", "regex"}, cookies: []string{"exact"}, single: true},
	RouterContour:                   {strategies: []Strategy{StrategyCanary, StrategyBlueGreen, StrategyAB}, headers: []string{"exact"}, query: []string{"exact", "prefix", "regex"}},
	RouterAppMesh:                   {strategies: []Strategy{StrategyCanary, StrategyBlueGreen}},
}

func capabilityOf(c *Config) capability {
	if k, ok := capabilities[c.Router+"/"+c.RouteKindOf()]; ok {
		return k
	}
	return capabilities[c.Router]
}

// route parses `sluice.dev/route`: a name, or kind/name where the router manages more than one
// kind of object.
func (p *parser) route(v, router string, routerKnown bool) (kind, name string) {
	kind, name, ok := strings.Cut(v, "/")
	if !ok {
		kind, name = "", v
	}
	if !validName(name) {
		p.invalid(AnnRoute, v, "must be a DNS-1035 name (lower-case letters, digits, '-'), optionally prefixed by a kind as in httproute/my-route")
		return "", ""
	}
	if !routerKnown {
		return "", name
	}
	kinds := routeKinds[router]
	if len(kinds) == 0 {
		p.invalid(AnnRoute, v, fmt.Sprintf("the %s router manages no routing object", router))
		return "", ""
	}
	if kind != "" && !slices.Contains(kinds, strings.ToLower(kind)) {
		p.invalid(AnnRoute, v, fmt.Sprintf("the %s router manages %s objects", router, strings.Join(kinds, " or ")))
		return "", ""
	}
	return strings.ToLower(kind), name
}

// matches validates the A/B matches on their own; what the router can express is checked by
// capabilities.
func (p *parser) matches(key string, ms []Match) {
	for i, m := range ms {
		where := fmt.Sprintf("%s[%d]", key, i)
		if len(m.Headers)+len(m.Cookies)+len(m.QueryParams) == 0 {
			p.errs = append(p.errs, field.Required(field.NewPath(where), "a match needs headers, cookies or queryParams"))
		}
		if len(m.Cookies) > MaxCookiesPerMatch {
			p.errs = append(p.errs, field.TooMany(field.NewPath(where+".cookies"), len(m.Cookies), MaxCookiesPerMatch))
		}
		for _, set := range []struct {
			name string
			m    map[string]StringMatch
		}{{"headers", m.Headers}, {"cookies", m.Cookies}, {"queryParams", m.QueryParams}} {
			for _, k := range slices.Sorted(maps.Keys(set.m)) {
				sm := set.m[k]
				path := where + "." + set.name + "." + k
				n := 0
				for _, v := range []string{sm.Exact, sm.Prefix, sm.Regex} {
					if v != "" {
						n++
					}
				}
				if n != 1 {
					p.errs = append(p.errs, field.Invalid(field.NewPath(path), "", "give exactly one of exact, prefix, regex"))
					continue
				}
				if sm.Regex != "" {
					if _, err := regexp.Compile(sm.Regex); err != nil {
						p.errs = append(p.errs, field.Invalid(field.NewPath(path+".regex"), sm.Regex, "not a valid regular expression"))
					}
				}
				if k == "" || strings.ContainsAny(k, " \t:;=") {
					p.errs = append(p.errs, field.Invalid(field.NewPath(path), k, "not a valid name"))
				}
			}
		}
	}
}

// capabilities refuses what the router cannot do, naming the annotation and the router.
func (p *parser) capabilities(c *Config, strategyKey, matchKey string) {
	k := capabilityOf(c)
	what := c.Router
	if kind := c.RouteKindOf(); kind != "" && len(routeKinds[c.Router]) > 1 {
		what += " (" + kind + ")"
	}
	if !slices.Contains(k.strategies, c.Strategy) {
		names := make([]string, len(k.strategies))
		for i, s := range k.strategies {
			names[i] = string(s)
		}
		p.invalid(strategyKey, string(c.Strategy), fmt.Sprintf("the %s router cannot do %s releases (it can do %s)", what, c.Strategy, strings.Join(names, ", ")))
		return
	}
	switch {
	case c.Strategy == StrategyAB && len(c.Matches) == 0:
		p.errs = append(p.errs, field.Required(field.NewPath(AnnMatch), "strategy ab needs at least one match"))
	case c.Strategy != StrategyAB && len(c.Matches) > 0:
		p.invalid(matchKey, "", fmt.Sprintf("matches apply to strategy ab only (strategy is %s)", c.Strategy))
	}
	if c.Strategy != StrategyMirror && c.MirrorPercent > 0 {
		p.invalid(AnnMirrorPercent, "", fmt.Sprintf("applies to strategy mirror only (strategy is %s)", c.Strategy))
	}
	if c.Strategy != StrategyAB {
		return
	}
	if k.single && (len(c.Matches) > 1 || len(c.Matches) == 1 && (len(c.Matches[0].Headers) > 1 || len(c.Matches[0].Cookies) > 1)) {
		p.invalid(matchKey, "", fmt.Sprintf("the %s router can route by one header and/or one cookie only", what))
		return
	}
	for i, m := range c.Matches {
		where := fmt.Sprintf("%s[%d]", matchKey, i)
		for _, set := range []struct {
			name string
			m    map[string]StringMatch
			can  []string
		}{{"headers", m.Headers, k.headers}, {"cookies", m.Cookies, k.cookies}, {"queryParams", m.QueryParams, k.query}} {
			for _, key := range slices.Sorted(maps.Keys(set.m)) {
				sm := set.m[key]
				if !slices.Contains(set.can, sm.Kind()) {
					detail := fmt.Sprintf("the %s router cannot match %s", what, set.name)
					if len(set.can) > 0 {
						detail = fmt.Sprintf("the %s router can match %s by %s only", what, set.name, strings.Join(set.can, " or "))
					}
					p.invalid(where+"."+set.name+"."+key, sm.Kind(), detail)
				}
				if c.Router == RouterNginx && set.name == "cookies" && sm.Exact != "always" {
					p.invalid(where+".cookies."+key, sm.Exact, `ingress-nginx routes a cookie to the canary when its value is "always"; use exact: always`)
				}
			}
		}
	}
}

// cookieName is RFC 6265's cookie-name: an HTTP token.
var cookieName = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// sessionAffinity validates the cookie on its own; whether the router can keep sessions is
// checked by stickyCapability.
func (p *parser) sessionAffinity(key string, a *SessionAffinity) {
	if a == nil {
		return
	}
	if !cookieName.MatchString(a.CookieName) {
		p.invalid(key, a.CookieName, "must be a cookie name (letters, digits and !#$%&'*+-.^_`|~)")
	}
	switch {
	case a.MaxAge < 0:
		p.invalid(key, strconv.Itoa(a.MaxAge), "maxAge must be a positive number of seconds")
	case a.MaxAge == 0:
		a.MaxAge = DefaultSessionMaxAge
	}
}

// stickyCapability refuses session affinity where the strategy or the router cannot keep it.
func (p *parser) stickyCapability(c *Config, key string) {
	if c.SessionAffinity == nil {
		return
	}
	if c.Strategy != StrategyCanary {
		p.invalid(key, c.SessionAffinity.CookieName, fmt.Sprintf("session affinity applies to strategy canary only (strategy is %s)", c.Strategy))
		return
	}
	if !capabilityOf(c).sticky {
		var can []string
		for name, k := range capabilities {
			if k.sticky {
				if router, kind, ok := strings.Cut(name, "/"); ok {
					name = router + " (" + kind + ")"
				}
				can = append(can, name)
			}
		}
		slices.Sort(can)
		p.invalid(key, c.SessionAffinity.CookieName, fmt.Sprintf("the %s router cannot keep sessions on the canary (session affinity works with %s)", c.Router, strings.Join(can, ", ")))
	}
}
