package prometheus

import (
	"context"

	"github.com/sluice-dev/sluice/providers/metrics"
)

// Backend is Prometheus as a MetricTemplate names it (`type: prometheus`): Secret keys `token`
// (bearer) or `username` + `password`; the only backend that takes insecureSkipVerify and
// headers (e.g. X-Scope-OrgID of a multi-tenant Prometheus API).
var Backend = metrics.Backend{
	Type: "prometheus",
	New: func(_ context.Context, s metrics.Source) (metrics.Provider, error) {
		p, err := New(Options{
			Address: s.Address, Timeout: s.Timeout,
			BearerToken: s.Key("token"), Username: s.Key("username"), Password: s.Key("password"),
			Headers: s.Headers, InsecureSkipVerify: s.InsecureSkipVerify,
		})
		if err != nil {
			return nil, err
		}
		return p, nil
	},
	CredentialKeys: []string{"token", "username", "password"},
	HTTPOptions:    true,
}
