package cloudwatch

import (
	"context"
	"errors"
	"fmt"

	"github.com/sluice-dev/sluice/providers/metrics"
)

// Backend is CloudWatch as a MetricTemplate names it (`type: cloudwatch`): Secret keys
// `aws_access_key_id`, `aws_secret_access_key` and optionally `aws_session_token`; the
// controller's own identity (the default credential chain) only when
// Source.AllowControllerCloudIdentity.
var Backend = metrics.Backend{
	Type: "cloudwatch",
	New: func(ctx context.Context, s metrics.Source) (metrics.Provider, error) {
		p, err := New(ctx, Options{Region: s.Region, Endpoint: s.Address, Timeout: s.Timeout,
			AccessKeyID: s.Key("aws_access_key_id"), SecretAccessKey: s.Key("aws_secret_access_key"), SessionToken: s.Key("aws_session_token"),
			UseDefaultCredentials: s.AllowControllerCloudIdentity})
		if errors.Is(err, ErrNoCredentials) {
			return nil, fmt.Errorf("the cloudwatch provider has no credentials: set aws_access_key_id and aws_secret_access_key in the Secret named by secretRef, in namespace %s "+
				"(the controller's own AWS identity is used only when it runs with --allow-controller-cloud-identity)", s.Namespace)
		}
		if err != nil {
			return nil, err
		}
		return p, nil
	},
	CredentialKeys: []string{"aws_access_key_id", "aws_secret_access_key", "aws_session_token"},
}
