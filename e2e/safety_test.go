package e2e

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/sluice-dev/sluice/e2e/demoapp"
	"github.com/sluice-dev/sluice/e2e/stack"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// The one promise: a release reaches every pod only after its analysis passed, or a human said
// so for that revision. These tests try to break it the ways a tired operator or a GitOps
// repository would.

// A `sluice.dev/promote: "true"` left on an idle Deployment (written before controls named
// revisions, or past the webhook) must not promote the next release: that release is analysed
// like any other. A promote naming an old revision does nothing; a bare "true" is refused.
func TestLeftoverApprovalPromotesNothing(t *testing.T) {
	t.Parallel()
	a := newApp(t, "leftover", fastAnnotations(spec.AnnStepWeights, "20,50"))
	a.deploy("demo:v1")
	a.waitFor(30*time.Second, "the running template recorded as stable", func(d *appsv1.Deployment) (bool, string) {
		return stateOf(t, d).Stable != "", d.Annotations[spec.AnnState]
	})

	// A leftover approval, written as Sluice's own identity (which the webhook lets through as
	// sent): the webhook cannot have refused it.
	bypass := sluiceClient(t)
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:"true"}}}`, spec.AnnPromote)
	if _, err := bypass.AppsV1().Deployments(a.ns).Patch(t.Context(), a.name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("write the leftover approval: %v", err)
	}
	_, stderr := a.kubectl("set", "image", "deployment/"+a.name, "app=demo:v2")

	// Dropped by the webhook with the new hold, or cleared by the worker first: either way said,
	// in a Warning Event (Events are written asynchronously, so they are waited for).
	dropped := strings.Contains(stderr, "dropped "+spec.AnnPromote+"=true")
	said := func(e string) bool {
		return dropped && strings.HasPrefix(e, "ControlDiscarded: dropped "+spec.AnnPromote+"=true") ||
			strings.HasPrefix(e, "StaleControl: "+spec.AnnPromote+"=true")
	}
	for deadline := time.Now().Add(15 * time.Second); !slices.ContainsFunc(a.eventsWithMessages(), said); {
		if time.Now().After(deadline) {
			t.Fatalf("the leftover approval was neither dropped by the webhook with a ControlDiscarded Event (stderr %q) nor cleared by the worker with a StaleControl one; events %v",
				stderr, a.eventsWithMessages())
		}
		time.Sleep(250 * time.Millisecond)
	}
	if v, ok := a.get().Annotations[spec.AnnPromote]; ok {
		t.Errorf("%s=%q still on the Deployment", spec.AnnPromote, v)
	}
	held := a.state()
	if held.Phase != spec.PhaseProgressing {
		t.Fatalf("set image did not start a release: %s", mustJSON(held))
	}

	// A promote naming another revision is dropped; a bare true is refused with the way to do it.
	_, stderr = a.kubectl("annotate", "deployment/"+a.name, spec.AnnPromote+"="+held.Stable)
	if !strings.Contains(stderr, "dropped "+spec.AnnPromote+"="+held.Stable) {
		t.Errorf("a promote naming the stable revision was not dropped with a warning: %q", stderr)
	}
	if _, stderr, err := a.tryKubectl("annotate", "deployment/"+a.name, spec.AnnPromote+"=true"); err == nil ||
		!strings.Contains(stderr, "kubectl sluice promote NAME") {
		t.Errorf("a bare promote=true was not refused with the way to approve (err %v): %q", err, stderr)
	}

	// The release is analysed: it promotes only after a passing run at each weight.
	st := a.waitPhase(2*time.Minute, spec.PhaseSucceeded)
	msgs := a.eventsWithMessages()
	promoting := slices.IndexFunc(msgs, func(e string) bool { return strings.HasPrefix(e, "Promoting: ") })
	if promoting < 0 || !strings.Contains(msgs[promoting], "analysis passed at the final weight 50%") {
		t.Errorf("the release was not promoted by analysis; events %v", msgs)
	}
	if !slices.ContainsFunc(msgs[:max(promoting, 0)], func(e string) bool { return strings.HasPrefix(e, "WeightAdvanced: ") }) {
		t.Errorf("no analysed weight step before promotion; events %v", msgs)
	}
	if st.Revision != held.Revision {
		t.Errorf("promoted revision %s, held %s", st.Revision, held.Revision)
	}
}

// A canary that answers only 5xx has no series of successful requests at all: the builtin
// success rate must read 0 % and fail (never "no data", which would wait), so the release rolls
// back within threshold × interval of its analysis clock starting, plus one interval.
func TestBrokenCanaryRollsBackReplicas(t *testing.T) {
	t.Parallel()
	a := newApp(t, "broken", fastAnnotations()) // interval 5s, threshold 2, builtin checks
	a.deploy("demo:v1")
	before := a.stablePods()
	a.apply("demo:v2-broken")
	start := a.analysisStart(time.Minute)
	st := a.waitPhase(time.Minute, spec.PhaseFailed)
	checkBrokenCanaryRolledBack(t, st, start)
	if got := a.stablePods(); !maps.Equal(got, before) {
		t.Errorf("stable pods changed: before %v, after %v", before, got)
	}
}

// The same through a mesh router: the istio router's builtins read the Istio sidecar's series
// (reporter="destination") of the canary's own pods from the real Prometheus.
func TestBrokenCanaryRollsBackIstio(t *testing.T) {
	t.Parallel()
	rc := istioCase()
	rc.image, rc.canaryLoad = "demo:v2-broken", true
	var start time.Time
	var ns string
	track := func(n string) {
		ns = n
		if !start.IsZero() {
			return
		}
		d, err := env.Client.AppsV1().Deployments(n).Get(t.Context(), "web", metav1.GetOptions{})
		if err != nil {
			return
		}
		if st := stateOf(t, d); st.CanaryReady {
			start = st.LastRunAt
		}
	}
	steps := runRouterRelease(t, rc, fastAnnotations(spec.AnnStepWeights, "20,50"), spec.PhaseFailed, track)
	wantSteps(t, steps, "user's", "w0", "w20", "w0", "user's")
	d, err := env.Client.AppsV1().Deployments(ns).Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if start.IsZero() {
		t.Fatal("the canary was never seen ready")
	}
	checkBrokenCanaryRolledBack(t, stateOf(t, d), start)
}

// checkBrokenCanaryRolledBack: the release failed on its success rate reading 0 at threshold
// failed runs, no run was inconclusive, and the last run came no later than (threshold + 1)
// intervals after the analysis clock started.
func checkBrokenCanaryRolledBack(t *testing.T, st spec.State, start time.Time) {
	t.Helper()
	if st.FailedChecks != st.Plan.Threshold || st.FailedRevision != st.Revision {
		t.Errorf("failed state = %s", mustJSON(st))
	}
	i := slices.IndexFunc(st.Checks, func(c spec.CheckResult) bool { return c.Name == spec.CheckSuccessRate })
	if i < 0 || st.Checks[i].Verdict != spec.VerdictFail || st.Checks[i].Value == nil || *st.Checks[i].Value != 0 {
		t.Errorf("success rate of a canary serving only errors = %s, want a failed reading of 0", mustJSON(st.Checks))
	}
	// (threshold + 1) runs: the first run may find no series yet (Prometheus discovers a new pod
	// and needs two scrapes of it for a rate). Each run is due an interval after the one before
	// and starts a few milliseconds later; a second covers that drift.
	bound := time.Duration(st.Plan.Threshold+1)*st.Plan.Interval.Duration + time.Second
	if took := st.LastRunAt.Sub(start); took > bound {
		t.Errorf("the rollback decision came %s after the analysis clock started, want at most (threshold+1)×interval + 1s = %s", took, bound)
	}
	if !strings.Contains(st.AbortReason, "reached the threshold") {
		t.Errorf("rollback reason = %q", st.AbortReason)
	}
}

// A template that reaches the pods without the hold (here: the API server does not call the
// webhook for the namespace, as when it is down with failurePolicy Ignore) is reported as
// Unanalysed at once and never becomes the stable revision; a misspelled key is refused.
func TestUnheldTemplateIsReportedUnanalysed(t *testing.T) {
	t.Parallel()
	a := newApp(t, "drift", fastAnnotations())
	a.deploy("demo:v1")
	first := a.waitFor(30*time.Second, "the running template recorded as stable", func(d *appsv1.Deployment) (bool, string) {
		return stateOf(t, d).Stable != "", d.Annotations[spec.AnnState]
	})
	stable := stateOf(t, first).Stable

	_, stderr, err := a.tryKubectl("annotate", "deployment/"+a.name, "sluice.dev/treshold=3")
	if err == nil || !strings.Contains(stderr, "did you mean sluice.dev/threshold?") {
		t.Errorf("sluice.dev/treshold was not refused with a suggestion (err %v): %q", err, stderr)
	}

	a.kubectl("label", "namespace", a.ns, stack.WebhookOffLabel+"=true")
	_, stderr = a.kubectl("set", "image", "deployment/"+a.name, "app=demo:v2")
	if strings.Contains(stderr, "sluice:") {
		t.Fatalf("the webhook was still called: %q", stderr)
	}
	d := a.waitFor(15*time.Second, "an Unanalysed report", func(d *appsv1.Deployment) (bool, string) {
		return stateOf(t, d).Unanalysed != "", d.Annotations[spec.AnnState]
	})
	st := stateOf(t, d)
	if st.Unanalysed != spec.TemplateHash(&d.Spec.Template) || st.Stable != stable || st.Phase != spec.PhaseIdle {
		t.Errorf("state after the unheld change = %s, want unanalysed %s and stable still %s", mustJSON(st), spec.TemplateHash(&d.Spec.Template), stable)
	}
	a.waitEvent(5*time.Second, "Unanalysed")
	if a.canary() != nil {
		t.Error("a canary was created for a template that was not held")
	}
	if got := sluiceMetric(t, `sluice_release_unanalysed{name="drift",namespace="`+a.ns+`"}`); got != "1" {
		t.Errorf("sluice_release_unanalysed = %q, want 1", got)
	}

	// Back to the stable template (still past the webhook): no longer unanalysed.
	a.kubectl("set", "image", "deployment/"+a.name, "app=demo:v1")
	a.waitFor(15*time.Second, "the report cleared", func(d *appsv1.Deployment) (bool, string) {
		st := stateOf(t, d)
		return st.Unanalysed == "" && st.Stable == stable, d.Annotations[spec.AnnState]
	})
	if n := strings.Count(strings.Join(a.events(), " "), "Unanalysed"); n != 1 {
		t.Errorf("%d Unanalysed events, want exactly one", n)
	}
}

// analysisStart waits until the release's canary is ready and returns when its analysis clock
// started (the state's LastRunAt at that moment).
func (a *app) analysisStart(timeout time.Duration) time.Time {
	a.t.Helper()
	d := a.waitFor(timeout, "the canary ready", func(d *appsv1.Deployment) (bool, string) {
		st := stateOf(a.t, d)
		return st.CanaryReady || st.Phase != spec.PhaseProgressing, st.Message
	})
	st := stateOf(a.t, d)
	if !st.CanaryReady {
		a.t.Fatalf("the release ended before its canary was ready: %s", mustJSON(st))
	}
	return st.LastRunAt
}

// eventsWithMessages returns "Reason: message" of the parent's Events, oldest first.
func (a *app) eventsWithMessages() []string {
	a.t.Helper()
	var out []string
	for _, e := range a.eventList() {
		out = append(out, e.Reason+": "+e.Message)
	}
	return out
}

// sluiceClient is a client acting as Sluice's own identity.
func sluiceClient(t *testing.T) kubernetes.Interface {
	t.Helper()
	_, cfg, err := env.Cluster.UserKubeconfig(stack.Identity)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// sluiceMetric returns the value of series on sluice's /metrics ("" when absent).
func sluiceMetric(t *testing.T, series string) string {
	t.Helper()
	resp, err := http.Get(env.MetricsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

// A labelled Deployment in a namespace the webhook excludes (kube-system here, as in
// deploy/webhook.yaml and sluice's default --excluded-namespaces) is never held, so Sluice never
// releases it: it says so once (NotGuarded) and writes nothing to it.
func TestExcludedNamespaceIsNotGuarded(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d := demoapp.Deployment("unguarded-e2e", "kube-system", "demo:v1", 1)
	d.Labels[spec.LabelEnabled] = spec.ValueEnabled
	api := env.Client.AppsV1().Deployments("kube-system")
	if _, err := api.Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = api.Delete(context.Background(), d.Name, metav1.DeleteOptions{}) })
	waitNotGuarded := func() {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; {
			list, err := env.Client.CoreV1().Events("kube-system").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + d.Name})
			if err != nil {
				t.Fatal(err)
			}
			if slices.ContainsFunc(list.Items, func(e corev1.Event) bool { return e.Reason == "NotGuarded" }) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no NotGuarded event for a labelled Deployment in kube-system")
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	waitNotGuarded()
	patch := `{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"demo:v2"}]}}}}`
	if _, err := api.Patch(ctx, d.Name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	// The change goes through unheld and rolls out natively; the worker (which saw the update
	// long before the rollout ends) neither holds, releases nor adopts it.
	var got *appsv1.Deployment
	for deadline := time.Now().Add(60 * time.Second); ; {
		var err error
		if got, err = api.Get(ctx, d.Name, metav1.GetOptions{}); err != nil {
			t.Fatal(err)
		}
		if got.Status.ObservedGeneration >= got.Generation && got.Status.UpdatedReplicas == 1 && got.Status.Replicas == 1 && got.Status.AvailableReplicas == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the unheld change did not roll out: %+v", got.Status)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if got.Spec.Paused || got.Annotations[spec.AnnState] != "" {
		t.Errorf("Sluice acted on a Deployment in an excluded namespace: paused=%v state=%q", got.Spec.Paused, got.Annotations[spec.AnnState])
	}
	if _, err := api.Get(ctx, spec.CanaryName(d.Name), metav1.GetOptions{}); err == nil {
		t.Error("a canary was created in an excluded namespace")
	}
}
