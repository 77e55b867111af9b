package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-dev/sluice/rollout/spec"
)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

// The Event messages below are the ones rollout/plan and webhook/decide write.
func TestAssembleHistory(t *testing.T) {
	promotedV2 := []record{
		{at(0), "ReleaseHeld", "held revision r2 (app=demo:v2) for canary analysis; stable revision r1 keeps serving"},
		{at(8), "CanaryReady", "canary web-canary ready with 1 replicas at weight 10%"},
		{at(14), "WeightAdvanced", "analysis passed (request-success-rate 100); advancing canary weight to 20% (1 replicas)"},
		{at(30), "Promoting", "promoting revision r2: analysis passed at the final weight 50% (request-success-rate 100)"},
		{at(40), "Promoted", "revision r2 (app=demo:v2) promoted and fully rolled out; canary removed"},
	}
	rolledBackV3 := []record{
		{at(100), "ReleaseHeld", "held revision r3 (app=demo:v3-bad) for canary analysis; stable revision r2 keeps serving"},
		{at(110), "CheckFailed", "analysis failed (1/2) at weight 10%: request-success-rate: 50 outside [99, +inf)"},
		{at(115), "CheckFailed", "analysis failed (2/2) at weight 10%: request-success-rate: 50 outside [99, +inf)"},
		{at(115), "RollingBack", "rolling back revision r3: 2 failed analysis runs reached the threshold of 2"},
		{at(117), "RolledBack", "canary of revision r3 removed; stable revision r2 keeps serving (2 failed analysis runs reached the threshold of 2)"},
	}
	failedV3 := spec.State{Phase: spec.PhaseFailed, Revision: "r3", Stable: "r2", FailedRevision: "r3", Image: "app=demo:v3-bad",
		StartedAt: at(100), FinishedAt: at(117), Message: "rolled back: 2 failed analysis runs reached the threshold of 2"}
	v2 := HistoryEntry{Revision: "r2", Image: "app=demo:v2", Outcome: outcomePromoted, Started: at(0), Finished: at(40)}
	v3 := HistoryEntry{Revision: "r3", Image: "app=demo:v3-bad", Outcome: outcomeRolledBack, Started: at(100), Finished: at(117),
		Reason: "2 failed analysis runs reached the threshold of 2"}

	for name, tc := range map[string]struct {
		events []record
		st     spec.State
		want   []HistoryEntry
	}{
		"promoted then rolled back, newest first": {
			events: append(append([]record{}, promotedV2...), rolledBackV3...),
			st:     failedV3,
			want:   []HistoryEntry{v3, v2},
		},
		"Events in any order": {
			events: append(append([]record{}, rolledBackV3...), promotedV2...),
			st:     failedV3,
			want:   []HistoryEntry{v3, v2},
		},
		"in flight: outcome and reason from the state": {
			events: append(append([]record{}, promotedV2...), rolledBackV3[:2]...),
			st: spec.State{Phase: spec.PhaseProgressing, Revision: "r3", Image: "app=demo:v3-bad", StartedAt: at(100),
				Message: "analysis failed (1/2) at weight 10%"},
			want: []HistoryEntry{
				{Revision: "r3", Image: "app=demo:v3-bad", Outcome: "Progressing", Started: at(100), Reason: "analysis failed (1/2) at weight 10%"},
				v2,
			},
		},
		"replaced by a newer template": {
			events: []record{
				promotedV2[0],
				{at(5), "ReleaseHeld", "held revision r4 (app=demo:v4) for canary analysis; stable revision r1 keeps serving"},
				{at(30), "Promoted", "revision r4 (app=demo:v4) promoted and fully rolled out; canary removed"},
			},
			st: spec.State{Phase: spec.PhaseSucceeded, Revision: "r4", StartedAt: at(5), FinishedAt: at(30)},
			want: []HistoryEntry{
				{Revision: "r4", Image: "app=demo:v4", Outcome: outcomePromoted, Started: at(5), Finished: at(30)},
				{Revision: "r2", Image: "app=demo:v2", Outcome: outcomeReplaced, Started: at(0), Finished: at(5), Reason: "replaced by revision r4"},
			},
		},
		"reverted to the stable template": {
			events: []record{
				promotedV2[0],
				{at(9), "RollingBack", "rolling back revision r2: template set back to the stable revision r1"},
				{at(10), "RolledBack", "canary of revision r2 removed; the Deployment is back on stable revision r1"},
			},
			st: spec.State{Phase: spec.PhaseIdle, Revision: "r2", Stable: "r1", FinishedAt: at(10)},
			want: []HistoryEntry{
				{Revision: "r2", Image: "app=demo:v2", Outcome: outcomeRolledBack, Started: at(0), Finished: at(10),
					Reason: "template set back to the stable revision r1"},
			},
		},
		"retried after a failure": {
			events: append(append([]record{}, rolledBackV3...),
				record{at(200), "Retrying", "retrying revision r3 by sluice.dev/retry"},
				record{at(230), "Promoted", "revision r3 (app=demo:v3-bad) promoted and fully rolled out; canary removed"}),
			st: spec.State{Phase: spec.PhaseSucceeded, Revision: "r3", StartedAt: at(200), FinishedAt: at(230)},
			want: []HistoryEntry{
				{Revision: "r3", Image: "app=demo:v3-bad", Outcome: outcomePromoted, Started: at(200), Finished: at(230)},
				v3,
			},
		},
		"skip-analysis and a failed promotion": {
			events: []record{
				promotedV2[0],
				{at(20), "PromotionFailed", "promoted Deployment not fully rolled out within the progress deadline of 10m0s"},
				{at(50), "Bypassed", `sluice.dev/skip-analysis is "true": app=demo:v5 goes out without canary analysis`},
			},
			st: spec.State{Phase: spec.PhaseIdle, Stable: "r5", Message: "app=demo:v5 released without analysis"},
			want: []HistoryEntry{
				{Image: "app=demo:v5", Outcome: outcomeBypassed, Started: at(50), Finished: at(50), Reason: `sluice.dev/skip-analysis is "true"`},
				{Revision: "r2", Image: "app=demo:v2", Outcome: outcomeFailed, Started: at(0), Finished: at(20),
					Reason: "promoted Deployment not fully rolled out within the progress deadline of 10m0s"},
			},
		},
		"a template that reached the pods past the webhook": {
			events: append(append([]record{}, promotedV2...),
				record{at(60), "Unanalysed", "template revision r9 reached the pods without canary analysis (the admission webhook was bypassed, down with failurePolicy Ignore, or excludes this namespace); the last analysed stable revision is r2. Re-apply through the webhook or set the template back"}),
			st: spec.State{Phase: spec.PhaseSucceeded, Revision: "r2", Stable: "r2", Unanalysed: "r9", StartedAt: at(0), FinishedAt: at(40)},
			want: []HistoryEntry{
				{Revision: "r9", Outcome: outcomeUnanalysed, Started: at(60), Finished: at(60), Reason: "reached the pods without the admission hold"},
				v2,
			},
		},
		"Events expired: the state alone": {
			st:   failedV3,
			want: []HistoryEntry{v3},
		},
		"a release whose end no Event records": {
			events: []record{promotedV2[0]},
			st:     failedV3,
			want: []HistoryEntry{v3,
				{Revision: "r2", Image: "app=demo:v2", Outcome: "Unknown", Started: at(0)}},
		},
		"no release": {st: spec.State{Phase: spec.PhaseIdle}},
	} {
		t.Run(name, func(t *testing.T) {
			got := assembleHistory(tc.events, tc.st)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("history (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWriteHistory(t *testing.T) {
	entries := []HistoryEntry{
		{Revision: "r3", Image: "app=demo:v3", Outcome: "Progressing", Started: at(100), Reason: "analysis passed; weight 20%"},
		{Revision: "r2", Image: "app=demo:v2-bad", Outcome: outcomeRolledBack, Started: at(0), Finished: at(17), Reason: "2 failed analysis runs"},
		{Image: "app=demo:v1", Outcome: outcomeBypassed, Started: at(-60), Finished: at(-60)},
	}
	var b bytes.Buffer
	if err := writeHistory(&b, entries, at(160)); err != nil {
		t.Fatal(err)
	}
	want := `REVISION   IMAGE             OUTCOME       STARTED     DURATION   REASON
r3         app=demo:v3       Progressing   60s ago     1m0s       analysis passed; weight 20%
r2         app=demo:v2-bad   RolledBack    2m40s ago   17s        2 failed analysis runs
<none>     app=demo:v1       Bypassed      3m40s ago   <none>     <none>
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("history table (-want +got):\n%s", diff)
	}
}
