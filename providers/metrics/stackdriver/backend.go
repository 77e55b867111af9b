package stackdriver

import (
	"context"
	"fmt"

	"github.com/sluice-dev/sluice/providers/metrics"
)

// Backend is Google Cloud Monitoring as a MetricTemplate names it (`type: stackdriver`): Secret
// keys `project` and `token`, both required. There is no fallback to any Google identity of the
// controller.
var Backend = metrics.Backend{
	Type: "stackdriver",
	New: func(_ context.Context, s metrics.Source) (metrics.Provider, error) {
		token := s.Key("token")
		if token == "" || s.Key("project") == "" {
			return nil, fmt.Errorf("the stackdriver provider has no credentials: set project and token (an OAuth 2.0 access token with the monitoring.read scope) in the Secret named by secretRef, in namespace %s", s.Namespace)
		}
		p, err := New(Options{Project: s.Key("project"), Address: s.Address, Timeout: s.Timeout,
			TokenSource: func(context.Context) (string, error) { return token, nil }})
		if err != nil {
			return nil, err
		}
		return p, nil
	},
	CredentialKeys: []string{"token"},
}
