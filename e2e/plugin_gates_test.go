package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// Issue 11, `kubectl sluice approve|halt|unhalt` against the real worker: status shows where a
// Waiting release waits and who closed the gate; approve opens a hook's closed
// confirm-promotion gate once (the hook still says no); halt holds a release that has no hooks
// at all before its next weight, and unhalt lets it finish.
func TestPluginApproveAndHalt(t *testing.T) {
	t.Parallel()
	t.Run("approve", func(t *testing.T) {
		t.Parallel()
		h := newHookServer(t)
		h.set("/approval", http.StatusForbidden)
		a := newApp(t, "gated", fastAnnotations(spec.AnnStepWeights, "20,40",
			spec.AnnWebhooks, hooksAnnotation(h.srv.URL, hook("approval", spec.HookConfirmPromotion))))
		a.deploy("demo:v1")
		a.kubectl("set", "image", "deployment/gated", "app=demo:v2")
		st := a.waitGate(90*time.Second, spec.HookConfirmPromotion)

		status := a.plugin("status", a.name)
		if !strings.Contains(status, `waiting at confirm-promotion (hook approval: HTTP 403 "answer 403") since `) {
			t.Errorf("status of a release waiting at a closed confirm-promotion gate:\n%s", status)
		}
		if out := a.plugin("approve", a.name); !strings.Contains(out, spec.AnnApprove+"="+st.Revision) {
			t.Errorf("approve wrote %q, want %s=%s", out, spec.AnnApprove, st.Revision)
		}
		done := a.waitPhase(90*time.Second, spec.PhaseSucceeded)
		if done.Revision != st.Revision {
			t.Errorf("promoted %s, want the approved %s", done.Revision, st.Revision)
		}
	})

	t.Run("halt", func(t *testing.T) {
		t.Parallel()
		a := newApp(t, "halted", fastAnnotations(spec.AnnStepWeights, "20,40,60"))
		a.deploy("demo:v1")
		a.kubectl("set", "image", "deployment/halted", "app=demo:v2")
		st := a.waitPhase(60*time.Second, spec.PhaseProgressing)
		if out := a.plugin("halt", a.name); !strings.Contains(out, spec.AnnHalt+"="+st.Revision) {
			t.Fatalf("halt wrote %q, want %s=%s", out, spec.AnnHalt, st.Revision)
		}
		var held spec.State
		a.waitFor(60*time.Second, "Waiting at a halted gate", func(d *appsv1.Deployment) (bool, string) {
			held = stateOf(a.t, d)
			return held.Phase == spec.PhaseWaiting && held.Gate != nil && held.Gate.Hook == "", fmt.Sprintf("%s: %s", held.Phase, held.Message)
		})
		status := a.plugin("status", a.name)
		if !strings.Contains(status, "Gate:") || !strings.Contains(status, "waiting at "+string(held.Gate.Type)+" (halted by "+spec.AnnHalt+")") {
			t.Errorf("status of a halted release:\n%s", status)
		}
		// Still held an analysis run later.
		held = a.waitRuns(30*time.Second, held, 1)
		if held.Phase != spec.PhaseWaiting {
			t.Errorf("halted release went on: %s at %d%%", held.Phase, held.Weight)
		}
		if out := a.plugin("unhalt", a.name); !strings.Contains(out, spec.AnnHalt+"-") {
			t.Errorf("unhalt wrote %q, want %s-", out, spec.AnnHalt)
		}
		a.waitPhase(90*time.Second, spec.PhaseSucceeded)
	})
}
