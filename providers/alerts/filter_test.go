package alerts_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/providers/alerts"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// An alert receives its severity and above; empty is info on either side.
func TestShouldPost(t *testing.T) {
	const (
		none = spec.AlertSeverity("")
		info = spec.SeverityInfo
		warn = spec.SeverityWarn
		errs = spec.SeverityError
	)
	tests := []struct {
		alert, msg spec.AlertSeverity
		want       bool
	}{
		{info, info, true}, {info, warn, true}, {info, errs, true}, {info, none, true},
		{none, info, true}, {none, warn, true}, {none, errs, true}, {none, none, true},
		{warn, info, false}, {warn, none, false}, {warn, warn, true}, {warn, errs, true},
		{errs, info, false}, {errs, none, false}, {errs, warn, false}, {errs, errs, true},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("alert %q, message %q", tc.alert, tc.msg), func(t *testing.T) {
			if got := alerts.ShouldPost(tc.alert, tc.msg); got != tc.want {
				t.Errorf("ShouldPost(%q, %q) = %v, want %v", tc.alert, tc.msg, got, tc.want)
			}
		})
	}
}

// The same alert is the same target and the same event; a new reading is not a new alert.
func TestKey(t *testing.T) {
	base := alerts.Key("slack", failing)
	same := map[string]alerts.Message{
		"another reading": func() alerts.Message { m := failing; m.Value = "12"; return m }(),
		"the same":        failing,
	}
	for name, m := range same {
		if alerts.Key("slack", m) != base {
			t.Errorf("%s: a different key", name)
		}
	}
	if alerts.Key("slack", bare) != alerts.Key("slack", func() alerts.Message { m := bare; m.Severity = spec.SeverityInfo; return m }()) {
		t.Error("empty severity and info have different keys")
	}
	differ := map[string]func(*alerts.Message){
		"namespace":  func(m *alerts.Message) { m.Namespace = "other" },
		"deployment": func(m *alerts.Message) { m.Deployment = "api" },
		"revision":   func(m *alerts.Message) { m.Revision = "0000000000" },
		"phase":      func(m *alerts.Message) { m.Phase = "Failed" },
		"weight":     func(m *alerts.Message) { m.Weight = 30 },
		"severity":   func(m *alerts.Message) { m.Severity = spec.SeverityWarn },
		"check":      func(m *alerts.Message) { m.Check = "request-duration" },
		"text":       func(m *alerts.Message) { m.Text = "Promoted web" },
		// Length-prefixed: moving a character from one field to the next is another key.
		"field boundary": func(m *alerts.Message) { m.Namespace, m.Deployment = "shopw", "eb" },
	}
	for name, mod := range differ {
		m := failing
		mod(&m)
		if alerts.Key("slack", m) == base {
			t.Errorf("%s changed, same key", name)
		}
	}
	if alerts.Key("teams", failing) == base {
		t.Error("another target, same key")
	}
}

// The same alert posts once per window; a suppressed one does not extend the window; other
// alerts are independent.
func TestDeduper(t *testing.T) {
	t0 := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	type post struct {
		key  string
		at   time.Duration // after t0
		want bool
	}
	tests := map[string][]post{
		"first post goes out": {{"a", 0, true}},
		"a repeat within the window is dropped": {
			{"a", 0, true}, {"a", time.Minute, false}, {"a", 9*time.Minute + 59*time.Second, false},
		},
		"posted again once the window has passed since the last post": {
			{"a", 0, true}, {"a", 5 * time.Minute, false}, {"a", 10 * time.Minute, true}, {"a", 15 * time.Minute, false}, {"a", 20 * time.Minute, true},
		},
		"other keys are independent": {
			{"a", 0, true}, {"b", time.Second, true}, {"a", 2 * time.Second, false}, {"b", 3 * time.Second, false},
		},
		"a clock that went back lets it through": {
			{"a", time.Hour, true}, {"a", 0, true}, {"a", time.Minute, false},
		},
	}
	for name, posts := range tests {
		t.Run(name, func(t *testing.T) {
			d := alerts.NewDeduper(10 * time.Minute)
			for i, p := range posts {
				if got := d.Allow(p.key, t0.Add(p.at)); got != p.want {
					t.Errorf("post %d (%s at +%s) = %v, want %v", i, p.key, p.at, got, p.want)
				}
			}
		})
	}
}

// The Deduper forgets alerts older than its window, so its memory stays bounded.
func TestDeduperForgets(t *testing.T) {
	t0 := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	d := alerts.NewDeduper(time.Minute)
	for i := range 1000 {
		d.Allow(fmt.Sprint("k", i), t0)
	}
	if d.Len() != 1000 {
		t.Fatalf("Len = %d, want 1000", d.Len())
	}
	d.Allow("late", t0.Add(time.Minute))
	if d.Len() != 1 {
		t.Errorf("Len = %d a window later, want 1", d.Len())
	}
}
