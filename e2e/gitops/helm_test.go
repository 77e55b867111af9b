package gitops

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/e2e/cluster"
	"github.com/sluice-dev/sluice/rollout/spec"
)

var (
	helmOnce sync.Once
	helmPath string
	helmErr  error
)

// helm runs the helm CLI built from helm.sh/helm/v3 (e2e/tools/helm, cached like the control
// plane's binaries) in the app's namespace, its state in a temp dir, with the admin kubeconfig.
func (a *app) helm(args ...string) (stdout, stderr string) {
	a.t.Helper()
	helmOnce.Do(func() { helmPath, helmErr = cluster.EnsureHelm(context.Background(), cluster.Options{}) })
	if helmErr != nil {
		a.t.Fatalf("build helm: %v", helmErr)
	}
	home := filepath.Join(a.dir, "helm-home")
	cmd := exec.CommandContext(a.t.Context(), helmPath, append([]string{"--namespace", a.ns}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+env.Cluster.Kubeconfig,
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"), "HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"))
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		a.t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String(), errOut.String()
}

// helmRevision is one entry of `helm history`.
type helmRevision struct {
	Revision    int    `json:"revision"`
	Status      string `json:"status"`
	Description string `json:"description"`
}

func (a *app) helmHistory(release string) []helmRevision {
	a.t.Helper()
	out, _ := a.helm("history", release, "-o", "json")
	var h []helmRevision
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		a.t.Fatalf("helm history: %v\n%s", err, out)
	}
	return h
}

func (a *app) helmManifest(release string, revision int) string {
	a.t.Helper()
	out, _ := a.helm("get", "manifest", release, "--revision", strconv.Itoa(revision))
	return out
}

// helmWrites are the writes to the release's Deployment that Helm sent (its user agent is
// Helm/<version>), as "verb name".
func (a *app) helmWrites() []string {
	a.t.Helper()
	var out []string
	for _, w := range a.auditedWrites() {
		if strings.HasPrefix(w.UserAgent, "Helm/") && w.Name == a.name {
			out = append(out, w.Verb+" "+w.Name)
		}
	}
	return out
}

// Acceptance 2: `helm upgrade` of a chart holding an opted-in Deployment. A new image is held
// (and `--wait` returns at once: Helm counts a paused Deployment as ready); an upgrade with the
// same values during the release sends no write to the Deployment and changes nothing of the
// release, though Helm records a new revision; `helm rollback` to the previous revision during
// the release is a revert (SPEC §3): the canary is removed, the hold released, and not one pod
// nor ReplicaSet changes.
func TestHelmUpgradeAndRollbackDuringARelease(t *testing.T) {
	t.Parallel()
	a := newApp(t, "shop", nil)
	chart := filepath.Join("testdata", "shop")

	a.helm("install", "shop", chart, "--set", "image=demo:v1", "--wait", "--timeout", "90s")
	a.waitAvailable(30 * time.Second)
	before, sets := a.stablePods(), a.replicaSets()
	if w := a.helmWrites(); !slices.Equal(w, []string{"create shop"}) {
		t.Errorf("helm install wrote %v to the Deployment, want one create", w)
	}

	// A new image: held, and `helm upgrade --wait` returns while the release runs.
	start := time.Now()
	_, stderr := a.helm("upgrade", "shop", chart, "--set", "image=demo:v2", "--wait", "--timeout", "5m")
	took := time.Since(start)
	d := a.get()
	st := stateOf(t, d)
	t.Logf("helm upgrade --wait of a held image returned after %s (phase %s, paused %v)", took.Round(10*time.Millisecond), st.Phase, d.Spec.Paused)
	if !strings.Contains(stderr, "sluice: held app=demo:v2 for canary analysis") {
		t.Errorf("helm upgrade printed %q, want Sluice's admission warning", stderr)
	}
	if d.Spec.Template.Spec.Containers[0].Image != "demo:v2" || !d.Spec.Paused || st.Phase != spec.PhaseProgressing {
		t.Fatalf("after helm upgrade: image %s paused %v state %s, want demo:v2 stored and held", d.Spec.Template.Spec.Containers[0].Image, d.Spec.Paused, mustJSON(st))
	}
	// The release's schedule alone is 8 steps of 5 s: a --wait that waited for it would take
	// longer than this.
	if took > 20*time.Second {
		t.Errorf("helm upgrade --wait took %s; Helm counts a paused Deployment as ready and should return at once", took)
	}

	// The same values again mid-release: Helm records revision 3 with the same manifest but
	// sends the Deployment nothing, so nothing of the release changes.
	st0 := a.waitCanaryReady(60 * time.Second)
	c0 := a.canary()
	tmpl0 := spec.TemplateHash(&a.get().Spec.Template)
	writes := len(a.helmWrites())
	_, stderr = a.helm("upgrade", "shop", chart, "--set", "image=demo:v2", "--debug")
	if w := a.helmWrites()[writes:]; len(w) > 0 {
		t.Errorf("helm upgrade with the same values wrote %v to the Deployment", w)
	}
	if !strings.Contains(stderr, `Looks like there are no changes for Deployment "shop"`) {
		t.Errorf("helm upgrade --debug did not say the Deployment had no changes:\n%s", stderr)
	}
	if strings.Contains(stderr, "sluice:") {
		t.Errorf("helm upgrade with the same values got an admission warning:\n%s", stderr)
	}
	if a.helmManifest("shop", 3) != a.helmManifest("shop", 2) {
		t.Error("revision 3's manifest differs from revision 2's")
	}
	d = a.get()
	st1 := stateOf(t, d)
	if st1.Revision != st0.Revision || !st1.StartedAt.Equal(st0.StartedAt) || st1.Phase != spec.PhaseProgressing ||
		spec.TemplateHash(&d.Spec.Template) != tmpl0 || !d.Spec.Paused {
		t.Errorf("the same-values upgrade changed the release:\nbefore %s\nafter  %s", mustJSON(st0), mustJSON(st1))
	}
	if c1 := a.canary(); c1 == nil || c1.UID != c0.UID {
		t.Error("the same-values upgrade replaced the canary")
	}

	// helm rollback to revision 1 mid-release: Helm patches the template back to v1, which is the
	// stable revision, so Sluice rolls the release back with no pod churn.
	writes = len(a.helmWrites())
	start = time.Now()
	_, stderr = a.helm("rollback", "shop", "1", "--wait", "--timeout", "5m")
	t.Logf("helm rollback --wait returned after %s", time.Since(start).Round(10*time.Millisecond))
	if w := a.helmWrites()[writes:]; !slices.Equal(w, []string{"patch shop"}) {
		t.Errorf("helm rollback wrote %v to the Deployment, want one patch", w)
	}
	if !strings.Contains(stderr, "is the stable revision") {
		t.Errorf("helm rollback printed %q, want Sluice's revert warning", stderr)
	}
	st2 := a.waitPhase(30*time.Second, spec.PhaseIdle)
	t.Logf("after helm rollback: %s", st2.Message)
	d = a.waitAvailable(30 * time.Second)
	if d.Spec.Paused || d.Spec.Template.Spec.Containers[0].Image != "demo:v1" {
		t.Errorf("after helm rollback: paused %v image %s, want demo:v1 unpaused", d.Spec.Paused, d.Spec.Template.Spec.Containers[0].Image)
	}
	if a.canary() != nil {
		t.Error("canary left after helm rollback")
	}
	if got := a.stablePods(); !maps.Equal(got, before) {
		t.Errorf("stable pods changed by helm rollback: before %v, after %v", before, got)
	}
	if got := a.replicaSets(); !slices.Equal(got, sets) {
		t.Errorf("ReplicaSets %v after helm rollback, want %v", got, sets)
	}
	history := a.helmHistory("shop")
	t.Logf("helm history: %+v", history)
	if last := history[len(history)-1]; last.Revision != 4 || last.Status != "deployed" || a.helmManifest("shop", 4) != a.helmManifest("shop", 1) {
		t.Errorf("helm history ends with %+v, want revision 4 deployed with revision 1's manifest", last)
	}
}
