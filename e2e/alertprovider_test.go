package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// The AlertProvider CRD (deploy/crds) on the real API server: Flagger-shaped providers are
// stored and read back through Sluice's Go types unchanged, and what the schema can judge is
// refused at `kubectl apply`, naming the field.
func TestAlertProviderCRD(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	ns := fmt.Sprintf("alertproviders-%d", time.Now().UnixNano()%100000)
	if _, err := env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() { _ = env.Client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	if _, stderr, err := env.Cluster.Kubectl(ctx, "wait", "--for=condition=Established", "crd/alertproviders.sluice.dev", "--timeout=30s"); err != nil {
		t.Fatalf("the AlertProvider CRD is not established: %v\n%s", err, stderr)
	}
	dir := t.TempDir()
	apply := func(name, body string) (string, error) {
		path := filepath.Join(dir, name+".yaml")
		manifest := "apiVersion: sluice.dev/v1beta1\nkind: AlertProvider\nmetadata: {name: " + name + "}\nspec:\n" + body
		if err := os.WriteFile(path, []byte(manifest), 0o644); err != nil {
			t.Fatal(err)
		}
		_, stderr, err := env.Cluster.Kubectl(ctx, "-n", ns, "apply", "-f", path)
		return stderr, err
	}

	good := map[string]spec.AlertProviderSpec{
		"on-call": {Type: "slack", Channel: "#on-call", Username: "sluice", SecretRef: &spec.SecretRef{Name: "slack-url"}},
		"teams":   {Type: "msteams", Address: "https://example.webhook.office.test/workflows/123?sig=abc"},
		"generic": {Type: "generic", Address: "http://receiver.alerts.svc:8080/"},
	}
	bodies := map[string]string{
		"on-call": "  type: slack\n  channel: '#on-call'\n  username: sluice\n  secretRef: {name: slack-url}\n",
		"teams":   "  type: msteams\n  address: https://example.webhook.office.test/workflows/123?sig=abc\n",
		"generic": "  type: generic\n  address: http://receiver.alerts.svc:8080/\n",
	}
	for name, body := range bodies {
		if stderr, err := apply(name, body); err != nil {
			t.Errorf("apply AlertProvider %s: %v\n%s", name, err, stderr)
		}
	}
	scheme := runtime.NewScheme()
	if err := spec.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(env.Cluster.RESTConfig(), client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	var list spec.AlertProviderList
	if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
		t.Fatalf("list AlertProviders through spec's types: %v", err)
	}
	got := map[string]spec.AlertProviderSpec{}
	for _, p := range list.Items {
		got[p.Name] = p.Spec
		if errs := spec.ValidateAlertProviderSpec(p.Spec); len(errs) > 0 {
			t.Errorf("stored %s does not validate: %s", p.Name, spec.FormatErrors(errs))
		}
	}
	if diff := cmp.Diff(good, got); diff != "" {
		t.Errorf("stored AlertProviders (-applied +read back):\n%s", diff)
	}

	refused := map[string]struct{ body, want string }{
		"unknown-type":   {"  type: pagerduty\n  address: https://x.test/\n", "spec.type"},
		"no-address":     {"  type: slack\n", "spec"},
		"both":           {"  type: slack\n  address: https://x.test/\n  secretRef: {name: s}\n", "spec"},
		"user-info":      {"  type: generic\n  address: https://bot:s3cret@x.test/\n", "spec.address"},
		"not-http":       {"  type: discord\n  address: discord.test/api/webhooks/1/x\n", "spec.address"},
		"long-username":  {"  type: discord\n  address: https://x.test/\n  username: " + strings.Repeat("u", 81) + "\n", "spec.username"},
		"unknown-field":  {"  type: slack\n  address: https://x.test/\n  proxy: http://proxy.test:3128\n", "proxy"},
		"secret-no-name": {"  type: gchat\n  secretRef: {}\n", "spec.secretRef.name"},
	}
	for name, tc := range refused {
		stderr, err := apply(name, tc.body)
		if err == nil || !strings.Contains(stderr, tc.want) {
			t.Errorf("AlertProvider %s: err %v, stderr %q; want it refused naming %s", name, err, stderr, tc.want)
		}
	}
}
