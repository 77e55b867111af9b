package e2e

import (
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// Acceptance 7: setting the image back to the stable one mid-release rolls back at once without
// touching stable pods; `kubectl rollout restart` outside a release passes through.
func TestRevertAndRestart(t *testing.T) {
	t.Parallel()
	a := newApp(t, "pay", fastAnnotations(spec.AnnStepWeights, "10,20,30,40,50,60,70,80"))
	a.deploy("demo:v1")
	before := a.stablePods()
	a.kubectl("set", "image", "deployment/pay", "app=demo:v2")
	a.waitEvent(60*time.Second, "CanaryReady")

	_, stderr := a.kubectl("set", "image", "deployment/pay", "app=demo:v1")
	if !strings.Contains(stderr, "is the stable revision") {
		t.Errorf("revert printed %q", stderr)
	}
	start := time.Now()
	st := a.waitPhase(20*time.Second, spec.PhaseIdle)
	t.Logf("reverted in %s: %s", time.Since(start).Round(10*time.Millisecond), st.Message)
	d := a.get()
	if d.Spec.Paused {
		t.Error("parent still paused after the revert")
	}
	if a.canary() != nil {
		t.Error("canary still exists after the revert")
	}
	if got := a.stablePods(); !maps.Equal(got, before) {
		t.Errorf("stable pods changed by the revert: before %v, after %v", before, got)
	}

	// A restart outside a release goes straight through: new pods, no canary.
	_, stderr = a.kubectl("rollout", "restart", "deployment/pay")
	if strings.Contains(stderr, "held") {
		t.Errorf("restart was held: %q", stderr)
	}
	if d := a.get(); d.Spec.Paused {
		t.Error("restart paused the Deployment")
	}
	a.waitFor(60*time.Second, "restarted pods", func(d *appsv1.Deployment) (bool, string) {
		pods := a.stablePods()
		replaced := 0
		for p := range pods {
			if _, old := before[p]; !old {
				replaced++
			}
		}
		return replaced == 3 && len(pods) == 3 && a.canary() == nil, fmt.Sprintf("%d of 3 pods replaced", replaced)
	})
}

// Acceptance 9: deleting the parent mid-release removes the canary; removing the opt-in label
// finishes cleanly.
func TestDeleteAndOptOutMidRelease(t *testing.T) {
	t.Parallel()
	a := newApp(t, "gone", fastAnnotations(spec.AnnStepWeights, "10,20,30,40,50,60,70,80"))
	a.deploy("demo:v1")
	a.apply("demo:v2")
	a.waitEvent(60*time.Second, "CanaryReady")
	a.kubectl("delete", "deployment", "gone", "--wait=false")
	waitGone(t, a, spec.CanaryName("gone"))

	b := newApp(t, "leave", fastAnnotations(spec.AnnStepWeights, "10,20,30,40,50,60,70,80"))
	b.deploy("demo:v1")
	b.apply("demo:v2")
	b.waitEvent(60*time.Second, "CanaryReady")
	_, stderr := b.kubectl("label", "deployment", "leave", spec.LabelEnabled+"-")
	if !strings.Contains(stderr, "unpausing releases app=demo:v2 without analysis") {
		t.Errorf("opt-out printed %q", stderr)
	}
	waitGone(t, b, spec.CanaryName("leave"))
	d := b.get()
	if d.Spec.Paused {
		t.Error("parent left paused after opt-out")
	}
	if _, ok := d.Annotations[spec.AnnState]; ok {
		t.Error("state annotation left after opt-out")
	}
}

func waitGone(t *testing.T, a *app, name string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := env.Client.AppsV1().Deployments(a.ns).Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still exists after 30s", name)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
