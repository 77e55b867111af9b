package spec_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-dev/sluice/providers/catalogtest"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// TestParseErrorOrder: Parse reports every problem, in the order of its sources — unknown keys,
// the analysis block, the flat annotations (traffic, schedule, analysis), then what needs them
// all (steps, checks) — so a denial reads the same for the same manifest, whatever file of the
// parser a check lives in.
func TestParseErrorOrder(t *testing.T) {
	ann := map[string]string{
		"sluice.dev/treshold":    "3",
		spec.AnnAnalysis:         "interval: 1s\nthreshold: 0\n",
		spec.AnnStrategy:         "x",
		spec.AnnPort:             "70000",
		spec.AnnInterval:         "1s",
		spec.AnnIterations:       "0",
		spec.AnnWebhooks:         "- name: x",
		spec.AnnSkipAnalysis:     "maybe",
		spec.AnnStepWeight:       "60",
		spec.AnnMaxWeight:        "50",
		spec.AnnMetrics:          "- name: x\n  query: q\n",
		"app.kubernetes.io/name": "web",
	}
	_, errs := spec.Parse(ann, catalogtest.Defaults())
	var got []string
	for _, e := range errs {
		got = append(got, e.Field)
	}
	want := []string{
		"sluice.dev/treshold",
		"sluice.dev/analysis interval", "sluice.dev/analysis threshold",
		spec.AnnStrategy, spec.AnnPort,
		spec.AnnInterval, spec.AnnIterations,
		"sluice.dev/webhooks[0].url", spec.AnnSkipAnalysis,
		spec.AnnStepWeight, "sluice.dev/metrics[x].thresholdRange",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("error fields (-want +got):\n%s", diff)
	}
}

// TestParseAnalysisBlockUndecodable: a block that does not decode is one error; the fields
// decoded before the bad one are not judged (their errors would only confuse).
func TestParseAnalysisBlockUndecodable(t *testing.T) {
	_, errs := spec.Parse(map[string]string{spec.AnnAnalysis: "interval: 1s\nthreshold: many\n"}, catalogtest.Defaults())
	want := `sluice.dev/analysis: not a valid analysis block: json: cannot unmarshal string into Go struct field analysisBlock.threshold of type int`
	if got := spec.FormatErrors(errs); got != want {
		t.Errorf("FormatErrors() = %q\nwant %q", got, want)
	}
}
