package spec_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-dev/sluice/rollout/spec"
)

func TestStateRoundTrip(t *testing.T) {
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	plan := config(func(c *spec.Config) {
		c.Metrics = append(c.Metrics, spec.Metric{Name: "errors", Query: "up", AbortRange: &spec.Range{Max: ptr(3.0)}, InconclusiveLimit: 2, DryRun: true})
	})
	tests := map[string]spec.State{
		"idle":             {Phase: spec.PhaseIdle},
		"idle with stable": {Phase: spec.PhaseIdle, Stable: "aaaaaaaaaa", FailedRevision: "bbbbbbbbbb"},
		"progressing, every field": {
			Phase: spec.PhaseProgressing, Revision: "cccccccccc", Stable: "aaaaaaaaaa", FailedRevision: "bbbbbbbbbb",
			Image: "app=ghcr.io/x/app:v2", Step: 2, Weight: 30, Iteration: 1, FailedChecks: 1, Inconclusive: 2,
			Checks: []spec.CheckResult{
				{Name: spec.CheckSuccessRate, Value: ptr(99.9), Verdict: spec.VerdictPass, Reason: "99.9 within [99, +inf]"},
				{Name: "errors", Verdict: spec.VerdictInconclusive, Reason: "no data", DryRun: true},
			},
			CanaryReady: true, AbortReason: "x", Revert: true, PausedFrom: spec.PhaseProgressing,
			StartedAt: t0, StepAt: t0.Add(time.Minute), LastRunAt: t0.Add(2 * time.Minute),
			PromotingAt: t0.Add(3 * time.Minute), FinishedAt: t0.Add(4 * time.Minute),
			Message: "analysis passed; weight 30%", Plan: &plan,
		},
	}
	for name, st := range tests {
		t.Run(name, func(t *testing.T) {
			enc := st.Encode()
			got, err := spec.ReadState(map[string]string{spec.AnnState: enc})
			if err != nil {
				t.Fatalf("ReadState(%s): %v", enc, err)
			}
			if diff := cmp.Diff(st, got); diff != "" {
				t.Errorf("round trip mismatch (-want +got):\n%s", diff)
			}
			if again := got.Encode(); again != enc {
				t.Errorf("Encode is not stable:\n first %s\nsecond %s", enc, again)
			}
		})
	}
}

func TestStateEncodeOmitsZeroTimes(t *testing.T) {
	got := spec.State{Phase: spec.PhaseIdle}.Encode()
	want := `{"phase":"Idle","step":0,"weight":0,"failedChecks":0,"inconclusive":0}`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Encode() mismatch (-want +got):\n%s", diff)
	}
}

func TestReadState(t *testing.T) {
	tests := map[string]struct {
		ann     map[string]string
		want    spec.State
		wantErr string
	}{
		"no annotations":         {ann: nil, want: spec.State{Phase: spec.PhaseIdle}},
		"empty annotation":       {ann: map[string]string{spec.AnnState: ""}, want: spec.State{Phase: spec.PhaseIdle}},
		"phase missing is idle":  {ann: map[string]string{spec.AnnState: `{"stable":"abc"}`}, want: spec.State{Phase: spec.PhaseIdle, Stable: "abc"}},
		"unknown fields ignored": {ann: map[string]string{spec.AnnState: `{"phase":"Failed","future":1}`}, want: spec.State{Phase: spec.PhaseFailed}},
		"not JSON": {
			ann:     map[string]string{spec.AnnState: "{"},
			want:    spec.State{Phase: spec.PhaseIdle},
			wantErr: "parse sluice.dev/state: ",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := spec.ReadState(tc.ann)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("ReadState() error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.wantErr)):
				t.Fatalf("ReadState() error = %v, want prefix %q", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ReadState() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPhase(t *testing.T) {
	type flags struct{ InFlight, Holds bool }
	want := map[spec.Phase]flags{
		spec.PhaseIdle:        {},
		spec.PhaseProgressing: {InFlight: true, Holds: true},
		spec.PhaseWaiting:     {InFlight: true, Holds: true},
		spec.PhasePaused:      {InFlight: true, Holds: true},
		spec.PhasePromoting:   {InFlight: true},
		spec.PhaseSucceeded:   {},
		spec.PhaseRollingBack: {InFlight: true, Holds: true},
		spec.PhaseFailed:      {Holds: true},
		"SomethingNew":        {},
	}
	got := map[spec.Phase]flags{}
	for p := range want {
		got[p] = flags{InFlight: p.InFlight(), Holds: p.Holds()}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("phase flags mismatch (-want +got):\n%s", diff)
	}
}

func TestRoutingSticky(t *testing.T) {
	plan := &spec.Config{Strategy: spec.StrategyCanary, Router: spec.RouterIstio,
		SessionAffinity: &spec.SessionAffinity{CookieName: "s", MaxAge: 60}}
	for _, tc := range []struct {
		name string
		st   spec.State
		want *spec.Sticky
	}{
		{"at a weight", spec.State{Phase: spec.PhaseProgressing, CanaryReady: true, Weight: 20}, &spec.Sticky{Cookie: "s", Value: "rev1", MaxAge: 60}},
		{"before the canary is ready", spec.State{Phase: spec.PhaseProgressing, Weight: 20}, nil},
		{"all traffic moved at promotion", spec.State{Phase: spec.PhasePromoting, PromoteStep: spec.PromoteShift, CanaryReady: true, Weight: 100}, nil},
		{"rolling back", spec.State{Phase: spec.PhaseRollingBack, CanaryReady: true, Weight: 20}, nil},
	} {
		tc.st.Plan, tc.st.Revision = plan, "rev1"
		r, _ := tc.st.Routing()
		if !cmp.Equal(r.Sticky, tc.want) {
			t.Errorf("%s: Sticky = %+v, want %+v", tc.name, r.Sticky, tc.want)
		}
	}
	if got, want := (spec.Sticky{Cookie: "s", Value: "rev1", MaxAge: 60}).SetCookie(), "s=rev1; Max-Age=60; Path=/"; got != want {
		t.Errorf("SetCookie() = %q, want %q", got, want)
	}
}
