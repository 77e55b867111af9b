package rollout

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/sluice-dev/sluice/providers/catalogtest"
	"github.com/sluice-dev/sluice/providers/metrics"
	"github.com/sluice-dev/sluice/rollout/spec"
)

func fakeReader(t *testing.T, objs ...runtime.Object) *fake.ClientBuilder {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := spec.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	return fake.NewClientBuilder().WithScheme(scheme).WithRuntimeObjects(objs...)
}

func promTemplate(ns, name, address string) *spec.MetricTemplate {
	return &spec.MetricTemplate{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: spec.MetricTemplateSpec{
			Provider: spec.ProviderSpec{Type: "prometheus", Address: address, SecretRef: &spec.SecretRef{Name: "prom"}},
			Query:    "vector(7)",
		},
	}
}

func checkPlan(refs ...spec.Metric) *spec.Config {
	return &spec.Config{Router: spec.RouterReplicas, Interval: metav1.Duration{Duration: time.Minute}, Metrics: refs}
}

func templateCheck(name, ns string) spec.Metric {
	min := 1.0
	return spec.Metric{Name: name, TemplateRef: &spec.TemplateRef{Name: name, Namespace: ns}, ThresholdRange: &spec.Range{Min: &min}}
}

// A templateRef to another namespace is a failed check naming the flag, and no query (nor
// Secret read) happens; with the flag, and for the Deployment's own namespace, it runs.
func TestCrossNamespaceTemplates(t *testing.T) {
	var queries atomic.Int32
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		queries.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"7"]}]}}`))
	}))
	defer prom.Close()
	objs := []runtime.Object{
		promTemplate("shared", "shared-rate", prom.URL), promTemplate("app", "own-rate", prom.URL),
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "shared", Name: "prom"}, Data: map[string][]byte{"token": []byte("shared-token")}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "prom"}, Data: map[string][]byte{"token": []byte("app-token")}},
	}
	reader := fakeReader(t, objs...).Build()
	plan := checkPlan(templateCheck("shared-rate", "shared"), templateCheck("own-rate", "app"), templateCheck("own-rate", ""))

	for name, tc := range map[string]struct {
		allow       bool
		wantShared  spec.Verdict
		wantQueries int32
	}{
		"refused by default": {false, spec.VerdictError, 2},
		"allowed by flag":    {true, spec.VerdictPass, 3},
	} {
		t.Run(name, func(t *testing.T) {
			queries.Store(0)
			a := NewAnalyzer(nil, 4)
			a.Templates, a.Providers = reader, &Providers{Backends: catalogtest.Backends(), Secrets: reader, Timeout: 5 * time.Second}
			a.AllowCrossNamespaceTemplates = tc.allow
			res := a.Run(t.Context(), "app", "web", plan)
			if res[0].Verdict != tc.wantShared {
				t.Errorf("shared-rate = %+v, want verdict %s", res[0], tc.wantShared)
			}
			if !tc.allow {
				for _, s := range []string{"MetricTemplate shared/shared-rate", "refused", "namespace shared", "(app)", "--allow-cross-namespace-templates"} {
					if !strings.Contains(res[0].Reason, s) {
						t.Errorf("reason %q does not mention %q", res[0].Reason, s)
					}
				}
			}
			for _, r := range res[1:] {
				if r.Verdict != spec.VerdictPass {
					t.Errorf("a template in the Deployment's own namespace: %+v", r)
				}
			}
			if n := queries.Load(); n != tc.wantQueries {
				t.Errorf("%d queries reached Prometheus, want %d", n, tc.wantQueries)
			}
		})
	}
}

type failing struct{ err error }

func (f failing) Query(context.Context, string) (float64, error) { return 0, f.err }

// Check reasons go into the state annotation, Events and logs: user info of any URL in them is
// masked, whatever produced the text.
func TestReasonsAreRedacted(t *testing.T) {
	err := errors.New(`prometheus: Post "http://admin:hunter2@prom:9090/api/v1/query": dial tcp: connection refused`)
	a := NewAnalyzer(failing{err: err}, 1)
	res := a.Run(t.Context(), "app", "web", checkPlan(spec.Metric{Name: "inline", Query: "up"}))
	if strings.Contains(res[0].Reason, "hunter2") || strings.Contains(res[0].Reason, "admin") ||
		!strings.Contains(res[0].Reason, "http://xxxxx@prom:9090/api/v1/query") || res[0].Verdict != spec.VerdictError {
		t.Errorf("result = %+v", res[0])
	}
}

// A backend that echoes a credential in its error text does not get it into the reason.
func TestProviderErrorsNeverCarryTheSecret(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"errors":["key ` + r.Header.Get("DD-API-KEY") + ` is not valid for app key ` + r.Header.Get("DD-APPLICATION-KEY") + `"]}`))
	}))
	defer srv.Close()
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "dd"},
		Data: map[string][]byte{"datadog_api_key": []byte("api-s3cret"), "datadog_application_key": []byte("app-s3cret")}}
	ps := &Providers{Backends: catalogtest.Backends(), Secrets: fake.NewClientBuilder().WithObjects(secret).Build(), Timeout: 5 * time.Second}
	p, err := ps.For(t.Context(), "ns", spec.ProviderSpec{Type: "datadog", Address: srv.URL, SecretRef: &spec.SecretRef{Name: "dd"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Query(t.Context(), "avg:m{*}")
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "key xxxxx is not valid for app key xxxxx") {
		t.Errorf("err = %v", err)
	}
	if errors.Is(err, metrics.ErrNoData) {
		t.Errorf("a refused key reads as no data: %v", err)
	}
}

// hanging is a backend that answers no query until released (or the query's context ends).
type hanging struct {
	started atomic.Int32
	release chan struct{}
}

func (h *hanging) Query(ctx context.Context, _ string) (float64, error) {
	h.started.Add(1)
	select {
	case <-h.release:
		return 100, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// One backend that hangs does not delay another's queries: its queries take at most their
// backend's places (--query-parallelism-per-backend), and wait for them before taking one of all
// (--query-parallelism), so the places left serve the other backends at once.
func TestHangingBackendDoesNotDelayAnother(t *testing.T) {
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"7"]}]}}`))
	}))
	defer prom.Close()
	reader := fakeReader(t, promTemplate("app", "fast", prom.URL),
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "prom"}, Data: map[string][]byte{"token": []byte("t")}}).Build()

	slow := &hanging{release: make(chan struct{})}
	a := NewAnalyzer(slow, 8)
	a.BackendParallelism = 2
	a.Templates, a.Providers = reader, &Providers{Backends: catalogtest.Backends(), Secrets: reader, Timeout: 5 * time.Second}

	// More releases on the hanging backend than there are places in all.
	done := make(chan struct{})
	const stuck = 10
	for i := range stuck {
		go func() {
			defer func() { done <- struct{}{} }()
			a.Run(t.Context(), "app", fmt.Sprintf("slow-%d", i), checkPlan(spec.Metric{Name: "inline", Query: "up"}))
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for slow.started.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	start := time.Now()
	res := a.Run(ctx, "app", "web", checkPlan(templateCheck("fast", "app")))
	if took := time.Since(start); res[0].Verdict != spec.VerdictPass || took > time.Second {
		t.Errorf("the other backend's check = %+v after %s; want it passed at once", res[0], took)
	}
	if n := slow.started.Load(); n != 2 {
		t.Errorf("%d queries reached the hanging backend at once, want its 2 places", n)
	}
	close(slow.release)
	for range stuck {
		<-done
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.backends) != 0 {
		t.Errorf("%d backends' places kept after every query ended", len(a.backends))
	}
}
