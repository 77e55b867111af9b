package loadtester

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseLoad(t *testing.T) {
	target, _ := url.Parse("http://podinfo-canary.test:9898/api")
	defaults := LoadSpec{
		URL: target, Method: "GET", Header: http.Header{}, Rate: DefaultLoadRate, Duration: DefaultLoadDuration,
		Concurrency: DefaultLoadConcurrency, RequestTimeout: DefaultRequestTimeout, MaxErrorRate: DefaultMaxErrorRate,
	}
	with := func(f func(*LoadSpec)) LoadSpec {
		s := defaults
		s.Header = http.Header{}
		f(&s)
		return s
	}
	tests := map[string]struct {
		meta        map[string]string
		maxDuration time.Duration
		want        LoadSpec
		wantErr     []string // each must appear in the error
	}{
		"url only: defaults": {
			meta: map[string]string{"type": "load", "url": "http://podinfo-canary.test:9898/api"},
			want: defaults,
		},
		"every field": {
			meta: map[string]string{
				"type": "load", "url": "http://podinfo-canary.test:9898/api", "method": "POST", "body": `{"a":1}`,
				"headers": "Host: podinfo.example.com\nX-Canary: always\n", "rate": "200", "duration": "45s",
				"concurrency": "20", "timeout": "2s", "maxErrorRate": "0.5%", "maxP99": "300ms",
				"returnCmdOutput": "true", "logCmdOutput": "false",
			},
			want: with(func(s *LoadSpec) {
				s.Method, s.Body, s.Rate, s.Duration, s.Concurrency = "POST", []byte(`{"a":1}`), 200, 45*time.Second, 20
				s.RequestTimeout, s.MaxErrorRate, s.MaxP99 = 2*time.Second, 0.5, 300*time.Millisecond
				s.Header.Set("Host", "podinfo.example.com")
				s.Header.Set("X-Canary", "always")
			}),
		},
		"default duration cut to the server's timeout": {
			meta:        map[string]string{"url": "http://podinfo-canary.test:9898/api"},
			maxDuration: 10 * time.Second,
			want:        with(func(s *LoadSpec) { s.Duration = 10 * time.Second }),
		},
		"duration beyond the server's timeout": {
			meta:        map[string]string{"url": "http://x/", "duration": "2m"},
			maxDuration: time.Minute,
			wantErr:     []string{`metadata.duration: must be at most 1m0s (the load tester's -timeout), got "2m"`},
		},
		"missing url": {
			meta:    map[string]string{"type": "load", "rate": "5"},
			wantErr: []string{"metadata.url: required"},
		},
		"not http": {
			meta:    map[string]string{"url": "ftp://x/"},
			wantErr: []string{`metadata.url: must be an http or https URL, got "ftp://x/"`},
		},
		"no host": {
			meta:    map[string]string{"url": "http:///path"},
			wantErr: []string{`metadata.url: has no host`},
		},
		"every problem at once, each naming its key": {
			meta: map[string]string{
				"url": "http://x/", "rate": "0", "concurrency": "5000", "duration": "-1s", "timeout": "soon",
				"maxErrorRate": "150", "maxP99": "fast", "method": "get", "headers": "no colon here", "maxp99": "1s",
			},
			wantErr: []string{
				`metadata.rate: must be a whole number 1..10000, got "0"`,
				`metadata.concurrency: must be a whole number 1..1000, got "5000"`,
				`metadata.duration: must be a positive duration such as 30s, got "-1s"`,
				`metadata.timeout: must be a positive duration such as 30s, got "soon"`,
				`metadata.maxErrorRate: must be a percentage 0..100, got "150"`,
				`metadata.maxP99: must be a positive duration such as 30s, got "fast"`,
				`metadata.method: must be an HTTP method such as GET or POST, got "get"`,
				`metadata.headers: line 1 must be "Name: value", got "no colon here"`,
				`metadata.maxp99: not a field of a load task`,
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseLoad(tc.meta, tc.maxDuration)
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("ParseLoad = %+v, want an error", got)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q\ndoes not contain %q", err, w)
					}
				}
				if n := strings.Count(err.Error(), "\n") + 1; n != len(tc.wantErr) {
					t.Errorf("error has %d lines, want %d: %q", n, len(tc.wantErr), err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseLoad: %v", err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b *url.URL) bool { return a.String() == b.String() })); diff != "" {
				t.Errorf("ParseLoad (-want +got):\n%s", diff)
			}
		})
	}
}

func TestJudge(t *testing.T) {
	spec := LoadSpec{MaxErrorRate: 1, MaxP99: 500 * time.Millisecond}
	tests := map[string]struct {
		spec   LoadSpec
		result LoadResult
		want   []string
	}{
		"within bounds": {
			spec: spec, result: LoadResult{Requests: 1000, Errors: 10, P99: 500 * time.Millisecond},
		},
		"error rate above": {
			spec: spec, result: LoadResult{Requests: 1000, Errors: 11, P99: time.Millisecond},
			want: []string{"error rate 1.10% (11 of 1000 requests without a response or with a 5xx) is above maxErrorRate 1%"},
		},
		"p99 above": {
			spec: spec, result: LoadResult{Requests: 10, P99: 501 * time.Millisecond},
			want: []string{"p99 latency 501ms is above maxP99 500ms"},
		},
		"no latency bound": {
			spec: LoadSpec{MaxErrorRate: 1}, result: LoadResult{Requests: 10, P99: time.Hour},
		},
		"both": {
			spec: spec, result: LoadResult{Requests: 2, Errors: 2, P99: time.Second},
			want: []string{
				"error rate 100.00% (2 of 2 requests without a response or with a 5xx) is above maxErrorRate 1%",
				"p99 latency 1s is above maxP99 500ms",
			},
		},
		"zero bound refuses any error": {
			spec: LoadSpec{MaxErrorRate: 0}, result: LoadResult{Requests: 100000, Errors: 1},
			want: []string{"error rate 0.00% (1 of 100000 requests without a response or with a 5xx) is above maxErrorRate 0%"},
		},
		"nothing sent": {
			spec: spec, result: LoadResult{},
			want: []string{"no request was sent"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Judge(tc.spec, tc.result)); diff != "" {
				t.Errorf("Judge (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRunLoadCountsWhatTheServerSaw sends load to a loopback server that fails every fourth
// request with a 500 and answers some with a 404: the result counts exactly what the server
// saw, 5xx as errors and 4xx not.
func TestRunLoadCountsWhatTheServerSaw(t *testing.T) {
	var (
		seen    atomic.Int64
		mu      sync.Mutex
		byCode  = map[int]uint64{}
		request *http.Request
		body    string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := seen.Add(1)
		code := http.StatusOK
		switch {
		case n%4 == 0:
			code = http.StatusInternalServerError
		case n%5 == 0:
			code = http.StatusNotFound
		}
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		byCode[code]++
		request, body = r, string(b)
		mu.Unlock()
		w.WriteHeader(code)
	}))
	defer srv.Close()

	spec, err := ParseLoad(map[string]string{
		"url": srv.URL + "/echo", "method": "POST", "body": "ping", "headers": "Host: podinfo.example.com\nX-Canary: always",
		"rate": "100", "duration": "1s", "concurrency": "4",
	}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	res, err := RunLoad(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if res.Requests != uint64(seen.Load()) || res.Requests < 90 {
		t.Errorf("result counts %d requests, the server saw %d (want about 100)", res.Requests, seen.Load())
	}
	if diff := cmp.Diff(byCode, res.Codes); diff != "" {
		t.Errorf("status codes (-server +result):\n%s", diff)
	}
	if res.Errors != byCode[500] {
		t.Errorf("errors = %d, want the %d 500s (404s are answers, not errors)", res.Errors, byCode[500])
	}
	if request.Method != "POST" || request.URL.Path != "/echo" || body != "ping" ||
		request.Host != "podinfo.example.com" || request.Header.Get("X-Canary") != "always" {
		t.Errorf("server got %s %s host %q X-Canary %q body %q", request.Method, request.URL.Path, request.Host,
			request.Header.Get("X-Canary"), body)
	}
	if why := Judge(spec, res); len(why) != 1 || !strings.Contains(why[0], "above maxErrorRate 1%") {
		t.Errorf("Judge = %q, want the error rate refused", why)
	}
}

// TestRunLoadUnreachable: a target that refuses connections is all errors, with the reason.
func TestRunLoadUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close()
	spec, err := ParseLoad(map[string]string{"url": addr, "rate": "20", "duration": "500ms"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	res, err := RunLoad(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Errors != res.Requests || res.Codes[0] != res.Requests {
		t.Errorf("result %+v: want every request an error without a response", res)
	}
	if report := Report(spec, res); !strings.Contains(report, "connection refused") || !strings.Contains(report, "status codes none:") {
		t.Errorf("report %q does not say why", report)
	}
}
