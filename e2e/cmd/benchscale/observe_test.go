package main

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/sluice-dev/sluice/rollout/spec"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func sec(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

// parent is the Deployment app-0000 with Sluice's state and the given rollout status.
func parent(t *testing.T, st spec.State, updated, available int32) *unstructured.Unstructured {
	t.Helper()
	d := deployment("bench", "app-0000", nil, map[string]string{spec.AnnState: st.Encode()})
	d.Generation, d.Status.ObservedGeneration = 3, 3
	d.Spec.Paused = st.Phase.Holds()
	d.Status.Replicas, d.Status.UpdatedReplicas, d.Status.AvailableReplicas = replicas, updated, available
	return toUnstructured(t, d)
}

func toUnstructured(t *testing.T, d *appsv1.Deployment) *unstructured.Unstructured {
	t.Helper()
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(d)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: obj}
	u.SetKind("Deployment")
	return u
}

func TestSluiceObserve(t *testing.T) {
	tr := newTracker([]string{"app-0000"})
	var ctl sluiceCtl
	see := func(obj *unstructured.Unstructured, at time.Time) {
		tr.update(func() { ctl.observe(tr, watch.Modified, obj, at) })
	}
	r := tr.releases["app-0000"]
	progressing := spec.State{Phase: spec.PhaseProgressing, Revision: "new", Stable: "old"}

	see(parent(t, spec.State{Phase: spec.PhaseIdle, Stable: "old"}, 1, 1), sec(-20))
	if ok, _ := ctl.readyDetail(tr); ok {
		t.Fatal("ready before its 2 replicas are available")
	}
	see(parent(t, spec.State{Phase: spec.PhaseIdle, Stable: "old"}, 2, 2), sec(-19))
	if ok, detail := ctl.readyDetail(tr); !ok {
		t.Fatalf("not ready: %s", detail)
	}

	r.SetImage = sec(0)
	canary := toUnstructured(t, deployment("bench", "app-0000-canary", nil, nil))
	see(canary, sec(0.4))
	see(canary, sec(0.9)) // a later event of the canary is not its start
	see(parent(t, progressing, 2, 2), sec(0.3))
	ready := progressing
	ready.CanaryReady, ready.LastRunAt = true, sec(1.5)
	see(parent(t, ready, 2, 2), sec(1.6))
	run1 := ready
	run1.Iteration, run1.LastRunAt = 1, sec(11.6)
	see(parent(t, run1, 2, 2), sec(11.7))
	see(parent(t, run1, 2, 2), sec(11.9)) // the same state again: the same run
	run2 := run1
	run2.Iteration, run2.LastRunAt = 2, sec(21.7)
	see(parent(t, run2, 2, 2), sec(21.8))
	promoting := run2
	promoting.Phase, promoting.Iteration, promoting.LastRunAt = spec.PhasePromoting, 3, sec(31.9)
	see(parent(t, promoting, 2, 2), sec(32))
	succeeded := spec.State{Phase: spec.PhaseSucceeded, Revision: "new", Stable: "new", LastRunAt: sec(31.9)}
	see(parent(t, succeeded, 1, 2), sec(33)) // not rolled yet
	if !r.Done.IsZero() {
		t.Fatalf("done at %v before the Deployment rolled", r.Done)
	}
	see(parent(t, succeeded, 2, 2), sec(34))
	see(parent(t, succeeded, 2, 2), sec(35))

	if r.Started != sec(0.4) {
		t.Errorf("Started = %v, want the canary's first event after set image (0.4 s)", r.Started.Sub(t0))
	}
	if r.Done != sec(34) {
		t.Errorf("Done = %v, want the first event Succeeded and rolled (34 s)", r.Done.Sub(t0))
	}
	if diff := cmp.Diff([]time.Time{sec(1.5), sec(11.6), sec(21.7), sec(31.9)}, r.Runs); diff != "" {
		t.Errorf("Runs: canary ready then 3 runs (-want +got):\n%s", diff)
	}
	if r.Err != nil {
		t.Errorf("Err = %v", r.Err)
	}

	failed := spec.State{Phase: spec.PhaseFailed, Revision: "new", Stable: "old", Message: "3 failed analysis runs"}
	see(parent(t, failed, 2, 2), sec(40))
	if r.Err == nil {
		t.Error("a Failed release is not reported")
	}
}

// canaryObj is the Canary app-0000 with the given status.
func canaryObj(phase string, iterations int64, ltt time.Time) *unstructured.Unstructured {
	c := canary("bench", "app-0000")
	c.Object["status"] = map[string]any{"phase": phase, "iterations": iterations, "lastTransitionTime": ltt.UTC().Format(time.RFC3339)}
	return c
}

func TestFlaggerObserve(t *testing.T) {
	tr := newTracker([]string{"app-0000"})
	ctl := &flaggerCtl{}
	see := func(obj *unstructured.Unstructured, at time.Time) {
		tr.update(func() { ctl.observe(tr, watch.Modified, obj, at) })
	}
	r := tr.releases["app-0000"]
	target := func(n int32) *unstructured.Unstructured {
		d := deployment("bench", "app-0000", nil, nil)
		d.Spec.Replicas = &n
		return toUnstructured(t, d)
	}

	see(canaryObj("Initializing", 0, sec(-30)), sec(-30))
	if ok, _ := ctl.readyDetail(tr); ok {
		t.Fatal("ready while Initializing")
	}
	see(canaryObj("Initialized", 0, sec(-20)), sec(-20))
	if ok, detail := ctl.readyDetail(tr); !ok {
		t.Fatalf("not ready: %s", detail)
	}

	r.SetImage = sec(0)
	see(target(0), sec(0.1)) // the new template, still scaled to zero
	see(target(2), sec(4.2)) // Flagger scales its canary up
	see(target(2), sec(5))
	see(canaryObj("Progressing", 0, sec(4)), sec(4.3))
	see(canaryObj("Progressing", 1, sec(14)), sec(14.4))
	see(canaryObj("Progressing", 1, sec(15)), sec(15.1)) // another write in the same iteration
	see(canaryObj("Progressing", 2, sec(24)), sec(24.4))
	see(canaryObj("Progressing", 3, sec(35)), sec(35.4))
	see(canaryObj("Progressing", 4, sec(44)), sec(44.4))
	see(canaryObj("Promoting", 0, sec(54)), sec(54.4))
	see(canaryObj("Finalising", 0, sec(64)), sec(64.4))
	if !r.Done.IsZero() {
		t.Fatal("done before Succeeded")
	}
	see(canaryObj("Succeeded", 0, sec(74)), sec(74.4))
	see(canaryObj("Succeeded", 0, sec(74)), sec(75))

	if r.Started != sec(4.2) {
		t.Errorf("Started = %v, want the scale-up from zero (4.2 s)", r.Started.Sub(t0))
	}
	if r.Done != sec(74.4) {
		t.Errorf("Done = %v, want the first Succeeded event (74.4 s)", r.Done.Sub(t0))
	}
	want := []time.Time{sec(14), sec(24), sec(35), sec(44), sec(54)}
	if diff := cmp.Diff(want, r.Runs); diff != "" {
		t.Errorf("Runs: iterations 1-4 and Promoting, first write of each (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]time.Duration{0, time.Second, -time.Second, 0}, lags(r.Runs, interval)); diff != "" {
		t.Errorf("lags (-want +got):\n%s", diff)
	}
}
