package main

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// release is what the watch saw of one Deployment's release.
type release struct {
	Name string
	// SetImage is when its `set image` patch was sent; Err is why it failed, if it did.
	SetImage time.Time
	Err      error
	// Started is when the canary Deployment appeared (Sluice: <name>-canary created; Flagger:
	// the target Deployment scaled up from zero); zero if never seen.
	Started time.Time
	// Done is when the release was seen finished; zero if it never was.
	Done time.Time
	// Runs are the recorded times of the controller's analysis ticks, oldest first: the first
	// one is the reference the next run is due an interval after (see lags).
	Runs []time.Time
}

// addRun records t once, keeping Runs in order.
func (r *release) addRun(t time.Time) {
	if t.IsZero() {
		return
	}
	i, found := slices.BinarySearchFunc(r.Runs, t, func(a, b time.Time) int { return a.Compare(b) })
	if !found {
		r.Runs = slices.Insert(r.Runs, i, t)
	}
}

// lags are the step lags of the runs: each run's recorded time minus the time it was due, one
// interval after the run before it.
func lags(runs []time.Time, interval time.Duration) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(runs); i++ {
		out = append(out, runs[i].Sub(runs[i-1])-interval)
	}
	return out
}

// summary is one (controller, N) run, as the report shows it and docs/benchmarks.md keeps it.
type summary struct {
	Controller string `json:"controller"`
	N          int    `json:"n"`
	Date       string `json:"date"`
	Commit     string `json:"commit"`
	Note       string `json:"note,omitempty"`
	// ControlPlaneQPS is the controller-manager's and scheduler's client limit, requests/s, when
	// the run raised it (0: their defaults, 20 and 50).
	ControlPlaneQPS float64 `json:"controlPlaneQPS,omitempty"`
	// Load is the 1-minute load average when the releases started (2 cores; shared machine).
	Load float64 `json:"load"`
	// ScheduleSeconds is iterations × interval, the unit of the release times.
	ScheduleSeconds float64 `json:"scheduleSeconds"`
	Done            int     `json:"done"`
	// Release times in seconds (set image → done), over the releases that finished.
	Release quantiles `json:"release"`
	// Start: set image → canary Deployment, seconds.
	Start quantiles `json:"start"`
	// Lag: step lag in seconds over every analysis run of every release.
	Lag quantiles `json:"lag"`
	// ToAnalysis: set image → the first recorded analysis time (Sluice: the canary ready, the
	// analysis clock starts; Flagger: the tick that starts the analysis), seconds.
	ToAnalysis quantiles `json:"toAnalysis"`
	// Finish: the last recorded analysis time → done (Sluice: its last run → promoted and
	// rolled; Flagger: Promoting → Succeeded), seconds.
	Finish quantiles `json:"finish"`
	// CPUSeconds the controller used from the first set image to the last release done.
	CPUSeconds float64 `json:"cpuSeconds"`
	// PeakRSSMiB is the controller's VmHWM (since it started, before its objects were created).
	PeakRSSMiB float64 `json:"peakRSSMiB"`
	// RSSMiB is the controller's VmRSS once the releases are done.
	RSSMiB float64 `json:"rssMiB,omitempty"`
	// Cluster are the requests of the controller-manager's Deployment and ReplicaSet controllers
	// in the window, per release (they roll the canaries and the parents out).
	Cluster map[string]float64 `json:"cluster,omitempty"`
	// Queue is Sluice's work queue in the window (nil for Flagger).
	Queue *queueStats `json:"queue,omitempty"`
	// Requests are the controller's API requests in the same window by "verb resource", divided by N.
	Requests map[string]float64 `json:"requests"`
	// WindowSeconds is the measured window: first set image to last release done.
	WindowSeconds float64 `json:"windowSeconds"`
}

// defaultControllerManagerQPS is kube-controller-manager's default client limit, requests/s.
const defaultControllerManagerQPS = 20

// series names the line a run belongs to: its controller, and the control plane's client limit
// when the run raised it.
func (s summary) series() string {
	if s.ControlPlaneQPS > 0 {
		return fmt.Sprintf("%s, control plane %g/s", s.Controller, s.ControlPlaneQPS)
	}
	return s.Controller
}

// controllerManagerQPS is the client limit the controller-manager ran with.
func (s summary) controllerManagerQPS() float64 {
	if s.ControlPlaneQPS > 0 {
		return s.ControlPlaneQPS
	}
	return defaultControllerManagerQPS
}

// quantiles of a sample, in seconds.
type quantiles struct {
	Count int     `json:"count"`
	Min   float64 `json:"min"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// quantilesOf summarises durations; the zero value for none.
func quantilesOf(d []time.Duration) quantiles {
	if len(d) == 0 {
		return quantiles{}
	}
	s := make([]float64, len(d))
	for i, v := range d {
		s[i] = v.Seconds()
	}
	slices.Sort(s)
	return quantiles{
		Count: len(s), Min: s[0], Max: s[len(s)-1],
		P50: percentile(s, 50), P90: percentile(s, 90), P99: percentile(s, 99),
	}
}

// percentile of sorted values by the nearest-rank method: the smallest value with at least p %
// of the sample at or below it, so every reported figure is one that was measured.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// summarize fills s's timing figures from the releases of its run.
func summarize(rs []*release, interval time.Duration, s *summary) {
	var rel, st, lg, to, fin []time.Duration
	s.Done = 0
	for _, r := range rs {
		if r.Err != nil || r.SetImage.IsZero() {
			continue
		}
		if !r.Done.IsZero() {
			s.Done++
			rel = append(rel, r.Done.Sub(r.SetImage))
		}
		if !r.Started.IsZero() {
			st = append(st, r.Started.Sub(r.SetImage))
		}
		if len(r.Runs) > 0 {
			to = append(to, r.Runs[0].Sub(r.SetImage))
			if !r.Done.IsZero() {
				fin = append(fin, r.Done.Sub(r.Runs[len(r.Runs)-1]))
			}
		}
		lg = append(lg, lags(r.Runs, interval)...)
	}
	s.Release, s.Start, s.Lag, s.ToAnalysis, s.Finish = quantilesOf(rel), quantilesOf(st), quantilesOf(lg), quantilesOf(to), quantilesOf(fin)
}
