package stackdriver

import (
	"net/http"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/providers/metrics"
	"github.com/sluice-dev/sluice/providers/metrics/internal/providertest"
)

// TestTransport: the conformance suite every provider passes (unreachable, timeout, cancel,
// connection reuse, redirects refused, bodies capped, addresses checked and redacted).
func TestTransport(t *testing.T) {
	providertest.Transport{
		New: func(address string, timeout time.Duration) (metrics.Provider, error) {
			return New(Options{Project: testProject, TokenSource: staticToken, Address: address, Timeout: timeout})
		},
		Query: testQuery,
		OK:    func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(bodyOneSample)) },
	}.Run(t)
}
