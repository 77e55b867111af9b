package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// Path is where the webhook is served.
const Path = "/mutate-apps-v1-deployment"

// Handler serves the admission hold.
type Handler struct {
	// ControllerIdentity is the user name Sluice's own writes come from.
	ControllerIdentity string
	Defaults           spec.Defaults
	RestartBypass      bool
	// AllowCrossNamespaceTemplates: see Input.
	AllowCrossNamespaceTemplates bool
	// Recorder emits Events asynchronously; nil disables them.
	Recorder events.EventRecorder
	// Notify, when set, is handed every Event emitted with the release state they are about
	// (the Deployment as admitted), for its event hooks and alert targets; it must not block.
	Notify func(n spec.Notice)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

var deploymentGVK = appsv1.SchemeGroupVersion.WithKind("Deployment")

// Handle implements admission.Handler (controller-runtime's admission endpoint; the tests and
// any embedding use it). Sluice's server registers the Handler itself (ServeHTTP), which
// decodes the review and both objects in one pass.
func (h *Handler) Handle(ctx context.Context, req admission.Request) admission.Response {
	start := time.Now()
	in, err := fromRequest(req)
	if err != nil {
		observe("error", time.Since(start))
		return admission.Errored(http.StatusBadRequest, err)
	}
	resp, decision := h.handle(in)
	observe(decision, time.Since(start))
	return resp
}

// request is what the webhook reads of an AdmissionRequest.
type request struct {
	kind        metav1.GroupVersionKind
	subResource string
	operation   admissionv1.Operation
	user        string
	dryRun      bool
	obj, old    *appsv1.Deployment // old: UPDATE only
}

// fromRequest decodes the Deployments of a request controller-runtime decoded.
func fromRequest(req admission.Request) (request, error) {
	in := request{
		kind: req.Kind, subResource: req.SubResource, operation: req.Operation,
		user: req.UserInfo.Username, dryRun: req.DryRun != nil && *req.DryRun,
	}
	if !in.guarded() {
		return in, nil
	}
	in.obj = &appsv1.Deployment{}
	if err := json.Unmarshal(req.Object.Raw, in.obj); err != nil {
		return in, err
	}
	if req.Operation == admissionv1.Update {
		in.old = &appsv1.Deployment{}
		if err := json.Unmarshal(req.OldObject.Raw, in.old); err != nil {
			return in, err
		}
	}
	return in, nil
}

// guarded says whether the webhook looks at the request: a CREATE or UPDATE of a Deployment,
// not of a subresource. Anything else is allowed unchanged.
func (in request) guarded() bool {
	return in.kind.Group == deploymentGVK.Group && in.kind.Kind == deploymentGVK.Kind && in.subResource == "" &&
		(in.operation == admissionv1.Create || in.operation == admissionv1.Update)
}

func (h *Handler) handle(in request) (admission.Response, Row) {
	if !in.guarded() {
		return admission.Allowed(""), "ignored"
	}
	obj, old := in.obj, in.old
	if obj == nil || in.operation == admissionv1.Update && old == nil {
		return admission.Errored(http.StatusBadRequest, errors.New("the request carries no Deployment")), "error"
	}
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	v := Decide(Input{
		Operation: in.operation, Old: old, New: obj, Now: now().UTC().Truncate(time.Second),
		FromController: h.ControllerIdentity != "" && in.user == h.ControllerIdentity,
		Defaults:       h.Defaults, RestartBypass: h.RestartBypass, AllowCrossNamespaceTemplates: h.AllowCrossNamespaceTemplates,
	})
	if !v.Allowed {
		return admission.Denied(v.Denial), v.Row
	}
	if !in.dryRun {
		for _, k := range v.Discarded {
			discarded.WithLabelValues(k).Inc()
		}
		if h.Recorder != nil {
			for _, e := range v.Events {
				h.Recorder.Eventf(obj, nil, e.Type, string(e.Reason), string(v.Row), "%s", spec.EventNote(e.Message))
			}
		}
		if h.Notify != nil && len(v.Events) > 0 {
			h.Notify(notice(obj, v, now()))
		}
	}
	if v.Object == nil {
		return admission.Allowed("").WithWarnings(v.Warnings...), v.Row
	}
	resp := admission.Patched("", patchOps(obj, v.Object)...)
	pt := admissionv1.PatchTypeJSONPatch
	resp.PatchType = &pt
	return resp.WithWarnings(v.Warnings...), v.Row
}

// patchOps builds the JSON patch from sent to obj directly. Decide changes only annotations and
// spec.paused, so the patch names exactly those fields: nothing else of the raw request —
// including fields these Go types do not know — is ever touched, and no JSON diff of two whole
// documents is needed on the hot path.
func patchOps(sent, obj *appsv1.Deployment) []jsonpatch.JsonPatchOperation {
	var ops []jsonpatch.JsonPatchOperation
	switch {
	case len(sent.Annotations) == 0 && len(obj.Annotations) > 0:
		ops = append(ops, jsonpatch.NewOperation("add", "/metadata/annotations", obj.Annotations))
	default:
		for _, k := range slices.Sorted(maps.Keys(obj.Annotations)) {
			path := "/metadata/annotations/" + escape(k)
			if old, ok := sent.Annotations[k]; !ok {
				ops = append(ops, jsonpatch.NewOperation("add", path, obj.Annotations[k]))
			} else if old != obj.Annotations[k] {
				ops = append(ops, jsonpatch.NewOperation("replace", path, obj.Annotations[k]))
			}
		}
		for _, k := range slices.Sorted(maps.Keys(sent.Annotations)) {
			if _, ok := obj.Annotations[k]; !ok {
				ops = append(ops, jsonpatch.NewOperation("remove", "/metadata/annotations/"+escape(k), nil))
			}
		}
	}
	switch {
	case obj.Spec.Paused && !sent.Spec.Paused:
		ops = append(ops, jsonpatch.NewOperation("add", "/spec/paused", true))
	case !obj.Spec.Paused && sent.Spec.Paused:
		ops = append(ops, jsonpatch.NewOperation("replace", "/spec/paused", false))
	}
	return ops
}

// escape encodes a map key as a JSON pointer token (RFC 6901).
func escape(k string) string {
	return strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
}

// notice describes the Events of decision v on obj by the release state they leave (the state
// as admitted: the patched object's when the decision changed it).
func notice(obj *appsv1.Deployment, v Outcome, at time.Time) spec.Notice {
	admitted := obj
	if v.Object != nil {
		admitted = v.Object
	}
	st, _ := spec.ReadState(admitted.Annotations)
	n := spec.Notice{
		Namespace: obj.Namespace, Name: obj.Name, Revision: st.Revision, Image: st.Image,
		Phase: st.Phase, Weight: st.Weight, Checks: st.Checks, Events: v.Events, At: at,
	}
	if st.Plan != nil {
		n.Hooks, n.Alerts = st.Plan.Hooks, st.Plan.Alerts
	}
	return n
}
