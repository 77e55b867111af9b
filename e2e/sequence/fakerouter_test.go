package sequence_test

import (
	"context"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/providers/catalogtest"
	"github.com/sluice-dev/sluice/providers/routers"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// splitRouter is a router that exists only in this test: it keeps the canary's weight in a
// ConfigMap `<route>-split`. It is registered in one place (registry, below) and from there
// admission (webhook.Decide), the planner, the analysis and the worker's applier all know it.
type splitRouter struct{ objs routers.Objects }

const splitRouterName = "split"

var splitInfo = spec.RouterInfo{
	Name: splitRouterName,
	Kinds: []spec.RouteKind{{Kind: "configmap", Capability: spec.Capability{
		Strategies: []spec.Strategy{spec.StrategyCanary},
	}}},
	Queries: spec.Queries{SuccessRate: "vector(99.9)", Duration: "vector(120)", Requests: "vector(1000)"},
	RBAC: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"},
		Verbs: []string{"get", "list", "watch", "create", "update", "delete"}}},
}

// registry is the routers the harness's worker and admission know: what the binary ships plus
// splitRouter.
func registry() *routers.Registry {
	r := catalogtest.Routers()
	r.Register(splitInfo, func(objs routers.Objects) routers.Router { return splitRouter{objs} })
	return r
}

func (s splitRouter) key(t routers.Target) types.NamespacedName {
	return types.NamespacedName{Namespace: t.Namespace, Name: t.Route + "-split"}
}

func (s splitRouter) Apply(ctx context.Context, t routers.Target, r routers.Routing) error {
	cm := &corev1.ConfigMap{}
	err := s.objs.Client.Get(ctx, s.key(t), cm)
	want := map[string]string{"weight": strconv.Itoa(r.Weight)}
	switch {
	case apierrors.IsNotFound(err):
		cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: t.Namespace, Name: s.key(t).Name,
			Labels: map[string]string{routers.LabelManagedBy: routers.ManagedBy}}, Data: want}
		return s.objs.Client.Create(ctx, cm)
	case err != nil:
		return err
	case cm.Data["weight"] == want["weight"]:
		return nil
	}
	cm.Data = want
	return s.objs.Client.Update(ctx, cm)
}

func (s splitRouter) Reset(ctx context.Context, t routers.Target) error {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: t.Namespace, Name: s.key(t).Name}}
	return client.IgnoreNotFound(s.objs.Client.Delete(ctx, cm))
}

func (s splitRouter) Current(ctx context.Context, t routers.Target) (routers.Observed, error) {
	cm := &corev1.ConfigMap{}
	if err := s.objs.Client.Get(ctx, s.key(t), cm); err != nil {
		return routers.Observed{}, client.IgnoreNotFound(err)
	}
	w, err := strconv.Atoi(cm.Data["weight"])
	if err != nil {
		return routers.Observed{}, fmt.Errorf("ConfigMap %s: weight: %w", s.key(t), err)
	}
	return routers.Observed{Managed: true, Weight: w}, nil
}
