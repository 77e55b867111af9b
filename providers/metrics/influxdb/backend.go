package influxdb

import (
	"context"

	"github.com/sluice-dev/sluice/providers/metrics"
)

// Backend is InfluxDB 2.x as a MetricTemplate names it (`type: influxdb`): Secret keys `org`
// and `token`.
var Backend = metrics.Backend{
	Type: "influxdb",
	New: func(_ context.Context, s metrics.Source) (metrics.Provider, error) {
		p, err := New(Options{Address: s.Address, Org: s.Key("org"), Token: s.Key("token"), Timeout: s.Timeout})
		if err != nil {
			return nil, err
		}
		return p, nil
	},
	CredentialKeys: []string{"token"},
}
