package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/sluice-dev/sluice/providers/catalogtest"
	"github.com/sluice-dev/sluice/rollout"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// staleReads is a cache whose reads of one Deployment answer an older version of it: once (a
// write that lands between the reconciler's read and its state patch), or until old is
// cleared (a cache a moment behind).
type staleReads struct {
	client.Client
	parent types.NamespacedName
	old    *appsv1.Deployment
	once   bool
}

func (c *staleReads) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if d, ok := obj.(*appsv1.Deployment); ok && key == c.parent && c.old != nil {
		c.old.DeepCopyInto(d)
		if c.once {
			c.old = nil
		}
		return nil
	}
	return c.Client.Get(ctx, key, obj, opts...)
}

// TestStepOnAStaleParent drives a release with the reconciler in this process, reading the
// parent through a cache that is behind. A write that lands between the read and the state
// patch and leaves the release alone (here an annotation; in a cluster the Deployment
// controller's status or an autoscaler's scale) must not cost the step: it is recorded at once.
// A cache still showing the state the last step replaced must not make the reconciler replay
// that step. A write that replaced the release (a new template the webhook held) must not be
// overwritten by the old release's step: the conflict is no error, and the next step starts
// the new release. Not parallel: it runs sluice without its worker.
func TestStepOnAStaleParent(t *testing.T) {
	a := newApp(t, "web", fastAnnotations(spec.AnnStepWeights, "20,50,80"))
	a.deploy("demo:v1")
	a.kubectl("set", "image", "deployment/web", "app=demo:v2") // held by the webhook
	direct := workerInTest(t)
	key := types.NamespacedName{Namespace: a.ns, Name: "web"}
	now := time.Now().UTC()
	cache := &staleReads{Client: direct, parent: key}
	r := &rollout.Reconciler{Client: cache, APIReader: direct, Recorder: &events.FakeRecorder{}, Analyzer: passingAnalyzer{}, Now: func() time.Time { return now },
		Defaults: catalogtest.Defaults(), Routers: catalogtest.Routers()}
	req := reconcile.Request{NamespacedName: key}
	// staleStep runs one step that reads the parent as it was before kubectl args.
	staleStep := func(args ...string) spec.State {
		t.Helper()
		cache.old, cache.once = a.get(), true
		a.kubectl(args...)
		if _, err := r.Reconcile(t.Context(), req); err != nil {
			t.Fatalf("step on a stale parent: %v", err)
		}
		return a.state()
	}
	touches := 0
	touch := func() []string {
		touches++
		return []string{"annotate", "--overwrite", "deployment/web", fmt.Sprintf("example.com/touched=%d", touches)}
	}

	if st := staleStep(touch()...); st.StepAt.IsZero() || st.Weight != 20 {
		t.Fatalf("the first step was not recorded: %s", mustJSON(st))
	}
	deadline := time.Now().Add(time.Minute)
	for st := a.state(); !st.CanaryReady; st = staleStep(touch()...) {
		if time.Now().After(deadline) {
			t.Fatalf("canary never ready: %s", st.Message)
		}
		time.Sleep(200 * time.Millisecond)
	}
	atWeight20 := a.get()
	now = now.Add(time.Minute) // the first analysis is due
	st := staleStep(touch()...)
	if st.Weight != 50 || !st.LastRunAt.Equal(now) {
		t.Fatalf("the analysed step was not recorded (want weight 50, last run %s): %s", now, mustJSON(st))
	}
	if c := a.canary(); *c.Spec.Replicas != 3 { // 3 of 6 pods
		t.Fatalf("canary has %d replicas at weight 50, want 3", *c.Spec.Replicas)
	}

	// A cache still showing the step before must not take the release back to it, not even for
	// a moment: the canary's spec is not written at all.
	generation := a.canary().Generation
	cache.old, cache.once = atWeight20, false
	if _, err := r.Reconcile(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	cache.old = nil
	if back := a.state(); back.Weight != 50 || !back.StepAt.Equal(st.StepAt) {
		t.Fatalf("a step read from a cache one step behind went back: %s", mustJSON(back))
	}
	if c := a.canary(); *c.Spec.Replicas != 3 || c.Generation != generation {
		t.Fatalf("a step read from a cache one step behind resized the canary (now %d replicas, generation %d → %d)", *c.Spec.Replicas, generation, c.Generation)
	}

	// The old release's next analysis is due when v3 is held: its step must give way.
	for st := a.state(); !st.CanaryReady || a.canary().Status.AvailableReplicas < 3; st = a.state() {
		if _, err := r.Reconcile(t.Context(), req); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("canary never ready at weight 50: %s", st.Message)
		}
		time.Sleep(200 * time.Millisecond)
	}
	old := a.state()
	now = now.Add(time.Minute)
	st = staleStep("set", "image", "deployment/web", "app=demo:v3")
	if st.Revision == old.Revision || st.Image != "app=demo:v3" {
		t.Fatalf("the old release's step overwrote the held template's release: %s", mustJSON(st))
	}
	// The conflict is no error; the next steps start the new release (a step may still meet a
	// conflict: the canary's status is being written after the old release's resize).
	deadline = time.Now().Add(10 * time.Second)
	for st = a.state(); st.StepAt.IsZero(); st = a.state() {
		if _, err := r.Reconcile(t.Context(), req); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new release was not started: %s", mustJSON(st))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st.Weight != 20 || st.Image != "app=demo:v3" {
		t.Fatalf("the new release started wrong: %s", mustJSON(st))
	}
	if c := a.canary(); c.Annotations[spec.AnnRevision] != st.Revision {
		t.Fatalf("canary is of revision %s, want the new release's %s", c.Annotations[spec.AnnRevision], st.Revision)
	}
}
