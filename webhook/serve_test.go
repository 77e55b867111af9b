package webhook_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/sluice-dev/sluice/webhook"
)

// serve sends req to h as the API server does (an admission.k8s.io/v1 AdmissionReview POSTed to
// the webhook's endpoint, ServeHTTP) and returns the answer as a Response, its patch decoded
// into Patches. Every handler test goes through it, so they test the path the API server takes.
func serve(t testing.TB, h *webhook.Handler, req admission.Request) admission.Response {
	t.Helper()
	rv := admissionv1.AdmissionReview{Request: &req.AdmissionRequest}
	rv.APIVersion, rv.Kind = "admission.k8s.io/v1", "AdmissionReview"
	body, err := json.Marshal(rv)
	if err != nil {
		t.Fatal(err)
	}
	resp := post(t, h, "application/json", body)
	if resp.UID != req.UID {
		t.Fatalf("answer for request %q, want %q", resp.UID, req.UID)
	}
	return resp
}

// post POSTs body to h and decodes the AdmissionReview it answers.
func post(t testing.TB, h http.Handler, contentType string, body []byte) admission.Response {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, webhook.Path, bytes.NewReader(body))
	r.Header.Set("Content-Type", contentType)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("HTTP %d, Content-Type %q: %s", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatalf("decode the answer: %v\n%s", err, w.Body)
	}
	if out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" || out.Response == nil {
		t.Fatalf("answer is not an admission.k8s.io/v1 AdmissionReview with a response: %s", w.Body)
	}
	resp := admission.Response{AdmissionResponse: *out.Response}
	if len(resp.Patch) > 0 {
		if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
			t.Fatalf("patch type %v, want JSONPatch", resp.PatchType)
		}
		if err := json.Unmarshal(resp.Patch, &resp.Patches); err != nil {
			t.Fatalf("decode the patch: %v", err)
		}
	}
	return resp
}

// ServeHTTP (one decoding pass) answers exactly as controller-runtime's endpoint around Handle
// would: same verdict, status, patch bytes, patch type and warnings.
func TestServeHTTPAnswersAsHandle(t *testing.T) {
	web := func() *deployment { return testDeployment("web") }
	requests := map[string]admission.Request{
		"held release":           request(t, admissionv1.Update, web().d, web().Image("v2").d),
		"create":                 request(t, admissionv1.Create, nil, web().d),
		"denied":                 request(t, admissionv1.Update, web().d, web().Image("v2").Annotate("sluice.dev/max-weight", "150").d),
		"dry run":                request(t, admissionv1.Update, web().d, web().Image("v2").d, dryRunReq),
		"the controller's write": request(t, admissionv1.Update, web().d, web().Annotate("x", "y").d, asUser(controllerIdentity)),
		"scale subresource": request(t, admissionv1.Update, web().d, web().d, func(r *admission.Request) {
			r.SubResource = "scale"
		}),
		"delete": request(t, admissionv1.Delete, nil, web().d),
	}
	for name, req := range requests {
		t.Run(name, func(t *testing.T) {
			want := newHandler(nil).Handle(t.Context(), req)
			if err := want.Complete(req); err != nil {
				t.Fatal(err)
			}
			got := serve(t, newHandler(nil), req)
			got.Patches, want.Patches = nil, nil
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("ServeHTTP's answer differs from Handle's (-Handle +ServeHTTP):\n%s", diff)
			}
		})
	}
}

// controller-runtime's endpoint hands Handle the objects raw: what does not decode into a
// Deployment is refused as a bad request.
func TestHandleRefusesObjectsNotDeployments(t *testing.T) {
	for name, mutate := range map[string]func(r *admission.Request){
		"object not JSON":             func(r *admission.Request) { r.Object.Raw = []byte("{") },
		"old object not a Deployment": func(r *admission.Request) { r.OldObject.Raw = []byte(`{"spec": 1}`) },
	} {
		t.Run(name, func(t *testing.T) {
			req := request(t, admissionv1.Update, testDeployment("web").d, testDeployment("web").d, reqOpt(mutate))
			resp := newHandler(nil).Handle(t.Context(), req)
			if resp.Allowed || resp.Result == nil || resp.Result.Code != http.StatusBadRequest {
				t.Errorf("answer %+v, want a bad request", resp.AdmissionResponse)
			}
		})
	}
}

// What the API server would never send, or sends broken, is refused with the code saying why.
func TestServeHTTPRefuses(t *testing.T) {
	review := func(s string) []byte { return []byte(s) }
	tests := map[string]struct {
		contentType string
		body        []byte
		wantCode    int32
		wantMessage string
	}{
		"not JSON":                         {"application/yaml", review(`{}`), http.StatusBadRequest, "expected application/json"},
		"empty":                            {"application/json", nil, http.StatusBadRequest, "request body is empty"},
		"garbage":                          {"application/json", review(`{"apiVersion":`), http.StatusBadRequest, "decode the AdmissionReview"},
		"no request":                       {"application/json", review(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`), http.StatusBadRequest, "with a request"},
		"v1beta1":                          {"application/json", review(`{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u"}}`), http.StatusBadRequest, "admission.k8s.io/v1beta1"},
		"an object not a Deployment":       {"application/json", review(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","object":{"spec":7}}}`), http.StatusBadRequest, "decode the AdmissionReview"},
		"an old object not a Deployment":   {"application/json", review(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","operation":"UPDATE","object":{},"oldObject":{"spec":1}}}`), http.StatusBadRequest, "decode the AdmissionReview"},
		"an UPDATE without the old object": {"application/json", review(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"apps","version":"v1","kind":"Deployment"},"operation":"UPDATE","object":{}}}`), http.StatusBadRequest, "carries no Deployment"},
		"too large":                        {"application/json", append(review(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","x":"`), bytes.Repeat([]byte("a"), 7<<20)...), http.StatusRequestEntityTooLarge, "too large"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			resp := post(t, newHandler(nil), tc.contentType, tc.body)
			if resp.Allowed || resp.Result == nil || resp.Result.Code != tc.wantCode || !strings.Contains(resp.Result.Message, tc.wantMessage) {
				t.Errorf("answer %+v, want refused with code %d and a message containing %q", resp.AdmissionResponse, tc.wantCode, tc.wantMessage)
			}
		})
	}
}
