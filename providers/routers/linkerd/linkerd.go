// Package linkerd splits traffic for Linkerd in one of two ways, chosen by the route kind
// (`sluice.dev/route: httproute/<name>` or `trafficsplit/<name>`):
//
//   - httproute (default): current Linkerd routes meshed traffic by Gateway API HTTPRoutes
//     attached to the Service (GAMMA), so the Gateway API router does the work, with its field
//     ownership. Linkerd cannot mirror requests; A/B matches work as for any HTTPRoute.
//   - trafficsplit: Linkerd's SMI extension (linkerd-smi) turns an SMI TrafficSplit into the
//     Service's ServiceProfile overrides. Sluice owns the whole TrafficSplit, named after the
//     Service unless the user names one: apex `<svc>`, backends `<svc>-stable` and
//     `<svc>-canary` with integer weights adding up to 100. Reset deletes it, so outside a
//     release nothing of Sluice's is left. Weights only: no matches, no mirror.
//
// The TrafficSplit is written as split.smi-spec.io/v1alpha2, the version linkerd-smi serves with
// integer weights (next to v1alpha1, its storage version, with quantities; the two convert
// without a webhook). The SMI SDK's later v1alpha3/v1alpha4 are not served by Linkerd.
package linkerd

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/sluice-dev/sluice/providers/routers"
	"github.com/sluice-dev/sluice/providers/routers/gatewayapi"
)

// TrafficSplit is the SMI kind served for route kind "trafficsplit".
var TrafficSplit = schema.GroupVersionKind{Group: "split.smi-spec.io", Version: "v1alpha2", Kind: "TrafficSplit"}

// Route kinds.
const (
	KindHTTPRoute    = "httproute"
	KindTrafficSplit = "trafficsplit"
)

// Router drives Linkerd's HTTPRoutes (through the Gateway API router) or Sluice's TrafficSplit.
type Router struct {
	Objects routers.Objects
}

var _ routers.Router = Router{}

func kindOf(t routers.Target) (string, error) {
	switch t.Kind {
	case "", KindHTTPRoute:
		return KindHTTPRoute, nil
	case KindTrafficSplit:
		return KindTrafficSplit, nil
	}
	return "", fmt.Errorf("the linkerd router manages %s or %s objects, not %q", KindHTTPRoute, KindTrafficSplit, t.Kind)
}

// Apply implements routers.Router.
func (r Router) Apply(ctx context.Context, t routers.Target, want routers.Routing) error {
	kind, err := kindOf(t)
	if err != nil {
		return err
	}
	if want.Mirror > 0 {
		return fmt.Errorf("the linkerd router cannot mirror requests")
	}
	if kind == KindHTTPRoute {
		return gatewayapi.Router{Objects: r.Objects}.Apply(ctx, t, want)
	}
	split, err := Split(t, want)
	if err != nil {
		return err
	}
	return r.Objects.Ensure(ctx, split)
}

// Reset implements routers.Router.
func (r Router) Reset(ctx context.Context, t routers.Target) error {
	kind, err := kindOf(t)
	if err != nil {
		return err
	}
	if kind == KindHTTPRoute {
		return gatewayapi.Router{Objects: r.Objects}.Reset(ctx, t)
	}
	return r.Objects.Delete(ctx, TrafficSplit, t.Namespace, SplitName(t))
}

// Current implements routers.Router.
func (r Router) Current(ctx context.Context, t routers.Target) (routers.Observed, error) {
	kind, err := kindOf(t)
	if err != nil {
		return routers.Observed{}, err
	}
	if kind == KindHTTPRoute {
		return gatewayapi.Router{Objects: r.Objects}.Current(ctx, t)
	}
	split, found, err := r.Objects.Get(ctx, TrafficSplit, t.Namespace, SplitName(t))
	if err != nil || !found {
		return routers.Observed{}, err
	}
	return Observe(split, t), nil
}

// SplitName names Sluice's TrafficSplit: the route the user named, else the Service.
func SplitName(t routers.Target) string {
	if t.Create || t.Route == "" {
		return t.Service
	}
	return t.Route
}

// Split is the TrafficSplit sending want.Weight percent of the Service's traffic to the canary.
func Split(t routers.Target, want routers.Routing) (*unstructured.Unstructured, error) {
	if len(want.Matches) > 0 || want.Mirror > 0 {
		return nil, fmt.Errorf("the linkerd router (%s) can split traffic by weight only (no matches, no mirror)", KindTrafficSplit)
	}
	u := routers.New(TrafficSplit, t, SplitName(t))
	u.Object["spec"] = map[string]any{
		"service": t.Service,
		"backends": []any{
			map[string]any{"service": t.Stable(), "weight": int64(100 - want.Weight)},
			map[string]any{"service": t.Canary(), "weight": int64(want.Weight)},
		},
	}
	return u, nil
}

// Observe reads back what a TrafficSplit of Sluice's sets.
func Observe(split *unstructured.Unstructured, t routers.Target) routers.Observed {
	if !routers.Owned(split) || routers.Str(split.Object, "spec", "service") != t.Service {
		return routers.Observed{}
	}
	var stable, canary int64
	for _, b := range routers.Maps(split.Object, "spec", "backends") {
		w, _ := routers.Int(b, "weight")
		switch routers.Str(b, "service") {
		case t.Stable():
			stable += w
		case t.Canary():
			canary += w
		}
	}
	if stable+canary == 0 {
		return routers.Observed{}
	}
	return routers.Observed{Managed: true, Weight: int((canary*100 + (stable+canary)/2) / (stable + canary))}
}
