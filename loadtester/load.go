package loadtester

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"golang.org/x/net/http/httpguts"
)

// Limits and defaults of a load task.
const (
	DefaultLoadRate        = 10
	MaxLoadRate            = 10000
	DefaultLoadDuration    = 30 * time.Second
	DefaultLoadConcurrency = 10
	MaxLoadConcurrency     = 1000
	DefaultRequestTimeout  = 10 * time.Second
	// DefaultMaxErrorRate matches Sluice's default success-rate check (≥ 99 %).
	DefaultMaxErrorRate = 1.0
)

// LoadSpec is a load task: metadata of type `load`, parsed by ParseLoad.
type LoadSpec struct {
	URL            *url.URL
	Method         string
	Body           []byte
	Header         http.Header
	Rate           int           // requests per second
	Duration       time.Duration // how long to send
	Concurrency    int           // requests in flight at most
	RequestTimeout time.Duration
	MaxErrorRate   float64       // percent of requests without a response or with a 5xx
	MaxP99         time.Duration // 0: no latency bound
}

// loadKeys are the metadata keys of a load task; common ones belong to every task.
var (
	loadKeys   = []string{"url", "method", "body", "headers", "rate", "duration", "concurrency", "timeout", "maxErrorRate", "maxP99"}
	commonKeys = []string{"type", "returnCmdOutput", "logCmdOutput"}
)

// ParseLoad reads a load task from hook metadata:
//
//	url           required, http or https
//	method        default GET
//	body          request body
//	headers       "Name: value" lines (Host sets the request's host)
//	rate          requests per second, 1..10000, default 10
//	duration      Go duration, default 30s, at most maxDuration (the server's task timeout)
//	concurrency   requests in flight at most, 1..1000, default 10
//	timeout       per request, Go duration, default 10s
//	maxErrorRate  percent 0..100 of requests without a response or with a 5xx, default 1
//	maxP99        Go duration: the p99 latency bound; none by default
//
// Unknown keys are refused (a misspelled bound silently ignored would pass a bad canary). All
// problems are reported at once, each naming its key.
func ParseLoad(meta map[string]string, maxDuration time.Duration) (LoadSpec, error) {
	s := LoadSpec{
		Method: http.MethodGet, Header: http.Header{}, Rate: DefaultLoadRate, Duration: DefaultLoadDuration,
		Concurrency: DefaultLoadConcurrency, RequestTimeout: DefaultRequestTimeout, MaxErrorRate: DefaultMaxErrorRate,
	}
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("metadata.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	for _, k := range slices.Sorted(maps.Keys(meta)) {
		if !slices.Contains(loadKeys, k) && !slices.Contains(commonKeys, k) {
			bad(k, "not a field of a load task (fields: %s)", strings.Join(loadKeys, ", "))
		}
	}

	switch raw, ok := meta["url"]; {
	case !ok || raw == "":
		bad("url", "required")
	default:
		u, err := url.Parse(raw)
		switch {
		case err != nil:
			bad("url", "%v", err)
		case u.Scheme != "http" && u.Scheme != "https":
			bad("url", "must be an http or https URL, got %q", raw)
		case u.Host == "":
			bad("url", "has no host: %q", raw)
		default:
			s.URL = u
		}
	}
	if m, ok := meta["method"]; ok {
		if !httpguts.ValidHeaderFieldName(m) || strings.ToUpper(m) != m {
			bad("method", "must be an HTTP method such as GET or POST, got %q", m)
		} else {
			s.Method = m
		}
	}
	if b, ok := meta["body"]; ok {
		s.Body = []byte(b)
	}
	if h, ok := meta["headers"]; ok {
		for i, line := range strings.Split(strings.TrimSpace(h), "\n") {
			name, value, found := strings.Cut(strings.TrimSpace(line), ":")
			name, value = strings.TrimSpace(name), strings.TrimSpace(value)
			if !found || !httpguts.ValidHeaderFieldName(name) || !httpguts.ValidHeaderFieldValue(value) {
				bad("headers", "line %d must be \"Name: value\", got %q", i+1, line)
				continue
			}
			s.Header.Add(name, value)
		}
	}
	intIn := func(key string, lo, hi int, dst *int) {
		raw, ok := meta[key]
		if !ok {
			return
		}
		n, err := strconv.Atoi(raw)
		if err != nil || n < lo || n > hi {
			bad(key, "must be a whole number %d..%d, got %q", lo, hi, raw)
			return
		}
		*dst = n
	}
	intIn("rate", 1, MaxLoadRate, &s.Rate)
	intIn("concurrency", 1, MaxLoadConcurrency, &s.Concurrency)
	durationIn := func(key string, hi time.Duration, dst *time.Duration) {
		raw, ok := meta[key]
		if !ok {
			return
		}
		d, err := time.ParseDuration(raw)
		switch {
		case err != nil || d <= 0:
			bad(key, "must be a positive duration such as 30s, got %q", raw)
		case hi > 0 && d > hi:
			bad(key, "must be at most %v (the load tester's -timeout), got %q", hi, raw)
		default:
			*dst = d
		}
	}
	durationIn("duration", maxDuration, &s.Duration)
	if _, set := meta["duration"]; !set && maxDuration > 0 && s.Duration > maxDuration {
		s.Duration = maxDuration
	}
	durationIn("timeout", 0, &s.RequestTimeout)
	durationIn("maxP99", 0, &s.MaxP99)
	if raw, ok := meta["maxErrorRate"]; ok {
		f, err := strconv.ParseFloat(strings.TrimSuffix(raw, "%"), 64)
		if err != nil || f < 0 || f > 100 {
			bad("maxErrorRate", "must be a percentage 0..100, got %q", raw)
		} else {
			s.MaxErrorRate = f
		}
	}
	if err := errors.Join(errs...); err != nil {
		return LoadSpec{}, err
	}
	return s, nil
}

// LoadResult is what a load task measured.
type LoadResult struct {
	Requests uint64
	Errors   uint64         // no response, or a 5xx
	Rate     float64        // achieved: requests per second while sending
	P50, P99 time.Duration  // latency
	Codes    map[int]uint64 // responses by status code; 0: no response
	Samples  []string       // a few distinct error texts
}

// ErrorRate is the percentage of requests that failed.
func (r LoadResult) ErrorRate() float64 {
	if r.Requests == 0 {
		return 0
	}
	return float64(r.Errors) / float64(r.Requests) * 100
}

// Judge returns why a load test failed its bounds; none when it passed. Pure.
func Judge(s LoadSpec, r LoadResult) []string {
	var why []string
	if r.Requests == 0 {
		return []string{"no request was sent"}
	}
	if rate := r.ErrorRate(); rate > s.MaxErrorRate {
		why = append(why, fmt.Sprintf("error rate %.2f%% (%d of %d requests without a response or with a 5xx) is above maxErrorRate %g%%",
			rate, r.Errors, r.Requests, s.MaxErrorRate))
	}
	if s.MaxP99 > 0 && r.P99 > s.MaxP99 {
		why = append(why, fmt.Sprintf("p99 latency %v is above maxP99 %v", r.P99.Round(time.Microsecond), s.MaxP99))
	}
	return why
}

// Report is a one-paragraph summary of a load test.
func Report(s LoadSpec, r LoadResult) string {
	var codes []string
	for _, c := range slices.Sorted(maps.Keys(r.Codes)) {
		name := strconv.Itoa(c)
		if c == 0 {
			name = "none"
		}
		codes = append(codes, fmt.Sprintf("%s:%d", name, r.Codes[c]))
	}
	out := fmt.Sprintf("load %s %s for %v: %d requests at %.1f/s (asked %d/s), %d errors (%.2f%%), p50 %v, p99 %v, status codes %s",
		s.Method, s.URL.Redacted(), s.Duration, r.Requests, r.Rate, s.Rate, r.Errors, r.ErrorRate(),
		r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond), strings.Join(codes, " "))
	if len(r.Samples) > 0 {
		out += "; errors seen: " + strings.Join(r.Samples, "; ")
	}
	return out
}

// maxSamples is how many distinct error texts a result keeps.
const maxSamples = 3

// RunLoad sends s.Rate requests per second to s.URL for s.Duration with at most s.Concurrency
// in flight (vegeta's attacker, in-process), or until ctx ends, and measures the answers.
func RunLoad(ctx context.Context, s LoadSpec) (LoadResult, error) {
	if s.URL == nil || s.Rate <= 0 || s.Duration <= 0 || s.Concurrency <= 0 {
		return LoadResult{}, errors.New("load spec not parsed: use ParseLoad")
	}
	workers := uint64(s.Concurrency)
	attacker := vegeta.NewAttacker(
		vegeta.Workers(workers), vegeta.MaxWorkers(workers),
		vegeta.Timeout(s.RequestTimeout),
		vegeta.Redirects(vegeta.NoFollow), // a redirect is an answer, as for a real client's first hop
		vegeta.MaxBody(0),                 // bodies are read and discarded, never kept
	)
	target := vegeta.Target{Method: s.Method, URL: s.URL.String(), Body: s.Body, Header: s.Header}
	results := attacker.Attack(vegeta.NewStaticTargeter(target), vegeta.Rate{Freq: s.Rate, Per: time.Second}, s.Duration, "sluice-loadtester")
	stop := context.AfterFunc(ctx, func() { attacker.Stop() })
	defer stop()

	var (
		m   vegeta.Metrics
		res = LoadResult{Codes: map[int]uint64{}}
	)
	for r := range results {
		m.Add(r)
		res.Codes[int(r.Code)]++
		if r.Code == 0 || r.Code >= 500 {
			res.Errors++
			text := r.Error
			if text == "" {
				text = http.StatusText(int(r.Code))
			}
			if len(res.Samples) < maxSamples && !slices.Contains(res.Samples, text) {
				res.Samples = append(res.Samples, text)
			}
		}
	}
	m.Close()
	res.Requests, res.Rate = m.Requests, m.Rate
	res.P50, res.P99 = m.Latencies.P50, m.Latencies.P99
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("load test stopped after %d requests: %w", res.Requests, err)
	}
	return res, nil
}
