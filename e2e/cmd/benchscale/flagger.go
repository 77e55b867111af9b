package main

import (
	"context"
	"fmt"
	"strconv"
	"syscall"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/sluice-dev/sluice/e2e/cluster"
)

const flaggerUser = "flagger"

var (
	canariesGVR        = schema.GroupVersionResource{Group: "flagger.app", Version: "v1beta1", Resource: "canaries"}
	metricTemplatesGVR = schema.GroupVersionResource{Group: "flagger.app", Version: "v1beta1", Resource: "metrictemplates"}
)

// flaggerCtl runs the scenario on Flagger with its `kubernetes` provider (blue/green without a
// mesh): plain Deployments, a Canary each, and one MetricTemplate with the check.
type flaggerCtl struct {
	c          *cluster.Cluster
	cs         kubernetes.Interface
	dyn        dynamic.Interface
	binary     string
	args       []string
	prometheus string
}

// startFlagger installs Flagger's CRDs, lets its user do anything (the benchmark is not about
// its RBAC) and prepares its command line; run's restart starts it.
func startFlagger(ctx context.Context, c *cluster.Cluster, f cluster.Flagger, prometheusURL string, port int) (*flaggerCtl, error) {
	if _, stderr, err := c.Kubectl(ctx, "apply", "--server-side", "-f", f.CRDs); err != nil {
		return nil, fmt.Errorf("apply Flagger's CRDs: %w: %s", err, stderr)
	}
	if _, stderr, err := c.Kubectl(ctx, "wait", "--for=condition=Established", "crd/canaries.flagger.app", "crd/metrictemplates.flagger.app", "--timeout=60s"); err != nil {
		return nil, fmt.Errorf("wait for Flagger's CRDs: %w: %s", err, stderr)
	}
	cs, err := kubernetes.NewForConfig(c.RESTConfig())
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(c.RESTConfig())
	if err != nil {
		return nil, err
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "bench-flagger"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: flaggerUser}},
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("bind %s to cluster-admin: %w", flaggerUser, err)
	}
	kubeconfig, _, err := c.UserKubeconfig(flaggerUser)
	if err != nil {
		return nil, err
	}
	return &flaggerCtl{
		c: c, cs: cs, dyn: dyn, binary: f.Binary, prometheus: prometheusURL,
		// Its own defaults but for what wires it to this cluster, and the log level its Helm
		// chart deploys with (the binary's default is debug). Flagger listens on ":"+port (all
		// interfaces) for its metrics; it has no flag for the address.
		args: []string{
			"-kubeconfig=" + kubeconfig,
			"-mesh-provider=kubernetes",
			"-metrics-server=" + prometheusURL,
			"-port=" + strconv.Itoa(port),
			"-log-level=info",
		},
	}, nil
}

func (flaggerCtl) name() string { return "flagger" }
func (flaggerCtl) user() string { return flaggerUser }
func (flaggerCtl) watched() []schema.GroupVersionResource {
	return []schema.GroupVersionResource{canariesGVR}
}
func (f *flaggerCtl) pid() (int, bool) { return f.c.PID("flagger") }

func (f *flaggerCtl) restart(ctx context.Context) error {
	if f.c.Running("flagger") {
		if _, err := f.c.StopProcess("flagger", syscall.SIGTERM, 20*time.Second); err != nil {
			return fmt.Errorf("stop flagger: %w", err)
		}
	}
	_, err := f.c.StartProcess("flagger", f.binary, f.args...)
	return err
}

func (f *flaggerCtl) create(ctx context.Context, ns string, names []string) error {
	mt := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate",
		"metadata": map[string]any{"name": "check", "namespace": ns},
		"spec": map[string]any{
			"provider": map[string]any{"type": "prometheus", "address": f.prometheus},
			"query":    "vector(100)",
		},
	}}
	if _, err := f.dyn.Resource(metricTemplatesGVR).Namespace(ns).Create(ctx, mt, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create MetricTemplate: %w", err)
	}
	return forEach(names, func(name string) error {
		if _, err := f.cs.AppsV1().Deployments(ns).Create(ctx, deployment(ns, name, nil, nil), metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create Deployment %s: %w", name, err)
		}
		if _, err := f.dyn.Resource(canariesGVR).Namespace(ns).Create(ctx, canary(ns, name), metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create Canary %s: %w", name, err)
		}
		return nil
	})
}

// canary is the Canary of the scenario: blue/green (iterations) with the one check.
func canary(ns, name string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "flagger.app/v1beta1", "kind": "Canary",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{
			"targetRef":               map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
			"progressDeadlineSeconds": int64(600),
			"service":                 map[string]any{"port": int64(80), "targetPort": int64(appPort)},
			"analysis": map[string]any{
				"interval":   interval.String(),
				"threshold":  int64(5),
				"iterations": int64(iterations),
				"metrics": []any{map[string]any{
					"name":           "check",
					"templateRef":    map[string]any{"name": "check"},
					"thresholdRange": map[string]any{"min": int64(99)},
					"interval":       interval.String(),
				}},
			},
		},
	}}
}

func (*flaggerCtl) readyDetail(t *tracker) (bool, string) { return readyCount(t) }

// observe: a Canary is ready once Initialized (Flagger copied the Deployment to
// <name>-primary and scaled it to zero); the release started when Flagger scales the
// Deployment up from zero again (its canary), and is done when the Canary is Succeeded. Its
// analysis ticks are the Canary status writes from the first iteration (the tick that starts
// the analysis and runs no check yet) to Promoting, each taken once, at its lastTransitionTime.
func (*flaggerCtl) observe(t *tracker, typ watch.EventType, obj *unstructured.Unstructured, at time.Time) {
	r := t.releases[obj.GetName()]
	if r == nil || typ == watch.Deleted {
		return
	}
	if obj.GetKind() == "Deployment" {
		n, _, _ := unstructured.NestedInt64(obj.Object, "spec", "replicas")
		if !r.SetImage.IsZero() && r.Started.IsZero() && n > 0 {
			r.Started = at
		}
		return
	}
	phase, _, _ := unstructured.NestedString(obj.Object, "status", "phase")
	iter, _, _ := unstructured.NestedInt64(obj.Object, "status", "iterations")
	ltt, _, _ := unstructured.NestedString(obj.Object, "status", "lastTransitionTime")
	if r.SetImage.IsZero() {
		if phase == "Initialized" {
			t.ready[r.Name] = true
		}
		return
	}
	notes := t.notes[r.Name]
	key := fmt.Sprintf("%s/%d", phase, iter)
	switch {
	case phase == "Progressing" && iter >= 1, phase == "Promoting":
		if notes[key] == "" {
			notes[key] = ltt
			when, err := time.Parse(time.RFC3339, ltt)
			if err != nil {
				r.Err = fmt.Errorf("Canary status.lastTransitionTime %q: %w", ltt, err)
				return
			}
			r.addRun(when)
		}
	case phase == "Succeeded":
		if r.Done.IsZero() {
			r.Done = at
		}
	case phase == "Failed":
		if r.Err == nil {
			r.Err = fmt.Errorf("Canary Failed")
		}
	}
}
