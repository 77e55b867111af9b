package spec_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// TestStateRouting pins what a router is asked to set in every phase (SPEC §4): nothing for
// the replicas router; for an isolated canary, all traffic to stable until the canary is ready,
// then what the strategy shows analysis, all of it to the canary from the promotion's shift on,
// back to stable while rolling back, and the user's own object once no release needs it.
func TestStateRouting(t *testing.T) {
	mesh := func(mods ...func(*spec.Config)) *spec.Config {
		c := config(func(c *spec.Config) { c.Router, c.Service, c.Route = spec.RouterGatewayAPI, "web", "web" })
		for _, m := range mods {
			m(&c)
		}
		return &c
	}
	sticky := mesh(func(c *spec.Config) { c.SessionAffinity = &spec.SessionAffinity{CookieName: "canary", MaxAge: 60} })
	ab := mesh(func(c *spec.Config) {
		c.Strategy, c.Matches = spec.StrategyAB, []spec.Match{{Headers: map[string]spec.StringMatch{"x-canary": {Exact: "1"}}}}
	})
	mirror := mesh(func(c *spec.Config) { c.Strategy, c.MirrorPercent = spec.StrategyMirror, 30 })
	blueGreen := mesh(func(c *spec.Config) { c.Strategy = spec.StrategyBlueGreen })
	replicas := config()
	st := func(p spec.Phase, plan *spec.Config, mods ...func(*spec.State)) spec.State {
		s := spec.State{Phase: p, Revision: "rev", Weight: 20, CanaryReady: true, Plan: plan}
		for _, m := range mods {
			m(&s)
		}
		return s
	}
	notReady := func(s *spec.State) { s.CanaryReady = false }
	step := func(p spec.PromoteStep, w int) func(*spec.State) {
		return func(s *spec.State) { s.PromoteStep, s.Weight = p, w }
	}
	tests := map[string]struct {
		st     spec.State
		want   spec.Routing
		active bool
	}{
		"replicas router":                   {st: st(spec.PhaseProgressing, &replicas)},
		"no plan":                           {st: st(spec.PhaseProgressing, nil)},
		"canary not ready: all to stable":   {st: st(spec.PhaseProgressing, mesh(), notReady), active: true},
		"progressing at 20%":                {st: st(spec.PhaseProgressing, mesh()), want: spec.Routing{Weight: 20}, active: true},
		"paused keeps the weight":           {st: st(spec.PhasePaused, mesh()), want: spec.Routing{Weight: 20}, active: true},
		"waiting keeps the weight":          {st: st(spec.PhaseWaiting, mesh()), want: spec.Routing{Weight: 20}, active: true},
		"sticky at 20%":                     {st: st(spec.PhaseProgressing, sticky), want: spec.Routing{Weight: 20, Sticky: &spec.Sticky{Cookie: "canary", Value: "rev", MaxAge: 60}}, active: true},
		"sticky at 1%":                      {st: st(spec.PhaseProgressing, sticky, step("", 1)), want: spec.Routing{Weight: 1, Sticky: &spec.Sticky{Cookie: "canary", Value: "rev", MaxAge: 60}}, active: true},
		"sticky at 0%: no cookie":           {st: st(spec.PhaseProgressing, sticky, step("", 0)), active: true},
		"a/b: the matches":                  {st: st(spec.PhaseProgressing, ab), want: spec.Routing{Matches: ab.Matches}, active: true},
		"mirror: the percent":               {st: st(spec.PhaseProgressing, mirror), want: spec.Routing{Mirror: 30}, active: true},
		"blue/green: no live traffic":       {st: st(spec.PhaseProgressing, blueGreen), active: true},
		"promotion scaling: as analysed":    {st: st(spec.PhasePromoting, ab, step(spec.PromoteScale, 20)), want: spec.Routing{Matches: ab.Matches}, active: true},
		"promotion scaling, not ready":      {st: st(spec.PhasePromoting, mesh(), notReady), active: true},
		"promotion shift: all to canary":    {st: st(spec.PhasePromoting, ab, step(spec.PromoteShift, 100)), want: spec.Routing{Weight: 100}, active: true},
		"promotion cleanup: back to stable": {st: st(spec.PhasePromoting, mesh(), step(spec.PromoteCleanup, 0)), active: true},
		"rolling back: all to stable":       {st: st(spec.PhaseRollingBack, mesh()), active: true},
		"succeeded: the user's object":      {st: st(spec.PhaseSucceeded, mesh())},
		"failed: the user's object":         {st: st(spec.PhaseFailed, mesh())},
		"idle: the user's object":           {st: st(spec.PhaseIdle, mesh())},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, active := tc.st.Routing()
			if diff := cmp.Diff(tc.want, got); diff != "" || active != tc.active {
				t.Errorf("Routing() active %v, want %v (-want +got):\n%s", active, tc.active, diff)
			}
		})
	}
}
