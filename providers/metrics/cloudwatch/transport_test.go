package cloudwatch

import (
	"net/http"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/providers/metrics"
	"github.com/sluice-dev/sluice/providers/metrics/internal/providertest"
)

// TestTransport: the conformance suite every provider passes (unreachable, timeout, cancel,
// connection reuse, redirects refused, bodies capped, addresses checked and redacted), with
// the SDK's default retries on: a refused answer is not retried.
func TestTransport(t *testing.T) {
	isolateAWSConfig(t)
	providertest.Transport{
		New: func(address string, timeout time.Duration) (metrics.Provider, error) {
			p, err := New(t.Context(), Options{Region: testRegion, Endpoint: address, Timeout: timeout,
				AccessKeyID: testKeyID, SecretAccessKey: testSecret, SessionToken: testToken})
			if err == nil {
				p.now = func() time.Time { return testNow }
			}
			return p, err
		},
		Query: testQuery,
		OK:    func(w http.ResponseWriter, _ *http.Request) { writeReply(w, ok(results(result("e1", "Complete", 7)))) },
	}.Run(t)
}
