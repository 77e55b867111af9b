// Package post sends one JSON POST to an endpoint a user configured — a hook (providers/hooks)
// or an alert service (providers/alerts) — the way the controller can afford to: no redirect is
// followed (a header or a user info password never travels to another host), every attempt has
// its own timeout, at most MaxAnswer bytes of an answer are read, and an error never quotes the
// URL (for most alert services the URL is the credential; a hook's may carry user info or a
// token in its query).
//
// It is not the metric providers' transport (providers/metrics/internal/httpapi): an analysis
// query must return one value, so there a large 2xx body is refused; here only the status
// matters and the body is an excerpt for the reason.
package post

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluice-dev/sluice/providers/metrics/redact"
)

const (
	// MaxAnswer caps how much of an answer is read; the rest is dropped.
	MaxAnswer = 64 << 10
	// MaxExcerpt bounds how much of an answer goes into a reason.
	MaxExcerpt = 512
)

// ErrUnreachable: no answer (connection failure, TLS failure, timeout).
var ErrUnreachable = errors.New("unreachable")

// Request is one POST.
type Request struct {
	URL  string
	Body []byte
	// Header is added to the request; Content-Type defaults to application/json.
	Header http.Header
	// Timeout bounds the attempt, from dialling to the end of the answer.
	Timeout time.Duration
	// InsecureSkipVerify accepts any TLS certificate.
	InsecureSkipVerify bool
}

// Answer is what the endpoint said.
type Answer struct {
	Status int
	// Body is at most MaxAnswer bytes of the answer; Truncated says there was more.
	Body      []byte
	Truncated bool
	// Location is where a redirect pointed (user info masked, query dropped).
	Location string
}

// Client sends requests; it keeps connections for reuse and is safe for concurrent use.
type Client struct {
	verified, insecure *http.Client
}

// NewClient returns a client over a clone of net/http's default transport (so the
// controller's HTTPS_PROXY applies).
func NewClient() *Client {
	return &Client{verified: client(false), insecure: client(true)}
}

func client(insecure bool) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 16
	if insecure {
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the user asked for it (disableTLS)
	}
	return &http.Client{
		Transport:     t,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Send posts r once. An error means there was no answer: it wraps ErrUnreachable (or the
// caller's context error when ctx ended) and never contains the URL.
func (c *Client) Send(ctx context.Context, r Request) (Answer, error) {
	if r.Timeout <= 0 {
		return Answer{}, errors.New("no timeout set")
	}
	actx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		return Answer{}, fmt.Errorf("%w: not a URL: %s", ErrUnreachable, Unwrap(err))
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.verified
	if r.InsecureSkipVerify {
		hc = c.insecure
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Answer{}, attemptError(ctx, actx, r.Timeout, err)
	}
	defer resp.Body.Close()
	a := Answer{Status: resp.StatusCode}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		a.Location = location(resp)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswer+1))
	if err != nil && len(b) == 0 {
		return Answer{}, attemptError(ctx, actx, r.Timeout, err)
	}
	if len(b) > MaxAnswer {
		b, a.Truncated = b[:MaxAnswer], true
	}
	a.Body = b
	return a, nil
}

// attemptError words a failed attempt: the caller's cancel as such, the attempt's timeout as
// "no answer within", anything else as the transport's own words without the URL.
func attemptError(parent, attempt context.Context, timeout time.Duration, err error) error {
	switch {
	case parent.Err() != nil:
		return fmt.Errorf("%w: %w", ErrUnreachable, parent.Err())
	case errors.Is(attempt.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%w: no answer within %s", ErrUnreachable, timeout)
	default:
		return fmt.Errorf("%w: %s", ErrUnreachable, Unwrap(err))
	}
}

// Unwrap is err's text without the `Post "URL": ` that net/http puts in front, user info of
// any URL left in it masked.
func Unwrap(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return redact.Text(err.Error())
}

// location is where a redirect points: user info masked, without query or fragment.
func location(resp *http.Response) string {
	u, err := resp.Location()
	if err != nil {
		return ""
	}
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = "", false, "", ""
	return redact.URL(u.String())
}

// Excerpt renders an answer's body for a reason: trimmed, at most MaxExcerpt bytes (on a rune
// boundary, "…" marking a cut), quoted, with the user info of any URL in it masked.
func Excerpt(b []byte, truncated bool) string {
	s := strings.TrimSpace(string(b))
	if len(s) > MaxExcerpt {
		i := MaxExcerpt
		for i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
		s, truncated = s[:i], true
	}
	if truncated {
		s += "…"
	}
	return strconv.Quote(redact.Text(s))
}

// Scrub replaces every occurrence of each non-empty secret in s by "xxxxx": an endpoint may
// echo a token or its own URL back.
func Scrub(s string, secrets ...string) string {
	for _, v := range secrets {
		if v != "" {
			s = strings.ReplaceAll(s, v, redact.Mask)
		}
	}
	return s
}
