// Package prometheus queries a Prometheus server's HTTP API (instant queries) for Sluice's
// analysis checks.
package prometheus

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/sluice-dev/sluice/providers/metrics"
	"github.com/sluice-dev/sluice/providers/metrics/internal/httpapi"
)

// Options configure a Provider.
type Options struct {
	// Address is the server's base URL, e.g. http://127.0.0.1:9090.
	Address string
	// Timeout bounds one query (default 10s).
	Timeout time.Duration
	// BearerToken or Username/Password authenticate, when set (read from a Secret by the caller).
	BearerToken        string
	Username, Password string
	// Headers are added to every request.
	Headers map[string]string
	// InsecureSkipVerify accepts any TLS certificate from the server.
	InsecureSkipVerify bool
}

// Provider is a reusable client; build one per address, not per check.
type Provider struct {
	api     promv1.API
	address string
	timeout time.Duration
}

var _ metrics.Provider = (*Provider)(nil)

// CheckAddress tells whether s can be a Prometheus address: http(s), a host, no user info
// (credentials come from a Secret), no query or fragment. The error shows s redacted.
func CheckAddress(s string) error {
	_, err := httpapi.ParseAddress(s)
	return err
}

// New builds a Provider. Its client never follows a redirect (so the credentials and headers
// stay on Address's host) and caps every answer (httpapi.MaxBody).
func New(o Options) (*Provider, error) {
	if o.Address == "" {
		return nil, errors.New("prometheus: address is required")
	}
	if _, err := httpapi.ParseAddress(o.Address); err != nil {
		return nil, fmt.Errorf("prometheus: address %w", err)
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	// The headers go on first, the guard sees every answer: client_golang reads the body
	// whole, so the cap must hold before it does.
	rt := &authRoundTripper{next: httpapi.NewTransport(o.InsecureSkipVerify), o: o}
	c, err := api.NewClient(api.Config{Address: o.Address, Client: httpapi.WithTransport(rt)})
	if err != nil {
		return nil, fmt.Errorf("prometheus client for %s: %w", o.Address, err)
	}
	return &Provider{api: promv1.NewAPI(c), address: o.Address, timeout: o.Timeout}, nil
}

// Query runs an instant query and returns its single value.
func (p *Provider) Query(ctx context.Context, q string) (float64, error) {
	qctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	v, _, _, err := p.api.Query(qctx, q, time.Now())
	if err != nil {
		var apiErr *promv1.Error
		if errors.As(err, &apiErr) {
			// The server's own answer (bad query, 4xx/5xx): its words, not a transport failure.
			return 0, fmt.Errorf("prometheus %s: %w", p.address, err)
		}
		return 0, httpapi.TransportError(qctx, "prometheus "+p.address, p.timeout, err)
	}
	switch r := v.(type) {
	case model.Vector:
		switch len(r) {
		case 0:
			return 0, fmt.Errorf("prometheus: query returned no series: %w", metrics.ErrNoData)
		case 1:
			return value(float64(r[0].Value))
		default:
			return 0, fmt.Errorf("prometheus: query returned %d series: %w", len(r), metrics.ErrMultipleSeries)
		}
	case *model.Scalar:
		return value(float64(r.Value))
	default:
		return 0, fmt.Errorf("prometheus: unsupported result type %s", v.Type())
	}
}

func value(f float64) (float64, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("prometheus: query returned %v (no requests in the window?): %w", f, metrics.ErrNoData)
	}
	return f, nil
}

type authRoundTripper struct {
	next http.RoundTripper
	o    Options
}

func (a *authRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	if a.o.BearerToken == "" && a.o.Username == "" && len(a.o.Headers) == 0 {
		return a.next.RoundTrip(r)
	}
	r = r.Clone(r.Context())
	for k, v := range a.o.Headers {
		r.Header.Set(k, v)
	}
	switch {
	case a.o.BearerToken != "":
		r.Header.Set("Authorization", "Bearer "+a.o.BearerToken)
	case a.o.Username != "":
		r.SetBasicAuth(a.o.Username, a.o.Password)
	}
	return a.next.RoundTrip(r)
}
