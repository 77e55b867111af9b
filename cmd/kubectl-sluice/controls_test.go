package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/rollout/spec"
)

func deployment(st *spec.State, extra map[string]string) *appsv1.Deployment {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web",
			Labels: map[string]string{spec.LabelEnabled: spec.ValueEnabled}, Annotations: map[string]string{}},
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", Image: "demo:v2"}},
		}}},
	}
	if st != nil {
		d.Annotations[spec.AnnState] = st.Encode()
	}
	for k, v := range extra {
		d.Annotations[k] = v
	}
	return d
}

func TestControlAnnotations(t *testing.T) {
	tmpl := spec.TemplateHash(&deployment(nil, nil).Spec.Template)
	progressing := &spec.State{Phase: spec.PhaseProgressing, Revision: "r2", Stable: "r1"}
	failed := &spec.State{Phase: spec.PhaseFailed, Revision: tmpl, Stable: "r1", FailedRevision: tmpl}
	for name, tc := range map[string]struct {
		d       *appsv1.Deployment
		verb    string
		want    map[string]any
		wantErr string
	}{
		"promote names the revision in flight": {d: deployment(progressing, nil), verb: "promote", want: map[string]any{spec.AnnPromote: "r2"}},
		"abort names the revision in flight":   {d: deployment(progressing, nil), verb: "abort", want: map[string]any{spec.AnnAbort: "r2"}},
		"pause names the revision in flight":   {d: deployment(progressing, nil), verb: "pause", want: map[string]any{spec.AnnPause: "r2"}},
		"resume removes pause": {d: deployment(&spec.State{Phase: spec.PhasePaused, Revision: "r2"}, map[string]string{spec.AnnPause: "r2"}),
			verb: "resume", want: map[string]any{spec.AnnPause: nil}},
		"retry names the failed template": {d: deployment(failed, nil), verb: "retry", want: map[string]any{spec.AnnRetry: tmpl}},
		"approve names the revision in flight": {d: deployment(&spec.State{Phase: spec.PhaseWaiting, Revision: "r2"}, nil), verb: "approve",
			want: map[string]any{spec.AnnApprove: "r2"}},
		"approve ahead of the gate":         {d: deployment(progressing, nil), verb: "approve", want: map[string]any{spec.AnnApprove: "r2"}},
		"halt names the revision in flight": {d: deployment(progressing, nil), verb: "halt", want: map[string]any{spec.AnnHalt: "r2"}},
		"unhalt removes halt": {d: deployment(&spec.State{Phase: spec.PhaseWaiting, Revision: "r2"}, map[string]string{spec.AnnHalt: "r2"}),
			verb: "unhalt", want: map[string]any{spec.AnnHalt: nil}},
		"approve with nothing in flight": {d: deployment(failed, nil), verb: "approve", wantErr: "no release in flight on shop/web (phase Failed)"},
		"halt with nothing in flight":    {d: deployment(nil, nil), verb: "halt", wantErr: "no release in flight on shop/web (phase Idle)"},
		"unhalt when not halted":         {d: deployment(progressing, nil), verb: "unhalt", wantErr: "shop/web is not halted (no sluice.dev/halt annotation)"},
		"promote with nothing in flight": {d: deployment(&spec.State{Phase: spec.PhaseSucceeded, Revision: "r2"}, nil), verb: "promote",
			wantErr: "no release in flight on shop/web (phase Succeeded)"},
		"abort with nothing in flight": {d: deployment(nil, nil), verb: "abort", wantErr: "no release in flight on shop/web (phase Idle)"},
		"pause with nothing in flight": {d: deployment(failed, nil), verb: "pause", wantErr: "no release in flight on shop/web (phase Failed)"},
		"resume when not paused":       {d: deployment(progressing, nil), verb: "resume", wantErr: "shop/web is not paused (no sluice.dev/pause annotation)"},
		"retry when not failed": {d: deployment(progressing, nil), verb: "retry",
			wantErr: "nothing to retry on shop/web: the release is Progressing, not Failed"},
		"not opted in": {d: func() *appsv1.Deployment { d := deployment(progressing, nil); d.Labels = nil; return d }(), verb: "abort",
			wantErr: "deployment shop/web is not opted in (label sluice.dev/enabled=true)"},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := controlAnnotations(tc.d, tc.verb)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if gotErr != tc.wantErr {
				t.Fatalf("error = %q, want %q", gotErr, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("annotations (-want +got):\n%s", diff)
			}
		})
	}
}
