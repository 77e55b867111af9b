package prometheus

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/providers/metrics"
	"github.com/sluice-dev/sluice/providers/metrics/internal/providertest"
)

const oneSample = `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"7"]}]}}`

func ok(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(oneSample))
}

// TestTransport: the conformance suite, with a bearer token and a custom header set.
func TestTransport(t *testing.T) {
	providertest.Transport{
		New: func(address string, timeout time.Duration) (metrics.Provider, error) {
			return New(Options{Address: address, Timeout: timeout, BearerToken: "t0k", Headers: map[string]string{"X-Scope-OrgID": "shop"}})
		},
		Query: "up",
		OK:    ok,
	}.Run(t)
}

// Credentials and headers reach the configured host, and only it: a redirect (to another
// port of 127.0.0.1, which net/http would treat as the same host and re-send Authorization
// to) fails the check and the second server gets nothing.
func TestCredentialsStayOnTheConfiguredHost(t *testing.T) {
	for name, o := range map[string]Options{
		"bearer": {BearerToken: "t0k", Headers: map[string]string{"X-Scope-OrgID": "shop"}},
		"basic":  {Username: "sluice", Password: "hunter2", Headers: map[string]string{"X-Scope-OrgID": "shop"}},
	} {
		t.Run(name, func(t *testing.T) {
			var (
				mu       sync.Mutex
				first    http.Header
				leaked   []http.Header
				redirect bool
			)
			second := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				leaked = append(leaked, r.Header.Clone())
				mu.Unlock()
				ok(w, r)
			}))
			defer second.Close()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				first = r.Header.Clone()
				mu.Unlock()
				if redirect {
					http.Redirect(w, r, second.URL+r.URL.Path, http.StatusTemporaryRedirect)
					return
				}
				ok(w, r)
			}))
			defer srv.Close()
			o.Address = srv.URL
			p, err := New(o)
			if err != nil {
				t.Fatal(err)
			}
			if v, err := p.Query(t.Context(), "up"); err != nil || v != 7 {
				t.Fatalf("Query = %v, %v", v, err)
			}
			user, pass, _ := (&http.Request{Header: first}).BasicAuth()
			if first.Get("X-Scope-OrgID") != "shop" || (o.BearerToken != "" && first.Get("Authorization") != "Bearer t0k") ||
				(o.Username != "" && (user != o.Username || pass != o.Password)) {
				t.Errorf("the configured host got headers %v", first)
			}

			redirect = true
			_, err = p.Query(t.Context(), "up")
			providertest.CheckErr(t, err, nil, "HTTP 307 redirect", "not followed", second.URL)
			mu.Lock()
			defer mu.Unlock()
			if len(leaked) > 0 {
				t.Errorf("the redirect target got %d requests, headers %v", len(leaked), leaked)
			}
		})
	}
}

func TestAPIErrorIsNotUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"status":"error","errorType":"bad_data","error":"parse error at char 3"}`))
	}))
	defer srv.Close()
	p, err := New(Options{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Query(t.Context(), "up{")
	providertest.CheckErr(t, err, nil, "parse error at char 3")
	if errors.Is(err, metrics.ErrUnreachable) {
		t.Errorf("a bad query reads as unreachable: %v", err)
	}
}

func TestCheckAddress(t *testing.T) {
	if err := CheckAddress("http://prometheus.monitoring:9090/prefix"); err != nil {
		t.Errorf("a good address is refused: %v", err)
	}
	err := CheckAddress("http://admin:hunter2@prometheus:9090")
	providertest.CheckErr(t, err, nil, "user info", "xxxxx@prometheus:9090")
}
