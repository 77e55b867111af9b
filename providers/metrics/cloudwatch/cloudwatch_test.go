package cloudwatch

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/providers/metrics"
)

// The fake server speaks what cloudwatch v1.75.7 of the AWS SDK for Go v2 sends for
// GetMetricData: the Smithy RPC v2 CBOR protocol
// (https://smithy.io/2.0/additional-specs/protocols/smithy-rpc-v2.html) with AWS query
// compatibility (x-amzn-query-mode request header, x-amzn-query-error response header,
// https://smithy.io/2.0/aws/protocols/aws-query-protocol.html#aws-protocols-awsquerycompatible-trait),
// signed with SigV4
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html).
// Response members follow the GetMetricData API reference
// (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html);
// error codes follow its Errors section and the common errors
// (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CommonErrors.html).

const (
	testRegion = "eu-west-1"
	testKeyID  = "AKIDSLUICETEST"
	testSecret = "sluice/test/secret/key"
	testToken  = "sluice-session-token"
	opPath     = "/service/GraniteServiceVersion20100801/operation/GetMetricData"
)

// testQuery is the example of Flagger's docs (https://docs.flagger.app/usage/metrics#amazon-cloudwatch)
// with its template variables filled in.
const testQuery = `[
    {"Id": "e1", "Expression": "m1 / m2", "Label": "ErrorRate"},
    {
        "Id": "m1",
        "MetricStat": {
            "Metric": {
                "Namespace": "MyKubernetesCluster",
                "MetricName": "ErrorCount",
                "Dimensions": [{"Name": "appName", "Value": "web.prod"}]
            },
            "Period": 60,
            "Stat": "Sum",
            "Unit": "Count"
        },
        "ReturnData": false
    },
    {
        "Id": "m2",
        "MetricStat": {
            "Metric": {
                "Namespace": "MyKubernetesCluster",
                "MetricName": "RequestCount",
                "Dimensions": [{"Name": "appName", "Value": "web.prod"}]
            },
            "Period": 60,
            "Stat": "Sum",
            "Unit": "Count"
        },
        "ReturnData": false
    }
]`

// testNow is the provider's clock in these tests: the window is testNow-5m..testNow.
var testNow = time.Unix(1700000000, 0)

// wantInput is testQuery's GetMetricData input as CBOR carries it.
func wantInput() map[string]any {
	stat := func(name string) map[string]any {
		return map[string]any{
			"Metric": map[string]any{
				"Namespace":  "MyKubernetesCluster",
				"MetricName": name,
				"Dimensions": []any{map[string]any{"Name": "appName", "Value": "web.prod"}},
			},
			"Period": uint64(60),
			"Stat":   "Sum",
			"Unit":   "Count",
		}
	}
	return map[string]any{
		"StartTime": cborTag{Num: 1, Value: float64(testNow.Add(-5 * time.Minute).Unix())},
		"EndTime":   cborTag{Num: 1, Value: float64(testNow.Unix())},
		"ScanBy":    "TimestampDescending",
		"MetricDataQueries": []any{
			map[string]any{"Id": "e1", "Expression": "m1 / m2", "Label": "ErrorRate"},
			map[string]any{"Id": "m1", "MetricStat": stat("ErrorCount"), "ReturnData": false},
			map[string]any{"Id": "m2", "MetricStat": stat("RequestCount"), "ReturnData": false},
		},
	}
}

// reply is what the fake server answers.
type reply struct {
	status     int
	queryError string // x-amzn-query-error header, "Code;Sender"
	body       map[string]any
}

func ok(body map[string]any) reply { return reply{status: http.StatusOK, body: body} }

func result(id, status string, values ...float64) map[string]any {
	ts := make([]time.Time, len(values))
	for i := range values {
		ts[i] = testNow.Add(-time.Duration(i) * time.Minute) // newest first
	}
	return map[string]any{"Id": id, "Label": id, "StatusCode": status, "Timestamps": ts, "Values": values}
}

func results(rs ...map[string]any) map[string]any {
	list := make([]any, len(rs))
	for i, r := range rs {
		list[i] = r
	}
	return map[string]any{"MetricDataResults": list, "Messages": []any{}}
}

// newServer answers every request that passes checkRequest with rep.
func newServer(t *testing.T, keyID, secret, token string, rep reply) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("read request body: %v", err)
			return
		}
		if p := checkRequest(r, body, keyID, secret, token); p != "" {
			t.Errorf("unexpected request: %s", p)
			http.Error(w, p, http.StatusTeapot)
			return
		}
		writeReply(w, rep)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func writeReply(w http.ResponseWriter, rep reply) {
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	w.Header().Set("Content-Type", "application/cbor")
	w.Header().Set("X-Amzn-Requestid", "5e3b1c9a-0000-4000-8000-000000000000")
	if rep.queryError != "" {
		w.Header().Set("X-Amzn-Query-Error", rep.queryError)
	}
	w.WriteHeader(rep.status)
	_, _ = w.Write(cborEncode(rep.body))
}

// checkRequest returns what is wrong with a GetMetricData request, or "".
func checkRequest(r *http.Request, body []byte, keyID, secret, token string) string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if r.Method != http.MethodPost {
		add("method %s, want POST", r.Method)
	}
	if r.URL.Path != opPath {
		add("path %s, want %s", r.URL.Path, opPath)
	}
	for k, want := range map[string]string{
		"Smithy-Protocol":   "rpc-v2-cbor",
		"Content-Type":      "application/cbor",
		"Accept":            "application/cbor",
		"X-Amzn-Query-Mode": "true",
	} {
		if got := r.Header.Get(k); got != want {
			add("%s: %q, want %q", k, got, want)
		}
	}
	if p := checkSigV4(r, body, keyID, secret, token); p != "" {
		add("SigV4: %s", p)
	}
	in, err := cborDecode(body)
	if err != nil {
		add("body is not CBOR: %v", err)
	} else if want := wantInput(); !reflect.DeepEqual(in, any(want)) {
		add("input\n got %#v\nwant %#v", in, want)
	}
	return strings.Join(problems, "; ")
}

var authRE = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$`)

// checkSigV4 verifies the Authorization header the way the service does: it rebuilds the
// canonical request from what arrived and recomputes the signature with the secret key.
func checkSigV4(r *http.Request, body []byte, keyID, secret, token string) string {
	m := authRE.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		return fmt.Sprintf("Authorization %q is not a SigV4 header", r.Header.Get("Authorization"))
	}
	gotKey, date, region, service, signed, sig := m[1], m[2], m[3], m[4], m[5], m[6]
	amzDate := r.Header.Get("X-Amz-Date")
	switch {
	case gotKey != keyID:
		return fmt.Sprintf("access key %s, want %s", gotKey, keyID)
	case region != testRegion || service != "monitoring":
		return fmt.Sprintf("scope %s/%s, want %s/monitoring", region, service, testRegion)
	case !strings.HasPrefix(amzDate, date):
		return fmt.Sprintf("X-Amz-Date %q does not match the scope date %s", amzDate, date)
	case r.Header.Get("X-Amz-Security-Token") != token:
		return fmt.Sprintf("X-Amz-Security-Token %q, want %q", r.Header.Get("X-Amz-Security-Token"), token)
	}
	names := strings.Split(signed, ";")
	for _, must := range []string{"host", "x-amz-date", "smithy-protocol", "content-type"} {
		if !slices.Contains(names, must) {
			return fmt.Sprintf("SignedHeaders %s lacks %s", signed, must)
		}
	}
	var canon strings.Builder
	for _, n := range names {
		var v string
		switch n {
		case "host":
			v = r.Host
		case "content-length":
			v = fmt.Sprint(r.ContentLength)
		default:
			vals := r.Header.Values(n)
			for i := range vals {
				vals[i] = strings.Join(strings.Fields(vals[i]), " ")
			}
			v = strings.Join(vals, ",")
		}
		canon.WriteString(n + ":" + v + "\n")
	}
	payload := sha256.Sum256(body)
	creq := strings.Join([]string{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, canon.String(), signed, hex.EncodeToString(payload[:])}, "\n")
	creqHash := sha256.Sum256([]byte(creq))
	scope := date + "/" + region + "/" + service + "/aws4_request"
	toSign := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(creqHash[:])
	key := []byte("AWS4" + secret)
	for _, part := range []string{date, region, service, "aws4_request"} {
		key = hmacSHA256(key, part)
	}
	if want := hex.EncodeToString(hmacSHA256(key, toSign)); sig != want {
		return "signature does not verify with the secret key"
	}
	return ""
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

// isolateAWSConfig keeps the developer's AWS files and variables out of the test.
func isolateAWSConfig(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"config", "credentials"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	for _, k := range []string{"AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_CLOUDWATCH", "AWS_REGION", "AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"} {
		t.Setenv(k, "") // restored after the test
		if err := os.Unsetenv(k); err != nil {
			t.Fatal(err)
		}
	}
}

// hangingServer reads the request and never answers. The server only notices a client that
// gave up once it has read the body, and release lets the handler go before srv.Close waits.
func hangingServer(t *testing.T) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs before srv.Close
	return srv
}

func newProvider(t *testing.T, o Options) *Provider {
	t.Helper()
	o.Region = testRegion
	if o.AccessKeyID == "" {
		o.AccessKeyID, o.SecretAccessKey, o.SessionToken = testKeyID, testSecret, testToken
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = 1 // retries are the SDK's business; TestRetries covers the default
	}
	p, err := New(t.Context(), o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	p.now = func() time.Time { return testNow }
	return p
}

func TestQuery(t *testing.T) {
	isolateAWSConfig(t)
	tests := map[string]struct {
		rep      reply
		want     float64
		wantErr  error
		wantText []string
		notErr   []error
	}{
		"newest value": {rep: ok(results(result("e1", "Complete", 0.0125, 0.02, 0.5))), want: 0.0125},
		"inputs without data are skipped": {
			rep:  ok(results(result("e1", "Complete", 0.25), result("m9", "Complete"))),
			want: 0.25,
		},
		"empty values": {rep: ok(results(result("e1", "Complete"))), wantErr: metrics.ErrNoData,
			wantText: []string{"e1: Complete"}},
		"no results":   {rep: ok(results()), wantErr: metrics.ErrNoData},
		"NaN value":    {rep: ok(results(result("e1", "Complete", math.NaN()))), wantErr: metrics.ErrNoData},
		"partial data": {rep: ok(results(result("e1", "PartialData", 3))), want: 3},
		"two results with values": {rep: ok(results(result("e1", "Complete", 1), result("m1", "Complete", 2))),
			wantErr: metrics.ErrMultipleSeries, wantText: []string{"e1, m1"}},
		"forbidden result": {
			rep: ok(map[string]any{"MetricDataResults": []any{map[string]any{
				"Id": "e1", "Label": "ErrorRate", "StatusCode": "Forbidden", "Timestamps": []any{}, "Values": []any{},
				"Messages": []any{map[string]any{"Code": "Forbidden", "Value": "not authorized for account 111122223333"}},
			}}}),
			wantText: []string{"Forbidden", "not authorized for account 111122223333"},
			notErr:   []error{metrics.ErrNoData, metrics.ErrUnreachable},
		},
		"AWS error response": {
			rep: reply{status: http.StatusBadRequest, queryError: "InvalidParameterValue;Sender", body: map[string]any{
				"__type":  "com.amazonaws.cloudwatch#InvalidParameterValueException",
				"message": "Error in expression 'e1': Unrecognized token m3",
			}},
			wantText: []string{"StatusCode: 400", "InvalidParameterValue", "Error in expression 'e1': Unrecognized token m3"},
			notErr:   []error{metrics.ErrNoData, metrics.ErrUnreachable},
		},
		"auth failure": {
			rep: reply{status: http.StatusForbidden, queryError: "InvalidClientTokenId;Sender", body: map[string]any{
				"__type":  "com.amazon.coral.service#UnrecognizedClientException",
				"message": "The security token included in the request is invalid.",
			}},
			wantText: []string{"StatusCode: 403", "InvalidClientTokenId", "The security token included in the request is invalid."},
			notErr:   []error{metrics.ErrNoData, metrics.ErrUnreachable},
		},
		"service fault": {
			rep: reply{status: http.StatusInternalServerError, queryError: "InternalServiceError;Receiver", body: map[string]any{
				// InternalServiceFault's member is "Message", unlike the "message" of the others.
				"__type":  "com.amazonaws.cloudwatch#InternalServiceFault",
				"Message": "Request processing has failed due to some unknown error.",
			}},
			wantText: []string{"StatusCode: 500", "Request processing has failed due to some unknown error."},
			notErr:   []error{metrics.ErrNoData},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv := newServer(t, testKeyID, testSecret, testToken, tc.rep)
			got, err := newProvider(t, Options{Endpoint: srv.URL}).Query(t.Context(), testQuery)
			if tc.wantErr == nil && tc.wantText == nil {
				if err != nil {
					t.Fatalf("Query: %v", err)
				}
				if got != tc.want {
					t.Fatalf("Query = %v, want %v", got, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Query = %v, want an error", got)
			}
			t.Logf("error: %v", err)
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("error %q is not %v", err, tc.wantErr)
			}
			for _, s := range tc.wantText {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not carry %q", err, s)
				}
			}
			for _, e := range tc.notErr {
				if errors.Is(err, e) {
					t.Errorf("error %q must not be %v", err, e)
				}
			}
		})
	}
}

// TestDefaultCredentialChain proves that without static keys the SDK's default chain signs
// the request (here: the AWS_* environment variables) only when UseDefaultCredentials allows
// it; otherwise New refuses and nothing is sent.
func TestDefaultCredentialChain(t *testing.T) {
	isolateAWSConfig(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENVIRONMENT")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret-from-environment")
	srv := newServer(t, "AKIDFROMENVIRONMENT", "secret-from-environment", "", ok(results(result("e1", "Complete", 7))))

	if _, err := New(t.Context(), Options{Region: testRegion, Endpoint: srv.URL}); !errors.Is(err, ErrNoCredentials) {
		t.Fatalf("New without keys or UseDefaultCredentials: err = %v, want ErrNoCredentials", err)
	}
	p, err := New(t.Context(), Options{Region: testRegion, Endpoint: srv.URL, UseDefaultCredentials: true})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	p.now = func() time.Time { return testNow }
	if got, err := p.Query(t.Context(), testQuery); err != nil || got != 7 {
		t.Fatalf("Query = %v, %v; want 7", got, err)
	}
}

func TestQueryUnreachable(t *testing.T) {
	isolateAWSConfig(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close()

	_, err := newProvider(t, Options{Endpoint: addr}).Query(t.Context(), testQuery)
	if !errors.Is(err, metrics.ErrUnreachable) {
		t.Fatalf("error %v is not ErrUnreachable", err)
	}
}

func TestQueryTimeout(t *testing.T) {
	isolateAWSConfig(t)
	srv := hangingServer(t)

	start := time.Now()
	_, err := newProvider(t, Options{Endpoint: srv.URL, Timeout: 200 * time.Millisecond}).Query(t.Context(), testQuery)
	if !errors.Is(err, metrics.ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v is not ErrUnreachable + DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Query took %s, want about the 200ms timeout", d)
	}
}

func TestQueryCanceledByCaller(t *testing.T) {
	isolateAWSConfig(t)
	srv := hangingServer(t)

	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := newProvider(t, Options{Endpoint: srv.URL, Timeout: time.Minute}).Query(ctx, testQuery)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v is not context.Canceled", err)
	}
	if errors.Is(err, metrics.ErrUnreachable) {
		t.Errorf("a caller's cancellation must not read as ErrUnreachable: %v", err)
	}
}

// TestRetries proves the SDK's default retries stay on: a throttled first attempt is retried
// and the second answer is used.
func TestRetries(t *testing.T) {
	isolateAWSConfig(t)
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			writeReply(w, reply{status: http.StatusBadRequest, queryError: "Throttling;Sender", body: map[string]any{
				"__type": "Throttling", "message": "Rate exceeded",
			}})
			return
		}
		writeReply(w, ok(results(result("e1", "Complete", 4))))
	}))
	t.Cleanup(srv.Close)

	p, err := New(t.Context(), Options{Region: testRegion, Endpoint: srv.URL, AccessKeyID: testKeyID, SecretAccessKey: testSecret})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if got, err := p.Query(t.Context(), testQuery); err != nil || got != 4 {
		t.Fatalf("Query = %v, %v; want 4 after a retry", got, err)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("server saw %d calls, want 2", n)
	}
}

func TestClientReused(t *testing.T) {
	isolateAWSConfig(t)
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		writeReply(w, ok(results(result("e1", "Complete", 1))))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)

	// A client built per query dials for every query. The SDK's client now and then closes a
	// connection after a reply (seen in about one query in ten here, with or without a
	// per-query deadline), so one connection for all is not guaranteed; a reused client makes
	// fewer than one per query.
	const queries = 8
	p := newProvider(t, Options{Endpoint: srv.URL})
	for range queries {
		if _, err := p.Query(t.Context(), testQuery); err != nil {
			t.Fatalf("Query: %v", err)
		}
	}
	if n := conns.Load(); n >= queries {
		t.Errorf("%d queries opened %d connections, want fewer (the client reused)", queries, n)
	}
}

func TestQueryParse(t *testing.T) {
	isolateAWSConfig(t)
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	t.Cleanup(srv.Close)
	p := newProvider(t, Options{Endpoint: srv.URL})

	for name, tc := range map[string]struct{ q, want string }{
		"not JSON":        {q: `m1 / m2`, want: "not a JSON array of MetricDataQuery"},
		"object":          {q: `{"Id": "e1", "Expression": "m1"}`, want: "not a JSON array of MetricDataQuery"},
		"misspelt field":  {q: `[{"Id": "e1", "Expresion": "m1 / m2"}]`, want: `unknown field "Expresion"`},
		"empty array":     {q: `[]`, want: "no MetricDataQuery"},
		"missing Id":      {q: `[{"Expression": "SUM(METRICS())"}]`, want: "MetricDataQuery 0 has no Id"},
		"trailing tokens": {q: `[{"Id": "e1", "Expression": "m1"}] []`, want: "after the JSON array"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := p.Query(t.Context(), tc.q)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Query error = %v, want one containing %q", err, tc.want)
			}
		})
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("%d requests sent for invalid queries", n)
	}
}

func TestNewValidates(t *testing.T) {
	isolateAWSConfig(t)
	tests := map[string]struct {
		o    Options
		want string
	}{
		"valid, default chain": {o: Options{Region: testRegion, UseDefaultCredentials: true}},
		"no keys, no default":  {o: Options{Region: testRegion}, want: "no credentials"},
		"user info in endpoint": {o: Options{Region: testRegion, AccessKeyID: "a", SecretAccessKey: "s", Endpoint: "https://AKID:SECRET@monitoring.eu-west-1.amazonaws.com"},
			want: `Endpoint: "https://xxxxx@monitoring.eu-west-1.amazonaws.com": must not carry user info`},
		"valid, static keys": {o: Options{Region: testRegion, AccessKeyID: "a", SecretAccessKey: "s"}},
		"missing region":     {o: Options{}, want: "Region is required"},
		"bad endpoint":       {o: Options{Region: testRegion, Endpoint: "localhost:4566"}, want: "Endpoint"},
		"negative window":    {o: Options{Region: testRegion, Window: -time.Minute}, want: "Window"},
		"negative timeout":   {o: Options{Region: testRegion, Timeout: -time.Second}, want: "Timeout"},
		"negative attempts":  {o: Options{Region: testRegion, MaxAttempts: -1}, want: "MaxAttempts"},
		"key without secret": {o: Options{Region: testRegion, AccessKeyID: "a"}, want: "SecretAccessKey is required"},
		"secret without key": {o: Options{Region: testRegion, SecretAccessKey: "s"}, want: "AccessKeyID is required"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := New(t.Context(), tc.o)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("New error = %v, want one naming %q", err, tc.want)
			}
		})
	}
}
