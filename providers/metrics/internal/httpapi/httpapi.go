// Package httpapi holds what the HTTP-based metric providers share: one reusable client that
// does not follow redirects (so credentials never travel to another host), address checks,
// and how a backend's error text is quoted into an error.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/providers/metrics"
)

// MaxErrText bounds how much of a backend's error body goes into an error.
const MaxErrText = 512

// NewClient returns a client for one backend, reused across queries: analysis queries run
// concurrently against one host, so it keeps enough idle connections; redirects are returned,
// not followed.
func NewClient() *http.Client {
	var rt http.RoundTripper = http.DefaultTransport
	if t, ok := http.DefaultTransport.(*http.Transport); ok {
		t = t.Clone()
		t.MaxIdleConnsPerHost = 32
		rt = t
	}
	return &http.Client{
		Transport: rt,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// ParseAddress checks a backend's base URL: http(s), a host, and no query, fragment or user
// info (credentials come from Secrets, never from the address).
func ParseAddress(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%q: scheme must be http or https", s)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%q: no host", s)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("%q: must not carry a query, fragment or user info", s)
	}
	return u, nil
}

// Quote renders a backend's answer for an error message, trimmed and bounded.
func Quote(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > MaxErrText {
		s = s[:MaxErrText] + "…"
	}
	return strconv.Quote(s)
}

// Abbreviate lists series names, at most five of them.
func Abbreviate(names []string) string {
	const show = 5
	if len(names) <= show {
		return strings.Join(names, "; ")
	}
	return strings.Join(names[:show], "; ") + fmt.Sprintf("; … %d more", len(names)-show)
}

// Do sends req with c and reads the whole body, capped at maxBody, so the connection goes back
// to the pool. who names the backend in errors ("datadog https://…"); a transport failure or
// timeout wraps metrics.ErrUnreachable, a caller's cancel does not.
func Do(c *http.Client, req *http.Request, who string, timeout time.Duration, maxBody int64) (int, []byte, error) {
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, transportError(req.Context(), who, timeout, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return 0, nil, transportError(req.Context(), who, timeout, err)
	}
	if int64(len(body)) > maxBody {
		return 0, nil, fmt.Errorf("%s: response larger than %d bytes", who, maxBody)
	}
	return resp.StatusCode, body, nil
}

func transportError(ctx context.Context, who string, timeout time.Duration, err error) error {
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		// The caller gave up (shutdown); that says nothing about the backend.
		return fmt.Errorf("%s: query canceled: %w", who, ctx.Err())
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%s: %w: no answer within %s: %w", who, metrics.ErrUnreachable, timeout, err)
	default:
		return fmt.Errorf("%s: %w: %w", who, metrics.ErrUnreachable, err)
	}
}
