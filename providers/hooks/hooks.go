// Package hooks calls one hook of a Deployment's `sluice.dev/webhooks` the way Flagger calls
// its webhooks, so an existing Flagger load tester, gate or event receiver works unchanged:
// an HTTP POST of Flagger's JSON payload, where an answer of 200–202 means yes (a gate is open,
// a check passed, a rollback is asked for) and anything else means no.
//
// What a call adds to Flagger's: every attempt has the hook's timeout; connection errors,
// timeouts and 5xx answers are retried (up to the hook's retries, with exponential backoff
// and jitter) while any other answer is final at once; no redirect is followed; at most 64 KiB
// of an answer are read; and the result is typed — Passed, Refused (with the status and an
// excerpt of the body) or Unreachable — with the URL's user info never in its text.
//
// Runner makes those calls for the rollout worker: in the background, at most --hook-concurrency
// at once, each round of a release's hooks called once however often the worker asks, and the
// release woken when a round has answered (see Runner).
//
// Deciding what a result means for the release is the planner's job; this package only calls.
package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/sluice-dev/sluice/providers/internal/post"
	"github.com/sluice-dev/sluice/providers/metrics/redact"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// Payload is the JSON body of a call: Flagger's CanaryWebhookPayload plus `type`, the hook's
// type (a field Flagger's receivers ignore).
type Payload struct {
	// Name and Namespace are the Deployment's.
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// Phase is the release's phase (spec.Phase) at the call.
	Phase string `json:"phase"`
	// Checksum identifies what is being released: Sluice sends the revision (the pod
	// template's hash), so a receiver can tell releases apart as with Flagger's checksum.
	Checksum string            `json:"checksum"`
	Type     spec.HookType     `json:"type"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Event is what an event hook is told: an event Sluice recorded.
type Event struct {
	Message string
	// Type is the Kubernetes event type, Normal or Warning.
	Type string
	Time time.Time
}

// NewPayload is the payload of hook h (any type but event) about r: the hook's metadata as is.
func NewPayload(h spec.Hook, r spec.HookCall) Payload {
	p := Payload{Name: r.Name, Namespace: r.Namespace, Phase: string(r.Phase), Checksum: r.Revision, Type: h.HookKind()}
	if len(h.Metadata) > 0 {
		p.Metadata = make(map[string]string, len(h.Metadata))
		for k, v := range h.Metadata {
			p.Metadata[k] = v
		}
	}
	return p
}

// NewEventPayload is the payload of event hook h about e in r, as Flagger's: metadata
// eventMessage, eventType and timestamp (Unix milliseconds), then the hook's own metadata
// where it does not collide with those.
func NewEventPayload(h spec.Hook, r spec.HookCall, e Event) Payload {
	p := NewPayload(h, r)
	p.Type = spec.HookEvent
	md := map[string]string{
		"eventMessage": e.Message,
		"eventType":    e.Type,
		"timestamp":    strconv.FormatInt(e.Time.UnixMilli(), 10),
	}
	for k, v := range h.Metadata {
		if _, taken := md[k]; !taken {
			md[k] = v
		}
	}
	p.Metadata = md
	return p
}

// Outcome is how a call ended.
type Outcome string

// Outcomes.
const (
	// Passed: the hook answered 200, 201 or 202 (Flagger's "yes").
	Passed Outcome = "Passed"
	// Refused: the hook answered with any other status (after the retries a 5xx gets).
	Refused Outcome = "Refused"
	// Unreachable: no answer, after every retry (connection error, TLS error, timeout), or the
	// caller's context ended.
	Unreachable Outcome = "Unreachable"
)

// Result is the end of one call.
type Result struct {
	Outcome Outcome
	// Status is the last answer's HTTP status (0 when Unreachable).
	Status int
	// Body is an excerpt of a refusing answer's body, quoted (at most 512 bytes).
	Body string
	// Attempts made (1 + retries used).
	Attempts int
	// Err says why an Unreachable call got no answer; it wraps the caller's context error when
	// that ended the call.
	Err error
}

// Reason is the result in one line for an Event or the release state, e.g.
// `HTTP 403 "gate closed"` or `unreachable after 3 attempts: dial tcp 10.0.0.1:80: connect:
// connection refused`.
func (r Result) Reason() string {
	switch r.Outcome {
	case Passed:
		return fmt.Sprintf("HTTP %d", r.Status)
	case Refused:
		if r.Body == "" {
			return fmt.Sprintf("HTTP %d", r.Status)
		}
		return fmt.Sprintf("HTTP %d %s", r.Status, r.Body)
	default:
		if r.Attempts > 1 {
			return fmt.Sprintf("unreachable after %d attempts: %v", r.Attempts, r.Err)
		}
		return fmt.Sprintf("unreachable: %v", r.Err)
	}
}

// Caller makes hook calls. The zero value is not usable; use New. Safe for concurrent use.
type Caller struct {
	client *post.Client
	// Backoff is the wait before retry n (1, 2, …).
	Backoff func(retry int) time.Duration
}

// Default backoff: 500ms, 1s, 2s … capped at 8s, each with up to half of it added as jitter,
// so that releases whose hook went down together do not retry in lockstep.
const (
	BackoffBase = 500 * time.Millisecond
	BackoffMax  = 8 * time.Second
)

// New returns a Caller with the default backoff.
func New() *Caller {
	exp := ExponentialBackoff(BackoffBase, BackoffMax)
	return &Caller{
		client: post.NewClient(),
		Backoff: func(retry int) time.Duration {
			d := exp(retry)
			return d + rand.N(d/2+1) //nolint:gosec // jitter, not a secret
		},
	}
}

// ExponentialBackoff returns base·2^(retry-1), at most max, without jitter.
func ExponentialBackoff(base, max time.Duration) func(retry int) time.Duration {
	return func(retry int) time.Duration {
		d := base
		for i := 1; i < retry && d < max; i++ {
			d *= 2
		}
		return min(d, max)
	}
}

// Retryable reports whether an attempt that ended so is worth repeating: no answer (but not
// because the caller gave up), or a 5xx answer. A 4xx, a redirect or any other answer is the
// hook's final word.
func Retryable(status int, err error) bool {
	if err != nil {
		return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
	}
	return status >= 500 && status <= 599
}

// Budget is the longest a call to h can take: every attempt timing out, plus the waits
// between them at the default backoff's longest (with jitter).
func Budget(h spec.Hook) time.Duration {
	d := time.Duration(h.Retries+1) * h.TimeoutDuration()
	exp := ExponentialBackoff(BackoffBase, BackoffMax)
	for n := 1; n <= h.Retries; n++ {
		d += exp(n) * 3 / 2
	}
	return d
}

// Call posts p to hook h and returns how it ended. It returns early, Unreachable, when ctx
// ends.
func (c *Caller) Call(ctx context.Context, h spec.Hook, p Payload) Result {
	body, err := json.Marshal(p)
	if err != nil {
		return Result{Outcome: Unreachable, Err: fmt.Errorf("encode the payload: %w", err)}
	}
	req := post.Request{URL: h.URL, Body: body, Timeout: h.TimeoutDuration(), InsecureSkipVerify: h.DisableTLS}
	var res Result
	for attempt := 1; ; attempt++ {
		res = c.attempt(ctx, req)
		res.Attempts = attempt
		if attempt > h.Retries || !Retryable(res.Status, res.Err) {
			return res
		}
		if err := sleep(ctx, c.Backoff(attempt)); err != nil {
			if res.Outcome == Unreachable {
				res.Err = fmt.Errorf("%w; then %w while waiting to retry", res.Err, err)
			}
			return res
		}
	}
}

func (c *Caller) attempt(ctx context.Context, req post.Request) Result {
	a, err := c.client.Send(ctx, req)
	if err != nil {
		return Result{Outcome: Unreachable, Err: redact.Error(err)}
	}
	if a.Status >= http.StatusOK && a.Status <= http.StatusAccepted {
		return Result{Outcome: Passed, Status: a.Status}
	}
	r := Result{Outcome: Refused, Status: a.Status}
	if len(bytes.TrimSpace(a.Body)) > 0 {
		r.Body = post.Excerpt(a.Body, a.Truncated)
	}
	if a.Location != "" {
		r.Body = fmt.Sprintf("redirect to %q not followed: Sluice never follows a hook's redirects; set the url to the final address", a.Location)
	}
	return r
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
