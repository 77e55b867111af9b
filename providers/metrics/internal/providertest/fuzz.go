package providertest

import (
	"math"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// Answers fuzzes how a provider reads its backend's answer: a loopback server answers a real
// Query with any status and any body, and Query must not panic or hang, a non-2xx answer must
// never become a reading, and a reading must be a finite number.
type Answers struct {
	// Header is sent with every answer (e.g. Content-Type).
	Header http.Header
	// OK are well-formed 2xx bodies; Errors are error bodies, sent with a few error statuses.
	// Each OK body is also sent under an error status, where it must not be read either.
	OK, Errors [][]byte
	// Query builds the provider for address and runs one query.
	Query func(t *testing.T, address string) (float64, error)
}

// Run seeds f and fuzzes.
func (a Answers) Run(f *testing.F) {
	f.Helper()
	for _, body := range a.OK {
		f.Add(http.StatusOK, body)
		f.Add(http.StatusServiceUnavailable, body)
		f.Add(http.StatusMovedPermanently, body)
	}
	for _, body := range a.Errors {
		for _, status := range []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusFound, http.StatusInternalServerError} {
			f.Add(status, body)
		}
	}
	var next atomic.Pointer[reply]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		rep := next.Load()
		for k, vs := range a.Header {
			w.Header()[k] = vs
		}
		w.WriteHeader(rep.status)
		_, _ = w.Write(rep.body)
	}))
	f.Cleanup(srv.Close)

	f.Fuzz(func(t *testing.T, status int, body []byte) {
		status = httpStatus(status)
		next.Store(&reply{status: status, body: body})
		v, err := a.Query(t, srv.URL)
		if err != nil {
			return
		}
		if status/100 != 2 {
			t.Errorf("HTTP %d answered %q read as %v, want an error", status, body, v)
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Errorf("answer %q read as %v without an error", body, v)
		}
	})
}

// Bodies converts strings to bodies.
func Bodies(s ...string) [][]byte {
	out := make([][]byte, len(s))
	for i, b := range s {
		out[i] = []byte(b)
	}
	return out
}

// reply is what the fuzz server answers next.
type reply struct {
	status int
	body   []byte
}

// httpStatus maps any number onto an HTTP status a server can send (200..599).
func httpStatus(n int) int {
	if n >= 200 && n <= 599 {
		return n
	}
	if n < 0 {
		n = -(n + 1)
	}
	return 200 + n%400
}
