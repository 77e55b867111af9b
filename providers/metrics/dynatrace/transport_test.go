package dynatrace

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
			return New(Options{Address: address, Token: testToken, Timeout: timeout})
		},
		Query: testSelector,
		OK:    func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(bodyOneValue)) },
	}.Run(t)
}
