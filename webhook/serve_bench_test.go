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

// BenchmarkServeHTTP measures a whole admission as the webhook server handles it: the held
// release of BenchmarkHandle as the API server sends it (an AdmissionReview body) to Sluice's
// endpoint (Handler.ServeHTTP: the review and both objects decoded in one pass), and, for
// comparison, to controller-runtime's admission endpoint around Handle (the review decoded,
// then the objects again).
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
	for name, srv := range map[string]http.Handler{"sluice": h, "controller-runtime": &crwebhook.Admission{Handler: h}} {
		b.Run(name, func(b *testing.B) {
			r := httptest.NewRequest(http.MethodPost, webhook.Path, bytes.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, r)
			var out admissionv1.AdmissionReview
			if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out.Response == nil || !out.Response.Allowed || len(out.Response.Patch) == 0 {
				b.Fatalf("not a held release: %v %s", err, w.Body)
			}
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest(http.MethodPost, webhook.Path, bytes.NewReader(body))
				r.Header.Set("Content-Type", "application/json")
				srv.ServeHTTP(httptest.NewRecorder(), r)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "admissions/s")
		})
	}
}
