// Package routers moves live traffic between a Deployment's stable and canary pods through the
// routing object a user already runs (an HTTPRoute, a VirtualService, an Ingress …). Each router
// lives in a sub-package and implements Router; all of them are idempotent: applying the same
// Routing twice writes nothing the second time, so a step re-run after a controller restart
// leaves the same objects.
//
// Traffic is split between two Sluice-owned Services, `<svc>-stable` (pinned to the stable
// ReplicaSet's pod-template-hash) and `<svc>-canary`; the reconciler keeps those, routers only
// point at them. When no release is in flight a router puts the user's object back the way the
// user wrote it (Reset), so GitOps sees drift only while a release runs.
package routers

import (
	"context"
	"fmt"
	"slices"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// Target is what a router manages for one Deployment.
type Target struct {
	Namespace string
	// Service is the user's Service in front of the Deployment; Port is its port number.
	Service string
	Port    int32
	// Route names the routing object; Kind is its lower-case kind ("httproute" …), empty for
	// the router's default kind (the first of its spec.RouterInfo.Kinds).
	Route, Kind string
	// Owner owns the objects a router creates (the parent Deployment), so they are
	// garbage-collected with it.
	Owner metav1.OwnerReference
	// StableSelector and CanarySelector are the selectors of the two Services (for routers
	// that select pods themselves, such as App Mesh's VirtualNodes).
	StableSelector map[string]string `json:",omitempty"`
	CanarySelector map[string]string `json:",omitempty"`
	// Create lets the router create a Sluice-owned routing object when Route does not exist
	// (the user named none); otherwise a missing object is an *ErrNotFound.
	Create bool
}

// Stable is the Service selecting only the stable pods.
func (t Target) Stable() string { return spec.StableServiceName(t.Service) }

// Canary is the Service selecting only the canary pods.
func (t Target) Canary() string { return spec.CanaryServiceName(t.Service) }

// OwnedServices is the RBAC rule every router needs for the Services Sluice owns around an
// isolated canary, `<svc>-stable` and `<svc>-canary` (the worker keeps them: created, pinned,
// released from their finalizer, deleted).
var OwnedServices = rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: VerbsOwn}

// Verbs of the RBAC rules on routing objects: VerbsOwn for a kind Sluice also creates (and
// deletes) objects of, VerbsEdit for one it only reads and edits. Reads go through the informer
// cache (list, watch); writes are updates, never patches.
var (
	VerbsOwn  = []string{"get", "list", "watch", "create", "update", "delete"}
	VerbsEdit = []string{"get", "list", "watch", "update"}
)

// Routing is the traffic a router must send to the canary.
type Routing = spec.Routing

// Router drives one kind of routing object.
type Router interface {
	// Apply makes the routing object split traffic as r says. It writes only when the object
	// differs, and touches only what it manages: the rules that send traffic to the Service.
	Apply(ctx context.Context, t Target, r Routing) error
	// Reset puts the routing object back the way the user wrote it (every managed rule sends
	// everything to the Service again) and deletes the routing objects Sluice created.
	Reset(ctx context.Context, t Target) error
	// Current reads back what the routing object sets now.
	Current(ctx context.Context, t Target) (Observed, error)
}

// ErrNotFound wraps a routing object that does not exist when the user named it.
type ErrNotFound struct{ Kind, Namespace, Name string }

func (e *ErrNotFound) Error() string {
	return fmt.Sprintf("%s %s/%s not found", e.Kind, e.Namespace, e.Name)
}

// Observed is what a routing object sets now, as read back by Current.
type Observed struct {
	// Managed is false when no rule points at the stable and canary Services (the object is as
	// the user wrote it, or missing).
	Managed bool
	Weight  int
	Mirror  int
	// MatchRules counts the rules Sluice added to send matching requests to the canary.
	MatchRules int
	// Sticky: the canary's responses set the session-affinity cookie.
	Sticky bool
}

// CanaryMatches are the matches whose requests go to the canary whatever the weights: the A/B
// matches and, with session affinity, requests carrying the release's session cookie.
func CanaryMatches(r Routing) []spec.Match {
	if r.Sticky == nil {
		return r.Matches
	}
	return append(slices.Clone(r.Matches), r.Sticky.Match())
}
