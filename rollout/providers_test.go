package rollout

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/sluice-dev/sluice/providers/catalogtest"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// A template's provider is built from its Secret with Flagger's keys, reused while fresh, and
// rebuilt (re-reading the Secret) after secretTTL; broken specs are errors, never Prometheus.
// TestPrometheusProviderFromTemplate: a prometheus template's Secret (Flagger's keys) and
// headers reach the wire.
func TestPrometheusProviderFromTemplate(t *testing.T) {
	var got http.Header
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"7"]}]}}`))
	}))
	defer srv.Close()
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "prom"}, Data: map[string][]byte{"token": []byte("t0k")}}
	ps := &Providers{Backends: catalogtest.Backends(), Secrets: fake.NewClientBuilder().WithObjects(secret).Build(), Timeout: time.Second}
	p, err := ps.For(t.Context(), "ns", spec.ProviderSpec{Type: "prometheus", Address: srv.URL, SecretRef: &spec.SecretRef{Name: "prom"},
		InsecureSkipVerify: true, Headers: map[string]string{"X-Scope-OrgID": "shop"}})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := p.Query(t.Context(), "up"); err != nil || v != 7 {
		t.Fatalf("Query = %v, %v", v, err)
	}
	if got.Get("Authorization") != "Bearer t0k" || got.Get("X-Scope-OrgID") != "shop" {
		t.Errorf("headers sent: %v", got)
	}
}

func TestProvidersFromTemplates(t *testing.T) {
	var keys []string
	dd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		keys = append(keys, r.Header.Get("DD-API-KEY")+"/"+r.Header.Get("DD-APPLICATION-KEY"))
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok","series":[{"metric":"m","pointlist":[[1700000000000,42]]}]}`))
	}))
	defer dd.Close()
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "dd"},
		Data: map[string][]byte{"datadog_api_key": []byte("api"), "datadog_application_key": []byte("app")}}
	reader := fake.NewClientBuilder().WithObjects(secret).Build()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	ps := &Providers{Backends: catalogtest.Backends(), Secrets: reader, Timeout: time.Second, Now: func() time.Time { return now }}
	dds := spec.ProviderSpec{Type: "datadog", Address: dd.URL, SecretRef: &spec.SecretRef{Name: "dd"}}

	p1, err := ps.For(t.Context(), "ns", dds)
	if err != nil {
		t.Fatal(err)
	}
	v, err := p1.Query(t.Context(), "avg:m{*}")
	if err != nil || v != 42 || len(keys) != 1 || keys[0] != "api/app" {
		t.Fatalf("query = %v, %v; keys sent %v", v, err, keys)
	}
	if p2, _ := ps.For(t.Context(), "ns", dds); p2 != p1 {
		t.Error("a second check built a new client instead of reusing it")
	}
	secret.Data["datadog_api_key"] = []byte("rotated")
	if err := reader.Update(t.Context(), secret); err != nil {
		t.Fatal(err)
	}
	now = now.Add(secretTTL + time.Second)
	p3, err := ps.For(t.Context(), "ns", dds)
	if err != nil || p3 == p1 {
		t.Fatalf("after the TTL the client should be rebuilt: %v", err)
	}
	if _, err := p3.Query(t.Context(), "avg:m{*}"); err != nil || keys[len(keys)-1] != "rotated/app" {
		t.Errorf("rotated key not used: %v %v", err, keys)
	}

	for name, tc := range map[string]struct {
		spec    spec.ProviderSpec
		wantErr string
	}{
		"missing secret": {spec.ProviderSpec{Type: "datadog", SecretRef: &spec.SecretRef{Name: "nope"}}, `read Secret ns/nope of the datadog provider`},
		"unknown type":   {spec.ProviderSpec{Type: "graphana"}, `provider type "graphana" is not available`},
		"no region":      {spec.ProviderSpec{Type: "cloudwatch"}, "egion"},
		"no credentials": {spec.ProviderSpec{Type: "datadog"}, "APIKey"},
		"headers elsewhere": {spec.ProviderSpec{Type: "graphite", Address: "http://127.0.0.1:1", Headers: map[string]string{"X-Scope-OrgID": "a"}},
			"the graphite provider does not take insecureSkipVerify or headers (only prometheus does)"},
		"insecureSkipVerify elsewhere": {spec.ProviderSpec{Type: "datadog", InsecureSkipVerify: true},
			"the datadog provider does not take insecureSkipVerify or headers (only prometheus does)"},
		"cloudwatch without keys": {spec.ProviderSpec{Type: "cloudwatch", Region: "eu-west-1"},
			"the cloudwatch provider has no credentials: set aws_access_key_id and aws_secret_access_key in the Secret named by secretRef, in namespace ns (the controller's own AWS identity is used only when it runs with --allow-controller-cloud-identity)"},
		"stackdriver without token": {spec.ProviderSpec{Type: "stackdriver"},
			"the stackdriver provider has no credentials: set project and token"},
		"user info in a prometheus address": {spec.ProviderSpec{Type: "prometheus", Address: "http://admin:hunter2@prom:9090"},
			`prometheus: address "http://xxxxx@prom:9090": must not carry user info`},
		"user info in a datadog address": {spec.ProviderSpec{Type: "datadog", Address: "https://admin:hunter2@api.datadoghq.eu", SecretRef: &spec.SecretRef{Name: "dd"}},
			`"https://xxxxx@api.datadoghq.eu": must not carry user info`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ps.For(t.Context(), "ns", tc.spec)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error = %v, want it to contain %q", err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error = %v repeats the password", err)
			}
		})
	}
}

// The controller's own AWS identity serves a cloudwatch template without keys only when the
// controller was started with --allow-controller-cloud-identity.
func TestControllerCloudIdentityNeedsTheFlag(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"config", "credentials"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	cw := spec.ProviderSpec{Type: "cloudwatch", Region: "eu-west-1"}
	reader := fake.NewClientBuilder().Build()
	if _, err := (&Providers{Backends: catalogtest.Backends(), Secrets: reader, Timeout: time.Second}).For(t.Context(), "ns", cw); err == nil {
		t.Error("a cloudwatch template without keys was built without the flag")
	}
	if _, err := (&Providers{Backends: catalogtest.Backends(), Secrets: reader, Timeout: time.Second, AllowControllerCloudIdentity: true}).For(t.Context(), "ns", cw); err != nil {
		t.Errorf("with the flag: %v", err)
	}
}
