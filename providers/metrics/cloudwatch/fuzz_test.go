package cloudwatch

import (
	"math"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// FuzzQueryResponse: whatever the endpoint answers in the RPC v2 CBOR protocol (any status, any
// body), the SDK's decoding and reduce do not panic or hang, a non-2xx answer is never a
// reading, and a reading is a finite number.
func FuzzQueryResponse(f *testing.F) {
	for _, body := range []map[string]any{
		results(result("m1", "Complete", 42, 41)),
		results(result("m1", "Complete")),
		results(result("m1", "Complete", 1), result("m2", "Complete", 2)),
		results(result("m1", "Forbidden")),
		results(result("m1", "Complete", math.NaN())),
		{"MetricDataResults": []any{map[string]any{"Id": "m1", "Values": []any{"x"}}}},
		{},
	} {
		f.Add(http.StatusOK, cborEncode(body))
	}
	for _, status := range []int{http.StatusBadRequest, http.StatusForbidden, http.StatusInternalServerError} {
		f.Add(status, cborEncode(map[string]any{"__type": "InvalidParameterValueException", "message": "bad"}))
	}
	f.Add(http.StatusOK, []byte{0xbf, 0xff})
	// A well-formed reading under an error status is still an error.
	f.Add(http.StatusServiceUnavailable, cborEncode(results(result("m1", "Complete", 42))))
	var next atomic.Pointer[fuzzReply]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		rep := next.Load()
		w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
		w.Header().Set("Content-Type", "application/cbor")
		w.WriteHeader(rep.status)
		_, _ = w.Write(rep.body)
	}))
	f.Cleanup(srv.Close)

	f.Fuzz(func(t *testing.T, status int, body []byte) {
		isolateAWSConfig(t)
		status = fuzzStatus(status)
		next.Store(&fuzzReply{status: status, body: body})
		p := newProvider(t, Options{Endpoint: srv.URL})
		v, err := p.Query(t.Context(), testQuery)
		if err != nil {
			return
		}
		if status/100 != 2 {
			t.Errorf("HTTP %d answered %x read as %v, want an error", status, body, v)
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Errorf("answer %x read as %v without an error", body, v)
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
