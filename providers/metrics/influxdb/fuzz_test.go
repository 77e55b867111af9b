package influxdb

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
		Header: http.Header{"Content-Type": {"application/csv; charset=utf-8"}},
		OK:     providertest.Bodies(annotatedOne, twoYields, defaultValue, docsThreeTables, docsTwoSchemas, docsError, plainOne, plainNull, plainMidStream, plainErrorTag),
		Errors: providertest.Bodies(`{"error": "forbidden"}`),
		Query: func(t *testing.T, address string) (float64, error) {
			p := newProvider(t, Options{Address: address, Timeout: 5 * time.Second})
			return p.Query(t.Context(), testFlux)
		},
	}.Run(f)
}
