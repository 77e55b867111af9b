package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

var certExpiry = prometheus.NewGauge(prometheus.GaugeOpts{
	Name: "sluice_webhook_certificate_expiry_timestamp_seconds",
	Help: "Expiry (Unix time) of the webhook serving certificate this replica serves.",
})

func init() { crmetrics.Registry.MustRegister(certExpiry) }

// DefaultInterval is how often a Manager re-reads the Secret unless told otherwise.
const DefaultInterval = 10 * time.Second

// Manager keeps the webhook's certificates in a Secret and serves them. Every replica runs
// one: each makes sure the Secret exists and is current (optimistic concurrency settles
// races: a losing write re-reads the winner's Secret), injects the Secret's CA bundle into the
// webhook configuration and serves the Secret's serving certificate, re-reading the Secret
// every Interval.
type Manager struct {
	// Reader reads past any cache (the Secret and the webhook configuration are read directly,
	// so no informer on Secrets is needed).
	Reader client.Reader
	// Writer writes to the API server.
	Writer client.Writer

	Namespace, SecretName string
	// WebhookConfiguration is the MutatingWebhookConfiguration whose webhooks get the bundle.
	WebhookConfiguration string
	Want                 Want
	// Interval between two reads of the Secret (how soon a rotation another replica made is
	// served here); zero means DefaultInterval.
	Interval time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	current atomic.Pointer[tls.Certificate]
	serving atomic.Pointer[string] // serial of the served certificate
}

// GetCertificate is the webhook server's tls.Config.GetCertificate: the pair last read from
// the Secret. Until there is one every handshake fails, so readiness (a handshake) stays false.
func (m *Manager) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c := m.current.Load()
	if c == nil {
		return nil, errors.New("no serving certificate yet")
	}
	return c, nil
}

// NeedLeaderElection is false: every replica serves the webhook, so every replica needs the
// certificate.
func (m *Manager) NeedLeaderElection() bool { return false }

// Start syncs at once, then every Interval (sooner after an error) until ctx ends.
func (m *Manager) Start(ctx context.Context) error {
	logger := log.FromContext(ctx).WithName("certs")
	ctx = log.IntoContext(ctx, logger)
	if m.Interval <= 0 {
		m.Interval = DefaultInterval
	}
	retry := time.Second
	for {
		wait := m.Interval
		if err := m.Sync(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			logger.Error(err, "webhook certificate sync failed; retrying", "in", retry)
			wait, retry = min(retry, m.Interval), min(2*retry, m.Interval)
		} else {
			retry = time.Second
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// Sync makes the Secret current, injects its bundle and serves its certificate.
func (m *Manager) Sync(ctx context.Context) error {
	mat, err := m.ensure(ctx)
	if err != nil {
		return err
	}
	injectErr := m.inject(ctx, mat.Bundle(m.now()))
	if err := m.serve(ctx, mat.Serving); err != nil {
		return err
	}
	return injectErr
}

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// ensure reads the Secret, creates or updates it as Decide says, and returns its content.
// Conflicting writes (another replica was first) are retried from a fresh read.
func (m *Manager) ensure(ctx context.Context) (Material, error) {
	logger := log.FromContext(ctx)
	key := types.NamespacedName{Namespace: m.Namespace, Name: m.SecretName}
	for attempt := 0; ; attempt++ {
		if attempt == 5 {
			return Material{}, fmt.Errorf("secret %s: still conflicting after %d attempts", key, attempt)
		}
		now := m.now()
		secret := &corev1.Secret{}
		err := m.Reader.Get(ctx, key, secret)
		if apierrors.IsNotFound(err) {
			mat, err := Apply(Material{}, Create, now, m.Want)
			if err != nil {
				return Material{}, err
			}
			data, err := mat.Encode(now)
			if err != nil {
				return Material{}, err
			}
			secret = &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: m.SecretName, Namespace: m.Namespace, Labels: map[string]string{
					"app.kubernetes.io/managed-by": "sluice", "app.kubernetes.io/component": "webhook-certificate",
				}},
				Type: corev1.SecretTypeTLS,
				Data: data,
			}
			err = m.Writer.Create(ctx, secret)
			if apierrors.IsAlreadyExists(err) {
				continue // another replica created it: use theirs
			}
			if err != nil {
				return Material{}, fmt.Errorf("create secret %s: %w", key, err)
			}
			logger.Info("created the webhook certificate Secret", "secret", key, "notAfter", mat.Serving.Cert.NotAfter)
			return mat, nil
		}
		if err != nil {
			return Material{}, fmt.Errorf("get secret %s: %w", key, err)
		}
		mat, decodeErr := Decode(secret.Data)
		d := Decide(mat, decodeErr, now, m.Want)
		if d.Action == Keep {
			return mat, nil
		}
		next, err := Apply(mat, d.Action, now, m.Want)
		if err != nil {
			return Material{}, err
		}
		if secret.Data, err = next.Encode(now); err != nil {
			return Material{}, err
		}
		err = m.Writer.Update(ctx, secret) // the read's resourceVersion is the precondition
		if apierrors.IsConflict(err) {
			continue
		}
		if err != nil {
			return Material{}, fmt.Errorf("update secret %s (%s): %w", key, d.Action, err)
		}
		logger.Info("updated the webhook certificate Secret", "secret", key, "action", d.Action,
			"reason", d.Reason, "notAfter", next.Serving.Cert.NotAfter)
		return next, nil
	}
}

// inject sets the caBundle of every webhook of the configuration that does not carry bundle,
// with a JSON patch that touches only those fields (and tests each webhook's name, so a
// reordered list is never patched at the wrong index).
func (m *Manager) inject(ctx context.Context, bundle []byte) error {
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := m.Reader.Get(ctx, types.NamespacedName{Name: m.WebhookConfiguration}, cfg); err != nil {
		return fmt.Errorf("get MutatingWebhookConfiguration %s: %w", m.WebhookConfiguration, err)
	}
	ops := PatchCABundle(cfg, bundle)
	if len(ops) == 0 {
		return nil
	}
	body, err := json.Marshal(ops)
	if err != nil {
		return err
	}
	if err := m.Writer.Patch(ctx, cfg, client.RawPatch(types.JSONPatchType, body)); err != nil {
		return fmt.Errorf("inject the CA bundle into MutatingWebhookConfiguration %s: %w", m.WebhookConfiguration, err)
	}
	log.FromContext(ctx).Info("injected the CA bundle", "webhookConfiguration", m.WebhookConfiguration, "webhooks", len(ops)/2)
	return nil
}

// PatchOp is one JSON patch operation.
type PatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// PatchCABundle is the JSON patch that gives every webhook of cfg the caBundle bundle; empty
// when all carry it already.
func PatchCABundle(cfg *admissionregistrationv1.MutatingWebhookConfiguration, bundle []byte) []PatchOp {
	var ops []PatchOp
	for i, w := range cfg.Webhooks {
		if bytes.Equal(w.ClientConfig.CABundle, bundle) {
			continue
		}
		ops = append(ops,
			PatchOp{Op: "test", Path: fmt.Sprintf("/webhooks/%d/name", i), Value: w.Name},
			PatchOp{Op: "add", Path: fmt.Sprintf("/webhooks/%d/clientConfig/caBundle", i), Value: bundle})
	}
	return ops
}

// serve makes s the served certificate (a no-op when it already is).
func (m *Manager) serve(ctx context.Context, s Serving) error {
	sn := s.Cert.SerialNumber.String()
	if p := m.serving.Load(); p != nil && *p == sn {
		return nil
	}
	pair, err := tls.X509KeyPair(s.CertPEM, s.KeyPEM)
	if err != nil {
		return fmt.Errorf("load the serving certificate: %w", err)
	}
	m.current.Store(&pair)
	m.serving.Store(&sn)
	certExpiry.Set(float64(s.Cert.NotAfter.Unix()))
	log.FromContext(ctx).Info("serving the webhook certificate", "serial", sn, "notAfter", s.Cert.NotAfter, "hosts", s.Hosts())
	return nil
}
