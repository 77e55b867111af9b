package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/e2e/demoapp"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// app is one opted-in demo Deployment in its own namespace, with its simulated pods served and
// loaded for the duration of the test.
type app struct {
	t         *testing.T
	ns, name  string
	ann       map[string]string
	load      *demoapp.Load
	manifests string
}

// fastAnnotations make a release short enough for a test: 5 s interval (the minimum).
func fastAnnotations(extra ...string) map[string]string {
	ann := map[string]string{spec.AnnInterval: "5s", spec.AnnThreshold: "2"}
	for i := 0; i+1 < len(extra); i += 2 {
		ann[extra[i]] = extra[i+1]
	}
	return ann
}

func newApp(t *testing.T, name string, ann map[string]string) *app {
	t.Helper()
	ctx := t.Context()
	ns := fmt.Sprintf("%s-%d", dnsLabel(t.Name()), time.Now().UnixNano()%100000)
	if len(ns) > 50 {
		ns = ns[len(ns)-50:]
		ns = strings.TrimLeft(ns, "-")
	}
	if _, err := env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() {
		_ = env.Client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
	fleet := &demoapp.Fleet{Client: env.Client, Namespace: ns}
	load := &demoapp.Load{Fleet: fleet, RPS: 40, Selector: labels.SelectorFromSet(labels.Set{"app": name})}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { _ = fleet.Run(runCtx); done <- struct{}{} }()
	go func() { _ = load.Run(runCtx); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done })
	_ = ctx
	// Not t.TempDir(): its path holds the test's name, and kubectl -f reads a comma in a
	// subtest's name as a list of files.
	manifests, err := os.MkdirTemp("", "sluice-e2e-app-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(manifests) })
	return &app{t: t, ns: ns, name: name, ann: ann, load: load, manifests: manifests}
}

// manifest renders the app's Deployment, opted in, as a user would keep it in Git.
func (a *app) manifest(image string) string {
	d := demoapp.Deployment(a.name, a.ns, image, 3)
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

// apply runs `kubectl apply -f` of the manifest for image and returns kubectl's stderr
// (where admission warnings are printed).
func (a *app) apply(image string, args ...string) string {
	a.t.Helper()
	_, stderr := a.kubectl(append([]string{"apply", "-f", a.manifest(image)}, args...)...)
	return stderr
}

// deploy applies the first version and waits until it is available.
func (a *app) deploy(image string) {
	a.t.Helper()
	a.apply(image)
	a.waitFor(60*time.Second, "3 available replicas of "+image, func(d *appsv1.Deployment) (bool, string) {
		return d.Status.AvailableReplicas == 3 && d.Status.UpdatedReplicas == 3,
			fmt.Sprintf("available=%d updated=%d", d.Status.AvailableReplicas, d.Status.UpdatedReplicas)
	})
}

func (a *app) kubectl(args ...string) (string, string) {
	a.t.Helper()
	stdout, stderr, err := a.tryKubectl(args...)
	if err != nil {
		a.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return stdout, stderr
}

func (a *app) tryKubectl(args ...string) (string, string, error) {
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

// waitFor polls the parent Deployment until cond holds.
func (a *app) waitFor(timeout time.Duration, what string, cond func(*appsv1.Deployment) (bool, string)) *appsv1.Deployment {
	a.t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		d := a.get()
		ok, detail := cond(d)
		if ok {
			return d
		}
		if detail != last {
			a.t.Logf("waiting for %s: %s", what, detail)
			last = detail
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("timed out after %s waiting for %s (last: %s)\nevents: %v\nsluice log:\n%s",
				timeout, what, detail, a.events(), env.Cluster.LogTail("sluice", 15))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitPhase waits until the release reaches phase.
func (a *app) waitPhase(timeout time.Duration, phase spec.Phase) spec.State {
	a.t.Helper()
	d := a.waitFor(timeout, "phase "+string(phase), func(d *appsv1.Deployment) (bool, string) {
		st := stateOf(a.t, d)
		return st.Phase == phase, fmt.Sprintf("phase=%s weight=%d failed=%d: %s", st.Phase, st.Weight, st.FailedChecks, st.Message)
	})
	return stateOf(a.t, d)
}

// events returns the reasons of the Events on the parent, oldest first.
func (a *app) events() []string {
	a.t.Helper()
	var reasons []string
	for _, e := range a.eventList() {
		reasons = append(reasons, e.Reason)
	}
	return reasons
}

// eventList returns the parent's Events, oldest first.
func (a *app) eventList() []corev1.Event {
	a.t.Helper()
	list, err := env.Client.CoreV1().Events(a.ns).List(context.Background(), metav1.ListOptions{
		FieldSelector: "involvedObject.name=" + a.name,
	})
	if err != nil {
		a.t.Fatalf("list events: %v", err)
	}
	slices.SortFunc(list.Items, func(x, y corev1.Event) int { return x.CreationTimestamp.Compare(y.CreationTimestamp.Time) })
	return list.Items
}

// waitEvent waits until an Event with reason is on the parent.
func (a *app) waitEvent(timeout time.Duration, reason string) {
	a.t.Helper()
	deadline := time.Now().Add(timeout)
	for !slices.Contains(a.events(), reason) {
		if time.Now().After(deadline) {
			a.t.Fatalf("no %s event after %s; events: %v", reason, timeout, a.events())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// stablePods returns name → image of the parent's (non-canary) pods.
func (a *app) stablePods() map[string]string {
	a.t.Helper()
	pods, err := env.Client.CoreV1().Pods(a.ns).List(a.t.Context(), metav1.ListOptions{
		LabelSelector: "app=" + a.name + "," + spec.LabelTrack + "!=" + spec.ValueCanary,
	})
	if err != nil {
		a.t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			out[p.Name] = p.Spec.Containers[0].Image
		}
	}
	return out
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// dnsLabel turns a test's name into a DNS label's characters: lower case, anything but letters
// and digits a dash.
func dnsLabel(s string) string {
	return strings.Trim(strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r - 'A' + 'a'
		}
		return '-'
	}, s), "-")
}
