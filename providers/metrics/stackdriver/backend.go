package stackdriver

import (
	"context"
	"fmt"

	"github.com/sluice-dev/sluice/providers/metrics"
)

// Backend is Google Cloud Monitoring as a MetricTemplate names it (`type: stackdriver`): Secret
// key `project` and either `serviceAccountKey` (a service account's JSON key, Flagger's key:
// exchanged for access tokens, see ServiceAccountTokens) or `token` (an access token used as
// is). There is no fallback to any Google identity of the controller.
var Backend = metrics.Backend{
	Type: "stackdriver",
	New: func(_ context.Context, s metrics.Source) (metrics.Provider, error) {
		project, key, token := s.Key("project"), s.Key("serviceAccountKey"), s.Key("token")
		if project == "" || (key == "" && token == "") {
			return nil, fmt.Errorf("the stackdriver provider has no credentials: set project and token (an OAuth 2.0 access token with the monitoring.read scope), or project and serviceAccountKey (a service account's JSON key), in the Secret named by secretRef, in namespace %s", s.Namespace)
		}
		tokens := func(context.Context) (string, error) { return token, nil }
		if key != "" {
			var err error
			if tokens, err = ServiceAccountTokens([]byte(key)); err != nil {
				return nil, fmt.Errorf("stackdriver: %w", err)
			}
		}
		p, err := New(Options{Project: project, Address: s.Address, Timeout: s.Timeout, TokenSource: tokens})
		if err != nil {
			return nil, err
		}
		return p, nil
	},
	CredentialKeys: []string{"token", "serviceAccountKey"},
}
