package datadog

import (
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/providers/metrics"
	"github.com/sluice-dev/sluice/providers/metrics/internal/providertest"
)

const (
	testAPIKey = "test-api-key"
	testAppKey = "test-application-key"
	// testQuery carries characters that break a hand-built URL: spaces, braces, commas, '&',
	// '+', '#' and '%'.
	testQuery = "100 * sum:trace.http.request.errors{service:web,version:v2&x}.as_count() / sum:trace.http.request.hits{service:web}.as_count() + 0 #%"
)

var testNow = time.Unix(1_700_000_300, 0)

// Fixtures follow the v1 "Query timeseries points" response model documented at
// https://docs.datadoghq.com/api/latest/metrics/query-timeseries-points/ (fields status, res_type,
// query, from_date, to_date, group_by, series[].{metric, display_name, pointlist, scope, tag_set,
// expression, interval, length, start, end, aggr, query_index, unit}; pointlist values are
// [epoch ms, value] and a value is null where the series has a gap; error bodies are the
// API's {"errors": […]}, e.g. {"errors": ["Forbidden"]} for HTTP 403).
const (
	okOneSeries = `{
  "status": "ok",
  "res_type": "time_series",
  "resp_version": 1,
  "query": "sum:trace.http.request.hits{service:web}.as_count()",
  "message": "",
  "from_date": 1700000000000,
  "to_date": 1700000300000,
  "group_by": [],
  "series": [
    {
      "metric": "trace.http.request.hits",
      "display_name": "trace.http.request.hits",
      "unit": null,
      "pointlist": [[1700000000000.0, 99.1], [1700000060000.0, 99.4], [1700000120000.0, 99.7]],
      "end": 1700000179000,
      "interval": 60,
      "start": 1700000000000,
      "length": 3,
      "aggr": "sum",
      "scope": "service:web",
      "expression": "sum:trace.http.request.hits{service:web}.as_count()",
      "tag_set": [],
      "query_index": 0
    }
  ]
}`
	okTrailingNulls = `{
  "status": "ok",
  "res_type": "time_series",
  "query": "avg:trace.http.request.duration{service:web}",
  "from_date": 1700000000000,
  "to_date": 1700000300000,
  "group_by": [],
  "series": [
    {
      "metric": "trace.http.request.duration",
      "pointlist": [[1700000000000.0, 0.21], [1700000060000.0, null], [1700000120000.0, 0.25], [1700000180000.0, null], [1700000240000.0, null]],
      "scope": "service:web",
      "tag_set": [],
      "aggr": "avg",
      "length": 5,
      "interval": 60,
      "query_index": 0
    }
  ]
}`
	okNoSeries = `{
  "status": "ok",
  "res_type": "time_series",
  "query": "sum:trace.http.request.hits{service:nosuch}.as_count()",
  "from_date": 1700000000000,
  "to_date": 1700000300000,
  "group_by": [],
  "series": []
}`
	okAllNull = `{
  "status": "ok",
  "res_type": "time_series",
  "query": "avg:trace.http.request.duration{service:web}",
  "group_by": [],
  "series": [
    {
      "metric": "trace.http.request.duration",
      "pointlist": [[1700000000000.0, null], [1700000060000.0, null]],
      "scope": "service:web",
      "tag_set": [],
      "length": 2,
      "query_index": 0
    }
  ]
}`
	okEmptyPointlist = `{
  "status": "ok",
  "res_type": "time_series",
  "group_by": [],
  "series": [{"metric": "trace.http.request.hits", "pointlist": [], "scope": "service:web", "tag_set": [], "length": 0}]
}`
	okTwoSeries = `{
  "status": "ok",
  "res_type": "time_series",
  "query": "sum:trace.http.request.hits{service:web} by {version}.as_count()",
  "group_by": ["version"],
  "series": [
    {"metric": "trace.http.request.hits", "pointlist": [[1700000000000.0, 10.0]], "scope": "service:web,version:v1", "tag_set": ["version:v1"], "length": 1, "query_index": 0},
    {"metric": "trace.http.request.hits", "pointlist": [[1700000000000.0, 3.0]], "scope": "service:web,version:v2", "tag_set": ["version:v2"], "length": 1, "query_index": 0}
  ]
}`
	statusError = `{
  "status": "error",
  "res_type": "time_series",
  "error": "Rule 'scope_expr' didn't match at '' (line 1, column 32).",
  "series": []
}`
	errBadQuery     = `{"errors": ["Error parsing query: \n unable to parse sum:trace.http.request.hits{: Rule 'scope_expr' didn't match at '' (line 1, column 32)."]}`
	errForbidden    = `{"errors": ["Forbidden"]}`
	errUnauthorized = `{"errors": ["Unauthorized"]}`
	errRateLimited  = `{"errors": ["Too many requests"]}`
)

// checkRequest reports every way r differs from a v1 query request for testQuery.
func checkRequest(t *testing.T, r *http.Request, window time.Duration) {
	t.Helper()
	if r.Method != http.MethodGet {
		t.Errorf("method = %s, want GET", r.Method)
	}
	if r.URL.Path != "/api/v1/query" {
		t.Errorf("path = %q, want /api/v1/query", r.URL.Path)
	}
	if strings.ContainsAny(r.URL.RawQuery, " {}#") {
		t.Errorf("raw query %q is not escaped", r.URL.RawQuery)
	}
	q := r.URL.Query()
	if got := q.Get("query"); got != testQuery {
		t.Errorf("query = %q, want %q", got, testQuery)
	}
	if got, want := q.Get("to"), strconv.FormatInt(testNow.Unix(), 10); got != want {
		t.Errorf("to = %q, want %q", got, want)
	}
	if got, want := q.Get("from"), strconv.FormatInt(testNow.Add(-window).Unix(), 10); got != want {
		t.Errorf("from = %q, want %q", got, want)
	}
	if got := r.Header.Get("DD-API-KEY"); got != testAPIKey {
		t.Errorf("DD-API-KEY = %q, want %q", got, testAPIKey)
	}
	if got := r.Header.Get("DD-APPLICATION-KEY"); got != testAppKey {
		t.Errorf("DD-APPLICATION-KEY = %q, want %q", got, testAppKey)
	}
}

func newProvider(t *testing.T, o Options) *Provider {
	t.Helper()
	if o.APIKey == "" {
		o.APIKey = testAPIKey
	}
	if o.ApplicationKey == "" {
		o.ApplicationKey = testAppKey
	}
	p, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	p.now = func() time.Time { return testNow }
	return p
}

// checkErr fails unless err is exactly the wanted sentinel (or none) and says every text.
func checkErr(t *testing.T, err, wantErr error, wantText []string) {
	t.Helper()
	providertest.CheckErr(t, err, wantErr, wantText...)
}

func TestNew(t *testing.T) {
	tests := map[string]struct {
		opts         Options
		wantErr      string
		wantEndpoint string
		wantWindow   time.Duration
		wantTimeout  time.Duration
	}{
		"defaults to the US1 site, 5m window, 10s timeout": {
			opts:         Options{APIKey: "a", ApplicationKey: "b"},
			wantEndpoint: "https://api.datadoghq.com/api/v1/query",
			wantWindow:   5 * time.Minute,
			wantTimeout:  10 * time.Second,
		},
		"another site and a path prefix are kept": {
			opts:         Options{Address: "https://proxy.example/datadog/", APIKey: "a", ApplicationKey: "b", Window: time.Minute, Timeout: time.Second},
			wantEndpoint: "https://proxy.example/datadog/api/v1/query",
			wantWindow:   time.Minute,
			wantTimeout:  time.Second,
		},
		"missing API key":         {opts: Options{ApplicationKey: "b"}, wantErr: "APIKey is required"},
		"missing application key": {opts: Options{APIKey: "a"}, wantErr: "ApplicationKey is required"},
		"address without scheme":  {opts: Options{Address: "api.datadoghq.eu", APIKey: "a", ApplicationKey: "b"}, wantErr: "Address"},
		"address with a query":    {opts: Options{Address: "https://api.datadoghq.eu?x=1", APIKey: "a", ApplicationKey: "b"}, wantErr: "Address"},
		"window under a second":   {opts: Options{APIKey: "a", ApplicationKey: "b", Window: time.Millisecond}, wantErr: "Window"},
		"negative timeout":        {opts: Options{APIKey: "a", ApplicationKey: "b", Timeout: -time.Second}, wantErr: "Timeout"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, err := New(tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("New() err = %v, want it to mention %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if got := p.endpoint.String(); got != tc.wantEndpoint {
				t.Errorf("endpoint = %q, want %q", got, tc.wantEndpoint)
			}
			if p.window != tc.wantWindow || p.timeout != tc.wantTimeout {
				t.Errorf("window, timeout = %s, %s; want %s, %s", p.window, p.timeout, tc.wantWindow, tc.wantTimeout)
			}
		})
	}
}

func TestQuery(t *testing.T) {
	tests := map[string]struct {
		status   int
		body     string
		window   time.Duration
		want     float64
		wantErr  error
		wantText []string
	}{
		"last point of the single series": {
			status: http.StatusOK, body: okOneSeries, want: 99.7,
		},
		"window sets from": {
			status: http.StatusOK, body: okOneSeries, window: 30 * time.Minute, want: 99.7,
		},
		"null points are skipped, the last non-null wins": {
			status: http.StatusOK, body: okTrailingNulls, want: 0.25,
		},
		"no series is no data": {
			status: http.StatusOK, body: okNoSeries, wantErr: metrics.ErrNoData, wantText: []string{"no series", "5m0s"},
		},
		"only null points is no data": {
			status: http.StatusOK, body: okAllNull, wantErr: metrics.ErrNoData, wantText: []string{"non-null"},
		},
		"empty pointlist is no data": {
			status: http.StatusOK, body: okEmptyPointlist, wantErr: metrics.ErrNoData,
		},
		"two series are refused and named": {
			status: http.StatusOK, body: okTwoSeries, wantErr: metrics.ErrMultipleSeries, wantText: []string{"2 series", "version:v1", "version:v2"},
		},
		"status error carries the API's error text": {
			status: http.StatusOK, body: statusError, wantText: []string{"query failed", "scope_expr"},
		},
		"HTTP 400 carries status and the errors text": {
			status: http.StatusBadRequest, body: errBadQuery, wantText: []string{"HTTP 400", "Error parsing query"},
		},
		"HTTP 403 names authentication": {
			status: http.StatusForbidden, body: errForbidden, wantText: []string{"authentication failed", "HTTP 403", "Forbidden", "API key"},
		},
		"HTTP 401 names authentication": {
			status: http.StatusUnauthorized, body: errUnauthorized, wantText: []string{"authentication failed", "HTTP 401", "Unauthorized"},
		},
		"HTTP 429 carries status and text": {
			status: http.StatusTooManyRequests, body: errRateLimited, wantText: []string{"HTTP 429", "Too many requests"},
		},
		"non-JSON error body is quoted": {
			status: http.StatusBadGateway, body: "upstream connect error", wantText: []string{"HTTP 502", "upstream connect error"},
		},
		"non-JSON success body is an error": {
			status: http.StatusOK, body: "<html>maintenance</html>", wantText: []string{"decode response", "maintenance"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			window := tc.window
			if window == 0 {
				window = DefaultWindow
			}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				checkRequest(t, r, window)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			t.Cleanup(srv.Close)
			p := newProvider(t, Options{Address: srv.URL, Window: tc.window})

			got, err := p.Query(t.Context(), testQuery)
			if tc.wantErr == nil && tc.wantText == nil {
				if err != nil {
					t.Fatalf("Query: %v", err)
				}
				if got != tc.want {
					t.Errorf("Query = %v, want %v", got, tc.want)
				}
				return
			}
			checkErr(t, err, tc.wantErr, tc.wantText)
		})
	}
}

func TestQueryDoesNotFollowRedirects(t *testing.T) {
	var leaked atomic.Bool
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Store(true)
	}))
	t.Cleanup(elsewhere.Close)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+"/api/v1/query", http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	p := newProvider(t, Options{Address: srv.URL})

	_, err := p.Query(t.Context(), testQuery)
	checkErr(t, err, nil, []string{"HTTP 302", "not followed"})
	if leaked.Load() {
		t.Error("the redirect was followed; the keys reached another host")
	}
}

func TestValueRejectsNaNAndInf(t *testing.T) {
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if _, err := value(f); !errors.Is(err, metrics.ErrNoData) {
			t.Errorf("value(%v) err = %v, want ErrNoData", f, err)
		}
	}
	if got, err := value(0); err != nil || got != 0 {
		t.Errorf("value(0) = %v, %v; want 0, nil", got, err)
	}
}

// TestTransport: unreachable, timeout, caller cancel and connection reuse, as every HTTP
// provider must handle them.
func TestTransport(t *testing.T) {
	providertest.Transport{
		New: func(address string, timeout time.Duration) (metrics.Provider, error) {
			return New(Options{Address: address, Timeout: timeout, APIKey: testAPIKey, ApplicationKey: testAppKey})
		},
		Query: testQuery,
		OK:    func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(okOneSeries)) },
	}.Run(t)
}
