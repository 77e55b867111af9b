package loadtester

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkLoadAchievedRate runs the load task against a loopback server at several rates
// and reports the rate it achieved (vegeta's: requests per second between the first and the
// last request) and the rate the server counted over the configured duration. It fails when
// either is more than 10% off the configured rate. Results: docs/benchmarks.md.
//
//	go test -run '^$' -bench LoadAchievedRate -benchtime 1x ./loadtester/
func BenchmarkLoadAchievedRate(b *testing.B) {
	for _, tc := range []struct {
		rate     int
		duration time.Duration
	}{{50, 5 * time.Second}, {200, 5 * time.Second}, {1000, 5 * time.Second}} {
		b.Run(fmt.Sprintf("rate=%d", tc.rate), func(b *testing.B) {
			var seen atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				seen.Add(1)
				w.WriteHeader(http.StatusOK)
			}))
			defer srv.Close()
			spec, err := ParseLoad(map[string]string{
				"url": srv.URL, "rate": fmt.Sprint(tc.rate), "duration": tc.duration.String(), "concurrency": "50",
			}, time.Hour)
			if err != nil {
				b.Fatal(err)
			}
			var achieved, served, p99 float64
			for b.Loop() {
				seen.Store(0)
				res, err := RunLoad(b.Context(), spec)
				if err != nil {
					b.Fatal(err)
				}
				if res.Errors > 0 {
					b.Fatalf("%d errors: %s", res.Errors, Report(spec, res))
				}
				achieved = res.Rate
				served = float64(seen.Load()) / tc.duration.Seconds()
				p99 = float64(res.P99.Microseconds()) / 1000
				for what, got := range map[string]float64{"achieved": achieved, "served": served} {
					if off := math.Abs(got-float64(tc.rate)) / float64(tc.rate); off > 0.10 {
						b.Errorf("%s rate %.1f/s is %.1f%% off the configured %d/s (limit 10%%)", what, got, off*100, tc.rate)
					}
				}
			}
			b.ReportMetric(achieved, "achieved-req/s")
			b.ReportMetric(served, "served-req/s")
			b.ReportMetric(p99, "p99-ms")
		})
	}
}
