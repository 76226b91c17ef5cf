package awstest_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/awstest"
)

// TestFixture: the fixture builds the account the other moto tests rely on,
// and moto reports it the way AWS would.
func TestFixture(t *testing.T) {
	t.Parallel()
	f := awstest.Build(t, awstest.Options{})

	g := f.DescribeGroup(t)
	require.EqualValues(t, 2, aws.ToInt32(g.DesiredCapacity))
	require.Equal(t, []string{f.TargetGroupARN}, g.TargetGroupARNs)
	health := f.TargetHealth(t, f.TargetGroupARN)
	for _, id := range f.Members {
		require.Equal(t, "InService", string(awstest.GroupMembers(g)[id]))
		require.Equal(t, "healthy", string(health[id]), "member %s registered and healthy behind the ALB", id)
		inst := f.Instance(t, id)
		require.Contains(t, f.WebSubnetIDs, aws.ToString(inst.SubnetId))
		require.Len(t, inst.NetworkInterfaces, 1)
	}

	one := f.Instance(t, f.OneENI)
	require.Len(t, one.NetworkInterfaces, 1)
	two := f.Instance(t, f.TwoENI)
	require.Len(t, two.NetworkInterfaces, 2)
	require.Contains(t, awstest.ENIGroups(two), f.SecondENI)
	for eni, groups := range awstest.ENIGroups(two) {
		require.Equal(t, []string{f.WebGroupID}, groups, "ENI %s", eni)
	}

	q, err := f.EC2.DescribeSubnets(context.Background(), &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{f.VPCID}}, {Name: aws.String("tag:cordon:quarantine"), Values: []string{"true"}}}})
	require.NoError(t, err)
	require.Len(t, q.Subnets, 1)
	require.Equal(t, f.QuarantineSubnetID, aws.ToString(q.Subnets[0].SubnetId))
	require.Contains(t, f.TopicARN, ":"+awstest.CallerAccount+":")

	// Fresh accounts are separate: the other account does not see these instances.
	other := awstest.NewAccount(t)
	_, err = other.EC2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{f.OneENI}})
	require.Error(t, err)
	require.Contains(t, err.Error(), "InvalidInstanceID.NotFound")
}

// TestThrottleThroughSDK: the injected throttling reaches the caller as the
// SDK's own API error with code RequestLimitExceeded, after exactly the
// worker retryer's two attempts, and never as "retry quota exceeded", however
// many calls are throttled. The control: the SDK's default retryer, under the
// same throttling, fails calls with "retry quota exceeded" once its shared
// token bucket is empty (aws-sdk-go-v2#1665) — what Cordon's retryer avoids.
func TestThrottleThroughSDK(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	acct := awstest.NewAccount(t)
	th := awstest.NewThrottle(1, 1)
	rec := &awstest.Recorder{}
	c, err := awstest.Provider(t, []awstest.APIOption{rec.Option(), th.Option()}, acct).Clients(ctx, acct.ID, awstest.Region)
	require.NoError(t, err)
	const calls = 120
	var wg sync.WaitGroup
	errs := make([]error, calls)
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.Error(t, err)
		var apiErr smithy.APIError
		require.True(t, errors.As(err, &apiErr), "%v", err)
		require.Equal(t, "RequestLimitExceeded", apiErr.ErrorCode())
		require.NotContains(t, err.Error(), "retry quota exceeded")
		require.Contains(t, err.Error(), "exceeded maximum number of attempts, 2")
	}
	attempts, _ := th.Attempts()
	injected, _ := th.Injected()
	require.Equal(t, 2*calls, attempts, "two attempts per call (the worker's SDK retryer)")
	require.Equal(t, 2*calls, injected)
	for _, c := range rec.Calls() {
		if strings.HasPrefix(c.Action, "sts:") {
			require.NoError(t, c.Err, "STS is not throttled")
		}
	}

	// Control: the SDK's default standard retryer (3 attempts, shared
	// 500-token retry quota), without its backoff delays to keep this fast.
	control := awstest.NewThrottle(1, 2)
	cfg := awstest.StaticConfig(func(cfg *aws.Config) {
		cfg.Retryer = func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
			})
		}
		cfg.APIOptions = append(cfg.APIOptions, control.Option())
	})
	ec := ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.BaseEndpoint = aws.String(awstest.Endpoint(t)) })
	quota := 0
	for range calls {
		_, err := ec.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
		require.Error(t, err)
		if strings.Contains(err.Error(), "retry quota exceeded") {
			quota++
		}
	}
	require.Greater(t, quota, 0, "the default retryer runs out of retry quota under sustained throttling")
	t.Logf("default SDK retryer: %d of %d calls failed with \"retry quota exceeded\"; Cordon's: none", quota, calls)
}
