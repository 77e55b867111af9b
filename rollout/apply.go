package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/rollout/plan"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// errRoutingPending is returned when a decision that needs its routing in place could not set
// it: nothing after the routing write is applied, and the next step plans knowing why.
var errRoutingPending = errors.New("routing not set; the step is planned again with the failure")

// apply writes decision d, made on o, in the contract's order: the Sluice-owned Services
// before the routing object (a re-pinned <svc>-stable takes the traffic that moves back to
// it), the routing object before the canary (traffic leaves the canary before its pods go),
// and the parent's state last, in one patch with the state encoded once, so a step cut short
// anywhere is redone from the recorded state.
func (r *Reconciler) apply(ctx context.Context, o *observed, d plan.Decision, now time.Time) error {
	key := client.ObjectKeyFromObject(o.parent)
	var isolate []string
	if o.traffic != nil && !d.Starts {
		isolate = isolationKeys(o.parent, o.traffic.svc)
		if err := r.setTraffic(ctx, o.parent, o.traffic, d.State); err != nil {
			r.Recorder.Eventf(o.parent, nil, corev1.EventTypeWarning, string(spec.ReasonRoutingFailed), "Route", "%s", spec.EventNote(err.Error()))
			r.routing.set(key, d.State.Revision, err.Error())
			if !d.RoutingMayFail {
				return fmt.Errorf("%w: %w", errRoutingPending, err)
			}
		} else {
			r.routing.set(key, d.State.Revision, "")
		}
	}
	if err := r.applyCanary(ctx, o.parent, o.canary, d, isolate); err != nil {
		return err
	}
	enc := d.State.Encode()
	if err := r.patchParent(ctx, o, enc, d); err != nil {
		return err
	}
	if stateChanged(o.raw, enc) {
		r.lag.wrote(key, o.raw, now)
	}
	return nil
}

// zeroState is the encoding of a Deployment's state before Sluice recorded anything.
var zeroState = spec.State{}.Encode()

// stateChanged reports whether the encoded state enc differs from the annotation raw as read.
func stateChanged(raw, enc string) bool {
	if raw == "" {
		return enc != zeroState
	}
	return raw != enc
}

func (r *Reconciler) deleteCanary(ctx context.Context, namespace, parent string) error {
	c := &appsv1.Deployment{}
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: spec.CanaryName(parent)}, c)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if c.Labels[spec.LabelParent] != parent {
		return nil
	}
	return client.IgnoreNotFound(r.Client.Delete(ctx, c, client.Preconditions{UID: &c.UID}))
}

func (r *Reconciler) applyCanary(ctx context.Context, parent, canary *appsv1.Deployment, d plan.Decision, isolate []string) error {
	switch d.Canary {
	case plan.CanaryDelete:
		if canary == nil {
			return nil
		}
		if err := r.Client.Delete(ctx, canary, client.Preconditions{UID: &canary.UID}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete canary %s: %w", klog.KObj(canary), err)
		}
	case plan.CanaryEnsure:
		want := desiredCanary(parent, d.State.Revision, d.CanaryReplicas, isolate)
		if canary == nil {
			if err := r.Client.Create(ctx, want); err != nil {
				return fmt.Errorf("create canary %s: %w", klog.KObj(want), err)
			}
			return nil
		}
		if canary.Annotations[spec.AnnRevision] == d.State.Revision && *canary.Spec.Replicas == d.CanaryReplicas {
			return nil
		}
		updated := canary.DeepCopy()
		updated.Annotations = want.Annotations
		updated.Labels = want.Labels
		updated.Spec = want.Spec
		if err := r.Client.Update(ctx, updated); err != nil {
			return fmt.Errorf("update canary %s: %w", klog.KObj(updated), err)
		}
	}
	return nil
}

// desiredCanary is the canary copy of parent: the held template plus the canary track label,
// owned by the parent so it is garbage-collected with it. For the replicas router its pods keep
// the parent's labels, so the parent's Services send them their share of traffic. An isolated
// canary's pods carry other values for the labels in isolate (those the Deployment's selector
// and Service select on), so only `<svc>-canary` and the routing object reach them.
func desiredCanary(parent *appsv1.Deployment, revision string, replicas int32, isolate []string) *appsv1.Deployment {
	tmpl := parent.Spec.Template.DeepCopy()
	tmpl.Labels = maps.Clone(tmpl.Labels)
	if tmpl.Labels == nil {
		tmpl.Labels = map[string]string{}
	}
	tmpl.Labels[spec.LabelTrack] = spec.ValueCanary
	sel := parent.Spec.Selector.DeepCopy()
	if sel.MatchLabels == nil {
		sel.MatchLabels = map[string]string{}
	}
	sel.MatchLabels[spec.LabelTrack] = spec.ValueCanary
	for _, k := range isolate {
		if v, ok := tmpl.Labels[k]; ok {
			tmpl.Labels[k] = canaryValue(v)
		}
		if v, ok := sel.MatchLabels[k]; ok {
			sel.MatchLabels[k] = canaryValue(v)
		}
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name:      spec.CanaryName(parent.Name),
			Namespace: parent.Namespace,
			Labels: map[string]string{
				spec.LabelEnabled:              spec.ValueCanary,
				spec.LabelParent:               parent.Name,
				"app.kubernetes.io/managed-by": "sluice",
			},
			Annotations: map[string]string{spec.AnnRevision: revision},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(parent,
				appsv1.SchemeGroupVersion.WithKind("Deployment"))},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas:                &replicas,
			Selector:                sel,
			Template:                *tmpl,
			Strategy:                parent.Spec.Strategy,
			MinReadySeconds:         parent.Spec.MinReadySeconds,
			RevisionHistoryLimit:    ptr(int32(1)),
			ProgressDeadlineSeconds: parent.Spec.ProgressDeadlineSeconds,
		},
	}
}

// patchParent writes the decision to the parent in one JSON patch: the state annotation,
// spec.paused and the consumed control annotations. Nothing is sent when nothing changed.
//
// The patch applies only if the release is still the one the decision was made on: it tests
// the state annotation (and each consumed control) as read. Anything that starts, replaces or
// ends a release (a template the webhook held, an opt-out) rewrites that annotation, so the
// patch fails with a conflict and the step is planned again. Writes that leave the release
// alone (the Deployment controller's status, an autoscaler's scale, a label) do not fail it:
// under an autoscaler a resourceVersion precondition would fail step after step.
func (r *Reconciler) patchParent(ctx context.Context, o *observed, enc string, d plan.Decision) error {
	parent := o.parent
	var ops []jsonPatchOp
	if stateChanged(o.raw, enc) {
		ops = append(ops, jsonPatchOp{Op: "add", Path: annotationPath(spec.AnnState), Value: enc})
	}
	for _, k := range d.Clear {
		if v, ok := parent.Annotations[k]; ok {
			ops = append(ops,
				jsonPatchOp{Op: "test", Path: annotationPath(k), Value: v},
				jsonPatchOp{Op: "remove", Path: annotationPath(k)})
		}
	}
	if d.Paused != nil && *d.Paused != parent.Spec.Paused {
		ops = append(ops, jsonPatchOp{Op: "add", Path: "/spec/paused", Value: *d.Paused})
	}
	if len(ops) == 0 {
		return nil
	}
	guard := jsonPatchOp{Op: "test", Path: annotationPath(spec.AnnState), Value: parent.Annotations[spec.AnnState]}
	if _, ok := parent.Annotations[spec.AnnState]; !ok {
		// No release recorded yet: nothing narrower to test than the version read.
		guard = jsonPatchOp{Op: "test", Path: "/metadata/resourceVersion", Value: parent.ResourceVersion}
		if parent.Annotations == nil {
			ops = append([]jsonPatchOp{{Op: "add", Path: "/metadata/annotations", Value: map[string]string{}}}, ops...)
		}
	}
	raw, err := json.Marshal(append([]jsonPatchOp{guard}, ops...))
	if err != nil {
		return err
	}
	if err := r.Client.Patch(ctx, parent, client.RawPatch(types.JSONPatchType, raw)); err != nil {
		if !apierrors.IsInvalid(err) {
			return fmt.Errorf("patch %s: %w", klog.KObj(parent), err)
		}
		// A failed test is answered as any invalid patch (422, no details): it is a conflict
		// if what it tested has changed.
		changed, rerr := r.changedSince(ctx, parent, d.Clear)
		switch {
		case rerr != nil:
			return fmt.Errorf("patch %s: %w (and reading it back to tell why: %w)", klog.KObj(parent), err, rerr)
		case changed:
			err = apierrors.NewConflict(appsv1.Resource("deployments"), parent.Name,
				fmt.Errorf("its release changed since it was read"))
		}
		return fmt.Errorf("patch %s: %w", klog.KObj(parent), err)
	}
	return nil
}

// changedSince reports whether the API server now holds another release state, or other
// values of the controls in keys, than parent.
func (r *Reconciler) changedSince(ctx context.Context, parent *appsv1.Deployment, keys []string) (bool, error) {
	now := &appsv1.Deployment{}
	if err := r.uncached().Get(ctx, client.ObjectKeyFromObject(parent), now); err != nil {
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	}
	if _, ok := parent.Annotations[spec.AnnState]; !ok && now.ResourceVersion != parent.ResourceVersion {
		return true, nil
	}
	for _, k := range append([]string{spec.AnnState}, keys...) {
		v, ok := parent.Annotations[k]
		nv, nok := now.Annotations[k]
		if v != nv || ok != nok {
			return true, nil
		}
	}
	return false, nil
}

type jsonPatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// annotationPath is the JSON pointer to annotation key.
func annotationPath(key string) string {
	return "/metadata/annotations/" + strings.NewReplacer("~", "~0", "/", "~1").Replace(key)
}

func ptr[T any](v T) *T { return &v }
