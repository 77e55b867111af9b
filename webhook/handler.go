package webhook

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/runtime"
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
	// Recorder emits Events asynchronously; nil disables them.
	Recorder events.EventRecorder
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

var deploymentGVK = appsv1.SchemeGroupVersion.WithKind("Deployment")

// Handle implements admission.Handler.
func (h *Handler) Handle(ctx context.Context, req admission.Request) admission.Response {
	start := time.Now()
	resp, decision := h.handle(req)
	observe(decision, time.Since(start))
	return resp
}

func (h *Handler) handle(req admission.Request) (admission.Response, Decision) {
	// Guard clauses: only Deployments, no subresources, only CREATE and UPDATE.
	if req.Kind.Group != deploymentGVK.Group || req.Kind.Kind != deploymentGVK.Kind || req.SubResource != "" {
		return admission.Allowed(""), "ignored"
	}
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return admission.Allowed(""), "ignored"
	}
	obj := &appsv1.Deployment{}
	if err := json.Unmarshal(req.Object.Raw, obj); err != nil {
		return admission.Errored(http.StatusBadRequest, err), "error"
	}
	var old *appsv1.Deployment
	if req.Operation == admissionv1.Update {
		old = &appsv1.Deployment{}
		if err := json.Unmarshal(req.OldObject.Raw, old); err != nil {
			return admission.Errored(http.StatusBadRequest, err), "error"
		}
	}
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	v := Decide(Input{
		Operation: req.Operation, Old: old, New: obj, Now: now().UTC().Truncate(time.Second),
		FromController: h.ControllerIdentity != "" && req.UserInfo.Username == h.ControllerIdentity,
		Defaults:       h.Defaults, RestartBypass: h.RestartBypass,
	})
	if !v.Allowed {
		return admission.Denied(v.Denial), v.Decision
	}
	if h.Recorder != nil && (req.DryRun == nil || !*req.DryRun) {
		for _, e := range v.Events {
			h.Recorder.Eventf(obj, nil, e.Type, e.Reason, string(v.Decision), "%s", e.Message)
		}
	}
	if v.Object == nil {
		return admission.Allowed("").WithWarnings(v.Warnings...), v.Decision
	}
	resp, err := patch(req.Object.Raw, v.Object)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err), "error"
	}
	return resp.WithWarnings(v.Warnings...), v.Decision
}

// patch diffs the mutated typed object against the raw request. Decide changes only
// annotations and spec.paused, so any other "remove" is a field the Go types do not know
// (a newer API server's field) and is dropped rather than erased.
func patch(raw []byte, obj runtime.Object) (admission.Response, error) {
	b, err := json.Marshal(obj)
	if err != nil {
		return admission.Response{}, err
	}
	resp := admission.PatchResponseFromRaw(raw, b)
	kept := resp.Patches[:0]
	for _, p := range resp.Patches {
		if p.Operation == "remove" && !strings.HasPrefix(p.Path, "/metadata/annotations") && p.Path != "/spec/paused" {
			continue
		}
		kept = append(kept, p)
	}
	resp.Patches = kept
	if len(kept) == 0 {
		resp.PatchType = nil
	}
	return resp, nil
}
