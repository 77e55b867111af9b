package datadog

import (
	"context"

	"github.com/sluice-dev/sluice/providers/metrics"
)

// Backend is Datadog as a MetricTemplate names it (`type: datadog`): Secret keys
// `datadog_api_key` and `datadog_application_key`.
var Backend = metrics.Backend{
	Type: "datadog",
	New: func(_ context.Context, s metrics.Source) (metrics.Provider, error) {
		p, err := New(Options{Address: s.Address, APIKey: s.Key("datadog_api_key"),
			ApplicationKey: s.Key("datadog_application_key"), Timeout: s.Timeout})
		if err != nil {
			return nil, err
		}
		return p, nil
	},
	CredentialKeys: []string{"datadog_api_key", "datadog_application_key"},
}
