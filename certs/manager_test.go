package certs

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func webhookConfig(bundles ...[]byte) *admissionregistrationv1.MutatingWebhookConfiguration {
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "sluice"}}
	for i, b := range bundles {
		cfg.Webhooks = append(cfg.Webhooks, admissionregistrationv1.MutatingWebhook{
			Name: []string{"deployments.sluice.dev", "other.sluice.dev"}[i], ClientConfig: admissionregistrationv1.WebhookClientConfig{CABundle: b},
		})
	}
	return cfg
}

func TestPatchCABundleTouchesOnlyStaleBundles(t *testing.T) {
	bundle := []byte("new")
	ops := PatchCABundle(webhookConfig([]byte("new"), []byte("old")), bundle)
	want := []PatchOp{
		{Op: "test", Path: "/webhooks/1/name", Value: "other.sluice.dev"},
		{Op: "add", Path: "/webhooks/1/clientConfig/caBundle", Value: bundle},
	}
	if diff := cmp.Diff(want, ops); diff != "" {
		t.Errorf("ops (-want +got):\n%s", diff)
	}
	raw, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	if wantJSON := `[{"op":"test","path":"/webhooks/1/name","value":"other.sluice.dev"},{"op":"add","path":"/webhooks/1/clientConfig/caBundle","value":"bmV3"}]`; string(raw) != wantJSON {
		t.Errorf("patch = %s, want %s", raw, wantJSON)
	}
	if ops := PatchCABundle(webhookConfig(bundle, bundle), bundle); len(ops) != 0 {
		t.Errorf("patch for up-to-date bundles: %v", ops)
	}
}

// Narrow case on a fake client (the e2e suite runs the real thing): replicas that start at
// once end with one Secret, serve certificates of its CA, and the bundle is injected.
func TestReplicasRacingEndWithOneCA(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(webhookConfig(nil)).Build()
	managers := make([]*Manager, 4)
	// Every replica reads the Secret (not there yet) before any creates it.
	race := &allReadFirst{Client: c}
	race.wg.Add(len(managers))
	for i := range managers {
		managers[i] = &Manager{
			Reader: race, Writer: c, Namespace: "sluice-system", SecretName: "sluice-webhook-cert",
			WebhookConfiguration: "sluice", Want: want, Interval: time.Second,
		}
		if _, err := managers[i].GetCertificate(nil); err == nil {
			t.Fatal("a certificate before the first sync")
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(managers))
	for i, m := range managers {
		wg.Go(func() { errs[i] = m.Sync(t.Context()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
	}
	secret := &corev1.Secret{}
	if err := c.Get(t.Context(), types.NamespacedName{Namespace: "sluice-system", Name: "sluice-webhook-cert"}, secret); err != nil {
		t.Fatal(err)
	}
	ca, err := parseCert(secret.Data[KeyCACert])
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range managers {
		served, err := m.GetCertificate(nil)
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		leaf, err := x509.ParseCertificate(served.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := leaf.CheckSignatureFrom(ca); err != nil {
			t.Errorf("replica %d serves a certificate not signed by the Secret's CA: %v", i, err)
		}
	}
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := c.Get(t.Context(), client.ObjectKey{Name: "sluice"}, cfg); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cfg.Webhooks[0].ClientConfig.CABundle, secret.Data[KeyCABundle]) {
		t.Errorf("caBundle not injected: %q", cfg.Webhooks[0].ClientConfig.CABundle)
	}
}

// allReadFirst holds each of the first wg-count reads of a Secret until all of them were made.
type allReadFirst struct {
	client.Client
	mu    sync.Mutex
	wg    sync.WaitGroup
	reads int
}

func (r *allReadFirst) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if _, ok := obj.(*corev1.Secret); ok {
		r.mu.Lock()
		r.reads++
		first := r.reads <= 4
		r.mu.Unlock()
		if first {
			err := r.Client.Get(ctx, key, obj, opts...)
			r.wg.Done()
			r.wg.Wait()
			return err
		}
	}
	return r.Client.Get(ctx, key, obj, opts...)
}
