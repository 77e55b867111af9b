package hooks_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
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

var release = spec.HookCall{Name: "web", Namespace: "shop", Phase: spec.PhaseProgressing, Revision: "5d8c7f9b4a"}

// caller is a Caller whose retries wait 1ms, recording the retry numbers it was asked about.
func caller(waits *[]int) *hooks.Caller {
	c := hooks.New()
	var mu sync.Mutex
	c.Backoff = func(n int) time.Duration {
		if waits != nil {
			mu.Lock()
			*waits = append(*waits, n)
			mu.Unlock()
		}
		return time.Millisecond
	}
	return c
}

// Flagger's payload, byte for byte: its receivers (the load tester, gates) decode it.
func TestPayloadJSON(t *testing.T) {
	at := time.Date(2026, 7, 1, 12, 0, 0, 123e6, time.UTC)
	tests := map[string]struct {
		payload hooks.Payload
		want    string
	}{
		"a rollout hook with metadata": {
			payload: hooks.NewPayload(spec.Hook{Name: "load", URL: "http://lt/", Metadata: map[string]string{"type": "cmd", "cmd": "hey -z 1m http://web-canary.shop/"}}, release),
			want:    `{"name":"web","namespace":"shop","phase":"Progressing","checksum":"5d8c7f9b4a","type":"rollout","metadata":{"cmd":"hey -z 1m http://web-canary.shop/","type":"cmd"}}`,
		},
		"a gate without metadata has no metadata field": {
			payload: hooks.NewPayload(spec.Hook{Name: "gate", Type: spec.HookConfirmPromotion, URL: "http://lt/gate/approve"}, release),
			want:    `{"name":"web","namespace":"shop","phase":"Progressing","checksum":"5d8c7f9b4a","type":"confirm-promotion"}`,
		},
		"an event hook: the event's fields win over the hook's metadata": {
			payload: hooks.NewEventPayload(spec.Hook{Name: "events", Type: spec.HookEvent, URL: "http://recv/",
				Metadata: map[string]string{"cluster": "eu-1", "eventType": "mine"}},
				release, hooks.Event{Message: "advanced web to 20%", Type: "Normal", Time: at}),
			want: `{"name":"web","namespace":"shop","phase":"Progressing","checksum":"5d8c7f9b4a","type":"event",` +
				`"metadata":{"cluster":"eu-1","eventMessage":"advanced web to 20%","eventType":"Normal","timestamp":"1782907200123"}}`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := json.Marshal(tc.payload)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("payload\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

// A hook's metadata is copied: changing the payload does not change the frozen plan.
func TestNewPayloadCopiesMetadata(t *testing.T) {
	h := spec.Hook{Metadata: map[string]string{"k": "v"}}
	p := hooks.NewPayload(h, release)
	p.Metadata["k"] = "changed"
	if h.Metadata["k"] != "v" {
		t.Error("NewPayload shares the hook's metadata map")
	}
}

// What the hook's server receives is exactly Flagger's request: a POST of the JSON payload
// with Content-Type application/json.
func TestCallSendsThePayload(t *testing.T) {
	var got struct {
		method, contentType, body string
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.method, got.contentType, got.body = r.Method, r.Header.Get("Content-Type"), string(b)
	}))
	defer srv.Close()
	h := spec.Hook{Name: "load", Type: spec.HookRollout, URL: srv.URL + "/", Metadata: map[string]string{"cmd": "hey"}}
	res := caller(nil).Call(t.Context(), h, hooks.NewPayload(h, release))
	if res.Outcome != hooks.Passed || res.Status != 200 || res.Attempts != 1 {
		t.Fatalf("result = %+v, want Passed 200 in 1 attempt", res)
	}
	want := `{"name":"web","namespace":"shop","phase":"Progressing","checksum":"5d8c7f9b4a","type":"rollout","metadata":{"cmd":"hey"}}`
	if got.method != http.MethodPost || got.contentType != "application/json" || got.body != want {
		t.Errorf("request = %s %q %s\nwant POST \"application/json\" %s", got.method, got.contentType, got.body, want)
	}
}

// The answers: 200–202 pass (Flagger's rule, so 204 does not), any other answer refuses with
// its status and body; a 5xx is retried, a 4xx or a redirect is final at once.
func TestCallOutcomes(t *testing.T) {
	tests := map[string]struct {
		answers      []int // status of each attempt; the last repeats
		body         string
		retries      int
		want         hooks.Outcome
		wantStatus   int
		wantAttempts int
		wantReason   string
	}{
		"200 passes":                    {answers: []int{200}, want: hooks.Passed, wantStatus: 200, wantAttempts: 1, wantReason: "HTTP 200"},
		"201 passes":                    {answers: []int{201}, want: hooks.Passed, wantStatus: 201, wantAttempts: 1},
		"202 passes":                    {answers: []int{202}, want: hooks.Passed, wantStatus: 202, wantAttempts: 1},
		"204 refuses (Flagger: >202)":   {answers: []int{204}, retries: 3, want: hooks.Refused, wantStatus: 204, wantAttempts: 1, wantReason: "HTTP 204"},
		"403 with a body, not retried":  {answers: []int{403}, body: "gate closed\n", retries: 3, want: hooks.Refused, wantStatus: 403, wantAttempts: 1, wantReason: `HTTP 403 "gate closed"`},
		"404 not retried":               {answers: []int{404}, retries: 5, want: hooks.Refused, wantStatus: 404, wantAttempts: 1},
		"429 not retried":               {answers: []int{429}, retries: 5, want: hooks.Refused, wantStatus: 429, wantAttempts: 1},
		"500 without retries":           {answers: []int{500}, want: hooks.Refused, wantStatus: 500, wantAttempts: 1},
		"503 retried until retries end": {answers: []int{503}, body: "busy", retries: 2, want: hooks.Refused, wantStatus: 503, wantAttempts: 3, wantReason: `HTTP 503 "busy"`},
		"502 then 200 passes":           {answers: []int{502, 200}, retries: 2, want: hooks.Passed, wantStatus: 200, wantAttempts: 2},
		"500, 503, then 403 is final":   {answers: []int{500, 503, 403}, retries: 5, want: hooks.Refused, wantStatus: 403, wantAttempts: 3},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var n atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				i := int(n.Add(1)) - 1
				w.WriteHeader(tc.answers[min(i, len(tc.answers)-1)])
				_, _ = io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			var waits []int
			h := spec.Hook{Name: "h", URL: srv.URL, Retries: tc.retries}
			res := caller(&waits).Call(t.Context(), h, hooks.NewPayload(h, release))
			if res.Outcome != tc.want || res.Status != tc.wantStatus || res.Attempts != tc.wantAttempts || res.Err != nil {
				t.Errorf("result = %+v, want %s %d in %d attempt(s)", res, tc.want, tc.wantStatus, tc.wantAttempts)
			}
			if int(n.Load()) != tc.wantAttempts {
				t.Errorf("server saw %d requests, want %d", n.Load(), tc.wantAttempts)
			}
			if len(waits) != tc.wantAttempts-1 || (len(waits) > 0 && waits[0] != 1) {
				t.Errorf("backoff asked for retries %v, want 1..%d", waits, tc.wantAttempts-1)
			}
			if tc.wantReason != "" && res.Reason() != tc.wantReason {
				t.Errorf("reason = %s, want %s", res.Reason(), tc.wantReason)
			}
		})
	}
}

// A redirect is never followed: the target never sees the payload (nor the user info's
// password as a Basic header), and the result says where it pointed, user info masked.
func TestCallDoesNotFollowRedirects(t *testing.T) {
	var followed atomic.Bool
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { followed.Store(true) }))
	defer target.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, strings.Replace(target.URL, "http://", "http://someone:pw@", 1)+"/x?token=abc", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	h := spec.Hook{Name: "h", URL: strings.Replace(srv.URL, "http://", "http://user:s3cret@", 1), Retries: 3}
	res := caller(nil).Call(t.Context(), h, hooks.NewPayload(h, release))
	if res.Outcome != hooks.Refused || res.Status != 307 || res.Attempts != 1 || followed.Load() {
		t.Fatalf("result = %+v (followed: %v), want Refused 307 in one attempt, not followed", res, followed.Load())
	}
	want := `HTTP 307 redirect to "http://xxxxx@` + strings.TrimPrefix(target.URL, "http://") + `/x" not followed`
	if !strings.HasPrefix(res.Reason(), want) || strings.Contains(res.Reason(), "token=abc") {
		t.Errorf("reason = %s, want it to start %s", res.Reason(), want)
	}
}

// User info in a hook's URL authenticates (Basic, as with Flagger) and never shows in a result.
func TestCallUserInfo(t *testing.T) {
	var user, pass string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ = r.BasicAuth()
		http.Error(w, "no: "+r.Header.Get("Authorization")+" http://user:s3cret@elsewhere/", http.StatusForbidden)
	}))
	defer srv.Close()
	h := spec.Hook{Name: "h", URL: strings.Replace(srv.URL, "http://", "http://user:s3cret@", 1)}
	res := caller(nil).Call(t.Context(), h, hooks.NewPayload(h, release))
	if user != "user" || pass != "s3cret" {
		t.Errorf("server saw Basic %q:%q, want user:s3cret", user, pass)
	}
	if res.Outcome != hooks.Refused || strings.Contains(res.Reason(), "s3cret") {
		t.Errorf("reason = %s: want Refused without the password", res.Reason())
	}

	// Unreachable: the error names no URL at all, so no user info either.
	srv.Close()
	res = caller(nil).Call(t.Context(), h, hooks.NewPayload(h, release))
	if res.Outcome != hooks.Unreachable || strings.Contains(res.Reason(), "s3cret") || strings.Contains(res.Reason(), "user") {
		t.Errorf("reason = %s: want Unreachable without the user info", res.Reason())
	}
}

// Connection errors are retried, then the call is Unreachable, saying why.
func TestCallUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now: connection refused
	var waits []int
	h := spec.Hook{Name: "h", URL: "http://" + addr + "/", Retries: 3}
	res := caller(&waits).Call(t.Context(), h, hooks.NewPayload(h, release))
	if res.Outcome != hooks.Unreachable || res.Attempts != 4 || res.Status != 0 || res.Err == nil {
		t.Fatalf("result = %+v, want Unreachable after 4 attempts", res)
	}
	if diff := cmp.Diff([]int{1, 2, 3}, waits); diff != "" {
		t.Errorf("backoff retries (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(res.Reason(), "unreachable after 4 attempts: ") || !strings.Contains(res.Reason(), "connection refused") {
		t.Errorf("reason = %s", res.Reason())
	}
}

// Every attempt gets the hook's timeout: a hook that never answers is retried, and the call
// ends after about (retries+1) × timeout.
func TestCallTimeout(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		_, _ = io.Copy(io.Discard, r.Body) // so that the server sees the client hang up
		<-r.Context().Done()               // never answers
	}))
	defer srv.Close()
	h := spec.Hook{Name: "h", URL: srv.URL, Timeout: "100ms", Retries: 1}
	start := time.Now()
	res := caller(nil).Call(t.Context(), h, hooks.NewPayload(h, release))
	took := time.Since(start)
	if res.Outcome != hooks.Unreachable || res.Attempts != 2 || n.Load() != 2 {
		t.Fatalf("result = %+v after %d requests, want Unreachable after 2", res, n.Load())
	}
	if !strings.Contains(res.Reason(), "no answer within 100ms") {
		t.Errorf("reason = %s", res.Reason())
	}
	if took < 200*time.Millisecond || took > 2*time.Second {
		t.Errorf("call took %s, want about 2 × 100ms", took)
	}
}

// When the caller's context ends the call stops at once, without retries, and says so.
func TestCallCanceled(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	h := spec.Hook{Name: "h", URL: srv.URL, Timeout: "30s", Retries: 5}
	start := time.Now()
	res := caller(nil).Call(ctx, h, hooks.NewPayload(h, release))
	if res.Outcome != hooks.Unreachable || res.Attempts != 1 || !errors.Is(res.Err, context.Canceled) {
		t.Errorf("result = %+v, want Unreachable after 1 attempt, canceled", res)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("a canceled call took %s", took)
	}

	// Canceled while waiting to retry: the last answer stands.
	srv503 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	defer srv503.Close()
	ctx, cancel = context.WithCancel(t.Context())
	c := hooks.New()
	c.Backoff = func(int) time.Duration { cancel(); return time.Hour }
	h = spec.Hook{Name: "h", URL: srv503.URL, Retries: 5}
	if res := c.Call(ctx, h, hooks.NewPayload(h, release)); res.Outcome != hooks.Refused || res.Status != 503 || res.Attempts != 1 {
		t.Errorf("result = %+v, want the 503 of the one attempt", res)
	}
}

// A huge answer is not read whole, and its excerpt is bounded.
func TestCallCapsTheAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		chunk := []byte(strings.Repeat("é", 16<<10))
		for i := 0; i < 2048; i++ { // 64 MiB, unless the client stops reading
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	h := spec.Hook{Name: "h", URL: srv.URL}
	start := time.Now()
	res := caller(nil).Call(t.Context(), h, hooks.NewPayload(h, release))
	if res.Outcome != hooks.Refused || res.Status != 400 {
		t.Fatalf("result = %+v", res)
	}
	if len(res.Body) > 512+8 || !strings.HasSuffix(res.Body, `…"`) {
		t.Errorf("excerpt of %d bytes (%.20s…), want at most 512 bytes of body, marked as cut", len(res.Body), res.Body)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("reading a 64 MiB answer took %s: it should stop at the cap", took)
	}
}

// disableTLS accepts a self-signed certificate; without it the call is Unreachable.
func TestCallDisableTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	h := spec.Hook{Name: "h", URL: srv.URL}
	if res := caller(nil).Call(t.Context(), h, hooks.NewPayload(h, release)); res.Outcome != hooks.Unreachable || !strings.Contains(res.Reason(), "certificate") {
		t.Errorf("verified TLS to a self-signed server: %s, want Unreachable (certificate)", res.Reason())
	}
	h.DisableTLS = true
	if res := caller(nil).Call(t.Context(), h, hooks.NewPayload(h, release)); res.Outcome != hooks.Passed {
		t.Errorf("disableTLS: %s, want Passed", res.Reason())
	}
}

func TestRetryable(t *testing.T) {
	tests := map[string]struct {
		status int
		err    error
		want   bool
	}{
		"connection error":         {err: errors.New("unreachable: connection refused"), want: true},
		"caller canceled":          {err: context.Canceled, want: false},
		"caller's deadline passed": {err: context.DeadlineExceeded, want: false},
		"500":                      {status: 500, want: true},
		"503":                      {status: 503, want: true},
		"599":                      {status: 599, want: true},
		"200":                      {status: 200, want: false},
		"307":                      {status: 307, want: false},
		"400":                      {status: 400, want: false},
		"429":                      {status: 429, want: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := hooks.Retryable(tc.status, tc.err); got != tc.want {
				t.Errorf("Retryable(%d, %v) = %v, want %v", tc.status, tc.err, got, tc.want)
			}
		})
	}
}

func TestExponentialBackoff(t *testing.T) {
	b := hooks.ExponentialBackoff(500*time.Millisecond, 8*time.Second)
	want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second, 8 * time.Second}
	for i, w := range want {
		if got := b(i + 1); got != w {
			t.Errorf("retry %d: %s, want %s", i+1, got, w)
		}
	}
	if got := b(1000); got != 8*time.Second {
		t.Errorf("retry 1000: %s, want the cap", got)
	}
	// The default adds jitter of at most half.
	c := hooks.New()
	for n := 1; n <= 6; n++ {
		for range 20 {
			if d := c.Backoff(n); d < b(n) || d > b(n)*3/2 {
				t.Fatalf("default backoff for retry %d: %s, want %s..%s", n, d, b(n), b(n)*3/2)
			}
		}
	}
}

func TestBudget(t *testing.T) {
	tests := map[string]struct {
		hook spec.Hook
		want time.Duration
	}{
		"default: one 10s attempt":                {hook: spec.Hook{}, want: 10 * time.Second},
		"2 retries of 5s: 15s + 0.75s + 1.5s":     {hook: spec.Hook{Timeout: "5s", Retries: 2}, want: 15*time.Second + 2250*time.Millisecond},
		"10 retries of 1s: 11s + capped backoffs": {hook: spec.Hook{Timeout: "1s", Retries: 10}, want: 11*time.Second + (500+1000+2000+4000+8000*6)*time.Millisecond*3/2},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := hooks.Budget(tc.hook); got != tc.want {
				t.Errorf("Budget = %s, want %s", got, tc.want)
			}
		})
	}
}
