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

// Isolated reports whether the canary's pods are kept out of the Deployment's own Services:
// true for every router but replicas (traffic reaches the canary only through the routing
// object) and for a blue/green release (the canary gets no live traffic until the switch).
func (c *Config) Isolated() bool {
	return c.Router != RouterReplicas || c.Strategy == StrategyBlueGreen
}

// Iterative reports whether the strategy runs a fixed number of analysis iterations instead of
// stepping weights.
func (c *Config) Iterative() bool { return c.Strategy != StrategyCanary }

// route parses `sluice.dev/route`: a name, or kind/name where the router manages more than one
// kind of object.
func (p *parser) route(v string, router RouterInfo, routerKnown bool) (kind, name string) {
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
	kinds := router.kindNames()
	if len(kinds) == 0 {
		p.invalid(AnnRoute, v, fmt.Sprintf("the %s router manages no routing object", router.Name))
		return "", ""
	}
	if kind != "" && !slices.Contains(kinds, strings.ToLower(kind)) {
		p.invalid(AnnRoute, v, fmt.Sprintf("the %s router manages %s objects", router.Name, strings.Join(kinds, " or ")))
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
func (p *parser) capabilities(c *Config, router RouterInfo, strategyKey, matchKey string) {
	k, _ := router.Kind(c.RouteKind)
	what := c.Router
	if len(router.Kinds) > 1 {
		what += " (" + k.Kind + ")"
	}
	if !slices.Contains(k.Strategies, c.Strategy) {
		names := make([]string, len(k.Strategies))
		for i, s := range k.Strategies {
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
	if k.SingleMatch && (len(c.Matches) > 1 || len(c.Matches) == 1 && (len(c.Matches[0].Headers) > 1 || len(c.Matches[0].Cookies) > 1)) {
		p.invalid(matchKey, "", fmt.Sprintf("the %s router can route by one header and/or one cookie only", what))
		return
	}
	for i, m := range c.Matches {
		where := fmt.Sprintf("%s[%d]", matchKey, i)
		for _, set := range []struct {
			name string
			m    map[string]StringMatch
			can  []string
		}{{"headers", m.Headers, k.Headers}, {"cookies", m.Cookies, k.Cookies}, {"queryParams", m.QueryParams, k.QueryParams}} {
			for _, key := range slices.Sorted(maps.Keys(set.m)) {
				sm := set.m[key]
				if !slices.Contains(set.can, sm.Kind()) {
					detail := fmt.Sprintf("the %s router cannot match %s", what, set.name)
					if len(set.can) > 0 {
						detail = fmt.Sprintf("the %s router can match %s by %s only", what, set.name, strings.Join(set.can, " or "))
					}
					p.invalid(where+"."+set.name+"."+key, sm.Kind(), detail)
				}
				if k.CookieValue != "" && set.name == "cookies" && sm.Exact != k.CookieValue {
					p.invalid(where+".cookies."+key, sm.Exact, fmt.Sprintf("%s; use exact: %s", k.CookieValueWhy, k.CookieValue))
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
func (p *parser) stickyCapability(c *Config, router RouterInfo, catalog Routers, key string) {
	if c.SessionAffinity == nil {
		return
	}
	if c.Strategy != StrategyCanary {
		p.invalid(key, c.SessionAffinity.CookieName, fmt.Sprintf("session affinity applies to strategy canary only (strategy is %s)", c.Strategy))
		return
	}
	if k, _ := router.Kind(c.RouteKind); !k.Sticky {
		var can []string
		for _, r := range catalog {
			for _, k := range r.Kinds {
				if !k.Sticky {
					continue
				}
				name := r.Name
				if len(r.Kinds) > 1 {
					name += " (" + k.Kind + ")"
				}
				can = append(can, name)
			}
		}
		slices.Sort(can)
		p.invalid(key, c.SessionAffinity.CookieName, fmt.Sprintf("the %s router cannot keep sessions on the canary (session affinity works with %s)", c.Router, strings.Join(can, ", ")))
	}
}
