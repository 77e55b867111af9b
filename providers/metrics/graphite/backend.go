package graphite

import (
	"context"

	"github.com/sluice-dev/sluice/providers/metrics"
)

// Backend is Graphite as a MetricTemplate names it (`type: graphite`): optional Secret keys
// `username` and `password`.
var Backend = metrics.Backend{
	Type: "graphite",
	New: func(_ context.Context, s metrics.Source) (metrics.Provider, error) {
		p, err := New(Options{Address: s.Address, Username: s.Key("username"), Password: s.Key("password"), Timeout: s.Timeout})
		if err != nil {
			return nil, err
		}
		return p, nil
	},
	CredentialKeys: []string{"username", "password"},
}
