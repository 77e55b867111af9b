package demoapp

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A pod's server reports the requests it served as an Istio sidecar would (reporter
// destination, its Deployment as the workload), so the istio router's builtin checks read them.
func TestPodReportsAsAnIstioSidecar(t *testing.T) {
	h := newPodHandler("shop-canary-5d9f7c-abcde", "demo:v2-broken", Broken, workload{namespace: "team", name: "shop-canary"})
	for range 3 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if rec.Code != 500 {
			t.Fatalf("broken pod answered %d, want 500", rec.Code)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`istio_requests_total{destination_workload="shop-canary",destination_workload_namespace="team",reporter="destination",response_code="500"} 3`,
		`istio_request_duration_milliseconds_bucket{destination_workload="shop-canary",destination_workload_namespace="team",reporter="destination",response_code="500",le="+Inf"} 3`,
		`http_requests_total{code="500",method="get"} 3`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s\n%s", want, body)
		}
	}
	if strings.Contains(string(body), `response_code="200"`) {
		t.Errorf("a pod that served only errors reports a 200 series:\n%s", body)
	}
}

func TestDeploymentOf(t *testing.T) {
	owned := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Name: "shop-canary-5d9f7c-abcde", Labels: map[string]string{"pod-template-hash": "5d9f7c"},
		OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "shop-canary-5d9f7c"}},
	}}
	if got := deploymentOf(owned); got != "shop-canary" {
		t.Errorf("deploymentOf(ReplicaSet pod) = %q, want shop-canary", got)
	}
	bare := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "lonely"}}
	if got := deploymentOf(bare); got != "lonely" {
		t.Errorf("deploymentOf(bare pod) = %q, want its own name", got)
	}
}
