package stackdriver

import (
	"net/http"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/providers/metrics/internal/providertest"
)

// FuzzQueryResponse: whatever the backend answers (any status, any body), Query does not panic
// or hang, a non-2xx answer is never a reading, and a reading is a finite number.
func FuzzQueryResponse(f *testing.F) {
	providertest.Answers{
		Header: http.Header{"Content-Type": {"application/json"}},
		OK:     providertest.Bodies(bodyOneSample, bodyScalar, bodyEmpty, bodyNaN, bodyInf, bodyTwoSamples, bodyMatrix, `{"status":"success","data":{"resultType":"vector","result":[{"value":[1,2]}]}}`),
		Errors: providertest.Bodies(`{"status": "error", "errorType": "bad_data", "error": "parse error"}`),
		Query: func(t *testing.T, address string) (float64, error) {
			p := newProvider(t, address, 5*time.Second, nil)
			return p.Query(t.Context(), testQuery)
		},
	}.Run(f)
}
