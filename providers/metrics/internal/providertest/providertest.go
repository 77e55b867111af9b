// Package providertest is the conformance suite every HTTP metric provider passes: how it
// reports an unreachable backend, a timeout and a caller's cancel, and that it reuses one
// connection. Each provider's own tests keep what is specific to its API.
package providertest

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/providers/metrics"
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
		if got, wantIs := errors.Is(err, s), s == want; got != wantIs {
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
	// New builds the provider against address with the given query timeout.
	New func(t *testing.T, address string, timeout time.Duration) metrics.Provider
	// Query is any valid query.
	Query string
	// OK answers a query with one good value.
	OK http.HandlerFunc
}

// Run runs the suite as subtests.
func (tr Transport) Run(t *testing.T) {
	t.Run("unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		addr := srv.URL
		srv.Close()
		_, err := tr.New(t, addr, 10*time.Second).Query(t.Context(), tr.Query)
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
		_, err := tr.New(t, srv.URL, 100*time.Millisecond).Query(t.Context(), tr.Query)
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
		_, err := tr.New(t, srv.URL, 10*time.Second).Query(ctx, tr.Query)
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
		p := tr.New(t, srv.URL, 10*time.Second)
		for range 4 {
			_, _ = p.Query(t.Context(), tr.Query)
		}
		if n := conns.Load(); n != 1 {
			t.Errorf("4 sequential queries opened %d connections, want 1 (client and connection reused)", n)
		}
	})
}
