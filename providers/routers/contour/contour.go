// Package contour splits traffic through a Contour HTTPProxy (projectcontour.io/v1): weighted
// services `<svc>-stable` and `<svc>-canary` in the routes that send to the Service, and A/B
// routes placed before them.
//
// Field ownership: Sluice manages only the `spec.routes` whose services include the Service (or
// its -stable/-canary Services; a `mirror: true` entry is the user's and never counts). In
// those routes it owns the services entries for those Services: their port and per-service
// fields (header policies, protocol, health port, validation …) are the user's and kept, the
// weights are Sluice's. Other services in the route keep their weights: the Service's own weight
// is the share Sluice splits. Sluice also owns the routes it adds for A/B matching. HTTPProxy
// routes have no name, so those carry a marker that survives the API server and changes no
// matching: a `requestHeadersPolicy.set` entry `x-sluice-route: ab` (the canary sees that header
// on A/B requests, which also tells it why the request came). The virtual host, includes, other
// routes, conditions and policies of the user's routes are never written. Outside a release the
// managed routes send to the Service again as written, so a GitOps tool sees drift only while a
// release runs.
//
// Contour matches headers by exact value here and query parameters by exact value, prefix or
// regular expression (what admission lets through for this router); it cannot mirror a share of
// requests, and Sluice never creates an HTTPProxy: it needs the user's virtual host.
package contour

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/sluice-dev/sluice/providers/routers"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// HTTPProxy is the kind served.
var HTTPProxy = schema.GroupVersionKind{Group: "projectcontour.io", Version: "v1", Kind: "HTTPProxy"}

// The request header that marks the routes Sluice adds.
const (
	MarkerHeader = "x-sluice-route"
	MarkerValue  = "ab"
)

// Router drives HTTPProxies.
type Router struct {
	Objects routers.Objects
}

var _ routers.Router = Router{}

// Apply implements routers.Router.
func (r Router) Apply(ctx context.Context, t routers.Target, want routers.Routing) error {
	proxy, found, err := r.Objects.Get(ctx, HTTPProxy, t.Namespace, t.Route)
	if err != nil {
		return err
	}
	if !found {
		return &routers.ErrNotFound{Kind: HTTPProxy.Kind, Namespace: t.Namespace, Name: t.Route}
	}
	return r.Objects.Edit(ctx, proxy, func(u *unstructured.Unstructured) error { return Set(u.Object, t, want) })
}

// Reset implements routers.Router.
func (r Router) Reset(ctx context.Context, t routers.Target) error {
	proxy, found, err := r.Objects.Get(ctx, HTTPProxy, t.Namespace, t.Route)
	if err != nil || !found {
		return err
	}
	return r.Objects.Edit(ctx, proxy, func(u *unstructured.Unstructured) error { Unset(u.Object, t); return nil })
}

// Current implements routers.Router.
func (r Router) Current(ctx context.Context, t routers.Target) (routers.Observed, error) {
	proxy, found, err := r.Objects.Get(ctx, HTTPProxy, t.Namespace, t.Route)
	if err != nil || !found {
		return routers.Observed{}, err
	}
	return Observe(proxy.Object, t), nil
}

// Set rewrites the managed routes of proxy (an HTTPProxy's content) to split traffic as want
// says. It is a pure function of proxy and want.
func Set(proxy map[string]any, t routers.Target, want routers.Routing) error {
	if want.Mirror > 0 {
		return fmt.Errorf("the contour router cannot mirror a share of requests")
	}
	n, err := routers.Rules(proxy, proxyRoutes, isOurs, func(r map[string]any) bool { return managed(r, t) },
		func(route map[string]any, at int) ([]map[string]any, error) {
			var out []map[string]any
			for _, m := range want.Matches {
				ab, err := abRoute(route, t, m)
				if err != nil {
					return nil, fmt.Errorf("route %d: %w", at+len(out), err)
				}
				out = append(out, ab)
			}
			if err := setServices(route, t, want.Weight); err != nil {
				return nil, fmt.Errorf("route %d: %w", at+len(out), err)
			}
			return append(out, route), nil
		})
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("no route sends traffic to Service %s (or %s/%s); add it to a route's services", t.Service, t.Stable(), t.Canary())
	}
	return nil
}

// proxyRoutes is where an HTTPProxy keeps its routes.
var proxyRoutes = []string{"spec", "routes"}

// Unset puts every managed route back to sending everything to the Service, and drops the routes
// Sluice added.
func Unset(proxy map[string]any, t routers.Target) {
	_, _ = routers.Rules(proxy, proxyRoutes, isOurs, func(r map[string]any) bool { return managed(r, t) },
		func(route map[string]any, _ int) ([]map[string]any, error) {
			ours, share, multi := services(route, t)
			base := ours[0]
			base["name"] = t.Service
			if multi {
				base["weight"] = share
			} else {
				delete(base, "weight")
			}
			route["services"] = routers.Replace(routers.Maps(route, "services"), func(s map[string]any) bool { return refersTo(s, t) }, base)
			return []map[string]any{route}, nil
		})
}

// Observe reads back the split of the first managed route.
func Observe(proxy map[string]any, t routers.Target) routers.Observed {
	var o routers.Observed
	for _, route := range routers.Maps(proxy, "spec", "routes") {
		if isOurs(route) {
			o.MatchRules++
			continue
		}
		if o.Managed || !managed(route, t) {
			continue
		}
		var stable, canary int64
		for _, s := range routers.Maps(route, "services") {
			w, _ := routers.Int(s, "weight")
			switch {
			case refersTo(s, t, t.Stable()):
				stable += w
			case refersTo(s, t, t.Canary()):
				canary += w
			}
		}
		if stable+canary == 0 {
			continue
		}
		o.Managed = true
		o.Weight = int((canary*100 + (stable+canary)/2) / (stable + canary))
	}
	return o
}

func isOurs(route map[string]any) bool {
	return slices.ContainsFunc(routers.Maps(route, "requestHeadersPolicy", "set"), func(h map[string]any) bool {
		return strings.EqualFold(routers.Str(h, "name"), MarkerHeader) && routers.Str(h, "value") == MarkerValue
	})
}

func managed(route map[string]any, t routers.Target) bool {
	if isOurs(route) {
		return false
	}
	return slices.ContainsFunc(routers.Maps(route, "services"), func(s map[string]any) bool { return refersTo(s, t) })
}

// refersTo reports whether a services entry sends traffic to one of names (the Service and its
// -stable/-canary Services when names is empty). A mirror entry sends none.
func refersTo(s map[string]any, t routers.Target, names ...string) bool {
	if mirror, _, _ := unstructured.NestedBool(s, "mirror"); mirror {
		return false
	}
	if len(names) == 0 {
		names = []string{t.Service, t.Stable(), t.Canary()}
	}
	return slices.Contains(names, routers.Str(s, "name"))
}

// services returns copies of the route's entries for the Service and its -stable/-canary
// Services, the weight they share, and whether the route also sends to other Services: the
// share is 100 for a route sending only to the Service, else the weight the user gave the
// Service among the others.
func services(route map[string]any, t routers.Target) (ours []map[string]any, share int64, multi bool) {
	for _, s := range routers.Maps(route, "services") {
		if mirror, _, _ := unstructured.NestedBool(s, "mirror"); mirror {
			continue
		}
		if !refersTo(s, t) {
			multi = true
			continue
		}
		ours = append(ours, routers.Copy(s))
		w, _ := routers.Int(s, "weight")
		share += w
	}
	if !multi {
		share = 100
	}
	return ours, share, multi
}

func setServices(route map[string]any, t routers.Target, weight int) error {
	ours, share, multi := services(route, t)
	if multi && share == 0 {
		return fmt.Errorf("the route sends to %s and to other Services without giving %s a weight; give it the share it should have", t.Service, t.Service)
	}
	canaryWeight := (share*int64(weight) + 50) / 100
	stable, canary := routers.Copy(ours[0]), routers.Copy(ours[0])
	stable["name"], stable["weight"] = t.Stable(), share-canaryWeight
	canary["name"], canary["weight"] = t.Canary(), canaryWeight
	route["services"] = routers.Replace(routers.Maps(route, "services"), func(s map[string]any) bool { return refersTo(s, t) }, stable, canary)
	return nil
}

// abRoute is a copy of a managed route that only requests matching m (on top of the route's own
// conditions) take, sending them all to the canary.
func abRoute(route map[string]any, t routers.Target, m spec.Match) (map[string]any, error) {
	ab := routers.Copy(route)
	conditions := routers.Maps(route, "conditions")
	add, err := conditionsOf(m)
	if err != nil {
		return nil, err
	}
	for _, c := range add {
		if clash := clashing(conditions, c); clash != "" {
			return nil, fmt.Errorf("the route already has a condition on %s; Sluice cannot add its own", clash)
		}
	}
	ab["conditions"] = routers.List(append(conditions, add...))
	ours, _, _ := services(route, t)
	canary := ours[0]
	canary["name"] = t.Canary()
	delete(canary, "weight")
	ab["services"] = []any{canary}
	set := append(routers.Maps(ab, "requestHeadersPolicy", "set"), map[string]any{"name": MarkerHeader, "value": MarkerValue})
	routers.SetMaps(ab, set, "requestHeadersPolicy", "set")
	return ab, nil
}

// clashing names the header or query parameter c tests that one of conditions already tests.
func clashing(conditions []map[string]any, c map[string]any) string {
	for _, kind := range []string{"header", "queryParameter"} {
		name := routers.Str(c, kind, "name")
		if name == "" {
			continue
		}
		for _, have := range conditions {
			if strings.EqualFold(routers.Str(have, kind, "name"), name) {
				return kind + " " + name
			}
		}
	}
	return ""
}

// conditionsOf turns a match into Contour match conditions: headers by exact value, query
// parameters by exact value, prefix or regular expression.
func conditionsOf(m spec.Match) ([]map[string]any, error) {
	if len(m.Cookies) > 0 {
		return nil, fmt.Errorf("the contour router cannot match cookies")
	}
	var out []map[string]any
	for _, k := range slices.Sorted(maps.Keys(m.Headers)) {
		sm := m.Headers[k]
		if sm.Kind() != "exact" {
			return nil, fmt.Errorf("the contour router can match headers by exact value only, header %s has %s", k, sm.Kind())
		}
		out = append(out, map[string]any{"header": map[string]any{"name": k, "exact": sm.Exact}})
	}
	for _, k := range slices.Sorted(maps.Keys(m.QueryParams)) {
		sm := m.QueryParams[k]
		out = append(out, map[string]any{"queryParameter": map[string]any{"name": k, sm.Kind(): sm.Value()}})
	}
	return out, nil
}
