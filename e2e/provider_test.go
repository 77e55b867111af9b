package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// A MetricTemplate on a SaaS provider (Datadog, served here by a local server that checks the
// v1 query API's wire format) drives a release: sluice reads the keys from the template's
// Secret and promotes on the value the API returns.
func TestDatadogTemplateDrivesRelease(t *testing.T) {
	t.Parallel()
	var (
		mu      sync.Mutex
		queries []string
	)
	dd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query" || r.Header.Get("DD-API-KEY") != "api-key" || r.Header.Get("DD-APPLICATION-KEY") != "app-key" ||
			r.URL.Query().Get("from") == "" || r.URL.Query().Get("to") == "" {
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"errors":["Forbidden"]}`))
			return
		}
		mu.Lock()
		queries = append(queries, r.URL.Query().Get("query"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprint(w, `{"status":"ok","res_type":"time_series","series":[{"metric":"trace.http.request.hits","pointlist":[[1700000000000,97.5],[1700000010000,99.5]]}]}`)
	}))
	defer dd.Close()

	a := newApp(t, "saas", map[string]string{
		spec.AnnInterval: "5s", spec.AnnThreshold: "1", spec.AnnStepWeights: "50",
		spec.AnnMetrics: "- name: dd-success\n  templateRef: {name: dd-success}\n  thresholdRange: {min: 99}\n",
	})
	if _, err := env.Client.CoreV1().Secrets(a.ns).Create(t.Context(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "datadog"},
		StringData: map[string]string{"datadog_api_key": "api-key", "datadog_application_key": "app-key"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tmpl := fmt.Sprintf("apiVersion: sluice.dev/v1beta1\nkind: MetricTemplate\nmetadata: {name: dd-success}\nspec:\n"+
		"  provider: {type: datadog, address: %q, secretRef: {name: datadog}}\n"+
		"  query: 100 - sum:trace.http.request.errors{service:{{ canary }}}.as_count()\n", dd.URL)
	writeFile(t, a.manifests+"/dd.yaml", []byte(tmpl))
	a.kubectl("apply", "-f", a.manifests+"/dd.yaml")
	a.deploy("demo:v1")
	a.apply("demo:v2")
	st := a.waitPhase(60*time.Second, spec.PhaseSucceeded)
	if len(st.Checks) != 1 || st.Checks[0].Value == nil || *st.Checks[0].Value != 99.5 {
		t.Errorf("checks = %s", mustJSON(st.Checks))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(queries) == 0 || queries[0] != "100 - sum:trace.http.request.errors{service:saas-canary}.as_count()" {
		t.Errorf("queries sent to Datadog: %q", queries)
	}
}
