package flaggerimport

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/sluice-dev/sluice/e2e/cluster"
	"github.com/sluice-dev/sluice/rollout/spec"
)

var canaries = schema.GroupVersionResource{Group: "flagger.app", Version: "v1beta1", Resource: "canaries"}

// The Deployment Flagger manages, as its user keeps it in Git.
const cutoverDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: cutover
  labels: {app: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        image: demo:v1
        ports: [{name: http, containerPort: 8080}]
`

// Its Canary (Flagger's kubernetes provider: blue/green without a mesh) and check.
const cutoverCanary = `apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: web, namespace: cutover}
spec:
  provider: kubernetes
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  progressDeadlineSeconds: 120
  service: {port: 80, targetPort: 8080}
  analysis:
    interval: 10s
    threshold: 2
    iterations: 2
    metrics:
    - name: check
      templateRef: {name: check}
      thresholdRange: {min: 99}
      interval: 1m
---
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata: {name: check, namespace: cutover}
spec:
  provider: {type: prometheus, address: PROMETHEUS}
  query: vector(100)
`

// TestCutoverFromFlagger (issue 12, acceptance 4): Flagger, built from its Go module, manages a
// Deployment with its kubernetes provider (its copy web-primary serves, web is at 0 replicas,
// the Service web is Flagger's); the steps of docs/migrate.md "Cut-over" move it to Sluice
// while a loop checks, every 50 ms, that the Service web exists and selects at least one Ready
// pod (EndpointSlices refuse this control plane's loopback pod addresses, so the Service's
// endpoints are computed from its selector as the EndpointSlice controller would); then a
// `kubectl set image` is held and released by Sluice to Succeeded.
func TestCutoverFromFlagger(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	c := env.Cluster
	kubectl := func(args ...string) string {
		t.Helper()
		out, stderr, err := c.Kubectl(ctx, args...)
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, stderr)
		}
		t.Logf("$ kubectl %s\n%s", strings.Join(args, " "), strings.TrimSpace(out))
		return out
	}
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	// Flagger, as benchscale runs it: its CRDs, a user bound to cluster-admin, the kubernetes
	// provider, this stack's Prometheus.
	f, err := cluster.EnsureFlagger(ctx, cluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	kubectl("apply", "--server-side", "-f", f.CRDs)
	kubectl("wait", "--for=condition=Established", "crd/canaries.flagger.app", "crd/metrictemplates.flagger.app", "--timeout=60s")
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-flagger"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "flagger"}},
	}
	if _, err := env.Client.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	flaggerKubeconfig, _, err := c.UserKubeconfig("flagger")
	if err != nil {
		t.Fatal(err)
	}
	ports, err := cluster.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.StartProcess("flagger", f.Binary, "-kubeconfig="+flaggerKubeconfig, "-mesh-provider=kubernetes",
		"-metrics-server="+env.PrometheusURL, "-port="+strconv.Itoa(ports[0]), "-log-level=info"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = c.StopProcess("flagger", 15, 20*time.Second) })

	// Flagger takes the Deployment over.
	kubectl("create", "namespace", "cutover")
	deployment := write("web.yaml", cutoverDeployment)
	canary := write("canary.yaml", strings.ReplaceAll(cutoverCanary, "PROMETHEUS", env.PrometheusURL))
	kubectl("apply", "-f", deployment)
	kubectl("apply", "-f", canary)
	dyn, err := dynamic.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "Canary web Initialized by Flagger", func() (bool, string) {
		u, err := dyn.Resource(canaries).Namespace("cutover").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
		return phase == "Initialized", "phase " + phase + "\n" + c.LogTail("flagger", 5)
	})
	waitFor(ctx, t, "web-primary serving, web at 0 replicas", func() (bool, string) {
		sel, n, err := serviceEndpoints(ctx, "cutover", "web")
		if err != nil {
			return false, err.Error()
		}
		d, err := env.Client.AppsV1().Deployments("cutover").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return sel == "app=web-primary" && n == 2 && d.Status.Replicas == 0, fmt.Sprintf("Service web selects %s: %d Ready; web has %d pods", sel, n, d.Status.Replicas)
	})

	// From here on the Service must never be without a Ready pod.
	watch := startEndpointWatch(ctx, "cutover", "web")

	// docs/migrate.md, Cut-over.
	stdout, _, err := runPlugin(ctx, "import", "--deployment", deployment, canary)
	if err != nil {
		t.Fatal(err)
	}
	sluiceYAML := write("sluice.yaml", stdout)
	kubectl("patch", "canary", "web", "-n", "cutover", "--type=merge", "-p", `{"spec":{"suspend":true}}`)
	kubectl("scale", "deployment", "web", "-n", "cutover", "--replicas=2")
	kubectl("rollout", "status", "deployment", "web", "-n", "cutover", "--timeout=2m")
	kubectl("delete", "canary", "web", "-n", "cutover", "--cascade=orphan")
	kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=sluice-import", "-f", sluiceYAML)
	kubectl("delete", "deployment", "web-primary", "-n", "cutover")
	kubectl("delete", "service", "web-primary", "web-canary", "-n", "cutover")
	kubectl("delete", "metrictemplates.flagger.app", "check", "-n", "cutover")

	sel, n, err := serviceEndpoints(ctx, "cutover", "web")
	if err != nil || sel != "app=web" || n != 2 {
		t.Fatalf("after the cut-over Service web selects %s with %d Ready pods (%v), want app=web with 2", sel, n, err)
	}

	// Sluice releases the next change.
	kubectl("set", "image", "deployment/web", "-n", "cutover", "app=demo:v2")
	waitFor(ctx, t, "the release of demo:v2 Succeeded", func() (bool, string) {
		d, err := env.Client.AppsV1().Deployments("cutover").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		st, err := spec.ReadState(d.Annotations)
		if err != nil {
			return false, err.Error()
		}
		done := st.Phase == spec.PhaseSucceeded && !d.Spec.Paused && d.Status.UpdatedReplicas == 2 && d.Status.AvailableReplicas == 2 &&
			d.Spec.Template.Spec.Containers[0].Image == "demo:v2"
		return done, fmt.Sprintf("phase %s: %s", st.Phase, st.Message)
	})
	polls, gaps := watch.stop()
	t.Logf("Service web checked %d times during the cut-over and the release", polls)
	if polls < 20 {
		t.Errorf("only %d checks of the Service: the watch did not run", polls)
	}
	for _, g := range gaps {
		t.Errorf("Service web without a Ready pod: %s", g)
	}
}

// serviceEndpoints is the Service's selector and how many Ready, not terminating pods it selects.
func serviceEndpoints(ctx context.Context, ns, name string) (selector string, ready int, err error) {
	svc, err := env.Client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", 0, err
	}
	if len(svc.Spec.Selector) == 0 {
		return "", 0, nil
	}
	sel := labels.SelectorFromSet(svc.Spec.Selector).String()
	pods, err := env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return sel, 0, err
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				ready++
			}
		}
	}
	return sel, ready, nil
}

// endpointWatch polls a Service every 50 ms and records every moment it selects no Ready pod.
type endpointWatch struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	polls  int
	gaps   []string
}

func startEndpointWatch(ctx context.Context, ns, name string) *endpointWatch {
	ctx, cancel := context.WithCancel(ctx)
	w := &endpointWatch{cancel: cancel}
	w.wg.Go(func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			sel, n, err := serviceEndpoints(ctx, ns, name)
			if ctx.Err() != nil {
				return
			}
			w.polls++
			if err != nil || n == 0 {
				w.gaps = append(w.gaps, fmt.Sprintf("%s: selector %q, %d Ready pods, %v", time.Now().Format(time.StampMilli), sel, n, err))
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
	return w
}

func (w *endpointWatch) stop() (int, []string) {
	w.cancel()
	w.wg.Wait()
	return w.polls, w.gaps
}

// runPlugin runs kubectl-sluice and returns stdout and stderr apart.
func runPlugin(ctx context.Context, args ...string) (string, string, error) {
	var out, errOut strings.Builder
	cmd := exec.CommandContext(ctx, env.PluginBinary, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("kubectl sluice %s: %w\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), errOut.String(), err
}

// waitFor polls cond every 200 ms until it holds or ctx ends.
func waitFor(ctx context.Context, t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	last := ""
	for {
		ok, detail := cond()
		if ok {
			return
		}
		last = detail
		select {
		case <-ctx.Done():
			t.Fatalf("%s: timed out; last: %s", what, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
