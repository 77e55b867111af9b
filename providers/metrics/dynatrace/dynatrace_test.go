package dynatrace

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/providers/metrics"
)

const (
	testToken    = "dt0c01.SLUICETEST.secret"
	testSelector = `builtin:service.errors.server.rate:filter(eq("dt.entity.service","SERVICE-1234")):avg`
	// envPath mimics an ActiveGate/Managed address, so the test also proves the query path is
	// appended to, not substituted for, the address path.
	envPath = "/e/abc12345"
)

// Response bodies shaped like the examples of "Metrics API - GET metric data points"
// (https://docs.dynatrace.com/docs/dynatrace-api/environment-api/metric-v2/get-data-points) and
// the error envelope of "Dynatrace API - Response codes"
// (https://docs.dynatrace.com/docs/dynatrace-api/basics/dynatrace-api-response-codes).
const (
	bodyOneValue = `{
  "totalCount": 1,
  "nextPageKey": null,
  "resolution": "Inf",
  "result": [
    {
      "metricId": "builtin:service.errors.server.rate:filter(eq(\"dt.entity.service\",\"SERVICE-1234\")):avg",
      "dataPointCountRatio": 1.0E-6,
      "dimensionCountRatio": 1.0E-5,
      "data": [
        {
          "dimensions": [],
          "dimensionMap": {},
          "timestamps": [1589456100000],
          "values": [0.4217]
        }
      ]
    }
  ]
}`
	// A 1m-resolution answer whose newest slot is still empty: the last non-null value counts.
	bodyTrailingNull = `{
  "totalCount": 1,
  "nextPageKey": null,
  "resolution": "1m",
  "result": [
    {
      "metricId": "builtin:service.response.time:avg",
      "data": [
        {
          "dimensions": [],
          "dimensionMap": {},
          "timestamps": [1589455980000, 1589456040000, 1589456100000],
          "values": [1200.5, 1312.25, null]
        }
      ]
    }
  ]
}`
	bodyNoSeries = `{
  "totalCount": 0,
  "nextPageKey": null,
  "resolution": "Inf",
  "result": [
    {
      "metricId": "builtin:service.errors.server.rate:avg",
      "data": []
    }
  ]
}`
	bodyOnlyNulls = `{
  "totalCount": 1,
  "nextPageKey": null,
  "resolution": "Inf",
  "result": [
    {
      "metricId": "builtin:service.errors.server.rate:avg",
      "data": [
        {"dimensions": [], "dimensionMap": {}, "timestamps": [1589456100000], "values": [null]}
      ]
    }
  ]
}`
	bodyNoMetric  = `{"totalCount": 0, "nextPageKey": null, "resolution": "Inf", "result": []}`
	bodyTwoSeries = `{
  "totalCount": 2,
  "nextPageKey": null,
  "resolution": "Inf",
  "result": [
    {
      "metricId": "builtin:service.errors.server.rate:splitBy(\"dt.entity.service\"):avg",
      "data": [
        {
          "dimensions": ["SERVICE-1234"],
          "dimensionMap": {"dt.entity.service": "SERVICE-1234"},
          "timestamps": [1589456100000],
          "values": [0.5]
        },
        {
          "dimensions": ["SERVICE-5678"],
          "dimensionMap": {"dt.entity.service": "SERVICE-5678"},
          "timestamps": [1589456100000],
          "values": [1.5]
        }
      ]
    }
  ]
}`
	bodyTwoMetrics = `{
  "totalCount": 2,
  "nextPageKey": null,
  "resolution": "Inf",
  "result": [
    {"metricId": "builtin:host.cpu.idle", "data": [{"dimensions": [], "dimensionMap": {}, "timestamps": [1589456100000], "values": [80.1]}]},
    {"metricId": "builtin:host.cpu.user", "data": [{"dimensions": [], "dimensionMap": {}, "timestamps": [1589456100000], "values": [12.3]}]}
  ]
}`
	bodyBadSelector = `{
  "error": {
    "code": 400,
    "message": "Constraints violated.",
    "constraintViolations": [
      {
        "path": "metricSelector",
        "message": "Token ':avgg' at position 37 is not a valid transformation.",
        "parameterLocation": "QUERY",
        "location": null
      }
    ]
  }
}`
	bodyUnauthorized = `{"error": {"code": 401, "message": "Token Authentication failed"}}`
)

// checkRequest returns what is wrong with r, or "" when it is the request the docs describe.
func checkRequest(r *http.Request) string {
	var problems []string
	if r.Method != http.MethodGet {
		problems = append(problems, "method "+r.Method+", want GET")
	}
	if r.URL.Path != envPath+"/api/v2/metrics/query" {
		problems = append(problems, "path "+r.URL.Path)
	}
	if got := r.Header.Get("Authorization"); got != "Api-Token "+testToken {
		problems = append(problems, "Authorization "+got)
	}
	q := r.URL.Query()
	for k, want := range map[string]string{"metricSelector": testSelector, "from": "now-5m", "resolution": "Inf"} {
		if got := q[k]; len(got) != 1 || got[0] != want {
			problems = append(problems, k+"="+strings.Join(got, ",")+", want "+want)
		}
	}
	return strings.Join(problems, "; ")
}

// newServer answers every request that passes checkRequest with status and body.
func newServer(t *testing.T, status int, body string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := checkRequest(r); p != "" {
			t.Errorf("unexpected request: %s", p)
			http.Error(w, p, http.StatusTeapot)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func newProvider(t *testing.T, address string, timeout time.Duration) *Provider {
	t.Helper()
	p, err := New(Options{Address: address + envPath, Token: testToken, Timeout: timeout})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

func TestQuery(t *testing.T) {
	tests := map[string]struct {
		status   int
		body     string
		want     float64
		wantErr  error
		wantText []string // substrings the error must carry
		notErr   []error  // sentinels the error must not match
	}{
		"one aggregated value": {status: 200, body: bodyOneValue, want: 0.4217},
		"last non-null value":  {status: 200, body: bodyTrailingNull, want: 1312.25},
		"no series in window":  {status: 200, body: bodyNoSeries, wantErr: metrics.ErrNoData},
		"only null values":     {status: 200, body: bodyOnlyNulls, wantErr: metrics.ErrNoData},
		"no metric matched":    {status: 200, body: bodyNoMetric, wantErr: metrics.ErrNoData},
		"two series": {status: 200, body: bodyTwoSeries, wantErr: metrics.ErrMultipleSeries,
			wantText: []string{"2 series"}},
		"two metrics": {status: 200, body: bodyTwoMetrics, wantErr: metrics.ErrMultipleSeries,
			wantText: []string{"builtin:host.cpu.idle", "builtin:host.cpu.user"}},
		"vendor error body": {status: 400, body: bodyBadSelector,
			wantText: []string{"HTTP 400", "Constraints violated.", "metricSelector: Token ':avgg' at position 37"},
			notErr:   []error{metrics.ErrNoData, metrics.ErrUnreachable}},
		"auth failure": {status: 401, body: bodyUnauthorized,
			wantText: []string{"HTTP 401", "Token Authentication failed"},
			notErr:   []error{metrics.ErrNoData, metrics.ErrUnreachable}},
		"non-JSON error body": {status: 502, body: "<html>Bad Gateway</html>",
			wantText: []string{"HTTP 502", "<html>Bad Gateway</html>"}},
		"malformed 200 body": {status: 200, body: `{"result": [`,
			wantText: []string{"decode response"}, notErr: []error{metrics.ErrNoData}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv := newServer(t, tc.status, tc.body)
			got, err := newProvider(t, srv.URL, 0).Query(t.Context(), testSelector)
			if tc.wantErr == nil && tc.wantText == nil {
				if err != nil {
					t.Fatalf("Query: %v", err)
				}
				if got != tc.want {
					t.Fatalf("Query = %v, want %v", got, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Query = %v, want an error", got)
			}
			t.Logf("error: %v", err)
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("error %q is not %v", err, tc.wantErr)
			}
			for _, s := range tc.wantText {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not carry %q", err, s)
				}
			}
			for _, e := range tc.notErr {
				if errors.Is(err, e) {
					t.Errorf("error %q must not be %v", err, e)
				}
			}
		})
	}
}

func TestQueryUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close() // nothing listens there any more

	_, err := newProvider(t, addr, 0).Query(t.Context(), testSelector)
	if !errors.Is(err, metrics.ErrUnreachable) {
		t.Fatalf("error %v is not ErrUnreachable", err)
	}
	var netErr net.Error
	if !errors.As(err, &netErr) {
		t.Errorf("error %v does not keep the network error", err)
	}
}

func TestQueryTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers; released when the client gives up
	}))
	t.Cleanup(srv.Close)

	start := time.Now()
	_, err := newProvider(t, srv.URL, 100*time.Millisecond).Query(t.Context(), testSelector)
	if !errors.Is(err, metrics.ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v is not ErrUnreachable + DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Query took %s, want about the 100ms timeout", d)
	}
}

func TestQueryCanceledByCaller(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := newProvider(t, srv.URL, time.Minute).Query(ctx, testSelector)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v is not context.Canceled", err)
	}
	if errors.Is(err, metrics.ErrUnreachable) {
		t.Errorf("a caller's cancellation must not read as ErrUnreachable: %v", err)
	}
}

// TestClientReused proves that queries share one client and so its kept-alive connection.
func TestClientReused(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(bodyOneValue))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)

	p := newProvider(t, srv.URL, 0)
	for range 3 {
		if _, err := p.Query(t.Context(), testSelector); err != nil {
			t.Fatalf("Query: %v", err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("3 queries opened %d connections, want 1", n)
	}
}

func TestNewValidates(t *testing.T) {
	tests := map[string]struct {
		o    Options
		want string // substring of the error; "" means valid
	}{
		"valid":              {o: Options{Address: "https://abc12345.live.dynatrace.com", Token: "t"}},
		"missing address":    {o: Options{Token: "t"}, want: "Address is required"},
		"address not a URL":  {o: Options{Address: "abc12345.live.dynatrace.com", Token: "t"}, want: "Address"},
		"address with query": {o: Options{Address: "https://x.example/?a=b", Token: "t"}, want: "Address"},
		"missing token":      {o: Options{Address: "https://x.example"}, want: "Token is required"},
		"window in seconds":  {o: Options{Address: "https://x.example", Token: "t", Window: 90 * time.Second}, want: "Window"},
		"negative timeout":   {o: Options{Address: "https://x.example", Token: "t", Timeout: -time.Second}, want: "Timeout"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := New(tc.o)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("New error = %v, want one naming %q", err, tc.want)
			}
		})
	}
}

func TestWindowAndResolutionOptions(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("from") != "now-10m" || q.Get("resolution") != "1m" {
			t.Errorf("from=%q resolution=%q, want now-10m and 1m", q.Get("from"), q.Get("resolution"))
		}
		_, _ = w.Write([]byte(bodyTrailingNull))
	}))
	t.Cleanup(srv.Close)

	p, err := New(Options{Address: srv.URL, Token: testToken, Window: 10 * time.Minute, Resolution: "1m"})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if _, err := p.Query(t.Context(), testSelector); err != nil {
		t.Fatalf("Query: %v", err)
	}
}
