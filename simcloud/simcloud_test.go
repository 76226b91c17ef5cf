package simcloud_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/activities"
	"github.com/cordonhq/cordon/simcloud"
)

// The simulated cloud is interchangeable with the SDK clients.
var (
	_ activities.EC2API         = (*simcloud.Cloud)(nil)
	_ activities.AutoScalingAPI = (*simcloud.Cloud)(nil)
	_ activities.ELBv2API       = (*simcloud.Cloud)(nil)
	_ activities.SNSAPI         = (*simcloud.Cloud)(nil)
	_ activities.CloudProvider  = (*simcloud.Cloud)(nil)
)

// The seed fleet.
const (
	account   = "123456789012"
	asg       = "web-asg"
	twoENI    = "i-04f2ae54915567738" // ip-10-0-1-10, two interfaces
	oneENI    = "i-085a2fa5fa92cd19c" // ip-10-0-2-17
	euServer  = "i-034136011c134a2d9" // ip-10-0-5-38, eu-west-1b
	topic     = "arn:aws:sns:us-east-1:123456789012:cordon-alerts"
	tgName    = "web-tg"
	isolation = "cordon-isolation"
)

var ctx = context.Background()

func seedEnv(t *testing.T) *simcloud.Environment {
	t.Helper()
	env, err := simcloud.LoadEnvironment("testdata/seed.yaml")
	require.NoError(t, err)
	return env
}

// newCloud builds the seed cloud with zero delays.
func newCloud(t *testing.T) *simcloud.Cloud {
	t.Helper()
	c, err := simcloud.New(seedEnv(t), simcloud.Options{})
	require.NoError(t, err)
	return c
}

// newClockCloud builds the seed cloud on a manual clock with delays.
func newClockCloud(t *testing.T, d simcloud.Delays) (*simcloud.Cloud, *simcloud.ManualClock) {
	t.Helper()
	clock := simcloud.NewManualClock(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC))
	c, err := simcloud.New(seedEnv(t), simcloud.Options{Delays: d, Now: clock.Now})
	require.NoError(t, err)
	return c, clock
}

// requireCode asserts err is an AWS API error with the code.
func requireCode(t *testing.T, err error, code string) smithy.APIError {
	t.Helper()
	require.Error(t, err)
	var ae smithy.APIError
	require.True(t, errors.As(err, &ae), "want a smithy.APIError, got %T: %v", err, err)
	require.Equal(t, code, ae.ErrorCode(), ae.ErrorMessage())
	return ae
}

func describe(t *testing.T, c *simcloud.Cloud, in *ec2.DescribeInstancesInput) []ec2types.Instance {
	t.Helper()
	out, err := c.DescribeInstances(ctx, in)
	require.NoError(t, err)
	var list []ec2types.Instance
	for _, r := range out.Reservations {
		list = append(list, r.Instances...)
	}
	return list
}

func filter(name string, values ...string) ec2types.Filter {
	return ec2types.Filter{Name: aws.String(name), Values: values}
}

func group(t *testing.T, c *simcloud.Cloud) astypes.AutoScalingGroup {
	t.Helper()
	out, err := c.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{asg}})
	require.NoError(t, err)
	require.Len(t, out.AutoScalingGroups, 1)
	return out.AutoScalingGroups[0]
}

func inService(g astypes.AutoScalingGroup) []string {
	var ids []string
	for _, m := range g.Instances {
		if m.LifecycleState == astypes.LifecycleStateInService {
			ids = append(ids, aws.ToString(m.InstanceId))
		}
	}
	return ids
}

func targetStates(t *testing.T, c *simcloud.Cloud) map[string]elbtypes.TargetHealthStateEnum {
	t.Helper()
	arn, ok := c.TargetGroupARN(tgName)
	require.True(t, ok)
	out, err := c.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(arn)})
	require.NoError(t, err)
	states := map[string]elbtypes.TargetHealthStateEnum{}
	for _, d := range out.TargetHealthDescriptions {
		states[aws.ToString(d.Target.Id)] = d.TargetHealth.State
	}
	return states
}

func detach(c *simcloud.Cloud, id string, decrement bool) error {
	_, err := c.DetachInstances(ctx, &autoscaling.DetachInstancesInput{
		AutoScalingGroupName: aws.String(asg), InstanceIds: []string{id}, ShouldDecrementDesiredCapacity: aws.Bool(decrement),
	})
	return err
}

func sgID(t *testing.T, c *simcloud.Cloud, name string) string {
	t.Helper()
	g, ok := c.SecurityGroup(name)
	require.True(t, ok, name)
	return g.ID
}

// ---------------------------------------------------------------------------

func TestSeedLoadsTheCaptureFleet(t *testing.T) {
	c := newCloud(t)

	want := map[string][3]string{ // host, IP, AZ
		"i-0144394dc883f9fe0": {"ip-10-0-3-24", "10.0.3.24", "us-east-1c"},
		"i-034136011c134a2d9": {"ip-10-0-5-38", "10.0.5.38", "eu-west-1b"},
		"i-04f2ae54915567738": {"ip-10-0-1-10", "10.0.1.10", "us-east-1a"},
		"i-06e354b41b6b927eb": {"ip-10-0-4-31", "10.0.4.31", "eu-west-1a"},
		"i-085a2fa5fa92cd19c": {"ip-10-0-2-17", "10.0.2.17", "us-east-1b"},
	}
	list := describe(t, c, &ec2.DescribeInstancesInput{})
	require.Len(t, list, 5)
	for _, in := range list {
		w, ok := want[aws.ToString(in.InstanceId)]
		require.True(t, ok, aws.ToString(in.InstanceId))
		require.Equal(t, ec2types.InstanceStateNameRunning, in.State.Name)
		require.Equal(t, w[1], aws.ToString(in.PrivateIpAddress))
		require.Equal(t, w[2], aws.ToString(in.Placement.AvailabilityZone))
		tags := map[string]string{}
		for _, tag := range in.Tags {
			tags[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
		}
		require.Equal(t, w[0], tags["Name"])
		require.Equal(t, asg, tags["aws:autoscaling:groupName"])
		require.NotNil(t, in.IamInstanceProfile)
	}

	eu, ok := c.Instance(euServer)
	require.True(t, ok)
	require.Equal(t, "eu-west-1", eu.Region)
	require.Equal(t, "ip-10-0-5-38.eu-west-1.compute.internal", eu.PrivateDNSName)

	two, _ := c.Instance(twoENI)
	require.Len(t, two.ENIs, 2)
	require.Equal(t, []string{sgID(t, c, "web")}, two.ENIs[0].GroupIDs)
	require.Equal(t, []string{sgID(t, c, "web-mgmt")}, two.ENIs[1].GroupIDs)
	require.Len(t, two.Volumes, 2)

	g := group(t, c)
	require.EqualValues(t, 5, *g.DesiredCapacity)
	require.EqualValues(t, 2, *g.MinSize)
	require.EqualValues(t, 10, *g.MaxSize)
	require.Len(t, inService(g), 5)
	require.Len(t, targetStates(t, c), 5)
	for id, s := range targetStates(t, c) {
		require.Equal(t, elbtypes.TargetHealthStateEnumHealthy, s, id)
	}

	subnets, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{
		filter("vpc-id", two.VPCID), filter("tag:cordon:quarantine", "true"),
	}})
	require.NoError(t, err)
	require.Len(t, subnets.Subnets, 1)
	require.Equal(t, "10.0.99.0/24", aws.ToString(subnets.Subnets[0].CidrBlock))

	iso, ok := c.SecurityGroup(isolation)
	require.True(t, ok)
	require.Empty(t, iso.Ingress)
	require.Empty(t, iso.Egress)
	tr, ok := c.SecurityGroup("cordon-isolation-transition")
	require.True(t, ok)
	require.Len(t, tr.Ingress, 2, "all traffic in, IPv4 and IPv6")
	require.Len(t, tr.Egress, 2, "all traffic out, IPv4 and IPv6")
	require.Equal(t, []string{topic}, c.Topics())

	// The demo's copy is the same file.
	a, err := os.ReadFile("testdata/seed.yaml")
	require.NoError(t, err)
	b, err := os.ReadFile("../testdata/sim/seed.yaml")
	require.NoError(t, err)
	require.True(t, bytes.Equal(a, b), "testdata/sim/seed.yaml differs from simcloud/testdata/seed.yaml")
}

func TestClientsReturnTheSameCloudForEveryRegion(t *testing.T) {
	c := newCloud(t)
	for _, region := range []string{"us-east-1", "eu-west-1"} {
		cl, err := c.Clients(ctx, "123456789012", region)
		require.NoError(t, err)
		require.Same(t, c, cl.EC2)
		require.Same(t, c, cl.AutoScaling)
		require.Same(t, c, cl.ELBv2)
	}
}

func TestDescribeInstancesFiltersAndErrors(t *testing.T) {
	c := newCloud(t)
	ids := func(in *ec2.DescribeInstancesInput) []string {
		var out []string
		for _, i := range describe(t, c, in) {
			out = append(out, aws.ToString(i.InstanceId))
		}
		return out
	}
	require.Equal(t, []string{oneENI}, ids(&ec2.DescribeInstancesInput{Filters: []ec2types.Filter{filter("private-ip-address", "10.0.2.17")}}))
	require.Equal(t, []string{oneENI}, ids(&ec2.DescribeInstancesInput{Filters: []ec2types.Filter{filter("private-dns-name", "ip-10-0-2-17.*")}}))
	require.Equal(t, []string{oneENI}, ids(&ec2.DescribeInstancesInput{Filters: []ec2types.Filter{filter("tag:Name", "ip-10-0-2-17")}}))
	require.Equal(t, []string{twoENI}, ids(&ec2.DescribeInstancesInput{Filters: []ec2types.Filter{filter("network-interface.addresses.private-ip-address", "10.0.1.110")}}))
	require.Len(t, ids(&ec2.DescribeInstancesInput{Filters: []ec2types.Filter{filter("instance-state-name", "running", "pending")}}), 5)
	sub, _ := c.SubnetID("web-us-east-1a")
	require.Equal(t, []string{twoENI}, ids(&ec2.DescribeInstancesInput{Filters: []ec2types.Filter{filter("subnet-id", sub)}}))
	require.Equal(t, []string{twoENI}, ids(&ec2.DescribeInstancesInput{Filters: []ec2types.Filter{filter("network-interface.subnet-id", sub)}}))
	require.Empty(t, ids(&ec2.DescribeInstancesInput{Filters: []ec2types.Filter{filter("tag:Name", "nope")}}))

	_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-0123456789abcdef0"}})
	requireCode(t, err, "InvalidInstanceID.NotFound")
	_, err = c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{"web-1"}})
	requireCode(t, err, "InvalidInstanceID.Malformed")
	_, err = c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{filter("private-ip", "10.0.2.17")}})
	requireCode(t, err, "InvalidParameterValue")
	_, err = c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{DryRun: aws.Bool(true)})
	requireCode(t, err, "DryRunOperation")
}

func TestDetachLaunchesAnInServiceReplacementAtOnceWithZeroDelays(t *testing.T) {
	c := newCloud(t)
	require.NoError(t, detach(c, oneENI, false))

	g := group(t, c)
	require.EqualValues(t, 5, *g.DesiredCapacity)
	members := inService(g)
	require.Len(t, members, 5)
	require.NotContains(t, members, oneENI)
	var replacement string
	for _, id := range members {
		if !strings.HasPrefix(id, "i-0") || len(id) != 19 {
			t.Fatalf("bad id %s", id)
		}
		if _, ok := map[string]bool{"i-0144394dc883f9fe0": true, euServer: true, twoENI: true, "i-06e354b41b6b927eb": true}[id]; !ok {
			replacement = id
		}
	}
	require.NotEmpty(t, replacement)

	// The detached instance is not in any group, runs on, and left the target group.
	out, err := c.DescribeAutoScalingInstances(ctx, &autoscaling.DescribeAutoScalingInstancesInput{InstanceIds: []string{oneENI}})
	require.NoError(t, err)
	require.Empty(t, out.AutoScalingInstances)
	detached := describe(t, c, &ec2.DescribeInstancesInput{InstanceIds: []string{oneENI}})
	require.Equal(t, ec2types.InstanceStateNameRunning, detached[0].State.Name)
	states := targetStates(t, c)
	require.NotContains(t, states, oneENI)
	require.Equal(t, elbtypes.TargetHealthStateEnumHealthy, states[replacement])

	// The replacement runs the group's launch configuration.
	r := describe(t, c, &ec2.DescribeInstancesInput{InstanceIds: []string{replacement}})[0]
	require.Equal(t, ec2types.InstanceStateNameRunning, r.State.Name)
	require.Equal(t, "ami-0abcdef1234567890", aws.ToString(r.ImageId))
	require.Equal(t, ec2types.InstanceType("t3.medium"), r.InstanceType)
	require.Equal(t, sgID(t, c, "web"), aws.ToString(r.SecurityGroups[0].GroupId))
	asi, err := c.DescribeAutoScalingInstances(ctx, &autoscaling.DescribeAutoScalingInstancesInput{InstanceIds: []string{replacement}})
	require.NoError(t, err)
	require.Equal(t, "InService", aws.ToString(asi.AutoScalingInstances[0].LifecycleState))
	require.Equal(t, "HEALTHY", aws.ToString(asi.AutoScalingInstances[0].HealthStatus))

	// Detaching it again: it is not part of the group any more.
	ae := requireCode(t, detach(c, oneENI, false), "ValidationError")
	require.Equal(t, "The instance "+oneENI+" is not part of Auto Scaling group web-asg.", ae.ErrorMessage())
}

func TestDetachReplacementFollowsTheClock(t *testing.T) {
	d := simcloud.Delays{InstanceStart: 30 * time.Second, Replace: time.Minute, TargetHealthy: 20 * time.Second, TargetDraining: 5 * time.Minute}
	c, clock := newClockCloud(t, d)
	require.NoError(t, detach(c, oneENI, false))

	member := func(id string) astypes.Instance {
		for _, m := range group(t, c).Instances {
			if aws.ToString(m.InstanceId) == id {
				return m
			}
		}
		return astypes.Instance{}
	}
	// Draining from the target group keeps it Detaching; no replacement yet.
	require.Equal(t, astypes.LifecycleStateDetaching, member(oneENI).LifecycleState)
	require.Equal(t, elbtypes.TargetHealthStateEnumDraining, targetStates(t, c)[oneENI])
	require.Len(t, inService(group(t, c)), 4)
	require.Len(t, group(t, c).Instances, 5)

	clock.Advance(time.Minute) // the group launches
	var replacement string
	for _, m := range group(t, c).Instances {
		if m.LifecycleState == astypes.LifecycleStatePending {
			replacement = aws.ToString(m.InstanceId)
		}
	}
	require.NotEmpty(t, replacement)
	inst := describe(t, c, &ec2.DescribeInstancesInput{InstanceIds: []string{replacement}})[0]
	require.Equal(t, ec2types.InstanceStateNamePending, inst.State.Name)

	clock.Advance(30 * time.Second) // running → InService, registered
	require.Equal(t, astypes.LifecycleStateInService, member(replacement).LifecycleState)
	require.Equal(t, elbtypes.TargetHealthStateEnumInitial, targetStates(t, c)[replacement])

	clock.Advance(20 * time.Second)
	require.Equal(t, elbtypes.TargetHealthStateEnumHealthy, targetStates(t, c)[replacement])
	require.Len(t, inService(group(t, c)), 5)

	clock.Advance(5 * time.Minute) // draining done: the detached instance is gone from the group
	require.Equal(t, astypes.Instance{}, member(oneENI))
	require.NotContains(t, targetStates(t, c), oneENI)
}

func TestDetachWithDecrement(t *testing.T) {
	c := newCloud(t)
	require.NoError(t, detach(c, oneENI, true))
	g := group(t, c)
	require.EqualValues(t, 4, *g.DesiredCapacity)
	require.Len(t, g.Instances, 4)

	// Down to min, then refused.
	ids := inService(g)
	require.NoError(t, detach(c, ids[0], true))
	require.NoError(t, detach(c, ids[1], true))
	requireCode(t, detach(c, ids[2], true), "ValidationError")
	require.EqualValues(t, 2, *group(t, c).DesiredCapacity)
}

func TestTerminatingAMemberThroughEC2MakesTheGroupReplaceIt(t *testing.T) {
	d := simcloud.Delays{InstanceStop: time.Minute, Replace: 2 * time.Minute}
	c, clock := newClockCloud(t, d)
	out, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{oneENI}})
	require.NoError(t, err)
	require.Equal(t, ec2types.InstanceStateNameRunning, out.TerminatingInstances[0].PreviousState.Name)
	require.Equal(t, ec2types.InstanceStateNameShuttingDown, out.TerminatingInstances[0].CurrentState.Name)

	asi, err := c.DescribeAutoScalingInstances(ctx, &autoscaling.DescribeAutoScalingInstancesInput{InstanceIds: []string{oneENI}})
	require.NoError(t, err)
	require.Equal(t, "Terminating", aws.ToString(asi.AutoScalingInstances[0].LifecycleState))
	require.Equal(t, "UNHEALTHY", aws.ToString(asi.AutoScalingInstances[0].HealthStatus))

	clock.Advance(2 * time.Minute)
	g := group(t, c)
	require.EqualValues(t, 5, *g.DesiredCapacity)
	require.Len(t, inService(g), 5)
	require.NotContains(t, inService(g), oneENI)

	// Terminated instances stay visible, without addresses.
	gone := describe(t, c, &ec2.DescribeInstancesInput{InstanceIds: []string{oneENI}})[0]
	require.Equal(t, ec2types.InstanceStateNameTerminated, gone.State.Name)
	require.Nil(t, gone.PrivateIpAddress)
	require.Empty(t, gone.NetworkInterfaces)
	require.Empty(t, describe(t, c, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{filter("private-ip-address", "10.0.2.17")}}))
}

func TestTerminationProtectionBlocksTerminate(t *testing.T) {
	c := newCloud(t)
	_, err := c.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{
		InstanceId: aws.String(oneENI), DisableApiTermination: &ec2types.AttributeBooleanValue{Value: aws.Bool(true)},
	})
	require.NoError(t, err)
	attr, err := c.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(oneENI), Attribute: ec2types.InstanceAttributeNameDisableApiTermination})
	require.NoError(t, err)
	require.True(t, aws.ToBool(attr.DisableApiTermination.Value))

	_, err = c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{twoENI, oneENI}})
	ae := requireCode(t, err, "OperationNotPermitted")
	require.Contains(t, ae.ErrorMessage(), "may not be terminated. Modify its 'disableApiTermination' instance attribute and try again.")
	for _, id := range []string{oneENI, twoENI} { // all or nothing
		in, _ := c.Instance(id)
		require.Equal(t, "running", in.State)
	}

	_, err = c.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{
		InstanceId: aws.String(oneENI), Attribute: ec2types.InstanceAttributeNameDisableApiTermination, Value: aws.String("false"),
	})
	require.NoError(t, err)
	_, err = c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{oneENI}})
	require.NoError(t, err)

	_, err = c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{"i-0aaaaaaaaaaaaaaaa"}})
	requireCode(t, err, "InvalidInstanceID.NotFound")
}

func TestInstanceLevelGroupsChangeFailsOnMultiENIInstances(t *testing.T) {
	c := newCloud(t)
	iso := sgID(t, c, isolation)
	_, err := c.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(twoENI), Groups: []string{iso}})
	ae := requireCode(t, err, "InvalidInstanceID")
	require.Equal(t, "There are multiple interfaces attached to instance '"+twoENI+"'. Please specify an interface ID for the operation instead.", ae.ErrorMessage())
	two, _ := c.Instance(twoENI)
	require.NotEqual(t, []string{iso}, two.ENIs[0].GroupIDs)

	// One interface: the call sets its groups.
	_, err = c.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(oneENI), Groups: []string{iso}})
	require.NoError(t, err)
	one, _ := c.Instance(oneENI)
	require.Equal(t, []string{iso}, one.ENIs[0].GroupIDs)

	// Per interface works on the two-ENI instance, with every group given.
	transition := sgID(t, c, "cordon-isolation-transition")
	for _, ni := range two.ENIs {
		_, err = c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
			NetworkInterfaceId: aws.String(ni.ID), Groups: []string{transition, iso},
		})
		require.NoError(t, err)
	}
	two, _ = c.Instance(twoENI)
	for _, ni := range two.ENIs {
		require.Equal(t, []string{transition, iso}, ni.GroupIDs)
	}
	out := describe(t, c, &ec2.DescribeInstancesInput{InstanceIds: []string{twoENI}})[0]
	require.Len(t, out.NetworkInterfaces[1].Groups, 2)

	_, err = c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: aws.String(two.ENIs[0].ID), Groups: []string{"sg-0123456789abcdef0"},
	})
	requireCode(t, err, "InvalidGroup.NotFound")
	_, err = c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: aws.String("eni-0123456789abcdef0"), Groups: []string{iso},
	})
	requireCode(t, err, "InvalidNetworkInterfaceID.NotFound")
}

func TestGroupFromAnotherVPCIsRefused(t *testing.T) {
	env, err := simcloud.ParseEnvironment([]byte(`
account: "123456789012"
region: us-east-1
vpcs:
  - {name: a, cidr: 10.0.0.0/16}
  - {name: b, cidr: 10.1.0.0/16}
subnets:
  - {name: a1, vpc: a, cidr: 10.0.1.0/24, az: us-east-1a}
securityGroups:
  - {name: other, vpc: b}
images:
  - {id: ami-0abcdef1234567890, name: base}
instances:
  - {id: i-0aaaaaaaaaaaaaaaa, type: t3.micro, image: ami-0abcdef1234567890, subnet: a1, privateIP: 10.0.1.10}
`))
	require.NoError(t, err)
	c, err := simcloud.New(env, simcloud.Options{})
	require.NoError(t, err)
	in, _ := c.Instance("i-0aaaaaaaaaaaaaaaa")
	other := sgID(t, c, "other")
	_, err = c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: aws.String(in.ENIs[0].ID), Groups: []string{other},
	})
	requireCode(t, err, "InvalidParameter")
	// The instance got its VPC's default group.
	def, ok := c.SecurityGroup(in.GroupIDs[0])
	require.True(t, ok)
	require.Equal(t, "default", def.Name)
}

func TestCreateImageLifecycle(t *testing.T) {
	c, clock := newClockCloud(t, simcloud.Delays{ImageAvailable: 45 * time.Minute})
	out, err := c.CreateImage(ctx, &ec2.CreateImageInput{
		InstanceId: aws.String(twoENI), Name: aws.String("cordon-evidence-i-04f2ae54915567738"), NoReboot: aws.Bool(true),
		TagSpecifications: []ec2types.TagSpecification{
			{ResourceType: ec2types.ResourceTypeImage, Tags: []ec2types.Tag{{Key: aws.String("cordon:incident"), Value: aws.String("x")}}},
			{ResourceType: ec2types.ResourceTypeSnapshot, Tags: []ec2types.Tag{{Key: aws.String("cordon:incident"), Value: aws.String("x")}}},
		},
	})
	require.NoError(t, err)
	id := aws.ToString(out.ImageId)

	im, ok := c.Image(id)
	require.True(t, ok)
	require.True(t, im.NoReboot)
	require.Equal(t, "pending", im.State)
	require.Equal(t, twoENI, im.SourceInstanceID)
	require.Len(t, im.SnapshotIDs, 2) // one per volume
	inst, _ := c.Instance(twoENI)
	require.Zero(t, inst.Reboots)

	imgs, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"}, Filters: []ec2types.Filter{filter("name", "cordon-evidence-*")}})
	require.NoError(t, err)
	require.Len(t, imgs.Images, 1)
	desc := imgs.Images[0]
	require.Equal(t, ec2types.ImageStatePending, desc.State)
	require.Len(t, desc.BlockDeviceMappings, 2)
	require.Equal(t, im.SnapshotIDs[0], aws.ToString(desc.BlockDeviceMappings[0].Ebs.SnapshotId))
	require.Equal(t, "x", aws.ToString(desc.Tags[0].Value))
	for _, s := range c.Snapshots() {
		if contains(im.SnapshotIDs, s.ID) {
			require.Equal(t, "pending", s.State)
			require.Equal(t, "x", s.Tags["cordon:incident"])
		}
	}

	// The name is the idempotency key: a second CreateImage fails Duplicate.
	_, err = c.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: aws.String(twoENI), Name: aws.String("cordon-evidence-i-04f2ae54915567738")})
	ae := requireCode(t, err, "InvalidAMIName.Duplicate")
	require.Contains(t, ae.ErrorMessage(), id)

	clock.Advance(44 * time.Minute)
	im, _ = c.Image(id)
	require.Equal(t, "pending", im.State)
	clock.Advance(time.Minute)
	imgs, err = c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}})
	require.NoError(t, err)
	require.Equal(t, ec2types.ImageStateAvailable, imgs.Images[0].State)
	s, _ := c.Snapshot(im.SnapshotIDs[1])
	require.Equal(t, "completed", s.State)

	// Without NoReboot the instance reboots.
	_, err = c.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: aws.String(oneENI), Name: aws.String("reboots")})
	require.NoError(t, err)
	inst, _ = c.Instance(oneENI)
	require.Equal(t, 1, inst.Reboots)

	// A terminating instance cannot be imaged.
	_, err = c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{euServer}})
	require.NoError(t, err)
	_, err = c.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: aws.String(euServer), Name: aws.String("too-late")})
	requireCode(t, err, "IncorrectInstanceState")

	_, err = c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{"ami-0aaaaaaaaaaaaaaaa"}})
	requireCode(t, err, "InvalidAMIID.NotFound")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestSnapshotsAndDeregistration(t *testing.T) {
	c := newCloud(t)
	mk := func(name string) simcloud.ImageInfo {
		out, err := c.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: aws.String(twoENI), Name: aws.String(name), NoReboot: aws.Bool(true)})
		require.NoError(t, err)
		im, ok := c.Image(aws.ToString(out.ImageId))
		require.True(t, ok)
		return im
	}
	keep := mk("evidence-keep")
	_, err := c.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(keep.SnapshotIDs[0])})
	ae := requireCode(t, err, "InvalidSnapshot.InUse")
	require.Equal(t, "The snapshot "+keep.SnapshotIDs[0]+" is currently in use by "+keep.ID, ae.ErrorMessage())

	// Deregistering keeps the snapshots by default; then they can be deleted.
	_, err = c.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(keep.ID)})
	require.NoError(t, err)
	_, ok := c.Image(keep.ID)
	require.False(t, ok)
	desc, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"}, Filters: []ec2types.Filter{filter("name", "evidence-keep")}})
	require.NoError(t, err)
	require.Empty(t, desc.Images)
	for _, id := range keep.SnapshotIDs {
		s, ok := c.Snapshot(id)
		require.True(t, ok)
		require.Empty(t, s.ImageIDs)
	}
	_, err = c.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(keep.SnapshotIDs[0])})
	require.NoError(t, err)
	_, err = c.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(keep.SnapshotIDs[0])})
	requireCode(t, err, "InvalidSnapshot.NotFound")

	// DeleteAssociatedSnapshots removes them with the image.
	drop := mk("evidence-drop")
	out, err := c.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(drop.ID), DeleteAssociatedSnapshots: aws.Bool(true)})
	require.NoError(t, err)
	require.Len(t, out.DeleteSnapshotResults, 2)
	for _, id := range drop.SnapshotIDs {
		_, ok := c.Snapshot(id)
		require.False(t, ok)
	}

	_, err = c.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(drop.ID)})
	requireCode(t, err, "InvalidAMIID.NotFound")
	// The name is free again.
	mk("evidence-drop")
}

func TestRunInstancesIsIdempotentWithAClientToken(t *testing.T) {
	c, clock := newClockCloud(t, simcloud.Delays{InstanceStart: 30 * time.Second, ImageAvailable: time.Minute})
	quarantine, _ := c.SubnetID("quarantine")
	iso := sgID(t, c, isolation)
	img, err := c.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: aws.String(twoENI), Name: aws.String("evidence"), NoReboot: aws.Bool(true)})
	require.NoError(t, err)

	run := func(token string, itype ec2types.InstanceType) (*ec2.RunInstancesOutput, error) {
		return c.RunInstances(ctx, &ec2.RunInstancesInput{
			ImageId: img.ImageId, MinCount: aws.Int32(1), MaxCount: aws.Int32(1), InstanceType: itype, ClientToken: aws.String(token),
			NetworkInterfaces: []ec2types.InstanceNetworkInterfaceSpecification{{
				DeviceIndex: aws.Int32(0), SubnetId: aws.String(quarantine), Groups: []string{iso}, AssociatePublicIpAddress: aws.Bool(false),
			}},
			TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: []ec2types.Tag{{Key: aws.String("cordon:incident"), Value: aws.String("x")}}}},
		})
	}
	_, err = run("tok-1", "t3.medium")
	requireCode(t, err, "IncorrectState") // the image is still pending

	clock.Advance(time.Minute)
	first, err := run("tok-1", "t3.medium")
	require.NoError(t, err)
	require.Len(t, first.Instances, 1)
	id := aws.ToString(first.Instances[0].InstanceId)
	require.Equal(t, ec2types.InstanceStateNamePending, first.Instances[0].State.Name)
	require.Nil(t, first.Instances[0].IamInstanceProfile)
	require.Nil(t, first.Instances[0].PublicIpAddress)
	require.Equal(t, quarantine, aws.ToString(first.Instances[0].SubnetId))
	require.Equal(t, iso, aws.ToString(first.Instances[0].SecurityGroups[0].GroupId))
	require.Len(t, first.Instances[0].BlockDeviceMappings, 2)

	again, err := run("tok-1", "t3.medium")
	require.NoError(t, err)
	require.Equal(t, id, aws.ToString(again.Instances[0].InstanceId))
	require.Equal(t, aws.ToString(first.ReservationId), aws.ToString(again.ReservationId))
	require.Len(t, describe(t, c, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{filter("client-token", "tok-1")}}), 1)

	_, err = run("tok-1", "t3.large")
	requireCode(t, err, "IdempotentParameterMismatch")

	clock.Advance(30 * time.Second)
	inst, _ := c.Instance(id)
	require.Equal(t, "running", inst.State)
	require.Equal(t, "x", inst.Tags["cordon:incident"])
	require.Empty(t, inst.IAMInstanceProfile)
	require.Equal(t, "10.0.99.4", inst.PrivateIP)

	_, err = c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-0aaaaaaaaaaaaaaaa"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1), SubnetId: aws.String(quarantine)})
	requireCode(t, err, "InvalidAMIID.NotFound")
	_, err = c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: img.ImageId, MinCount: aws.Int32(1), MaxCount: aws.Int32(1), SubnetId: aws.String("subnet-0aaaaaaaaaaaaaaaa")})
	requireCode(t, err, "InvalidSubnetID.NotFound")
	_, err = c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: img.ImageId, MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
	requireCode(t, err, "VPCIdNotSpecified")
}

func TestSecurityGroups(t *testing.T) {
	c := newCloud(t)
	two, _ := c.Instance(twoENI)
	out, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName: aws.String("cordon-isolation-2"), Description: aws.String("isolation"), VpcId: aws.String(two.VPCID),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSecurityGroup, Tags: []ec2types.Tag{{Key: aws.String("cordon:managed"), Value: aws.String("true")}}}},
	})
	require.NoError(t, err)
	id := aws.ToString(out.GroupId)
	g, _ := c.SecurityGroup(id)
	require.Len(t, g.Egress, 1) // AWS's default allow-all egress
	require.Equal(t, "-1", g.Egress[0].Protocol)
	require.Equal(t, "0.0.0.0/0", g.Egress[0].CIDR)

	_, err = c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String(isolation), Description: aws.String("x"), VpcId: aws.String(two.VPCID)})
	requireCode(t, err, "InvalidGroup.Duplicate")

	rev, err := c.RevokeSecurityGroupEgress(ctx, &ec2.RevokeSecurityGroupEgressInput{GroupId: aws.String(id), IpPermissions: []ec2types.IpPermission{{
		IpProtocol: aws.String("-1"), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}},
	}}})
	require.NoError(t, err)
	require.Len(t, rev.RevokedSecurityGroupRules, 1)
	require.Empty(t, rev.UnknownIpPermissions)
	g, _ = c.SecurityGroup(id)
	require.Empty(t, g.Egress)

	perm := ec2types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("10.0.0.0/16")}}}
	auth, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(id), IpPermissions: []ec2types.IpPermission{perm}})
	require.NoError(t, err)
	require.Len(t, auth.SecurityGroupRules, 1)
	_, err = c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(id), IpPermissions: []ec2types.IpPermission{perm}})
	requireCode(t, err, "InvalidPermission.Duplicate")

	desc, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		filter("group-name", "cordon-isolation*"), filter("vpc-id", two.VPCID), filter("tag:cordon:managed", "true"),
	}})
	require.NoError(t, err)
	require.Len(t, desc.SecurityGroups, 3)
	byID, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{id}})
	require.NoError(t, err)
	require.Len(t, byID.SecurityGroups[0].IpPermissions, 1)
	require.Empty(t, byID.SecurityGroups[0].IpPermissionsEgress)
	_, err = c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{"sg-0aaaaaaaaaaaaaaaa"}})
	requireCode(t, err, "InvalidGroup.NotFound")
}

func TestTags(t *testing.T) {
	c := newCloud(t)
	img, err := c.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: aws.String(oneENI), Name: aws.String("evidence"), NoReboot: aws.Bool(true)})
	require.NoError(t, err)
	im, _ := c.Image(aws.ToString(img.ImageId))
	resources := []string{oneENI, im.ID, im.SnapshotIDs[0], sgID(t, c, isolation)}
	tags := []ec2types.Tag{{Key: aws.String("cordon:incident"), Value: aws.String("quarantine/1")}, {Key: aws.String("cordon:phase"), Value: aws.String("isolated")}}
	_, err = c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: resources, Tags: tags})
	require.NoError(t, err)
	inst, _ := c.Instance(oneENI)
	require.Equal(t, "isolated", inst.Tags["cordon:phase"])
	im, _ = c.Image(im.ID)
	require.Equal(t, "quarantine/1", im.Tags["cordon:incident"])
	require.Len(t, describe(t, c, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{filter("tag:cordon:incident", "quarantine/*")}}), 1)

	_, err = c.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: resources, Tags: []ec2types.Tag{{Key: aws.String("cordon:phase")}}})
	require.NoError(t, err)
	inst, _ = c.Instance(oneENI)
	require.NotContains(t, inst.Tags, "cordon:phase")
	require.Contains(t, inst.Tags, "cordon:incident")

	for id, code := range map[string]string{
		"i-0aaaaaaaaaaaaaaaa":    "InvalidInstanceID.NotFound",
		"ami-0aaaaaaaaaaaaaaaa":  "InvalidAMIID.NotFound",
		"snap-0aaaaaaaaaaaaaaaa": "InvalidSnapshot.NotFound",
		"sg-0aaaaaaaaaaaaaaaa":   "InvalidGroup.NotFound",
	} {
		_, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{oneENI, id}, Tags: tags})
		requireCode(t, err, code)
	}
	_, err = c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{oneENI}, Tags: []ec2types.Tag{{Key: aws.String("aws:x"), Value: aws.String("y")}}})
	requireCode(t, err, "InvalidParameterValue")
}

func TestCapacityAttachAndProtection(t *testing.T) {
	c := newCloud(t)
	require.NoError(t, detach(c, oneENI, true))
	_, err := c.AttachInstances(ctx, &autoscaling.AttachInstancesInput{AutoScalingGroupName: aws.String(asg), InstanceIds: []string{oneENI}})
	require.NoError(t, err)
	g := group(t, c)
	require.EqualValues(t, 5, *g.DesiredCapacity)
	require.Contains(t, inService(g), oneENI)
	require.Equal(t, elbtypes.TargetHealthStateEnumHealthy, targetStates(t, c)[oneENI])

	// Protect the five originals, scale out, then in: the new ones go.
	_, err = c.SetInstanceProtection(ctx, &autoscaling.SetInstanceProtectionInput{AutoScalingGroupName: aws.String(asg), InstanceIds: inService(g), ProtectedFromScaleIn: aws.Bool(true)})
	require.NoError(t, err)
	_, err = c.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String(asg), DesiredCapacity: aws.Int32(7)})
	require.NoError(t, err)
	require.Len(t, inService(group(t, c)), 7)
	_, err = c.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String(asg), DesiredCapacity: aws.Int32(5)})
	require.NoError(t, err)
	require.ElementsMatch(t, inService(g), inService(group(t, c)))

	_, err = c.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String(asg), DesiredCapacity: aws.Int32(11)})
	ae := requireCode(t, err, "ValidationError")
	require.Equal(t, "New SetDesiredCapacity value 11 is above max value 10 for the AutoScalingGroup.", ae.ErrorMessage())
	_, err = c.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String(asg), DesiredCapacity: aws.Int32(1)})
	requireCode(t, err, "ValidationError")

	// Attaching past MaxSize fails.
	_, err = c.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String(asg), DesiredCapacity: aws.Int32(10)})
	require.NoError(t, err)
	require.NoError(t, detach(c, oneENI, false))
	_, err = c.AttachInstances(ctx, &autoscaling.AttachInstancesInput{AutoScalingGroupName: aws.String(asg), InstanceIds: []string{oneENI}})
	requireCode(t, err, "ValidationError")

	_, err = c.SetInstanceProtection(ctx, &autoscaling.SetInstanceProtectionInput{AutoScalingGroupName: aws.String(asg), InstanceIds: []string{oneENI}, ProtectedFromScaleIn: aws.Bool(true)})
	requireCode(t, err, "ValidationError")
	_, err = c.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("nope"), DesiredCapacity: aws.Int32(3)})
	requireCode(t, err, "ValidationError")
	none, err := c.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{"nope"}})
	require.NoError(t, err)
	require.Empty(t, none.AutoScalingGroups)
}

func TestTargetGroups(t *testing.T) {
	c, clock := newClockCloud(t, simcloud.Delays{TargetDraining: time.Minute, TargetHealthy: 10 * time.Second})
	arn, _ := c.TargetGroupARN(tgName)
	_, err := c.DeregisterTargets(ctx, &elbv2.DeregisterTargetsInput{TargetGroupArn: aws.String(arn), Targets: []elbtypes.TargetDescription{{Id: aws.String(oneENI)}}})
	require.NoError(t, err)
	require.Equal(t, elbtypes.TargetHealthStateEnumDraining, targetStates(t, c)[oneENI])
	clock.Advance(time.Minute)
	require.NotContains(t, targetStates(t, c), oneENI)

	h, err := c.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(arn), Targets: []elbtypes.TargetDescription{{Id: aws.String(oneENI)}}})
	require.NoError(t, err)
	require.Equal(t, elbtypes.TargetHealthStateEnumUnused, h.TargetHealthDescriptions[0].TargetHealth.State)
	require.Equal(t, elbtypes.TargetHealthReasonEnumNotRegistered, h.TargetHealthDescriptions[0].TargetHealth.Reason)

	_, err = c.RegisterTargets(ctx, &elbv2.RegisterTargetsInput{TargetGroupArn: aws.String(arn), Targets: []elbtypes.TargetDescription{{Id: aws.String(oneENI)}}})
	require.NoError(t, err)
	require.Equal(t, elbtypes.TargetHealthStateEnumInitial, targetStates(t, c)[oneENI])
	clock.Advance(10 * time.Second)
	require.Equal(t, elbtypes.TargetHealthStateEnumHealthy, targetStates(t, c)[oneENI])

	_, err = c.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/nope/0000000000000000")})
	requireCode(t, err, "TargetGroupNotFound")
}

func TestPublish(t *testing.T) {
	c := newCloud(t)
	out, err := c.Publish(ctx, &sns.PublishInput{
		TopicArn: aws.String(topic), Subject: aws.String("Cordon: ip-10-0-1-10 isolated"), Message: aws.String("{}"),
		MessageAttributes: map[string]snstypes.MessageAttributeValue{"incident": {DataType: aws.String("String"), StringValue: aws.String("quarantine/1")}},
	})
	require.NoError(t, err)
	msgs := c.Published()
	require.Len(t, msgs, 1)
	require.Equal(t, aws.ToString(out.MessageId), msgs[0].MessageID)
	require.Equal(t, topic, msgs[0].TopicArn)
	require.Equal(t, "Cordon: ip-10-0-1-10 isolated", msgs[0].Subject)
	require.Equal(t, "quarantine/1", aws.ToString(msgs[0].MessageAttributes["incident"].StringValue))

	_, err = c.Publish(ctx, &sns.PublishInput{TopicArn: aws.String("arn:aws:sns:us-east-1:123456789012:nope"), Message: aws.String("x")})
	requireCode(t, err, "NotFound")
}

func TestFaultInjectionAndCallLog(t *testing.T) {
	c := newCloud(t)
	c.InjectFault("CreateImage", simcloud.APIError("RequestLimitExceeded", "Request limit exceeded."), 2)
	in := &ec2.CreateImageInput{InstanceId: aws.String(oneENI), Name: aws.String("evidence"), NoReboot: aws.Bool(true)}
	for range 2 {
		_, err := c.CreateImage(ctx, in)
		requireCode(t, err, "RequestLimitExceeded")
		var oe *smithy.OperationError
		require.ErrorAs(t, err, &oe) // wrapped as the SDK does
		require.Equal(t, "CreateImage", oe.Operation())
	}
	require.Empty(t, c.Images()[3:]) // nothing was created (three base images)
	_, err := c.CreateImage(ctx, in)
	require.NoError(t, err)

	c.ResetCalls()
	describe(t, c, &ec2.DescribeInstancesInput{})
	_, _ = c.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{})
	require.Equal(t, []string{"DescribeInstances", "DescribeAutoScalingGroups"}, c.Calls())
	require.Empty(t, c.Mutations())
	require.NoError(t, detach(c, oneENI, false))
	require.Equal(t, []string{"DetachInstances"}, c.Mutations())

	c.InjectFault("DescribeInstances", context.DeadlineExceeded, -1)
	for range 3 {
		_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
		require.ErrorIs(t, err, context.DeadlineExceeded)
	}
	c.ClearFaults()
	describe(t, c, &ec2.DescribeInstancesInput{})

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = c.DescribeInstances(cancelled, &ec2.DescribeInstancesInput{})
	require.ErrorIs(t, err, context.Canceled)
}

func TestMissingRequiredParametersFailLikeTheSDK(t *testing.T) {
	c := newCloud(t)
	_, err := c.DetachInstances(ctx, &autoscaling.DetachInstancesInput{AutoScalingGroupName: aws.String(asg), InstanceIds: []string{oneENI}})
	var ip smithy.InvalidParamsError
	require.ErrorAs(t, err, &ip)
	require.Contains(t, err.Error(), "ShouldDecrementDesiredCapacity")
}

func TestBadEnvironmentsFailClearly(t *testing.T) {
	good, err := os.ReadFile("testdata/seed.yaml")
	require.NoError(t, err)
	cases := []struct {
		name, from, to string
		want           []string
	}{
		{"unknown field", "    host: ip-10-0-3-24", "    hostname: ip-10-0-3-24", []string{"field hostname not found"}},
		{"bad subnet reference", "    subnet: web-us-east-1c", "    subnet: web-us-east-1x", []string{"instances[0].subnet", `"web-us-east-1x" is not declared under subnets`, "seed.yaml:"}},
		{"ip outside subnet", "    privateIP: 10.0.3.24", "    privateIP: 10.0.9.24", []string{"instances[0].privateIP", "is not inside subnet"}},
		{"desired over max", "    desired: 5", "    desired: 11", []string{"autoScalingGroups[0].desired", "min <= desired <= max"}},
		{"too many members", "    desired: 5", "    desired: 4", []string{"5 instances name group web-asg"}},
		{"bad instance id", "  - id: i-0144394dc883f9fe0", "  - id: web-1", []string{"instances[0].id", `"web-1" is not a valid ID: want i- followed by 17`}},
		{"account", `account: "123456789012"`, `account: 1234`, []string{"account", "12-digit"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bad := strings.Replace(string(good), tc.from, tc.to, 1)
			require.NotEqual(t, string(good), bad, "replacement did not apply")
			path := t.TempDir() + "/seed.yaml"
			require.NoError(t, os.WriteFile(path, []byte(bad), 0o600))
			_, err := simcloud.LoadEnvironment(path)
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
	// The line number points at the field.
	bad := strings.Replace(string(good), "    subnet: web-us-east-1c", "    subnet: web-us-east-1x", 1)
	_, err = simcloud.ParseEnvironment([]byte(bad))
	var ee *simcloud.EnvError
	require.ErrorAs(t, err, &ee)
	line := strings.Split(bad, "\n")[ee.Line-1]
	require.Contains(t, line, "web-us-east-1x")

	_, err = simcloud.ParseEnvironment(nil)
	require.ErrorContains(t, err, "empty")
	_, err = simcloud.LoadEnvironment("testdata/missing.yaml")
	require.Error(t, err)
}

func TestConcurrentUse(t *testing.T) {
	c := newCloud(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				_, _ = c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
				_, _ = c.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{})
				if i == 0 {
					_ = detach(c, oneENI, false)
				}
				_ = c.Instances()
			}
		}()
	}
	wg.Wait()
	require.Len(t, inService(group(t, c)), 5)
}

// TestQuarantineRunbook walks Cordon's default runbook against the seed
// cloud with realistic delays, as the workflow's activities would.
func TestQuarantineRunbook(t *testing.T) {
	d := simcloud.RealisticDelays()
	c, clock := newClockCloud(t, d)
	const victim = twoENI
	wait := func(what string, cond func() bool) {
		t.Helper()
		for range 24 * 60 {
			if cond() {
				return
			}
			clock.Advance(10 * time.Second)
		}
		t.Fatalf("timed out waiting for %s", what)
	}

	// 1. Preflight.
	inst := describe(t, c, &ec2.DescribeInstancesInput{InstanceIds: []string{victim}})[0]
	asi, err := c.DescribeAutoScalingInstances(ctx, &autoscaling.DescribeAutoScalingInstancesInput{InstanceIds: []string{victim}})
	require.NoError(t, err)
	groupName := aws.ToString(asi.AutoScalingInstances[0].AutoScalingGroupName)
	require.Equal(t, asg, groupName)
	before := map[string][]string{}
	for _, ni := range inst.NetworkInterfaces {
		for _, g := range ni.Groups {
			before[aws.ToString(ni.NetworkInterfaceId)] = append(before[aws.ToString(ni.NetworkInterfaceId)], aws.ToString(g.GroupId))
		}
	}
	require.Len(t, before, 2)

	// 2. Alert.
	_, err = c.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(topic), Subject: aws.String("Cordon: isolating ip-10-0-1-10"), Message: aws.String("{}")})
	require.NoError(t, err)

	// 3. Isolate: detach (the group heals), two-step group swap per ENI, protection, tag.
	require.NoError(t, detach(c, victim, false))
	sgs, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		filter("vpc-id", aws.ToString(inst.VpcId)), filter("group-name", isolation, isolation+"-transition"),
	}})
	require.NoError(t, err)
	ids := map[string]string{}
	for _, g := range sgs.SecurityGroups {
		ids[aws.ToString(g.GroupName)] = aws.ToString(g.GroupId)
	}
	for _, step := range []string{isolation + "-transition", isolation} {
		for eni := range before {
			_, err := c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: aws.String(eni), Groups: []string{ids[step]}})
			require.NoError(t, err)
		}
	}
	_, err = c.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(victim), DisableApiTermination: &ec2types.AttributeBooleanValue{Value: aws.Bool(true)}})
	require.NoError(t, err)
	_, err = c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{victim}, Tags: []ec2types.Tag{{Key: aws.String("cordon:incident"), Value: aws.String("quarantine/123456789012/us-east-1/" + victim)}}})
	require.NoError(t, err)

	// 5. Evidence.
	img, err := c.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: aws.String(victim), Name: aws.String("cordon-" + victim), NoReboot: aws.Bool(true)})
	require.NoError(t, err)
	wait("image available", func() bool {
		out, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{aws.ToString(img.ImageId)}})
		require.NoError(t, err)
		return out.Images[0].State == ec2types.ImageStateAvailable
	})

	// 6. Quarantine copy.
	subnets, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{filter("vpc-id", aws.ToString(inst.VpcId)), filter("tag:cordon:quarantine", "true")}})
	require.NoError(t, err)
	run, err := c.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: img.ImageId, MinCount: aws.Int32(1), MaxCount: aws.Int32(1), InstanceType: inst.InstanceType, ClientToken: aws.String("incident-1-copy"),
		NetworkInterfaces: []ec2types.InstanceNetworkInterfaceSpecification{{DeviceIndex: aws.Int32(0), SubnetId: subnets.Subnets[0].SubnetId, Groups: []string{ids[isolation]}, AssociatePublicIpAddress: aws.Bool(false)}},
	})
	require.NoError(t, err)
	copyID := aws.ToString(run.Instances[0].InstanceId)
	wait("copy running", func() bool {
		return describe(t, c, &ec2.DescribeInstancesInput{InstanceIds: []string{copyID}})[0].State.Name == ec2types.InstanceStateNameRunning
	})

	// 7. Terminate the original: protection first blocks, then is lifted.
	_, err = c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{victim}})
	requireCode(t, err, "OperationNotPermitted")
	_, err = c.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(victim), DisableApiTermination: &ec2types.AttributeBooleanValue{Value: aws.Bool(false)}})
	require.NoError(t, err)
	_, err = c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{victim}})
	require.NoError(t, err)

	// 8. Healing: back at desired capacity, all InService and healthy.
	wait("group healed", func() bool {
		g := group(t, c)
		healthy := 0
		for _, s := range targetStates(t, c) {
			if s == elbtypes.TargetHealthStateEnumHealthy {
				healthy++
			}
		}
		return len(inService(g)) == int(*g.DesiredCapacity) && healthy == int(*g.DesiredCapacity)
	})
	require.NotContains(t, inService(group(t, c)), victim)

	// 9. Clean up: deregister, keep the snapshots as evidence.
	im, _ := c.Image(aws.ToString(img.ImageId))
	_, err = c.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: img.ImageId})
	require.NoError(t, err)
	for _, id := range im.SnapshotIDs {
		_, ok := c.Snapshot(id)
		require.True(t, ok)
	}
	wait("original terminated", func() bool {
		v, _ := c.Instance(victim)
		return v.State == "terminated"
	})
	cp, _ := c.Instance(copyID)
	require.Equal(t, aws.ToString(subnets.Subnets[0].SubnetId), cp.SubnetID)
	require.Equal(t, []string{ids[isolation]}, cp.GroupIDs)
	require.Empty(t, cp.IAMInstanceProfile)
	require.Empty(t, cp.PublicIP)
	require.Len(t, c.Published(), 1)
}

func TestClientsRefuseUnknownAccountAndRegion(t *testing.T) {
	c := newCloud(t)
	_, err := c.Clients(ctx, "999999999999", "us-east-1")
	require.ErrorContains(t, err, "account 999999999999 is not in the simulated environment")
	_, err = c.Clients(ctx, "123456789012", "mars-1")
	require.ErrorContains(t, err, `region "mars-1" is not in the simulated environment`)
}
