package spec_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// FuzzReadState feeds arbitrary text to ReadState as the state annotation: it never panics; a
// value it cannot read is the Idle state with an error naming the annotation (the webhook and
// the worker then treat the Deployment as having no release); a value it reads has a phase and
// survives Encode and ReadState again unchanged, so a state Sluice wrote back is the one it read.
func FuzzReadState(f *testing.F) {
	full := spec.State{
		Phase: spec.PhaseProgressing, Revision: "cccccccccc", Stable: "aaaaaaaaaa", FailedRevision: "bbbbbbbbbb",
		Image: "app=ghcr.io/x/app:v2", Step: 2, Weight: 30, Iteration: 1, FailedChecks: 1, Inconclusive: 2,
		Checks:      []spec.CheckResult{{Name: spec.CheckSuccessRate, Value: ptr(99.9), Verdict: spec.VerdictPass, DryRun: true}},
		CanaryReady: true, AbortReason: "x", Revert: true, PausedFrom: spec.PhaseProgressing, StablePod: "5d8f7c9b6",
		PromoteStep: spec.PromoteShift, StartedAt: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC),
		Message: "analysis passed; weight 30%",
	}
	cfg := config()
	full.Plan = &cfg
	for _, s := range []string{
		"", "{}", "null", `{"phase":""}`, `{"phase":"Whatever"}`, "{not json", `{"phase":1}`,
		`{"phase":"Idle","stepAt":"2026-01-02T03:04:05+05:30"}`, `{"phase":"Failed","plan":{"interval":"x"}}`,
		`{"phase":"Progressing","plan":{"steps":[10,20],"metrics":[{"name":"x","thresholdRange":{"min":1e308}}]}}`,
		`{"phase":"Progressing","checks":[],"plan":{"metrics":null}}`, `{"weight":1e400}`, `{"startedAt":"0000-01-01T00:00:00Z"}`,
		spec.State{Phase: spec.PhaseIdle}.Encode(), full.Encode(),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		ann := map[string]string{spec.AnnState: raw}
		st, err := spec.ReadState(ann)
		if err != nil {
			if diff := cmp.Diff(spec.State{Phase: spec.PhaseIdle}, st); diff != "" {
				t.Errorf("ReadState(%q) failed (%v) but returned a state other than Idle (-want +got):\n%s", raw, err, diff)
			}
			if !strings.Contains(err.Error(), spec.AnnState) {
				t.Errorf("ReadState error %q does not name %s", err, spec.AnnState)
			}
			return
		}
		if st.Phase == "" {
			t.Fatalf("ReadState(%q) returned a state without a phase", raw)
		}
		enc := st.Encode()
		again, err := spec.ReadState(map[string]string{spec.AnnState: enc})
		if err != nil {
			t.Fatalf("ReadState(%q) reads back %q, which does not read: %v", raw, enc, err)
		}
		if enc2 := again.Encode(); enc2 != enc {
			t.Errorf("state changes through Encode and ReadState:\n first %s\nsecond %s", enc, enc2)
		}
	})
}
