package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-dev/sluice/rollout/spec"
)

func TestProgressLine(t *testing.T) {
	iterative := inFlight()
	iterative.State.Plan = canaryPlan()
	iterative.State.Plan.Strategy, iterative.State.Plan.Iterations = spec.StrategyBlueGreen, 10
	iterative.State.Iteration, iterative.State.Weight, iterative.State.Checks, iterative.State.Message = 4, 0, nil, ""

	noPlan := Release{Namespace: "shop", Name: "web", State: spec.State{Phase: spec.PhaseRollingBack, Weight: 0, Message: "rolling back: aborted"}}
	for name, tc := range map[string]struct {
		r    Release
		want string
	}{
		"canary step with readings": {r: inFlight(),
			want: "shop/web Progressing [████████████░░░░░░░░] step 3/5 weight 30% failed 1/2 | request-success-rate 99.81 pass, request-duration no data inconclusive | analysis passed; weight 30%"},
		"iterations": {r: iterative,
			want: "shop/web Progressing [████████░░░░░░░░░░░░] iteration 4/10 failed 1/2"},
		"no plan": {r: noPlan, want: "shop/web RollingBack weight 0% | rolling back: aborted"},
	} {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, progressLine(tc.r)); diff != "" {
				t.Errorf("progressLine (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBar(t *testing.T) {
	for _, tc := range []struct {
		done, total int
		want        string
	}{
		{0, 5, "[░░░░░░░░░░░░░░░░░░░░]"},
		{1, 5, "[████░░░░░░░░░░░░░░░░]"},
		{5, 5, "[████████████████████]"},
		{7, 5, "[████████████████████]"},
		{3, 0, "[░░░░░░░░░░░░░░░░░░░░]"},
	} {
		if got := bar(tc.done, tc.total); got != tc.want {
			t.Errorf("bar(%d, %d) = %s, want %s", tc.done, tc.total, got, tc.want)
		}
	}
}

func TestOutcome(t *testing.T) {
	rel := func(template string, st spec.State) Release {
		return Release{Namespace: "shop", Name: "web", Template: template, State: st}
	}
	start, end := t0, t0.Add(75*time.Second)
	for name, tc := range map[string]struct {
		r        Release
		done     bool
		code     int
		wantText string
	}{
		"in flight": {r: inFlight()},
		"promoting": {r: rel("b", spec.State{Phase: spec.PhasePromoting, Revision: "b"})},
		"paused":    {r: rel("b", spec.State{Phase: spec.PhasePaused, Revision: "b"})},
		"promoted": {r: rel("b", spec.State{Phase: spec.PhaseSucceeded, Revision: "b", Image: "app=v2", StartedAt: start, FinishedAt: end}),
			done: true, code: exitOK, wantText: "shop/web: revision b (app=v2) promoted after 1m15s"},
		"rolled back": {r: rel("b", spec.State{Phase: spec.PhaseFailed, Revision: "b", Image: "app=v2", StartedAt: start, FinishedAt: end, Message: "rolled back: 2 failed analysis runs"}),
			done: true, code: exitFailed, wantText: "shop/web: revision b (app=v2) rolled back after 1m15s: rolled back: 2 failed analysis runs"},
		"reverted to stable": {r: rel("a", spec.State{Phase: spec.PhaseIdle, Revision: "b", Stable: "a", Image: "app=v2", Message: "rolled back: the template is the stable revision a again"}),
			done: true, code: exitFailed, wantText: "shop/web: revision b (app=v2) rolled back: rolled back: the template is the stable revision a again"},
		"never released": {r: rel("a", spec.State{Phase: spec.PhaseIdle, Stable: "a", Message: "watching; stable revision a"}),
			done: true, code: exitOK, wantText: "shop/web: no release to watch: revision a is the stable one (watching; stable revision a)"},
		"released without analysis": {r: rel("c", spec.State{Phase: spec.PhaseIdle, Stable: "c", Message: "app=v3 released without analysis"}),
			done: true, code: exitOK, wantText: "shop/web: no release to watch: revision c is the stable one (app=v3 released without analysis)"},
		"restarted after a promotion": {r: rel("c", spec.State{Phase: spec.PhaseSucceeded, Revision: "b", Stable: "c"}),
			done: true, code: exitOK, wantText: "shop/web: no release to watch: revision c is the stable one"},
		"reached the pods without the hold": {r: rel("c", spec.State{Phase: spec.PhaseSucceeded, Revision: "b", Stable: "b", Unanalysed: "c",
			Message: "revision c runs without canary analysis (last analysed stable revision: b)"}),
			done: true, code: exitFailed, wantText: "shop/web: revision c reached the pods without canary analysis (Unanalysed): revision c runs without canary analysis (last analysed stable revision: b)"},
		"first seen, before the worker recorded it": {r: rel("a", spec.State{Phase: spec.PhaseIdle}),
			done: true, code: exitOK, wantText: "shop/web: no release to watch: revision a is the stable one"},
		"an earlier release succeeded, the state is behind the template": {r: rel("c", spec.State{Phase: spec.PhaseSucceeded, Revision: "b", Stable: "b"})},
		"unreadable state": {r: Release{Namespace: "shop", Name: "web", Template: "a", StateError: "parse sluice.dev/state: bad"}},
	} {
		t.Run(name, func(t *testing.T) {
			done, code, text := outcome(tc.r)
			if done != tc.done || done && code != tc.code || text != tc.wantText {
				t.Errorf("outcome = (%v, %d, %q), want (%v, %d, %q)", done, code, text, tc.done, tc.code, tc.wantText)
			}
		})
	}
}

// A CI log gets one line per change; a terminal gets the line redrawn in place.
func TestPrinter(t *testing.T) {
	step1 := inFlight()
	step1.State.Step, step1.State.Weight, step1.State.Checks, step1.State.Message = 0, 10, nil, ""
	step2 := inFlight()
	step2.State.Step, step2.State.Weight, step2.State.Checks, step2.State.Message = 1, 20, nil, ""
	done := inFlight()
	done.State.Phase, done.State.FinishedAt, done.State.StartedAt = spec.PhaseSucceeded, t0, t0.Add(-time.Minute)
	seq := []Release{step1, step1, step2, done}

	lines := "shop/web Progressing [████░░░░░░░░░░░░░░░░] step 1/5 weight 10% failed 1/2\n" +
		"shop/web Progressing [████████░░░░░░░░░░░░] step 2/5 weight 20% failed 1/2\n" +
		"shop/web: revision bbbbbbbbbb (app=demo:v2) promoted after 1m0s\n"
	redrawn := "\r\033[Kshop/web Progressing [████░░░░░░░░░░░░░░░░] step 1/5 weight 10% failed 1/2" +
		"\r\033[Kshop/web Progressing [████████░░░░░░░░░░░░] step 2/5 weight 20% failed 1/2" +
		"\nshop/web: revision bbbbbbbbbb (app=demo:v2) promoted after 1m0s\n"
	for name, tc := range map[string]struct {
		terminal bool
		want     string
	}{
		"not a terminal": {false, lines},
		"terminal":       {true, redrawn},
	} {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			p := &printer{w: &b, terminal: tc.terminal, width: 200}
			for i, r := range seq {
				ended, code := p.update(r)
				if last := i == len(seq)-1; ended != last || last && code != exitOK {
					t.Fatalf("update %d: ended=%v code=%d", i, ended, code)
				}
			}
			if diff := cmp.Diff(tc.want, b.String()); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
		})
	}
}

// On a terminal a line longer than the terminal is cut, so that redrawing it in place works.
func TestPrinterCutsToTheTerminal(t *testing.T) {
	var b bytes.Buffer
	p := &printer{w: &b, terminal: true, width: 41}
	p.update(inFlight())
	want := "\r\033[Kshop/web Progressing [████████████░░░░░…" // 40 characters
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	if got := cut("short", 40); got != "short" {
		t.Errorf("cut of a short line = %q", got)
	}
}
