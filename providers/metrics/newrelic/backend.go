package newrelic

import (
	"context"

	"github.com/sluice-dev/sluice/providers/metrics"
)

// Backend is New Relic as a MetricTemplate names it (`type: newrelic`): Secret keys
// `newrelic_account_id` and `newrelic_query_key`.
var Backend = metrics.Backend{
	Type: "newrelic",
	New: func(_ context.Context, s metrics.Source) (metrics.Provider, error) {
		p, err := New(Options{Address: s.Address, AccountID: s.Key("newrelic_account_id"),
			QueryKey: s.Key("newrelic_query_key"), Timeout: s.Timeout})
		if err != nil {
			return nil, err
		}
		return p, nil
	},
	CredentialKeys: []string{"newrelic_query_key"},
}
