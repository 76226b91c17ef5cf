package app

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"

	"github.com/cordonhq/cordon/activities"
)

// AWSProvider hands out real AWS clients per account and region. Accounts
// with a configured role are reached through STS AssumeRole; the account of
// the default credentials needs none. Any other account is refused with an
// error that says what to configure.
type AWSProvider struct {
	base     aws.Config
	endpoint string
	roles    map[string]string

	mu       sync.Mutex
	clients  map[string]activities.Clients
	identity string
}

// NewAWSConfig loads the default credential chain with a short SDK retryer.
// Temporal owns retrying (each step has its own backoff policy); the SDK
// makes two attempts so a single dropped connection does not cost a whole
// activity attempt, and the client-side retry quota is disabled because one
// client is shared by many concurrent incidents and a shared quota fails
// calls with "retry quota exceeded" under throttling (aws-sdk-go-v2#1665).
// apiOptions are added to every client's stack (metrics.AWSCalls.Option:
// cordon_aws_calls_total).
func NewAWSConfig(ctx context.Context, region string, apiOptions ...func(*middleware.Stack) error) (aws.Config, error) {
	opts := []func(*config.LoadOptions) error{
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 2
				o.MaxBackoff = 2 * time.Second
				o.RateLimiter = ratelimit.None
			})
		}),
	}
	if len(apiOptions) > 0 {
		opts = append(opts, config.WithAPIOptions(apiOptions))
	}
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return cfg, fmt.Errorf("loading AWS configuration: %w (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, and AWS_REGION)", err)
	}
	return cfg, nil
}

// NewAWSProvider returns a provider over base. endpoint, when set, overrides
// every service endpoint (moto's server mode in tests); roles maps account
// IDs to role ARNs.
func NewAWSProvider(base aws.Config, endpoint string, roles map[string]string) *AWSProvider {
	return &AWSProvider{base: base, endpoint: endpoint, roles: roles, clients: map[string]activities.Clients{}}
}

func (p *AWSProvider) ep() *string {
	if p.endpoint == "" {
		return nil
	}
	return aws.String(p.endpoint)
}

// CallerAccount returns the account of the default credentials.
func (p *AWSProvider) CallerAccount(ctx context.Context) (string, error) {
	p.mu.Lock()
	id := p.identity
	p.mu.Unlock()
	if id != "" {
		return id, nil
	}
	out, err := sts.NewFromConfig(p.base, func(o *sts.Options) { o.BaseEndpoint = p.ep() }).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", fmt.Errorf("checking AWS credentials with sts:GetCallerIdentity: %w", err)
	}
	p.mu.Lock()
	p.identity = aws.ToString(out.Account)
	p.mu.Unlock()
	return p.identity, nil
}

// Config returns the aws.Config for an account and region.
func (p *AWSProvider) Config(ctx context.Context, account, region string) (aws.Config, error) {
	cfg := p.base.Copy()
	cfg.Region = region
	if role, ok := p.roles[account]; ok {
		stsClient := sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = p.ep() })
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsClient, role, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = "cordon"
		}))
		return cfg, nil
	}
	caller, err := p.CallerAccount(ctx)
	if err != nil {
		return cfg, err
	}
	if account != caller {
		return cfg, fmt.Errorf("account %s is not the credentials' account %s and has no role: set CORDON_ROLES=%s=arn:aws:iam::%s:role/cordon", account, caller, account, account)
	}
	return cfg, nil
}

// Clients implements activities.CloudProvider.
func (p *AWSProvider) Clients(ctx context.Context, account, region string) (activities.Clients, error) {
	key := account + "/" + region
	p.mu.Lock()
	c, ok := p.clients[key]
	p.mu.Unlock()
	if ok {
		return c, nil
	}
	cfg, err := p.Config(ctx, account, region)
	if err != nil {
		return activities.Clients{}, err
	}
	c = activities.Clients{
		EC2:         ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.BaseEndpoint = p.ep() }),
		AutoScaling: autoscaling.NewFromConfig(cfg, func(o *autoscaling.Options) { o.BaseEndpoint = p.ep() }),
		ELBv2:       elbv2.NewFromConfig(cfg, func(o *elbv2.Options) { o.BaseEndpoint = p.ep() }),
	}
	p.mu.Lock()
	p.clients[key] = c
	p.mu.Unlock()
	return c, nil
}

// SNS returns an SNS client for the region of the alert topic.
func (p *AWSProvider) SNS(region string) *sns.Client {
	cfg := p.base.Copy()
	if region != "" {
		cfg.Region = region
	}
	return sns.NewFromConfig(cfg, func(o *sns.Options) { o.BaseEndpoint = p.ep() })
}
