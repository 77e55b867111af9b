package webhook_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"

	"github.com/sluice-dev/sluice/providers/catalogtest"
	"github.com/sluice-dev/sluice/rollout/spec"
	"github.com/sluice-dev/sluice/webhook"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// verdict is what a golden file records of one decision.
type verdict struct {
	Decision webhook.Row  `json:"decision"`
	Allowed  bool         `json:"allowed"`
	Denial   string       `json:"denial,omitempty"`
	Warnings []string     `json:"warnings,omitempty"`
	Events   []spec.Event `json:"events,omitempty"`
	// Mutated says whether the object is stored other than as sent.
	Mutated bool `json:"mutated"`
	// Paused and State are the stored object's spec.paused and decoded sluice.dev/state.
	Paused bool        `json:"paused"`
	State  *spec.State `json:"state,omitempty"`
	// StateRaw is the stored state annotation when it does not decode.
	StateRaw string `json:"stateRaw,omitempty"`
}

func TestDecide(t *testing.T) {
	web := func() *deployment { return testDeployment("web") }
	inFlight := release(spec.PhaseProgressing)
	failed := release(spec.PhaseFailed, func(s *spec.State) {
		s.FailedRevision, s.Weight, s.CanaryReady, s.FailedChecks = hashOf("v2"), 0, false, 5
		s.AbortReason, s.FinishedAt = "5 failed analysis runs reached the threshold of 5", now.Add(-time.Minute)
		s.Message = "rolled back: 5 failed analysis runs reached the threshold of 5"
	})
	tests := map[string]struct {
		in webhook.Input
	}{
		// Who writes, and whether Sluice cares.
		"controller_identity": {in: update_(web().Image("v1"), web().Image("v2").Paused(false).Annotate(spec.AnnMaxWeight, "150"), func(in *webhook.Input) { in.FromController = true })},
		"not_opted_in":        {in: update_(web().OptOut().Image("v1"), web().OptOut().Image("v2").Annotate(spec.AnnMaxWeight, "150"))},

		// CREATE.
		"create_valid":                       {in: create(web().Annotate(spec.AnnStepWeights, "5,25,50"))},
		"create_invalid":                     {in: create(web().Annotate(spec.AnnMaxWeight, "150"))},
		"create_with_forged_state":           {in: create(web().State(release(spec.PhaseSucceeded)))},
		"create_not_opted_in_invalid_config": {in: create(web().OptOut().Annotate(spec.AnnMaxWeight, "150"))},

		// Template unchanged.
		"unchanged_scale_idle": {in: update_(web(), web().Replicas(5))},
		"unchanged_scale_in_flight": {
			in: update_(web().Image("v2").Paused(true).State(inFlight), web().Image("v2").Paused(true).State(inFlight).Replicas(5)),
		},
		"unchanged_in_flight_paused_false_reasserted": {
			in: update_(web().Image("v2").Paused(true).State(inFlight), web().Image("v2").Paused(false).State(inFlight).Label("team", "shop")),
		},
		"unchanged_failed_paused_false_reasserted": {
			in: update_(web().Image("v2").Paused(true).State(failed), web().Image("v2").Paused(false).State(failed)),
		},
		// A promotion that ran out of time is Failed with the parent unpaused: a scale must not
		// re-pause (and freeze) the half-finished rolling update.
		"unchanged_failed_after_promotion_not_repaused": {
			in: update_(web().Image("v2").Paused(false).State(failed), web().Image("v2").Paused(false).State(failed).Replicas(5)),
		},
		"unchanged_promoting_not_reasserted": {
			in: update_(web().Image("v2").State(release(spec.PhasePromoting)), web().Image("v2").State(release(spec.PhasePromoting)).Replicas(5)),
		},
		"reapply_same_template_in_flight_is_a_noop": {
			in: update_(web().Image("v2").Paused(true).State(inFlight), web().Image("v2").Paused(true).State(inFlight)),
		},

		// kubectl rollout restart.
		"restart_outside_a_release": {
			in: update_(web(), web().Restarted("2026-05-01T11:59:00Z"), restartBypass),
		},
		"restart_after_success": {
			in: update_(web().Image("v2").State(release(spec.PhaseSucceeded)), web().Image("v2").State(release(spec.PhaseSucceeded)).Restarted("2026-05-01T11:59:00Z"), restartBypass),
		},
		"restart_of_the_stable_template_stays_stable": {
			in: update_(web().Image("v2").State(release(spec.PhaseSucceeded, func(s *spec.State) { s.Stable = hashOf("v2") })),
				web().Image("v2").State(release(spec.PhaseSucceeded, func(s *spec.State) { s.Stable = hashOf("v2") })).Restarted("2026-05-01T11:59:00Z"), restartBypass),
		},
		"restart_without_bypass_is_held": {
			in: update_(web(), web().Restarted("2026-05-01T11:59:00Z")),
		},
		"restart_in_flight_is_a_new_release": {
			in: update_(web().Image("v2").Paused(true).State(inFlight), web().Image("v2").Paused(true).State(inFlight).Restarted("2026-05-01T11:59:00Z"), restartBypass),
		},

		// Break glass.
		"skip_analysis_idle": {
			in: update_(web(), web().Image("v2").Annotate(spec.AnnSkipAnalysis, "true")),
		},
		"skip_analysis_in_flight_unpauses": {
			in: update_(web().Image("v2").Paused(true).State(inFlight), web().Image("v3").Paused(true).State(inFlight).Annotate(spec.AnnSkipAnalysis, "true")),
		},
		"skip_analysis_false_is_held": {
			in: update_(web(), web().Image("v2").Annotate(spec.AnnSkipAnalysis, "false")),
		},

		// Back to the stable template.
		"revert_to_stable_in_flight": {
			in: update_(web().Image("v2").Paused(true).State(inFlight), web().Image("v1").Paused(true).State(inFlight)),
		},
		"revert_to_stable_while_paused": {
			in: update_(web().Image("v2").Paused(true).State(release(spec.PhasePaused)), web().Image("v1").Paused(true).State(release(spec.PhasePaused))),
		},
		"revert_to_stable_while_promoting": {
			in: update_(web().Image("v2").State(release(spec.PhasePromoting)), web().Image("v1").State(release(spec.PhasePromoting))),
		},
		"revert_to_stable_when_failed_unpauses_to_idle": {
			in: update_(web().Image("v2").Paused(true).State(failed), web().Image("v1").Paused(true).State(failed)),
		},

		// The last failed template.
		"last_failed_template_while_another_is_in_flight_held_failed": {
			in: update_(
				web().Image("v3").Paused(true).State(release(spec.PhaseProgressing, func(s *spec.State) { s.Revision, s.FailedRevision = hashOf("v3"), hashOf("v2") })),
				web().Image("v2").Paused(true).State(release(spec.PhaseProgressing, func(s *spec.State) { s.Revision, s.FailedRevision = hashOf("v3"), hashOf("v2") })),
			),
		},
		"last_failed_template_while_rolling_back_held_failed": {
			in: update_(
				web().Image("v3").Paused(true).State(release(spec.PhaseRollingBack, func(s *spec.State) { s.Revision, s.FailedRevision = hashOf("v3"), hashOf("v2") })),
				web().Image("v2").Paused(true).State(release(spec.PhaseRollingBack, func(s *spec.State) { s.Revision, s.FailedRevision = hashOf("v3"), hashOf("v2") })),
			),
		},
		"last_failed_template_after_a_revert_is_a_new_release": {
			in: update_(
				web().State(spec.State{Phase: spec.PhaseIdle, Stable: hashOf("v1"), FailedRevision: hashOf("v2")}),
				web().Image("v2").State(spec.State{Phase: spec.PhaseIdle, Stable: hashOf("v1"), FailedRevision: hashOf("v2")}),
			),
		},

		// Held.
		"new_template_held": {in: update_(web(), web().Image("v2"))},
		"new_template_held_with_frozen_config": {
			in: update_(web(), web().Image("v2").Annotate(spec.AnnStepWeights, "1,5,25").Annotate(spec.AnnInterval, "30s")),
		},
		"new_template_held_after_success": {
			in: update_(web().Image("v2").State(release(spec.PhaseSucceeded, func(s *spec.State) { s.Stable = hashOf("v2") })),
				web().Image("v3").State(release(spec.PhaseSucceeded, func(s *spec.State) { s.Stable = hashOf("v2") }))),
		},
		"new_template_held_after_failure_keeps_stable": {
			in: update_(web().Image("v2").Paused(true).State(failed), web().Image("v3").Paused(true).State(failed)),
		},
		"new_template_on_opt_in": {
			in: update_(web().OptOut(), web().Image("v2")),
		},
		"new_template_with_unreadable_state_is_held": {
			in: update_(web().Annotate(spec.AnnState, "{not json"), web().Image("v2").Annotate(spec.AnnState, "{not json")),
		},
		"replaced_in_flight": {
			in: update_(web().Image("v2").Paused(true).State(inFlight), web().Image("v3").Paused(true).State(inFlight)),
		},
		"replaced_while_paused": {
			in: update_(web().Image("v2").Paused(true).State(release(spec.PhasePaused)), web().Image("v3").Paused(true).State(release(spec.PhasePaused))),
		},
		"replaced_while_promoting": {
			in: update_(web().Image("v2").State(release(spec.PhasePromoting)), web().Image("v3").State(release(spec.PhasePromoting))),
		},
		"new_template_while_rolling_back": {
			in: update_(web().Image("v2").Paused(true).State(release(spec.PhaseRollingBack)), web().Image("v3").Paused(true).State(release(spec.PhaseRollingBack))),
		},

		// Sluice's own state.
		"state_edited_by_foreign_write_restored": {
			in: update_(web().Image("v2").Paused(true).State(inFlight),
				web().Image("v2").Paused(true).State(release(spec.PhaseSucceeded, func(s *spec.State) { s.Stable = hashOf("v2") }))),
		},
		"state_dropped_by_replace_restored_and_paused_reasserted": {
			in: update_(web().Image("v2").Paused(true).State(inFlight), web().Image("v2")),
		},
		"state_forged_on_update_removed": {
			in: update_(web(), web().State(release(spec.PhaseSucceeded))),
		},
		"state_forged_with_a_template_change_is_replaced_by_the_release": {
			in: update_(web(), web().Image("v2").State(release(spec.PhaseFailed))),
		},

		// Opting out.
		"opt_out_in_flight_unpauses_and_drops_state": {
			in: update_(web().Image("v2").Paused(true).State(inFlight), web().Image("v2").Paused(true).State(inFlight).OptOut()),
		},
		"opt_out_by_replace_without_state": {
			in: update_(web().Image("v2").Paused(true).State(inFlight), web().Image("v2").Paused(true).OptOut()),
		},
		"opt_out_when_failed_unpauses": {
			in: update_(web().Image("v2").Paused(true).State(failed), web().Image("v2").Paused(true).State(failed).OptOut()),
		},
		"opt_out_idle_keeps_a_users_pause": {
			in: update_(web().Paused(true).State(release(spec.PhaseSucceeded)), web().Paused(true).State(release(spec.PhaseSucceeded)).OptOut()),
		},
		"opt_out_while_promoting": {
			in: update_(web().Image("v2").State(release(spec.PhasePromoting)), web().Image("v2").State(release(spec.PhasePromoting)).OptOut()),
		},
		"opt_out_with_invalid_config_is_allowed": {
			in: update_(web().Annotate(spec.AnnMaxWeight, "150"), web().Annotate(spec.AnnMaxWeight, "150").OptOut()),
		},

		// Manual controls name the revision they act on (SPEC §4).
		"control_promote_true_refused": {
			in: update_(web().Image("v2").Paused(true).State(inFlight), web().Image("v2").Paused(true).State(inFlight).Annotate(spec.AnnPromote, "true")),
		},
		"control_abort_true_refused_on_create": {
			in: create(web().Annotate(spec.AnnAbort, "true")),
		},
		"control_on_create_dropped": {
			in: create(web().Annotate(spec.AnnPromote, hashOf("v1"))),
		},
		"control_promote_in_flight_revision_kept": {
			in: update_(web().Image("v2").Paused(true).State(inFlight), web().Image("v2").Paused(true).State(inFlight).Annotate(spec.AnnPromote, hashOf("v2"))),
		},
		"control_promote_naming_an_old_revision_dropped": {
			in: update_(web().Image("v2").Paused(true).State(inFlight), web().Image("v2").Paused(true).State(inFlight).Annotate(spec.AnnPromote, hashOf("v0"))),
		},
		"control_leftover_promote_true_dropped_when_a_release_is_held": {
			in: update_(web().State(release(spec.PhaseSucceeded, func(s *spec.State) { s.Stable = hashOf("v1") })).Annotate(spec.AnnPromote, "true"),
				web().Image("v2").State(release(spec.PhaseSucceeded, func(s *spec.State) { s.Stable = hashOf("v1") })).Annotate(spec.AnnPromote, "true")),
		},
		"control_approval_of_the_replaced_release_dropped": {
			in: update_(web().Image("v2").Paused(true).State(inFlight).Annotate(spec.AnnPromote, hashOf("v2")).Annotate(spec.AnnPause, hashOf("v2")),
				web().Image("v3").Paused(true).State(inFlight).Annotate(spec.AnnPromote, hashOf("v2")).Annotate(spec.AnnPause, hashOf("v2"))),
		},
		"control_approval_naming_the_held_template_kept": {
			in: update_(web(), web().Image("v2").Annotate(spec.AnnPromote, hashOf("v2"))),
		},
		"control_retry_of_the_failed_revision_kept": {
			in: update_(web().Image("v2").Paused(true).State(failed), web().Image("v2").Paused(true).State(failed).Annotate(spec.AnnRetry, hashOf("v2"))),
		},
		"control_idle_abort_dropped": {
			in: update_(web().State(release(spec.PhaseSucceeded)), web().State(release(spec.PhaseSucceeded)).Annotate(spec.AnnAbort, hashOf("v2"))),
		},

		// Invalid configuration.
		"cross_namespace_template_refused": {
			in: update_(web(), web().Image("v2").Annotate(spec.AnnMetrics, "- name: errors\n  templateRef: {name: errors, namespace: team-b}\n  thresholdRange: {max: 1}\n")),
		},
		"cross_namespace_template_allowed_by_the_controller": {
			in: update_(web(), web().Image("v2").Annotate(spec.AnnMetrics, "- name: errors\n  templateRef: {name: errors, namespace: team-b}\n  thresholdRange: {max: 1}\n"),
				func(in *webhook.Input) { in.AllowCrossNamespaceTemplates = true }),
		},
		"same_namespace_template_named_allowed": {
			in: update_(web(), web().Image("v2").Annotate(spec.AnnMetrics, "- name: errors\n  templateRef: {name: errors, namespace: shop}\n  thresholdRange: {max: 1}\n")),
		},
		"unknown_annotation_refused_with_a_suggestion": {
			in: update_(web(), web().Image("v2").Annotate("sluice.dev/treshold", "3")),
		},
		"invalid_config_denied": {
			in: update_(web(), web().Image("v2").Annotate(spec.AnnMaxWeight, "150")),
		},
		"invalid_config_denied_naming_every_annotation": {
			in: update_(web(), web().Annotate(spec.AnnInterval, "1s").Annotate(spec.AnnRouter, "haproxy").Annotate(spec.AnnMetrics, "- name: errors\n  thresholdRange: {max: 1}\n")),
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			oldBefore, newBefore := tc.in.Old.DeepCopy(), tc.in.New.DeepCopy()
			v := webhook.Decide(tc.in)

			if diff := cmp.Diff(newBefore, tc.in.New); diff != "" {
				t.Errorf("Decide modified the new object (-before +after):\n%s", diff)
			}
			if diff := cmp.Diff(oldBefore, tc.in.Old); diff != "" {
				t.Errorf("Decide modified the old object (-before +after):\n%s", diff)
			}
			checkOnlyOwnFields(t, tc.in.New, v)

			golden(t, filepath.Join("testdata", "decide", name+".json"), render(tc.in, v))
		})
	}
}

// checkOnlyOwnFields asserts what holds for every verdict: a denial stores nothing; a mutation
// touches only annotations and spec.paused (the pod template is stored exactly as sent); an
// unchanged object is reported as nil.
func checkOnlyOwnFields(t *testing.T, sent *appsv1.Deployment, v webhook.Outcome) {
	t.Helper()
	if !v.Allowed {
		if v.Object != nil || v.Denial == "" || v.Row != webhook.RowInvalid {
			t.Errorf("denied verdict %+v: want decision invalid, a message and no object", v)
		}
		return
	}
	if v.Object == nil {
		return
	}
	got := v.Object.DeepCopy()
	got.Annotations, got.Spec.Paused = sent.Annotations, sent.Spec.Paused
	if diff := cmp.Diff(sent, got); diff != "" {
		t.Errorf("Decide changed more than annotations and spec.paused (-sent +stored):\n%s", diff)
	}
	if cmp.Equal(sent.Annotations, v.Object.Annotations, cmpopts.EquateEmpty()) && sent.Spec.Paused == v.Object.Spec.Paused {
		t.Errorf("verdict carries an object equal to the one sent; want nil")
	}
}

func render(in webhook.Input, v webhook.Outcome) string {
	stored := in.New
	if v.Object != nil {
		stored = v.Object
	}
	out := verdict{
		Decision: v.Row, Allowed: v.Allowed, Denial: v.Denial, Warnings: v.Warnings, Events: v.Events,
		Mutated: v.Object != nil, Paused: stored.Spec.Paused,
	}
	if raw, ok := stored.Annotations[spec.AnnState]; ok {
		st, err := spec.ReadState(stored.Annotations)
		if err != nil {
			out.StateRaw = raw
		} else {
			out.State = &st
		}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		panic(err)
	}
	return string(b) + "\n"
}

func create(d *deployment) webhook.Input {
	return webhook.Input{Operation: admissionv1.Create, New: d.Obj(), Now: now, Defaults: catalogtest.Defaults()}
}

func update_(old, new *deployment, mods ...func(*webhook.Input)) webhook.Input {
	in := webhook.Input{Operation: admissionv1.Update, Old: old.Obj(), New: new.Obj(), Now: now, Defaults: catalogtest.Defaults()}
	for _, m := range mods {
		m(&in)
	}
	return in
}

func restartBypass(in *webhook.Input) { in.RestartBypass = true }

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
