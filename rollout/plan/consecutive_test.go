package plan_test

import (
	"testing"
	"time"

	"github.com/sluice-dev/sluice/rollout/plan"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// A passing run resets the failed-run count only when a check asks for consecutive failures.
func TestConsecutiveFailuresReset(t *testing.T) {
	for name, tc := range map[string]struct {
		consecutive bool
		want        int
	}{
		"cumulative (Flagger's semantics)": {consecutive: false, want: 3},
		"consecutive":                      {consecutive: true, want: 0},
	} {
		t.Run(name, func(t *testing.T) {
			st := atStep(1, func(s *spec.State) {
				s.FailedChecks = 3
				s.Plan = config(func(c *spec.Config) { c.Metrics[0].Consecutive = tc.consecutive })
			})
			d := plan.Plan(plan.Snapshot{
				Name: name, State: st, Parent: parent(), Canary: readyCanary(1),
				Analysis: []spec.CheckResult{pass(spec.CheckSuccessRate, 100), pass(spec.CheckDuration, 20)},
			}, stepAt.Add(time.Minute))
			if d.State.Weight != 30 || d.State.FailedChecks != tc.want {
				t.Errorf("after a passing run: weight %d failedChecks %d, want weight 30 failedChecks %d", d.State.Weight, d.State.FailedChecks, tc.want)
			}
		})
	}
}
