package e2e

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// Acceptance 1 and 2: `kubectl set image` is held (new template stored, paused, stable pods
// untouched, canary created, warning printed), then the good release steps 10…50 on schedule
// and is promoted.
func TestGoodReleaseIsHeldThenPromoted(t *testing.T) {
	t.Parallel()
	a := newApp(t, "web", fastAnnotations())
	a.deploy("demo:v1")
	before := a.stablePods()

	_, stderr := a.kubectl("set", "image", "deployment/web", "app=demo:v2")
	if want := "sluice: held app=demo:v2 for canary analysis; watch with kubectl sluice status web"; !strings.Contains(stderr, want) {
		t.Errorf("kubectl set image printed %q, want the warning %q", stderr, want)
	}
	d := a.get()
	if got := d.Spec.Template.Spec.Containers[0].Image; got != "demo:v2" || !d.Spec.Paused {
		t.Fatalf("stored Deployment: image %s paused %v, want demo:v2 paused", got, d.Spec.Paused)
	}
	if st := stateOf(t, d); st.Phase != spec.PhaseProgressing || st.Revision != spec.TemplateHash(&d.Spec.Template) {
		t.Fatalf("state after hold = %s", mustJSON(st))
	}
	held := time.Now()
	a.waitFor(30*time.Second, "canary with demo:v2", func(*appsv1.Deployment) (bool, string) {
		c := a.canary()
		if c == nil {
			return false, "no canary yet"
		}
		return c.Spec.Template.Spec.Containers[0].Image == "demo:v2" && c.Spec.Template.Labels[spec.LabelTrack] == spec.ValueCanary, "canary image " + c.Spec.Template.Spec.Containers[0].Image
	})
	if got := a.stablePods(); !maps.Equal(got, before) {
		t.Errorf("stable pods changed while held: before %v, now %v", before, got)
	}

	// Weights step through 10…50, each after one passing analysis interval.
	var weights []int
	a.waitFor(2*time.Minute, "promotion", func(d *appsv1.Deployment) (bool, string) {
		st := stateOf(t, d)
		if st.Weight > 0 && (len(weights) == 0 || weights[len(weights)-1] != st.Weight) {
			weights = append(weights, st.Weight)
		}
		return st.Phase == spec.PhasePromoting || st.Phase == spec.PhaseSucceeded, fmt.Sprintf("%s weight %d: %s", st.Phase, st.Weight, st.Message)
	})
	took := time.Since(held)
	if want := []int{10, 20, 30, 40, 50}; !slices.Equal(weights, want) {
		t.Errorf("weights seen %v, want %v", weights, want)
	}
	// Schedule: 5 analysis intervals of 5 s after the canary is ready; allow 15 s of overhead
	// (canary start, Prometheus discovery, a possibly inconclusive first run).
	if limit := 5*5*time.Second + 15*time.Second; took > limit {
		t.Errorf("reaching promotion took %s, want within %s", took.Round(time.Second), limit)
	}

	st := a.waitPhase(60*time.Second, spec.PhaseSucceeded)
	d = a.get()
	if d.Spec.Paused || d.Status.UpdatedReplicas != 3 || d.Status.AvailableReplicas != 3 || d.Status.Replicas != 3 {
		t.Errorf("after promotion: paused=%v status=%+v", d.Spec.Paused, d.Status)
	}
	for pod, image := range a.stablePods() {
		if image != "demo:v2" {
			t.Errorf("pod %s runs %s after promotion, want demo:v2", pod, image)
		}
	}
	if a.canary() != nil {
		t.Error("canary still exists after promotion")
	}
	if st.Stable != st.Revision {
		t.Errorf("stable revision %s, want the promoted %s", st.Stable, st.Revision)
	}
	events := a.events()
	for _, reason := range []string{"ReleaseHeld", "CanaryReady", "WeightAdvanced", "Promoting", "Promoted"} {
		if !slices.Contains(events, reason) {
			t.Errorf("no %s event; events: %v", reason, events)
		}
	}
}

// Acceptance 3: a bad release fails after threshold failed runs, without replacing a stable
// pod; re-applying the same bad template starts nothing; another template starts a release.
func TestBadReleaseRollsBackAndStaysFailed(t *testing.T) {
	t.Parallel()
	a := newApp(t, "api", fastAnnotations())
	a.deploy("demo:v1")
	before := a.stablePods()

	a.apply("demo:v2-bad")
	st := a.waitPhase(2*time.Minute, spec.PhaseFailed)
	if st.FailedChecks < 2 || st.FailedRevision != st.Revision {
		t.Errorf("failed state = %s", mustJSON(st))
	}
	if a.canary() != nil {
		t.Error("canary still exists after rollback")
	}
	if got := a.stablePods(); !maps.Equal(got, before) {
		t.Errorf("stable pods changed: before %v, after %v", before, got)
	}
	d := a.get()
	if !d.Spec.Paused || d.Spec.Template.Spec.Containers[0].Image != "demo:v2-bad" {
		t.Errorf("after rollback the Deployment should hold demo:v2-bad paused; paused=%v image=%s", d.Spec.Paused, d.Spec.Template.Spec.Containers[0].Image)
	}
	events := a.events()
	for _, reason := range []string{"CheckFailed", "RollingBack", "RolledBack"} {
		if !slices.Contains(events, reason) {
			t.Errorf("no %s event; events: %v", reason, events)
		}
	}

	// Re-applying the same bad manifest changes nothing.
	a.apply("demo:v2-bad")
	a.apply("demo:v2-bad")
	if again := a.state(); again.Phase != spec.PhaseFailed || !again.StartedAt.Equal(st.StartedAt) {
		t.Errorf("re-apply of the failed template changed the release: %s", mustJSON(again))
	}
	if a.canary() != nil {
		t.Error("re-apply of the failed template created a canary")
	}

	// A different template starts a new release.
	stderr := a.apply("demo:v3")
	if !strings.Contains(stderr, "sluice: held app=demo:v3") {
		t.Errorf("apply of v3 printed %q", stderr)
	}
	if next := a.state(); next.Phase != spec.PhaseProgressing || next.Revision == st.Revision || next.Stable != st.Stable {
		t.Errorf("new release state = %s (failed one was %s)", mustJSON(next), mustJSON(st))
	}
	a.waitPhase(2*time.Minute, spec.PhaseSucceeded)
}
