package gateway

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Applied is what the gateway last pushed to Caddy, for tests to wait on and print.
type Applied struct {
	// RouteVersion is the resourceVersion of the HTTPRoute the config was made from; empty while
	// the route does not exist (every request gets 404).
	RouteVersion string
	// Rules are the routes in the order Caddy tries them: one per match of each HTTPRoute rule,
	// the matches with more header conditions first (the Gateway API's precedence), then in
	// the HTTPRoute's order. A request matching none gets 404.
	Rules []AppliedRule
}

// AppliedRule is one match of an HTTPRoute rule and the backends its requests are split over.
type AppliedRule struct {
	// Rule is the index of the rule in the HTTPRoute's spec.rules.
	Rule int
	// Headers must all match; none means every request matches.
	Headers []HeaderMatch
	// Backends are the rule's backendRefs. When no backend has both a weight and an upstream,
	// requests get 503.
	Backends []AppliedBackend
}

// AppliedBackend is one backendRef of a rule.
type AppliedBackend struct {
	Service string
	Port    int32
	// Weight is the backendRef's weight.
	Weight int32
	// Endpoints share the backend's weight evenly, each through an upstream of that Weight.
	Endpoints []Endpoint
	// Unavailable is the upstream weight of a backend that has a weight but no endpoint: its
	// share of the requests gets 503 (as a Gateway API implementation answers for a backend
	// without endpoints) instead of going to the other backends. Problem says why, when the
	// reason is not simply that no pod is ready.
	Unavailable int
	Problem     string
}

// String renders a one-line summary per rule, e.g.
// `rule 0 [X-Canary="always"]: web-canary:80 weight 1 → web-canary-7c9-abcde×1`.
func (a Applied) String() string {
	if a.RouteVersion == "" {
		return "no HTTPRoute (404 for every request)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "HTTPRoute resourceVersion %s", a.RouteVersion)
	for _, r := range a.Rules {
		fmt.Fprintf(&b, "\n  rule %d %v:", r.Rule, r.Headers)
		for _, be := range r.Backends {
			fmt.Fprintf(&b, " %s:%d weight %d →", be.Service, be.Port, be.Weight)
			for _, ep := range be.Endpoints {
				fmt.Fprintf(&b, " %s×%d", ep.Pod, ep.Weight)
			}
			if be.Unavailable > 0 {
				fmt.Fprintf(&b, " 503×%d", be.Unavailable)
			}
			if be.Problem != "" {
				fmt.Fprintf(&b, " (%s)", be.Problem)
			}
			b.WriteString(";")
		}
	}
	return b.String()
}

// listeners are the loopback addresses of one Caddy instance.
type listeners struct {
	Admin, HTTP, Unavailable string
	// Storage is the dir Caddy may keep state in.
	Storage string
}

// resolved is the endpoints of one Service port, or why it has none.
type resolved struct {
	Endpoints []Endpoint
	Problem   string
}

// svcPort keys resolved endpoints.
type svcPort struct {
	Service string
	Port    int32
}

// maxTotalWeight bounds the sum of a rule's upstream weights. weighted_round_robin sends the
// first w₀ requests of each cycle of Σw to the first upstream, the next w₁ to the second and so
// on, so a short cycle keeps the split exact over a few hundred requests, not just on average.
const maxTotalWeight = 1000

// render returns the Caddy JSON config for r (nil: the HTTPRoute does not exist), given the
// endpoints of every Service port it refers to, and the summary of it.
func render(r *route, eps map[svcPort]resolved, l listeners) ([]byte, Applied, error) {
	var applied Applied
	var routes []any
	if r != nil {
		applied.RouteVersion = r.ResourceVersion
		for i, ru := range r.Rules {
			matches := ru.Matches
			if len(matches) == 0 {
				matches = [][]HeaderMatch{nil} // a rule without matches matches every request
			}
			for _, headers := range matches {
				ar := AppliedRule{Rule: i, Headers: headers}
				for _, b := range ru.Backends {
					res := eps[svcPort{b.Service, b.Port}]
					ar.Backends = append(ar.Backends, AppliedBackend{
						Service: b.Service, Port: b.Port, Weight: b.Weight,
						Endpoints: slices.Clone(res.Endpoints), Problem: res.Problem,
					})
				}
				applied.Rules = append(applied.Rules, ar)
			}
		}
		slices.SortStableFunc(applied.Rules, func(a, b AppliedRule) int { return len(b.Headers) - len(a.Headers) })
		for i := range applied.Rules {
			ar := &applied.Rules[i]
			spreadWeights(ar.Backends)
			routes = append(routes, caddyRoute(ar, l.Unavailable))
		}
	}
	routes = append(routes, map[string]any{
		"handle": []any{staticResponse(404, "no HTTPRoute rule matches this request\n")},
	})

	config := map[string]any{
		"admin":   map[string]any{"listen": l.Admin, "config": map[string]any{"persist": false}},
		"storage": map[string]any{"module": "file_system", "root": l.Storage},
		"apps": map[string]any{"http": map[string]any{
			// A reload lets in-flight requests finish, but not forever.
			"grace_period": "5s",
			"servers": map[string]any{
				"gateway": server(l.HTTP, routes),
				"unavailable": server(l.Unavailable, []any{map[string]any{
					"handle": []any{staticResponse(503, "no ready endpoint for this backend\n")},
				}}),
			},
		}},
	}
	data, err := json.Marshal(config)
	if err != nil {
		return nil, Applied{}, fmt.Errorf("encode Caddy config: %w", err)
	}
	return data, applied, nil
}

func server(listen string, routes []any) map[string]any {
	return map[string]any{
		"listen":          []string{listen},
		"routes":          routes,
		"automatic_https": map[string]any{"disable": true},
		"protocols":       []string{"h1"}, // h2 and h3 need TLS, which the gateway does not serve
	}
}

func staticResponse(code int, body string) map[string]any {
	return map[string]any{"handler": "static_response", "status_code": code, "body": body}
}

// caddyRoute is one Caddy route: the rule's header matches, then a reverse_proxy over the
// upstreams of its backends with their weights, or 503 when there is none.
func caddyRoute(ar *AppliedRule, unavailable string) map[string]any {
	var upstreams []any
	var weights []int
	for _, b := range ar.Backends {
		for _, ep := range b.Endpoints {
			if ep.Weight > 0 {
				upstreams = append(upstreams, map[string]any{"dial": ep.Addr})
				weights = append(weights, ep.Weight)
			}
		}
		if b.Unavailable > 0 {
			upstreams = append(upstreams, map[string]any{"dial": unavailable})
			weights = append(weights, b.Unavailable)
		}
	}
	handler := staticResponse(503, "no backend of this HTTPRoute rule has a weight\n")
	if len(upstreams) > 0 {
		handler = map[string]any{
			"handler":   "reverse_proxy",
			"upstreams": upstreams,
			"load_balancing": map[string]any{
				"selection_policy": map[string]any{"policy": "weighted_round_robin", "weights": weights},
			},
		}
	}
	cr := map[string]any{"handle": []any{handler}, "terminal": true}
	if len(ar.Headers) > 0 {
		// header_regexp rather than header: Caddy's header matcher treats a leading or
		// trailing * as a wildcard and expands {placeholders} in the value.
		re := map[string]any{}
		for _, h := range ar.Headers {
			pattern := regexp.QuoteMeta(h.Value)
			if h.Regex {
				pattern = "(?:" + h.Value + ")"
			}
			re[h.Name] = map[string]any{"pattern": "^" + pattern + "$"}
		}
		cr["match"] = []any{map[string]any{"header_regexp": re}}
	}
	return cr
}

// spreadWeights sets the upstream weights of a rule's backends: a backendRef of weight W with n
// endpoints gets n upstreams of weight W/n each, one with no endpoint gets a single 503
// upstream of weight W, and one of weight 0 gets none. The ratios are exact, reduced to lowest
// terms, unless that makes the total exceed maxTotalWeight; then each weight is rounded to its
// share of maxTotalWeight (at least 1), which puts each upstream's share off by at most about
// 0.1 percentage point.
func spreadWeights(backends []AppliedBackend) {
	type slot struct{ backend, n int } // n upstreams of backends[backend]
	var slots []slot
	var sumW float64
	lcm := 1
	for i, b := range backends {
		if b.Weight <= 0 {
			continue
		}
		n := max(len(b.Endpoints), 1)
		slots = append(slots, slot{i, n})
		sumW += float64(b.Weight)
		if lcm <= math.MaxInt32 {
			lcm = lcm / gcd(lcm, n) * n
		}
	}
	exact := make([]int, len(slots)) // per upstream of each slot
	total, g := 0, 0
	if lcm <= math.MaxInt32 {
		for k, s := range slots {
			exact[k] = int(backends[s.backend].Weight) * (lcm / s.n)
			g = gcd(g, exact[k])
		}
		for k, s := range slots {
			exact[k] /= g
			total += exact[k] * s.n
		}
	}
	for k, s := range slots {
		w := exact[k]
		if lcm > math.MaxInt32 || total > maxTotalWeight {
			share := float64(backends[s.backend].Weight) / sumW / float64(s.n)
			w = max(1, int(math.Round(share*maxTotalWeight)))
		}
		b := &backends[s.backend]
		if len(b.Endpoints) == 0 {
			b.Unavailable = w
			continue
		}
		for e := range b.Endpoints {
			b.Endpoints[e].Weight = w
		}
	}
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// hostPort joins a loopback port to 127.0.0.1.
func hostPort(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
