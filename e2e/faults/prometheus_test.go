package faults

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/e2e/cluster"
	"github.com/sluice-dev/sluice/e2e/stack"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// builtins are the default checks (their queries carry namespace="…", which PrometheusProxy
// faults by), spelled out to add an inconclusive limit: the NaN row ends by it. It is 3 so that
// a first run without data yet does not end the release before the fault.
const builtins = "- name: request-success-rate\n  thresholdRange: {min: 99}\n  inconclusiveLimit: 3\n" +
	"- name: request-duration\n  thresholdRange: {max: 500}\n  inconclusiveLimit: 3\n"

// promRow releases v2 with checks against real Prometheus series through the proxy: the first
// step's run passes on them, then fault() breaks Prometheus for this namespace, and the release
// must never promote and end Failed as the row says. It returns the final state.
func promRow(t *testing.T, metrics string, setup, fault func(a *app)) (*app, spec.State) {
	t.Helper()
	a := newAppWithLoad(t, "web", fastAnnotations(spec.AnnMetrics, metrics, spec.AnnThreshold, "2"), 20)
	if setup != nil {
		setup(a)
	}
	a.deploy("demo:v1")
	rec := a.record()
	a.kubectl("set", "image", "deployment/web", "app=demo:v2")
	// The first run passes on real series: the proxy passes them through.
	rec.waitState(3*time.Minute, "the first step's analysis to pass", func(st spec.State) bool {
		if st.Phase == spec.PhaseIdle {
			return false // the held release not seen by the watch yet
		}
		if st.Phase != spec.PhaseProgressing {
			t.Fatalf("release left Progressing before the fault: %s: %s", key(st), st.Message)
		}
		return st.Step == 1
	})
	fault(a)
	st := a.waitPhase(3*time.Minute, spec.PhaseFailed)
	rec.checkRelease(t, rolledBackAtSecondStep...)
	if a.canary() != nil {
		t.Error("canary left after the rollback")
	}
	return a, st
}

// checkReasons checks that every check of the last run has verdict and a reason containing
// one of words.
func checkReasons(t *testing.T, st spec.State, verdict spec.Verdict, words ...string) {
	t.Helper()
	if len(st.Checks) == 0 {
		t.Fatalf("no check results in the final state: %s", st.Message)
	}
	for _, c := range st.Checks {
		if c.Verdict != verdict || !slices.ContainsFunc(words, func(w string) bool { return strings.Contains(c.Reason, w) }) {
			t.Errorf("check %s: %s (%s), want %s saying one of %q", c.Name, c.Verdict, c.Reason, verdict, words)
		}
	}
}

// Prometheus answering 5xx: every run is a failed check (an error, said in the Event);
// threshold 2 → rolled back after two runs, never promoted.
func TestPrometheus5xx(t *testing.T) {
	t.Parallel()
	readsAPI(t)
	a, st := promRow(t, builtins, nil, func(a *app) { promxy.SetMode(a.ns, stack.PromError) })
	checkReasons(t, st, spec.VerdictError, "500", "server error")
	if st.FailedChecks != 2 || !strings.Contains(st.Message, "threshold") {
		t.Errorf("final state: failed %d, %q; want 2 failed runs at the threshold", st.FailedChecks, st.Message)
	}
	if promxy.Answered(a.ns, stack.PromError) == 0 {
		t.Error("the proxy answered no query with 500")
	}
	a.waitEvent(10*time.Second, "CheckFailed")
}

// Prometheus slower than --query-timeout: each query times out, a failed check; rolled back at
// the threshold, never promoted.
func TestPrometheusSlow(t *testing.T) {
	t.Parallel()
	readsAPI(t)
	a, st := promRow(t, builtins, nil, func(a *app) { promxy.SetMode(a.ns, stack.PromSlow) })
	checkReasons(t, st, spec.VerdictError, "deadline", "unreachable", "timeout")
	if st.FailedChecks != 2 {
		t.Errorf("final state: failed %d, want 2", st.FailedChecks)
	}
	if promxy.Answered(a.ns, stack.PromSlow) == 0 {
		t.Error("the proxy delayed no query")
	}
}

// Prometheus answering NaN: no data, inconclusive (not failed): the release waits, and the
// checks' inconclusiveLimit of 3 rolls it back; never promoted.
func TestPrometheusNaN(t *testing.T) {
	t.Parallel()
	readsAPI(t)
	a, st := promRow(t, builtins, nil, func(a *app) { promxy.SetMode(a.ns, stack.PromNaN) })
	checkReasons(t, st, spec.VerdictInconclusive, "NaN")
	if st.FailedChecks != 0 || st.Inconclusive != 3 || !strings.Contains(st.Message, "inconclusive") {
		t.Errorf("final state: failed %d, inconclusive %d, %q; want 0 failed and 3 inconclusive runs at the limit", st.FailedChecks, st.Inconclusive, st.Message)
	}
	a.waitEvent(10*time.Second, "Inconclusive")
}

// promTemplate is a check through a MetricTemplate whose Prometheus address the test sets: the
// proxy (pass-through) first, then a closed port.
const promTemplate = `apiVersion: sluice.dev/v1beta1
kind: MetricTemplate
metadata: {name: prom}
spec:
  provider: {type: prometheus, address: "%s"}
  query: 100 * sum(rate(http_requests_total{namespace="{{ namespace }}",pod=~"{{ canary }}-.*",code!~"5.."}[{{ interval }}])) / sum(rate(http_requests_total{namespace="{{ namespace }}",pod=~"{{ canary }}-.*"}[{{ interval }}]))
`

// Prometheus down (nothing listens at its address: connection refused): failed checks, rolled
// back at the threshold, never promoted.
func TestPrometheusDown(t *testing.T) {
	t.Parallel()
	readsAPI(t)
	ports, err := cluster.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	closed := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	check := "- name: success-rate\n  templateRef: {name: prom}\n  thresholdRange: {min: 99}\n"
	template := func(a *app, address string) {
		path := a.manifests + "/template.yaml"
		writeFile(t, path, fmt.Sprintf(promTemplate, address))
		a.kubectl("apply", "-f", path)
	}
	_, st := promRow(t, check,
		func(a *app) { template(a, promxy.URL) },
		func(a *app) { template(a, closed) })
	checkReasons(t, st, spec.VerdictError, "connection refused")
	if st.FailedChecks != 2 {
		t.Errorf("final state: failed %d, want 2", st.FailedChecks)
	}
}
