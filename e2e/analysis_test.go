package e2e

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// A reading outside abortRange rolls back on the first run, without waiting for threshold.
func TestAbortRangeRollsBackOnFirstReading(t *testing.T) {
	t.Parallel()
	a := newApp(t, "abort", map[string]string{
		spec.AnnInterval: "5s", spec.AnnThreshold: "5",
		spec.AnnMetrics: "- name: error-rate\n  query: vector(5)\n  thresholdRange: {max: 10}\n  abortRange: {max: 1}\n",
	})
	a.deploy("demo:v1")
	a.apply("demo:v2")
	a.waitEvent(60*time.Second, "CanaryReady")
	ready := time.Now()
	st := a.waitPhase(30*time.Second, spec.PhaseFailed)
	if took := time.Since(ready); took > 5*time.Second+4*time.Second {
		t.Errorf("rollback took %s after the canary was ready, want the first run (5s)", took.Round(100*time.Millisecond))
	}
	if st.FailedChecks != 0 || !strings.Contains(st.Message, "abort range") {
		t.Errorf("state after abort = %s", mustJSON(st))
	}
	if a.canary() != nil {
		t.Error("canary left after the abort")
	}
}

// A failing dryRun check is recorded but does not stop promotion.
func TestDryRunCheckDoesNotBlockPromotion(t *testing.T) {
	t.Parallel()
	a := newApp(t, "dry", map[string]string{
		spec.AnnInterval: "5s", spec.AnnStepWeights: "20,40",
		spec.AnnMetrics: "- name: ok\n  query: vector(100)\n  thresholdRange: {min: 99}\n" +
			"- name: shadow\n  query: vector(0)\n  thresholdRange: {min: 1}\n  dryRun: true\n",
	})
	a.deploy("demo:v1")
	a.apply("demo:v2")
	st := a.waitPhase(90*time.Second, spec.PhaseSucceeded)
	var shadow *spec.CheckResult
	for i := range st.Checks {
		if st.Checks[i].Name == "shadow" {
			shadow = &st.Checks[i]
		}
	}
	if shadow == nil || shadow.Verdict != spec.VerdictFail || !shadow.DryRun || st.FailedChecks != 0 {
		t.Errorf("checks after promotion = %s", mustJSON(st))
	}
}

// A check with no data is inconclusive: the release waits (saying which query returned nothing)
// instead of failing, until a human decides; with inconclusiveLimit it rolls back.
func TestNoDataWaitsThenLimitRollsBack(t *testing.T) {
	t.Parallel()
	waits := newApp(t, "nodata", map[string]string{
		spec.AnnInterval: "5s", spec.AnnThreshold: "1",
		spec.AnnMetrics: "- name: latency\n  query: sum(rate(no_such_metric_total[1m]))\n  thresholdRange: {max: 100}\n",
	})
	waits.deploy("demo:v1")
	waits.apply("demo:v2")
	d := waits.waitFor(60*time.Second, "two inconclusive runs", func(d *appsv1.Deployment) (bool, string) {
		st := stateOf(t, d)
		return st.Inconclusive >= 2, st.Message
	})
	st := stateOf(t, d)
	if st.Phase != spec.PhaseProgressing || st.FailedChecks != 0 || st.Weight != 10 {
		t.Errorf("no-data release should wait at the first weight: %s", mustJSON(st))
	}
	if !strings.Contains(st.Message, "latency") || !strings.Contains(st.Message, "no series") {
		t.Errorf("message should name the check and say it had no data: %q", st.Message)
	}
	waits.waitEvent(5*time.Second, "Inconclusive")
	if out, err := env.Plugin(t.Context(), "-n", waits.ns, "promote", waits.name); err != nil {
		t.Fatalf("kubectl sluice promote: %v\n%s", err, out)
	}
	waits.waitPhase(60*time.Second, spec.PhaseSucceeded)

	limited := newApp(t, "nodata-limit", map[string]string{
		spec.AnnInterval: "5s",
		spec.AnnMetrics:  "- name: latency\n  query: sum(rate(no_such_metric_total[1m]))\n  thresholdRange: {max: 100}\n  inconclusiveLimit: 2\n",
	})
	limited.deploy("demo:v1")
	limited.apply("demo:v2")
	st = limited.waitPhase(60*time.Second, spec.PhaseFailed)
	if !strings.Contains(st.Message, "inconclusive") {
		t.Errorf("rollback reason = %q", st.Message)
	}
}

// compareTo: stable runs the builtin query on the canary and on the stable pods (both series
// present in Prometheus) and judges the difference; minRequests keeps a thin canary inconclusive.
func TestCompareToStableAndMinRequests(t *testing.T) {
	t.Parallel()
	compare := "- name: request-success-rate\n  thresholdRange: {min: 0}\n  compareTo: stable\n  maxDelta: 5\n"
	worse := newApp(t, "worse", map[string]string{spec.AnnInterval: "5s", spec.AnnThreshold: "1", spec.AnnMetrics: compare})
	worse.deploy("demo:v1")
	worse.apply("demo:v2-bad")
	st := worse.waitPhase(60*time.Second, spec.PhaseFailed)
	if len(st.Checks) != 1 || !strings.Contains(st.Checks[0].Reason, "vs stable 100") || !strings.Contains(st.Checks[0].Reason, "more than maxDelta 5") {
		t.Errorf("compare verdict = %s", mustJSON(st.Checks))
	}

	same := newApp(t, "same", map[string]string{spec.AnnInterval: "5s", spec.AnnThreshold: "1", spec.AnnStepWeights: "50", spec.AnnMetrics: compare})
	same.deploy("demo:v1")
	same.apply("demo:v2")
	st = same.waitPhase(60*time.Second, spec.PhaseSucceeded)
	if len(st.Checks) != 1 || !strings.Contains(st.Checks[0].Reason, "within maxDelta 5") {
		t.Errorf("compare verdict = %s", mustJSON(st.Checks))
	}

	thin := newApp(t, "thin", map[string]string{spec.AnnInterval: "5s", spec.AnnThreshold: "1",
		spec.AnnMetrics: "- name: request-success-rate\n  thresholdRange: {min: 99}\n  minRequests: 1000000\n"})
	thin.deploy("demo:v1")
	thin.apply("demo:v2")
	d := thin.waitFor(60*time.Second, "an inconclusive run", func(d *appsv1.Deployment) (bool, string) {
		st := stateOf(t, d)
		return st.Inconclusive >= 1, st.Message
	})
	if st := stateOf(t, d); st.Phase != spec.PhaseProgressing || !strings.Contains(st.Message, "fewer than minRequests 1000000") {
		t.Errorf("thin canary state = %s", mustJSON(st))
	}
}
