package graphite

import (
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/providers/metrics"
	"github.com/sluice-dev/sluice/providers/metrics/internal/providertest"
)

// testTarget carries characters that break a hand-built URL: spaces, quotes, '&', '+', '#'.
const testTarget = "asPercent(sumSeries(seriesByTag('app=web&canary', 'code=~5.*')), sumSeries(seriesByTag('app=web&canary', 'name=requests+total#')))"

// Fixtures. Success bodies follow the json format documented at
// https://graphite.readthedocs.io/en/latest/render_api.html#json
// ([{"target": "entries", "datapoints": [[1.0, 1311836008], …]}], a datapoint being
// [value, epoch seconds] and the value null where there is no data). Error bodies are what
// graphite-web answers: HTTP 400 with the text of an InputParameterError
// (webapp/graphite/errors.py, handleInputParameterError: "Invalid parameters (…); targets: …"),
// and, for auth, the reverse proxy in front of it (graphite-web has no basic auth of its own).
const (
	docsEntries = `[{
  "target": "entries",
  "datapoints": [
    [1.0, 1311836008],
    [2.0, 1311836009],
    [3.0, 1311836010],
    [5.0, 1311836011],
    [6.0, 1311836012]
  ]
}]`
	trailingNulls = `[{"target": "asPercent(sumSeries(app.web.5xx),sumSeries(app.web.requests))", "datapoints": [[0.5, 1700000000], [0.7, 1700000060], [null, 1700000120], [null, 1700000180]]}]`
	allNull       = `[{"target": "app.web.5xx", "datapoints": [[null, 1700000000], [null, 1700000060]]}]`
	noDatapoints  = `[{"target": "app.web.5xx", "datapoints": []}]`
	noSeries      = `[]`
	twoSeries     = `[{"target": "app.web-primary.5xx", "datapoints": [[1.0, 1700000000]]}, {"target": "app.web-canary.5xx", "datapoints": [[4.0, 1700000000]]}]`
	quotedNumber  = `[{"target": "app.web.latency", "datapoints": [["12.5", 1700000000], [null, 1700000060]]}]`
	errUnknownFn  = `Invalid parameters (Received request for unknown function: sumSeriez); targets: "sumSeriez(app.web.requests)"`
	err401        = "<html>\r\n<head><title>401 Authorization Required</title></head>\r\n<body>\r\n<center><h1>401 Authorization Required</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
	err500        = "<h1>Server Error (500)</h1>"
)

func newProvider(t *testing.T, o Options) *Provider {
	t.Helper()
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
		wantFrom     string
	}{
		"defaults": {
			opts: Options{Address: "http://graphite:8080"}, wantEndpoint: "http://graphite:8080/render", wantFrom: "-5min",
		},
		"path prefix kept, odd window in seconds": {
			opts: Options{Address: "https://proxy.example/graphite/", Window: 90 * time.Second}, wantEndpoint: "https://proxy.example/graphite/render", wantFrom: "-90s",
		},
		"basic auth": {
			opts: Options{Address: "http://graphite:8080", Username: "u", Password: "p"}, wantEndpoint: "http://graphite:8080/render", wantFrom: "-5min",
		},
		"missing address":             {opts: Options{}, wantErr: "Address is required"},
		"address without scheme":      {opts: Options{Address: "graphite:8080"}, wantErr: "Address"},
		"credentials in address":      {opts: Options{Address: "http://u:p@graphite:8080"}, wantErr: "Username and Password"},
		"password without username":   {opts: Options{Address: "http://graphite", Password: "p"}, wantErr: "Username is empty"},
		"username without password":   {opts: Options{Address: "http://graphite", Username: "u"}, wantErr: "Password is empty"},
		"window under one second":     {opts: Options{Address: "http://graphite", Window: time.Millisecond}, wantErr: "Window"},
		"negative timeout is refused": {opts: Options{Address: "http://graphite", Timeout: -1}, wantErr: "Timeout"},
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
			if p.from != tc.wantFrom || p.timeout != DefaultTimeout {
				t.Errorf("from, timeout = %q, %s; want %q, %s", p.from, p.timeout, tc.wantFrom, DefaultTimeout)
			}
		})
	}
}

func TestParams(t *testing.T) {
	p := newProvider(t, Options{Address: "http://graphite:8080"})
	tests := map[string]struct {
		query   string
		want    url.Values
		wantErr string
	}{
		"bare target": {
			query: "sumSeries(app.web.*.requests)",
			want:  url.Values{"target": {"sumSeries(app.web.*.requests)"}, "from": {"-5min"}, "format": {"json"}},
		},
		"bare multi-line target is collapsed": {
			query: "\n  asPercent(\n    sumSeries(app.web.5xx),\n    sumSeries(app.web.requests)\n  )\n",
			want:  url.Values{"target": {"asPercent( sumSeries(app.web.5xx), sumSeries(app.web.requests) )"}, "from": {"-5min"}, "format": {"json"}},
		},
		"Flagger query string keeps its from, format is forced to json": {
			query: "target=summarize(\n  sumSeries(app.{{target}}.5xx),\n  '1m',\n  'avg'\n)&from=-2min&format=png",
			want:  url.Values{"target": {"summarize( sumSeries(app.{{target}}.5xx), '1m', 'avg' )"}, "from": {"-2min"}, "format": {"json"}},
		},
		"Flagger query string without from gets the window": {
			query: "target=sumSeries(app.web.5xx)&until=now",
			want:  url.Values{"target": {"sumSeries(app.web.5xx)"}, "until": {"now"}, "from": {"-5min"}, "format": {"json"}},
		},
		"two targets stay two targets": {
			query: "target=app.a&target=app.b",
			want:  url.Values{"target": {"app.a", "app.b"}, "from": {"-5min"}, "format": {"json"}},
		},
		"empty query":         {query: "  \n ", wantErr: "empty query"},
		"broken query string": {query: "target=app.%zz", wantErr: "not a query string"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := p.params(tc.query)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("params err = %v, want it to mention %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("params: %v", err)
			}
			if got.Encode() != tc.want.Encode() {
				t.Errorf("params(%q) = %v, want %v", tc.query, got, tc.want)
			}
		})
	}
}

func TestQuery(t *testing.T) {
	tests := map[string]struct {
		status   int
		body     string
		user     string
		want     float64
		wantErr  error
		wantText []string
	}{
		"last datapoint of the documented example": {status: http.StatusOK, body: docsEntries, want: 6},
		"with basic auth":                          {status: http.StatusOK, body: docsEntries, user: "sluice", want: 6},
		"null datapoints are skipped, the last non-null wins": {
			status: http.StatusOK, body: trailingNulls, want: 0.7,
		},
		"quoted number": {status: http.StatusOK, body: quotedNumber, want: 12.5},
		"no series is no data": {
			status: http.StatusOK, body: noSeries, wantErr: metrics.ErrNoData, wantText: []string{"no series"},
		},
		"only null datapoints is no data": {
			status: http.StatusOK, body: allNull, wantErr: metrics.ErrNoData, wantText: []string{"no non-null datapoint"},
		},
		"no datapoints is no data": {
			status: http.StatusOK, body: noDatapoints, wantErr: metrics.ErrNoData,
		},
		"two series are refused and named": {
			status: http.StatusOK, body: twoSeries, wantErr: metrics.ErrMultipleSeries, wantText: []string{"2 series", "app.web-canary.5xx"},
		},
		"HTTP 400 carries graphite-web's text": {
			status: http.StatusBadRequest, body: errUnknownFn, wantText: []string{"HTTP 400", "unknown function: sumSeriez"},
		},
		"HTTP 401 names authentication and asks for credentials": {
			status: http.StatusUnauthorized, body: err401, wantText: []string{"authentication failed", "HTTP 401", "set Username and Password"},
		},
		"HTTP 403 with credentials asks to check them": {
			status: http.StatusForbidden, body: "Forbidden", user: "sluice", wantText: []string{"authentication failed", "HTTP 403", "check Username and Password"},
		},
		"HTTP 500 carries the body": {
			status: http.StatusInternalServerError, body: err500, wantText: []string{"HTTP 500", "Server Error (500)"},
		},
		"a PNG instead of JSON is an error": {
			status: http.StatusOK, body: "\x89PNG\r\n", wantText: []string{"decode render response"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodGet {
					t.Errorf("method = %s, want GET", r.Method)
				}
				if r.URL.Path != "/render" {
					t.Errorf("path = %q, want /render", r.URL.Path)
				}
				if strings.ContainsAny(r.URL.RawQuery, " '#") {
					t.Errorf("raw query %q is not escaped", r.URL.RawQuery)
				}
				q := r.URL.Query()
				if got := q["target"]; len(got) != 1 || got[0] != testTarget {
					t.Errorf("target = %q, want [%q]", got, testTarget)
				}
				if got := q.Get("from"); got != "-5min" {
					t.Errorf("from = %q, want -5min", got)
				}
				if got := q.Get("format"); got != "json" {
					t.Errorf("format = %q, want json", got)
				}
				user, pass, ok := r.BasicAuth()
				switch {
				case tc.user == "" && ok:
					t.Errorf("basic auth sent without credentials configured")
				case tc.user != "" && (user != tc.user || pass != "secret"):
					t.Errorf("basic auth = %q, %q, %v; want %q, secret", user, pass, ok, tc.user)
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			t.Cleanup(srv.Close)
			o := Options{Address: srv.URL}
			if tc.user != "" {
				o.Username, o.Password = tc.user, "secret"
			}
			p := newProvider(t, o)

			got, err := p.Query(t.Context(), testTarget)
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

// FuzzDecode: no render answer makes decode panic, and a value it returns is finite.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{docsEntries, trailingNulls, allNull, noSeries, twoSeries, quotedNumber, `[{"target":"x","datapoints":[["NaN",1]]}]`} {
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
			return New(Options{Address: address, Timeout: timeout, Username: "sluice", Password: "secret"})
		},
		Query: testTarget,
		OK:    func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(docsEntries)) },
	}.Run(t)
}
