package rollout

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/providers/metrics"
	"github.com/sluice-dev/sluice/providers/metrics/redact"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// secretTTL bounds how long a provider built from a Secret is reused, so rotated credentials
// are picked up without an API read per query.
const secretTTL = time.Minute

// Providers builds the metric provider a MetricTemplate names, through the registered
// backends, and reuses it across checks and releases: one client per (namespace, type, address,
// secret, region), never one per query. An unknown provider type is an error, never a fallback
// to Prometheus.
//
// Credentials come only from the Secret the template names, read in the template's own
// namespace; the controller's own cloud identity (the AWS default credential chain) is used
// only with AllowControllerCloudIdentity. Errors of a built provider never repeat the Secret's
// credential values.
type Providers struct {
	// Backends are the metric backends the controller offers (cmd/sluice registers them).
	Backends *metrics.Registry
	// DefaultAddresses are, per backend type, the address of a template that names none
	// (prometheus: --prometheus-address).
	DefaultAddresses map[string]string
	// AllowControllerCloudIdentity lets a cloudwatch template without keys use the controller's
	// own AWS identity (--allow-controller-cloud-identity).
	AllowControllerCloudIdentity bool
	// Secrets reads credentials; an uncached reader, since Sluice does not watch Secrets.
	Secrets client.Reader
	Timeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu    sync.Mutex
	cache map[string]builtProvider
}

type builtProvider struct {
	p     metrics.Provider
	built time.Time
}

// For returns the provider of spec p for a template in namespace ns.
func (s *Providers) For(ctx context.Context, ns string, p spec.ProviderSpec) (metrics.Provider, error) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	key := fmt.Sprintf("%s|%s|%s|%v|%s|%v|%v", ns, p.Type, p.Address, p.SecretRef, p.Region, p.InsecureSkipVerify, p.Headers)
	s.mu.Lock()
	if b, ok := s.cache[key]; ok && (p.SecretRef == nil || now().Sub(b.built) < secretTTL) {
		s.mu.Unlock()
		return b.p, nil
	}
	s.mu.Unlock()

	secret := map[string][]byte{}
	if p.SecretRef != nil {
		sec := &corev1.Secret{}
		if err := s.Secrets.Get(ctx, types.NamespacedName{Namespace: ns, Name: p.SecretRef.Name}, sec); err != nil {
			return nil, fmt.Errorf("read Secret %s/%s of the %s provider: %w", ns, p.SecretRef.Name, p.Type, err)
		}
		secret = sec.Data
	}
	prov, err := s.build(ctx, ns, p, secret)
	if err != nil {
		return nil, err
	}
	prov = scrubbed(prov, secret, s.Backends.CredentialKeys(p.Type))
	s.mu.Lock()
	if s.cache == nil {
		s.cache = map[string]builtProvider{}
	}
	s.cache[key] = builtProvider{p: prov, built: now()}
	s.mu.Unlock()
	return prov, nil
}

// build makes the client of provider spec p from the data of its Secret.
func (s *Providers) build(ctx context.Context, ns string, p spec.ProviderSpec, secret map[string][]byte) (metrics.Provider, error) {
	addr := p.Address
	if addr == "" {
		addr = s.DefaultAddresses[p.Type]
	}
	return s.Backends.New(ctx, p.Type, metrics.Source{
		Address: addr, Region: p.Region, InsecureSkipVerify: p.InsecureSkipVerify, Headers: p.Headers,
		Secret: secret, Namespace: ns, Timeout: s.Timeout, AllowControllerCloudIdentity: s.AllowControllerCloudIdentity,
	})
}

// scrubbed wraps p so that its errors never carry the values of the Secret's credential keys
// (a backend may echo a key back in its error text); errors.Is still sees the sentinels.
func scrubbed(p metrics.Provider, secret map[string][]byte, credentialKeys []string) metrics.Provider {
	var values []string
	for _, k := range credentialKeys {
		// Shorter values would mask ordinary words; no real credential is that short.
		if v := strings.TrimSpace(string(secret[k])); len(v) >= 4 {
			values = append(values, v)
		}
	}
	if len(values) == 0 {
		return p
	}
	return &scrubber{p: p, values: values}
}

type scrubber struct {
	p      metrics.Provider
	values []string
}

func (s *scrubber) Query(ctx context.Context, q string) (float64, error) {
	v, err := s.p.Query(ctx, q)
	if err == nil {
		return v, nil
	}
	text := err.Error()
	masked := text
	for _, secret := range s.values {
		masked = strings.ReplaceAll(masked, secret, redact.Mask)
	}
	if masked == text {
		return v, err
	}
	return v, &maskedError{text: masked, err: err}
}

type maskedError struct {
	text string
	err  error
}

func (e *maskedError) Error() string { return e.text }
func (e *maskedError) Unwrap() error { return e.err }
