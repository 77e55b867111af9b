// Package dynatrace queries the Dynatrace Metrics API v2 for Sluice's analysis checks.
//
// A check's query is a metric selector. Each Query calls
//
//	GET {Address}/api/v2/metrics/query?metricSelector={query}&from=now-{Window}&resolution={Resolution}
//	Authorization: Api-Token {Token}
//
// (https://docs.dynatrace.com/docs/dynatrace-api/environment-api/metric-v2/get-data-points), the
// same endpoint and header Flagger's dynatrace provider uses. With the default resolution "Inf"
// Dynatrace aggregates the whole window into one data point per series, which is what a canary
// check compares against its threshold.
//
// Reduction to one number: the selector must yield exactly one metric (result) with exactly one
// series (data); the value is that series' last non-null value. No metric, no series or only
// null values is metrics.ErrNoData; more than one metric or series is metrics.ErrMultipleSeries
// (aggregate the dimensions away in the selector, e.g. with :splitBy()). Unlike Flagger, which
// returns the first value of the last series, a selector that splits by a dimension is an error
// here rather than a silently picked series.
package dynatrace

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/providers/metrics"
	"github.com/sluice-dev/sluice/providers/metrics/internal/httpapi"
)

const (
	queryPath         = "/api/v2/metrics/query"
	defaultWindow     = 5 * time.Minute
	defaultResolution = "Inf"
	defaultTimeout    = 10 * time.Second
	// maxErrorText bounds how much of an unparsable error body ends up in an error message.
	maxErrorText = 512
)

// Options configure a Provider.
type Options struct {
	// Address is the environment's base URL: https://{environment-id}.live.dynatrace.com for
	// SaaS, https://{activegate}:9999/e/{environment-id} for an ActiveGate or Managed. Required.
	Address string
	// Token is an API access token with the metrics.read scope, read from a Secret by the
	// caller. Required.
	Token string
	// Window is how far back the query looks (from=now-Window); whole minutes, default 5m.
	Window time.Duration
	// Resolution is passed as the resolution parameter (default "Inf": one data point
	// aggregated over the whole window).
	Resolution string
	// Timeout bounds one query (default 10s).
	Timeout time.Duration
}

// Provider is a reusable client; build one per environment and token, not per check.
type Provider struct {
	client     *http.Client
	endpoint   string // Address + queryPath
	token      string
	from       string // now-5m
	resolution string
	timeout    time.Duration
}

var _ metrics.Provider = (*Provider)(nil)

// New validates o and builds a Provider.
func New(o Options) (*Provider, error) {
	if o.Address == "" {
		return nil, errors.New("dynatrace: Address is required")
	}
	if _, err := httpapi.ParseAddress(o.Address); err != nil {
		return nil, fmt.Errorf("dynatrace: Address: %w", err)
	}
	if o.Token == "" {
		return nil, errors.New("dynatrace: Token is required")
	}
	if o.Window == 0 {
		o.Window = defaultWindow
	}
	if o.Window < time.Minute || o.Window%time.Minute != 0 {
		return nil, fmt.Errorf("dynatrace: Window %s must be a whole number of minutes, at least 1m", o.Window)
	}
	if o.Resolution == "" {
		o.Resolution = defaultResolution
	}
	if o.Timeout < 0 {
		return nil, fmt.Errorf("dynatrace: Timeout %s must not be negative", o.Timeout)
	}
	if o.Timeout == 0 {
		o.Timeout = defaultTimeout
	}
	return &Provider{
		client:     httpapi.NewClient(),
		endpoint:   strings.TrimSuffix(o.Address, "/") + queryPath,
		token:      o.Token,
		from:       fmt.Sprintf("now-%dm", o.Window/time.Minute),
		resolution: o.Resolution,
		timeout:    o.Timeout,
	}, nil
}

// queryResponse is the MetricData body of GET /api/v2/metrics/query.
type queryResponse struct {
	TotalCount int `json:"totalCount"`
	Result     []struct {
		MetricID string   `json:"metricId"`
		Warnings []string `json:"warnings"`
		Data     []struct {
			DimensionMap map[string]string `json:"dimensionMap"`
			Timestamps   []int64           `json:"timestamps"`
			// Values has null where the slot holds no data.
			Values []*float64 `json:"values"`
		} `json:"data"`
	} `json:"result"`
}

// errorEnvelope is the body Dynatrace sends with 4xx/5xx answers.
type errorEnvelope struct {
	Error *struct {
		Code                 int    `json:"code"`
		Message              string `json:"message"`
		ConstraintViolations []struct {
			Path              string `json:"path"`
			Message           string `json:"message"`
			ParameterLocation string `json:"parameterLocation"`
		} `json:"constraintViolations"`
	} `json:"error"`
}

// Query runs a metric selector and returns the single series' last non-null value.
func (p *Provider) Query(ctx context.Context, selector string) (float64, error) {
	if strings.TrimSpace(selector) == "" {
		return 0, errors.New("dynatrace: empty metric selector")
	}
	qctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()

	q := url.Values{}
	q.Set("metricSelector", selector)
	q.Set("from", p.from)
	q.Set("resolution", p.resolution)
	req, err := http.NewRequestWithContext(qctx, http.MethodGet, p.endpoint+"?"+q.Encode(), nil)
	if err != nil {
		return 0, fmt.Errorf("dynatrace: build request: %w", err)
	}
	req.Header.Set("Authorization", "Api-Token "+p.token)
	req.Header.Set("Accept", "application/json")

	status, body, err := httpapi.Do(p.client, req, "dynatrace "+p.endpoint, p.timeout)
	if err != nil {
		return 0, err
	}
	if status != http.StatusOK {
		return 0, fmt.Errorf("dynatrace: query %q: %w", selector, apiError(status, body))
	}

	var r queryResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return 0, fmt.Errorf("dynatrace: query %q: decode response: %w", selector, err)
	}
	return reduce(selector, r)
}

func reduce(selector string, r queryResponse) (float64, error) {
	switch len(r.Result) {
	case 0:
		return 0, fmt.Errorf("dynatrace: selector %q matched no metric: %w", selector, metrics.ErrNoData)
	case 1:
	default:
		ids := make([]string, 0, len(r.Result))
		for _, res := range r.Result {
			ids = append(ids, res.MetricID)
		}
		return 0, fmt.Errorf("dynatrace: selector %q returned %d metrics (%s), want one: %w",
			selector, len(r.Result), strings.Join(ids, ", "), metrics.ErrMultipleSeries)
	}
	res := r.Result[0]
	warn := ""
	if len(res.Warnings) > 0 {
		warn = " (warnings: " + strings.Join(res.Warnings, "; ") + ")"
	}
	switch len(res.Data) {
	case 0:
		return 0, fmt.Errorf("dynatrace: metric %s has no series in the window%s: %w", res.MetricID, warn, metrics.ErrNoData)
	case 1:
	default:
		return 0, fmt.Errorf("dynatrace: metric %s returned %d series, want one (aggregate the dimensions, e.g. with :splitBy()): %w",
			res.MetricID, len(res.Data), metrics.ErrMultipleSeries)
	}
	vs := res.Data[0].Values
	for i := len(vs) - 1; i >= 0; i-- {
		if vs[i] == nil {
			continue
		}
		f := *vs[i]
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, fmt.Errorf("dynatrace: metric %s returned %v: %w", res.MetricID, f, metrics.ErrNoData)
		}
		return f, nil
	}
	return 0, fmt.Errorf("dynatrace: metric %s has only null values in the window%s: %w", res.MetricID, warn, metrics.ErrNoData)
}

// apiError turns a non-200 answer into an error that carries Dynatrace's own message.
func apiError(status int, body []byte) error {
	var env errorEnvelope
	if err := json.Unmarshal(body, &env); err == nil && env.Error != nil && env.Error.Message != "" {
		msg := env.Error.Message
		for _, v := range env.Error.ConstraintViolations {
			msg += fmt.Sprintf("; %s: %s", v.Path, v.Message)
		}
		return fmt.Errorf("HTTP %d: %s", status, msg)
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
