package spec_test

import (
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// An Event whose message is over the API server's limit is refused and lost: long messages
// (four check reasons with their queries) are cut to fit, saying how long they were.
func TestEventNote(t *testing.T) {
	short := "analysis failed (1/2)"
	if got := spec.EventNote(short); got != short {
		t.Errorf("EventNote(short) = %q", got)
	}
	long := strings.Repeat("request-success-rate: 0 outside [99, +inf]; ", 100)
	got := spec.EventNote(long)
	if len(got) > spec.MaxEventNote || !strings.HasPrefix(got, long[:900]) || !strings.HasSuffix(got, "(4400 bytes)") {
		t.Errorf("EventNote(%d bytes) = %d bytes: %q", len(long), len(got), got)
	}
}
