package spec

import (
	"regexp"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ControlAnnotations are the manual controls (SPEC §4), in a fixed order. Each one's value is
// the revision it acts on, so an approval given for one release can never act on another: a
// leftover `sluice.dev/promote` from last week's release, or one committed to Git, names a
// revision that is not in flight and does nothing.
var ControlAnnotations = []string{AnnPromote, AnnAbort, AnnPause, AnnRetry, AnnApprove, AnnHalt}

// controlCommand is the kubectl sluice verb that writes each control with its revision.
var controlCommand = map[string]string{
	AnnPromote: "promote", AnnAbort: "abort", AnnPause: "pause", AnnRetry: "retry",
	AnnApprove: "approve", AnnHalt: "halt",
}

var revisionPattern = regexp.MustCompile(`^[0-9a-f]{10}$`)

// IsRevision reports whether v has the shape of a revision (TemplateHash).
func IsRevision(v string) bool { return revisionPattern.MatchString(v) }

// CheckControl says what is wrong with the value of control annotation key, or "" when it
// names a revision.
func CheckControl(key, v string) *field.Error {
	if IsRevision(v) {
		return nil
	}
	return field.Invalid(field.NewPath(key), v,
		"must name the revision it acts on (`kubectl sluice "+controlCommand[key]+" NAME` writes it; the revision is in `kubectl sluice status NAME`)")
}

// IsControl reports whether key is one of the manual controls.
func IsControl(key string) bool { return controlCommand[key] != "" }
