package spec_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/sluice-dev/sluice/providers/catalogtest"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// fuzzKeys are the configuration annotations FuzzParse may set, with the fuzz input each takes
// its value from.
var fuzzKeys = []struct {
	key string
	arg int // index into the value arguments of FuzzParse
}{
	{spec.AnnStrategy, 2}, {spec.AnnRouter, 2}, {spec.AnnService, 2}, {spec.AnnPort, 0},
	{spec.AnnRoute, 2}, {spec.AnnInterval, 3}, {spec.AnnThreshold, 0}, {spec.AnnStepWeight, 0},
	{spec.AnnMaxWeight, 1}, {spec.AnnStepWeights, 4}, {spec.AnnIterations, 1}, {spec.AnnMatch, 4},
	{spec.AnnMetrics, 5}, {spec.AnnAnalysis, 6}, {spec.AnnProgressDeadline, 3}, {spec.AnnSkipAnalysis, 2},
	{spec.AnnWebhooks, 5}, {spec.AnnAlerts, 6},
}

// FuzzParse feeds arbitrary annotation values to Parse: it never panics or hangs, it is
// deterministic, every error names an annotation the Deployment actually sets, and whatever it
// accepts is a configuration the worker can run and freeze into the release state.
func FuzzParse(f *testing.F) {
	metricsYAML := "- name: request-success-rate\n  thresholdRange: {min: 99}\n  abortRange: {min: 80}\n" +
		"- name: errors\n  query: sum(rate(x[{{ interval }}]))\n  thresholdRange: {max: 1}\n  interval: 30s\n  inconclusiveLimit: 2\n"
	analysisYAML := "interval: 30s\nthreshold: 3\nstepWeight: 5\nmaxWeight: 25\nmetrics:\n- name: request-duration\n  thresholdRange: {max: 300}\n"
	f.Add(uint32(0), "", "", "", "", "", "", "")
	f.Add(uint32(1<<8), "", "150", "", "", "", "", "")
	f.Add(uint32(1<<7|1<<8), "30", "20", "", "", "", "", "")
	f.Add(uint32(1<<12|1<<13), "", "", "", "", "", metricsYAML, analysisYAML)
	f.Add(uint32(1<<13), "", "", "", "", "", "", "stepWeight: 0")
	f.Add(uint32(1<<13), "", "", "", "", "", "", "stepWeight: -5\nmaxWeight: 50")
	f.Add(uint32(1<<13), "", "", "", "", "", "", "metrics:\n- name: x\n  thresholdRange: {}\n")
	f.Add(uint32(1<<9|1<<5|1<<14), "", "", "", "1m", "1,5,10,25,50", "", "")
	f.Add(uint32(1<<0|1<<1|1<<2|1<<15), "", "", "istio", "", "", "", "")
	f.Add(uint32(1<<12), "", "", "", "", "", "- name: q\n  query: up\n  thresholdRange: {min: 5, max: 1}\n  abortRange: {min: 9, max: 2}\n", "")
	f.Add(uint32(1<<12), "", "", "", "", "", "- {name: a, thresholdRange: {min: .nan}}", "")
	f.Add(uint32(0xFFFFFFFF), "7", "80", "web", "45s", "10,20", "[]", "{}")

	f.Fuzz(func(t *testing.T, present uint32, num1, num2, name, dur, list, metrics, analysis string) {
		args := []string{num1, num2, name, dur, list, metrics, analysis}
		ann := map[string]string{"app.kubernetes.io/name": "web"}
		for i, k := range fuzzKeys {
			if present&(1<<i) != 0 {
				ann[k.key] = args[k.arg]
			}
		}
		cfg, errs := spec.Parse(ann, catalogtest.Defaults())
		cfg2, errs2 := spec.Parse(ann, catalogtest.Defaults())
		if diff := cmp.Diff(cfg, cfg2); diff != "" {
			t.Fatalf("Parse is not deterministic (-first +second):\n%s", diff)
		}
		if a, b := spec.FormatErrors(errs), spec.FormatErrors(errs2); a != b {
			t.Fatalf("Parse errors are not deterministic:\n first %s\nsecond %s", a, b)
		}
		if len(errs) > 0 {
			if diff := cmp.Diff(spec.Config{}, cfg); diff != "" {
				t.Fatalf("Parse returned a config with errors (-want +got):\n%s", diff)
			}
			for _, e := range errs {
				line := spec.FormatErrors(field1(e))
				if !strings.HasPrefix(e.Field, "sluice.dev/") || !namesPresentKey(ann, e.Field, line) {
					t.Errorf("error %q does not name a sluice.dev/ annotation the Deployment sets (%v)", line, keys(ann))
				}
			}
			return
		}
		checkRunnable(t, cfg)
	})
}

func field1(e *field.Error) field.ErrorList { return field.ErrorList{e} }

// namesPresentKey reports whether an error's field is (a part of) an annotation set in ann, or
// its message names one (a default step weight above a configured max weight).
func namesPresentKey(ann map[string]string, fieldPath, line string) bool {
	for k := range ann {
		if !strings.HasPrefix(k, "sluice.dev/") {
			continue
		}
		if rest, ok := strings.CutPrefix(fieldPath, k); ok && (rest == "" || strings.ContainsAny(rest[:1], " [.")) {
			return true
		}
		if strings.Contains(line, k) {
			return true
		}
	}
	return false
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// checkRunnable asserts the invariants the worker relies on for an accepted configuration.
func checkRunnable(t *testing.T, c spec.Config) {
	t.Helper()
	if c.Strategy != spec.StrategyCanary || c.Router != spec.RouterReplicas {
		t.Errorf("accepted strategy %q router %q", c.Strategy, c.Router)
	}
	if len(c.Steps) == 0 {
		t.Fatalf("accepted a config without steps")
	}
	for i, w := range c.Steps {
		if w < 1 || w > 100 || (i > 0 && w <= c.Steps[i-1]) {
			t.Errorf("accepted steps %v", c.Steps)
			break
		}
	}
	if c.Threshold < 1 || c.Iterations < 1 {
		t.Errorf("accepted threshold %d iterations %d", c.Threshold, c.Iterations)
	}
	if c.Interval.Duration < spec.MinInterval || c.ProgressDeadline.Duration < 10*time.Second {
		t.Errorf("accepted interval %s progress deadline %s", c.Interval.Duration, c.ProgressDeadline.Duration)
	}
	if len(c.Metrics) == 0 {
		t.Errorf("accepted a config without checks")
	}
	seen := map[string]bool{}
	for _, m := range c.Metrics {
		if m.Name == "" || seen[m.Name] {
			t.Errorf("accepted check name %q twice or empty", m.Name)
		}
		seen[m.Name] = true
		if (m.ThresholdRange == nil || m.ThresholdRange.Min == nil && m.ThresholdRange.Max == nil) &&
			(m.AbortRange == nil || m.AbortRange.Min == nil && m.AbortRange.Max == nil) {
			t.Errorf("accepted check %q without any bound", m.Name)
		}
	}
	// The plan is frozen into the state annotation: it must survive the trip.
	st := spec.State{Phase: spec.PhaseProgressing, Plan: &c}
	got, err := spec.ReadState(map[string]string{spec.AnnState: st.Encode()})
	if err != nil {
		t.Fatalf("frozen plan does not decode: %v", err)
	}
	if diff := cmp.Diff(st, got); diff != "" {
		t.Errorf("frozen plan changes on the way through the state annotation (-want +got):\n%s", diff)
	}
}
