package spec

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
)

// RouterInfo describes one router: what a Deployment may ask of it, the builtin queries that
// measure a release through it, and the permissions it needs. Each router declares its own in
// its package (providers/routers/<name>), cmd/sluice registers it, and admission (Parse),
// analysis (the builtin checks) and the router factory all read that one value.
type RouterInfo struct {
	// Name is the value of sluice.dev/router.
	Name string
	// Kinds are the kinds of routing object the router manages, its default first, each with
	// what the router can do through it. A router that manages no routing object (replicas)
	// has one entry with an empty Kind.
	Kinds []RouteKind
	// Queries are the builtin checks' queries for releases through the router.
	Queries Queries
	// RBAC are the rules the controller needs for releases through the router: the routing
	// objects it reads and writes, and the Services Sluice owns for an isolated canary. The
	// Helm chart and the kustomize base must grant them (e2e/install checks).
	RBAC []rbacv1.PolicyRule
}

// RouteKind is one kind of routing object and what a router can do through it.
type RouteKind struct {
	// Kind is the lower-case kind as written in sluice.dev/route ("httproute"); empty for a
	// router that manages no routing object.
	Kind string
	Capability
}

// Comparisons a match may use (StringMatch.Kind).
var Comparisons = []string{"exact", "prefix", "regex"}

// Capability is what a router can do with one kind of routing object.
type Capability struct {
	// Strategies are the release strategies it can run.
	Strategies []Strategy
	// Headers, Cookies and QueryParams are the comparisons (Comparisons) by which it can match
	// each field of an A/B match; none means it cannot match that field.
	Headers, Cookies, QueryParams []string
	// SingleMatch: at most one match, with at most one header and one cookie (ingress-nginx).
	SingleMatch bool
	// CookieValue, when set, is the only value a cookie match may test exactly, and
	// CookieValueWhy says why (ingress-nginx sends a request to the canary when its cookie
	// reads "always").
	CookieValue, CookieValueWhy string
	// Sticky: cookie session affinity (a response header on the canary's backend and a cookie
	// match).
	Sticky bool
}

// Queries are a router's builtin queries (PromQL, with the {{ variables }} of rollout/analysis),
// each over the series its data plane emits for the canary.
type Queries struct {
	// SuccessRate is the percent of requests that did not fail (CheckSuccessRate); Duration the
	// p99 latency in milliseconds (CheckDuration); Requests the requests served in the window
	// (minRequests).
	SuccessRate, Duration, Requests string
	// StableSuccessRate and StableDuration are the stable side of compareTo: stable, for a
	// router whose series name the `<svc>-canary` Service rather than the canary Deployment
	// (rendering with {{ canary }} set to the stable Deployment would still select the canary).
	// Empty: the canary's queries serve both sides.
	StableSuccessRate, StableDuration string
}

// Validate reports what makes the description unusable; a registry refuses such a router.
func (i RouterInfo) Validate() error {
	var errs []error
	if !validName(i.Name) {
		errs = append(errs, fmt.Errorf("name %q must be a DNS-1035 label", i.Name))
	}
	if len(i.Kinds) == 0 {
		errs = append(errs, errors.New("no kinds: a router that manages no routing object has one kind with an empty name"))
	}
	var seen []string
	for _, k := range i.Kinds {
		switch {
		case k.Kind == "" && len(i.Kinds) > 1:
			errs = append(errs, errors.New("an empty kind (no routing object) must be the only one"))
		case k.Kind != strings.ToLower(k.Kind) || slices.Contains(seen, k.Kind):
			errs = append(errs, fmt.Errorf("kind %q must be lower case and listed once", k.Kind))
		}
		seen = append(seen, k.Kind)
		if len(k.Strategies) == 0 {
			errs = append(errs, fmt.Errorf("kind %q: no strategies", k.Kind))
		}
		for _, s := range k.Strategies {
			if !slices.Contains([]Strategy{StrategyCanary, StrategyBlueGreen, StrategyAB, StrategyMirror}, s) {
				errs = append(errs, fmt.Errorf("kind %q: unknown strategy %q", k.Kind, s))
			}
		}
		for _, c := range slices.Concat(k.Headers, k.Cookies, k.QueryParams) {
			if !slices.Contains(Comparisons, c) {
				errs = append(errs, fmt.Errorf("kind %q: unknown comparison %q", k.Kind, c))
			}
		}
	}
	if i.Queries.SuccessRate == "" || i.Queries.Duration == "" || i.Queries.Requests == "" {
		errs = append(errs, errors.New("the builtin checks need SuccessRate, Duration and Requests queries"))
	}
	for _, r := range i.RBAC {
		if len(r.Verbs) == 0 || len(r.Resources) == 0 {
			errs = append(errs, fmt.Errorf("RBAC rule %v needs verbs and resources", r))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("router %q: %w", i.Name, err)
	}
	return nil
}

// Kind returns the routing-object kind a configuration asks for: kind, or the router's default
// for "". ok is false when the router does not manage that kind.
func (i RouterInfo) Kind(kind string) (k RouteKind, ok bool) {
	if len(i.Kinds) == 0 {
		return RouteKind{}, false
	}
	if kind == "" {
		return i.Kinds[0], true
	}
	for _, k := range i.Kinds {
		if k.Kind == kind {
			return k, true
		}
	}
	return RouteKind{}, false
}

// kindNames are the router's routing-object kinds, none for a router that manages none.
func (i RouterInfo) kindNames() []string {
	var names []string
	for _, k := range i.Kinds {
		if k.Kind != "" {
			names = append(names, k.Kind)
		}
	}
	return names
}

// Routers is the catalog of the routers a controller offers, in the order they were
// registered; Parse refuses every other name.
type Routers []RouterInfo

// Lookup finds the router called name.
func (rs Routers) Lookup(name string) (RouterInfo, bool) {
	for _, r := range rs {
		if r.Name == name {
			return r, true
		}
	}
	return RouterInfo{}, false
}

// Names lists the routers' names in catalog order.
func (rs Routers) Names() []string {
	names := make([]string, len(rs))
	for i, r := range rs {
		names[i] = r.Name
	}
	return names
}

// unknown is admission's message for a router not in the catalog.
func (rs Routers) unknown() string {
	if len(rs) == 0 {
		return "no router is registered in this controller"
	}
	return "must be one of " + strings.Join(rs.Names(), ", ")
}
