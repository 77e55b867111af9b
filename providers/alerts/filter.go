package alerts

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// rank orders severities; anything unknown ranks as info (validation refuses it earlier).
func rank(s spec.AlertSeverity) int {
	switch s {
	case spec.SeverityWarn:
		return 1
	case spec.SeverityError:
		return 2
	default:
		return 0
	}
}

// ShouldPost reports whether a message of severity msg goes to an alert of severity alert: an
// alert receives messages of its severity and above (info: everything; warn: warn and error;
// error: error only). Empty means info on both sides.
func ShouldPost(alert, msg spec.AlertSeverity) bool { return rank(msg) >= rank(alert) }

// Key identifies an alert for de-duplication: the alert target it goes to and what the message
// is about (Deployment, revision, phase, weight, severity, check, text), not the reading
// (Value), which changes from one analysis run to the next while the alert stays the same.
func Key(target string, m Message) string {
	h := sha256.New()
	for _, s := range []string{target, m.Namespace, m.Deployment, m.Revision, m.Phase, strconv.Itoa(m.Weight),
		string(severity(m.Severity)), m.Check, m.Text} {
		h.Write([]byte(strconv.Itoa(len(s)) + ":" + s)) // length-prefixed: no two lists collide
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Deduper lets the same alert (by Key) through at most once per window: a release that waits
// at a closed gate, or fails the same check run after run, posts once and then once a window
// as a reminder, not every interval. Safe for concurrent use. Its memory is the alerts posted
// within the last window (older entries are dropped as it goes).
type Deduper struct {
	window time.Duration

	mu    sync.Mutex
	sent  map[string]time.Time
	swept time.Time
}

// NewDeduper returns a Deduper with the given window.
func NewDeduper(window time.Duration) *Deduper {
	return &Deduper{window: window, sent: map[string]time.Time{}}
}

// Allow reports whether the alert key may be posted at now, and if so records it. An alert
// suppressed does not extend its window: it is posted again one window after it was last
// posted.
func (d *Deduper) Allow(key string, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if now.Sub(d.swept) >= d.window {
		for k, t := range d.sent {
			if now.Sub(t) >= d.window {
				delete(d.sent, k)
			}
		}
		d.swept = now
	}
	if last, ok := d.sent[key]; ok && now.Sub(last) < d.window && !now.Before(last) {
		return false
	}
	d.sent[key] = now
	return true
}

// Len is the number of alerts remembered.
func (d *Deduper) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.sent)
}
