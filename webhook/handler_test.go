package webhook_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	evanphx "github.com/evanphx/json-patch/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/sluice-dev/sluice/providers/catalogtest"
	"github.com/sluice-dev/sluice/rollout/spec"
	"github.com/sluice-dev/sluice/webhook"
)

type jsonpatchOp = jsonpatch.JsonPatchOperation

const controllerIdentity = "system:serviceaccount:sluice-system:sluice"

func newHandler(rec events.EventRecorder) *webhook.Handler {
	return &webhook.Handler{
		ControllerIdentity: controllerIdentity,
		RestartBypass:      true,
		Defaults:           catalogtest.Defaults(),
		Recorder:           rec,
		Now:                func() time.Time { return now },
	}
}

// unknownFields are fields a newer API server may send that this version's Go types do not
// know; the webhook must never remove them.
var unknownFields = map[string]any{
	"/futureTopLevel":                          map[string]any{"a": 1.0},
	"/metadata/futureMeta":                     "x",
	"/spec/futureSpecField":                    []any{"y"},
	"/spec/template/spec/futurePodField":       true,
	"/spec/template/spec/containers/0/futureC": map[string]any{"z": "w"},
	"/status/futureStatus":                     2.0,
}

// raw encodes d as the API server would, plus the unknown fields.
func raw(t testing.TB, d *appsv1.Deployment) []byte {
	t.Helper()
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	ops := make([]map[string]any, 0, len(unknownFields))
	for _, p := range slices.Sorted(mapsKeys(unknownFields)) {
		ops = append(ops, map[string]any{"op": "add", "path": p, "value": unknownFields[p]})
	}
	pb, _ := json.Marshal(ops)
	patch, err := evanphx.DecodePatch(pb)
	if err != nil {
		t.Fatal(err)
	}
	out, err := patch.Apply(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

type reqOpt func(*admission.Request)

func request(t testing.TB, op admissionv1.Operation, old, obj *appsv1.Deployment, opts ...reqOpt) admission.Request {
	t.Helper()
	r := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:      "b7f1e6c2-0000-4000-8000-000000000002",
		Kind:     metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"},
		Resource: metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"},
		Name:     obj.Name, Namespace: obj.Namespace, Operation: op,
		UserInfo: authenticationv1.UserInfo{Username: "alice@example.com", Groups: []string{"system:authenticated"}},
		Object:   runtime.RawExtension{Raw: raw(t, obj)},
		DryRun:   ptr(false),
	}}
	if old != nil {
		r.OldObject = runtime.RawExtension{Raw: raw(t, old)}
	}
	for _, o := range opts {
		o(&r)
	}
	return r
}

func dryRunReq(r *admission.Request) { r.DryRun = ptr(true) }

func asUser(name string) reqOpt {
	return func(r *admission.Request) { r.UserInfo.Username = name }
}

// apply applies the response's patch to the request's object.
func apply(t testing.TB, req admission.Request, resp admission.Response) []byte {
	t.Helper()
	if len(resp.Patches) == 0 {
		return req.Object.Raw
	}
	pb, err := json.Marshal(resp.Patches)
	if err != nil {
		t.Fatal(err)
	}
	patch, err := evanphx.DecodePatch(pb)
	if err != nil {
		t.Fatalf("decode patch %s: %v", pb, err)
	}
	out, err := patch.Apply(req.Object.Raw)
	if err != nil {
		t.Fatalf("apply patch %s: %v", pb, err)
	}
	return out
}

// ownPath reports whether a patch path is one the webhook may touch.
func ownPath(p string) bool {
	return p == "/metadata/annotations" || strings.HasPrefix(p, "/metadata/annotations/") || p == "/spec/paused"
}

func TestHandlerPatch(t *testing.T) {
	web := func() *deployment { return testDeployment("web") }
	inFlight := release(spec.PhaseProgressing)
	tests := map[string]struct {
		req         func(t *testing.T) admission.Request
		wantPaths   []string // "op path", sorted
		wantPaused  bool
		wantState   spec.Phase // "" for no state annotation
		wantWarning string     // one of the warnings
	}{
		"held release: state added to existing annotations, paused set": {
			req: func(t *testing.T) admission.Request {
				return request(t, admissionv1.Update, web().Annotate("team", "shop").d, web().Annotate("team", "shop").Image("v2").d)
			},
			wantPaths:   []string{"add /metadata/annotations/sluice.dev~1state", "add /spec/paused"},
			wantPaused:  true,
			wantState:   spec.PhaseProgressing,
			wantWarning: "sluice: held app=ghcr.io/x/app:v2 for canary analysis; watch with kubectl sluice status web",
		},
		"held release: no annotations before": {
			req: func(t *testing.T) admission.Request {
				return request(t, admissionv1.Update, web().d, web().Image("v2").d)
			},
			wantPaths:   []string{"add /metadata/annotations", "add /spec/paused"},
			wantPaused:  true,
			wantState:   spec.PhaseProgressing,
			wantWarning: "sluice: held app=ghcr.io/x/app:v2 for canary analysis; watch with kubectl sluice status web",
		},
		"replaced in flight: state replaced, already paused": {
			req: func(t *testing.T) admission.Request {
				return request(t, admissionv1.Update, web().Image("v2").Paused(true).State(inFlight).d, web().Image("v3").Paused(true).State(inFlight).d)
			},
			wantPaths:   []string{"replace /metadata/annotations/sluice.dev~1state"},
			wantPaused:  true,
			wantState:   spec.PhaseProgressing,
			wantWarning: "sluice: release 3dac40ffee in flight is replaced by 625bc27643; analysis restarts on the newest template",
		},
		"state dropped by kubectl replace: restored, paused re-asserted": {
			req: func(t *testing.T) admission.Request {
				return request(t, admissionv1.Update, web().Image("v2").Paused(true).State(inFlight).d, web().Image("v2").d)
			},
			wantPaths:   []string{"add /metadata/annotations", "add /spec/paused"},
			wantPaused:  true,
			wantState:   spec.PhaseProgressing,
			wantWarning: "sluice: kept sluice.dev/state as it was: it is written only by Sluice",
		},
		"opt-out: state removed, unpaused": {
			req: func(t *testing.T) admission.Request {
				return request(t, admissionv1.Update, web().Image("v2").Paused(true).State(inFlight).d, web().Image("v2").Paused(true).State(inFlight).OptOut().d)
			},
			wantPaths:   []string{"remove /metadata/annotations/sluice.dev~1state", "replace /spec/paused"},
			wantWarning: "sluice: opted out: unpausing releases app=ghcr.io/x/app:v2 without analysis",
		},
		"create with a forged state: state removed": {
			req: func(t *testing.T) admission.Request {
				return request(t, admissionv1.Create, nil, web().Annotate("team", "shop").State(inFlight).d)
			},
			wantPaths:   []string{"remove /metadata/annotations/sluice.dev~1state"},
			wantWarning: "sluice: dropped sluice.dev/state: it is written only by Sluice",
		},
		"unchanged template in flight: no patch": {
			req: func(t *testing.T) admission.Request {
				return request(t, admissionv1.Update, web().Image("v2").Paused(true).State(inFlight).d, web().Image("v2").Paused(true).State(inFlight).Replicas(6).d)
			},
			wantPaused: true,
			wantState:  spec.PhaseProgressing,
		},
		"scale outside a release: no patch": {
			req: func(t *testing.T) admission.Request {
				return request(t, admissionv1.Update, web().d, web().Replicas(1).d)
			},
			wantPaths: nil,
		},
		"create: no patch": {
			req: func(t *testing.T) admission.Request { return request(t, admissionv1.Create, nil, web().d) },
		},
		"restart: no patch": {
			req: func(t *testing.T) admission.Request {
				return request(t, admissionv1.Update, web().d, web().Restarted("2026-05-01T11:59:00Z").d)
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			req := tc.req(t)
			resp := serve(t, newHandler(nil), req)
			if !resp.Allowed {
				t.Fatalf("denied: %v", resp.Result)
			}
			var got []string
			for _, p := range resp.Patches {
				got = append(got, p.Operation+" "+p.Path)
				if !ownPath(p.Path) {
					t.Errorf("patch touches %s %s: only annotations and spec.paused are Sluice's", p.Operation, p.Path)
				}
			}
			slices.Sort(got)
			if diff := cmp.Diff(tc.wantPaths, got); diff != "" {
				t.Errorf("patch operations mismatch (-want +got):\n%s", diff)
			}
			if (len(resp.Patches) == 0) != (resp.PatchType == nil) {
				t.Errorf("PatchType %v with %d patches", resp.PatchType, len(resp.Patches))
			}
			if tc.wantWarning != "" && !slices.Contains(resp.Warnings, tc.wantWarning) {
				t.Errorf("warnings %q do not contain %q", resp.Warnings, tc.wantWarning)
			}

			stored := apply(t, req, resp)
			// Unknown fields survive.
			var doc map[string]any
			if err := json.Unmarshal(stored, &doc); err != nil {
				t.Fatal(err)
			}
			for p, want := range unknownFields {
				if diff := cmp.Diff(want, lookup(doc, p)); diff != "" {
					t.Errorf("unknown field %s changed (-want +got):\n%s", p, diff)
				}
			}
			// Everything but annotations and spec.paused is stored exactly as sent.
			var sent map[string]any
			_ = json.Unmarshal(req.Object.Raw, &sent)
			stripOwn(sent)
			stripOwn(doc)
			if diff := cmp.Diff(sent, doc); diff != "" {
				t.Errorf("stored object differs from the one sent beyond annotations and spec.paused (-sent +stored):\n%s", diff)
			}

			var d appsv1.Deployment
			if err := json.Unmarshal(stored, &d); err != nil {
				t.Fatal(err)
			}
			if d.Spec.Paused != tc.wantPaused {
				t.Errorf("stored spec.paused = %t, want %t", d.Spec.Paused, tc.wantPaused)
			}
			st, err := spec.ReadState(d.Annotations)
			if err != nil {
				t.Fatal(err)
			}
			_, has := d.Annotations[spec.AnnState]
			if got, want := map[bool]spec.Phase{true: st.Phase}[has], tc.wantState; got != want {
				t.Errorf("stored state phase = %q, want %q", got, want)
			}
		})
	}
}

func lookup(doc map[string]any, path string) any {
	var cur any = doc
	for _, part := range strings.Split(strings.TrimPrefix(path, "/"), "/") {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[part]
		case []any:
			if part != "0" || len(c) == 0 {
				return nil
			}
			cur = c[0]
		default:
			return nil
		}
	}
	return cur
}

func stripOwn(doc map[string]any) {
	if md, ok := doc["metadata"].(map[string]any); ok {
		delete(md, "annotations")
	}
	if sp, ok := doc["spec"].(map[string]any); ok {
		delete(sp, "paused")
	}
}

func TestHandlerDenies(t *testing.T) {
	tests := map[string]struct {
		req  func(t *testing.T) admission.Request
		want string
	}{
		"update with an invalid annotation": {
			req: func(t *testing.T) admission.Request {
				return request(t, admissionv1.Update, testDeployment("web").d, testDeployment("web").Image("v2").Annotate(spec.AnnMaxWeight, "150").d)
			},
			want: `sluice.dev/max-weight: must be 1..100, got "150"`,
		},
		"create with an invalid annotation": {
			req: func(t *testing.T) admission.Request {
				return request(t, admissionv1.Create, nil, testDeployment("web").Annotate(spec.AnnInterval, "1s").d)
			},
			want: `sluice.dev/interval: must be at least 5s, got "1s"`,
		},
		"a webhook entry without a url, named by its index": {
			req: func(t *testing.T) admission.Request {
				return request(t, admissionv1.Update, testDeployment("web").d, testDeployment("web").Image("v2").
					Annotate(spec.AnnWebhooks, "- name: gate\n  type: confirm-rollout\n  url: http://gate.test/\n- name: load\n  type: rolout\n  url: http://lt/").d)
			},
			want: `sluice.dev/webhooks[1].type: must be one of confirm-rollout, pre-rollout, rollout, confirm-traffic-increase, confirm-promotion, post-rollout, rollback, event, got "rolout"`,
		},
		"an alert entry with an unknown severity, named by its index": {
			req: func(t *testing.T) admission.Request {
				return request(t, admissionv1.Update, testDeployment("web").d, testDeployment("web").Image("v2").
					Annotate(spec.AnnAnalysis, "alerts:\n- name: on-call\n  severity: critical\n  providerRef: {name: slack}").d)
			},
			want: `sluice.dev/analysis alerts[0].severity: must be info, warn or error (empty means info), got "critical"`,
		},
		"an alert through another namespace's provider": {
			req: func(t *testing.T) admission.Request {
				return request(t, admissionv1.Update, testDeployment("web").d, testDeployment("web").Image("v2").
					Annotate(spec.AnnAlerts, "- name: on-call\n  providerRef: {name: slack, namespace: other}").d)
			},
			want: `sluice.dev/alerts[0].providerRef.namespace: AlertProvider other/slack is in another namespace than the Deployment (shop); the controller allows that only with --allow-cross-namespace-templates`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rec := events.NewFakeRecorder(10)
			resp := serve(t, newHandler(rec), tc.req(t))
			if resp.Allowed {
				t.Fatalf("allowed, want denied")
			}
			if resp.Result == nil || resp.Result.Message != tc.want || resp.Result.Code != http.StatusForbidden {
				t.Errorf("result = %+v, want code 403 and message %q", resp.Result, tc.want)
			}
			if len(resp.Patches) != 0 || resp.PatchType != nil {
				t.Errorf("a denial carries a patch: %v", resp.Patches)
			}
			if len(rec.Events) != 0 {
				t.Errorf("a denial emitted %d events", len(rec.Events))
			}
		})
	}
}

func TestHandlerGuards(t *testing.T) {
	invalid := func() *deployment { return testDeployment("web").Image("v2").Annotate(spec.AnnMaxWeight, "150") }
	tests := map[string]struct {
		req func(t *testing.T) admission.Request
	}{
		"scale subresource is never intercepted": {
			req: func(t *testing.T) admission.Request {
				return request(t, admissionv1.Update, testDeployment("web").d, invalid().d, func(r *admission.Request) { r.SubResource = "scale" })
			},
		},
		"status subresource is never intercepted": {
			req: func(t *testing.T) admission.Request {
				return request(t, admissionv1.Update, testDeployment("web").d, invalid().d, func(r *admission.Request) { r.SubResource = "status" })
			},
		},
		"another kind": {
			req: func(t *testing.T) admission.Request {
				return request(t, admissionv1.Update, testDeployment("web").d, invalid().d, func(r *admission.Request) {
					r.Kind = metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}
				})
			},
		},
		"delete": {
			req: func(t *testing.T) admission.Request {
				return request(t, admissionv1.Delete, testDeployment("web").d, invalid().d)
			},
		},
		"Sluice's own identity": {
			req: func(t *testing.T) admission.Request {
				return request(t, admissionv1.Update, testDeployment("web").d, invalid().d, asUser(controllerIdentity))
			},
		},
		"not opted in": {
			req: func(t *testing.T) admission.Request {
				return request(t, admissionv1.Update, testDeployment("web").OptOut().d, invalid().OptOut().d)
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rec := events.NewFakeRecorder(10)
			resp := serve(t, newHandler(rec), tc.req(t))
			if !resp.Allowed || len(resp.Patches) != 0 || len(resp.Warnings) != 0 {
				t.Errorf("response %+v patches %v, want allowed as sent", resp.AdmissionResponse, resp.Patches)
			}
			if len(rec.Events) != 0 {
				t.Errorf("emitted %d events, want none", len(rec.Events))
			}
		})
	}
}

func TestHandlerDryRun(t *testing.T) {
	held := func(t *testing.T, opts ...reqOpt) admission.Request {
		return request(t, admissionv1.Update, testDeployment("web").d, testDeployment("web").Image("v2").d, opts...)
	}
	skip := func(t *testing.T, opts ...reqOpt) admission.Request {
		return request(t, admissionv1.Update, testDeployment("web").d, testDeployment("web").Image("v2").Annotate(spec.AnnSkipAnalysis, "true").d, opts...)
	}
	tests := map[string]struct {
		req        func(t *testing.T, opts ...reqOpt) admission.Request
		wantEvents []string
	}{
		"held": {
			req:        held,
			wantEvents: []string{"Normal ReleaseHeld held revision 3dac40ffee (app=ghcr.io/x/app:v2) for canary analysis; stable revision 07086ca0ec keeps serving"},
		},
		"skip analysis": {
			req:        skip,
			wantEvents: []string{`Warning Bypassed sluice.dev/skip-analysis is "true": app=ghcr.io/x/app:v2 goes out without canary analysis`},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			real := events.NewFakeRecorder(10)
			realResp := serve(t, newHandler(real), tc.req(t))
			if diff := cmp.Diff(tc.wantEvents, drain(real)); diff != "" {
				t.Errorf("events of a real request (-want +got):\n%s", diff)
			}

			dry := events.NewFakeRecorder(10)
			dryResp := serve(t, newHandler(dry), tc.req(t, dryRunReq))
			if got := drain(dry); len(got) != 0 {
				t.Errorf("a dry-run request emitted events: %q", got)
			}
			// A dry run sees exactly what the real request stores. (The order of independent
			// patch operations is not stable: the diff walks maps.)
			byPath := cmpopts.SortSlices(func(a, b jsonpatchOp) bool { return a.Path < b.Path })
			if diff := cmp.Diff(realResp, dryResp, byPath); diff != "" {
				t.Errorf("dry-run response differs from the real one (-real +dry):\n%s", diff)
			}

			// DryRun unset (older API servers) counts as a real request.
			unset := events.NewFakeRecorder(10)
			serve(t, newHandler(unset), tc.req(t, func(r *admission.Request) { r.DryRun = nil }))
			if diff := cmp.Diff(tc.wantEvents, drain(unset)); diff != "" {
				t.Errorf("events with dryRun unset (-want +got):\n%s", diff)
			}
		})
	}
}

func drain(r *events.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-r.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

// TestHandlerWarnsNoEffect: a Flagger analysis field that has no effect here is accepted with a
// warning saying why, when the configuration is written — not on every apply of the same one.
func TestHandlerWarnsNoEffect(t *testing.T) {
	const want = "sluice: sluice.dev/analysis stepWeightPromotion: no effect with the replicas router"
	with := testDeployment("web").Annotate(spec.AnnAnalysis, "stepWeightPromotion: 20").d
	for name, tc := range map[string]struct {
		old  *appsv1.Deployment
		warn bool
	}{
		"written now":     {old: testDeployment("web").d, warn: true},
		"applied again":   {old: with, warn: false},
		"created with it": {old: nil, warn: true},
	} {
		t.Run(name, func(t *testing.T) {
			op := admissionv1.Update
			if tc.old == nil {
				op = admissionv1.Create
			}
			resp := serve(t, newHandler(events.NewFakeRecorder(10)), request(t, op, tc.old, with))
			if !resp.Allowed {
				t.Fatalf("denied: %+v", resp.Result)
			}
			got := strings.Join(resp.Warnings, "\n")
			if strings.Contains(got, want) != tc.warn {
				t.Errorf("warnings %q, want %q: %v", got, want, tc.warn)
			}
		})
	}
}
