// Package istio splits traffic through an Istio VirtualService (networking.istio.io/v1):
// weighted destinations `<svc>-stable` and `<svc>-canary`, A/B routes placed before the managed
// routes, and a mirror to `<svc>-canary`.
//
// Stable and canary are two Kubernetes Services, not subsets of one, so no DestinationRule is
// needed (or written): the VirtualService's weights alone split the traffic. A traffic policy a
// user's DestinationRule sets for host `<svc>` (TLS mode, connection pool, outlier detection)
// does not apply to the two Sluice Services; copy it for `<svc>-stable` and `<svc>-canary` if it
// matters. A destination naming a subset is refused for the same reason.
//
// Field ownership: Sluice manages only the `spec.http` routes with a destination whose host is
// the Service (`<svc>`, `<svc>.<ns>`, `<svc>.<ns>.svc` or `<svc>.<ns>.svc.<cluster domain>`) or
// its -stable/-canary Services, and writes them in the same host form. In those routes it owns
// the destinations to those Services (their port and per-destination headers are the user's and
// kept), a `mirror` to `<svc>-canary` with its `mirrorPercentage` (or, when the user already
// lists `mirrors`, an entry there), and the routes it adds, named `sluice-ab-<n>`. Other routes,
// other destinations (they keep their weights: the Service's own weight is what Sluice splits),
// matches, retries, timeouts, rewrites, the user's own mirror, hosts, gateways, and the `tcp` and
// `tls` sections are never written. Outside a release the managed routes send to the Service
// again as written, so a GitOps tool sees drift only while a release runs.
//
// Limits: a weight the user wrote on a lone destination to the Service (`weight: 100`) is not
// kept by Reset (a lone destination needs none); a managed route that already has a `mirror` to
// another host cannot also mirror to the canary (list both under `mirrors` instead).
package istio

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

// VirtualService is the kind served; v1 is the storage version of Istio's CRD (v1alpha3 and
// v1beta1 are served too and convert without loss).
var VirtualService = schema.GroupVersionKind{Group: "networking.istio.io", Version: "v1", Kind: "VirtualService"}

// RoutePrefix names the http routes Sluice adds.
const RoutePrefix = "sluice-ab-"

// Router drives VirtualServices.
type Router struct {
	Objects routers.Objects
}

var _ routers.Router = Router{}

// Apply implements routers.Router.
func (r Router) Apply(ctx context.Context, t routers.Target, want routers.Routing) error {
	vs, found, err := r.Objects.Get(ctx, VirtualService, t.Namespace, t.Route)
	if err != nil {
		return err
	}
	if !found {
		if !t.Create {
			return &routers.ErrNotFound{Kind: VirtualService.Kind, Namespace: t.Namespace, Name: t.Route}
		}
		owned := Owned(t)
		if err := Set(owned.Object, t, want); err != nil {
			return err
		}
		return r.Objects.Ensure(ctx, owned)
	}
	return r.Objects.Edit(ctx, vs, func(u *unstructured.Unstructured) error { return Set(u.Object, t, want) })
}

// Reset implements routers.Router.
func (r Router) Reset(ctx context.Context, t routers.Target) error {
	vs, found, err := r.Objects.Get(ctx, VirtualService, t.Namespace, t.Route)
	if err != nil || !found {
		return err
	}
	if routers.Owned(vs) {
		return r.Objects.Delete(ctx, VirtualService, t.Namespace, t.Route)
	}
	return r.Objects.Edit(ctx, vs, func(u *unstructured.Unstructured) error { Unset(u.Object, t); return nil })
}

// Current implements routers.Router.
func (r Router) Current(ctx context.Context, t routers.Target) (routers.Observed, error) {
	vs, found, err := r.Objects.Get(ctx, VirtualService, t.Namespace, t.Route)
	if err != nil || !found {
		return routers.Observed{}, err
	}
	return Observe(vs.Object, t), nil
}

// Owned is the VirtualService Sluice creates when the user names none: mesh-internal (no
// gateways) for the Service's short name, sending everything to it.
func Owned(t routers.Target) *unstructured.Unstructured {
	u := routers.New(VirtualService, t, t.Route)
	u.Object["spec"] = map[string]any{
		"hosts": []any{t.Service},
		"http": []any{map[string]any{"route": []any{map[string]any{
			"destination": map[string]any{"host": t.Service, "port": map[string]any{"number": int64(t.Port)}},
		}}}},
	}
	return u
}

// Set rewrites the managed http routes of vs (a VirtualService's content) to split traffic as
// want says. It is a pure function of vs and want.
func Set(vs map[string]any, t routers.Target, want routers.Routing) error {
	n, err := routers.Rules(vs, httpRoutes, isOurs, func(h map[string]any) bool { return managed(h, t) },
		func(h map[string]any, at int) ([]map[string]any, error) {
			var out []map[string]any
			if ms := routers.CanaryMatches(want); len(ms) > 0 {
				ab, err := abRoute(h, t, ms, at)
				if err != nil {
					return nil, fmt.Errorf("http route %s: %w", routeName(h, at), err)
				}
				out = append(out, ab)
			}
			if err := setDestinations(h, t, want.Weight, want.Sticky); err != nil {
				return nil, fmt.Errorf("http route %s: %w", routeName(h, at+len(out)), err)
			}
			if err := setMirror(h, t, want.Mirror); err != nil {
				return nil, fmt.Errorf("http route %s: %w", routeName(h, at+len(out)), err)
			}
			return append(out, h), nil
		})
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("no http route sends traffic to host %s (or %s/%s); add a destination to it", t.Service, t.Stable(), t.Canary())
	}
	return nil
}

// httpRoutes is where a VirtualService keeps its HTTP routes.
var httpRoutes = []string{"spec", "http"}

// Unset puts every managed route back to sending everything to the Service, and drops the routes
// Sluice added.
func Unset(vs map[string]any, t routers.Target) {
	_, _ = routers.Rules(vs, httpRoutes, isOurs, func(h map[string]any) bool { return managed(h, t) },
		func(h map[string]any, _ int) ([]map[string]any, error) {
			ours, share, multi := destinations(h, t)
			base := routers.Copy(ours[0])
			setHost(base, t, t.Service)
			if multi {
				base["weight"] = share
			} else {
				delete(base, "weight")
			}
			h["route"] = routers.Replace(routers.Maps(h, "route"), func(d map[string]any) bool { return refersTo(d, t) }, base)
			_ = setMirror(h, t, 0)
			return []map[string]any{h}, nil
		})
}

// Observe reads back the split of the first managed route.
func Observe(vs map[string]any, t routers.Target) routers.Observed {
	var o routers.Observed
	for _, h := range routers.Maps(vs, "spec", "http") {
		if isOurs(h) {
			o.MatchRules++
			continue
		}
		if o.Managed || !managed(h, t) {
			continue
		}
		dests := routers.Maps(h, "route")
		var stable, canary int64
		for _, d := range dests {
			w, ok := routers.Int(d, "weight")
			if !ok && len(dests) == 1 {
				w = 100
			}
			switch {
			case refersTo(d, t, t.Stable()):
				stable += w
			case refersTo(d, t, t.Canary()):
				canary += w
				_, sets, _ := unstructured.NestedString(d, "headers", "response", "add", setCookie)
				o.Sticky = o.Sticky || sets
			}
		}
		if stable+canary == 0 {
			continue
		}
		o.Managed = true
		o.Weight = int((canary*100 + (stable+canary)/2) / (stable + canary))
		if m, ok := h["mirror"].(map[string]any); ok && hostRefersTo(routers.Str(m, "host"), t, t.Canary()) {
			o.Mirror = percentOf(h["mirrorPercentage"])
		}
		for _, m := range routers.Maps(h, "mirrors") {
			if hostRefersTo(routers.Str(m, "destination", "host"), t, t.Canary()) {
				o.Mirror = percentOf(m["percentage"])
			}
		}
	}
	return o
}

// percentOf reads a Percent message ({value: p}); absent means everything.
func percentOf(v any) int {
	m, ok := v.(map[string]any)
	if !ok {
		return 100
	}
	switch p := m["value"].(type) {
	case float64:
		return int(p + 0.5)
	case int64:
		return int(p)
	case int:
		return p
	}
	return 100
}

// setCookie is the response header that carries the session cookie.
const setCookie = "Set-Cookie"

func isOurs(h map[string]any) bool { return strings.HasPrefix(routers.Str(h, "name"), RoutePrefix) }

func routeName(h map[string]any, index int) string {
	if name := routers.Str(h, "name"); name != "" {
		return name
	}
	return fmt.Sprintf("#%d", index)
}

func managed(h map[string]any, t routers.Target) bool {
	if isOurs(h) {
		return false
	}
	return slices.ContainsFunc(routers.Maps(h, "route"), func(d map[string]any) bool { return refersTo(d, t) })
}

// splitHost splits a destination host into the Service name it names and the suffix that makes
// it longer (".<ns>", ".<ns>.svc", ".<ns>.svc.<domain>" or ""); ok is false for a host outside
// the namespace or not naming a Service (an external host, a wildcard).
func splitHost(host, namespace string) (name, suffix string, ok bool) {
	name, rest, dotted := strings.Cut(host, ".")
	if !dotted {
		return host, "", host != ""
	}
	suffix = "." + rest
	switch {
	case rest == namespace, rest == namespace+".svc":
		return name, suffix, true
	case strings.HasPrefix(rest, namespace+".svc.") && len(rest) > len(namespace+".svc."):
		return name, suffix, true
	}
	return "", "", false
}

// hostRefersTo reports whether host names one of names (all of the Service and its -stable and
// -canary Services when names is empty) in the target's namespace.
func hostRefersTo(host string, t routers.Target, names ...string) bool {
	if len(names) == 0 {
		names = []string{t.Service, t.Stable(), t.Canary()}
	}
	name, _, ok := splitHost(host, t.Namespace)
	return ok && slices.Contains(names, name)
}

// refersTo reports whether a route destination's host names one of names (see hostRefersTo).
func refersTo(d map[string]any, t routers.Target, names ...string) bool {
	return hostRefersTo(routers.Str(d, "destination", "host"), t, names...)
}

// setHost points a route destination (or mirror destination) at Service name, keeping the
// host's form.
func setHost(d map[string]any, t routers.Target, name string) {
	dest, _ := d["destination"].(map[string]any)
	if dest == nil {
		dest = d
	}
	_, suffix, _ := splitHost(routers.Str(dest, "host"), t.Namespace)
	dest["host"] = name + suffix
}

// destinations returns copies of the route's destinations to the Service and its -stable/-canary
// Services, the weight they share, and whether the route also sends to other destinations. The
// share is 100 for a route sending only to the Service; otherwise it is the weight the user gave
// the Service among the others (Istio wants a route's weights to add up to 100), which Sluice
// splits and Unset gives back.
func destinations(h map[string]any, t routers.Target) (ours []map[string]any, share int64, multi bool) {
	for _, d := range routers.Maps(h, "route") {
		if !refersTo(d, t) {
			multi = true
			continue
		}
		ours = append(ours, routers.Copy(d))
		w, _ := routers.Int(d, "weight")
		share += w
	}
	if !multi {
		share = 100
	}
	return ours, share, multi
}

func setDestinations(h map[string]any, t routers.Target, weight int, sticky *spec.Sticky) error {
	ours, share, multi := destinations(h, t)
	if multi && share == 0 {
		return fmt.Errorf("the destination to %s has weight 0 next to other destinations; give it the share it should have", t.Service)
	}
	base := ours[0]
	if subset := routers.Str(base, "destination", "subset"); subset != "" {
		return fmt.Errorf("the destination to %s names subset %q; Sluice splits between the Services %s and %s, which have no subsets: remove the subset",
			t.Service, subset, t.Stable(), t.Canary())
	}
	canaryWeight := (share*int64(weight) + 50) / 100
	stable, canary := routers.Copy(base), routers.Copy(base)
	setHost(stable, t, t.Stable())
	setHost(canary, t, t.Canary())
	stable["weight"], canary["weight"] = share-canaryWeight, canaryWeight
	if sticky != nil {
		// The user's own response headers of the destination stay; Set-Cookie is Sluice's.
		add, _, _ := unstructured.NestedMap(canary, "headers", "response", "add")
		if add == nil {
			add = map[string]any{}
		}
		add[setCookie] = sticky.SetCookie()
		if err := unstructured.SetNestedMap(canary, add, "headers", "response", "add"); err != nil {
			return err
		}
	}
	h["route"] = routers.Replace(routers.Maps(h, "route"), func(d map[string]any) bool { return refersTo(d, t) }, stable, canary)
	return nil
}

// setMirror removes Sluice's mirror to the canary from the route and, when percent > 0, adds it
// back: as the route's `mirror` with `mirrorPercentage`, or as an entry of `mirrors` when the
// user mirrors elsewhere through that list.
func setMirror(h map[string]any, t routers.Target, percent int) error {
	if m, ok := h["mirror"].(map[string]any); ok && hostRefersTo(routers.Str(m, "host"), t, t.Canary()) {
		delete(h, "mirror")
		delete(h, "mirrorPercentage")
	}
	var mirrors []map[string]any
	for _, m := range routers.Maps(h, "mirrors") {
		if !hostRefersTo(routers.Str(m, "destination", "host"), t, t.Canary()) {
			mirrors = append(mirrors, m)
		}
	}
	if percent > 0 {
		ours, _, _ := destinations(h, t)
		dest := map[string]any{"host": t.Canary()}
		if len(ours) > 0 {
			dest = routers.Copy(ours[0]["destination"].(map[string]any))
			delete(dest, "subset")
			setHost(dest, t, t.Canary())
		}
		pct := map[string]any{"value": int64(percent)}
		switch {
		case len(mirrors) > 0:
			mirrors = append(mirrors, map[string]any{"destination": dest, "percentage": pct})
		case h["mirror"] != nil:
			return fmt.Errorf("the route already mirrors to %s and Istio allows one mirror; list it under mirrors instead and Sluice adds %s there",
				routers.Str(h, "mirror", "host"), t.Canary())
		default:
			h["mirror"], h["mirrorPercentage"] = dest, pct
		}
	}
	if len(mirrors) == 0 {
		delete(h, "mirrors")
		return nil
	}
	h["mirrors"] = routers.List(mirrors)
	return nil
}

// abRoute is a copy of a managed route that only requests matching one of ms (on top of the
// route's own matches) take, sending them all to the canary.
func abRoute(h map[string]any, t routers.Target, ms []spec.Match, index int) (map[string]any, error) {
	ab := routers.Copy(h)
	ab["name"] = fmt.Sprintf("%s%d", RoutePrefix, index)
	userMatches := routers.Maps(h, "match")
	if len(userMatches) == 0 {
		userMatches = []map[string]any{{}}
	}
	var matches []map[string]any
	for _, um := range userMatches {
		for _, m := range ms {
			c, err := merge(um, m)
			if err != nil {
				return nil, err
			}
			matches = append(matches, c)
		}
	}
	ab["match"] = routers.List(matches)
	ours, _, _ := destinations(ab, t)
	canary := ours[0]
	setHost(canary, t, t.Canary())
	delete(canary, "weight")
	ab["route"] = []any{canary}
	if err := setMirror(ab, t, 0); err != nil {
		return nil, err
	}
	return ab, nil
}

// merge is the user's match um narrowed by Sluice's match m.
func merge(um map[string]any, m spec.Match) (map[string]any, error) {
	c := routers.Copy(um)
	headers := map[string]any{}
	for _, k := range slices.Sorted(maps.Keys(m.Headers)) {
		headers[strings.ToLower(k)] = stringMatch(m.Headers[k], false)
	}
	if len(m.Cookies) > 0 {
		re, err := routers.CookieRegex(m.Cookies)
		if err != nil {
			return nil, err
		}
		headers["cookie"] = map[string]any{"regex": re}
	}
	query := map[string]any{}
	for _, k := range slices.Sorted(maps.Keys(m.QueryParams)) {
		query[k] = stringMatch(m.QueryParams[k], true)
	}
	for _, set := range []struct {
		field string
		add   map[string]any
	}{{"headers", headers}, {"queryParams", query}} {
		if len(set.add) == 0 {
			continue
		}
		have, _ := c[set.field].(map[string]any)
		if have == nil {
			have = map[string]any{}
		}
		for k, v := range set.add {
			if _, ok := have[k]; ok {
				return nil, fmt.Errorf("the route already matches %s %q; Sluice cannot add its own condition on it", set.field, k)
			}
			have[k] = v
		}
		c[set.field] = have
	}
	return c, nil
}

// stringMatch is Istio's StringMatch for sm. Istio matches query parameters by exact value or
// regular expression only, so a prefix becomes a regular expression there.
func stringMatch(sm spec.StringMatch, query bool) map[string]any {
	switch sm.Kind() {
	case "exact":
		return map[string]any{"exact": sm.Exact}
	case "prefix":
		if query {
			return map[string]any{"regex": regexp.QuoteMeta(sm.Prefix) + ".*"}
		}
		return map[string]any{"prefix": sm.Prefix}
	}
	return map[string]any{"regex": sm.Regex}
}
