package faults

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/sluice-dev/sluice/e2e/cluster"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// webhookDown takes a's namespace from the sluice webhook and gives it the same webhook (rules,
// selectors, timeout, and failurePolicy unless policy is set) whose endpoint is down: nothing
// listens on its port. It returns once a server-side dry run of a template change shows the new
// webhook in effect.
func webhookDown(t *testing.T, a *app, policy *admissionregistrationv1.FailurePolicyType) {
	t.Helper()
	ctx := t.Context()
	api := env.Client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	cfg, err := api.Get(ctx, "sluice", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ports, err := cluster.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	down := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "sluice-down-" + a.ns}}
	effective := *cfg.Webhooks[0].FailurePolicy
	if policy != nil {
		effective = *policy
	}
	for _, w := range cfg.Webhooks {
		w.FailurePolicy = &effective
		url := fmt.Sprintf("https://127.0.0.1:%d%s", ports[0], urlPath(*w.ClientConfig.URL))
		w.ClientConfig.URL = &url
		w.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: a.ns}}
		down.Webhooks = append(down.Webhooks, w)
	}
	if _, err := api.Create(ctx, down, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = api.Delete(context.Background(), down.Name, metav1.DeleteOptions{}) })
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:"true"}}}`, downLabel)
	if _, err := env.Client.CoreV1().Namespaces().Patch(ctx, a.ns, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, stderr, err := a.tryKubectl("set", "image", "deployment/web", "app=demo:dry-run", "--dry-run=server")
		switch {
		case effective == admissionregistrationv1.Fail && err != nil && strings.Contains(stderr, "failed calling webhook"):
			return
		case effective == admissionregistrationv1.Ignore && err == nil && !strings.Contains(stderr, "sluice: held"):
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the down webhook is not in effect after 30s: dry run: %v: %s", err, stderr)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func urlPath(u string) string {
	if i := strings.Index(strings.TrimPrefix(u, "https://"), "/"); i >= 0 {
		return strings.TrimPrefix(u, "https://")[i:]
	}
	return ""
}

// The webhook endpoint down with the failurePolicy deploy/webhook.yaml installs (Fail): a
// `kubectl set image` is refused, and nothing is released: the template, the state and the
// pods stay as they were, and no canary appears over two intervals.
func TestWebhookDownFail(t *testing.T) {
	t.Parallel()
	readsAPI(t)
	a := newApp(t, "web", fastAnnotations(spec.AnnMetrics, passing))
	a.deploy("demo:v1")
	before := a.get()
	pods := a.stableUIDs()
	webhookDown(t, a, nil)

	_, stderr, err := a.tryKubectl("set", "image", "deployment/web", "app=demo:v2")
	if err == nil || !strings.Contains(stderr, "failed calling webhook") {
		t.Fatalf("kubectl set image with the webhook down: err %v, stderr %q; want it refused", err, stderr)
	}
	t.Logf("refused: %s", strings.TrimSpace(stderr))
	watchUntil := time.Now().Add(2*5*time.Second + 2*time.Second)
	for time.Now().Before(watchUntil) {
		d := a.get()
		if img := d.Spec.Template.Spec.Containers[0].Image; img != "demo:v1" || d.Generation != before.Generation {
			t.Fatalf("the refused template was stored: image %s, generation %d (was %d)", img, d.Generation, before.Generation)
		}
		if d.Annotations[spec.AnnState] != before.Annotations[spec.AnnState] || d.Spec.Paused {
			t.Fatalf("a release started: paused=%v state %s", d.Spec.Paused, d.Annotations[spec.AnnState])
		}
		if c := a.canary(); c != nil {
			t.Fatalf("canary %s created for a refused write", c.Name)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if got := a.stableUIDs(); !maps.Equal(got, pods) {
		t.Errorf("pods changed: before %v, after %v", pods, got)
	}
}

// The webhook endpoint down with failurePolicy Ignore: the write goes through unheld (the
// Deployment rolls v3 out at once, no canary), and the worker reports it: a Warning Event
// `Unanalysed` on the Deployment, since its template is not the stable revision the state
// recorded when v2 was promoted.
func TestWebhookDownIgnore(t *testing.T) {
	t.Parallel()
	readsAPI(t)
	a := newApp(t, "web", fastAnnotations(spec.AnnMetrics, passing))
	a.deploy("demo:v1")
	a.kubectl("set", "image", "deployment/web", "app=demo:v2")
	promoted := a.waitPhase(2*time.Minute, spec.PhaseSucceeded)
	a.waitFor(time.Minute, "v2 rolled out", rolledOut)
	ignore := admissionregistrationv1.Ignore
	webhookDown(t, a, &ignore)

	_, stderr := a.kubectl("set", "image", "deployment/web", "app=demo:v3")
	if strings.Contains(stderr, "held") {
		t.Fatalf("the write was held with the webhook down: %q", stderr)
	}
	d := a.get()
	if d.Spec.Paused || d.Spec.Template.Spec.Containers[0].Image != "demo:v3" {
		t.Fatalf("want demo:v3 stored unpaused, got %s paused=%v", d.Spec.Template.Spec.Containers[0].Image, d.Spec.Paused)
	}
	e := a.waitEvent(time.Minute, "Unanalysed")
	t.Logf("%s %s: %s", e.Type, e.Reason, e.Message)
	if e.Type != corev1.EventTypeWarning {
		t.Errorf("Unanalysed event of type %s, want Warning", e.Type)
	}
	a.waitFor(time.Minute, "v3 rolled out (nothing holds it)", rolledOut)
	if c := a.canary(); c != nil {
		t.Errorf("canary %s created for an unheld write", c.Name)
	}
	if st := a.state(); st.Stable != promoted.Stable || st.Phase.InFlight() {
		t.Errorf("the unanalysed template was adopted or released: state %s, stable %s (was %s)", key(st), st.Stable, promoted.Stable)
	}
}

func rolledOut(d *appsv1.Deployment) (bool, string) {
	return !d.Spec.Paused && d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas == replicas &&
			d.Status.AvailableReplicas == replicas && d.Status.Replicas == replicas,
		fmt.Sprintf("updated=%d available=%d replicas=%d", d.Status.UpdatedReplicas, d.Status.AvailableReplicas, d.Status.Replicas)
}
