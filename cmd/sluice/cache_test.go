package main

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/providers/routers"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// The informer cache holds only what Sluice manages: a Deployment, Service or ReplicaSet that
// is not opted in costs the controller no memory (docs/benchmarks.md measures it with 10,000).
func TestCacheHoldsOnlyWhatSluiceManages(t *testing.T) {
	opts, err := cacheOptions(parse(t))
	if err != nil {
		t.Fatal(err)
	}
	selectorOf := func(obj client.Object) labels.Selector {
		for o, by := range opts.ByObject {
			switch obj.(type) {
			case *appsv1.Deployment:
				if _, ok := o.(*appsv1.Deployment); ok {
					return by.Label
				}
			case *corev1.Service:
				if _, ok := o.(*corev1.Service); ok {
					return by.Label
				}
			}
		}
		return nil
	}
	for name, tc := range map[string]struct {
		obj    client.Object
		labels labels.Set
		want   bool
	}{
		"opted-in Deployment":         {&appsv1.Deployment{}, labels.Set{spec.LabelEnabled: spec.ValueEnabled}, true},
		"canary Deployment":           {&appsv1.Deployment{}, labels.Set{spec.LabelEnabled: spec.ValueCanary}, true},
		"Deployment not opted in":     {&appsv1.Deployment{}, labels.Set{"app": "web"}, false},
		"Deployment opted out":        {&appsv1.Deployment{}, labels.Set{spec.LabelEnabled: "false"}, false},
		"Sluice's Service":            {&corev1.Service{}, labels.Set{routers.LabelManagedBy: routers.ManagedBy}, true},
		"a user's Service":            {&corev1.Service{}, labels.Set{"app": "web"}, false},
		"a Service someone else runs": {&corev1.Service{}, labels.Set{routers.LabelManagedBy: "helm"}, false},
	} {
		t.Run(name, func(t *testing.T) {
			sel := selectorOf(tc.obj)
			if sel == nil {
				t.Fatalf("the cache has no label selector for %T: it would hold every one of the cluster", tc.obj)
			}
			if got := sel.Matches(tc.labels); got != tc.want {
				t.Errorf("cached %v = %t, want %t (selector %s)", tc.labels, got, tc.want, sel)
			}
		})
	}
	co := clientOptions()
	found := false
	for _, o := range co.Cache.DisableFor {
		if _, ok := o.(*appsv1.ReplicaSet); ok {
			found = true
		}
	}
	if !found {
		t.Error("reads of ReplicaSets go through the cache (an informer of every ReplicaSet); want them read from the API server")
	}
}
