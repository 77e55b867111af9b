package gitops

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	kstatus "github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	"github.com/fluxcd/pkg/ssa/jsondiff"
	"github.com/fluxcd/pkg/ssa/normalize"
	ssautil "github.com/fluxcd/pkg/ssa/utils"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// kustomize-controller's identity: the field manager of its server-side applies (its
// --controller-name default) and the API group its owner labels are prefixed with.
const (
	fluxManager = "kustomize-controller"
	fluxGroup   = "kustomize.toolkit.fluxcd.io"
)

// flux applies manifests the way kustomize-controller reconciles a Kustomization: the same
// library (github.com/fluxcd/pkg/ssa), field manager, owner labels and apply options, and the
// same health check (kstatus through the ssa ResourceManager's status poller).
type flux struct {
	t       *testing.T
	manager *ssa.ResourceManager
	// ignore are the Kustomization's spec.ignore rules (drift detection and apply).
	ignore []jsondiff.IgnoreRule
}

func newFlux(t *testing.T) *flux {
	t.Helper()
	cfg := env.Cluster.RESTConfig()
	// kustomize-controller's client limits (--kube-api-qps, --kube-api-burst defaults).
	cfg.QPS, cfg.Burst = 50, 300
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Mapper: mapper, HTTPClient: httpClient})
	if err != nil {
		t.Fatal(err)
	}
	poller := polling.NewStatusPoller(c, mapper, polling.Options{})
	return &flux{t: t, manager: ssa.NewResourceManager(c, poller, ssa.Owner{Field: fluxManager, Group: fluxGroup})}
}

// applyOptions are kustomize-controller's (internal/controller/kustomization_controller.go,
// apply) for a Kustomization with spec.force false: its exclusion, if-not-present and force
// selectors, and the metadata cleanup that takes fields over from kubectl.
func (f *flux) applyOptions() ssa.ApplyOptions {
	opts := ssa.DefaultApplyOptions()
	opts.Force = false
	opts.ExclusionSelector = map[string]string{fluxGroup + "/reconcile": "disabled", fluxGroup + "/ssa": "Ignore"}
	opts.IfNotPresentSelector = map[string]string{fluxGroup + "/ssa": "IfNotPresent"}
	opts.ForceSelector = map[string]string{fluxGroup + "/force": "enabled"}
	opts.DriftIgnoreRules = f.ignore
	opts.Cleanup = ssa.ApplyCleanupOptions{
		Annotations: []string{corev1.LastAppliedConfigAnnotation, fluxGroup + "/checksum", "fluxcd.io/sync-checksum"},
		Labels:      []string{"fluxcd.io/sync-gc-mark"},
		FieldManagers: []ssa.FieldManager{
			{Name: "kubectl", OperationType: metav1.ManagedFieldsOperationApply},
			{Name: "kubectl", OperationType: metav1.ManagedFieldsOperationUpdate},
			{Name: "before-first-apply", OperationType: metav1.ManagedFieldsOperationUpdate},
			{Name: fluxManager, OperationType: metav1.ManagedFieldsOperationUpdate},
		},
		Exclusions: map[string]string{fluxGroup + "/ssa": "Merge"},
	}
	return opts
}

// objects reads a manifest as kustomize-controller does after `kustomize build`: decoded,
// normalised, and labelled as owned by the Kustomization flux-system/apps.
func (f *flux) objects(manifest []byte) []*unstructured.Unstructured {
	f.t.Helper()
	objs, err := ssautil.ReadObjects(bytes.NewReader(manifest))
	if err != nil {
		f.t.Fatalf("read manifest: %v", err)
	}
	if err := normalize.UnstructuredList(objs); err != nil {
		f.t.Fatal(err)
	}
	f.manager.SetOwnerLabels(objs, "apps", "flux-system")
	return objs
}

// apply is one reconciliation's apply: it returns "Kind/ns/name" → action.
func (f *flux) apply(manifest []byte) map[string]ssa.Action {
	f.t.Helper()
	cs, err := f.manager.ApplyAllStaged(f.t.Context(), f.objects(manifest), f.applyOptions())
	if err != nil {
		f.t.Fatalf("flux apply: %v", err)
	}
	return cs.ToMap()
}

// diff is Flux's drift detection of each object of the manifest (`flux diff kustomization`):
// "Kind/ns/name" → action, and the live and merged objects where it drifted.
func (f *flux) diff(manifest []byte) (map[string]ssa.Action, map[string][2]*unstructured.Unstructured) {
	f.t.Helper()
	actions := map[string]ssa.Action{}
	drifted := map[string][2]*unstructured.Unstructured{}
	opts := ssa.DefaultDiffOptions()
	opts.Exclusions = map[string]string{fluxGroup + "/reconcile": "disabled", fluxGroup + "/ssa": "Ignore"}
	opts.IfNotPresentSelector = map[string]string{fluxGroup + "/ssa": "IfNotPresent"}
	opts.DriftIgnoreRules = f.ignore
	for _, o := range f.objects(manifest) {
		entry, live, merged, err := f.manager.Diff(f.t.Context(), o, opts)
		if err != nil {
			f.t.Fatalf("flux diff %s: %v", ssautil.FmtUnstructured(o), err)
		}
		actions[entry.Subject] = entry.Action
		if live != nil || merged != nil {
			drifted[entry.Subject] = [2]*unstructured.Unstructured{live, merged}
		}
	}
	return actions, drifted
}

// healthCheck is the Kustomization's health check (spec.wait) with timeout: nil once every
// object of the manifest is Current.
func (f *flux) healthCheck(manifest []byte, timeout time.Duration) error {
	f.t.Helper()
	set := object.UnstructuredSetToObjMetadataSet(f.objects(manifest))
	return f.manager.WaitForSetWithContext(f.t.Context(), set, ssa.WaitOptions{Interval: time.Second, Timeout: timeout, FailFast: true})
}

// healthTimeout is the spec.timeout of the health checks that must time out. It is not a
// multiple of the 1 s poll interval: a poll sent at the deadline fails in client-go's rate
// limiter ("would exceed context deadline"), which the status poller reports as an error in
// place of the timeout.
const healthTimeout = 3500 * time.Millisecond

// kstatusOf computes kstatus of the live Deployment.
func kstatusOf(t *testing.T, d *appsv1.Deployment) *kstatus.Result {
	t.Helper()
	d = d.DeepCopy()
	d.APIVersion, d.Kind = "apps/v1", "Deployment"
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(d)
	if err != nil {
		t.Fatal(err)
	}
	res, err := kstatus.Compute(&unstructured.Unstructured{Object: u})
	if err != nil {
		t.Fatalf("kstatus: %v", err)
	}
	return res
}

// notAll says which objects of a change set did not get action ("" when all did).
func notAll(got map[string]ssa.Action, want ssa.Action) string {
	if len(got) == 0 {
		return "no object in the change set"
	}
	var out []string
	for _, subject := range slices.Sorted(maps.Keys(got)) {
		if got[subject] != want {
			out = append(out, fmt.Sprintf("%s %s, want %s", subject, got[subject], want))
		}
	}
	return strings.Join(out, "; ")
}

// wantActions checks that every object of a change set got action.
func wantActions(t *testing.T, what string, got map[string]ssa.Action, want ssa.Action) {
	t.Helper()
	if diff := notAll(got, want); diff != "" {
		t.Errorf("%s: %s", what, diff)
	}
}

// drift is what Flux's drift detection finds in the live objects ("" for nothing).
func (f *flux) drift(manifest []byte) string {
	f.t.Helper()
	actions, drifted := f.diff(manifest)
	out := notAll(actions, ssa.UnchangedAction)
	for _, subject := range slices.Sorted(maps.Keys(drifted)) {
		objs := drifted[subject]
		out += fmt.Sprintf("\n%s drifted:\nlive   %s\nmerged %s", subject, mustJSON(objs[0].Object), mustJSON(objs[1].Object))
	}
	return out
}

// wantNoDrift checks that Flux's drift detection finds every object unchanged.
func (f *flux) wantNoDrift(what string, manifest []byte) {
	f.t.Helper()
	if diff := f.drift(manifest); diff != "" {
		f.t.Errorf("%s: flux diff: %s", what, diff)
	}
}

// Acceptance 1: kustomize-controller's apply of the Git manifest before, during (right after
// the hold and at three different weights) and after a release: `created`, `configured` when Git
// moves, then `unchanged` at every reconciliation of the release, no drift, and kstatus
// InProgress while held (a health check times out) and Current once promoted.
func TestFluxReconcilesDuringARelease(t *testing.T) {
	t.Parallel()
	a := newApp(t, "web", annotations(passing, spec.AnnStepWeights, "10,20,30,40,50"))
	f := newFlux(t)
	svc := mustJSON(a.service())

	// Before: the first deploy is created and becomes Current; a reconcile changes nothing.
	wantActions(t, "first apply", f.apply(a.manifest("demo:v1", svc)), ssa.CreatedAction)
	a.waitAvailable(60 * time.Second)
	if err := f.healthCheck(a.manifest("demo:v1", svc), 30*time.Second); err != nil {
		t.Fatalf("health check of v1: %v", err)
	}
	wantActions(t, "reconcile of v1", f.apply(a.manifest("demo:v1", svc)), ssa.UnchangedAction)
	before := a.stablePods()

	// Git moves to v2: configured, stored as sent, held.
	v2 := a.manifest("demo:v2", svc)
	got := f.apply(v2)
	if want := "Deployment/" + a.ns + "/web"; got[want] != ssa.ConfiguredAction || got["Service/"+a.ns+"/web"] != ssa.UnchangedAction {
		t.Fatalf("apply of v2: %v, want %s configured and the Service unchanged", got, want)
	}
	d := a.get()
	if st := stateOf(t, d); !d.Spec.Paused || st.Phase != spec.PhaseProgressing || st.Revision != spec.TemplateHash(&d.Spec.Template) ||
		d.Spec.Template.Spec.Containers[0].Image != "demo:v2" {
		t.Fatalf("after the apply of v2: paused=%v image=%s state=%s, want demo:v2 stored and held", d.Spec.Paused, d.Spec.Template.Spec.Containers[0].Image, mustJSON(st))
	}

	// During: every reconciliation is unchanged, drift detection finds nothing, kstatus says
	// InProgress, and the stable pods stay.
	reconcile := func(at string) {
		t.Helper()
		a.workerRace("reconcile "+at, func() string { return notAll(f.apply(v2), ssa.UnchangedAction) })
		a.workerRace("drift detection "+at, func() string { return f.drift(v2) })
		d := a.get()
		if res := kstatusOf(t, d); res.Status != kstatus.InProgressStatus {
			t.Errorf("%s: kstatus %s (%s), want InProgress", at, res.Status, res.Message)
		} else {
			t.Logf("%s: kstatus %s: %s", at, res.Status, res.Message)
		}
		if st := stateOf(t, d); st.Phase != spec.PhaseProgressing {
			t.Errorf("%s: phase %s, want Progressing", at, st.Phase)
		}
	}
	reconcile("right after the hold")
	// A Kustomization with wait: true reports the health check failed when its timeout passes
	// during a release.
	start := time.Now()
	err := f.healthCheck(v2, healthTimeout)
	if err == nil || !strings.Contains(err.Error(), "timeout waiting for") || !strings.Contains(err.Error(), "InProgress") {
		t.Errorf("health check during the release: %v, want a timeout with the Deployment InProgress", err)
	}
	t.Logf("health check during the release gave up after %s: %v", time.Since(start).Round(100*time.Millisecond), err)

	var weights []int
	for len(weights) < 3 {
		last := 0
		if len(weights) > 0 {
			last = weights[len(weights)-1]
		}
		d := a.waitFor(40*time.Second, fmt.Sprintf("a weight above %d", last), func(d *appsv1.Deployment) (bool, string) {
			st := stateOf(t, d)
			return st.Phase == spec.PhaseProgressing && st.Weight > last, fmt.Sprintf("phase=%s weight=%d", st.Phase, st.Weight)
		})
		w := stateOf(t, d).Weight
		weights = append(weights, w)
		reconcile(fmt.Sprintf("at weight %d", w))
	}
	t.Logf("reconciled at weights %v", weights)
	if c := a.canary(); c == nil {
		t.Error("no canary during the release")
	} else {
		// The canary is Sluice's, not the Kustomization's: no Flux owner labels (so it is never
		// in Flux's inventory or pruned), garbage-collected with the parent.
		for k := range c.Labels {
			if strings.HasPrefix(k, fluxGroup) {
				t.Errorf("canary carries Flux's label %s", k)
			}
		}
		if owner := metav1.GetControllerOf(c); owner == nil || owner.UID != d.UID {
			t.Errorf("canary's controller is %v, want the parent %s", owner, d.UID)
		}
	}
	if got := a.stablePods(); !maps.Equal(got, before) {
		t.Errorf("stable pods changed during the release: before %v, now %v", before, got)
	}

	// After: promoted, Current, and a reconcile still changes nothing.
	a.waitPhase(90*time.Second, spec.PhaseSucceeded)
	a.waitAvailable(60 * time.Second)
	wantActions(t, "reconcile after promotion", f.apply(v2), ssa.UnchangedAction)
	f.wantNoDrift("after promotion", v2)
	if res := kstatusOf(t, a.get()); res.Status != kstatus.CurrentStatus {
		t.Errorf("after promotion: kstatus %s (%s), want Current", res.Status, res.Message)
	}
	if err := f.healthCheck(v2, 30*time.Second); err != nil {
		t.Errorf("health check after promotion: %v", err)
	}
}

// Acceptance 1, rollback: after a rolled-back release the Deployment stays held on the stable
// ReplicaSet with Git's (failed) template, so Flux's reconciliation is still `unchanged`, and
// kstatus stays InProgress: a Kustomization with wait: true fails its health check until Git
// moves on. Reverting Git is `configured`, releases the hold without a pod change, and is Current.
func TestFluxAfterARollback(t *testing.T) {
	t.Parallel()
	a := newApp(t, "api", annotations(failing, spec.AnnStepWeights, "20,50"))
	f := newFlux(t)
	v1, v2 := a.manifest("demo:v1"), a.manifest("demo:v2-bad")

	wantActions(t, "first apply", f.apply(v1), ssa.CreatedAction)
	a.waitAvailable(60 * time.Second)
	before, sets := a.stablePods(), a.replicaSets()

	wantActions(t, "apply of v2", f.apply(v2), ssa.ConfiguredAction)
	st := a.waitPhase(90*time.Second, spec.PhaseFailed)
	if a.canary() != nil {
		t.Error("canary left after the rollback")
	}
	wantActions(t, "reconcile after the rollback", f.apply(v2), ssa.UnchangedAction)
	f.wantNoDrift("after the rollback", v2)
	d := a.get()
	res := kstatusOf(t, d)
	t.Logf("after the rollback: paused=%v kstatus %s: %s", d.Spec.Paused, res.Status, res.Message)
	if res.Status != kstatus.InProgressStatus || !d.Spec.Paused {
		t.Errorf("after the rollback: paused=%v kstatus %s (%s), want paused and InProgress", d.Spec.Paused, res.Status, res.Message)
	}
	if err := f.healthCheck(v2, healthTimeout); err == nil || !strings.Contains(err.Error(), "InProgress") {
		t.Errorf("health check after the rollback: %v, want a timeout with the Deployment InProgress", err)
	}
	if again := stateOf(t, a.get()); again.Phase != spec.PhaseFailed || !again.StartedAt.Equal(st.StartedAt) {
		t.Errorf("reconciling the failed revision changed the release: %s", mustJSON(again))
	}

	// Git reverted to v1: configured, the hold is released, no pod and no ReplicaSet change.
	wantActions(t, "apply of the Git revert", f.apply(v1), ssa.ConfiguredAction)
	a.waitPhase(30*time.Second, spec.PhaseIdle)
	d = a.waitAvailable(30 * time.Second)
	if d.Spec.Paused {
		t.Error("still paused after the Git revert")
	}
	if res := kstatusOf(t, d); res.Status != kstatus.CurrentStatus {
		t.Errorf("after the Git revert: kstatus %s (%s), want Current", res.Status, res.Message)
	}
	if got := a.stablePods(); !maps.Equal(got, before) {
		t.Errorf("stable pods changed: before %v, after %v", before, got)
	}
	if got := a.replicaSets(); strings.Join(got, ",") != strings.Join(sets, ",") {
		t.Errorf("ReplicaSets %v after the revert, want %v", got, sets)
	}
	wantActions(t, "reconcile after the Git revert", f.apply(v1), ssa.UnchangedAction)
}
