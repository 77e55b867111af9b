package webhook

import (
	"slices"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// Every decision of the table, and every control the webhook may drop, is a series from the start (at zero), so its first occurrence
// shows in rate() and increase().
func TestDecisionSeriesStartAtZero(t *testing.T) {
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mf := range families {
		if mf.GetName() == "sluice_admission_decisions_total" || mf.GetName() == "sluice_control_discarded_total" {
			for _, m := range mf.GetMetric() {
				got = append(got, m.GetLabel()[0].GetValue())
			}
		}
	}
	for _, k := range spec.ControlAnnotations {
		if !slices.Contains(got, k) {
			t.Errorf("no sluice_control_discarded_total{annotation=%q} series; have %q", k, got)
		}
	}
	for _, d := range []Row{RowController, RowNotOptedIn, RowCreate, RowInvalid,
		RowOptOut, RowUnchanged, RowRestart, RowSkip, RowRevert, RowHeldFailed,
		RowHeld, RowReplaced} {
		if !slices.Contains(got, string(d)) {
			t.Errorf("no sluice_admission_decisions_total{decision=%q} series; have %q", d, got)
		}
	}
}
