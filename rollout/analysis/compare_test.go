package analysis

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-dev/sluice/providers/catalogtest"
	"github.com/sluice-dev/sluice/providers/metrics"
	"github.com/sluice-dev/sluice/rollout/spec"
)

func TestJudgeCompare(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	successRate := spec.Metric{Name: "sr", ThresholdRange: &spec.Range{Min: f(90)}, CompareTo: spec.CompareStable, MaxDelta: f(2)}
	latency := spec.Metric{Name: "p99", ThresholdRange: &spec.Range{Max: f(500)}, CompareTo: spec.CompareStable, MaxDelta: f(50)}
	noData := fmt.Errorf("empty: %w", metrics.ErrNoData)
	tests := map[string]struct {
		m                  spec.Metric
		canary, stable     float64
		canaryErr, stable2 error
		want               spec.Verdict
	}{
		"success rate within delta":        {m: successRate, canary: 98.5, stable: 99.9, want: spec.VerdictPass},
		"success rate worse than delta":    {m: successRate, canary: 96, stable: 99.9, want: spec.VerdictFail},
		"success rate better than stable":  {m: successRate, canary: 100, stable: 93, want: spec.VerdictPass},
		"absolute threshold still applies": {m: successRate, canary: 85, stable: 86, want: spec.VerdictFail},
		"latency within delta":             {m: latency, canary: 240, stable: 200, want: spec.VerdictPass},
		"latency worse than delta":         {m: latency, canary: 300, stable: 200, want: spec.VerdictFail},
		"latency better than stable":       {m: latency, canary: 100, stable: 400, want: spec.VerdictPass},
		"stable without data":              {m: latency, canary: 100, stable2: noData, want: spec.VerdictInconclusive},
		"canary without data":              {m: latency, canaryErr: noData, stable: 100, want: spec.VerdictInconclusive},
		"stable query error":               {m: latency, canary: 100, stable2: fmt.Errorf("boom"), want: spec.VerdictError},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := JudgeCompare(tc.m, tc.canary, tc.stable, tc.canaryErr, tc.stable2)
			if got.Verdict != tc.want {
				t.Errorf("verdict %s (%s), want %s", got.Verdict, got.Reason, tc.want)
			}
		})
	}
}

func TestJudgeRequests(t *testing.T) {
	v := 99.0
	pass := spec.CheckResult{Name: "sr", Verdict: spec.VerdictPass, Value: &v}
	zero := 0.0
	aborted := spec.CheckResult{Name: "sr", Verdict: spec.VerdictAbort, Value: &zero, Reason: "0 outside abort range [80, +inf]"}
	tests := map[string]struct {
		in       *spec.CheckResult
		min      int
		requests float64
		err      error
		want     spec.CheckResult
	}{
		// A canary that served a few requests, all failed, is aborted, not "too few to tell".
		"abort wins over too few":           {in: &aborted, min: 10, requests: 3, want: aborted},
		"abort wins over no request series": {in: &aborted, min: 10, err: metrics.ErrNoData, want: aborted},
		"enough":                            {min: 10, requests: 25, want: pass},
		"not asked":                         {min: 0, requests: 0, want: pass},
		"too few":                           {min: 10, requests: 3, want: spec.CheckResult{Name: "sr", Verdict: spec.VerdictInconclusive, Value: &v, Reason: "canary served 3 requests in the window, fewer than minRequests 10"}},
		"no series":                         {min: 10, err: metrics.ErrNoData, want: spec.CheckResult{Name: "sr", Verdict: spec.VerdictInconclusive, Value: &v, Reason: "canary served 0 requests in the window, fewer than minRequests 10"}},
		"count errors":                      {min: 10, err: fmt.Errorf("boom"), want: spec.CheckResult{Name: "sr", Verdict: spec.VerdictError, Reason: "request count: boom"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			in := pass
			if tc.in != nil {
				in = *tc.in
			}
			if diff := cmp.Diff(tc.want, JudgeRequests(in, tc.min, tc.requests, tc.err)); diff != "" {
				t.Errorf("JudgeRequests (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRequestCountQuery(t *testing.T) {
	q, err := RequestCountQuery(catalogtest.Router(spec.RouterReplicas), spec.Metric{Name: "sr"}, 30*time.Second, Vars{Namespace: "ns", Canary: "web-canary"})
	want := `sum(increase(http_requests_total{namespace="ns",pod=~"web-canary-[0-9a-zA-Z]+-[0-9a-zA-Z]+"}[30s]))`
	if err != nil || q != want {
		t.Errorf("RequestCountQuery = %q, %v; want %q", q, err, want)
	}
	if _, err := RequestCountQuery(catalogtest.Router("haproxy"), spec.Metric{Name: "sr"}, 0, Vars{}); err == nil {
		t.Error("no error for a router without a request count query")
	}
}
