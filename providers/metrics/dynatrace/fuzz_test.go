package dynatrace

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
		OK:     providertest.Bodies(bodyOneValue, bodyTrailingNull, bodyNoSeries, bodyOnlyNulls, bodyNoMetric, bodyTwoSeries, bodyTwoMetrics, `{"result":[{"data":[{"values":[1e999]}]}]}`),
		Errors: providertest.Bodies(`{"error": {"code": 400, "message": "bad", "constraintViolations": [{"path": "x", "message": "y"}]}}`),
		Query: func(t *testing.T, address string) (float64, error) {
			p := newProvider(t, address, 5*time.Second)
			return p.Query(t.Context(), testSelector)
		},
	}.Run(f)
}
