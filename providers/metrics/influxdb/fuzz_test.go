package influxdb

import (
	"math"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// FuzzQueryResponse: whatever the backend answers (any status, any body), Query does not panic
// or hang, a non-2xx answer is never a reading, and a reading is a finite number.
func FuzzQueryResponse(f *testing.F) {
	for _, body := range []string{annotatedOne, twoYields, defaultValue, docsThreeTables, docsTwoSchemas, docsError, plainOne, plainNull, plainMidStream, plainErrorTag} {
		f.Add(http.StatusOK, []byte(body))
	}
	for _, status := range []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusFound, http.StatusInternalServerError} {
		f.Add(status, []byte(`{"error": "forbidden"}`))
	}
	// A well-formed reading under an error status is still an error.
	f.Add(http.StatusServiceUnavailable, []byte(plainOne))
	f.Add(http.StatusMovedPermanently, []byte(plainOne))
	var next atomic.Pointer[fuzzReply]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		rep := next.Load()
		w.Header().Set("Content-Type", "application/csv; charset=utf-8")
		w.WriteHeader(rep.status)
		_, _ = w.Write(rep.body)
	}))
	f.Cleanup(srv.Close)

	f.Fuzz(func(t *testing.T, status int, body []byte) {
		status = fuzzStatus(status)
		next.Store(&fuzzReply{status: status, body: body})
		p := newProvider(t, Options{Address: srv.URL, Timeout: 5 * time.Second})
		v, err := p.Query(t.Context(), testFlux)
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

// fuzzReply is what the fuzz server answers next.
type fuzzReply struct {
	status int
	body   []byte
}

// fuzzStatus maps any number onto an HTTP status a server can send (200..599).
func fuzzStatus(n int) int {
	if n >= 200 && n <= 599 {
		return n
	}
	if n < 0 {
		n = -(n + 1)
	}
	return 200 + n%400
}
