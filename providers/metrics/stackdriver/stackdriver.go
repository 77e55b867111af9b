// Package stackdriver queries Google Cloud Monitoring (formerly Stackdriver) for Sluice's
// analysis checks, in PromQL, through Cloud Monitoring's Prometheus-compatible HTTP API.
//
// A check's query is a PromQL expression. Each Query calls
//
//	GET {Address}/v1/projects/{Project}/location/global/prometheus/api/v1/query?query={query}&time={now}
//	Authorization: Bearer {token from TokenSource}
//
// (https://cloud.google.com/monitoring/api/ref_v3/rest/v1/projects.location.prometheus.api.v1/query),
// which answers in the Prometheus HTTP API format
// (https://prometheus.io/docs/prometheus/latest/querying/api/#instant-queries) and serves both
// Managed Service for Prometheus data and Cloud Monitoring metrics
// (https://cloud.google.com/stackdriver/docs/managed-prometheus/promql).
//
// Reduction to one number, as in the prometheus provider: a vector of one sample gives its
// value, a scalar gives itself, an empty vector or a NaN/±Inf value is metrics.ErrNoData and more
// than one sample is metrics.ErrMultipleSeries.
//
// Why not Flagger's API: Flagger's stackdriver provider uses the Go client library's
// QueryTimeSeries call (cloud.google.com/go/monitoring/apiv3/v2), which takes MQL. Google has
// deprecated MQL and QueryTimeSeries in favour of PromQL ("We recommend using PromQL instead of
// MQL"). PromQL also lets Sluice's builtin checks and MetricTemplates keep one query language
// across the prometheus and stackdriver providers, and the HTTP API needs no gRPC stack or
// Google client libraries. Flagger MetricTemplates written in MQL must be rewritten in PromQL.
//
// Credentials: the caller supplies TokenSource, which returns an OAuth 2.0 access token with the
// monitoring.read scope (from a mounted service-account key Secret or from workload identity);
// it is called on every query, so it should cache and refresh the token itself.
package stackdriver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/providers/metrics"
	"github.com/sluice-dev/sluice/providers/metrics/internal/httpapi"
)

const (
	// DefaultAddress is Cloud Monitoring's API endpoint.
	DefaultAddress = "https://monitoring.googleapis.com"
	defaultTimeout = 10 * time.Second
	maxErrorText   = 512
)

// TokenSource returns a current OAuth 2.0 access token.
type TokenSource func(ctx context.Context) (string, error)

// Options configure a Provider.
type Options struct {
	// Project is the ID or number of the project whose metrics scope is queried. Required.
	Project string
	// TokenSource supplies the bearer token for every query. Required.
	TokenSource TokenSource
	// Address overrides the API endpoint (default DefaultAddress), e.g. for a private endpoint
	// or a test server.
	Address string
	// Timeout bounds one query, token included (default 10s).
	Timeout time.Duration
}

// Provider is a reusable client; build one per project, not per check.
type Provider struct {
	client   *http.Client
	endpoint string
	tokens   TokenSource
	timeout  time.Duration
	now      func() time.Time
}

var _ metrics.Provider = (*Provider)(nil)

// New validates o and builds a Provider.
func New(o Options) (*Provider, error) {
	if o.Project == "" {
		return nil, errors.New("stackdriver: Project is required")
	}
	if strings.ContainsAny(o.Project, "/?#") {
		return nil, fmt.Errorf("stackdriver: Project %q must be a bare project ID or number", o.Project)
	}
	if o.TokenSource == nil {
		return nil, errors.New("stackdriver: TokenSource is required")
	}
	if o.Address == "" {
		o.Address = DefaultAddress
	}
	if _, err := httpapi.ParseAddress(o.Address); err != nil {
		return nil, fmt.Errorf("stackdriver: Address: %w", err)
	}
	if o.Timeout < 0 {
		return nil, fmt.Errorf("stackdriver: Timeout %s must not be negative", o.Timeout)
	}
	if o.Timeout == 0 {
		o.Timeout = defaultTimeout
	}
	return &Provider{
		client: httpapi.NewClient(),
		endpoint: strings.TrimSuffix(o.Address, "/") + "/v1/projects/" + url.PathEscape(o.Project) +
			"/location/global/prometheus/api/v1/query",
		tokens:  o.TokenSource,
		timeout: o.Timeout,
		now:     time.Now,
	}, nil
}

// apiResponse is the Prometheus HTTP API envelope. Error is a string in Prometheus-style
// errors and an object ({code, message, status}) in Google API errors, so it is decoded late.
type apiResponse struct {
	Status string `json:"status"`
	Data   struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     json.RawMessage `json:"error"`
	Warnings  []string        `json:"warnings"`
}

type sample struct {
	Metric map[string]string `json:"metric"`
	Value  []json.RawMessage `json:"value"` // [unix seconds, "value"]
}

// Query runs an instant PromQL query at the current time and returns its single value.
func (p *Provider) Query(ctx context.Context, q string) (float64, error) {
	if strings.TrimSpace(q) == "" {
		return 0, errors.New("stackdriver: empty query")
	}
	qctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()

	token, err := p.tokens(qctx)
	if err != nil {
		return 0, p.transportError(ctx, fmt.Errorf("get access token: %w", err))
	}
	if token == "" {
		return 0, errors.New("stackdriver: TokenSource returned an empty token")
	}

	params := url.Values{}
	params.Set("query", q)
	params.Set("time", strconv.FormatFloat(float64(p.now().UnixMilli())/1e3, 'f', 3, 64))
	req, err := http.NewRequestWithContext(qctx, http.MethodGet, p.endpoint+"?"+params.Encode(), nil)
	if err != nil {
		return 0, fmt.Errorf("stackdriver: build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")

	status, body, err := httpapi.Do(p.client, req, "stackdriver "+p.endpoint, p.timeout)
	if err != nil {
		return 0, err
	}

	var r apiResponse
	decodeErr := json.Unmarshal(body, &r)
	if status != http.StatusOK || r.Status == "error" {
		return 0, fmt.Errorf("stackdriver: query %q: %w", q, apiError(status, body, r, decodeErr))
	}
	if decodeErr != nil {
		return 0, fmt.Errorf("stackdriver: query %q: decode response: %w", q, decodeErr)
	}
	return reduce(q, r)
}

func reduce(q string, r apiResponse) (float64, error) {
	switch r.Data.ResultType {
	case "vector":
		var vec []sample
		if err := json.Unmarshal(r.Data.Result, &vec); err != nil {
			return 0, fmt.Errorf("stackdriver: query %q: decode vector: %w", q, err)
		}
		switch len(vec) {
		case 0:
			warn := ""
			if len(r.Warnings) > 0 {
				warn = " (warnings: " + strings.Join(r.Warnings, "; ") + ")"
			}
			return 0, fmt.Errorf("stackdriver: query %q returned no series%s: %w", q, warn, metrics.ErrNoData)
		case 1:
			return value(q, vec[0].Value)
		default:
			return 0, fmt.Errorf("stackdriver: query %q returned %d series: %w", q, len(vec), metrics.ErrMultipleSeries)
		}
	case "scalar":
		var pair []json.RawMessage
		if err := json.Unmarshal(r.Data.Result, &pair); err != nil {
			return 0, fmt.Errorf("stackdriver: query %q: decode scalar: %w", q, err)
		}
		return value(q, pair)
	default:
		return 0, fmt.Errorf("stackdriver: query %q: unsupported result type %q (want an instant vector or scalar)", q, r.Data.ResultType)
	}
}

// value parses a [timestamp, "value"] pair.
func value(q string, pair []json.RawMessage) (float64, error) {
	if len(pair) != 2 {
		return 0, fmt.Errorf("stackdriver: query %q: sample has %d elements, want [time, value]", q, len(pair))
	}
	var s string
	if err := json.Unmarshal(pair[1], &s); err != nil {
		return 0, fmt.Errorf("stackdriver: query %q: sample value: %w", q, err)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("stackdriver: query %q: sample value: %w", q, err)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("stackdriver: query %q returned %v (no requests in the window?): %w", q, f, metrics.ErrNoData)
	}
	return f, nil
}

// apiError carries the backend's own words: Prometheus-style {"status":"error","errorType",
// "error"} or Google's {"error":{"code","message","status"}}, else the start of the body.
func apiError(status int, body []byte, r apiResponse, decodeErr error) error {
	if decodeErr == nil && len(r.Error) > 0 {
		var text string
		if json.Unmarshal(r.Error, &text) == nil && text != "" {
			return fmt.Errorf("HTTP %d: %s: %s", status, r.ErrorType, text)
		}
		var g struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
			Status  string `json:"status"`
		}
		if json.Unmarshal(r.Error, &g) == nil && g.Message != "" {
			return fmt.Errorf("HTTP %d: %s: %s", status, g.Status, g.Message)
		}
	}
	text := strings.TrimSpace(string(body))
	if len(text) > maxErrorText {
		text = text[:maxErrorText] + "…"
	}
	if text == "" {
		text = http.StatusText(status)
	}
	return fmt.Errorf("HTTP %d: %s", status, text)
}

// transportError wraps connection failures and timeouts with metrics.ErrUnreachable. A
// cancellation by the caller is passed through as is: the backend is not to blame.
func (p *Provider) transportError(parent context.Context, err error) error {
	if errors.Is(parent.Err(), context.Canceled) {
		return fmt.Errorf("stackdriver %s: %w", p.endpoint, err)
	}
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("stackdriver %s: %w: %w", p.endpoint, metrics.ErrUnreachable, err)
	}
	return fmt.Errorf("stackdriver %s: %w", p.endpoint, err)
}
