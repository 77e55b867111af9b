// Package gatewayapi splits traffic through a Gateway API HTTPRoute or GRPCRoute
// (gateway.networking.k8s.io/v1): weights on the backendRefs of `<svc>-stable` and
// `<svc>-canary`, A/B rules placed before the managed rules, and a RequestMirror filter.
//
// Field ownership: Sluice manages only the rules whose backendRefs point at the Service (or at
// its -stable/-canary Services). In those rules it owns the backendRefs to those Services and
// a RequestMirror filter pointing at `<svc>-canary`; it also owns the rules it adds, named
// `sluice-ab-<n>`. Everything else (other rules, matches, the user's own filters, timeouts,
// parentRefs, hostnames) is never written. Outside a release the managed rules point at the
// Service again exactly as written, so a GitOps tool sees drift only while a release runs (or
// can ignore `spec.rules[*].backendRefs` of this route).
package gatewayapi

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/sluice-dev/sluice/providers/routers"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// Kinds served.
var (
	HTTPRoute = schema.GroupVersionKind{Group: "gateway.networking.k8s.io", Version: "v1", Kind: "HTTPRoute"}
	GRPCRoute = schema.GroupVersionKind{Group: "gateway.networking.k8s.io", Version: "v1", Kind: "GRPCRoute"}
)

// RulePrefix names the rules Sluice adds.
const RulePrefix = "sluice-ab-"

// Router drives HTTPRoutes and GRPCRoutes.
type Router struct {
	Objects routers.Objects
}

var _ routers.Router = Router{}

func gvkOf(t routers.Target) schema.GroupVersionKind {
	if t.Kind == "grpcroute" {
		return GRPCRoute
	}
	return HTTPRoute
}

// Apply implements routers.Router.
func (r Router) Apply(ctx context.Context, t routers.Target, want routers.Routing) error {
	gvk := gvkOf(t)
	route, found, err := r.Objects.Get(ctx, gvk, t.Namespace, t.Route)
	if err != nil {
		return err
	}
	if !found {
		if !t.Create {
			return &routers.ErrNotFound{Kind: gvk.Kind, Namespace: t.Namespace, Name: t.Route}
		}
		owned := Owned(gvk, t)
		if err := Set(owned.Object, t, want); err != nil {
			return err
		}
		return r.Objects.Ensure(ctx, owned)
	}
	return r.Objects.Edit(ctx, route, func(u *unstructured.Unstructured) error { return Set(u.Object, t, want) })
}

// Reset implements routers.Router.
func (r Router) Reset(ctx context.Context, t routers.Target) error {
	gvk := gvkOf(t)
	route, found, err := r.Objects.Get(ctx, gvk, t.Namespace, t.Route)
	if err != nil || !found {
		return err
	}
	if routers.Owned(route) {
		return r.Objects.Delete(ctx, gvk, t.Namespace, t.Route)
	}
	return r.Objects.Edit(ctx, route, func(u *unstructured.Unstructured) error { Unset(u.Object, t); return nil })
}

// Current implements routers.Router.
func (r Router) Current(ctx context.Context, t routers.Target) (routers.Observed, error) {
	route, found, err := r.Objects.Get(ctx, gvkOf(t), t.Namespace, t.Route)
	if err != nil || !found {
		return routers.Observed{}, err
	}
	return Observe(route.Object, t), nil
}

// Owned is the route Sluice creates when the user names none: a GAMMA (mesh) route attached to
// the Service itself, sending everything to it.
func Owned(gvk schema.GroupVersionKind, t routers.Target) *unstructured.Unstructured {
	u := routers.New(gvk, t, t.Route)
	u.Object["spec"] = map[string]any{
		"parentRefs": []any{map[string]any{"group": "", "kind": "Service", "name": t.Service, "port": int64(t.Port)}},
		"rules":      []any{map[string]any{"backendRefs": []any{backendRef(t.Service, t.Port)}}},
	}
	return u
}

func backendRef(name string, port int32) map[string]any {
	return map[string]any{"name": name, "port": int64(port)}
}

// refersTo reports whether a backendRef (or mirror backendRef) points at one of names in the
// route's namespace.
func refersTo(ref map[string]any, t routers.Target, names ...string) bool {
	if g := routers.Str(ref, "group"); g != "" {
		return false
	}
	if k := routers.Str(ref, "kind"); k != "" && k != "Service" {
		return false
	}
	if ns := routers.Str(ref, "namespace"); ns != "" && ns != t.Namespace {
		return false
	}
	return slices.Contains(names, routers.Str(ref, "name"))
}

func managed(rule map[string]any, t routers.Target) bool {
	if isOurs(rule) {
		return false
	}
	for _, ref := range routers.Maps(rule, "backendRefs") {
		if refersTo(ref, t, t.Service, t.Stable(), t.Canary()) {
			return true
		}
	}
	return false
}

func isOurs(rule map[string]any) bool {
	return strings.HasPrefix(routers.Str(rule, "name"), RulePrefix)
}

// Set rewrites the managed rules of route (an HTTPRoute's or GRPCRoute's content) to split
// traffic as want says. It is a pure function of the route and want.
func Set(route map[string]any, t routers.Target, want routers.Routing) error {
	n, err := routers.Rules(route, routeRules, isOurs, func(r map[string]any) bool { return managed(r, t) },
		func(rule map[string]any, at int) ([]map[string]any, error) {
			var out []map[string]any
			if ms := routers.CanaryMatches(want); len(ms) > 0 {
				ab, err := abRule(rule, t, ms, at)
				if err != nil {
					return nil, err
				}
				out = append(out, ab)
			}
			setBackends(rule, t, want.Weight, want.Sticky)
			setMirror(rule, t, want.Mirror)
			return append(out, rule), nil
		})
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("no rule sends traffic to Service %s (or %s/%s); add a backendRef to it", t.Service, t.Stable(), t.Canary())
	}
	return nil
}

// routeRules is where an HTTPRoute or GRPCRoute keeps its rules.
var routeRules = []string{"spec", "rules"}

// Unset puts every managed rule back to sending everything to the Service, and drops the rules
// Sluice added.
func Unset(route map[string]any, t routers.Target) {
	_, _ = routers.Rules(route, routeRules, isOurs, func(r map[string]any) bool { return managed(r, t) },
		func(rule map[string]any, _ int) ([]map[string]any, error) {
			refs, base := splitRefs(rule, t)
			if base == nil {
				base = backendRef(t.Service, t.Port)
			}
			base["name"] = t.Service
			delete(base, "weight")
			rule["backendRefs"] = routers.List(append([]map[string]any{base}, refs...))
			setMirror(rule, t, 0)
			return []map[string]any{rule}, nil
		})
}

// Observe reads back the split of the first managed rule.
func Observe(route map[string]any, t routers.Target) routers.Observed {
	var o routers.Observed
	for _, rule := range routers.Maps(route, "spec", "rules") {
		if isOurs(rule) {
			o.MatchRules++
			continue
		}
		if o.Managed || !managed(rule, t) {
			continue
		}
		var stable, canary int64
		for _, ref := range routers.Maps(rule, "backendRefs") {
			w, ok := routers.Int(ref, "weight")
			if !ok {
				w = 1
			}
			switch {
			case refersTo(ref, t, t.Stable()):
				stable += w
			case refersTo(ref, t, t.Canary()):
				canary += w
				o.Sticky = o.Sticky || setsCookie(ref)
			}
		}
		if stable+canary == 0 {
			continue
		}
		o.Managed = true
		o.Weight = int(canary * 100 / (stable + canary))
		for _, f := range routers.Maps(rule, "filters") {
			if ref := mirrorRef(f); ref != nil && refersTo(ref, t, t.Canary()) {
				p, ok := routers.Int(f, "requestMirror", "percent")
				if !ok {
					p = 100
				}
				o.Mirror = int(p)
			}
		}
	}
	return o
}

// splitRefs removes the rule's references to the Service and its -stable/-canary Services and
// returns the remaining refs and a copy of the first removed one (the template for ours, so the
// user's per-backend filters and port carry over).
func splitRefs(rule map[string]any, t routers.Target) (rest []map[string]any, base map[string]any) {
	for _, ref := range routers.Maps(rule, "backendRefs") {
		if refersTo(ref, t, t.Service, t.Stable(), t.Canary()) {
			if base == nil {
				base = routers.Copy(ref)
			}
			continue
		}
		rest = append(rest, ref)
	}
	return rest, base
}

func setBackends(rule map[string]any, t routers.Target, weight int, sticky *spec.Sticky) {
	rest, base := splitRefs(rule, t)
	stable, canary := routers.Copy(base), routers.Copy(base)
	stable["name"], stable["weight"] = t.Stable(), int64(100-weight)
	canary["name"], canary["weight"] = t.Canary(), int64(weight)
	if sticky != nil {
		addSetCookie(canary, sticky.SetCookie())
	}
	rule["backendRefs"] = routers.List(append([]map[string]any{stable, canary}, rest...))
}

// addSetCookie adds the session cookie to the responses of a backendRef: an entry of its
// ResponseHeaderModifier filter (a filter type may appear once), added if it has none.
func addSetCookie(ref map[string]any, value string) {
	header := map[string]any{"name": "Set-Cookie", "value": value}
	filters := routers.Maps(ref, "filters")
	for _, f := range filters {
		if routers.Str(f, "type") == "ResponseHeaderModifier" {
			m, _, _ := unstructured.NestedMap(f, "responseHeaderModifier")
			if m == nil {
				m = map[string]any{}
			}
			m["add"] = routers.List(append(routers.Maps(m, "add"), header))
			f["responseHeaderModifier"] = m
			ref["filters"] = routers.List(filters)
			return
		}
	}
	filters = append(filters, map[string]any{"type": "ResponseHeaderModifier", "responseHeaderModifier": map[string]any{"add": []any{header}}})
	ref["filters"] = routers.List(filters)
}

// setsCookie reports whether a backendRef's responses get a Set-Cookie header.
func setsCookie(ref map[string]any) bool {
	for _, f := range routers.Maps(ref, "filters") {
		for _, h := range routers.Maps(f, "responseHeaderModifier", "add") {
			if strings.EqualFold(routers.Str(h, "name"), "Set-Cookie") {
				return true
			}
		}
	}
	return false
}

// mirrorRef is the backendRef of a RequestMirror filter, nil for other filters.
func mirrorRef(f map[string]any) map[string]any {
	if routers.Str(f, "type") != "RequestMirror" {
		return nil
	}
	ref, _, _ := unstructured.NestedMap(f, "requestMirror", "backendRef")
	return ref
}

func setMirror(rule map[string]any, t routers.Target, percent int) {
	var filters []map[string]any
	for _, f := range routers.Maps(rule, "filters") {
		if ref := mirrorRef(f); ref != nil && refersTo(ref, t, t.Canary()) {
			continue
		}
		filters = append(filters, f)
	}
	if percent > 0 {
		port := t.Port
		if _, base := splitRefs(routers.Copy(rule), t); base != nil {
			if p, ok := routers.Int(base, "port"); ok {
				port = int32(p)
			}
		}
		mirror := map[string]any{"backendRef": backendRef(t.Canary(), port)}
		if percent < 100 {
			mirror["percent"] = int64(percent)
		}
		filters = append(filters, map[string]any{"type": "RequestMirror", "requestMirror": mirror})
	}
	if len(filters) == 0 {
		delete(rule, "filters")
		return
	}
	rule["filters"] = routers.List(filters)
}

// abRule is a copy of a managed rule that only requests matching one of ms (on top of the
// rule's own matches) take, sending them all to the canary.
func abRule(rule map[string]any, t routers.Target, ms []spec.Match, index int) (map[string]any, error) {
	ab := routers.Copy(rule)
	ab["name"] = fmt.Sprintf("%s%d", RulePrefix, index)
	userMatches := routers.Maps(rule, "matches")
	if len(userMatches) == 0 {
		userMatches = []map[string]any{{}}
	}
	var matches []map[string]any
	for _, um := range userMatches {
		for _, m := range ms {
			c := routers.Copy(um)
			hs, err := headerMatches(m)
			if err != nil {
				return nil, err
			}
			c["headers"] = routers.List(append(routers.Maps(um, "headers"), hs...))
			if q := queryMatches(m); len(q) > 0 {
				c["queryParams"] = routers.List(append(routers.Maps(um, "queryParams"), q...))
			}
			matches = append(matches, c)
		}
	}
	ab["matches"] = routers.List(matches)
	_, base := splitRefs(ab, t)
	if base == nil {
		base = backendRef(t.Canary(), t.Port)
	}
	base["name"] = t.Canary()
	delete(base, "weight")
	ab["backendRefs"] = []any{base}
	setMirror(ab, t, 0)
	return ab, nil
}

// headerMatches are the header conditions of m; all of its cookies are tested by one regular
// expression on the Cookie header (a match may name a header once).
func headerMatches(m spec.Match) ([]map[string]any, error) {
	var out []map[string]any
	for _, k := range slices.Sorted(maps.Keys(m.Headers)) {
		out = append(out, stringMatch(k, m.Headers[k]))
	}
	if len(m.Cookies) > 0 {
		re, err := routers.CookieRegex(m.Cookies)
		if err != nil {
			return nil, err
		}
		out = append(out, map[string]any{"type": "RegularExpression", "name": "Cookie", "value": re})
	}
	return out, nil
}

func queryMatches(m spec.Match) []map[string]any {
	var out []map[string]any
	for _, k := range slices.Sorted(maps.Keys(m.QueryParams)) {
		out = append(out, stringMatch(k, m.QueryParams[k]))
	}
	return out
}

func stringMatch(name string, sm spec.StringMatch) map[string]any {
	switch sm.Kind() {
	case "exact":
		return map[string]any{"type": "Exact", "name": name, "value": sm.Exact}
	case "prefix":
		return map[string]any{"type": "RegularExpression", "name": name, "value": "^" + regexp.QuoteMeta(sm.Prefix) + ".*"}
	}
	return map[string]any{"type": "RegularExpression", "name": name, "value": sm.Regex}
}
