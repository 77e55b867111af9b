package graphite

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
	// DefaultWindow is sent as from=-<window> when a query sets no from.
	DefaultWindow = 5 * time.Minute
	// DefaultTimeout bounds one query when Options.Timeout is zero.
	DefaultTimeout = 10 * time.Second
)

// Options configure a Provider. Username and Password come from a Secret, never flags.
type Options struct {
	// Address is the base URL of graphite-web, e.g. http://graphite.monitoring:8080; a path
	// prefix (a reverse proxy's /graphite) is kept.
	Address string
	// Username and Password, when set, are sent as HTTP basic auth; set both or neither.
	Username, Password string
	// Window is the range sent as from=-<Window> when the query sets no from (default 5m, at
	// least 1s).
	Window time.Duration
	// Timeout bounds one query (default 10s).
	Timeout time.Duration
}

// Provider is a reusable client; build one per server, not per check.
type Provider struct {
	client   *http.Client
	endpoint url.URL
	address  string
	username string
	password string
	from     string
	timeout  time.Duration
}

var _ metrics.Provider = (*Provider)(nil)

// New validates o and builds a Provider.
func New(o Options) (*Provider, error) {
	if o.Address == "" {
		return nil, errors.New("graphite: Address is required")
	}
	base, err := httpapi.ParseAddress(o.Address)
	if err != nil {
		if strings.Contains(o.Address, "@") {
			return nil, fmt.Errorf("graphite: Address: %w (use Username and Password)", err)
		}
		return nil, fmt.Errorf("graphite: Address: %w", err)
	}
	if o.Username == "" && o.Password != "" {
		return nil, errors.New("graphite: Password is set but Username is empty")
	}
	if o.Username != "" && o.Password == "" {
		return nil, errors.New("graphite: Username is set but Password is empty")
	}
	switch {
	case o.Window == 0:
		o.Window = DefaultWindow
	case o.Window < time.Second:
		return nil, fmt.Errorf("graphite: Window must be at least 1s, got %s", o.Window)
	}
	switch {
	case o.Timeout == 0:
		o.Timeout = DefaultTimeout
	case o.Timeout < 0:
		return nil, fmt.Errorf("graphite: Timeout must not be negative, got %s", o.Timeout)
	}
	return &Provider{
		client:   httpapi.NewClient(),
		endpoint: *base.JoinPath("render"),
		address:  base.String(),
		username: o.Username,
		password: o.Password,
		from:     relative(o.Window),
		timeout:  o.Timeout,
	}, nil
}

// relative words a window as a Graphite relative time: -5min, or -90s.
func relative(d time.Duration) string {
	if d%time.Minute == 0 {
		return fmt.Sprintf("-%dmin", int64(d/time.Minute))
	}
	return fmt.Sprintf("-%ds", int64(d/time.Second))
}

// Query renders q and returns the single series' last non-null datapoint.
func (p *Provider) Query(ctx context.Context, q string) (float64, error) {
	params, err := p.params(q)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()

	u := p.endpoint
	u.RawQuery = params.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, fmt.Errorf("graphite %s: build request: %w", p.address, err)
	}
	req.Header.Set("Accept", "application/json")
	if p.username != "" {
		req.SetBasicAuth(p.username, p.password)
	}

	status, body, err := p.do(req)
	if err != nil {
		return 0, err
	}
	if status < 200 || status > 299 {
		return 0, p.statusError(status, body)
	}
	return decode(body)
}

// params turns a query into render parameters (see the package comment for the two forms).
func (p *Provider) params(q string) (url.Values, error) {
	q = strings.Join(strings.Fields(q), " ")
	if q == "" {
		return nil, errors.New("graphite: empty query")
	}
	var v url.Values
	if strings.HasPrefix(q, "target=") {
		var err error
		if v, err = url.ParseQuery(q); err != nil {
			return nil, fmt.Errorf("graphite: query starts with target= but is not a query string: %w", err)
		}
	} else {
		v = url.Values{"target": {q}}
	}
	if v.Get("from") == "" {
		v.Set("from", p.from)
	}
	v.Set("format", "json")
	return v, nil
}

// series is one element of the render API's JSON answer:
// [{"target": "…", "datapoints": [[value or null, epoch seconds], …]}].
type series struct {
	Target     string  `json:"target"`
	Datapoints [][]any `json:"datapoints"`
}

func decode(body []byte) (float64, error) {
	var res []series
	if err := json.Unmarshal(body, &res); err != nil {
		return 0, fmt.Errorf("graphite: decode render response: %w (body %s)", err, httpapi.Quote(body))
	}
	switch len(res) {
	case 0:
		return 0, fmt.Errorf("graphite: target matched no series: %w", metrics.ErrNoData)
	case 1:
	default:
		names := make([]string, 0, len(res))
		for _, s := range res {
			names = append(names, s.Target)
		}
		return 0, fmt.Errorf("graphite: query returned %d series (%s); combine them into one, e.g. sumSeries(): %w",
			len(res), httpapi.Abbreviate(names), metrics.ErrMultipleSeries)
	}
	s := res[0]
	for i := len(s.Datapoints) - 1; i >= 0; i-- {
		dp := s.Datapoints[i]
		if len(dp) == 0 || dp[0] == nil {
			continue
		}
		var f float64
		switch v := dp[0].(type) {
		case float64:
			f = v
		case string: // some render API implementations quote numbers
			var err error
			if f, err = strconv.ParseFloat(v, 64); err != nil {
				return 0, fmt.Errorf("graphite: %s: datapoint %q is not a number", s.Target, v)
			}
		default:
			return 0, fmt.Errorf("graphite: %s: datapoint %v is not a number", s.Target, v)
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, fmt.Errorf("graphite: %s: last datapoint is %v: %w", s.Target, f, metrics.ErrNoData)
		}
		return f, nil
	}
	return 0, fmt.Errorf("graphite: %s has no non-null datapoint (%d datapoints): %w", s.Target, len(s.Datapoints), metrics.ErrNoData)
}

// do sends req and reads the whole (capped) body.
func (p *Provider) do(req *http.Request) (int, []byte, error) {
	return httpapi.Do(p.client, req, "graphite "+p.address, p.timeout)
}

// statusError words a non-2xx answer; graphite-web answers errors as plain text.
func (p *Provider) statusError(status int, body []byte) error {
	text := httpapi.Quote(body)
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden:
		hint := "the server wants credentials; set Username and Password"
		if p.username != "" {
			hint = "check Username and Password"
		}
		return fmt.Errorf("graphite %s: authentication failed (HTTP %d): %s; %s", p.address, status, text, hint)
	default:
		return fmt.Errorf("graphite %s: HTTP %d: %s", p.address, status, text)
	}
}
