// Package httpapi holds what the HTTP-based metric providers share: one reusable client whose
// transport refuses redirects (so credentials and custom headers never travel to another host)
// and caps every response body (so a MetricTemplate cannot make the controller, which also
// serves the fail-closed webhook, allocate without bound), address checks that keep
// credentials out of addresses, and how a backend's error text is quoted into an error.
//
// Every provider's HTTP traffic goes through Transport: the plain HTTP providers through
// NewClient and Do, prometheus through client_golang's api.Config.Client, cloudwatch through
// the AWS SDK's HTTPClient option.
package httpapi

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

	"github.com/sluice-dev/sluice/providers/metrics"
	"github.com/sluice-dev/sluice/providers/metrics/redact"
)

const (
	// MaxBody caps a successful (2xx) response: an analysis query returns one value, so a
	// larger answer is a wrong query or a hostile server, and fails the check.
	MaxBody = 1 << 20
	// MaxErrBody caps how much of any other response is read; the rest is dropped, since only
	// MaxErrText of it is ever quoted.
	MaxErrBody = 64 << 10
	// MaxErrText bounds how much of a backend's error body goes into an error.
	MaxErrText = 512
	// chunk is the read size of bodies of unknown length; an oversized body costs MaxBody plus
	// at most one chunk.
	chunk = 32 << 10
)

// RefusedError is an answer Sluice will not use: a redirect or an oversized body. It is a
// failed check that says why, never "unreachable" or "no data".
type RefusedError struct {
	Status int
	// Redirect: Location is the target, redacted and without its query.
	Redirect bool
	Location string
	// Declared is the Content-Length of an oversized body, -1 when the server sent none.
	Declared int64
}

func (e *RefusedError) Error() string {
	if e.Redirect {
		return fmt.Sprintf("HTTP %d redirect to %q not followed: Sluice never follows redirects, so credentials and headers stay on the configured host; set the address to the final URL",
			e.Status, e.Location)
	}
	size := fmt.Sprintf("more than %d bytes", int64(MaxBody))
	if e.Declared > MaxBody {
		size = fmt.Sprintf("Content-Length %d", e.Declared)
	}
	return fmt.Sprintf("HTTP %d response body larger than the %d MiB limit (%s): an analysis query must return one value",
		e.Status, MaxBody>>20, size)
}

// RetryableError tells the AWS SDK's retryer not to try again: the same answer would come back.
func (e *RefusedError) RetryableError() bool { return false }

// Transport wraps next so that no redirect is followed and no body is read past its cap: a
// 3xx answer becomes a *RefusedError; a 2xx body is read whole (at most MaxBody, else a
// *RefusedError) before the caller sees it; any other body is read up to MaxErrBody and cut.
func Transport(next http.RoundTripper) http.RoundTripper { return guard{next: next} }

type guard struct{ next http.RoundTripper }

func (g guard) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := g.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return nil, &RefusedError{Status: resp.StatusCode, Redirect: true, Location: location(resp)}
	}
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	limit := int64(MaxErrBody)
	if ok {
		limit = MaxBody
		if resp.ContentLength > MaxBody {
			return nil, &RefusedError{Status: resp.StatusCode, Declared: resp.ContentLength}
		}
	}
	body, over, err := readCapped(resp.Body, resp.ContentLength, limit, !ok)
	if err != nil {
		return nil, err
	}
	if over && ok {
		return nil, &RefusedError{Status: resp.StatusCode, Declared: resp.ContentLength}
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	return resp, nil
}

// location is where a redirect points, for the error: redacted, without query or fragment.
func location(resp *http.Response) string {
	u, err := resp.Location()
	if err != nil {
		return redact.Text(resp.Header.Get("Location"))
	}
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = "", false, "", ""
	return redact.URL(u.String())
}

// readCapped reads r up to limit bytes; over reports that r held more, and then the body is
// the first limit bytes when truncate is set, else nil. A body of declared length within the
// limit is read into one buffer, any other in chunks joined at the end, so a body cut at the
// limit costs about limit bytes, not the repeated doubling of io.ReadAll.
func readCapped(r io.Reader, declared, limit int64, truncate bool) (body []byte, over bool, err error) {
	if declared >= 0 && declared <= limit {
		b := make([]byte, declared)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, false, err
		}
		return b, false, nil
	}
	var chunks [][]byte
	var n int64
	for n <= limit {
		c := make([]byte, min(chunk, limit+1-n))
		m, err := io.ReadFull(r, c)
		chunks = append(chunks, c[:m])
		n += int64(m)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return nil, false, err
		}
	}
	if over = n > limit; over {
		if !truncate {
			return nil, true, nil
		}
		n = limit
	}
	b := make([]byte, 0, n)
	for _, c := range chunks {
		b = append(b, c[:min(int64(len(c)), n-int64(len(b)))]...)
	}
	return b, over, nil
}

// NewTransport is a transport for one backend, reused across queries: analysis queries run
// concurrently against one host, so it keeps enough idle connections; insecureSkipVerify
// accepts any TLS certificate (when a template asks for it).
func NewTransport(insecureSkipVerify bool) http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 32
	if insecureSkipVerify {
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the template asked for it
	}
	return Transport(t)
}

// NewClient returns a client for one backend over NewTransport(false).
func NewClient() *http.Client { return WithTransport(NewTransport(false)) }

// WithTransport returns a client over rt (built on Transport) that never follows a redirect,
// even if rt let one through.
func WithTransport(rt http.RoundTripper) *http.Client {
	return &http.Client{
		Transport: rt,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// ParseAddress checks a backend's base URL: http(s), a host, and no query, fragment or user
// info (credentials come from Secrets, never from the address). Its errors show the address
// redacted.
func ParseAddress(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%q is not a URL: %s", redact.URL(s), redact.Text(err.Error()))
	}
	shown := strconv.Quote(redact.URL(s))
	switch {
	case u.User != nil:
		return nil, fmt.Errorf("%s: must not carry user info; put credentials in the provider's Secret", shown)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%s: scheme must be http or https", shown)
	case u.Host == "" || u.Opaque != "":
		return nil, fmt.Errorf("%s: no host", shown)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, fmt.Errorf("%s: must not carry a query or fragment", shown)
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

// Do sends req with c (built by NewClient or WithTransport) and reads the whole body, already
// capped by Transport. who names the backend in errors ("datadog https://…"); a transport
// failure or timeout wraps metrics.ErrUnreachable, a refused answer or a caller's cancel does
// not.
func Do(c *http.Client, req *http.Request, who string, timeout time.Duration) (int, []byte, error) {
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, TransportError(req.Context(), who, timeout, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, TransportError(req.Context(), who, timeout, err)
	}
	return resp.StatusCode, body, nil
}

// TransportError words an error of a request to backend who sent under a context whose
// deadline is timeout: a refused answer as itself, a caller's cancel as such, anything else
// (connection failure, timeout) as metrics.ErrUnreachable. The text is redacted.
func TransportError(ctx context.Context, who string, timeout time.Duration, err error) error {
	var refused *RefusedError
	switch {
	case errors.As(err, &refused):
		return fmt.Errorf("%s: %w", who, refused)
	case errors.Is(ctx.Err(), context.Canceled):
		// The caller gave up (shutdown); that says nothing about the backend.
		return fmt.Errorf("%s: query canceled: %w", who, ctx.Err())
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return redact.Error(fmt.Errorf("%s: %w: no answer within %s: %w", who, metrics.ErrUnreachable, timeout, err))
	default:
		return redact.Error(fmt.Errorf("%s: %w: %w", who, metrics.ErrUnreachable, err))
	}
}
