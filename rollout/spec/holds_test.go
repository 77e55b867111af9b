package spec_test

import (
	"testing"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// TestHolds: the parent stays paused in every holding phase and, for an isolated canary,
// until its promotion has moved all traffic to the canary and settled (scale and shift): an
// unpause during the shift would roll the parent while the old routing may still send it
// traffic. From the rollout step on, the parent must be free to roll.
func TestHolds(t *testing.T) {
	replicas := config()
	isolated := config(func(c *spec.Config) { c.Router, c.Service, c.Route = spec.RouterGatewayAPI, "web", "web" })
	tests := map[string]struct {
		st   spec.State
		want bool
	}{
		"idle":                             {st: spec.State{Phase: spec.PhaseIdle}, want: false},
		"succeeded":                        {st: spec.State{Phase: spec.PhaseSucceeded, Plan: &isolated}, want: false},
		"progressing":                      {st: spec.State{Phase: spec.PhaseProgressing, Plan: &replicas}, want: true},
		"waiting":                          {st: spec.State{Phase: spec.PhaseWaiting, Plan: &replicas}, want: true},
		"paused":                           {st: spec.State{Phase: spec.PhasePaused, Plan: &replicas}, want: true},
		"rolling back":                     {st: spec.State{Phase: spec.PhaseRollingBack, Plan: &replicas}, want: true},
		"failed":                           {st: spec.State{Phase: spec.PhaseFailed, Plan: &replicas}, want: true},
		"promoting, replicas router":       {st: spec.State{Phase: spec.PhasePromoting, Plan: &replicas}, want: false},
		"promoting without a plan":         {st: spec.State{Phase: spec.PhasePromoting}, want: false},
		"isolated promotion: scale":        {st: spec.State{Phase: spec.PhasePromoting, Plan: &isolated, PromoteStep: spec.PromoteScale}, want: true},
		"isolated promotion: shift":        {st: spec.State{Phase: spec.PhasePromoting, Plan: &isolated, PromoteStep: spec.PromoteShift}, want: true},
		"isolated promotion: rollout":      {st: spec.State{Phase: spec.PhasePromoting, Plan: &isolated, PromoteStep: spec.PromoteRollout}, want: false},
		"isolated promotion: cleanup":      {st: spec.State{Phase: spec.PhasePromoting, Plan: &isolated, PromoteStep: spec.PromoteCleanup}, want: false},
		"isolated, progressing":            {st: spec.State{Phase: spec.PhaseProgressing, Plan: &isolated, PromoteStep: spec.PromoteRollout}, want: true},
		"shift step left over, not moving": {st: spec.State{Phase: spec.PhaseSucceeded, Plan: &isolated, PromoteStep: spec.PromoteShift}, want: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tc.st.Holds(); got != tc.want {
				t.Errorf("Holds() = %v, want %v", got, tc.want)
			}
		})
	}
}
