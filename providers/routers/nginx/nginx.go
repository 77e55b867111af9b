// Package nginx splits traffic through ingress-nginx's canary Ingress: a second Ingress for the
// same hosts and paths, marked `nginx.ingress.kubernetes.io/canary: "true"`, whose backends
// ingress-nginx merges into the main Ingress's as an alternative upstream taking a weight and,
// first, the requests matching a header or cookie.
//
// Field ownership: the user's Ingress (`sluice.dev/route`) is read, never written. Sluice owns the
// whole Ingress `<route>-canary` (labelled managed-by sluice, owned by the Deployment): a copy of
// the user's ingressClassName, TLS and the rules and paths whose backend is the Service, each
// sent to `<svc>-canary` on the same port (rules, paths and a default backend for other
// Services are left out); the canary annotations; and the user's `kubernetes.io/ingress.class`
// and the annotations ingress-nginx reads from a canary Ingress rather than inheriting from the
// main one (load-balance, upstream-hash-by, session affinity). Reset deletes it, so outside a
// release only the user's Ingress exists and a GitOps tool sees no drift at any time.
//
// What ingress-nginx can express: a weight out of `canary-weight-total: 100`; one header by
// exact value (`canary-by-header` + `canary-by-header-value`) or by regular expression
// (`canary-by-header-pattern`); one cookie (`canary-by-cookie`), which sends a request to the
// canary when its value is "always". Header and cookie are independent rules (either one sends
// the request to the canary), not both at once as in one Sluice match. The controller's
// annotation prefix is assumed to be the default, nginx.ingress.kubernetes.io.
package nginx

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/sluice-dev/sluice/providers/routers"
)

// Ingress is the kind served.
var Ingress = schema.GroupVersionKind{Group: "networking.k8s.io", Version: "v1", Kind: "Ingress"}

// ingress-nginx canary annotations.
const (
	prefix                = "nginx.ingress.kubernetes.io/"
	AnnCanary             = prefix + "canary"
	AnnCanaryWeight       = prefix + "canary-weight"
	AnnCanaryWeightTotal  = prefix + "canary-weight-total"
	AnnCanaryByHeader     = prefix + "canary-by-header"
	AnnCanaryByHeaderVal  = prefix + "canary-by-header-value"
	AnnCanaryByHeaderPatt = prefix + "canary-by-header-pattern"
	AnnCanaryByCookie     = prefix + "canary-by-cookie"

	// annIngressClass is the legacy class annotation; a canary must carry the class of the
	// Ingress it shadows, whichever way the user wrote it.
	annIngressClass = "kubernetes.io/ingress.class"
)

// copied reports whether the canary Ingress keeps the user's annotation key: ingress-nginx
// ignores a canary Ingress's other annotations (it inherits them from the main Ingress) but
// reads these from the canary itself.
func copied(key string) bool {
	if key == annIngressClass {
		return true
	}
	name, ok := strings.CutPrefix(key, prefix)
	if !ok || strings.HasPrefix(name, "canary") {
		return false
	}
	return name == "load-balance" || strings.HasPrefix(name, "upstream-hash-by") ||
		strings.HasPrefix(name, "affinity") || strings.HasPrefix(name, "session-cookie-")
}

// CanaryName names the canary Ingress Sluice owns for the user's Ingress route.
func CanaryName(route string) string { return route + "-canary" }

// Router drives ingress-nginx canary Ingresses.
type Router struct {
	Objects routers.Objects
}

var _ routers.Router = Router{}

// Apply implements routers.Router. It reads the user's Ingress and creates or updates the canary
// Ingress; it never writes the user's.
func (r Router) Apply(ctx context.Context, t routers.Target, want routers.Routing) error {
	user, found, err := r.Objects.Get(ctx, Ingress, t.Namespace, t.Route)
	if err != nil {
		return err
	}
	if !found {
		return &routers.ErrNotFound{Kind: Ingress.Kind, Namespace: t.Namespace, Name: t.Route}
	}
	canary, err := Canary(user.Object, t, want)
	if err != nil {
		return fmt.Errorf("Ingress %s/%s: %w", t.Namespace, t.Route, err)
	}
	return r.Objects.Ensure(ctx, canary)
}

// Reset implements routers.Router: it deletes the canary Ingress.
func (r Router) Reset(ctx context.Context, t routers.Target) error {
	return r.Objects.Delete(ctx, Ingress, t.Namespace, CanaryName(t.Route))
}

// Current implements routers.Router: it reads the canary Ingress's annotations.
func (r Router) Current(ctx context.Context, t routers.Target) (routers.Observed, error) {
	canary, found, err := r.Objects.Get(ctx, Ingress, t.Namespace, CanaryName(t.Route))
	if err != nil || !found {
		return routers.Observed{}, err
	}
	return Observe(canary), nil
}

// Canary is the canary Ingress for the user's Ingress (its content) sending want's traffic to
// the canary. It is a pure function: user is not modified.
func Canary(user map[string]any, t routers.Target, want routers.Routing) (*unstructured.Unstructured, error) {
	ann, err := annotations(want)
	if err != nil {
		return nil, err
	}
	var u unstructured.Unstructured
	u.Object = user
	for k, v := range u.GetAnnotations() {
		if copied(k) {
			ann[k] = v
		}
	}

	spec := map[string]any{}
	for _, field := range []string{"ingressClassName", "tls"} {
		if v, ok, _ := unstructured.NestedFieldCopy(user, "spec", field); ok {
			spec[field] = v
		}
	}
	defaultBackend := false
	if b, ok, _ := unstructured.NestedMap(user, "spec", "defaultBackend"); ok && refersTo(b, t) {
		spec["defaultBackend"] = toCanary(b, t)
		defaultBackend = true
	}
	var rules []map[string]any
	for _, rule := range routers.Maps(user, "spec", "rules") {
		rule = routers.Copy(rule)
		if _, ok := rule["http"]; !ok {
			if defaultBackend {
				rules = append(rules, rule)
			}
			continue
		}
		var paths []map[string]any
		for _, p := range routers.Maps(rule, "http", "paths") {
			if b, ok := p["backend"].(map[string]any); ok && refersTo(b, t) {
				p["backend"] = toCanary(b, t)
				paths = append(paths, p)
			}
		}
		if len(paths) == 0 {
			continue
		}
		routers.SetMaps(rule, paths, "http", "paths")
		rules = append(rules, rule)
	}
	if len(rules) == 0 && !defaultBackend {
		return nil, fmt.Errorf("no rule or default backend sends traffic to Service %s; add a path for it", t.Service)
	}
	if len(rules) > 0 {
		routers.SetMaps(spec, rules, "rules")
	}

	canary := routers.New(Ingress, t, CanaryName(t.Route))
	canary.SetAnnotations(ann)
	canary.Object["spec"] = spec
	return canary, nil
}

// annotations are the canary annotations for want.
func annotations(want routers.Routing) (map[string]string, error) {
	if want.Mirror > 0 {
		return nil, fmt.Errorf("the nginx router cannot mirror requests")
	}
	ann := map[string]string{
		AnnCanary:            "true",
		AnnCanaryWeight:      strconv.Itoa(want.Weight),
		AnnCanaryWeightTotal: "100",
	}
	if len(want.Matches) > 1 {
		return nil, fmt.Errorf("the nginx router can route by one match only, got %d", len(want.Matches))
	}
	for _, m := range want.Matches {
		if len(m.QueryParams) > 0 {
			return nil, fmt.Errorf("the nginx router cannot match query parameters")
		}
		if len(m.Headers) > 1 || len(m.Cookies) > 1 {
			return nil, fmt.Errorf("the nginx router can route by one header and/or one cookie only")
		}
		for name, sm := range m.Headers {
			ann[AnnCanaryByHeader] = name
			switch sm.Kind() {
			case "exact":
				ann[AnnCanaryByHeaderVal] = sm.Exact
			case "regex":
				ann[AnnCanaryByHeaderPatt] = sm.Regex
			default:
				return nil, fmt.Errorf("the nginx router can match header %s by exact value or regular expression only", name)
			}
		}
		for name, sm := range m.Cookies {
			if sm.Kind() != "exact" || sm.Exact != "always" {
				return nil, fmt.Errorf(`ingress-nginx routes cookie %s to the canary when its value is "always"; match it with exact: always`, name)
			}
			ann[AnnCanaryByCookie] = name
		}
	}
	return ann, nil
}

// Observe reads back what a canary Ingress sets.
func Observe(canary *unstructured.Unstructured) routers.Observed {
	ann := canary.GetAnnotations()
	if !routers.Owned(canary) || ann[AnnCanary] != "true" {
		return routers.Observed{}
	}
	o := routers.Observed{Managed: true}
	weight, _ := strconv.Atoi(ann[AnnCanaryWeight])
	total := 100
	if v, err := strconv.Atoi(ann[AnnCanaryWeightTotal]); err == nil && v > 0 {
		total = v
	}
	o.Weight = (weight*100 + total/2) / total
	for _, k := range []string{AnnCanaryByHeader, AnnCanaryByCookie} {
		if ann[k] != "" {
			o.MatchRules++
		}
	}
	return o
}

// refersTo reports whether an Ingress backend is the Service.
func refersTo(b map[string]any, t routers.Target) bool {
	return routers.Str(b, "service", "name") == t.Service
}

// toCanary is a copy of backend b sent to the canary Service on the same port.
func toCanary(b map[string]any, t routers.Target) map[string]any {
	c := routers.Copy(b)
	_ = unstructured.SetNestedField(c, t.Canary(), "service", "name")
	return c
}
