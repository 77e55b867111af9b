package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// maxReview is the largest AdmissionReview read (controller-runtime's limit; the API server's
// own object limit is lower).
const maxReview = 7 << 20

// review is the AdmissionReview (admission.k8s.io/v1) as the webhook reads it: the objects
// decoded straight into Deployments, so a review is parsed once. (controller-runtime's
// endpoint decodes the review, keeping the objects raw, and the Deployments are then decoded
// from those bytes again: a third of the webhook server's time per admission.)
type review struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Request    *reviewRequest `json:"request"`
}

type reviewRequest struct {
	UID         types.UID                 `json:"uid"`
	Kind        metav1.GroupVersionKind   `json:"kind"`
	SubResource string                    `json:"subResource,omitempty"`
	Operation   admissionv1.Operation     `json:"operation"`
	UserInfo    authenticationv1.UserInfo `json:"userInfo"`
	Object      *appsv1.Deployment        `json:"object,omitempty"`
	OldObject   *appsv1.Deployment        `json:"oldObject,omitempty"`
	DryRun      *bool                     `json:"dryRun,omitempty"`
}

// ServeHTTP answers the API server's AdmissionReview with the decision of Handle. The webhook
// configuration sends only Deployments (apps/v1), as admission.k8s.io/v1 reviews.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rv, code, err := readReview(r)
	if err != nil {
		observe("error", time.Since(start))
		writeReview(w, types.UID(""), admission.Errored(code, err))
		return
	}
	req := rv.Request
	in := request{
		kind: req.Kind, subResource: req.SubResource, operation: req.Operation, user: req.UserInfo.Username,
		dryRun: req.DryRun != nil && *req.DryRun, obj: req.Object, old: req.OldObject,
	}
	resp, decision := h.handle(in)
	observe(decision, time.Since(start))
	writeReview(w, req.UID, resp)
}

// readReview reads and decodes r's AdmissionReview, or says why it cannot (with the HTTP code
// the answer carries).
func readReview(r *http.Request) (review, int32, error) {
	var rv review
	if r.Body == nil {
		return rv, http.StatusBadRequest, errors.New("request body is empty")
	}
	defer r.Body.Close()
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		return rv, http.StatusBadRequest, fmt.Errorf("contentType=%s, expected application/json", ct)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxReview+1))
	if err != nil {
		return rv, http.StatusBadRequest, err
	}
	if len(body) == 0 {
		return rv, http.StatusBadRequest, errors.New("request body is empty")
	}
	if len(body) > maxReview {
		return rv, http.StatusRequestEntityTooLarge, fmt.Errorf("request entity is too large; limit is %d bytes", maxReview)
	}
	if err := json.Unmarshal(body, &rv); err != nil {
		return rv, http.StatusBadRequest, fmt.Errorf("decode the AdmissionReview: %w", err)
	}
	if rv.APIVersion != admissionv1.SchemeGroupVersion.String() || rv.Kind != "AdmissionReview" || rv.Request == nil {
		return rv, http.StatusBadRequest, fmt.Errorf("want an %s AdmissionReview with a request, got %s %s", admissionv1.SchemeGroupVersion, rv.APIVersion, rv.Kind)
	}
	return rv, 0, nil
}

// writeReview writes resp as the answer to request uid: an admission.k8s.io/v1 AdmissionReview,
// its patch encoded as controller-runtime's endpoint does it (Response.Complete).
func writeReview(w http.ResponseWriter, uid types.UID, resp admission.Response) {
	if err := resp.Complete(admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{UID: uid}}); err != nil {
		resp = admission.Errored(http.StatusInternalServerError, err)
		resp.UID = uid
	}
	out := admissionv1.AdmissionReview{Response: &resp.AdmissionResponse}
	out.APIVersion, out.Kind = admissionv1.SchemeGroupVersion.String(), "AdmissionReview"
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}
