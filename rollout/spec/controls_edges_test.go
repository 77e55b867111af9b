package spec_test

import (
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// TestIsControl: the four manual controls and nothing else.
func TestIsControl(t *testing.T) {
	for _, k := range []string{spec.AnnPromote, spec.AnnAbort, spec.AnnPause, spec.AnnRetry} {
		if !spec.IsControl(k) {
			t.Errorf("IsControl(%s) = false", k)
		}
	}
	for _, k := range []string{spec.AnnState, spec.AnnInterval, spec.AnnSkipAnalysis, "sluice.dev/promoted", ""} {
		if spec.IsControl(k) {
			t.Errorf("IsControl(%q) = true", k)
		}
	}
}

// TestEventNoteAtTheLimit: a message of exactly MaxEventNote bytes goes as it is; one byte
// more is cut to fit.
func TestEventNoteAtTheLimit(t *testing.T) {
	exact := strings.Repeat("a", spec.MaxEventNote)
	if got := spec.EventNote(exact); got != exact {
		t.Errorf("EventNote(%d bytes) changed it to %d bytes", len(exact), len(got))
	}
	over := exact + "b"
	if got := spec.EventNote(over); len(got) > spec.MaxEventNote || got == over {
		t.Errorf("EventNote(%d bytes) = %d bytes, want it cut to at most %d", len(over), len(got), spec.MaxEventNote)
	}
}
