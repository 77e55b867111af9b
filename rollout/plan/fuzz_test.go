package plan_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-dev/sluice/rollout/plan"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// FuzzPlan plans random snapshots (any phase, counters, timestamps, parent and canary status,
// controls and readings, under several configurations) and checks the promise Sluice is trusted
// for, not only that nothing panics: a release held for analysis is never promoted, and its
// parent never released, unless this run's analysis passed at the last step (or iteration) or
// a promote control names the release's revision. Plan is also deterministic and leaves its
// input alone, and Succeeded is recorded only for a parent rolled out to the release.
func FuzzPlan(f *testing.F) {
	f.Add([]byte{})
	// A release at its last step, canary ready, the parent held.
	last := func(more map[string]int) map[string]int {
		m := map[string]int{"phase": 1, "step": 4, "canaryReady": 1, "parentPaused": 1, "parentReplicas": 3,
			"canaryExists": 1, "canaryReplicas": 3, "canaryUpdatedReplicas": 3, "canaryAvailableReplicas": 3,
			"lastRunAtAgo": 120, "stepAtAgo": 120, "configValid": 1}
		for k, v := range more {
			m[k] = v
		}
		return m
	}
	for promote := range len(fuzzControls) {
		f.Add(seedBytes(last(map[string]int{"promote": promote})))
		f.Add(seedBytes(last(map[string]int{"promote": promote, "step": 1})))
	}
	for v := range len(fuzzVerdicts) {
		for dry := range 2 {
			for step := range 2 {
				// At 40 % the canary is 2 replicas beside the parent's 3.
				n := 2 + step
				f.Add(seedBytes(last(map[string]int{"analysisRan": 1, "checks": 2, "verdict1": v, "dryRun1": dry, "step": 3 + step,
					"canaryReplicas": n, "canaryUpdatedReplicas": n, "canaryAvailableReplicas": n})))
			}
		}
	}
	for phase := range len(fuzzPhases) {
		for cfg := range len(fuzzConfigs) {
			for ps := range len(fuzzPromoteSteps) {
				f.Add(seedBytes(last(map[string]int{"phase": phase, "config": cfg, "promoteStep": ps, "analysisRan": 1, "checks": 1, "iteration": 3})))
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, now := fuzzSnapshot(&bytesReader{b: data})
		before := s.State.Encode()
		d := plan.Plan(s, now)
		if after := s.State.Encode(); after != before {
			t.Fatalf("Plan modified its input state:\nbefore %s\n after %s", before, after)
		}
		if diff := cmp.Diff(d, plan.Plan(s, now)); diff != "" {
			t.Fatalf("Plan is not deterministic (-first +second):\n%s", diff)
		}
		if msg := violation(s, now, d); msg != "" {
			t.Fatalf("%s\nsnapshot: %s\ncontrols %+v, analysis %+v, parent %+v, canary %+v\ndecision state: %s, paused %v",
				msg, s.State.Encode(), s.Controls, s.Analysis, s.Parent, s.Canary, d.State.Encode(), fmtPaused(d.Paused))
		}
	})
}

// violation says how decision d for snapshot s breaks the promotion invariant ("" when it
// does not).
func violation(s plan.Snapshot, now time.Time, d plan.Decision) string {
	in, out := s.State, d.State
	unpaused := d.Paused != nil && !*d.Paused
	if out.Phase == spec.PhaseSucceeded && in.Phase != spec.PhaseSucceeded {
		if in.Phase != spec.PhasePromoting || s.Parent.Revision != in.Revision || s.Parent.Paused {
			return fmt.Sprintf("Succeeded recorded from %s with the parent at %s (paused %v) for release %s", in.Phase, s.Parent.Revision, s.Parent.Paused, in.Revision)
		}
	}
	if in.Phase == spec.PhasePromoting {
		// An isolated promotion releases the parent only once all traffic is on the canary.
		if in.Plan != nil && in.Plan.Isolated() && unpaused {
			switch in.PromoteStep {
			case spec.PromoteScale:
				return "an isolated promotion unpaused the parent before the canary took all traffic"
			case spec.PromoteShift:
				if out.PromoteStep != spec.PromoteRollout || now.Before(in.StepAt) {
					return "an isolated promotion unpaused the parent before the traffic shift settled"
				}
			}
		}
		return ""
	}
	promoted := out.Phase == spec.PhasePromoting
	if (promoted || unpaused && in.Holds()) && !justified(s) {
		if unpaused && !promoted && in.Phase == spec.PhaseRollingBack && in.Revert && out.Phase == spec.PhaseIdle {
			return "" // the template is the stable one again: releasing the hold changes no pod
		}
		what := "entered Promoting"
		if !promoted {
			what = "unpaused the parent"
		}
		return fmt.Sprintf("%s from %s without a passing analysis at the last step or an approval of revision %q", what, in.Phase, in.Revision)
	}
	return ""
}

// justified: the run's analysis passed at the last step (or iteration) — its checks and its
// rollout hooks — or a promote control names the release's revision (progressing, or waiting
// at a gate, where analysis goes on).
func justified(s plan.Snapshot) bool {
	st := s.State
	stepping := st.Phase == spec.PhaseProgressing || st.Phase == spec.PhaseWaiting
	if st.Revision != "" && s.Controls.Promote == st.Revision && stepping {
		return true
	}
	if s.Analysis == nil || st.Plan == nil || !stepping {
		return false
	}
	for _, r := range s.Analysis {
		if !r.DryRun && r.Verdict != spec.VerdictPass {
			return false
		}
	}
	for _, r := range s.Hooks[spec.HookRollout] {
		if !r.Passed() {
			return false
		}
	}
	if st.Plan.Iterative() {
		return st.Iteration+1 >= st.Plan.Iterations
	}
	return st.Step+1 >= len(st.Plan.Steps)
}

func fmtPaused(p *bool) string {
	if p == nil {
		return "unchanged"
	}
	return fmt.Sprint(*p)
}

var fuzzPhases = []spec.Phase{
	spec.PhaseIdle, spec.PhaseProgressing, spec.PhaseWaiting, spec.PhasePaused, spec.PhasePromoting,
	spec.PhaseSucceeded, spec.PhaseRollingBack, spec.PhaseFailed, "Whatever",
}

// fuzzConfigs are release configurations the webhook can freeze into a state.
var fuzzConfigs = []*spec.Config{
	config(),
	config(func(c *spec.Config) { c.Steps, c.Threshold = []int{5, 50}, 1 }),
	config(mesh, func(c *spec.Config) { c.Route = name }),
	config(mesh, strategy(spec.StrategyBlueGreen)),
	config(strategy(spec.StrategyBlueGreen)),
	config(mesh, strategy(spec.StrategyAB)),
	config(mesh, strategy(spec.StrategyMirror)),
	config(func(c *spec.Config) {
		c.Metrics[0].InconclusiveLimit, c.Metrics[1].DryRun, c.Metrics[1].Consecutive = 2, true, true
	}),
}

var fuzzPromoteSteps = []spec.PromoteStep{spec.PromoteScale, spec.PromoteShift, spec.PromoteRollout, spec.PromoteCleanup, "bogus"}

var fuzzVerdicts = []spec.Verdict{spec.VerdictPass, spec.VerdictFail, spec.VerdictAbort, spec.VerdictInconclusive, spec.VerdictError}

// fuzzSnapshot builds a snapshot and a time from named choices. Every choice is made on every
// call, in the same order, so a seed can name the values it wants (seedBytes).
func fuzzSnapshot(p picker) (plan.Snapshot, time.Time) {
	now := t0.Add(time.Hour)
	ago := func(field string) time.Time {
		zero, secs := p.pick(field+"Zero", 2) == 1, p.pick(field+"Ago", 3600)
		if zero {
			return time.Time{}
		}
		return now.Add(-time.Duration(secs) * time.Second)
	}
	flag := func(field string) bool { return p.pick(field, 2) == 1 }
	revs := []string{rev, stable, "otherrev01", ""}

	st := spec.State{Phase: fuzzPhases[p.pick("phase", len(fuzzPhases))]}
	cfg := fuzzConfigs[p.pick("config", len(fuzzConfigs))]
	st.Plan = cfg
	st.Revision, st.Stable, st.Image = rev, stable, image
	st.Step = p.pick("step", len(cfg.Steps))
	st.Weight = cfg.Steps[st.Step]
	if anyWeight, w := flag("anyWeight"), p.pick("weight", 101); anyWeight {
		st.Weight = w
	}
	st.Iteration = p.pick("iteration", cfg.Iterations+1)
	st.FailedChecks = p.pick("failedChecks", cfg.Threshold+1)
	st.Inconclusive = p.pick("inconclusive", spec.DefaultInconclusiveLimit+1)
	st.CanaryReady = flag("canaryReady")
	if flag("abortReason") {
		st.AbortReason = "aborted"
	}
	st.Revert = flag("revert")
	st.PausedFrom = []spec.Phase{"", spec.PhaseProgressing, spec.PhaseWaiting}[p.pick("pausedFrom", 3)]
	if flag("stablePod") {
		st.StablePod = "oldpods"
	}
	st.PromoteStep = fuzzPromoteSteps[p.pick("promoteStep", len(fuzzPromoteSteps))]
	st.StartedAt, st.StepAt, st.LastRunAt, st.PromotingAt = ago("startedAt"), ago("stepAt"), ago("lastRunAt"), ago("promotingAt")
	if failed, r := flag("failedRevisionSet"), revs[p.pick("failedRevision", len(revs))]; failed {
		st.FailedRevision = r
	}
	if flag("noPlan") {
		st.Plan = nil // a state written without a plan
	}

	workload := func(prefix string) plan.Workload {
		w := plan.Workload{
			Revision: revs[p.pick(prefix+"Revision", len(revs))],
			PodHash:  []string{"", "oldpods", "newpods"}[p.pick(prefix+"PodHash", 3)],
			Paused:   flag(prefix + "Paused"),
		}
		w.Generation = int64(p.pick(prefix+"Generation", 3))
		w.ObservedGeneration = int64(p.pick(prefix+"ObservedGeneration", 3))
		w.Replicas = int32(p.pick(prefix+"Replicas", 5))
		w.StatusReplicas = int32(p.pick(prefix+"StatusReplicas", 6))
		w.UpdatedReplicas = int32(p.pick(prefix+"UpdatedReplicas", 6))
		w.AvailableReplicas = int32(p.pick(prefix+"AvailableReplicas", 6))
		return w
	}
	s := plan.Snapshot{Name: name, State: st, Parent: workload("parent")}
	if c, exists := workload("canary"), flag("canaryExists"); exists {
		s.Canary = &c
	}
	control := func(field string) string { return fuzzControls[p.pick(field, len(fuzzControls))] }
	s.Controls = plan.Controls{Promote: control("promote"), Abort: control("abort"), Pause: control("pause"), Retry: control("retry")}
	if valid, c := flag("configValid"), fuzzConfigs[p.pick("retryConfig", len(fuzzConfigs))]; valid {
		s.Config = c
	} else {
		s.ConfigErr = "invalid"
	}
	if flag("routingErr") {
		s.RoutingErr = "HTTPRoute web not found"
	}
	ran, n := flag("analysisRan"), p.pick("checks", 4)
	var results []spec.CheckResult
	for i := range 3 {
		v := 99.5
		results = append(results, spec.CheckResult{
			Name: fmt.Sprintf("check-%d", i), Value: &v, Verdict: fuzzVerdicts[p.pick(fmt.Sprintf("verdict%d", i), len(fuzzVerdicts))],
			Reason: "reading", DryRun: flag(fmt.Sprintf("dryRun%d", i)),
		})
	}
	if ran {
		s.Analysis = append([]spec.CheckResult{}, results[:n]...)
	}
	now = now.Add(time.Duration(p.pick("nowMillis", 1000)) * time.Millisecond)
	return s, now
}

var fuzzControls = []string{"", "true", rev, "otherrev01"}

// picker makes the named choice in [0, n).
type picker interface {
	pick(field string, n int) int
}

// bytesReader picks from the fuzzer's bytes (zeros once they run out).
type bytesReader struct{ b []byte }

func (r *bytesReader) byte() int {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return int(c)
}

func (r *bytesReader) pick(_ string, n int) int {
	v := r.byte()
	if n > 256 {
		v = v<<8 | r.byte()
	}
	if n <= 1 {
		return 0
	}
	return v % n
}

// seedWriter picks the values a seed names (0 for the others) and records the bytes that make
// bytesReader pick the same.
type seedWriter struct {
	want map[string]int
	out  []byte
	used map[string]bool
}

func (w *seedWriter) pick(field string, n int) int {
	v := w.want[field] % max(n, 1) // a step beyond a short plan's steps is its last one
	if v != w.want[field] && field == "step" {
		v = n - 1
	}
	w.used[field] = true
	if n > 256 {
		w.out = append(w.out, byte(v>>8))
	}
	w.out = append(w.out, byte(v))
	return v
}

// seedBytes is the fuzz input that builds the snapshot with the named choices.
func seedBytes(want map[string]int) []byte {
	w := &seedWriter{want: want, used: map[string]bool{}}
	fuzzSnapshot(w)
	for k := range want {
		if !w.used[k] {
			panic("seed names an unknown choice " + k)
		}
	}
	return w.out
}
