// Package appmesh splits traffic through an AWS App Mesh VirtualRouter (appmesh.k8s.aws/v1beta2):
// weighted targets naming the virtual nodes `<svc>-stable` and `<svc>-canary`, which Sluice also
// owns (EnsureNodes). App Mesh is end-of-life upstream; this router does weights only (canary and
// blue/green releases), no A/B matching and no mirroring.
//
// Field ownership: Sluice manages only the routes of the VirtualRouter (`sluice.dev/route`) whose
// action has a weighted target naming the virtual node `<svc>` (or `<svc>-stable`/`<svc>-canary`)
// in the router's namespace, for HTTP, HTTP/2, gRPC and TCP routes alike. In those routes it owns
// the weighted targets for those nodes: their port and namespace are the user's and kept, the
// weights are Sluice's. Other targets keep their weights: the node's own weight is the share
// Sluice splits. App Mesh requires a weight on every target, so Sluice records the weight the
// user gave the node in the annotation `sluice.dev/appmesh-weights` while a release runs and
// Reset puts it back exactly. Listeners, matches, priorities, retry policies and timeouts are
// never written.
//
// Sluice owns the VirtualNodes `<svc>-stable` and `<svc>-canary` entirely: copies of the user's
// VirtualNode `<svc>` (listeners, backends, logging, mesh …) selecting the stable and canary
// pods and discovered through the DNS names of the Services `<svc>-stable` and `<svc>-canary`.
// EnsureNodes writes them before the first Apply (App Mesh will not route to a node that does not
// exist) and Reset deletes them.
package appmesh

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/sluice-dev/sluice/providers/routers"
)

// Kinds served.
var (
	VirtualRouter = schema.GroupVersionKind{Group: "appmesh.k8s.aws", Version: "v1beta2", Kind: "VirtualRouter"}
	VirtualNode   = schema.GroupVersionKind{Group: "appmesh.k8s.aws", Version: "v1beta2", Kind: "VirtualNode"}
)

// AnnUserWeights records, on a VirtualRouter Sluice manages, the weight the user gave the
// Service's virtual node in each managed route (JSON: route name → weight).
const AnnUserWeights = "sluice.dev/appmesh-weights"

// routeTypes are the route fields of a VirtualRouter route; each has action.weightedTargets.
var routeTypes = []string{"httpRoute", "http2Route", "grpcRoute", "tcpRoute"}

// clusterDomain is the DNS domain of Services when the user's VirtualNode does not show another.
const clusterDomain = "cluster.local"

// Router drives VirtualRouters and the two VirtualNodes Sluice owns.
type Router struct {
	Objects routers.Objects
}

var _ routers.Router = Router{}

// Apply implements routers.Router: the VirtualNodes of the target's selectors first, then the
// VirtualRouter's weights.
func (r Router) Apply(ctx context.Context, t routers.Target, want routers.Routing) error {
	vr, found, err := r.Objects.Get(ctx, VirtualRouter, t.Namespace, t.Route)
	if err != nil {
		return err
	}
	if !found {
		return &routers.ErrNotFound{Kind: VirtualRouter.Kind, Namespace: t.Namespace, Name: t.Route}
	}
	if t.StableSelector == nil || t.CanarySelector == nil {
		return fmt.Errorf("App Mesh needs the selectors of %s and %s for their VirtualNodes", t.Stable(), t.Canary())
	}
	if err := r.EnsureNodes(ctx, t, t.StableSelector, t.CanarySelector); err != nil {
		return err
	}
	return r.Objects.Edit(ctx, vr, func(u *unstructured.Unstructured) error { return Set(u.Object, t, want) })
}

// Reset implements routers.Router: the VirtualRouter sends to `<svc>` again and the two Sluice
// VirtualNodes are deleted.
func (r Router) Reset(ctx context.Context, t routers.Target) error {
	vr, found, err := r.Objects.Get(ctx, VirtualRouter, t.Namespace, t.Route)
	if err != nil {
		return err
	}
	if found {
		if err := r.Objects.Edit(ctx, vr, func(u *unstructured.Unstructured) error { Unset(u.Object, t); return nil }); err != nil {
			return err
		}
	}
	for _, name := range []string{t.Stable(), t.Canary()} {
		if err := r.Objects.Delete(ctx, VirtualNode, t.Namespace, name); err != nil {
			return err
		}
	}
	return nil
}

// Current implements routers.Router.
func (r Router) Current(ctx context.Context, t routers.Target) (routers.Observed, error) {
	vr, found, err := r.Objects.Get(ctx, VirtualRouter, t.Namespace, t.Route)
	if err != nil || !found {
		return routers.Observed{}, err
	}
	return Observe(vr.Object, t), nil
}

// EnsureNodes creates or updates the VirtualNodes `<svc>-stable` and `<svc>-canary`, selecting
// the pods that stableSelector and canarySelector match (the selectors of the Services of the
// same names).
func (r Router) EnsureNodes(ctx context.Context, t routers.Target, stableSelector, canarySelector map[string]string) error {
	user, found, err := r.Objects.Get(ctx, VirtualNode, t.Namespace, t.Service)
	if err != nil {
		return err
	}
	var userSpec map[string]any
	if found {
		userSpec, _, _ = unstructured.NestedMap(user.Object, "spec")
	}
	for _, n := range []struct {
		name     string
		selector map[string]string
	}{{t.Stable(), stableSelector}, {t.Canary(), canarySelector}} {
		if err := r.Objects.Ensure(ctx, Node(userSpec, t, n.name, n.selector)); err != nil {
			return err
		}
	}
	return nil
}

// Node is the VirtualNode name (`<svc>-stable` or `<svc>-canary`) Sluice owns: a copy of the
// user's VirtualNode spec (nil when the user has none: one HTTP listener on the Service's port)
// selecting the pods selector matches and discovered through the DNS name of Service name. The
// user's awsName is dropped so App Mesh names the copy after it (names are unique in a mesh).
func Node(userSpec map[string]any, t routers.Target, name string, selector map[string]string) *unstructured.Unstructured {
	s := map[string]any{
		"listeners": []any{map[string]any{"portMapping": map[string]any{"port": int64(t.Port), "protocol": "http"}}},
	}
	if userSpec != nil {
		s = routers.Copy(userSpec)
	}
	delete(s, "awsName")
	labels := map[string]any{}
	for k, v := range selector {
		labels[k] = v
	}
	s["podSelector"] = map[string]any{"matchLabels": labels}
	domain := clusterDomain
	if h := routers.Str(s, "serviceDiscovery", "dns", "hostname"); h != "" {
		if _, d, ok := strings.Cut(h, "."+t.Namespace+".svc."); ok && d != "" {
			domain = d
		}
	}
	dns, _, _ := unstructured.NestedMap(s, "serviceDiscovery", "dns")
	if dns == nil {
		dns = map[string]any{}
	}
	dns["hostname"] = name + "." + t.Namespace + ".svc." + domain
	s["serviceDiscovery"] = map[string]any{"dns": dns}

	u := routers.New(VirtualNode, t, name)
	u.Object["spec"] = s
	return u
}

// Set rewrites the managed routes of vr (a VirtualRouter's content) to split traffic as want
// says. It is a pure function of vr and want.
func Set(vr map[string]any, t routers.Target, want routers.Routing) error {
	if want.Mirror > 0 || len(want.Matches) > 0 {
		return fmt.Errorf("the appmesh router can split traffic by weight only (no matches, no mirror)")
	}
	recorded := userWeights(vr)
	record := map[string]int64{}
	routes := routers.Maps(vr, "spec", "routes")
	n := 0
	for i, route := range routes {
		for _, typ := range routeTypes {
			action, ok := route[typ].(map[string]any)
			if !ok || !managed(action, t) {
				continue
			}
			n++
			key := routeKey(route, i)
			ours, share, multi := targets(action, t)
			if refersTo(ours[0], t, t.Service) {
				if w, ok := routers.Int(ours[0], "weight"); ok {
					record[key] = w
				}
			} else if w, ok := recorded[key]; ok {
				record[key] = w
			}
			if multi && share == 0 {
				return fmt.Errorf("route %s: the target %s has weight 0 next to other targets; give it the share it should have", key, t.Service)
			}
			canaryWeight := (share*int64(want.Weight) + 50) / 100
			stable, canary := routers.Copy(ours[0]), routers.Copy(ours[0])
			setNode(stable, t.Stable())
			setNode(canary, t.Canary())
			stable["weight"], canary["weight"] = share-canaryWeight, canaryWeight
			setTargets(action, t, stable, canary)
		}
	}
	if n == 0 {
		return fmt.Errorf("no route sends traffic to virtual node %s (or %s/%s); add a weighted target for it", t.Service, t.Stable(), t.Canary())
	}
	routers.SetMaps(vr, routes, "spec", "routes")
	setUserWeights(vr, record)
	return nil
}

// Unset puts every managed route back to sending to the virtual node `<svc>` with the weight
// the user gave it.
func Unset(vr map[string]any, t routers.Target) {
	recorded := userWeights(vr)
	routes := routers.Maps(vr, "spec", "routes")
	for i, route := range routes {
		for _, typ := range routeTypes {
			action, ok := route[typ].(map[string]any)
			if !ok || !managed(action, t) {
				continue
			}
			ours, _, _ := targets(action, t)
			base := ours[0]
			var sum int64
			for _, o := range ours {
				w, _ := routers.Int(o, "weight")
				sum += w
			}
			base["weight"] = sum
			if w, ok := recorded[routeKey(route, i)]; ok {
				base["weight"] = w
			}
			setNode(base, t.Service)
			setTargets(action, t, base)
		}
	}
	if len(routes) > 0 {
		routers.SetMaps(vr, routes, "spec", "routes")
	}
	setUserWeights(vr, nil)
}

// Observe reads back the split of the first managed route.
func Observe(vr map[string]any, t routers.Target) routers.Observed {
	for _, route := range routers.Maps(vr, "spec", "routes") {
		for _, typ := range routeTypes {
			action, ok := route[typ].(map[string]any)
			if !ok {
				continue
			}
			var stable, canary int64
			for _, w := range routers.Maps(action, "action", "weightedTargets") {
				weight, _ := routers.Int(w, "weight")
				switch {
				case refersTo(w, t, t.Stable()):
					stable += weight
				case refersTo(w, t, t.Canary()):
					canary += weight
				}
			}
			if stable+canary > 0 {
				return routers.Observed{Managed: true, Weight: int((canary*100 + (stable+canary)/2) / (stable + canary))}
			}
		}
	}
	return routers.Observed{}
}

func routeKey(route map[string]any, index int) string {
	if name := routers.Str(route, "name"); name != "" {
		return name
	}
	return fmt.Sprintf("#%d", index)
}

// refersTo reports whether a weighted target names one of the virtual nodes names (the Service's
// and its -stable/-canary ones when names is empty) in the router's namespace.
func refersTo(w map[string]any, t routers.Target, names ...string) bool {
	if ns := routers.Str(w, "virtualNodeRef", "namespace"); ns != "" && ns != t.Namespace {
		return false
	}
	if len(names) == 0 {
		names = []string{t.Service, t.Stable(), t.Canary()}
	}
	return slices.Contains(names, routers.Str(w, "virtualNodeRef", "name"))
}

func managed(action map[string]any, t routers.Target) bool {
	return slices.ContainsFunc(routers.Maps(action, "action", "weightedTargets"), func(w map[string]any) bool { return refersTo(w, t) })
}

func setNode(w map[string]any, name string) {
	_ = unstructured.SetNestedField(w, name, "virtualNodeRef", "name")
}

// targets returns copies of the action's targets for the Service's virtual node and its
// -stable/-canary ones, the weight they share, and whether the action also has other targets:
// the share is 100 for an action with no other target, else the weight the user gave the node.
func targets(action map[string]any, t routers.Target) (ours []map[string]any, share int64, multi bool) {
	for _, w := range routers.Maps(action, "action", "weightedTargets") {
		if !refersTo(w, t) {
			multi = true
			continue
		}
		ours = append(ours, routers.Copy(w))
		weight, _ := routers.Int(w, "weight")
		share += weight
	}
	if !multi {
		share = 100
	}
	return ours, share, multi
}

// setTargets puts with in place of the first of the action's targets for the Service's nodes and
// drops the others, so targets keep the order the user wrote.
func setTargets(action map[string]any, t routers.Target, with ...map[string]any) {
	var out []map[string]any
	done := false
	for _, w := range routers.Maps(action, "action", "weightedTargets") {
		if !refersTo(w, t) {
			out = append(out, w)
			continue
		}
		if !done {
			out = append(out, with...)
			done = true
		}
	}
	routers.SetMaps(action, out, "action", "weightedTargets")
}

func userWeights(vr map[string]any) map[string]int64 {
	u := unstructured.Unstructured{Object: vr}
	var m map[string]int64
	_ = json.Unmarshal([]byte(u.GetAnnotations()[AnnUserWeights]), &m)
	return m
}

func setUserWeights(vr map[string]any, m map[string]int64) {
	u := unstructured.Unstructured{Object: vr}
	ann := maps.Clone(u.GetAnnotations())
	if len(m) == 0 {
		delete(ann, AnnUserWeights)
	} else {
		if ann == nil {
			ann = map[string]string{}
		}
		raw, _ := json.Marshal(m)
		ann[AnnUserWeights] = string(raw)
	}
	if len(ann) == 0 {
		unstructured.RemoveNestedField(vr, "metadata", "annotations")
		if md, ok := vr["metadata"].(map[string]any); ok && len(md) == 0 {
			delete(vr, "metadata")
		}
		return
	}
	u.SetAnnotations(ann)
}
