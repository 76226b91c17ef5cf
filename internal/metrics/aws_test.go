package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/app"
	"github.com/cordonhq/cordon/internal/metrics"
)

// fakeAWS answers the Query protocol (EC2, STS) from a script: each EC2
// attempt takes the next scripted answer; when the script is empty,
// DescribeInstances succeeds. STS GetCallerIdentity always succeeds.
type fakeAWS struct {
	*httptest.Server
	mu      sync.Mutex
	script  []answer
	actions []string
}

type answer struct {
	status int
	code   string // EC2 error code
}

func newFakeAWS(t *testing.T, script ...answer) *fakeAWS {
	t.Helper()
	f := &fakeAWS{script: script}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		action := form.Get("Action")
		f.mu.Lock()
		f.actions = append(f.actions, action)
		var a *answer
		if action != "GetCallerIdentity" && len(f.script) > 0 {
			a = &f.script[0]
			f.script = f.script[1:]
		}
		f.mu.Unlock()
		w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		switch {
		case action == "GetCallerIdentity":
			_, _ = io.WriteString(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>`+
				`<Arn>arn:aws:iam::123456789012:user/cordon</Arn><UserId>AIDAEXAMPLE</UserId><Account>123456789012</Account>`+
				`</GetCallerIdentityResult><ResponseMetadata><RequestId>4f5b2a7e-0000-4000-8000-000000000001</RequestId></ResponseMetadata></GetCallerIdentityResponse>`)
		case a != nil:
			w.WriteHeader(a.status)
			_, _ = fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
				`<Response><Errors><Error><Code>%s</Code><Message>scripted</Message></Error></Errors><RequestID>req-%d</RequestID></Response>`, a.code, len(f.actions))
		case action == "DescribeInstances":
			_, _ = io.WriteString(w, `<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">`+
				`<requestId>req-ok</requestId><reservationSet/></DescribeInstancesResponse>`)
		default:
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `<Response><Errors><Error><Code>InvalidAction</Code><Message>unexpected</Message></Error></Errors><RequestID>x</RequestID></Response>`)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAWS) Actions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.actions...)
}

// counts reads cordon_aws_calls_total from the registry, keyed
// "service operation outcome".
func counts(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != metrics.AWSCallsName {
			continue
		}
		require.Equal(t, "COUNTER", mf.GetType().String())
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			out[l["service"]+" "+l["operation"]+" "+l["outcome"]] = m.GetCounter().GetValue()
		}
	}
	return out
}

// ec2Client is an EC2 client with the counter, two attempts per call (as
// the worker's) and no backoff, against endpoint.
func ec2Client(calls *metrics.AWSCalls, endpoint string) *ec2.Client {
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 2
				o.RateLimiter = ratelimit.None
				o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
			})
		},
		APIOptions: []func(*middleware.Stack) error{calls.Option()},
	}
	return ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// A DescribeInstances throttled once and then answered counts one
// throttled attempt and one ok; permanent, server and transport failures
// count as client-error, server-error and other.
func TestAWSCallsCountsEveryAttemptByOutcome(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	calls, err := metrics.NewAWSCalls(reg)
	require.NoError(t, err)

	f := newFakeAWS(t, answer{http.StatusBadRequest, "RequestLimitExceeded"})
	c := ec2Client(calls, f.URL)
	_, err = c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	require.NoError(t, err, "the SDK retried the throttled attempt")
	require.Equal(t, []string{"DescribeInstances", "DescribeInstances"}, f.Actions())
	require.Equal(t, map[string]float64{
		"EC2 DescribeInstances throttled": 1,
		"EC2 DescribeInstances ok":        1,
	}, counts(t, reg))

	// Permanent: not retried by the SDK either.
	f = newFakeAWS(t, answer{http.StatusBadRequest, "InvalidInstanceID.Malformed"}, answer{http.StatusInternalServerError, "InternalError"},
		answer{http.StatusServiceUnavailable, "Unavailable"}, answer{http.StatusBadRequest, "IncorrectInstanceState"})
	c = ec2Client(calls, f.URL)
	_, err = c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-bad"}})
	require.Error(t, err)
	_, err = c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{}) // 500 then 503: both attempts fail
	require.Error(t, err)
	_, err = c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{}) // a retryable 400 (not retried by the SDK), counted as a refusal
	require.Error(t, err)

	// Nothing listens: no answer at all.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	down := "http://" + l.Addr().String()
	require.NoError(t, l.Close())
	_, err = ec2Client(calls, down).DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	require.Error(t, err)

	require.Equal(t, map[string]float64{
		"EC2 DescribeInstances throttled":    1,
		"EC2 DescribeInstances ok":           1,
		"EC2 DescribeInstances client-error": 2,
		"EC2 DescribeInstances server-error": 2,
		"EC2 DescribeInstances other":        2, // a connection error is retried by the SDK
	}, counts(t, reg))

	// Registering again (a second NewCloud in one process) reuses the counter.
	again, err := metrics.NewAWSCalls(reg)
	require.NoError(t, err)
	f = newFakeAWS(t)
	_, err = ec2Client(again, f.URL).DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	require.NoError(t, err)
	require.Equal(t, 2.0, counts(t, reg)["EC2 DescribeInstances ok"])
}

// The worker's own wiring: NewCloud with the metrics registry builds AWS
// clients (the worker's NewAWSConfig and its retryer, the endpoint
// override) whose calls are counted on that registry — STS's credential
// check included.
func TestWorkerAWSClientsCountCalls(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	f := newFakeAWS(t, answer{http.StatusBadRequest, "RequestLimitExceeded"})

	reg := prometheus.NewRegistry()
	ctx := context.Background()
	cloud, err := app.NewCloud(ctx, app.Config{Cloud: "aws", AWSRegion: "us-east-1", AWSEndpoint: f.URL, MetricsRegistry: reg})
	require.NoError(t, err)
	clients, err := cloud.AWS.Clients(ctx, "123456789012", "us-east-1")
	require.NoError(t, err)
	_, err = clients.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	require.NoError(t, err, "the worker's retryer makes a second attempt")
	require.Equal(t, map[string]float64{
		"STS GetCallerIdentity ok":        1,
		"EC2 DescribeInstances throttled": 1,
		"EC2 DescribeInstances ok":        1,
	}, counts(t, reg))
}

func TestAWSOutcome(t *testing.T) {
	api := func(code string) error { return &smithy.GenericAPIError{Code: code, Message: "m"} }
	resp := func(status int, err error) error {
		return &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: err}
	}
	for _, tc := range []struct {
		err    error
		status int
		want   string
	}{
		{nil, 200, "ok"},
		{api("RequestLimitExceeded"), 400, "throttled"},
		{api("Throttling"), 400, "throttled"},
		{api("ThrottlingException"), 400, "throttled"},
		{api("RequestThrottled"), 400, "throttled"},
		{api("TooManyRequestsException"), 400, "throttled"},
		{resp(429, api("SlowDown")), 0, "throttled"},
		{resp(429, errors.New("no code")), 0, "throttled"},
		{api("UnauthorizedOperation"), 403, "client-error"},
		{api("InvalidParameterValue"), 400, "client-error"},
		{api("InvalidGroupId.Malformed"), 400, "client-error"},
		{api("AccessDenied"), 0, "client-error"}, // permanent by Cordon's table, even without a status
		{api("IncorrectInstanceState"), 400, "client-error"},
		{resp(400, api("InvalidInstanceID.NotFound")), 0, "client-error"},
		{api("InternalError"), 500, "server-error"},
		{resp(503, api("Unavailable")), 0, "server-error"},
		{context.Canceled, 0, "other"},
		{context.DeadlineExceeded, 0, "other"},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, 0, "other"},
	} {
		require.Equal(t, tc.want, metrics.AWSOutcome(tc.err, tc.status), "%v (HTTP %d)", tc.err, tc.status)
	}
}
