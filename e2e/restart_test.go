package e2e

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// Acceptance 8: killing sluice mid-release and starting it again resumes at the same step: the
// release is not restarted, its weight and counts are kept. Not parallel: it takes sluice away.
func TestControllerRestartResumes(t *testing.T) {
	a := newApp(t, "resume", fastAnnotations(spec.AnnStepWeights, "10,20,30,40"))
	a.deploy("demo:v1")
	a.apply("demo:v2")
	a.waitFor(90*time.Second, "weight 20", func(d *appsv1.Deployment) (bool, string) {
		st := stateOf(t, d)
		return st.Weight >= 20, st.Message
	})
	if err := env.KillSluice(); err != nil {
		t.Fatal(err)
	}
	killed := a.state()
	canary := a.canary()
	t.Logf("killed sluice at %s weight %d step %d", killed.Phase, killed.Weight, killed.Step)

	if err := env.StartSluice(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Right after the restart, and until it finishes, the release carries on from where it was.
	a.waitFor(3*time.Minute, "the resumed release to succeed", func(d *appsv1.Deployment) (bool, string) {
		st := stateOf(t, d)
		if st.Revision != killed.Revision || !st.StartedAt.Equal(killed.StartedAt) {
			t.Fatalf("release restarted: was %s, now %s", mustJSON(killed), mustJSON(st))
		}
		if st.Phase == spec.PhaseProgressing && (st.Step < killed.Step || st.Weight < killed.Weight || st.FailedChecks < killed.FailedChecks) {
			t.Fatalf("release went back from step %d (weight %d) to step %d (weight %d)", killed.Step, killed.Weight, st.Step, st.Weight)
		}
		if c := a.canary(); c != nil && c.UID != canary.UID {
			t.Fatalf("canary was recreated")
		}
		return st.Phase == spec.PhaseSucceeded, st.Message
	})
}
