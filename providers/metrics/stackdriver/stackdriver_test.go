package stackdriver

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
	testProject = "sluice-test-123"
	testToken   = "ya29.sluice-test-token"
	testQuery   = `sum(rate(istio_requests_total{destination_workload="web",response_code!~"5.*"}[1m])) / sum(rate(istio_requests_total{destination_workload="web"}[1m])) * 100`
	// testNow is the evaluation time the provider must send as the time parameter.
	testNowParam = "1700000000.250"
)

var testNow = time.UnixMilli(1700000000250)

// Success bodies are shaped like "Instant queries" in the Prometheus HTTP API docs
// (https://prometheus.io/docs/prometheus/latest/querying/api/#instant-queries), which is the
// format the Cloud Monitoring endpoint returns
// (https://cloud.google.com/monitoring/api/ref_v3/rest/v1/projects.location.prometheus.api.v1/query).
// Errors come in two shapes: the Prometheus one ("Format overview" on the same Prometheus page)
// and Google's API error model (https://cloud.google.com/apis/design/errors#http_mapping) that
// Google's front end returns for authentication and permission failures.
const (
	bodyOneSample = `{
  "status": "success",
  "data": {
    "resultType": "vector",
    "result": [
      {"metric": {}, "value": [1700000000.25, "99.8125"]}
    ]
  }
}`
	bodyScalar     = `{"status": "success", "data": {"resultType": "scalar", "result": [1700000000.25, "42"]}}`
	bodyEmpty      = `{"status": "success", "data": {"resultType": "vector", "result": []}}`
	bodyNaN        = `{"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1700000000.25, "NaN"]}]}}`
	bodyInf        = `{"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1700000000.25, "+Inf"]}]}}`
	bodyTwoSamples = `{
  "status": "success",
  "data": {
    "resultType": "vector",
    "result": [
      {"metric": {"destination_workload": "web", "pod": "web-1"}, "value": [1700000000.25, "99.1"]},
      {"metric": {"destination_workload": "web", "pod": "web-2"}, "value": [1700000000.25, "100"]}
    ]
  }
}`
	bodyMatrix = `{
  "status": "success",
  "data": {
    "resultType": "matrix",
    "result": [
      {"metric": {}, "values": [[1699999940.25, "1"], [1700000000.25, "2"]]}
    ]
  }
}`
	bodyBadQuery = `{
  "status": "error",
  "errorType": "bad_data",
  "error": "invalid parameter \"query\": 1:5: parse error: unexpected right parenthesis ')'"
}`
	bodyUnauthenticated = `{
  "error": {
    "code": 401,
    "message": "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
    "status": "UNAUTHENTICATED"
  }
}`
	bodyPermissionDenied = `{
  "error": {
    "code": 403,
    "message": "Permission monitoring.timeSeries.list denied (or the resource may not exist).",
    "status": "PERMISSION_DENIED"
  }
}`
)

func checkRequest(r *http.Request) string {
	var problems []string
	if r.Method != http.MethodGet {
		problems = append(problems, "method "+r.Method+", want GET")
	}
	if want := "/v1/projects/" + testProject + "/location/global/prometheus/api/v1/query"; r.URL.Path != want {
		problems = append(problems, "path "+r.URL.Path+", want "+want)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer "+testToken {
		problems = append(problems, "Authorization "+got)
	}
	q := r.URL.Query()
	for k, want := range map[string]string{"query": testQuery, "time": testNowParam} {
		if got := q[k]; len(got) != 1 || got[0] != want {
			problems = append(problems, k+"="+strings.Join(got, ",")+", want "+want)
		}
	}
	return strings.Join(problems, "; ")
}

func newServer(t *testing.T, status int, body string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := checkRequest(r); p != "" {
			t.Errorf("unexpected request: %s", p)
			http.Error(w, p, http.StatusTeapot)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func staticToken(ctx context.Context) (string, error) {
	if _, ok := ctx.Deadline(); !ok {
		return "", errors.New("token source called without the query deadline")
	}
	return testToken, nil
}

func newProvider(t *testing.T, address string, timeout time.Duration, ts TokenSource) *Provider {
	t.Helper()
	if ts == nil {
		ts = staticToken
	}
	p, err := New(Options{Project: testProject, TokenSource: ts, Address: address, Timeout: timeout})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	p.now = func() time.Time { return testNow }
	return p
}

func TestQuery(t *testing.T) {
	tests := map[string]struct {
		status   int
		body     string
		want     float64
		wantErr  error
		wantText []string
		notErr   []error
	}{
		"one sample":   {status: 200, body: bodyOneSample, want: 99.8125},
		"scalar":       {status: 200, body: bodyScalar, want: 42},
		"empty vector": {status: 200, body: bodyEmpty, wantErr: metrics.ErrNoData},
		"NaN":          {status: 200, body: bodyNaN, wantErr: metrics.ErrNoData},
		"+Inf":         {status: 200, body: bodyInf, wantErr: metrics.ErrNoData},
		"two samples": {status: 200, body: bodyTwoSamples, wantErr: metrics.ErrMultipleSeries,
			wantText: []string{"2 series"}},
		"matrix is refused": {status: 200, body: bodyMatrix, wantText: []string{`unsupported result type "matrix"`},
			notErr: []error{metrics.ErrNoData, metrics.ErrMultipleSeries}},
		"prometheus error body": {status: 400, body: bodyBadQuery,
			wantText: []string{"HTTP 400", "bad_data", "parse error: unexpected right parenthesis"},
			notErr:   []error{metrics.ErrNoData, metrics.ErrUnreachable}},
		"auth failure": {status: 401, body: bodyUnauthenticated,
			wantText: []string{"HTTP 401", "UNAUTHENTICATED", "Request had invalid authentication credentials"},
			notErr:   []error{metrics.ErrNoData, metrics.ErrUnreachable}},
		"permission denied": {status: 403, body: bodyPermissionDenied,
			wantText: []string{"HTTP 403", "PERMISSION_DENIED", "monitoring.timeSeries.list denied"}},
		"non-JSON error body": {status: 503, body: "upstream connect error",
			wantText: []string{"HTTP 503", "upstream connect error"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv := newServer(t, tc.status, tc.body)
			got, err := newProvider(t, srv.URL, 0, nil).Query(t.Context(), testQuery)
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
	srv.Close()

	_, err := newProvider(t, addr, 0, nil).Query(t.Context(), testQuery)
	if !errors.Is(err, metrics.ErrUnreachable) {
		t.Fatalf("error %v is not ErrUnreachable", err)
	}
}

func TestQueryTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)

	start := time.Now()
	_, err := newProvider(t, srv.URL, 100*time.Millisecond, nil).Query(t.Context(), testQuery)
	if !errors.Is(err, metrics.ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v is not ErrUnreachable + DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Query took %s, want about the 100ms timeout", d)
	}
}

func TestQueryTokenSource(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte(bodyOneSample))
	}))
	t.Cleanup(srv.Close)

	tests := map[string]struct {
		ts       TokenSource
		wantText string
		wantErr  error
	}{
		"token source fails": {
			ts: func(context.Context) (string, error) {
				return "", errors.New("read key from Secret: permission denied")
			},
			wantText: "get access token: read key from Secret: permission denied",
		},
		"empty token": {
			ts:       func(context.Context) (string, error) { return "", nil },
			wantText: "empty token",
		},
		"token endpoint times out": {
			ts: func(ctx context.Context) (string, error) {
				<-ctx.Done()
				return "", ctx.Err()
			},
			wantErr: metrics.ErrUnreachable,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			hits.Store(0)
			_, err := newProvider(t, srv.URL, 100*time.Millisecond, tc.ts).Query(t.Context(), testQuery)
			if err == nil {
				t.Fatal("Query succeeded, want an error")
			}
			if tc.wantText != "" && !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("error %q does not carry %q", err, tc.wantText)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("error %q is not %v", err, tc.wantErr)
			}
			if n := hits.Load(); n != 0 {
				t.Errorf("%d requests sent without a token", n)
			}
		})
	}
}

func TestClientReused(t *testing.T) {
	var conns, tokens atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(bodyOneSample))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)

	p := newProvider(t, srv.URL, 0, func(ctx context.Context) (string, error) {
		tokens.Add(1)
		return testToken, nil
	})
	for range 3 {
		if _, err := p.Query(t.Context(), testQuery); err != nil {
			t.Fatalf("Query: %v", err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("3 queries opened %d connections, want 1", n)
	}
	if n := tokens.Load(); n != 3 {
		t.Errorf("TokenSource called %d times for 3 queries, want once per query", n)
	}
}

func TestNewValidates(t *testing.T) {
	tests := map[string]struct {
		o    Options
		want string
	}{
		"valid":               {o: Options{Project: "p", TokenSource: staticToken}},
		"missing project":     {o: Options{TokenSource: staticToken}, want: "Project is required"},
		"project with a path": {o: Options{Project: "projects/p", TokenSource: staticToken}, want: "Project"},
		"missing token src":   {o: Options{Project: "p"}, want: "TokenSource is required"},
		"bad address":         {o: Options{Project: "p", TokenSource: staticToken, Address: "monitoring"}, want: "Address"},
		"negative timeout":    {o: Options{Project: "p", TokenSource: staticToken, Timeout: -1}, want: "Timeout"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, err := New(tc.o)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tc.want == "" && !strings.HasPrefix(p.endpoint, DefaultAddress+"/v1/projects/p/"):
				t.Errorf("endpoint %s does not default to %s", p.endpoint, DefaultAddress)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("New error = %v, want one naming %q", err, tc.want)
			}
		})
	}
}
