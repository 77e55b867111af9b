package datadog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/providers/metrics"
	"github.com/sluice-dev/sluice/providers/metrics/internal/httpapi"
)

const (
	// DefaultAddress is the API base of the US1 site. Other sites have their own, e.g.
	// https://api.datadoghq.eu (EU1) or https://api.us3.datadoghq.com (US3).
	DefaultAddress = "https://api.datadoghq.com"
	// DefaultWindow is the query range when Options.Window is zero.
	DefaultWindow = 5 * time.Minute
	// DefaultTimeout bounds one query when Options.Timeout is zero.
	DefaultTimeout = 10 * time.Second

	queryPath = "api/v1/query"
)

// Options configure a Provider. APIKey and ApplicationKey come from a Secret, never flags.
type Options struct {
	// Address is the API base URL of the Datadog site (default DefaultAddress).
	Address string
	// APIKey is sent as DD-API-KEY.
	APIKey string
	// ApplicationKey is sent as DD-APPLICATION-KEY; it needs the timeseries_query permission.
	ApplicationKey string
	// Window is the queried range ending now (default 5m, at least 1s).
	Window time.Duration
	// Timeout bounds one query (default 10s).
	Timeout time.Duration
}

// Provider is a reusable client; build one per site and key pair, not per check.
type Provider struct {
	client   *http.Client
	endpoint url.URL
	address  string
	apiKey   string
	appKey   string
	window   time.Duration
	timeout  time.Duration
	now      func() time.Time
}

var _ metrics.Provider = (*Provider)(nil)

// New validates o and builds a Provider.
func New(o Options) (*Provider, error) {
	if o.APIKey == "" {
		return nil, errors.New("datadog: APIKey is required")
	}
	if o.ApplicationKey == "" {
		return nil, errors.New("datadog: ApplicationKey is required")
	}
	if o.Address == "" {
		o.Address = DefaultAddress
	}
	base, err := httpapi.ParseAddress(o.Address)
	if err != nil {
		return nil, fmt.Errorf("datadog: Address: %w", err)
	}
	switch {
	case o.Window == 0:
		o.Window = DefaultWindow
	case o.Window < time.Second:
		return nil, fmt.Errorf("datadog: Window must be at least 1s, got %s", o.Window)
	}
	switch {
	case o.Timeout == 0:
		o.Timeout = DefaultTimeout
	case o.Timeout < 0:
		return nil, fmt.Errorf("datadog: Timeout must not be negative, got %s", o.Timeout)
	}
	return &Provider{
		client:   httpapi.NewClient(),
		endpoint: *base.JoinPath(queryPath),
		address:  base.String(),
		apiKey:   o.APIKey,
		appKey:   o.ApplicationKey,
		window:   o.Window,
		timeout:  o.Timeout,
		now:      time.Now,
	}, nil
}

// response is the part of the v1 query answer that is read.
type response struct {
	Status string   `json:"status"`
	Error  string   `json:"error"`
	Errors []string `json:"errors"`
	Series []struct {
		Scope  string   `json:"scope"`
		TagSet []string `json:"tag_set"`
		// Pointlist is [[epoch ms, value or null], …], oldest first.
		Pointlist [][]*float64 `json:"pointlist"`
	} `json:"series"`
}

// Query runs q over the last Window and returns the single series' last non-null value.
func (p *Provider) Query(ctx context.Context, q string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()

	to := p.now()
	from := to.Add(-p.window)
	u := p.endpoint
	u.RawQuery = url.Values{
		"query": {q},
		"from":  {strconv.FormatInt(from.Unix(), 10)},
		"to":    {strconv.FormatInt(to.Unix(), 10)},
	}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, fmt.Errorf("datadog %s: build request: %w", p.address, err)
	}
	req.Header.Set("DD-API-KEY", p.apiKey)
	req.Header.Set("DD-APPLICATION-KEY", p.appKey)
	req.Header.Set("Accept", "application/json")

	status, body, err := p.do(req)
	if err != nil {
		return 0, err
	}
	if status < 200 || status > 299 {
		return 0, p.statusError(status, body)
	}

	var res response
	if err := json.Unmarshal(body, &res); err != nil {
		return 0, fmt.Errorf("datadog %s: decode response: %w (body %s)", p.address, err, httpapi.Quote(body))
	}
	if res.Status == "error" {
		return 0, fmt.Errorf("datadog %s: query failed: %s", p.address, firstNonEmpty(res.Error, strings.Join(res.Errors, "; "), "no error text"))
	}
	switch len(res.Series) {
	case 0:
		return 0, fmt.Errorf("datadog: query matched no series in the last %s: %w", p.window, metrics.ErrNoData)
	case 1:
	default:
		names := make([]string, 0, len(res.Series))
		for _, s := range res.Series {
			names = append(names, firstNonEmpty(strings.Join(s.TagSet, ","), s.Scope, "?"))
		}
		return 0, fmt.Errorf("datadog: query returned %d series (%s); aggregate them into one: %w",
			len(res.Series), httpapi.Abbreviate(names), metrics.ErrMultipleSeries)
	}
	pl := res.Series[0].Pointlist
	for i := len(pl) - 1; i >= 0; i-- {
		if len(pl[i]) < 2 || pl[i][1] == nil {
			continue
		}
		return value(*pl[i][1])
	}
	return 0, fmt.Errorf("datadog: series has no non-null point in the last %s (%d points): %w", p.window, len(pl), metrics.ErrNoData)
}

// do sends req and reads the whole (capped) body.
func (p *Provider) do(req *http.Request) (int, []byte, error) {
	return httpapi.Do(p.client, req, "datadog "+p.address, p.timeout)
}

// statusError words a non-2xx answer; the v1 API reports {"errors": ["…"]}.
func (p *Provider) statusError(status int, body []byte) error {
	var res response
	text := ""
	if json.Unmarshal(body, &res) == nil {
		text = firstNonEmpty(strings.Join(res.Errors, "; "), res.Error)
	}
	if text == "" {
		text = httpapi.Quote(body)
	}
	if status == http.StatusUnauthorized || status == http.StatusForbidden {
		return fmt.Errorf("datadog %s: authentication failed (HTTP %d): %s; check the API key, the application key (it needs timeseries_query) and that both belong to this site",
			p.address, status, text)
	}
	return fmt.Errorf("datadog %s: HTTP %d: %s", p.address, status, text)
}

func value(f float64) (float64, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("datadog: query returned %v: %w", f, metrics.ErrNoData)
	}
	return f, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
