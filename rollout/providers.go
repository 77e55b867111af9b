package rollout

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/providers/metrics"
	"github.com/sluice-dev/sluice/providers/metrics/cloudwatch"
	"github.com/sluice-dev/sluice/providers/metrics/datadog"
	"github.com/sluice-dev/sluice/providers/metrics/dynatrace"
	"github.com/sluice-dev/sluice/providers/metrics/graphite"
	"github.com/sluice-dev/sluice/providers/metrics/influxdb"
	"github.com/sluice-dev/sluice/providers/metrics/newrelic"
	"github.com/sluice-dev/sluice/providers/metrics/prometheus"
	"github.com/sluice-dev/sluice/providers/metrics/stackdriver"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// secretTTL bounds how long a provider built from a Secret is reused, so rotated credentials
// are picked up without an API read per query.
const secretTTL = time.Minute

// Providers builds the metric provider a MetricTemplate names and reuses it across checks and
// releases: one client per (namespace, type, address, secret, region), never one per query.
// An unknown provider type is an error, never a fallback to Prometheus.
type Providers struct {
	// PrometheusAddress is the default address of prometheus templates without one.
	PrometheusAddress string
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
	prov, err := s.build(ctx, p, secret)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.cache == nil {
		s.cache = map[string]builtProvider{}
	}
	s.cache[key] = builtProvider{p: prov, built: now()}
	s.mu.Unlock()
	return prov, nil
}

// build makes the client of provider spec p. Secret keys follow Flagger's, so a Flagger
// template's Secret works unchanged.
func (s *Providers) build(ctx context.Context, p spec.ProviderSpec, secret map[string][]byte) (metrics.Provider, error) {
	key := func(k string) string { return string(secret[k]) }
	if p.Type != "prometheus" && (p.InsecureSkipVerify || len(p.Headers) > 0) {
		return nil, fmt.Errorf("the %s provider does not take insecureSkipVerify or headers (only prometheus does)", p.Type)
	}
	switch p.Type {
	case "prometheus":
		addr := p.Address
		if addr == "" {
			addr = s.PrometheusAddress
		}
		return prometheus.New(prometheus.Options{
			Address: addr, Timeout: s.Timeout,
			BearerToken: key("token"), Username: key("username"), Password: key("password"),
			Headers: p.Headers, InsecureSkipVerify: p.InsecureSkipVerify,
		})
	case "datadog":
		return datadog.New(datadog.Options{Address: p.Address, APIKey: key("datadog_api_key"),
			ApplicationKey: key("datadog_application_key"), Timeout: s.Timeout})
	case "newrelic":
		return newrelic.New(newrelic.Options{Address: p.Address, AccountID: key("newrelic_account_id"),
			QueryKey: key("newrelic_query_key"), Timeout: s.Timeout})
	case "graphite":
		return graphite.New(graphite.Options{Address: p.Address, Username: key("username"), Password: key("password"), Timeout: s.Timeout})
	case "influxdb":
		return influxdb.New(influxdb.Options{Address: p.Address, Org: key("org"), Token: key("token"), Timeout: s.Timeout})
	case "dynatrace":
		return dynatrace.New(dynatrace.Options{Address: p.Address, Token: key("dynatrace_token"), Timeout: s.Timeout})
	case "cloudwatch":
		return cloudwatch.New(ctx, cloudwatch.Options{Region: p.Region, Endpoint: p.Address, Timeout: s.Timeout,
			AccessKeyID: key("aws_access_key_id"), SecretAccessKey: key("aws_secret_access_key"), SessionToken: key("aws_session_token")})
	case "stackdriver":
		token := key("token")
		return stackdriver.New(stackdriver.Options{Project: key("project"), Address: p.Address, Timeout: s.Timeout,
			TokenSource: func(context.Context) (string, error) {
				if token == "" {
					return "", fmt.Errorf("the provider Secret has no token")
				}
				return token, nil
			}})
	default:
		return nil, fmt.Errorf("provider type %q is not available in this version of Sluice", p.Type)
	}
}
