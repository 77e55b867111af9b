package main

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func sampleRun(controller string, n int, p50 float64) summary {
	return summary{
		Controller: controller, N: n, Date: "2026-12-01", Commit: "abc1234", Note: "validation run", Load: 7.5,
		ScheduleSeconds: 30, Done: n,
		Release:    quantiles{Count: n, Min: p50 - 1, P50: p50, P90: p50 + 2, P99: p50 + 3, Max: p50 + 4},
		Start:      quantiles{Count: n, P50: 0.2, P99: 0.9},
		Lag:        quantiles{Count: 3 * n, P50: 0.01, P99: 0.3},
		CPUSeconds: 4, PeakRSSMiB: 60, WindowSeconds: p50 + 4,
		Requests: map[string]float64{"patch deployments": 8, "create deployments": 1, "get /apis": 0.01},
	}
}

func TestMergeReplacesTheSameControllerAndN(t *testing.T) {
	old := results{
		Runs:      []summary{sampleRun("flagger", 10, 80), sampleRun("sluice", 10, 33), sampleRun("sluice", 200, 500)},
		Admission: &admissionResult{Requests: 200},
	}
	next := results{Runs: []summary{sampleRun("sluice", 10, 31), sampleRun("sluice", 50, 34)}}
	got := old.merge(next)
	var keys []string
	for _, s := range got.Runs {
		keys = append(keys, fmt.Sprintf("%s/%d/%g", s.Controller, s.N, s.Release.P50))
	}
	want := []string{"sluice/10/31", "sluice/50/34", "sluice/200/500", "flagger/10/80"}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("merged runs (-want +got):\n%s", diff)
	}
	if got.Admission == nil || got.Admission.Requests != 200 {
		t.Errorf("admission = %+v, want the earlier one kept", got.Admission)
	}
	old.Memory = &memoryResult{Unmanaged: 10000}
	if got := old.merge(next); got.Memory == nil || got.Memory.Unmanaged != 10000 {
		t.Errorf("memory = %+v, want the earlier one kept", got.Memory)
	}
	if got := old.merge(results{Memory: &memoryResult{Unmanaged: 500}}); got.Memory == nil || got.Memory.Unmanaged != 500 {
		t.Errorf("memory = %+v, want the new one", got.Memory)
	}
	if got := old.merge(results{Admission: &admissionResult{Requests: 5}}); got.Admission.Requests != 5 {
		t.Errorf("admission = %+v, want the new one", got.Admission)
	}
}

func TestMergeKeepsRaisedControlPlaneRowsApart(t *testing.T) {
	raised := func(s summary) summary {
		s.ControlPlaneQPS, s.Cluster = 200, map[string]float64{"deployment-controller": 30, "replicaset-controller": 20}
		return s
	}
	old := results{Runs: []summary{sampleRun("sluice", 200, 300), sampleRun("flagger", 200, 325), raised(sampleRun("sluice", 200, 60))}}
	next := results{Runs: []summary{raised(sampleRun("sluice", 200, 50)), raised(sampleRun("flagger", 200, 120))}}
	var keys []string
	for _, s := range old.merge(next).Runs {
		keys = append(keys, fmt.Sprintf("%s/%d/%g", s.series(), s.N, s.Release.P50))
	}
	want := []string{"sluice/200/300", "sluice, control plane 200/s/200/50", "flagger/200/325", "flagger, control plane 200/s/200/120"}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("merged runs (-want +got):\n%s", diff)
	}
	section, err := render(old.merge(next), "x.svg")
	if err != nil {
		t.Fatal(err)
	}
	// The floor divides by the limit the controller-manager ran with.
	if !strings.Contains(section, "| sluice, control plane 200/s | 200 |") {
		t.Errorf("no row for the raised control plane:\n%s", section)
	}
	if !strings.Contains(section, "| 30.0 / 20.0 | 30 |") {
		t.Errorf("the raised control plane's floor is not 200 × 30 / 200 s:\n%s", section)
	}
}

func TestReplaceSection(t *testing.T) {
	tests := map[string]struct{ doc, want string }{
		"appended when missing": {
			doc:  "# Benchmarks\n\n## Admission handler\n\ntext\n",
			want: "# Benchmarks\n\n## Admission handler\n\ntext\n\n## Scale\n\nnew\n",
		},
		"replaced at the end": {
			doc:  "# B\n\n## Scale\n\nold\nold\n",
			want: "# B\n\n## Scale\n\nnew\n",
		},
		"replaced between sections": {
			doc:  "# B\n\n## Scale\n\nold\n### sub\nold\n\n## End to end\n\nkept\n",
			want: "# B\n\n## Scale\n\nnew\n\n## End to end\n\nkept\n",
		},
		"a heading that only starts with Scale is not it": {
			doc:  "# B\n\n## Scaled things\n\nkept\n",
			want: "# B\n\n## Scaled things\n\nkept\n\n## Scale\n\nnew\n",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, replaceSection(tc.doc, "## Scale\n\nnew\n\n")); diff != "" {
				t.Errorf("replaceSection (-want +got):\n%s", diff)
			}
		})
	}
}

// What render writes, existingResults reads back, so a later run keeps the earlier rows.
func TestRenderedResultsReadBack(t *testing.T) {
	r := results{
		Runs: []summary{func() summary {
			s := sampleRun("sluice", 10, 33)
			s.Cluster = map[string]float64{"deployment-controller": 14, "replicaset-controller": 9}
			s.Queue = &queueStats{Reconciles: 150, ReconcileP50: 0.004, ReconcileP99: 0.05, WaitP50: 0.001, WaitP99: 0.1, MaxWorkers: 7, MaxDepth: 12}
			return s
		}(), sampleRun("flagger", 10, 80)},
		Admission: &admissionResult{Date: "2026-12-01", Commit: "abc1234", Requests: 200, Cases: []admissionLatency{{caseNone, 2, 5, 0, 0}, {caseNoop, 3, 7, 0.5, 0}, {caseSluice, 4, 9, 0.8, 0.2}}},
		Memory: &memoryResult{Date: "2026-12-01", Commit: "abc1234", Unmanaged: 10000, Releases: 10,
			Empty: memoryRun{PeakRSSMiB: 50, RSSMiB: 40, Requests: 31}, With: memoryRun{PeakRSSMiB: 52, RSSMiB: 41, Requests: 31}},
	}
	section, err := render(r, "bench-scale.svg")
	if err != nil {
		t.Fatal(err)
	}
	doc := replaceSection("# Benchmarks\n\n## End to end\n\nkept\n", section)
	got, err := existingResults(doc)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, got); diff != "" {
		t.Errorf("read back (-want +got):\n%s", diff)
	}
	for _, want := range []string{
		"![Release time", "(bench-scale.svg)",
		"| sluice | 10 | 10/10 | 1.07× | 1.10× | 1.17× | 1.23× | 2026-12-01, abc1234 | 7.5 | validation run |",
		"| flagger | 10 | 10/10 | 2.63× | 2.67× | 2.73× | 2.80× |",
		"| request | sluice N=10 | flagger N=10 |",
		"| patch deployments | 8.00 | 8.00 |",
		"| other | 0.01 | 0.01 |",
		"| **total** | 9.01 | 9.01 |",
		"| none | 2.00 | 5.00 | 1.00 | 1.00 | – |",
		"| sluice | 4.00 | 9.00 | 2.00 | 1.80 | 0.80 |",
		"Sluice's calls took 0.30 ms more than the no-op's on average; its p50 added\n1.00 ms more",
		"took 0.20 ms per request.",
		"| 9.0 | 14.0 / 9.0 | 7 |",
		"| 10 | 15.0 | 0.004 | 0.050 | 0.001 | 0.1 | 7 | 12 |",
		"no-op 2.00 ms, Sluice 4.00 ms — Sluice's is\n2.00× the no-op's",
		"| empty | 50.0 | 40.0 | 31.0 |",
		"| 10000 unmanaged of each | 52.0 | 41.0 | 31.0 |",
		"| ratio | 1.04 | 1.02 | |",
	} {
		if !strings.Contains(section, want) {
			t.Errorf("section lacks %q:\n%s", want, section)
		}
	}
	if _, err := existingResults("## Scale\n\n<!-- bench-scale data: {broken -->\n"); err == nil {
		t.Error("a broken data comment was read without error")
	}
}

// The API server's per-webhook call totals are read from its histogram, UPDATE admit calls only.
func TestWebhookCallTotals(t *testing.T) {
	raw := []byte(`# HELP apiserver_admission_webhook_admission_duration_seconds x
# TYPE apiserver_admission_webhook_admission_duration_seconds histogram
apiserver_admission_webhook_admission_duration_seconds_bucket{name="a",operation="UPDATE",rejected="false",type="admit",le="+Inf"} 4
apiserver_admission_webhook_admission_duration_seconds_sum{name="a",operation="UPDATE",rejected="false",type="admit"} 0.004
apiserver_admission_webhook_admission_duration_seconds_count{name="a",operation="UPDATE",rejected="false",type="admit"} 4
apiserver_admission_webhook_admission_duration_seconds_bucket{name="a",operation="CREATE",rejected="false",type="admit",le="+Inf"} 9
apiserver_admission_webhook_admission_duration_seconds_sum{name="a",operation="CREATE",rejected="false",type="admit"} 9
apiserver_admission_webhook_admission_duration_seconds_count{name="a",operation="CREATE",rejected="false",type="admit"} 9
`)
	after, err := histogramTotals(raw, webhookMetric, updateAdmits)
	if err != nil {
		t.Fatal(err)
	}
	before := map[string]callTotals{"a": {seconds: 0.001, calls: 1}}
	if got := meanCallMS(before, after, "a"); math.Abs(got-1) > 1e-9 {
		t.Errorf("mean call = %v ms, want 1", got)
	}
	if got := meanCallMS(before, after, "b"); got != 0 {
		t.Errorf("mean call of a webhook never called = %v, want 0", got)
	}
}
