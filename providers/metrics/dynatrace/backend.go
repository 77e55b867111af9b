package dynatrace

import (
	"context"

	"github.com/sluice-dev/sluice/providers/metrics"
)

// Backend is Dynatrace as a MetricTemplate names it (`type: dynatrace`): Secret key
// `dynatrace_token`.
var Backend = metrics.Backend{
	Type: "dynatrace",
	New: func(_ context.Context, s metrics.Source) (metrics.Provider, error) {
		p, err := New(Options{Address: s.Address, Token: s.Key("dynatrace_token"), Timeout: s.Timeout})
		if err != nil {
			return nil, err
		}
		return p, nil
	},
	CredentialKeys: []string{"dynatrace_token"},
}
