package main

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPercentileIsNearestRank(t *testing.T) {
	ten := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	tests := map[string]struct {
		sorted []float64
		p      float64
		want   float64
	}{
		"p50 of ten is the 5th":    {ten, 50, 5},
		"p90 of ten is the 9th":    {ten, 90, 9},
		"p99 of ten is the 10th":   {ten, 99, 10},
		"p100 is the max":          {ten, 100, 10},
		"p0 is the min":            {ten, 0, 1},
		"p50 of one":               {[]float64{7}, 50, 7},
		"p50 of two is the first":  {[]float64{1, 2}, 50, 1},
		"p51 of two is the second": {[]float64{1, 2}, 51, 2},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := percentile(tc.sorted, tc.p); got != tc.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tc.sorted, tc.p, got, tc.want)
			}
		})
	}
}

func TestQuantilesOfSortsAndConverts(t *testing.T) {
	got := quantilesOf([]time.Duration{3 * time.Second, time.Second, 2 * time.Second, 500 * time.Millisecond})
	want := quantiles{Count: 4, Min: 0.5, P50: 1, P90: 3, P99: 3, Max: 3}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("quantilesOf (-want +got):\n%s", diff)
	}
	if got := quantilesOf(nil); got != (quantiles{}) {
		t.Errorf("quantilesOf(nil) = %+v, want zero", got)
	}
}

func TestLagsAreGapsMinusTheInterval(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	runs := []time.Time{t0, t0.Add(10 * time.Second), t0.Add(21 * time.Second), t0.Add(30*time.Second + 500*time.Millisecond)}
	got := lags(runs, 10*time.Second)
	want := []time.Duration{0, time.Second, -500 * time.Millisecond}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lags (-want +got):\n%s", diff)
	}
	if got := lags(runs[:1], 10*time.Second); len(got) != 0 {
		t.Errorf("lags of one run = %v, want none (the first run is only the reference)", got)
	}
}

func TestAddRunKeepsOrderOnce(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	var r release
	for _, s := range []int{20, 0, 10, 20, 0} {
		r.addRun(t0.Add(time.Duration(s) * time.Second))
	}
	r.addRun(time.Time{})
	want := []time.Time{t0, t0.Add(10 * time.Second), t0.Add(20 * time.Second)}
	if diff := cmp.Diff(want, r.Runs); diff != "" {
		t.Errorf("Runs (-want +got):\n%s", diff)
	}
}

func TestSummarizeCountsOnlyWhatHappened(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	rs := []*release{
		{Name: "done", SetImage: t0, Started: at(1), Done: at(33), Runs: []time.Time{at(2), at(12), at(23)}},
		{Name: "late", SetImage: at(1), Started: at(3), Done: at(61)},
		{Name: "unfinished", SetImage: t0, Started: at(2)},
		{Name: "failed", SetImage: t0, Started: at(1), Done: at(5), Err: errors.New("set image: denied")},
		{Name: "never sent"},
	}
	var s summary
	summarize(rs, 10*time.Second, &s)
	if s.Done != 2 {
		t.Errorf("done = %d, want 2 (a failed release's Done does not count)", s.Done)
	}
	checks := map[string]struct{ got, want quantiles }{
		"release":                        {s.Release, quantiles{Count: 2, Min: 33, P50: 33, P90: 60, P99: 60, Max: 60}},
		"start, from each own set image": {s.Start, quantiles{Count: 3, Min: 1, P50: 2, P90: 2, P99: 2, Max: 2}},
		"lag":                            {s.Lag, quantiles{Count: 2, Min: 0, P50: 0, P90: 1, P99: 1, Max: 1}},
		"to analysis":                    {s.ToAnalysis, quantiles{Count: 1, Min: 2, P50: 2, P90: 2, P99: 2, Max: 2}},
		"finish":                         {s.Finish, quantiles{Count: 1, Min: 10, P50: 10, P90: 10, P99: 10, Max: 10}},
	}
	for name, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %+v, want %+v", name, c.got, c.want)
		}
	}
}
