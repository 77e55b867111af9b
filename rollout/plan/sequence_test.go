package plan_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-dev/sluice/rollout/plan"
	"github.com/sluice-dev/sluice/rollout/spec"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// world is a tiny fake cluster for one release: the parent and canary Deployments converge
// the way the Deployment controller would, and the clock advances to the next requeue or the
// next change in the world, whichever comes first (the reconciler is woken by both).
type world struct {
	now      time.Time
	state    spec.State
	parent   plan.Workload
	canary   *plan.Workload
	controls plan.Controls
	config   *spec.Config
	// readyAt is when the canary's current generation becomes available; rollAt when the
	// parent's rolling update moves one more replica.
	readyAt, rollAt time.Time
	// analysis returns the readings of the n-th analysis run (0-based) at weight w.
	analysis func(n, weight int) []spec.CheckResult
	runs     int
	// violations records broken ordering rules.
	violations []string
}

const (
	canaryStartup = 5 * time.Second // a new or scaled canary is available after this
	rollStep      = 3 * time.Second // the parent's rolling update moves one replica per rollStep
)

func newWorld(analysis func(n, weight int) []spec.CheckResult, configure ...func(*spec.Config)) *world {
	cfg := config()
	for _, f := range configure {
		f(cfg)
	}
	return &world{
		now:      t0,
		state:    spec.State{Phase: spec.PhaseProgressing, Revision: rev, Stable: stable, Image: image, StartedAt: t0, Plan: cfg, Message: "held for canary analysis"},
		parent:   parent(),
		config:   cfg,
		analysis: analysis,
	}
}

// step runs one reconcile: snapshot, plan, apply. It returns the decision.
func (w *world) step() plan.Decision {
	var c *plan.Workload
	if w.canary != nil {
		cc := *w.canary
		c = &cc
	}
	s := plan.Snapshot{Name: name, State: w.state, Parent: w.parent, Canary: c, Controls: w.controls, Config: w.config}
	if plan.AnalysisDue(s, w.now) {
		s.Analysis = w.analysis(w.runs, w.state.Weight)
		w.runs++
	}
	// The gatherer reads the ReplicaSets only for the steps that need the pod hash.
	if plan.PodHashNeeded(s) {
		s.Parent.PodHash = "oldpods"
		if !w.parent.Paused {
			s.Parent.PodHash = "newpods"
		}
	}
	d := plan.Plan(s, w.now)

	// The orders of SPEC §4: traffic leaves a version before its pods go away, and an isolated
	// canary has all traffic before the parent rolls.
	route, active := d.State.Routing()
	if d.Canary == plan.CanaryDelete && w.canary != nil && active && (route.Weight > 0 || len(route.Matches) > 0 || route.Mirror > 0) {
		w.violations = append(w.violations, fmt.Sprintf("t+%s: canary deleted while the route sends it %+v", w.now.Sub(t0), route))
	}
	if prev, ok := w.state.Routing(); ok && d.Paused != nil && !*d.Paused && w.parent.Paused && prev.Weight != 100 {
		w.violations = append(w.violations, fmt.Sprintf("t+%s: parent unpaused while the route sends the canary only %+v", w.now.Sub(t0), prev))
	}

	// Apply, as the reconciler would.
	w.state = d.State
	switch d.Canary {
	case plan.CanaryEnsure:
		if w.canary == nil || w.canary.Revision != d.State.Revision || w.canary.Replicas != d.CanaryReplicas {
			if w.canary == nil {
				w.canary = &plan.Workload{}
			}
			w.canary.Revision, w.canary.Replicas = d.State.Revision, d.CanaryReplicas
			w.canary.Generation++
			w.readyAt = w.now.Add(canaryStartup)
		}
	case plan.CanaryDelete:
		w.canary = nil
	}
	if d.Paused != nil && *d.Paused != w.parent.Paused {
		w.parent.Paused = *d.Paused
		w.parent.Generation++
		if !w.parent.Paused {
			w.rollAt = w.now.Add(rollStep)
		}
	}
	for _, k := range d.Clear {
		switch k {
		case spec.AnnPromote:
			w.controls.Promote = ""
		case spec.AnnAbort:
			w.controls.Abort = ""
		case spec.AnnPause:
			w.controls.Pause = ""
		case spec.AnnRetry:
			w.controls.Retry = ""
		}
	}
	return d
}

// advance moves the clock to the next requeue or world change and lets the world converge.
func (w *world) advance(requeue time.Duration) bool {
	var next []time.Time
	if requeue > 0 {
		next = append(next, w.now.Add(requeue))
	}
	if w.canary != nil && w.canary.AvailableReplicas != w.canary.Replicas && w.readyAt.After(w.now) {
		next = append(next, w.readyAt)
	}
	if !w.parent.Paused && w.parent.UpdatedReplicas < w.parent.Replicas && w.rollAt.After(w.now) {
		next = append(next, w.rollAt)
	}
	if w.canary != nil && w.canary.ObservedGeneration != w.canary.Generation && !w.readyAt.After(w.now) {
		next = append(next, w.now)
	}
	if len(next) == 0 {
		return false
	}
	w.now = slices.MinFunc(next, func(a, b time.Time) int { return a.Compare(b) })
	// The Deployment controller.
	if c := w.canary; c != nil {
		c.ObservedGeneration, c.StatusReplicas, c.UpdatedReplicas = c.Generation, c.Replicas, c.Replicas
		c.AvailableReplicas = 0
		if !w.now.Before(w.readyAt) {
			c.AvailableReplicas = c.Replicas
		}
	}
	p := &w.parent
	p.ObservedGeneration = p.Generation
	if !p.Paused && p.UpdatedReplicas < p.Replicas && !w.now.Before(w.rollAt) {
		p.UpdatedReplicas++
		w.rollAt = w.now.Add(rollStep)
	}
	return true
}

// release runs the world until nothing is left to do and renders the sequence.
func (w *world) release(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "# t+offset phase weight canary(available/replicas) parent(paused, updated/replicas) requeue\n")
	for i := 0; ; i++ {
		if i > 500 {
			t.Fatalf("release did not settle after 500 reconciles:\n%s", b.String())
		}
		d := w.step()
		canary := "-"
		if w.canary != nil {
			canary = fmt.Sprintf("%d/%d", w.canary.AvailableReplicas, w.canary.Replicas)
		}
		fmt.Fprintf(&b, "t+%-6s %-11s w=%-3d canary=%-4s parent=(paused=%t %d/%d) canaryAction=%q requeue=%s%s\n",
			w.now.Sub(t0), d.State.Phase, d.State.Weight, canary, w.parent.Paused, w.parent.UpdatedReplicas, w.parent.Replicas, d.Canary, d.RequeueAfter, routing(d.State))
		for _, e := range d.Events {
			fmt.Fprintf(&b, "    %s %s: %s\n", e.Type, e.Reason, e.Message)
		}
		if !w.advance(d.RequeueAfter) {
			break
		}
	}
	fmt.Fprintf(&b, "final state: %s\n", finalState(w.state))
	return b.String()
}

// routing renders what the router is asked to set, for isolated canaries.
func routing(st spec.State) string {
	if st.Plan == nil || !st.Plan.Isolated() {
		return ""
	}
	r, active := st.Routing()
	if !active {
		return " route=reset"
	}
	out := fmt.Sprintf(" route=(canary %d%%", r.Weight)
	if len(r.Matches) > 0 {
		out += fmt.Sprintf(", %d match", len(r.Matches))
	}
	if r.Mirror > 0 {
		out += fmt.Sprintf(", mirror %d%%", r.Mirror)
	}
	return out + ") stable-pinned=" + st.StablePod
}

func finalState(st spec.State) string {
	st.Plan, st.Checks = nil, nil
	return st.Encode()
}

func TestReleaseSequence(t *testing.T) {
	good := func(_, _ int) []spec.CheckResult {
		return []spec.CheckResult{pass(spec.CheckSuccessRate, 99.9), pass(spec.CheckDuration, 120)}
	}
	tests := map[string]struct {
		world *world
		// wantPhase and wantPaused are checked in code too, so a careless -update cannot bless
		// a broken release.
		wantPhase  spec.Phase
		wantPaused bool
	}{
		"good_release": {world: newWorld(good), wantPhase: spec.PhaseSucceeded, wantPaused: false},
		"bad_release_threshold": {
			world: newWorld(func(_, _ int) []spec.CheckResult {
				return []spec.CheckResult{fail(spec.CheckSuccessRate, 95), pass(spec.CheckDuration, 120)}
			}),
			wantPhase: spec.PhaseFailed, wantPaused: true,
		},
		"bad_after_two_steps": {
			world: newWorld(func(n, _ int) []spec.CheckResult {
				if n < 2 {
					return good(n, 0)
				}
				return []spec.CheckResult{pass(spec.CheckSuccessRate, 99.5), fail(spec.CheckDuration, 900)}
			}),
			wantPhase: spec.PhaseFailed, wantPaused: true,
		},
		"gatewayapi_good_release": {world: newWorld(good, mesh), wantPhase: spec.PhaseSucceeded, wantPaused: false},
		"gatewayapi_bad_release": {
			world: newWorld(func(n, _ int) []spec.CheckResult {
				if n < 2 {
					return good(n, 0)
				}
				return []spec.CheckResult{abort(spec.CheckSuccessRate, 50), pass(spec.CheckDuration, 120)}
			}, mesh),
			wantPhase: spec.PhaseFailed, wantPaused: true,
		},
		"bluegreen_good_release":    {world: newWorld(good, mesh, strategy(spec.StrategyBlueGreen)), wantPhase: spec.PhaseSucceeded, wantPaused: false},
		"bluegreen_replicas_router": {world: newWorld(good, strategy(spec.StrategyBlueGreen)), wantPhase: spec.PhaseSucceeded, wantPaused: false},
		"ab_good_release":           {world: newWorld(good, mesh, strategy(spec.StrategyAB)), wantPhase: spec.PhaseSucceeded, wantPaused: false},
		"mirror_bad_release": {
			world: newWorld(func(_, _ int) []spec.CheckResult {
				return []spec.CheckResult{fail(spec.CheckSuccessRate, 90), pass(spec.CheckDuration, 120)}
			}, mesh, strategy(spec.StrategyMirror)),
			wantPhase: spec.PhaseFailed, wantPaused: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := tc.world.release(t)
			if tc.world.state.Phase != tc.wantPhase || tc.world.parent.Paused != tc.wantPaused || tc.world.canary != nil {
				t.Errorf("release ended in %s, parent paused %t, canary %v; want %s, paused %t, no canary",
					tc.world.state.Phase, tc.world.parent.Paused, tc.world.canary, tc.wantPhase, tc.wantPaused)
			}
			for _, v := range tc.world.violations {
				t.Error(v)
			}
			golden(t, filepath.Join("testdata", name+".golden"), got)
		})
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s mismatch (-want +got); run with -update if the change is intended:\n%s", path, diff)
	}
}

// mesh routes through a Gateway API HTTPRoute.
func mesh(c *spec.Config) { c.Router, c.Service = spec.RouterGatewayAPI, name }

func strategy(s spec.Strategy) func(*spec.Config) {
	return func(c *spec.Config) {
		c.Strategy, c.Iterations = s, 3
		switch s {
		case spec.StrategyAB:
			c.Matches = []spec.Match{{Headers: map[string]spec.StringMatch{"x-canary": {Exact: "insider"}}}}
		case spec.StrategyMirror:
			c.MirrorPercent = 100
		}
	}
}
