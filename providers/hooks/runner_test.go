package hooks_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-dev/sluice/providers/hooks"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// wakes records the Runner's Wake calls.
type wakes struct {
	mu  sync.Mutex
	all []string
	ch  chan string
}

func newWakes() *wakes { return &wakes{ch: make(chan string, 100)} }

func (w *wakes) wake(namespace, name string) {
	w.mu.Lock()
	w.all = append(w.all, namespace+"/"+name)
	w.mu.Unlock()
	w.ch <- namespace + "/" + name
}

func (w *wakes) list() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.all...)
}

// next waits for the next Wake (at most 10s).
func (w *wakes) next(t *testing.T) string {
	t.Helper()
	select {
	case k := <-w.ch:
		return k
	case <-time.After(10 * time.Second):
		t.Fatal("no Wake within 10s")
		return ""
	}
}

// none checks that no Wake comes within d.
func (w *wakes) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case k := <-w.ch:
		t.Fatalf("unexpected Wake of %s", k)
	case <-time.After(d):
	}
}

func newRunner(t *testing.T, concurrency int) (*hooks.Runner, *wakes) {
	t.Helper()
	r := hooks.NewRunner(t.Context(), caller(nil), concurrency)
	w := newWakes()
	r.Wake = w.wake
	return r, w
}

// counting is a hook server answering status to every call, counting them and keeping the
// last payload.
type counting struct {
	*httptest.Server
	calls atomic.Int32
	mu    sync.Mutex
	last  hooks.Payload
}

func countingServer(t *testing.T, status int) *counting {
	t.Helper()
	c := &counting{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var p hooks.Payload
		_ = json.NewDecoder(req.Body).Decode(&p)
		c.mu.Lock()
		c.last = p
		c.mu.Unlock()
		c.calls.Add(1)
		w.WriteHeader(status)
		_, _ = w.Write([]byte("gate closed"))
	}))
	t.Cleanup(c.Close)
	return c
}

// hanging is a hook server that holds every call until the test ends (or the caller gives
// up), telling started when a call arrives and canceled when its caller gave up.
type hanging struct {
	*httptest.Server
	started, canceled chan struct{}
}

func hangingServer(t *testing.T) *hanging {
	t.Helper()
	h := &hanging{started: make(chan struct{}, 10), canceled: make(chan struct{}, 10)}
	release := make(chan struct{})
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body) // then the server notices the client going away
		h.started <- struct{}{}
		select {
		case <-release:
		case <-req.Context().Done():
			h.canceled <- struct{}{}
		}
	}))
	t.Cleanup(h.Close)
	t.Cleanup(func() { close(release) }) // runs first: the handlers return, then Close
	return h
}

func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: not within 10s", what)
	}
}

// returns runs results, failing the test when it does not return within 2s (a Results that
// made its calls itself would take as long as the hook).
func returns(t *testing.T, results func() ([]spec.HookResult, bool)) ([]spec.HookResult, bool) {
	t.Helper()
	type answer struct {
		rs   []spec.HookResult
		done bool
	}
	ch := make(chan answer, 1)
	go func() {
		rs, done := results()
		ch <- answer{rs, done}
	}()
	select {
	case a := <-ch:
		return a.rs, a.done
	case <-time.After(2 * time.Second):
		t.Fatal("Results did not return within 2s: it waits for a hook call")
		return nil, false
	}
}

func call(ns, name, revision string) spec.HookCall {
	return spec.HookCall{Namespace: ns, Name: name, Phase: spec.PhaseProgressing, Revision: revision}
}

var round1 = time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)

// A hook that hangs for its whole (long) timeout occupies one slot and delays only its own
// release: another release's hooks are called and answered meanwhile.
func TestRunnerHangingHookDelaysOnlyItsRelease(t *testing.T) {
	hang := hangingServer(t)
	ok := countingServer(t, http.StatusOK)
	r, w := newRunner(t, 2)

	slow := []spec.Hook{{Name: "soak", Type: spec.HookPreRollout, URL: hang.URL, Timeout: "1h"}}
	if rs, done := returns(t, func() ([]spec.HookResult, bool) { return r.Results(call("shop", "slow", "aaaaaaaaaa"), slow, round1) }); done || len(rs) != 0 {
		t.Fatalf("hanging round: done %v, answers %v; want in flight", done, rs)
	}
	waitFor(t, hang.started, "the hanging hook's call")

	fast := []spec.Hook{{Name: "smoke", Type: spec.HookPreRollout, URL: ok.URL}}
	start := time.Now()
	returns(t, func() ([]spec.HookResult, bool) { return r.Results(call("shop", "fast", "bbbbbbbbbb"), fast, round1) })
	if got := w.next(t); got != "shop/fast" {
		t.Fatalf("woke %s, want shop/fast", got)
	}
	rs, done := r.Results(call("shop", "fast", "bbbbbbbbbb"), fast, round1)
	if !done || len(rs) != 1 || rs[0].Outcome != spec.HookPassed {
		t.Fatalf("fast release: done %v, answers %v", done, rs)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the other release's hook took %s", took)
	}
	if _, done := r.Results(call("shop", "slow", "aaaaaaaaaa"), slow, round1); done {
		t.Error("the hanging round is done")
	}
}

// With every slot taken, a call waits for one instead of failing: it is made, and answered,
// once the slot is free.
func TestRunnerFullWaitsForASlot(t *testing.T) {
	hang := hangingServer(t)
	ok := countingServer(t, http.StatusOK)
	r, w := newRunner(t, 1)

	slow := []spec.Hook{{Name: "soak", URL: hang.URL, Timeout: "2s"}}
	r.Results(call("shop", "slow", "aaaaaaaaaa"), slow, round1)
	waitFor(t, hang.started, "the hanging hook's call")

	fast := []spec.Hook{{Name: "smoke", URL: ok.URL}}
	if _, done := r.Results(call("shop", "fast", "bbbbbbbbbb"), fast, round1); done {
		t.Fatal("done with the only slot taken")
	}
	w.none(t, 300*time.Millisecond)
	if n := ok.calls.Load(); n != 0 {
		t.Fatalf("%d calls made with the only slot taken", n)
	}
	// The hanging call times out (2s) and frees the slot.
	got := []string{w.next(t), w.next(t)}
	if diff := cmp.Diff([]string{"shop/slow", "shop/fast"}, got); diff != "" {
		t.Errorf("wakes (-want +got):\n%s", diff)
	}
	rs, done := r.Results(call("shop", "fast", "bbbbbbbbbb"), fast, round1)
	if !done || len(rs) != 1 || rs[0].Outcome != spec.HookPassed {
		t.Errorf("after waiting for a slot: done %v, answers %v; want passed", done, rs)
	}
	rs, _ = r.Results(call("shop", "slow", "aaaaaaaaaa"), slow, round1)
	if len(rs) != 1 || rs[0].Outcome != spec.HookUnreachable {
		t.Errorf("the hanging hook: %v, want unreachable (timeout)", rs)
	}
}

// The same round asked again is answered from memory; a new round, or a new revision, calls
// again.
func TestRunnerCallsARoundOnce(t *testing.T) {
	srv := countingServer(t, http.StatusOK)
	r, w := newRunner(t, 4)
	hs := []spec.Hook{{Name: "gate", Type: spec.HookConfirmPromotion, URL: srv.URL}}
	c := call("shop", "web", "aaaaaaaaaa")

	for range 5 { // asked repeatedly while in flight
		r.Results(c, hs, round1)
	}
	w.next(t)
	for range 5 { // and after
		if _, done := r.Results(c, hs, round1); !done {
			t.Fatal("answered round not done")
		}
	}
	if n := srv.calls.Load(); n != 1 {
		t.Fatalf("round asked 10 times made %d calls, want 1", n)
	}

	r.Results(c, hs, round1.Add(time.Minute))
	w.next(t)
	r.Results(c, hs, round1.Add(time.Minute))
	if n := srv.calls.Load(); n != 2 {
		t.Fatalf("a new round: %d calls in all, want 2", n)
	}

	c.Revision = "bbbbbbbbbb"
	r.Results(c, hs, round1.Add(time.Minute))
	w.next(t)
	if n := srv.calls.Load(); n != 3 {
		t.Fatalf("a new revision: %d calls in all, want 3", n)
	}
	// Rounds are per hook type too.
	other := []spec.Hook{{Name: "gate", Type: spec.HookConfirmRollout, URL: srv.URL}}
	r.Results(c, other, round1.Add(time.Minute))
	w.next(t)
	if n := srv.calls.Load(); n != 4 {
		t.Fatalf("another hook type: %d calls in all, want 4", n)
	}
	w.none(t, 100*time.Millisecond)
}

// Wake comes once per round, when its last call has answered, never before; answers come in
// the hooks' order with the planner's outcomes and the call's reason.
func TestRunnerWakesOncePerRound(t *testing.T) {
	pass := countingServer(t, http.StatusAccepted)
	refuse := countingServer(t, http.StatusForbidden)
	hang := hangingServer(t)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	r, w := newRunner(t, 8)

	hs := []spec.Hook{
		{Name: "a", Type: spec.HookRollout, URL: pass.URL},
		{Name: "b", Type: spec.HookRollout, URL: refuse.URL},
		{Name: "c", Type: spec.HookRollout, URL: down.URL},
		{Name: "d", Type: spec.HookRollout, URL: hang.URL, Timeout: "1s"},
	}
	c := call("shop", "web", "aaaaaaaaaa")
	r.Results(c, hs, round1)
	waitFor(t, hang.started, "the slow hook's call")
	if got := w.next(t); got != "shop/web" {
		t.Fatalf("woke %s", got)
	}
	w.none(t, 200*time.Millisecond)
	if got := w.list(); len(got) != 1 {
		t.Fatalf("wakes %v, want one", got)
	}
	rs, done := r.Results(c, hs, round1)
	if !done || len(rs) != 4 {
		t.Fatalf("done %v, answers %v", done, rs)
	}
	want := []spec.HookResult{
		{Name: "a", Type: spec.HookRollout, Outcome: spec.HookPassed, Reason: "HTTP 202"},
		{Name: "b", Type: spec.HookRollout, Outcome: spec.HookRefused, Reason: `HTTP 403 "gate closed"`},
		{Name: "c", Type: spec.HookRollout, Outcome: spec.HookUnreachable},
		{Name: "d", Type: spec.HookRollout, Outcome: spec.HookUnreachable},
	}
	for i := 2; i < 4; i++ {
		if !strings.HasPrefix(rs[i].Reason, "unreachable: ") {
			t.Errorf("answer %d reason %q, want unreachable: …", i, rs[i].Reason)
		}
		rs[i].Reason = ""
	}
	if diff := cmp.Diff(want, rs); diff != "" {
		t.Errorf("answers (-want +got):\n%s", diff)
	}
	w.none(t, 100*time.Millisecond)
}

// The payload of a call is Flagger's: the release's name, namespace, phase, and the revision
// as checksum, with the hook's type and metadata.
func TestRunnerPayload(t *testing.T) {
	srv := countingServer(t, http.StatusOK)
	r, w := newRunner(t, 1)
	hs := []spec.Hook{{Name: "load", Type: spec.HookRollout, URL: srv.URL, Metadata: map[string]string{"cmd": "hey"}}}
	r.Results(spec.HookCall{Namespace: "shop", Name: "web", Phase: spec.PhaseWaiting, Revision: "5d8c7f9b4a"}, hs, round1)
	w.next(t)
	srv.mu.Lock()
	defer srv.mu.Unlock()
	want := hooks.Payload{Name: "web", Namespace: "shop", Phase: "Waiting", Checksum: "5d8c7f9b4a", Type: spec.HookRollout,
		Metadata: map[string]string{"cmd": "hey"}}
	if diff := cmp.Diff(want, srv.last); diff != "" {
		t.Errorf("payload (-want +got):\n%s", diff)
	}
}

// A round replaced by a newer one has its calls in flight cancelled and its answers dropped:
// no Wake for it.
func TestRunnerNewRoundCancelsTheOld(t *testing.T) {
	hang := hangingServer(t)
	ok := countingServer(t, http.StatusOK)
	r, w := newRunner(t, 4)
	c := call("shop", "web", "aaaaaaaaaa")

	r.Results(c, []spec.Hook{{Name: "h", URL: hang.URL, Timeout: "1h"}}, round1)
	waitFor(t, hang.started, "the first round's call")
	c.Revision = "bbbbbbbbbb"
	r.Results(c, []spec.Hook{{Name: "h", URL: ok.URL}}, round1)
	waitFor(t, hang.canceled, "cancelling the replaced round's call")
	if got := w.next(t); got != "shop/web" {
		t.Fatalf("woke %s", got)
	}
	w.none(t, 200*time.Millisecond)
	if rs, done := r.Results(c, []spec.Hook{{Name: "h", URL: ok.URL}}, round1); !done || rs[0].Outcome != spec.HookPassed {
		t.Errorf("new round: done %v, %v", done, rs)
	}
	if n := r.Len(); n != 1 {
		t.Errorf("%d rounds kept, want 1", n)
	}
}

// The answers of a release nobody asks about are dropped after Forget; a round in flight is
// kept until it ends.
func TestRunnerForgets(t *testing.T) {
	hang := hangingServer(t)
	ok := countingServer(t, http.StatusOK)
	r, w := newRunner(t, 4)
	now := round1
	r.Now = func() time.Time { return now }
	r.Forget = time.Hour

	r.Results(call("shop", "done", "aaaaaaaaaa"), []spec.Hook{{Name: "h", URL: ok.URL}}, round1)
	w.next(t)
	r.Results(call("shop", "flight", "aaaaaaaaaa"), []spec.Hook{{Name: "h", URL: hang.URL, Timeout: "1h"}}, round1)
	waitFor(t, hang.started, "the call in flight")

	now = now.Add(59 * time.Minute)
	r.Results(call("shop", "other", "aaaaaaaaaa"), nil, round1) // no hooks: nothing kept
	if n := r.Len(); n != 2 {
		t.Fatalf("%d rounds kept before Forget, want 2", n)
	}
	now = now.Add(2 * time.Minute)
	r.Results(call("shop", "other", "aaaaaaaaaa"), []spec.Hook{{Name: "h", URL: ok.URL}}, round1)
	w.next(t)
	if n := r.Len(); n != 2 { // "flight" (in flight) and "other"
		t.Fatalf("%d rounds kept after Forget, want 2 (the one in flight and the new one)", n)
	}
	// Asked again, the forgotten release is called again.
	before := ok.calls.Load()
	r.Results(call("shop", "done", "aaaaaaaaaa"), []spec.Hook{{Name: "h", URL: ok.URL}}, round1)
	w.next(t)
	if n := ok.calls.Load(); n != before+1 {
		t.Errorf("forgotten round asked again: %d calls, want %d", n, before+1)
	}
}
