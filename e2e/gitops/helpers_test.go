package gitops

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
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
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/e2e/demoapp"
	"github.com/sluice-dev/sluice/e2e/stack"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// replicas is the size of every app.
const replicas = 3

// Inline checks with a fixed verdict: these tests are about what the GitOps tools see, so the
// analysis verdict is chosen, not measured.
const (
	passing = "- name: ok\n  query: vector(100)\n  thresholdRange: {min: 99}\n"
	failing = "- name: broken\n  query: vector(0)\n  thresholdRange: {min: 99}\n"
)

// annotations is a fast release (5 s interval, the minimum) with checks, plus extra pairs.
func annotations(checks string, extra ...string) map[string]string {
	ann := map[string]string{spec.AnnInterval: "5s", spec.AnnThreshold: "1", spec.AnnMetrics: checks}
	for i := 0; i+1 < len(extra); i += 2 {
		ann[extra[i]] = extra[i+1]
	}
	return ann
}

// app is one opted-in Deployment in its own namespace, as a user keeps it in Git.
type app struct {
	t        *testing.T
	ns, name string
	ann      map[string]string
	dir      string
}

func newApp(t *testing.T, name string, ann map[string]string) *app {
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
	return &app{t: t, ns: ns, name: name, ann: ann, dir: t.TempDir()}
}

// deployment is the app's Deployment as kept in Git: opted in, no spec.paused, no state.
func (a *app) deployment(image string) *appsv1.Deployment {
	d := demoapp.Deployment(a.name, a.ns, image, replicas)
	d.Labels[spec.LabelEnabled] = spec.ValueEnabled
	d.Annotations = maps.Clone(a.ann)
	return d
}

// service is the app's Service as kept in Git.
func (a *app) service() *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: a.name, Namespace: a.ns},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": a.name},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}
}

// manifest is the Git manifest for image: the Deployment, then the extra documents (YAML, their
// namespace set to the app's).
func (a *app) manifest(image string, extra ...string) []byte {
	a.t.Helper()
	docs := []any{a.deployment(image)}
	for _, e := range extra {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(e), &obj); err != nil {
			a.t.Fatalf("parse %s: %v", e, err)
		}
		meta, _ := obj["metadata"].(map[string]any)
		if meta == nil {
			meta = map[string]any{}
			obj["metadata"] = meta
		}
		meta["namespace"] = a.ns
		docs = append(docs, obj)
	}
	var out []byte
	for _, d := range docs {
		b, err := yaml.Marshal(d)
		if err != nil {
			a.t.Fatal(err)
		}
		out = append(append(out, "---\n"...), b...)
	}
	return out
}

// file writes b into the app's temp dir and returns its path.
func (a *app) file(name string, b []byte) string {
	a.t.Helper()
	path := filepath.Join(a.dir, name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		a.t.Fatal(err)
	}
	return path
}

func (a *app) kubectl(args ...string) (stdout, stderr string) {
	a.t.Helper()
	stdout, stderr, err := a.tryKubectl(args...)
	if err != nil {
		a.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return stdout, stderr
}

func (a *app) tryKubectl(args ...string) (stdout, stderr string, err error) {
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
	var d *appsv1.Deployment
	a.poll(timeout, what, func() (bool, string) {
		d = a.get()
		return cond(d)
	})
	return d
}

// poll calls cond until it holds, logging each new detail it gives.
func (a *app) poll(timeout time.Duration, what string, cond func() (bool, string)) {
	a.t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if detail != last {
			a.t.Logf("waiting for %s: %s", what, detail)
			last = detail
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("timed out after %s waiting for %s (last: %s)\nsluice log:\n%s",
				timeout, what, detail, env.Cluster.LogTail("sluice", 15))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitAvailable waits until every replica runs the Deployment's current template.
func (a *app) waitAvailable(timeout time.Duration) *appsv1.Deployment {
	a.t.Helper()
	return a.waitFor(timeout, "all replicas updated and available", func(d *appsv1.Deployment) (bool, string) {
		s := d.Status
		return s.ObservedGeneration == d.Generation && s.UpdatedReplicas == replicas && s.AvailableReplicas == replicas && s.Replicas == replicas,
			fmt.Sprintf("observed=%d/%d updated=%d available=%d replicas=%d", s.ObservedGeneration, d.Generation, s.UpdatedReplicas, s.AvailableReplicas, s.Replicas)
	})
}

// waitPhase waits until the release reaches phase.
func (a *app) waitPhase(timeout time.Duration, phase spec.Phase) spec.State {
	a.t.Helper()
	d := a.waitFor(timeout, "phase "+string(phase), func(d *appsv1.Deployment) (bool, string) {
		st := stateOf(a.t, d)
		return st.Phase == phase, fmt.Sprintf("phase=%s weight=%d: %s", st.Phase, st.Weight, st.Message)
	})
	return stateOf(a.t, d)
}

// waitCanaryReady waits until the held revision's canary is ready (the release's first step).
func (a *app) waitCanaryReady(timeout time.Duration) spec.State {
	a.t.Helper()
	d := a.waitFor(timeout, "canary ready", func(d *appsv1.Deployment) (bool, string) {
		st := stateOf(a.t, d)
		return st.CanaryReady && st.Phase == spec.PhaseProgressing, fmt.Sprintf("phase=%s canaryReady=%v", st.Phase, st.CanaryReady)
	})
	return stateOf(a.t, d)
}

// workerRace runs try, which returns what differs ("" for nothing), again while Sluice's
// worker wrote the Deployment meanwhile, and reports a difference found when it did not. A
// GitOps tool compares the live object it read with the result of a dry run: when the worker
// writes its state between the two (once per step), the tool sees that write as drift, applies
// once more, and that apply changes nothing (the webhook keeps the state). Who wrote is read
// from the API server's audit log, so a difference the tool's own write caused is never taken
// for the worker's.
func (a *app) workerRace(what string, try func() string) {
	a.t.Helper()
	for attempt := 1; ; attempt++ {
		before := a.workerWrites()
		diff := try()
		if diff == "" {
			return
		}
		time.Sleep(300 * time.Millisecond) // the audit log is written as requests complete
		if a.workerWrites() == before || attempt == 5 {
			a.t.Errorf("%s: %s", what, diff)
			return
		}
		a.t.Logf("%s: Sluice's worker wrote the Deployment meanwhile (try %d: %s); again", what, attempt, diff)
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

// replicaSets returns the names of the parent's ReplicaSets (not the canary's).
func (a *app) replicaSets() []string {
	a.t.Helper()
	list, err := env.Client.AppsV1().ReplicaSets(a.ns).List(a.t.Context(), metav1.ListOptions{})
	if err != nil {
		a.t.Fatal(err)
	}
	var out []string
	for _, rs := range list.Items {
		if owner := metav1.GetControllerOf(&rs); owner != nil && owner.Name == a.name {
			out = append(out, rs.Name)
		}
	}
	slices.Sort(out)
	return out
}

// write is one write to a Deployment the API server's audit log recorded (auditPolicy).
type write struct {
	Verb, Name, User, UserAgent string
	DryRun                      bool
}

// auditedWrites returns the writes to Deployments in the app's namespace, in order.
func (a *app) auditedWrites() []write {
	a.t.Helper()
	f, err := os.Open(env.Cluster.AuditLog)
	if err != nil {
		a.t.Fatalf("open audit log: %v", err)
	}
	defer func() { _ = f.Close() }()
	var out []write
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var ev struct {
			Verb       string `json:"verb"`
			RequestURI string `json:"requestURI"`
			UserAgent  string `json:"userAgent"`
			User       struct {
				Username string `json:"username"`
			} `json:"user"`
			ObjectRef *struct {
				Namespace string `json:"namespace"`
				Name      string `json:"name"`
			} `json:"objectRef"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			a.t.Fatalf("audit log: %v", err)
		}
		if ev.ObjectRef == nil || ev.ObjectRef.Namespace != a.ns {
			continue
		}
		out = append(out, write{Verb: ev.Verb, Name: ev.ObjectRef.Name, User: ev.User.Username, UserAgent: ev.UserAgent,
			DryRun: strings.Contains(ev.RequestURI, "dryRun=All")})
	}
	if err := sc.Err(); err != nil {
		a.t.Fatalf("read audit log: %v", err)
	}
	return out
}

// workerWrites counts the writes Sluice's worker sent to the parent Deployment.
func (a *app) workerWrites() int {
	a.t.Helper()
	n := 0
	for _, w := range a.auditedWrites() {
		if w.User == stack.Identity && w.Name == a.name && !w.DryRun {
			n++
		}
	}
	return n
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
