// Package awstest runs Cordon's AWS code against moto's server mode, an
// independent implementation of the AWS wire protocol: where moto is
// (CORDON_TEST_MOTO), fresh accounts reached through STS AssumeRole, a
// realistic account built through aws-sdk-go-v2 (VPC, web and quarantine
// subnets, ALB, Auto Scaling group, instances with one and two network
// interfaces, SNS topic), Describe helpers to check results, and SDK
// middleware that records calls, injects throttling and papers over moto's
// few unimplemented request shapes.
//
// Start moto with `eval "$(scripts/moto start)"`. Without CORDON_TEST_MOTO the
// tests skip, except in CI (CI=true), where a missing moto fails them.
package awstest

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/logging"

	"github.com/cordonhq/cordon/internal/app"
)

const (
	// EnvMoto names the environment variable with moto's URL.
	EnvMoto = "CORDON_TEST_MOTO"
	// Region is the region every fixture lives in.
	Region = "us-east-1"
	// CallerAccount is moto's account of the static test credentials
	// ("testing"): the worker's own account, which needs no role.
	CallerAccount = "123456789012"
	// RoleName is the role Cordon assumes in every other account.
	RoleName = "cordon"
)

// StartHint says how to start moto; tests print it when they skip.
const StartHint = `start moto with: eval "$(scripts/moto start)"   (stop it with scripts/moto stop)`

var (
	probeOnce sync.Once
	probeErr  error
)

// Endpoint returns moto's URL. Without CORDON_TEST_MOTO the test is skipped
// with a message saying how to start moto, except when CI=true: CI never
// skips a moto test, a missing moto fails it. A set but unreachable
// endpoint always fails.
func Endpoint(t testing.TB) string {
	t.Helper()
	ep := os.Getenv(EnvMoto)
	if ep == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set and CI=true: moto-backed tests may not be skipped in CI; %s", EnvMoto, StartHint)
		}
		t.Skipf("%s is not set: %s", EnvMoto, StartHint)
	}
	probeOnce.Do(func() {
		c := http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get(ep + "/moto-api/")
		if err != nil {
			probeErr = err
			return
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			probeErr = fmt.Errorf("GET %s/moto-api/: %s", ep, resp.Status)
		}
	})
	if probeErr != nil {
		t.Fatalf("%s=%s does not answer like moto: %v; %s", EnvMoto, ep, probeErr, StartHint)
	}
	return ep
}

// StaticConfig is a plain SDK configuration with moto's static test
// credentials in Region (SDK defaults otherwise). Fixtures use it; the code
// under test uses WorkerConfig.
func StaticConfig(opts ...func(*aws.Config)) aws.Config {
	cfg := aws.Config{
		Region:      Region,
		Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider("testing", "testing", "")),
		Logger:      logging.Nop{},
	}
	for _, o := range opts {
		o(&cfg)
	}
	return cfg
}

var envOnce sync.Once

// UseTestCredentials points the default credential chain of this test
// process at moto's static test credentials and away from any local
// profile, so app.NewAWSConfig (the worker's real loader) can be used as is.
// Every client the tests build has moto's endpoint; nothing reaches AWS.
func UseTestCredentials() {
	envOnce.Do(func() {
		for k, v := range map[string]string{
			"AWS_ACCESS_KEY_ID":           "testing",
			"AWS_SECRET_ACCESS_KEY":       "testing",
			"AWS_REGION":                  Region,
			"AWS_CONFIG_FILE":             os.DevNull,
			"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
			"AWS_EC2_METADATA_DISABLED":   "true",
		} {
			_ = os.Setenv(k, v)
		}
		for _, k := range []string{"AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"} {
			_ = os.Unsetenv(k)
		}
	})
}

// WorkerConfig is the configuration the worker loads (app.NewAWSConfig: the
// default credential chain and Cordon's short SDK retryer) over moto's test
// credentials, with extra API options (recorders, fault injection) appended.
func WorkerConfig(t testing.TB, apiOptions ...APIOption) aws.Config {
	t.Helper()
	UseTestCredentials()
	cfg, err := app.NewAWSConfig(context.Background(), Region)
	if err != nil {
		t.Fatalf("app.NewAWSConfig: %v", err)
	}
	for _, o := range apiOptions {
		cfg.APIOptions = append(cfg.APIOptions, o)
	}
	// moto closes every connection ("Connection: close"); the SDK warns
	// about each one it cannot reuse. Nothing else is logged at that level.
	cfg.Logger = logging.Nop{}
	return cfg
}

// RoleARN is Cordon's role in account.
func RoleARN(account string) string {
	return "arn:aws:iam::" + account + ":role/" + RoleName
}

// NewAccountID returns a random 12-digit account ID. moto keeps one backend
// per account, so a fresh ID is a fresh, empty account: tests stay
// independent and run in parallel without resetting moto.
func NewAccountID() string {
	n, err := rand.Int(rand.Reader, big.NewInt(899_999_999_999))
	if err != nil {
		panic(err)
	}
	return fmt.Sprintf("%012d", n.Int64()+100_000_000_000)
}

// Account is one moto account reached the way Cordon reaches it: STS
// AssumeRole of arn:aws:iam::<ID>:role/cordon from the static credentials.
type Account struct {
	ID       string
	RoleARN  string
	Endpoint string
	Config   aws.Config // the role's credentials

	EC2         *ec2.Client
	AutoScaling *autoscaling.Client
	ELBv2       *elbv2.Client
	SNS         *sns.Client
}

// NewAccount returns a fresh account with clients on moto.
func NewAccount(t testing.TB) *Account {
	t.Helper()
	ep := Endpoint(t)
	id := NewAccountID()
	base := StaticConfig()
	stsc := sts.NewFromConfig(base, func(o *sts.Options) { o.BaseEndpoint = aws.String(ep) })
	cfg := base.Copy()
	cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsc, RoleARN(id), func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = "cordon-fixture"
	}))
	return newAccount(id, ep, cfg)
}

// Caller is the static credentials' own account (CallerAccount), shared by
// every test: use unique names in it.
func Caller(t testing.TB) *Account {
	t.Helper()
	return newAccount(CallerAccount, Endpoint(t), StaticConfig())
}

func newAccount(id, ep string, cfg aws.Config) *Account {
	e := aws.String(ep)
	return &Account{
		ID: id, RoleARN: RoleARN(id), Endpoint: ep, Config: cfg,
		EC2:         ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.BaseEndpoint = e }),
		AutoScaling: autoscaling.NewFromConfig(cfg, func(o *autoscaling.Options) { o.BaseEndpoint = e }),
		ELBv2:       elbv2.NewFromConfig(cfg, func(o *elbv2.Options) { o.BaseEndpoint = e }),
		SNS:         sns.NewFromConfig(cfg, func(o *sns.Options) { o.BaseEndpoint = e }),
	}
}

// Roles maps each account to its Cordon role, as CORDON_ROLES does.
func Roles(accounts ...*Account) map[string]string {
	m := map[string]string{}
	for _, a := range accounts {
		m[a.ID] = a.RoleARN
	}
	return m
}

// Provider is the worker's real AWS provider (app.AWSProvider) on moto:
// endpoint override, the worker's SDK configuration with apiOptions, and a
// role for each account.
func Provider(t testing.TB, apiOptions []APIOption, accounts ...*Account) *app.AWSProvider {
	t.Helper()
	return app.NewAWSProvider(WorkerConfig(t, apiOptions...), Endpoint(t), Roles(accounts...))
}
