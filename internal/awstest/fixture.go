package awstest

import (
	"context"
	"fmt"
	"sort"
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
)

// Names of the fixture's resources.
const (
	GroupName          = "web-asg"
	LaunchTemplateName = "web-lt"
	LoadBalancerName   = "web-alb"
	TargetGroupName    = "web-tg"
	WebGroupName       = "web"
	InstanceType       = "t3.micro"
	QuarantineTag      = "cordon:quarantine"
)

// Options shape the fixture.
type Options struct {
	// GroupSize is the Auto Scaling group's desired capacity (default 2).
	GroupSize int32
	// NoStandalone skips the two standalone instances.
	NoStandalone bool
}

// Fixture is a realistic web tier in a fresh moto account: a VPC with two
// web subnets (two AZs) and a quarantine subnet tagged cordon:quarantine=true,
// the web security group, a launch template, an Auto Scaling group behind an
// application load balancer's target group (listener on port 80), an
// instance with one network interface and one with two (a second ENI
// attached), and an SNS alert topic in the worker's own account.
type Fixture struct {
	*Account

	VPCID              string
	WebSubnetIDs       []string
	QuarantineSubnetID string
	WebGroupID         string
	ImageID            string // the base image (one of moto's Amazon images)
	LaunchTemplateID   string
	LoadBalancerARN    string
	TargetGroupARN     string
	Group              string
	Members            []string // the group's members at creation, sorted

	OneENI     string // standalone instance with one network interface
	TwoENI     string // standalone instance with two network interfaces
	SecondENI  string // the second interface of TwoENI (device index 1)
	TopicARN   string // SNS topic in CallerAccount (the worker's account)
	SNSAccount *Account
}

var (
	baseImageOnce sync.Once
	baseImage     string
	baseImageErr  error
)

func must(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("fixture: %s: %v", what, err)
	}
}

// Build builds the fixture in a fresh account.
func Build(t testing.TB, opts Options) *Fixture {
	t.Helper()
	return BuildIn(t, NewAccount(t), opts)
}

// BuildIn builds the fixture in acct.
func BuildIn(t testing.TB, acct *Account, opts Options) *Fixture {
	t.Helper()
	if opts.GroupSize == 0 {
		opts.GroupSize = 2
	}
	ctx := context.Background()
	f := &Fixture{Account: acct, Group: GroupName}
	e := acct.EC2

	vpc, err := e.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.20.0.0/16"), TagSpecifications: nameTag(ec2types.ResourceTypeVpc, "web-vpc")})
	must(t, "CreateVpc", err)
	f.VPCID = aws.ToString(vpc.Vpc.VpcId)
	for i, az := range []string{"us-east-1a", "us-east-1b"} {
		sn, err := e.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String(fmt.Sprintf("10.20.%d.0/24", i+1)),
			AvailabilityZone: aws.String(az), TagSpecifications: nameTag(ec2types.ResourceTypeSubnet, "web-"+az)})
		must(t, "CreateSubnet web", err)
		f.WebSubnetIDs = append(f.WebSubnetIDs, aws.ToString(sn.Subnet.SubnetId))
	}
	q, err := e.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String("10.20.99.0/24"), AvailabilityZone: aws.String("us-east-1a"),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSubnet, Tags: []ec2types.Tag{
			{Key: aws.String("Name"), Value: aws.String("quarantine")}, {Key: aws.String(QuarantineTag), Value: aws.String("true")}}}}})
	must(t, "CreateSubnet quarantine", err)
	f.QuarantineSubnetID = aws.ToString(q.Subnet.SubnetId)
	// The subnet maps public addresses on launch: the quarantine copy must
	// still get none (it asks for none explicitly).
	_, err = e.ModifySubnetAttribute(ctx, &ec2.ModifySubnetAttributeInput{SubnetId: q.Subnet.SubnetId, MapPublicIpOnLaunch: &ec2types.AttributeBooleanValue{Value: aws.Bool(true)}})
	must(t, "ModifySubnetAttribute quarantine", err)

	sg, err := e.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String(WebGroupName), Description: aws.String("web servers"), VpcId: vpc.Vpc.VpcId})
	must(t, "CreateSecurityGroup web", err)
	f.WebGroupID = aws.ToString(sg.GroupId)
	_, err = e.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: sg.GroupId, IpPermissions: []ec2types.IpPermission{
		{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(80), ToPort: aws.Int32(80), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}},
		{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(443), ToPort: aws.Int32(443), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}},
	}})
	must(t, "AuthorizeSecurityGroupIngress web", err)

	f.ImageID = amazonImage(t, e)
	lt, err := e.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String(LaunchTemplateName),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String(f.ImageID), InstanceType: InstanceType, SecurityGroupIds: []string{f.WebGroupID}}})
	must(t, "CreateLaunchTemplate", err)
	f.LaunchTemplateID = aws.ToString(lt.LaunchTemplate.LaunchTemplateId)

	lb, err := acct.ELBv2.CreateLoadBalancer(ctx, &elbv2.CreateLoadBalancerInput{Name: aws.String(LoadBalancerName), Subnets: f.WebSubnetIDs,
		SecurityGroups: []string{f.WebGroupID}, Scheme: elbtypes.LoadBalancerSchemeEnumInternetFacing, Type: elbtypes.LoadBalancerTypeEnumApplication})
	must(t, "CreateLoadBalancer", err)
	f.LoadBalancerARN = aws.ToString(lb.LoadBalancers[0].LoadBalancerArn)
	tg, err := acct.ELBv2.CreateTargetGroup(ctx, &elbv2.CreateTargetGroupInput{Name: aws.String(TargetGroupName), Protocol: elbtypes.ProtocolEnumHttp,
		Port: aws.Int32(80), VpcId: aws.String(f.VPCID), TargetType: elbtypes.TargetTypeEnumInstance, HealthCheckPath: aws.String("/health")})
	must(t, "CreateTargetGroup", err)
	f.TargetGroupARN = aws.ToString(tg.TargetGroups[0].TargetGroupArn)
	_, err = acct.ELBv2.CreateListener(ctx, &elbv2.CreateListenerInput{LoadBalancerArn: aws.String(f.LoadBalancerARN), Protocol: elbtypes.ProtocolEnumHttp,
		Port: aws.Int32(80), DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: aws.String(f.TargetGroupARN)}}})
	must(t, "CreateListener", err)

	_, err = acct.AutoScaling.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String(GroupName),
		LaunchTemplate:       &astypes.LaunchTemplateSpecification{LaunchTemplateId: aws.String(f.LaunchTemplateID), Version: aws.String("$Latest")},
		MinSize:              aws.Int32(opts.GroupSize), MaxSize: aws.Int32(2 * opts.GroupSize), DesiredCapacity: aws.Int32(opts.GroupSize),
		VPCZoneIdentifier: aws.String(f.WebSubnetIDs[0] + "," + f.WebSubnetIDs[1]),
		TargetGroupARNs:   []string{f.TargetGroupARN},
		HealthCheckType:   aws.String("ELB"), HealthCheckGracePeriod: aws.Int32(300),
		Tags: []astypes.Tag{{Key: aws.String("Name"), Value: aws.String("web"), PropagateAtLaunch: aws.Bool(true)}},
	})
	must(t, "CreateAutoScalingGroup", err)
	g := f.DescribeGroup(t)
	for _, m := range g.Instances {
		f.Members = append(f.Members, aws.ToString(m.InstanceId))
	}
	sort.Strings(f.Members)
	if int32(len(f.Members)) != opts.GroupSize {
		t.Fatalf("fixture: group has %d members, want %d", len(f.Members), opts.GroupSize)
	}

	if !opts.NoStandalone {
		f.OneENI = f.runStandalone(t, "app-one-eni")
		f.TwoENI = f.runStandalone(t, "app-two-eni")
		eni, err := e.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(f.WebSubnetIDs[0]), Groups: []string{f.WebGroupID},
			Description: aws.String("second interface")})
		must(t, "CreateNetworkInterface", err)
		f.SecondENI = aws.ToString(eni.NetworkInterface.NetworkInterfaceId)
		_, err = e.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: aws.String(f.SecondENI), InstanceId: aws.String(f.TwoENI), DeviceIndex: aws.Int32(1)})
		must(t, "AttachNetworkInterface", err)
		if n := len(f.Instance(t, f.TwoENI).NetworkInterfaces); n != 2 {
			t.Fatalf("fixture: %s has %d network interfaces, want 2", f.TwoENI, n)
		}
	}

	f.SNSAccount = Caller(t)
	topic, err := f.SNSAccount.SNS.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("cordon-alerts-" + acct.ID)})
	must(t, "CreateTopic", err)
	f.TopicARN = aws.ToString(topic.TopicArn)
	return f
}

func (f *Fixture) runStandalone(t testing.TB, name string) string {
	t.Helper()
	out, err := f.EC2.RunInstances(context.Background(), &ec2.RunInstancesInput{
		ImageId: aws.String(f.ImageID), InstanceType: InstanceType, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		SubnetId: aws.String(f.WebSubnetIDs[0]), SecurityGroupIds: []string{f.WebGroupID},
		TagSpecifications: nameTag(ec2types.ResourceTypeInstance, name),
	})
	must(t, "RunInstances "+name, err)
	return aws.ToString(out.Instances[0].InstanceId)
}

func nameTag(rt ec2types.ResourceType, name string) []ec2types.TagSpecification {
	return []ec2types.TagSpecification{{ResourceType: rt, Tags: []ec2types.Tag{{Key: aws.String("Name"), Value: aws.String(name)}}}}
}

// amazonImage returns one of moto's preloaded Amazon images (the same IDs in
// every account).
func amazonImage(t testing.TB, e *ec2.Client) string {
	t.Helper()
	baseImageOnce.Do(func() {
		out, err := e.DescribeImages(context.Background(), &ec2.DescribeImagesInput{Owners: []string{"amazon"},
			Filters: []ec2types.Filter{{Name: aws.String("architecture"), Values: []string{"x86_64"}}}})
		if err != nil {
			baseImageErr = err
			return
		}
		ids := []string{}
		for _, im := range out.Images {
			ids = append(ids, aws.ToString(im.ImageId))
		}
		sort.Strings(ids)
		if len(ids) == 0 {
			baseImageErr = fmt.Errorf("moto lists no Amazon images")
			return
		}
		baseImage = ids[0]
	})
	must(t, "DescribeImages(amazon)", baseImageErr)
	return baseImage
}

// ---------------------------------------------------------------------------
// Describe helpers: what the tests check results with.

// Instance describes one instance; the test fails if it is unknown.
func (a *Account) Instance(t testing.TB, id string) ec2types.Instance {
	t.Helper()
	out, err := a.EC2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	must(t, "DescribeInstances "+id, err)
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			if aws.ToString(i.InstanceId) == id {
				return i
			}
		}
	}
	t.Fatalf("instance %s not described", id)
	return ec2types.Instance{}
}

// InstancesTagged lists the instances (any state) carrying tag key=value.
func (a *Account) InstancesTagged(t testing.TB, key, value string) []ec2types.Instance {
	t.Helper()
	out, err := a.EC2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:" + key), Values: []string{value}}}})
	must(t, "DescribeInstances tag:"+key, err)
	var list []ec2types.Instance
	for _, r := range out.Reservations {
		list = append(list, r.Instances...)
	}
	return list
}

// AllInstances lists every instance of the account (any state).
func (a *Account) AllInstances(t testing.TB) []ec2types.Instance {
	t.Helper()
	out, err := a.EC2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{})
	must(t, "DescribeInstances", err)
	var list []ec2types.Instance
	for _, r := range out.Reservations {
		list = append(list, r.Instances...)
	}
	return list
}

// ENIGroups maps each network interface of the instance to its security group IDs (sorted).
func ENIGroups(inst ec2types.Instance) map[string][]string {
	m := map[string][]string{}
	for _, n := range inst.NetworkInterfaces {
		ids := []string{}
		for _, g := range n.Groups {
			ids = append(ids, aws.ToString(g.GroupId))
		}
		sort.Strings(ids)
		m[aws.ToString(n.NetworkInterfaceId)] = ids
	}
	return m
}

// TerminationProtection reports the instance's DisableApiTermination.
func (a *Account) TerminationProtection(t testing.TB, id string) bool {
	t.Helper()
	out, err := a.EC2.DescribeInstanceAttribute(context.Background(), &ec2.DescribeInstanceAttributeInput{
		InstanceId: aws.String(id), Attribute: ec2types.InstanceAttributeNameDisableApiTermination})
	must(t, "DescribeInstanceAttribute", err)
	return out.DisableApiTermination != nil && aws.ToBool(out.DisableApiTermination.Value)
}

// DescribeGroup describes the fixture's Auto Scaling group.
func (f *Fixture) DescribeGroup(t testing.TB) astypes.AutoScalingGroup {
	t.Helper()
	return f.Account.Group(t, f.Group)
}

// Group describes an Auto Scaling group.
func (a *Account) Group(t testing.TB, name string) astypes.AutoScalingGroup {
	t.Helper()
	out, err := a.AutoScaling.DescribeAutoScalingGroups(context.Background(), &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{name}})
	must(t, "DescribeAutoScalingGroups", err)
	if len(out.AutoScalingGroups) != 1 {
		t.Fatalf("group %s: %d groups described", name, len(out.AutoScalingGroups))
	}
	return out.AutoScalingGroups[0]
}

// GroupMembers lists a group's members with their lifecycle state.
func GroupMembers(g astypes.AutoScalingGroup) map[string]astypes.LifecycleState {
	m := map[string]astypes.LifecycleState{}
	for _, i := range g.Instances {
		m[aws.ToString(i.InstanceId)] = i.LifecycleState
	}
	return m
}

// TargetHealth maps each target of the target group to its state.
func (a *Account) TargetHealth(t testing.TB, tg string) map[string]elbtypes.TargetHealthStateEnum {
	t.Helper()
	out, err := a.ELBv2.DescribeTargetHealth(context.Background(), &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(tg)})
	must(t, "DescribeTargetHealth", err)
	m := map[string]elbtypes.TargetHealthStateEnum{}
	for _, d := range out.TargetHealthDescriptions {
		var st elbtypes.TargetHealthStateEnum
		if d.TargetHealth != nil {
			st = d.TargetHealth.State
		}
		m[aws.ToString(d.Target.Id)] = st
	}
	return m
}

// Image describes an image; ok is false when AWS no longer lists it.
func (a *Account) Image(t testing.TB, id string) (ec2types.Image, bool) {
	t.Helper()
	out, err := a.EC2.DescribeImages(context.Background(), &ec2.DescribeImagesInput{ImageIds: []string{id}})
	if err != nil {
		if code(err) == "InvalidAMIID.NotFound" {
			return ec2types.Image{}, false
		}
		must(t, "DescribeImages", err)
	}
	for _, im := range out.Images {
		if aws.ToString(im.ImageId) == id && im.State != ec2types.ImageStateDeregistered {
			return im, true
		}
	}
	return ec2types.Image{}, false
}

// ImagesNamed lists the account's own images with this name.
func (a *Account) ImagesNamed(t testing.TB, name string) []ec2types.Image {
	t.Helper()
	out, err := a.EC2.DescribeImages(context.Background(), &ec2.DescribeImagesInput{Owners: []string{"self"},
		Filters: []ec2types.Filter{{Name: aws.String("name"), Values: []string{name}}}})
	must(t, "DescribeImages name", err)
	return out.Images
}

// SnapshotExists reports whether the snapshot exists.
func (a *Account) SnapshotExists(t testing.TB, id string) bool {
	t.Helper()
	out, err := a.EC2.DescribeSnapshots(context.Background(), &ec2.DescribeSnapshotsInput{SnapshotIds: []string{id}})
	if err != nil {
		if code(err) == "InvalidSnapshot.NotFound" {
			return false
		}
		must(t, "DescribeSnapshots", err)
	}
	return len(out.Snapshots) == 1
}

// SecurityGroupsNamed lists the VPC's security groups with this name.
func (a *Account) SecurityGroupsNamed(t testing.TB, vpc, name string) []ec2types.SecurityGroup {
	t.Helper()
	out, err := a.EC2.DescribeSecurityGroups(context.Background(), &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{vpc}}, {Name: aws.String("group-name"), Values: []string{name}}}})
	must(t, "DescribeSecurityGroups", err)
	return out.SecurityGroups
}

// Eventually polls cond every 100 ms until it holds or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %s", what, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ENIOwnGroups returns the security groups moto holds on the network
// interface itself, sorted. moto's Describe output for an attached interface
// also lists the groups the instance was launched with (moto reports the
// union; AWS reports the interface's own groups), so Describe alone cannot
// show a per-ENI swap; moto's group-id filter matches the interface's own
// groups only, which this uses, one query per group of the VPC.
func (a *Account) ENIOwnGroups(t testing.TB, vpc, eni string) []string {
	t.Helper()
	ctx := context.Background()
	sgs, err := a.EC2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{vpc}}}})
	must(t, "DescribeSecurityGroups", err)
	own := []string{}
	for _, g := range sgs.SecurityGroups {
		id := aws.ToString(g.GroupId)
		out, err := a.EC2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{Filters: []ec2types.Filter{
			{Name: aws.String("network-interface-id"), Values: []string{eni}}, {Name: aws.String("group-id"), Values: []string{id}}}})
		must(t, "DescribeNetworkInterfaces", err)
		if len(out.NetworkInterfaces) > 0 {
			own = append(own, id)
		}
	}
	sort.Strings(own)
	return own
}
