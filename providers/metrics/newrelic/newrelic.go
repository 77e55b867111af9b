package newrelic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/providers/metrics"
	"github.com/sluice-dev/sluice/providers/metrics/internal/httpapi"
)

const (
	// DefaultAddress is the Insights query API of the US region; EU accounts use
	// https://insights-api.eu.newrelic.com.
	DefaultAddress = "https://insights-api.newrelic.com"
	// DefaultWindow is the range appended as SINCE when a query has none.
	DefaultWindow = 5 * time.Minute
	// DefaultTimeout bounds one query when Options.Timeout is zero.
	DefaultTimeout = 10 * time.Second
)

// Options configure a Provider. QueryKey comes from a Secret, never flags.
type Options struct {
	// Address is the Insights API base URL (default DefaultAddress).
	Address string
	// AccountID is the numeric New Relic account ID the NRQL runs in.
	AccountID string
	// QueryKey is an Insights query key, sent as X-Query-Key.
	QueryKey string
	// Window is appended as "SINCE <seconds> seconds ago" to queries without a SINCE clause
	// (default 5m, at least 1s).
	Window time.Duration
	// Timeout bounds one query (default 10s).
	Timeout time.Duration
}

// Provider is a reusable client; build one per account and key, not per check.
type Provider struct {
	client   *http.Client
	endpoint url.URL
	address  string
	queryKey string
	window   time.Duration
	timeout  time.Duration
}

var _ metrics.Provider = (*Provider)(nil)

var digits = regexp.MustCompile(`^[0-9]+$`)

// New validates o and builds a Provider.
func New(o Options) (*Provider, error) {
	if o.AccountID == "" {
		return nil, errors.New("newrelic: AccountID is required")
	}
	if !digits.MatchString(o.AccountID) {
		return nil, fmt.Errorf("newrelic: AccountID must be the numeric account ID, got %q", o.AccountID)
	}
	if o.QueryKey == "" {
		return nil, errors.New("newrelic: QueryKey is required")
	}
	if o.Address == "" {
		o.Address = DefaultAddress
	}
	base, err := httpapi.ParseAddress(o.Address)
	if err != nil {
		return nil, fmt.Errorf("newrelic: Address: %w", err)
	}
	switch {
	case o.Window == 0:
		o.Window = DefaultWindow
	case o.Window < time.Second:
		return nil, fmt.Errorf("newrelic: Window must be at least 1s, got %s", o.Window)
	}
	switch {
	case o.Timeout == 0:
		o.Timeout = DefaultTimeout
	case o.Timeout < 0:
		return nil, fmt.Errorf("newrelic: Timeout must not be negative, got %s", o.Timeout)
	}
	return &Provider{
		client:   httpapi.NewClient(),
		endpoint: *base.JoinPath("v1", "accounts", o.AccountID, "query"),
		address:  base.String(),
		queryKey: o.QueryKey,
		window:   o.Window,
		timeout:  o.Timeout,
	}, nil
}

// Query runs the NRQL q and returns its single value.
func (p *Provider) Query(ctx context.Context, q string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()

	u := p.endpoint
	u.RawQuery = url.Values{"nrql": {p.nrql(q)}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, fmt.Errorf("newrelic %s: build request: %w", p.address, err)
	}
	req.Header.Set("X-Query-Key", p.queryKey)
	req.Header.Set("Accept", "application/json")

	status, body, err := p.do(req)
	if err != nil {
		return 0, err
	}
	if status < 200 || status > 299 {
		return 0, p.statusError(status, body)
	}
	return decode(body)
}

// nrql appends the window unless q has its own SINCE clause.
func (p *Provider) nrql(q string) string {
	q = strings.TrimSpace(q)
	if hasSince(q) {
		return q
	}
	return fmt.Sprintf("%s SINCE %d seconds ago", q, int64(p.window/time.Second))
}

var (
	// quoted matches NRQL string literals and backquoted identifiers, which may say "since".
	quoted = regexp.MustCompile("'(?:[^'\\\\]|\\\\.)*'|\"(?:[^\"\\\\]|\\\\.)*\"|`[^`]*`")
	since  = regexp.MustCompile(`(?i)\bSINCE\b`)
)

func hasSince(q string) bool {
	return since.MatchString(quoted.ReplaceAllString(q, "''"))
}

// answer is the part of an Insights query response that is read: "results" for plain
// aggregates, "facets" for FACET queries, "timeSeries" for TIMESERIES queries.
type answer struct {
	Results *[]map[string]json.RawMessage `json:"results"`
	Facets  *[]struct {
		Name    json.RawMessage              `json:"name"`
		Results []map[string]json.RawMessage `json:"results"`
	} `json:"facets"`
	TimeSeries json.RawMessage `json:"timeSeries"`
}

// decode reduces an Insights answer to its single number.
func decode(body []byte) (float64, error) {
	var a answer
	if err := json.Unmarshal(body, &a); err != nil {
		return 0, fmt.Errorf("newrelic: decode response: %w (body %s)", err, httpapi.Quote(body))
	}
	var results []map[string]json.RawMessage
	switch {
	case a.Facets != nil:
		switch len(*a.Facets) {
		case 0:
			return 0, fmt.Errorf("newrelic: FACET query returned no facets: %w", metrics.ErrNoData)
		case 1:
			results = (*a.Facets)[0].Results
		default:
			names := make([]string, 0, len(*a.Facets))
			for _, f := range *a.Facets {
				names = append(names, string(f.Name))
			}
			return 0, fmt.Errorf("newrelic: FACET query returned %d facets (%s); drop FACET or filter to one: %w",
				len(*a.Facets), httpapi.Abbreviate(names), metrics.ErrMultipleSeries)
		}
	case a.TimeSeries != nil:
		return 0, errors.New("newrelic: TIMESERIES queries are not supported; drop TIMESERIES so the query returns one value")
	case a.Results != nil:
		results = *a.Results
	default:
		return 0, fmt.Errorf("newrelic: response has no results (body %s)", httpapi.Quote(body))
	}
	switch len(results) {
	case 0:
		return 0, fmt.Errorf("newrelic: query returned no results: %w", metrics.ErrNoData)
	case 1:
		return single(results[0])
	default:
		return 0, fmt.Errorf("newrelic: query returned %d results; select one aggregate: %w", len(results), metrics.ErrMultipleSeries)
	}
}

// single returns the one value of a result object such as {"count": 42} or
// {"percentiles": {"99": 0.41}}.
func single(m map[string]json.RawMessage) (float64, error) {
	switch len(m) {
	case 0:
		return 0, fmt.Errorf("newrelic: result holds no value: %w", metrics.ErrNoData)
	case 1:
	default:
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return 0, fmt.Errorf("newrelic: result holds %d values (%s); select one: %w",
			len(m), strings.Join(keys, ", "), metrics.ErrMultipleSeries)
	}
	var key string
	var raw json.RawMessage
	for k, v := range m {
		key, raw = k, v
	}
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return 0, fmt.Errorf("newrelic: %s is null (no events in the window?): %w", key, metrics.ErrNoData)
	case raw[0] == '{':
		var inner map[string]json.RawMessage
		if err := json.Unmarshal(raw, &inner); err != nil {
			return 0, fmt.Errorf("newrelic: decode %s: %w", key, err)
		}
		return single(inner)
	case raw[0] == '[':
		var list []json.RawMessage
		if err := json.Unmarshal(raw, &list); err != nil {
			return 0, fmt.Errorf("newrelic: decode %s: %w", key, err)
		}
		if len(list) == 0 {
			return 0, fmt.Errorf("newrelic: %s is empty: %w", key, metrics.ErrNoData)
		}
		return 0, fmt.Errorf("newrelic: %s is a list of %d, not a number; select one aggregate", key, len(list))
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		return 0, fmt.Errorf("newrelic: %s is %s, not a number", key, httpapi.Quote(raw))
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("newrelic: %s is %v: %w", key, f, metrics.ErrNoData)
	}
	return f, nil
}

// do sends req and reads the whole (capped) body.
func (p *Provider) do(req *http.Request) (int, []byte, error) {
	return httpapi.Do(p.client, req, "newrelic "+p.address, p.timeout)
}

// statusError words a non-2xx answer; the Insights API reports {"error": "…"}.
func (p *Provider) statusError(status int, body []byte) error {
	var e struct {
		Error string `json:"error"`
	}
	text := ""
	if json.Unmarshal(body, &e) == nil {
		text = e.Error
	}
	if text == "" {
		text = httpapi.Quote(body)
	}
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("newrelic %s: authentication failed (HTTP %d): %s; check the query key, the account ID and the region (US or EU address)",
			p.address, status, text)
	default:
		return fmt.Errorf("newrelic %s: HTTP %d: %s", p.address, status, text)
	}
}
