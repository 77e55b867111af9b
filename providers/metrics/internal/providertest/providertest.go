// Package providertest is the conformance suite every metric provider passes: how it reports
// an unreachable backend, a timeout and a caller's cancel, that it reuses one connection, and
// the hardening every backend gets (a redirect is refused and nothing reaches its target, a
// huge body costs about the cap and fails the check, an address with user info is refused
// without being repeated). Each provider's own tests keep what is specific to its API.
package providertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/providers/metrics"
	"github.com/sluice-dev/sluice/providers/metrics/internal/httpapi"
)

var sentinels = []error{metrics.ErrNoData, metrics.ErrMultipleSeries, metrics.ErrUnreachable}

// CheckErr fails t unless err is an error that matches want (nil: none) and no other sentinel,
// and mentions every text.
func CheckErr(t *testing.T, err, want error, texts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want an error")
	}
	for _, s := range sentinels {
		if got, wantIs := errors.Is(err, s), s == want; got != wantIs { //nolint:errorlint // is s the wanted sentinel: both are sentinels, not returned errors
			t.Errorf("errors.Is(err, %q) = %v, want %v; err = %v", s, got, wantIs, err)
		}
	}
	for _, s := range texts {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("err = %q, want it to mention %q", err, s)
		}
	}
}

// Transport describes one provider for the suite.
type Transport struct {
	// New builds the provider against address with the given query timeout, with credentials
	// (whatever the backend takes) set.
	New func(address string, timeout time.Duration) (metrics.Provider, error)
	// Query is any valid query.
	Query string
	// OK answers a query with one good value.
	OK http.HandlerFunc
}

func (tr Transport) build(t *testing.T, address string, timeout time.Duration) metrics.Provider {
	t.Helper()
	p, err := tr.New(address, timeout)
	if err != nil {
		t.Fatalf("New(%q): %v", address, err)
	}
	return p
}

// Run runs the suite as subtests.
func (tr Transport) Run(t *testing.T) {
	t.Run("unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		addr := srv.URL
		srv.Close()
		_, err := tr.build(t, addr, 10*time.Second).Query(t.Context(), tr.Query)
		CheckErr(t, err, metrics.ErrUnreachable, addr)
	})

	t.Run("timeout", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select { // hang until the client gives up (or the test ends)
			case <-r.Context().Done():
			case <-release:
			}
		}))
		t.Cleanup(srv.Close)
		t.Cleanup(func() { close(release) })
		start := time.Now()
		_, err := tr.build(t, srv.URL, 100*time.Millisecond).Query(t.Context(), tr.Query)
		CheckErr(t, err, metrics.ErrUnreachable, "no answer within 100ms")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want it to wrap context.DeadlineExceeded", err)
		}
		if elapsed := time.Since(start); elapsed > 5*time.Second {
			t.Errorf("Query took %s; the 100ms timeout was not applied", elapsed)
		}
	})

	t.Run("caller cancel is not unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t.Error("no request expected after the caller canceled")
		}))
		t.Cleanup(srv.Close)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := tr.build(t, srv.URL, 10*time.Second).Query(ctx, tr.Query)
		if !errors.Is(err, context.Canceled) || errors.Is(err, metrics.ErrUnreachable) {
			t.Errorf("err = %v, want context.Canceled and not ErrUnreachable", err)
		}
	})

	t.Run("one connection for many queries", func(t *testing.T) {
		var conns, requests atomic.Int32
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if requests.Add(1) == 2 { // one failing answer must not cost the connection
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = w.Write([]byte("boom"))
				return
			}
			tr.OK(w, r)
		}))
		srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		}
		srv.Start()
		t.Cleanup(srv.Close)
		p := tr.build(t, srv.URL, 10*time.Second)
		for range 4 {
			_, _ = p.Query(t.Context(), tr.Query)
		}
		if n := conns.Load(); n != 1 {
			t.Errorf("4 sequential queries opened %d connections, want 1 (client and connection reused)", n)
		}
	})

	tr.runHardening(t)
}

// runHardening: what a MetricTemplate author must not be able to do through any provider.
func (tr Transport) runHardening(t *testing.T) {
	t.Run("redirect refused, nothing reaches the target", func(t *testing.T) {
		var (
			mu  sync.Mutex
			got []http.Header
		)
		elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			got = append(got, r.Header.Clone())
			mu.Unlock()
			tr.OK(w, r)
		}))
		t.Cleanup(elsewhere.Close)
		for _, code := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, elsewhere.URL+r.URL.Path+"?token=leak", code)
			}))
			t.Cleanup(srv.Close)
			_, err := tr.build(t, srv.URL, 10*time.Second).Query(t.Context(), tr.Query)
			CheckErr(t, err, nil, fmt.Sprintf("HTTP %d redirect", code), "not followed", elsewhere.URL)
			if err != nil && strings.Contains(err.Error(), "leak") {
				t.Errorf("err = %q repeats the redirect's query", err)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if len(got) > 0 {
			t.Errorf("the redirect target got %d requests (headers %v); credentials and headers left the configured host", len(got), got)
		}
	})

	const huge = 64 << 20
	serveHuge := func(status int, declare bool) *httptest.Server {
		block := bytes.Repeat([]byte("x"), 64<<10)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if declare {
				w.Header().Set("Content-Length", strconv.Itoa(huge))
			}
			w.WriteHeader(status)
			for range huge / len(block) {
				if _, err := w.Write(block); err != nil {
					return // the client stopped reading
				}
			}
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	for name, tc := range map[string]struct {
		status  int
		declare bool
		text    string
		budget  uint64
	}{
		"64 MiB success body, Content-Length": {http.StatusOK, true, "larger than the 1 MiB limit", 1 << 20},
		"64 MiB success body, chunked":        {http.StatusOK, false, "larger than the 1 MiB limit", httpapi.MaxBody + 1<<20},
		"64 MiB error body":                   {http.StatusInternalServerError, false, "500", 2 << 20}, // an SDK may retry a 5xx
	} {
		t.Run(name, func(t *testing.T) {
			srv := serveHuge(tc.status, tc.declare)
			p := tr.build(t, srv.URL, 30*time.Second)
			cost, err := allocated(func() error { _, err := p.Query(t.Context(), tr.Query); return err })
			if errors.Is(err, metrics.ErrNoData) || errors.Is(err, metrics.ErrUnreachable) {
				t.Errorf("err = %v; an oversized answer is a failed check, not no data or unreachable", err)
			}
			CheckErr(t, err, nil, tc.text)
			if len(err.Error()) > 4*httpapi.MaxErrText {
				t.Errorf("error text is %d bytes long", len(err.Error()))
			}
			t.Logf("a 64 MiB body (HTTP %d) cost %.2f MiB", tc.status, float64(cost)/(1<<20))
			if cost > tc.budget {
				t.Errorf("a 64 MiB body cost %d bytes of allocations, want at most %d", cost, tc.budget)
			}
		})
	}

	t.Run("user info in the address is refused, not repeated", func(t *testing.T) {
		for _, addr := range []string{
			"http://sluice-user:hunter2@127.0.0.1:1",
			"https://hunter2@127.0.0.1:1/prefix",
			"http://sluice-user:hunter2@127.0.0.1:1/%zz",
		} {
			_, err := tr.New(addr, time.Second)
			if err == nil {
				t.Errorf("New(%q) accepted an address with user info", addr)
				continue
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "sluice-user") {
				t.Errorf("New(%q) error repeats the credentials: %v", addr, err)
			}
		}
		for _, addr := range []string{"ftp://127.0.0.1:1", "http://127.0.0.1:1/?a=b", "http://127.0.0.1:1/#f", "127.0.0.1:9090"} {
			if _, err := tr.New(addr, time.Second); err == nil {
				t.Errorf("New(%q) accepted the address", addr)
			}
		}
	})
}

// allocated runs f and returns the bytes allocated meanwhile (by the whole process: the
// test server's writes count too, so the figure is an upper bound of the client's).
func allocated(f func() error) (uint64, error) {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc, err
}
