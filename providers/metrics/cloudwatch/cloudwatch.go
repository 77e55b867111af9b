// Package cloudwatch queries Amazon CloudWatch for Sluice's analysis checks through the AWS SDK
// for Go v2 (cloudwatch.Client, GetMetricData).
//
// A check's query is, as in Flagger's cloudwatch provider, a JSON array of MetricDataQuery
// objects (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_MetricDataQuery.html),
// typically metric stats with "ReturnData": false and one math expression that returns the
// checked value:
//
//	[{"Id": "e1", "Expression": "m1 / m2", "Label": "ErrorRate"},
//	 {"Id": "m1", "MetricStat": {...ErrorCount...}, "ReturnData": false},
//	 {"Id": "m2", "MetricStat": {...RequestCount...}, "ReturnData": false}]
//
// Each Query calls GetMetricData
// (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html) for
// the time range now-Window..now, newest data points first. The SDK signs the call with SigV4
// and, in the SDK version Sluice uses, speaks the Smithy RPC v2 CBOR protocol
// (POST /service/GraniteServiceVersion20100801/operation/GetMetricData).
//
// Reduction to one number: among the returned MetricDataResults exactly one may carry values;
// its first value (the newest data point) is the result. No result with values is
// metrics.ErrNoData unless a result reports StatusCode Forbidden or InternalError, which is a
// plain error; more than one result with values is metrics.ErrMultipleSeries (set
// "ReturnData": false on the inputs of the expression); NaN or ±Inf is metrics.ErrNoData.
//
// Credentials are the static keys of Options (from the template's Secret). The SDK's default
// chain (environment, shared files, web identity as used by IRSA, container credentials as used
// by EKS Pod Identity and ECS, instance roles) is the controller's own identity, shared by every
// namespace: it is used only when Options.UseDefaultCredentials says so, never as a silent
// fallback for a template without keys.
//
// The SDK's HTTP traffic goes through the same guarded transport as every provider's
// (internal/httpapi): no redirect is followed, answers are capped.
package cloudwatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/sluice-dev/sluice/providers/metrics"
	"github.com/sluice-dev/sluice/providers/metrics/internal/httpapi"
)

const (
	defaultWindow  = 5 * time.Minute
	defaultTimeout = 10 * time.Second
)

// Options configure a Provider.
type Options struct {
	// Region holds the metrics, e.g. eu-west-1. Required.
	Region string
	// Endpoint overrides the service endpoint (default: the SDK's endpoint for Region), e.g. for
	// a VPC endpoint or a test server.
	Endpoint string
	// Window is the time range each query covers, ending now (default 5m).
	Window time.Duration
	// Timeout bounds one query, SDK retries included (default 10s).
	Timeout time.Duration
	// MaxAttempts bounds the SDK's attempts per query (default: the SDK's, 3).
	MaxAttempts int
	// AccessKeyID, SecretAccessKey and SessionToken sign the calls (read from a Secret by the
	// caller).
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	// UseDefaultCredentials lets a Provider without AccessKeyID use the SDK's default
	// credential chain, i.e. the identity of the process that runs it.
	UseDefaultCredentials bool
}

// ErrNoCredentials: no keys were given and the default credential chain is not allowed.
var ErrNoCredentials = errors.New("cloudwatch: no credentials: AccessKeyID and SecretAccessKey are required (the default credential chain is not enabled)")

// Provider is a reusable client; build one per region and credentials, not per check.
type Provider struct {
	client  *cloudwatch.Client
	region  string
	window  time.Duration
	timeout time.Duration
	now     func() time.Time
}

var _ metrics.Provider = (*Provider)(nil)

// New validates o and builds a Provider. ctx only bounds loading the shared AWS configuration;
// credentials are resolved lazily, on the first query.
func New(ctx context.Context, o Options) (*Provider, error) {
	if o.Region == "" {
		return nil, errors.New("cloudwatch: Region is required")
	}
	if o.Endpoint != "" {
		if _, err := httpapi.ParseAddress(o.Endpoint); err != nil {
			return nil, fmt.Errorf("cloudwatch: Endpoint: %w", err)
		}
	}
	if o.Window == 0 {
		o.Window = defaultWindow
	}
	if o.Window < 0 {
		return nil, fmt.Errorf("cloudwatch: Window %s must be positive", o.Window)
	}
	if o.Timeout < 0 {
		return nil, fmt.Errorf("cloudwatch: Timeout %s must not be negative", o.Timeout)
	}
	if o.Timeout == 0 {
		o.Timeout = defaultTimeout
	}
	if o.MaxAttempts < 0 {
		return nil, fmt.Errorf("cloudwatch: MaxAttempts %d must not be negative", o.MaxAttempts)
	}
	if o.AccessKeyID == "" && (o.SecretAccessKey != "" || o.SessionToken != "") {
		return nil, errors.New("cloudwatch: AccessKeyID is required when SecretAccessKey or SessionToken is set")
	}
	if o.AccessKeyID != "" && o.SecretAccessKey == "" {
		return nil, errors.New("cloudwatch: SecretAccessKey is required when AccessKeyID is set")
	}
	if o.AccessKeyID == "" && !o.UseDefaultCredentials {
		return nil, ErrNoCredentials
	}

	load := []func(*config.LoadOptions) error{config.WithRegion(o.Region)}
	if o.AccessKeyID != "" {
		load = append(load, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(o.AccessKeyID, o.SecretAccessKey, o.SessionToken)))
	}
	if o.MaxAttempts > 0 {
		load = append(load, config.WithRetryMaxAttempts(o.MaxAttempts))
	}
	cfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("cloudwatch: load AWS configuration: %w", err)
	}
	// The SDK's own transport (it carries AWS_CA_BUNDLE when set) behind the shared guard.
	sdk, ok := cfg.HTTPClient.(*awshttp.BuildableClient)
	if !ok || sdk == nil {
		sdk = awshttp.NewBuildableClient()
	}
	cfg.HTTPClient = httpapi.WithTransport(httpapi.Transport(sdk.GetTransport()))
	client := cloudwatch.NewFromConfig(cfg, func(co *cloudwatch.Options) {
		if o.Endpoint != "" {
			co.BaseEndpoint = aws.String(o.Endpoint)
		}
	})
	return &Provider{client: client, region: o.Region, window: o.Window, timeout: o.Timeout, now: time.Now}, nil
}

// Query runs GetMetricData for a JSON array of MetricDataQuery and returns the single value.
func (p *Provider) Query(ctx context.Context, q string) (float64, error) {
	queries, err := parseQuery(q)
	if err != nil {
		return 0, err
	}
	qctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()

	end := p.now()
	out, err := p.client.GetMetricData(qctx, &cloudwatch.GetMetricDataInput{
		StartTime:         aws.Time(end.Add(-p.window)),
		EndTime:           aws.Time(end),
		MetricDataQueries: queries,
		ScanBy:            types.ScanByTimestampDescending,
	})
	if err != nil {
		return 0, p.callError(ctx, err)
	}
	return reduce(out)
}

// parseQuery decodes the query; unknown fields are refused so that a misspelt key fails loudly
// instead of being dropped.
func parseQuery(q string) ([]types.MetricDataQuery, error) {
	dec := json.NewDecoder(strings.NewReader(q))
	dec.DisallowUnknownFields()
	var queries []types.MetricDataQuery
	if err := dec.Decode(&queries); err != nil {
		return nil, fmt.Errorf("cloudwatch: query is not a JSON array of MetricDataQuery: %w", err)
	}
	if dec.More() {
		return nil, errors.New("cloudwatch: query has data after the JSON array")
	}
	if len(queries) == 0 {
		return nil, errors.New("cloudwatch: query has no MetricDataQuery")
	}
	for i, mq := range queries {
		if aws.ToString(mq.Id) == "" {
			return nil, fmt.Errorf("cloudwatch: MetricDataQuery %d has no Id", i)
		}
	}
	return queries, nil
}

func reduce(out *cloudwatch.GetMetricDataOutput) (float64, error) {
	var withValues []types.MetricDataResult
	var notes []string
	failed := false
	for _, r := range out.MetricDataResults {
		if len(r.Values) > 0 {
			withValues = append(withValues, r)
			continue
		}
		note := fmt.Sprintf("%s: %s", aws.ToString(r.Id), r.StatusCode)
		for _, m := range r.Messages {
			note += fmt.Sprintf(" (%s: %s)", aws.ToString(m.Code), aws.ToString(m.Value))
		}
		notes = append(notes, note)
		if r.StatusCode == types.StatusCodeForbidden || r.StatusCode == types.StatusCodeInternalError {
			failed = true
		}
	}
	for _, m := range out.Messages {
		notes = append(notes, fmt.Sprintf("%s: %s", aws.ToString(m.Code), aws.ToString(m.Value)))
	}
	detail := ""
	if len(notes) > 0 {
		detail = " [" + strings.Join(notes, "; ") + "]"
	}

	switch len(withValues) {
	case 0:
		if failed {
			return 0, fmt.Errorf("cloudwatch: GetMetricData returned no values%s", detail)
		}
		return 0, fmt.Errorf("cloudwatch: GetMetricData returned no values in the window%s: %w", detail, metrics.ErrNoData)
	case 1:
	default:
		ids := make([]string, 0, len(withValues))
		for _, r := range withValues {
			ids = append(ids, aws.ToString(r.Id))
		}
		return 0, fmt.Errorf("cloudwatch: GetMetricData returned values for %d queries (%s), want one (set \"ReturnData\": false on the others): %w",
			len(withValues), strings.Join(ids, ", "), metrics.ErrMultipleSeries)
	}
	r := withValues[0]
	v := r.Values[0]
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("cloudwatch: %s returned %v: %w", aws.ToString(r.Id), v, metrics.ErrNoData)
	}
	return v, nil
}

// callError wraps connection failures and timeouts with metrics.ErrUnreachable; AWS API errors
// keep the SDK's text, which carries the error code and message. A cancellation by the caller
// is passed through as is.
func (p *Provider) callError(parent context.Context, err error) error {
	var refused *httpapi.RefusedError
	if errors.As(err, &refused) {
		return fmt.Errorf("cloudwatch %s: %w", p.region, refused)
	}
	if errors.Is(parent.Err(), context.Canceled) {
		return fmt.Errorf("cloudwatch %s: %w", p.region, err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("cloudwatch %s: %w: no answer within %s: %w", p.region, metrics.ErrUnreachable, p.timeout, err)
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return fmt.Errorf("cloudwatch %s: %w: %w", p.region, metrics.ErrUnreachable, err)
	}
	return fmt.Errorf("cloudwatch %s: %w", p.region, err)
}
