package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// control writes the manual control annotation of verb. Each names the revision it acts on,
// so that a control given while looking at one release can never act on a newer one:
// promote, abort, pause, approve and halt the revision in flight, retry the failed revision,
// which is the Deployment's current template. resume removes the pause, unhalt the halt.
func control(ctx context.Context, cs kubernetes.Interface, ns, name, verb string, out io.Writer) error {
	d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	ann, err := controlAnnotations(d, verb)
	if err != nil {
		return err
	}
	return annotate(ctx, cs, d, ann, out)
}

// controlAnnotations is the annotation change verb makes on d (nil value: remove), or why it
// cannot be made now.
func controlAnnotations(d *appsv1.Deployment, verb string) (map[string]any, error) {
	if d.Labels[spec.LabelEnabled] != spec.ValueEnabled {
		return nil, notOptedIn(d)
	}
	st, err := spec.ReadState(d.Annotations)
	if err != nil {
		return nil, err
	}
	// Verbs that name the revision in flight, and verbs that remove a control (and what it is
	// called in the error when there is none).
	naming := map[string]string{"promote": spec.AnnPromote, "abort": spec.AnnAbort, "pause": spec.AnnPause,
		"approve": spec.AnnApprove, "halt": spec.AnnHalt}
	removing := map[string]struct{ key, state string }{"resume": {spec.AnnPause, "paused"}, "unhalt": {spec.AnnHalt, "halted"}}
	if key, ok := naming[verb]; ok {
		if !st.Phase.InFlight() {
			return nil, fmt.Errorf("no release in flight on %s/%s (phase %s)", d.Namespace, d.Name, st.Phase)
		}
		return map[string]any{key: st.Revision}, nil
	}
	if r, ok := removing[verb]; ok {
		if _, ok := d.Annotations[r.key]; !ok {
			return nil, fmt.Errorf("%s/%s is not %s (no %s annotation)", d.Namespace, d.Name, r.state, r.key)
		}
		return map[string]any{r.key: nil}, nil
	}
	switch verb {
	case "retry":
		if st.Phase != spec.PhaseFailed {
			return nil, fmt.Errorf("nothing to retry on %s/%s: the release is %s, not %s", d.Namespace, d.Name, st.Phase, spec.PhaseFailed)
		}
		return map[string]any{spec.AnnRetry: spec.TemplateHash(&d.Spec.Template)}, nil
	}
	return nil, fmt.Errorf("unknown verb %q", verb)
}

func notOptedIn(d *appsv1.Deployment) error {
	return fmt.Errorf("deployment %s/%s is not opted in (label %s=%s)", d.Namespace, d.Name, spec.LabelEnabled, spec.ValueEnabled)
}

func annotate(ctx context.Context, cs kubernetes.Interface, d *appsv1.Deployment, ann map[string]any, out io.Writer) error {
	b, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": ann}})
	if err != nil {
		return err
	}
	if _, err := cs.AppsV1().Deployments(d.Namespace).Patch(ctx, d.Name, types.MergePatchType, b, metav1.PatchOptions{}); err != nil {
		return err
	}
	changes := make([]string, 0, len(ann))
	for k, v := range ann {
		if v == nil {
			changes = append(changes, k+"-")
		} else {
			changes = append(changes, fmt.Sprintf("%s=%v", k, v))
		}
	}
	slices.Sort(changes)
	fmt.Fprintf(out, "deployment.apps/%s annotated %s\n", d.Name, strings.Join(changes, " "))
	return nil
}
