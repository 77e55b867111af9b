package e2e

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// Acceptance 4: re-applying the same manifest during a release changes nothing, and
// server-side dry-run agrees.
func TestReapplyDuringReleaseIsNoop(t *testing.T) {
	t.Parallel()
	a := newApp(t, "shop", fastAnnotations(spec.AnnStepWeights, "10,20,30,40,50,60,70,80"))
	a.deploy("demo:v1")
	a.apply("demo:v2")
	a.waitEvent(60*time.Second, "CanaryReady")
	d0, c0 := a.get(), a.canary()

	for range 3 {
		if stderr := a.apply("demo:v2"); strings.Contains(stderr, "held") {
			t.Errorf("re-apply printed %q", stderr)
		}
	}
	d1, c1 := a.get(), a.canary()
	st0, st1 := stateOf(t, d0), stateOf(t, d1)
	if st1.Revision != st0.Revision || !st1.StartedAt.Equal(st0.StartedAt) || st1.Phase != spec.PhaseProgressing {
		t.Errorf("re-apply changed the release:\nbefore %s\nafter  %s", mustJSON(st0), mustJSON(st1))
	}
	if c1 == nil || c1.UID != c0.UID || c1.Annotations[spec.AnnRevision] != c0.Annotations[spec.AnnRevision] {
		t.Error("re-apply replaced the canary")
	}
	if d1.Spec.Template.Spec.Containers[0].Image != "demo:v2" || !d1.Spec.Paused {
		t.Errorf("stored: image %s paused %v", d1.Spec.Template.Spec.Containers[0].Image, d1.Spec.Paused)
	}

	// Server-side dry-run sees exactly what a real apply would store.
	out, _ := a.kubectl("apply", "--server-side", "--force-conflicts", "--dry-run=server", "-o", "json", "-f", a.manifest("demo:v2"))
	var dry appsv1.Deployment
	if err := json.Unmarshal([]byte(out), &dry); err != nil {
		t.Fatalf("decode dry-run output: %v", err)
	}
	live := a.get()
	if dry.Annotations[spec.AnnState] != live.Annotations[spec.AnnState] || dry.Spec.Paused != live.Spec.Paused {
		t.Errorf("dry-run differs from live:\ndry  paused=%v state=%s\nlive paused=%v state=%s",
			dry.Spec.Paused, dry.Annotations[spec.AnnState], live.Spec.Paused, live.Annotations[spec.AnnState])
	}
	// A dry-run of a new template shows the hold it would get, and stores nothing.
	out, stderr := a.kubectl("apply", "--server-side", "--force-conflicts", "--dry-run=server", "-o", "json", "-f", a.manifest("demo:v9"))
	if err := json.Unmarshal([]byte(out), &dry); err != nil {
		t.Fatal(err)
	}
	if st := stateOf(t, &dry); !dry.Spec.Paused || st.Phase != spec.PhaseProgressing || st.Revision == st1.Revision || !strings.Contains(stderr, "held app=demo:v9") {
		t.Errorf("dry-run of a new template: paused=%v state=%s stderr=%q", dry.Spec.Paused, mustJSON(st), stderr)
	}
	if got := stateOf(t, a.get()); got.Revision != st1.Revision {
		t.Errorf("dry-run changed the stored release to %s", got.Revision)
	}

	// kubectl sluice shows the release and promotes exactly this revision.
	out, err := env.Plugin(t.Context(), "-n", a.ns, "status", a.name)
	if err != nil || !strings.Contains(out, "Progressing") || !strings.Contains(out, st1.Revision) || !strings.Contains(out, "canary through replicas") {
		t.Errorf("kubectl sluice status: %v\n%s", err, out)
	}
	if out, err := env.Plugin(t.Context(), "-n", a.ns, "promote", a.name); err != nil || !strings.Contains(out, spec.AnnPromote+"="+st1.Revision) {
		t.Errorf("kubectl sluice promote: %v\n%s", err, out)
	}
	a.waitPhase(60*time.Second, spec.PhaseSucceeded)
	if _, ok := a.get().Annotations[spec.AnnPromote]; ok {
		t.Error("the consumed promote annotation was left on the Deployment")
	}
}

// Acceptance 5: a write that edits or drops sluice.dev/state keeps the stored state.
func TestStateAnnotationCannotBeForged(t *testing.T) {
	t.Parallel()
	a := newApp(t, "cart", fastAnnotations(spec.AnnStepWeights, "10,20,30,40,50,60,70,80"))
	a.deploy("demo:v1")
	a.apply("demo:v2")
	want := a.get().Annotations[spec.AnnState]

	for name, edit := range map[string]func(map[string]string){
		"dropped": func(ann map[string]string) { delete(ann, spec.AnnState) },
		"edited":  func(ann map[string]string) { ann[spec.AnnState] = `{"phase":"Succeeded"}` },
	} {
		d := a.get()
		stable := d.Annotations[spec.AnnState]
		edit(d.Annotations)
		d.ManagedFields = nil
		d.APIVersion, d.Kind = "apps/v1", "Deployment"
		d.ResourceVersion = "" // an unconditional replace, as a GitOps tool with Replace=true does
		b, _ := json.Marshal(d)
		path := t.TempDir() + "/replace.json"
		writeFile(t, path, b)
		// kubectl replace sends the live resourceVersion it reads just before; the worker may
		// write in between, so retry on a conflict as a user or a GitOps tool would.
		var stderr string
		for attempt := 0; ; attempt++ {
			_, e, err := a.tryKubectl("replace", "-f", path)
			stderr = e
			if err == nil {
				break
			}
			if attempt == 5 || !strings.Contains(e, "Conflict") {
				t.Fatalf("kubectl replace: %v\n%s", err, e)
			}
		}
		got := a.get().Annotations[spec.AnnState]
		if got == "" {
			t.Errorf("%s: state annotation dropped", name)
			continue
		}
		// The worker may have advanced the state meanwhile; it must still be the same release.
		gotSt, wantSt := mustState(t, got), mustState(t, stable)
		if gotSt.Revision != wantSt.Revision || !gotSt.StartedAt.Equal(wantSt.StartedAt) || gotSt.Phase == spec.PhaseSucceeded {
			t.Errorf("%s: stored state %s, want the release %s kept", name, got, want)
		}
		if !strings.Contains(stderr, "kept "+spec.AnnState) {
			t.Errorf("%s: kubectl replace printed %q, want a warning that the state was kept", name, stderr)
		}
	}
}

// Acceptance 6: invalid annotations are refused at apply time with a message naming the
// annotation, and nothing is stored.
func TestInvalidConfigIsRefused(t *testing.T) {
	t.Parallel()
	a := newApp(t, "bad-config", map[string]string{spec.AnnMaxWeight: "150"})
	_, stderr, err := a.tryKubectl("apply", "-f", a.manifest("demo:v1"))
	if err == nil || !strings.Contains(stderr, `sluice.dev/max-weight: must be 1..100, got "150"`) {
		t.Fatalf("apply of max-weight 150: err=%v stderr=%q", err, stderr)
	}
	if _, _, err := a.tryKubectl("get", "deployment", "bad-config"); err == nil {
		t.Error("the refused Deployment was stored")
	}

	// On an existing Deployment, a bad edit is refused and the old object stays.
	a.ann = fastAnnotations()
	a.deploy("demo:v1")
	before := a.get()
	a.ann = fastAnnotations(spec.AnnInterval, "2s", spec.AnnMetrics, "- name: x\n  thresholdRange: {min: 1}\n")
	_, stderr, err = a.tryKubectl("apply", "-f", a.manifest("demo:v2"))
	if err == nil || !strings.Contains(stderr, "sluice.dev/interval: must be at least 5s") || !strings.Contains(stderr, "sluice.dev/metrics[x].query") {
		t.Errorf("apply of a bad interval and metric: err=%v stderr=%q", err, stderr)
	}
	after := a.get()
	if after.ResourceVersion != before.ResourceVersion || !maps.Equal(after.Annotations, before.Annotations) {
		t.Error("the refused update changed the stored Deployment")
	}
}

func mustState(t *testing.T, raw string) spec.State {
	t.Helper()
	st, err := spec.ReadState(map[string]string{spec.AnnState: raw})
	if err != nil {
		t.Fatal(err)
	}
	return st
}
