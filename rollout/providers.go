package rollout

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
	"github.com/sluice-dev/sluice/providers/metrics/redact"
	"github.com/sluice-dev/sluice/providers/metrics/stackdriver"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// secretTTL bounds how long a provider built from a Secret is reused, so rotated credentials
// are picked up without an API read per query.
const secretTTL = time.Minute

// Providers builds the metric provider a MetricTemplate names and reuses it across checks and
// releases: one client per (namespace, type, address, secret, region), never one per query.
// An unknown provider type is an error, never a fallback to Prometheus.
//
// Credentials come only from the Secret the template names, read in the template's own
// namespace; the controller's own cloud identity (the AWS default credential chain) is used
// only with AllowControllerCloudIdentity. Errors of a built provider never repeat the Secret's
// credential values.
type Providers struct {
	// PrometheusAddress is the default address of prometheus templates without one.
	PrometheusAddress string
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
	prov = scrubbed(prov, secret)
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
func (s *Providers) build(ctx context.Context, ns string, p spec.ProviderSpec, secret map[string][]byte) (metrics.Provider, error) {
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
		prov, err := cloudwatch.New(ctx, cloudwatch.Options{Region: p.Region, Endpoint: p.Address, Timeout: s.Timeout,
			AccessKeyID: key("aws_access_key_id"), SecretAccessKey: key("aws_secret_access_key"), SessionToken: key("aws_session_token"),
			UseDefaultCredentials: s.AllowControllerCloudIdentity})
		if errors.Is(err, cloudwatch.ErrNoCredentials) {
			return nil, fmt.Errorf("the cloudwatch provider has no credentials: set aws_access_key_id and aws_secret_access_key in the Secret named by secretRef, in namespace %s "+
				"(the controller's own AWS identity is used only when it runs with --allow-controller-cloud-identity)", ns)
		}
		return prov, err
	case "stackdriver":
		// Only the Secret's token: Sluice has no fallback to its own Google identity.
		token := key("token")
		if token == "" || key("project") == "" {
			return nil, fmt.Errorf("the stackdriver provider has no credentials: set project and token (an OAuth 2.0 access token with the monitoring.read scope) in the Secret named by secretRef, in namespace %s", ns)
		}
		return stackdriver.New(stackdriver.Options{Project: key("project"), Address: p.Address, Timeout: s.Timeout,
			TokenSource: func(context.Context) (string, error) { return token, nil }})
	default:
		return nil, fmt.Errorf("provider type %q is not available in this version of Sluice", p.Type)
	}
}

// credentialKeys are the Secret keys whose values must never appear in what Sluice prints.
var credentialKeys = []string{
	"token", "username", "password", "datadog_api_key", "datadog_application_key", "newrelic_query_key",
	"dynatrace_token", "aws_access_key_id", "aws_secret_access_key", "aws_session_token",
}

// scrubbed wraps p so that its errors never carry one of the Secret's credential values (a
// backend may echo a key back in its error text); errors.Is still sees the sentinels.
func scrubbed(p metrics.Provider, secret map[string][]byte) metrics.Provider {
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
