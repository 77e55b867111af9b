package rollout

import (
	"math"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// seriesOf lists the series of metrics in namespace ns that Sluice's registry serves, as
// "metric{label=value,...}" without the namespace label.
func seriesOf(t *testing.T, ns string) []string {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			var labels []string
			in := false
			for _, l := range m.GetLabel() {
				if l.GetName() == "namespace" {
					in = l.GetValue() == ns
					continue
				}
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			if in {
				out = append(out, mf.GetName()+"{"+strings.Join(labels, ",")+"}")
			}
		}
	}
	slices.Sort(out)
	return out
}

func TestMetricsOfADeploymentAndForget(t *testing.T) {
	ns := "metrics-test"
	plan := &spec.Config{Metrics: []spec.Metric{
		{Name: "request-success-rate", ThresholdRange: &spec.Range{Min: ptr(99.0)}},
		{Name: "request-duration", ThresholdRange: &spec.Range{Max: ptr(500.0)}},
	}}
	for _, name := range []string{"web", "api"} {
		recordState(ns, name, spec.State{Phase: spec.PhaseProgressing, Weight: 20, Plan: plan})
		recordChecks(ns, name, []spec.CheckResult{
			{Name: "request-success-rate", Value: ptr(99.5), Verdict: spec.VerdictPass},
			{Name: "request-duration", Verdict: spec.VerdictInconclusive},
		})
		recordStable(ns, name, "request-success-rate", 100)
		recordStable(ns, name, "request-duration", math.NaN())
	}
	perDeployment := func(name string) []string {
		return []string{
			"sluice_analysis_stable_value{check=request-success-rate,name=" + name + "}",
			"sluice_analysis_threshold{bound=max,check=request-duration,name=" + name + "}",
			"sluice_analysis_threshold{bound=min,check=request-success-rate,name=" + name + "}",
			"sluice_analysis_value{check=request-success-rate,name=" + name + "}",
			"sluice_release_phase{name=" + name + ",phase=Failed}",
			"sluice_release_phase{name=" + name + ",phase=Idle}",
			"sluice_release_phase{name=" + name + ",phase=Paused}",
			"sluice_release_phase{name=" + name + ",phase=Progressing}",
			"sluice_release_phase{name=" + name + ",phase=Promoting}",
			"sluice_release_phase{name=" + name + ",phase=RollingBack}",
			"sluice_release_phase{name=" + name + ",phase=Succeeded}",
			"sluice_release_phase{name=" + name + ",phase=Waiting}",
			"sluice_release_unanalysed{name=" + name + "}",
			"sluice_release_weight{name=" + name + "}",
		}
	}
	want := append(perDeployment("api"), perDeployment("web")...)
	slices.Sort(want)
	if got := seriesOf(t, ns); !slices.Equal(got, want) {
		t.Errorf("series:\n got %q\nwant %q", got, want)
	}

	forget(ns, "web")
	want = perDeployment("api")
	slices.Sort(want)
	if got := seriesOf(t, ns); !slices.Equal(got, want) {
		t.Errorf("after forget(web):\n got %q\nwant %q", got, want)
	}
	forget(ns, "api")
	if got := seriesOf(t, ns); len(got) != 0 {
		t.Errorf("after forget of both: %q", got)
	}
}

// The counters exist at zero from the start, so the first release to end shows in increase().
func TestCountersStartAtZero(t *testing.T) {
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mf := range families {
		if mf.GetName() != "sluice_release_duration_seconds" && mf.GetName() != "sluice_analysis_check_total" && mf.GetName() != "sluice_control_stale_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				got = append(got, mf.GetName()+"{"+l.GetName()+"="+l.GetValue()+"}")
			}
		}
	}
	for _, want := range []string{
		"sluice_release_duration_seconds{phase=Succeeded}", "sluice_release_duration_seconds{phase=Failed}",
		"sluice_analysis_check_total{result=pass}", "sluice_analysis_check_total{result=fail}",
		"sluice_analysis_check_total{result=abort}", "sluice_analysis_check_total{result=inconclusive}",
		"sluice_analysis_check_total{result=error}",
		"sluice_control_stale_total{annotation=sluice.dev/promote}", "sluice_control_stale_total{annotation=sluice.dev/retry}",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("no series %s before any release; have %q", want, got)
		}
	}
}
