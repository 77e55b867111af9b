package webhook_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/sluice-dev/sluice/rollout/spec"
	"github.com/sluice-dev/sluice/webhook"
)

// BenchmarkServeHTTP measures what the webhook server does per admission beyond Handle: the
// same held release as BenchmarkHandle, as the API server sends it (an AdmissionReview body)
// through controller-runtime's admission endpoint, which decodes the review and encodes the
// answer with its patch.
func BenchmarkServeHTTP(b *testing.B) {
	h := newHandler(nil)
	old := testDeployment("web").Annotate("meta.helm.sh/release-name", "web").Annotate(spec.AnnStepWeights, "5,10,25,50")
	obj := testDeployment("web").Annotate("meta.helm.sh/release-name", "web").Annotate(spec.AnnStepWeights, "5,10,25,50").Image("v2")
	req := request(b, admissionv1.Update, old.d, obj.d)
	review := admissionv1.AdmissionReview{Request: &req.AdmissionRequest}
	review.APIVersion, review.Kind = "admission.k8s.io/v1", "AdmissionReview"
	body, err := json.Marshal(review)
	if err != nil {
		b.Fatal(err)
	}
	srv := &crwebhook.Admission{Handler: h}
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, webhook.Path, bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatal(w.Code, w.Body.String())
		}
	}
}
