package webhook_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/sluice-dev/sluice/rollout/spec"
	"github.com/sluice-dev/sluice/webhook"
)

var fuzzConfigKeys = []string{
	spec.AnnStepWeight, spec.AnnMaxWeight, spec.AnnStepWeights, spec.AnnInterval, spec.AnnThreshold,
	spec.AnnSkipAnalysis, spec.AnnMetrics, spec.AnnAnalysis, spec.AnnRouter, spec.AnnPort,
	spec.AnnPromote, spec.AnnPause, "unrelated.example.com/x",
}

var fuzzPhases = []spec.Phase{
	"", spec.PhaseIdle, spec.PhaseProgressing, spec.PhasePaused, spec.PhasePromoting,
	spec.PhaseSucceeded, spec.PhaseRollingBack, spec.PhaseFailed, spec.PhaseWaiting, "garbage",
}

// Flags of FuzzHandle.
const (
	fOldOptedIn = 1 << iota
	fNewOptedIn
	fOldPaused
	fNewPaused
	fCreate
	fController
	fRestartBypass
	fDryRun
	fNewKeepsState
	fNewForgedState
	fRestarted
	fOldRestarted
)

// FuzzHandle sends random admission requests (labels, pause flags, release states, images,
// annotation values, forged state) through the handler: it never panics, its patch touches only
// annotations and spec.paused and keeps unknown fields, and it is idempotent: writing the
// object it stored once more yields no patch.
func FuzzHandle(f *testing.F) {
	f.Add(uint16(fOldOptedIn|fNewOptedIn), uint8(0), uint8(0), "v1", "v2", uint8(0), "10", "", "")
	f.Add(uint16(fOldOptedIn|fNewOptedIn|fOldPaused|fNewKeepsState), uint8(2), uint8(0), "v2", "v3", uint8(1), "150", "", "")
	f.Add(uint16(fOldOptedIn|fNewOptedIn|fOldPaused|fNewKeepsState), uint8(2), uint8(1), "v2", "v1", uint8(12), "", "", "")
	f.Add(uint16(fOldOptedIn|fNewOptedIn|fOldPaused|fNewPaused|fNewKeepsState), uint8(7), uint8(1), "v2", "v1", uint8(0), "", "", "")
	f.Add(uint16(fOldOptedIn|fNewOptedIn|fOldPaused|fNewKeepsState), uint8(7), uint8(6), "v3", "v2", uint8(0), "", "", "")
	f.Add(uint16(fOldOptedIn|fOldPaused|fNewPaused|fNewKeepsState), uint8(2), uint8(0), "v2", "v2", uint8(0), "", "", "")
	f.Add(uint16(fOldOptedIn|fNewOptedIn|fOldPaused|fNewForgedState), uint8(3), uint8(0), "v2", "v2", uint8(0), "", `{"phase":"Succeeded"}`, "")
	f.Add(uint16(fNewOptedIn|fCreate|fNewForgedState), uint8(0), uint8(0), "", "v1", uint8(5), "true", `{"phase":"Progressing"}`, "")
	f.Add(uint16(fOldOptedIn|fNewOptedIn|fRestartBypass|fRestarted), uint8(5), uint8(0), "v1", "v1", uint8(0), "", "", "2026")
	f.Add(uint16(fOldOptedIn|fNewOptedIn|fNewKeepsState), uint8(4), uint8(1), "v2", "v1", uint8(5), "true", "", "")
	f.Add(uint16(fOldOptedIn|fNewOptedIn|fController), uint8(2), uint8(0), "v1", "v9", uint8(1), "500", "", "")
	f.Add(uint16(fOldOptedIn|fNewOptedIn|fOldPaused|fNewKeepsState), uint8(9), uint8(0), "v1", "v2", uint8(7), "stepWeight: 0", "", "")

	h := newHandler(nil)
	f.Fuzz(func(t *testing.T, flags uint16, phaseSel, revSel uint8, oldImage, newImage string, keySel uint8, value, forged, tmplAnn string) {
		has := func(f uint16) bool { return flags&f != 0 }
		old := testDeployment("web").Image(oldImage).Paused(has(fOldPaused))
		obj := testDeployment("web").Image(newImage).Paused(has(fNewPaused))
		if !has(fOldOptedIn) {
			old.OptOut()
		}
		if !has(fNewOptedIn) {
			obj.OptOut()
		}
		if has(fOldRestarted) {
			old.Restarted("2026-05-01T11:00:00Z")
		}
		if has(fRestarted) {
			obj.Restarted("2026-05-01T11:59:00Z")
		}
		if tmplAnn != "" {
			obj.d.Spec.Template.Annotations = map[string]string{"note": tmplAnn}
		}
		key := fuzzConfigKeys[int(keySel)%len(fuzzConfigKeys)]
		old.Annotate(key, value)
		obj.Annotate(key, value)

		oldHash, newHash := spec.TemplateHash(&old.d.Spec.Template), spec.TemplateHash(&obj.d.Spec.Template)
		pick := func(sel uint8) string { return []string{oldHash, newHash, "0123456789", ""}[sel%4] }
		if p := fuzzPhases[int(phaseSel)%len(fuzzPhases)]; p == "garbage" {
			old.Annotate(spec.AnnState, "{garbage")
		} else if p != "" {
			st := release(p, func(s *spec.State) {
				s.Revision, s.Stable, s.FailedRevision = pick(revSel), pick(revSel>>2), pick(revSel>>4)
			})
			old.State(st)
		}
		if has(fNewKeepsState) {
			if v, ok := old.d.Annotations[spec.AnnState]; ok {
				obj.Annotate(spec.AnnState, v)
			}
		}
		if has(fNewForgedState) {
			obj.Annotate(spec.AnnState, forged)
		}

		op := admissionv1.Update
		oldObj := old.d
		if has(fCreate) {
			op, oldObj = admissionv1.Create, nil
		}
		var opts []reqOpt
		if has(fController) {
			opts = append(opts, asUser(controllerIdentity))
		}
		if has(fDryRun) {
			opts = append(opts, dryRunReq)
		}
		hh := *h
		hh.RestartBypass = has(fRestartBypass)
		req := request(t, op, oldObj, obj.d, opts...)
		resp := serve(t, &hh, req)

		if !resp.Allowed {
			if resp.Result == nil || resp.Result.Code != http.StatusForbidden || !strings.HasPrefix(resp.Result.Message, "sluice.dev/") {
				t.Fatalf("refused with %+v; want a 403 naming a sluice.dev/ annotation", resp.Result)
			}
			return
		}
		for _, p := range resp.Patches {
			if !ownPath(p.Path) {
				t.Fatalf("patch touches %s %s", p.Operation, p.Path)
			}
		}
		stored := apply(t, req, resp)
		var doc, sent map[string]any
		if err := json.Unmarshal(stored, &doc); err != nil {
			t.Fatalf("patched object is not JSON: %v", err)
		}
		_ = json.Unmarshal(req.Object.Raw, &sent)
		stripOwn(doc)
		stripOwn(sent)
		if diff := cmp.Diff(sent, doc); diff != "" {
			t.Fatalf("stored object differs beyond annotations and spec.paused (-sent +stored):\n%s", diff)
		}

		// Idempotent: the same write of what was stored changes nothing.
		again := req
		again.Operation = admissionv1.Update
		again.OldObject = runtime.RawExtension{Raw: stored}
		again.Object = runtime.RawExtension{Raw: stored}
		resp2 := serve(t, &hh, again)
		if !resp2.Allowed || len(resp2.Patches) != 0 {
			t.Fatalf("second identical write: allowed=%t patches=%v result=%+v warnings=%q; want allowed without a patch\nfirst warnings %q",
				resp2.Allowed, resp2.Patches, resp2.Result, resp2.Warnings, resp.Warnings)
		}
		// And the stored object decides the same way when decided directly.
		var sd = decodeDeployment(t, stored)
		v := webhook.Decide(webhook.Input{Operation: admissionv1.Update, Old: sd, New: sd, Now: now, Defaults: hh.Defaults, RestartBypass: hh.RestartBypass, FromController: has(fController)})
		if !v.Allowed || v.Object != nil {
			t.Fatalf("Decide(stored, stored) = %+v; want allowed as sent", v)
		}
	})
}

func decodeDeployment(t testing.TB, b []byte) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{}
	if err := json.Unmarshal(b, d); err != nil {
		t.Fatal(err)
	}
	return d
}

// BenchmarkHandle measures one admission of a realistic held release: a Deployment whose
// template changes from v1 to v2, decoded, decided and patched.
func BenchmarkHandle(b *testing.B) {
	h := newHandler(nil)
	old := testDeployment("web").Annotate("meta.helm.sh/release-name", "web").Annotate(spec.AnnStepWeights, "5,10,25,50")
	obj := testDeployment("web").Annotate("meta.helm.sh/release-name", "web").Annotate(spec.AnnStepWeights, "5,10,25,50").Image("v2")
	req := request(b, admissionv1.Update, old.d, obj.d)
	resp := h.Handle(b.Context(), req)
	if !resp.Allowed || len(resp.Patches) != 2 {
		b.Fatalf("not a held release: %+v %v", resp.AdmissionResponse, resp.Patches)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(req.Object.Raw) + len(req.OldObject.Raw)))
	for b.Loop() {
		h.Handle(b.Context(), req)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "admissions/s")
}
