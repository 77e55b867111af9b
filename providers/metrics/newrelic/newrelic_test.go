package newrelic

import (
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/providers/metrics"
	"github.com/sluice-dev/sluice/providers/metrics/internal/providertest"
)

const (
	testAccount  = "1234567"
	testQueryKey = "NRIQ-test-query-key"
	// testQuery carries characters that break a hand-built URL: spaces, quotes, '%', '&', '+'
	// and '#'.
	testQuery = "SELECT percentage(count(*), WHERE httpResponseCode LIKE '5%') FROM Transaction WHERE appName = 'web&canary+v2 #1'"
)

// Fixtures. The success shape follows the documented example at
// https://docs.newrelic.com/docs/apis/insights-apis/query-insights-event-data-api/ (section
// "Example": {"results":[{"count":80275388}],"metadata":{…}}); "result" is the key Flagger's
// provider reads for arithmetic and filter()/percentage() queries, "percentiles" the key of a
// percentile() result, "facets" the FACET shape. That page documents no error body; the
// {"error": "…"} bodies below are the shape the API answers with, and the provider falls back
// to the raw body when a body is not that shape (see "non-JSON error body is quoted").
const (
	docsCount = `{
  "results": [
    {
      "count": 80275388
    }
  ],
  "metadata": {
    "eventTypes": [
      "PageView"
    ],
    "eventType": "PageView",
    "openEnded": true,
    "beginTime": "2014-08-03T19:00:00Z",
    "endTime": "2017-01-18T23:18:41Z",
    "beginTimeMillis=": 1407092400000,
    "endTimeMillis": 1484781521198,
    "rawSince": "'2014-08-04 00:00:00+0500'",
    "rawUntil": "` + "`now`" + `",
    "rawCompareWith": "",
    "clippedTimeWindows": {
      "Browser": {
        "beginTimeMillis": 1483571921198,
        "endTimeMillis": 1484781521198,
        "retentionMillis": 1209600000
      }
    },
    "messages": [],
    "contents": [
      {
        "function": "count",
        "attribute": "appName",
        "simple": true
      }
    ]
  }
}`
	okResult      = `{"results":[{"result":99.52}],"metadata":{"contents":[{"function":"percentage","simple":true}],"messages":[]}}`
	okPercentile  = `{"results":[{"percentiles":{"99":0.4125}}],"metadata":{"contents":[{"function":"percentile","attribute":"duration","thresholds":[99],"simple":true}]}}`
	nullAverage   = `{"results":[{"average":null}],"metadata":{"contents":[{"function":"average","attribute":"duration","simple":true}]}}`
	noResults     = `{"results":[],"metadata":{"messages":[]}}`
	noEvents      = `{"results":[{"events":[]}],"metadata":{"contents":[{"function":"events","limit":100}]}}`
	twoResults    = `{"results":[{"count":1200},{"average":0.21}],"metadata":{"contents":[{"function":"count"},{"function":"average","attribute":"duration"}]}}`
	twoPercentile = `{"results":[{"percentiles":{"95":0.31,"99":0.41}}],"metadata":{}}`
	twoFacets     = `{"facets":[{"name":"web-primary","results":[{"count":1100}]},{"name":"web-canary","results":[{"count":100}]}],"totalResult":{"results":[{"count":1200}]},"metadata":{"facet":"appName"}}`
	oneFacet      = `{"facets":[{"name":"web-canary","results":[{"count":100}]}],"totalResult":{"results":[{"count":100}]},"metadata":{"facet":"appName"}}`
	timeSeries    = `{"timeSeries":[{"results":[{"count":10}],"beginTimeSeconds":1700000000,"endTimeSeconds":1700000060,"inspectedCount":10}],"total":{"results":[{"count":10}]},"metadata":{}}`
	errSyntax     = `{"error":"NRQL Syntax Error: Error at line 1 position 8, unexpected 'FRM'"}`
	errBadKey     = `{"error":"Invalid query key"}`
)

func checkRequest(t *testing.T, r *http.Request, wantNRQL string) {
	t.Helper()
	if r.Method != http.MethodGet {
		t.Errorf("method = %s, want GET", r.Method)
	}
	if want := "/v1/accounts/" + testAccount + "/query"; r.URL.Path != want {
		t.Errorf("path = %q, want %q", r.URL.Path, want)
	}
	if strings.ContainsAny(r.URL.RawQuery, " '#") {
		t.Errorf("raw query %q is not escaped", r.URL.RawQuery)
	}
	if got := r.URL.Query().Get("nrql"); got != wantNRQL {
		t.Errorf("nrql = %q, want %q", got, wantNRQL)
	}
	if got := r.Header.Get("X-Query-Key"); got != testQueryKey {
		t.Errorf("X-Query-Key = %q, want %q", got, testQueryKey)
	}
}

func newProvider(t *testing.T, o Options) *Provider {
	t.Helper()
	if o.AccountID == "" {
		o.AccountID = testAccount
	}
	if o.QueryKey == "" {
		o.QueryKey = testQueryKey
	}
	p, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

func checkErr(t *testing.T, err, wantErr error, wantText []string) {
	t.Helper()
	providertest.CheckErr(t, err, wantErr, wantText...)
}

func TestNew(t *testing.T) {
	tests := map[string]struct {
		opts         Options
		wantErr      string
		wantEndpoint string
	}{
		"defaults to the US Insights API": {
			opts:         Options{AccountID: "42", QueryKey: "k"},
			wantEndpoint: "https://insights-api.newrelic.com/v1/accounts/42/query",
		},
		"EU address": {
			opts:         Options{Address: "https://insights-api.eu.newrelic.com", AccountID: "42", QueryKey: "k"},
			wantEndpoint: "https://insights-api.eu.newrelic.com/v1/accounts/42/query",
		},
		"missing account ID":      {opts: Options{QueryKey: "k"}, wantErr: "AccountID is required"},
		"non-numeric account ID":  {opts: Options{AccountID: "42/../x", QueryKey: "k"}, wantErr: "AccountID must be the numeric"},
		"missing query key":       {opts: Options{AccountID: "42"}, wantErr: "QueryKey is required"},
		"address without scheme":  {opts: Options{Address: "insights-api.newrelic.com", AccountID: "42", QueryKey: "k"}, wantErr: "Address"},
		"window under one second": {opts: Options{AccountID: "42", QueryKey: "k", Window: time.Millisecond}, wantErr: "Window"},
		"negative timeout":        {opts: Options{AccountID: "42", QueryKey: "k", Timeout: -1}, wantErr: "Timeout"},
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
			if p.window != DefaultWindow || p.timeout != DefaultTimeout {
				t.Errorf("window, timeout = %s, %s; want the defaults", p.window, p.timeout)
			}
		})
	}
}

func TestNRQLWindow(t *testing.T) {
	p := newProvider(t, Options{Window: 90 * time.Second})
	tests := map[string]struct{ in, want string }{
		"no SINCE gets the window (as Flagger does)": {
			in:   "SELECT count(*) FROM Transaction",
			want: "SELECT count(*) FROM Transaction SINCE 90 seconds ago",
		},
		"surrounding whitespace of a YAML block is trimmed": {
			in:   "\n  SELECT count(*)\n  FROM Transaction\n",
			want: "SELECT count(*)\n  FROM Transaction SINCE 90 seconds ago",
		},
		"own SINCE is kept": {
			in:   "SELECT count(*) FROM Transaction SINCE 1 hour ago",
			want: "SELECT count(*) FROM Transaction SINCE 1 hour ago",
		},
		"lower-case since is kept": {
			in:   "select count(*) from Transaction since 10 minutes ago until 1 minute ago",
			want: "select count(*) from Transaction since 10 minutes ago until 1 minute ago",
		},
		"since inside a string literal does not count": {
			in:   "SELECT count(*) FROM Transaction WHERE name = 'since'",
			want: "SELECT count(*) FROM Transaction WHERE name = 'since' SINCE 90 seconds ago",
		},
		"since inside a backquoted attribute does not count": {
			in:   "SELECT average(`since`) FROM Metric",
			want: "SELECT average(`since`) FROM Metric SINCE 90 seconds ago",
		},
		"a word that starts with since does not count": {
			in:   "SELECT latest(sinceBoot) FROM SystemSample",
			want: "SELECT latest(sinceBoot) FROM SystemSample SINCE 90 seconds ago",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := p.nrql(tc.in); got != tc.want {
				t.Errorf("nrql(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestQuery(t *testing.T) {
	wantNRQL := testQuery + " SINCE 300 seconds ago"
	tests := map[string]struct {
		status   int
		body     string
		want     float64
		wantErr  error
		wantText []string
	}{
		"count from the documented example": {status: http.StatusOK, body: docsCount, want: 80275388},
		"result of percentage()":            {status: http.StatusOK, body: okResult, want: 99.52},
		"single percentile":                 {status: http.StatusOK, body: okPercentile, want: 0.4125},
		"single facet":                      {status: http.StatusOK, body: oneFacet, want: 100},
		"null value is no data": {
			status: http.StatusOK, body: nullAverage, wantErr: metrics.ErrNoData, wantText: []string{"average is null"},
		},
		"empty results is no data": {
			status: http.StatusOK, body: noResults, wantErr: metrics.ErrNoData, wantText: []string{"no results"},
		},
		"empty events list is no data": {
			status: http.StatusOK, body: noEvents, wantErr: metrics.ErrNoData, wantText: []string{"events is empty"},
		},
		"two results are refused": {
			status: http.StatusOK, body: twoResults, wantErr: metrics.ErrMultipleSeries, wantText: []string{"2 results"},
		},
		"two values in one result are refused and named": {
			status: http.StatusOK, body: twoPercentile, wantErr: metrics.ErrMultipleSeries, wantText: []string{"95, 99"},
		},
		"two facets are refused and named": {
			status: http.StatusOK, body: twoFacets, wantErr: metrics.ErrMultipleSeries, wantText: []string{"2 facets", "web-canary"},
		},
		"TIMESERIES is refused": {
			status: http.StatusOK, body: timeSeries, wantText: []string{"TIMESERIES"},
		},
		"HTTP 400 carries status and the NRQL error": {
			status: http.StatusBadRequest, body: errSyntax, wantText: []string{"HTTP 400", "NRQL Syntax Error", "unexpected 'FRM'"},
		},
		"HTTP 401 names authentication": {
			status: http.StatusUnauthorized, body: errBadKey, wantText: []string{"authentication failed", "HTTP 401", "Invalid query key", "query key"},
		},
		"HTTP 403 names authentication": {
			status: http.StatusForbidden, body: errBadKey, wantText: []string{"authentication failed", "HTTP 403"},
		},
		"non-JSON error body is quoted": {
			status: http.StatusServiceUnavailable, body: "Service Unavailable", wantText: []string{"HTTP 503", "Service Unavailable"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				checkRequest(t, r, wantNRQL)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			t.Cleanup(srv.Close)
			p := newProvider(t, Options{Address: srv.URL})

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
		http.Redirect(w, r, elsewhere.URL+r.URL.RequestURI(), http.StatusMovedPermanently)
	}))
	t.Cleanup(srv.Close)
	p := newProvider(t, Options{Address: srv.URL})

	_, err := p.Query(t.Context(), testQuery)
	checkErr(t, err, nil, []string{"HTTP 301", "not followed"})
	if leaked.Load() {
		t.Error("the redirect was followed; the query key reached another host")
	}
}

// FuzzDecode: no answer body makes decode panic, and a value it returns is a finite number.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{docsCount, okResult, okPercentile, nullAverage, noResults, noEvents, twoResults, twoFacets, oneFacet, timeSeries, `{"results":[{"x":{"y":{"z":1}}}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		v, err := decode(body)
		if err == nil && (math.IsNaN(v) || math.IsInf(v, 0)) {
			t.Errorf("decode(%q) = %v without error", body, v)
		}
	})
}

// TestTransport: unreachable, timeout, caller cancel and connection reuse, as every HTTP
// provider must handle them.
func TestTransport(t *testing.T) {
	providertest.Transport{
		New: func(address string, timeout time.Duration) (metrics.Provider, error) {
			return New(Options{Address: address, Timeout: timeout, AccountID: testAccount, QueryKey: testQueryKey})
		},
		Query: testQuery,
		OK:    func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(okResult)) },
	}.Run(t)
}
