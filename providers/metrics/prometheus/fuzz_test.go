package prometheus

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
		OK: providertest.Bodies(
			`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000.25,"99.5"]}]}}`,
			`{"status":"success","data":{"resultType":"vector","result":[]}}`,
			`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000.25,"NaN"]}]}}`,
			`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"1"},"value":[1,"1"]},{"metric":{"a":"2"},"value":[1,"2"]}]}}`,
			`{"status":"success","data":{"resultType":"scalar","result":[1700000000.25,"+Inf"]}}`,
			`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"]]}]}}`,
			`{"status":"success","data":{"resultType":"string","result":[1,"x"]}}`,
			`{"status":"error","errorType":"bad_data","error":"parse error"}`,
			`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"histogram":[1,{"count":"1","sum":"1"}]}]}}`,
		),
		Errors: providertest.Bodies(`{"status":"error","errorType":"bad_data","error":"parse error"}`),
		Query: func(t *testing.T, address string) (float64, error) {
			p, err := New(Options{Address: address, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			return p.Query(t.Context(), `sum(rate(http_requests_total[1m]))`)
		},
	}.Run(f)
}
