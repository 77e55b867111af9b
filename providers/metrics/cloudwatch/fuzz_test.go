package cloudwatch

import (
	"math"
	"net/http"
	"testing"

	"github.com/sluice-dev/sluice/providers/metrics/internal/providertest"
)

// FuzzQueryResponse: whatever the endpoint answers in the RPC v2 CBOR protocol (any status, any
// body), the SDK's decoding and reduce do not panic or hang, a non-2xx answer is never a
// reading, and a reading is a finite number.
func FuzzQueryResponse(f *testing.F) {
	var ok [][]byte
	for _, body := range []map[string]any{
		results(result("m1", "Complete", 42, 41)),
		results(result("m1", "Complete")),
		results(result("m1", "Complete", 1), result("m2", "Complete", 2)),
		results(result("m1", "Forbidden")),
		results(result("m1", "Complete", math.NaN())),
		{"MetricDataResults": []any{map[string]any{"Id": "m1", "Values": []any{"x"}}}},
		{},
	} {
		ok = append(ok, cborEncode(body))
	}
	providertest.Answers{
		Header: http.Header{"Smithy-Protocol": {"rpc-v2-cbor"}, "Content-Type": {"application/cbor"}},
		OK:     append(ok, []byte{0xbf, 0xff}),
		Errors: [][]byte{cborEncode(map[string]any{"__type": "InvalidParameterValueException", "message": "bad"})},
		Query: func(t *testing.T, address string) (float64, error) {
			isolateAWSConfig(t)
			return newProvider(t, Options{Endpoint: address}).Query(t.Context(), testQuery)
		},
	}.Run(f)
}
