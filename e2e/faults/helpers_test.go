package faults

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/e2e/demoapp"
	"github.com/sluice-dev/sluice/rollout/spec"
)

var (
	// disruptive serializes the rows that stop sluice or the API server, or throttle sluice:
	// each of them must be the only fault of its kind in flight. The other rows run alongside.
	disruptive sync.Mutex
	// down is held (Lock) while sluice or the API server is down; rows hold it (RLock) around
	// their writes that need the webhook, which would be refused meanwhile.
	down sync.RWMutex
	// apiUp is held (RLock) for their whole run by the rows that read the API server directly
	// (not only through retrying waits); the API server restart row takes it (Lock), so it runs
	// when none of them does.
	apiUp sync.RWMutex
)

// readsAPI marks t as a row that needs the API server up throughout.
func readsAPI(t *testing.T) {
	apiUp.RLock()
	t.Cleanup(apiUp.RUnlock)
}

// replicas is the size of every app: small, the matrix is about order, not scale.
const replicas = 2

// Inline checks with a fixed verdict, for the rows about sluice and the API server (their
// releases must not depend on how fast Prometheus fills up).
const (
	passing = "- name: ok\n  query: vector(100)\n  thresholdRange: {min: 99}\n"
	failing = "- name: broken\n  query: vector(0)\n  thresholdRange: {min: 99}\n"
)

// app is one opted-in demo Deployment in its own namespace, its simulated pods served and
// loaded for the duration of the test.
type app struct {
	t         *testing.T
	ns, name  string
	ann       map[string]string
	manifests string
}

// fastAnnotations: a 5 s interval (the minimum), two steps, threshold 1, plus extra pairs.
func fastAnnotations(extra ...string) map[string]string {
	ann := map[string]string{spec.AnnInterval: "5s", spec.AnnThreshold: "1", spec.AnnStepWeights: "20,50"}
	for i := 0; i+1 < len(extra); i += 2 {
		ann[extra[i]] = extra[i+1]
	}
	return ann
}

// newApp is an app whose pods are served but get no traffic: its checks are inline and fixed.
func newApp(t *testing.T, name string, ann map[string]string) *app {
	return newAppWithLoad(t, name, ann, 0)
}

// newAppWithLoad is an app whose pods get rps requests a second, for checks on real series.
func newAppWithLoad(t *testing.T, name string, ann map[string]string, rps int) *app {
	t.Helper()
	ns := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	ns = fmt.Sprintf("%s-%d", ns, time.Now().UnixNano()%100000)
	if len(ns) > 50 {
		ns = strings.TrimLeft(ns[len(ns)-50:], "-")
	}
	if _, err := env.Client.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() {
		_ = env.Client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
	fleet := &demoapp.Fleet{Client: env.Client, Namespace: ns}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { _ = fleet.Run(runCtx); done <- struct{}{} }()
	if rps > 0 {
		load := &demoapp.Load{Fleet: fleet, RPS: rps, Selector: labels.SelectorFromSet(labels.Set{"app": name})}
		go func() { _ = load.Run(runCtx); done <- struct{}{} }()
	} else {
		done <- struct{}{}
	}
	t.Cleanup(func() { cancel(); <-done; <-done })
	return &app{t: t, ns: ns, name: name, ann: ann, manifests: t.TempDir()}
}

// manifest renders the app's Deployment, opted in, as a user keeps it in Git.
func (a *app) manifest(image string) string {
	d := demoapp.Deployment(a.name, a.ns, image, replicas)
	d.Labels[spec.LabelEnabled] = spec.ValueEnabled
	d.Annotations = a.ann
	b, err := yaml.Marshal(d)
	if err != nil {
		a.t.Fatal(err)
	}
	path := filepath.Join(a.manifests, strings.NewReplacer("/", "_", ":", "_").Replace(image)+".yaml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		a.t.Fatal(err)
	}
	return path
}

// apply runs `kubectl apply -f` of the manifest for image (while sluice is up) and returns
// kubectl's stderr.
func (a *app) apply(image string) string {
	a.t.Helper()
	_, stderr := a.kubectl("apply", "-f", a.manifest(image))
	return stderr
}

// deploy applies the first version and waits until it is available.
func (a *app) deploy(image string) {
	a.t.Helper()
	a.apply(image)
	a.waitFor(90*time.Second, fmt.Sprintf("%d available replicas of %s", replicas, image), func(d *appsv1.Deployment) (bool, string) {
		return d.Status.AvailableReplicas == replicas && d.Status.UpdatedReplicas == replicas,
			fmt.Sprintf("available=%d updated=%d", d.Status.AvailableReplicas, d.Status.UpdatedReplicas)
	})
}

// kubectl runs kubectl in the app's namespace while sluice and the API server are up.
func (a *app) kubectl(args ...string) (string, string) {
	a.t.Helper()
	stdout, stderr, err := a.tryKubectl(args...)
	if err != nil {
		a.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return stdout, stderr
}

func (a *app) tryKubectl(args ...string) (string, string, error) {
	down.RLock()
	defer down.RUnlock()
	return env.Cluster.Kubectl(a.t.Context(), append([]string{"-n", a.ns}, args...)...)
}

func (a *app) get() *appsv1.Deployment {
	a.t.Helper()
	d, err := env.Client.AppsV1().Deployments(a.ns).Get(a.t.Context(), a.name, metav1.GetOptions{})
	if err != nil {
		a.t.Fatalf("get deployment: %v", err)
	}
	return d
}

func (a *app) state() spec.State {
	a.t.Helper()
	return stateOf(a.t, a.get())
}

func stateOf(t *testing.T, d *appsv1.Deployment) spec.State {
	t.Helper()
	st, err := spec.ReadState(d.Annotations)
	if err != nil {
		t.Fatalf("read state: %v", err)
	}
	return st
}

func (a *app) canary() *appsv1.Deployment {
	a.t.Helper()
	d, err := env.Client.AppsV1().Deployments(a.ns).Get(a.t.Context(), spec.CanaryName(a.name), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		a.t.Fatalf("get canary: %v", err)
	}
	return d
}

// waitFor polls the parent until cond holds. Errors reading it (the API server restarting) are
// retried until the timeout.
func (a *app) waitFor(timeout time.Duration, what string, cond func(*appsv1.Deployment) (bool, string)) *appsv1.Deployment {
	a.t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		d, err := env.Client.AppsV1().Deployments(a.ns).Get(a.t.Context(), a.name, metav1.GetOptions{})
		detail := fmt.Sprint(err)
		if err == nil {
			var ok bool
			if ok, detail = cond(d); ok {
				return d
			}
		}
		if detail != last {
			a.t.Logf("waiting for %s: %s", what, detail)
			last = detail
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("timed out after %s waiting for %s (last: %s)\nevents: %v\nsluice log:\n%s",
				timeout, what, detail, a.reasons(), env.Cluster.LogTail("sluice", 15))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitPhase waits until the release reaches phase.
func (a *app) waitPhase(timeout time.Duration, phase spec.Phase) spec.State {
	a.t.Helper()
	d := a.waitFor(timeout, "phase "+string(phase), func(d *appsv1.Deployment) (bool, string) {
		st := stateOf(a.t, d)
		return st.Phase == phase, fmt.Sprintf("phase=%s step=%d weight=%d failed=%d inconclusive=%d: %s", st.Phase, st.Step, st.Weight, st.FailedChecks, st.Inconclusive, st.Message)
	})
	return stateOf(a.t, d)
}

// events returns the Events on the parent, oldest first.
func (a *app) events() []corev1.Event {
	a.t.Helper()
	list, err := env.Client.CoreV1().Events(a.ns).List(context.Background(), metav1.ListOptions{
		FieldSelector: "involvedObject.name=" + a.name,
	})
	if err != nil {
		a.t.Logf("list events: %v", err)
		return nil
	}
	slices.SortFunc(list.Items, func(x, y corev1.Event) int { return x.CreationTimestamp.Compare(y.CreationTimestamp.Time) })
	return list.Items
}

// reasons returns the reasons of the Events on the parent, oldest first.
func (a *app) reasons() []string {
	var out []string
	for _, e := range a.events() {
		out = append(out, e.Reason)
	}
	return out
}

// waitEvent waits until an Event with reason is on the parent and returns it.
func (a *app) waitEvent(timeout time.Duration, reason string) corev1.Event {
	a.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, e := range a.events() {
			if e.Reason == reason {
				return e
			}
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("no %s event after %s; events: %v", reason, timeout, a.reasons())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// restartSluice starts sluice again (after a kill or a stop) and waits until it is ready.
func restartSluice(t *testing.T) {
	t.Helper()
	if err := env.StartSluice(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := env.WaitSluice(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// stableUIDs returns the UIDs of the parent's (non-canary) pods.
func (a *app) stableUIDs() map[types.UID]string {
	a.t.Helper()
	pods, err := env.Client.CoreV1().Pods(a.ns).List(a.t.Context(), metav1.ListOptions{
		LabelSelector: spec.LabelTrack + "!=" + spec.ValueCanary,
	})
	if err != nil {
		a.t.Fatal(err)
	}
	out := map[types.UID]string{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			out[p.UID] = p.Name
		}
	}
	return out
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
