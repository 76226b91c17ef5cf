package activities_test

// Every activity against moto's server mode (an independent implementation of
// the AWS wire protocol), through the worker's real AWS provider
// (internal/app.AWSProvider: endpoint override, per-account STS role, short
// SDK retryer), each result checked with Describe calls, each mutating
// activity run twice in a row. Start moto with eval "$(scripts/moto start)";
// docs/moto.md lists where moto differs from AWS.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/cordonhq/cordon/activities"
	"github.com/cordonhq/cordon/internal/app"
	"github.com/cordonhq/cordon/internal/awstest"
)

// motoHarness runs activities in Temporal's activity test environment with
// the AWS provider on moto, over a fresh fixture account.
type motoHarness struct {
	t      *testing.T
	f      *awstest.Fixture
	rec    *awstest.Recorder
	compat *awstest.MotoCompat
	prov   *app.AWSProvider
	acts   *activities.Activities
	env    *testsuite.TestActivityEnvironment
	tgt    activities.Target
}

func newMoto(t *testing.T, opts awstest.Options) *motoHarness {
	t.Helper()
	awstest.Endpoint(t) // skip (or fail in CI) before anything else
	t.Parallel()
	f := awstest.Build(t, opts)
	h := &motoHarness{t: t, f: f, rec: &awstest.Recorder{}, compat: &awstest.MotoCompat{}}
	h.prov = awstest.Provider(t, []awstest.APIOption{h.rec.Option(), h.compat.Option()}, f.Account)
	h.acts = &activities.Activities{Cloud: h.prov, PollInterval: 20 * time.Millisecond,
		Notifier: &activities.Notifier{SNS: h.prov.SNS(awstest.Region), TopicARN: f.TopicARN}}
	h.env = quietSuite().NewTestActivityEnvironment()
	h.env.RegisterActivity(h.acts)
	h.tgt = activities.Target{Account: f.ID, Region: awstest.Region}
	return h
}

func motoRun[T any](h *motoHarness, fn any, in any) (T, error) {
	h.t.Helper()
	var out T
	v, err := h.env.ExecuteActivity(fn, in)
	if err != nil {
		return out, err
	}
	if v != nil && v.HasValue() {
		require.NoError(h.t, v.Get(&out))
	}
	return out, nil
}

func motoMust[T any](h *motoHarness, fn any, in any) T {
	h.t.Helper()
	out, err := motoRun[T](h, fn, in)
	require.NoError(h.t, err)
	return out
}

// twice runs a mutating activity two times in a row (a retry after a lost
// response) and returns both results.
func motoTwice[T any](h *motoHarness, fn any, in any) (T, T) {
	h.t.Helper()
	return motoMust[T](h, fn, in), motoMust[T](h, fn, in)
}

func (h *motoHarness) calls(action string) int { return len(h.rec.Of(action)) }

func (h *motoHarness) isolationGroups(vpc string) activities.IsolationGroupsResult {
	return motoMust[activities.IsolationGroupsResult](h, h.acts.EnsureIsolationGroups, activities.IsolationGroupsInput{Target: h.tgt, VPCID: vpc})
}

func (h *motoHarness) image(instanceID, name string) string {
	res := motoMust[activities.CreateImageResult](h, h.acts.CreateImage, activities.CreateImageInput{Target: h.tgt, InstanceID: instanceID, Name: name,
		Tags: map[string]string{"cordon:incident": "quarantine/" + h.f.ID + "/us-east-1/" + instanceID, "cordon:state": "evidence"}})
	return res.ImageID
}

func requireMotoAppError(t *testing.T, err error, appType string) {
	t.Helper()
	require.Error(t, err)
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "want an application error of type %s, got %v", appType, err)
	require.Equal(t, appType, appErr.Type(), "%v", err)
	require.True(t, appErr.NonRetryable(), "%s must not be retried: %v", appType, err)
}

func requireMotoRetryable(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		require.False(t, appErr.NonRetryable(), "want a retryable error, got %v", err)
	}
}

// ---------------------------------------------------------------------------
// Preflight

func TestMotoPreflight(t *testing.T) {
	h := newMoto(t, awstest.Options{})
	f := h.f
	member := f.Members[0]

	pf := motoMust[activities.PreflightResult](h, h.acts.Preflight, activities.PreflightInput{Target: h.tgt, InstanceID: member, ProtectTag: "cordon:protected"})
	require.True(t, pf.Found)
	require.False(t, pf.Protected)
	require.Equal(t, "running", pf.State)
	ps := pf.PreState
	require.Equal(t, f.VPCID, ps.VPCID)
	require.Contains(t, f.WebSubnetIDs, ps.SubnetID)
	require.Equal(t, awstest.InstanceType, ps.InstanceType)
	require.Len(t, ps.ENIs, 1)
	require.Equal(t, []string{f.WebGroupID}, ps.ENIs[0].GroupIDs)
	require.Equal(t, awstest.GroupName, ps.AutoScalingGroup)
	require.EqualValues(t, 2, ps.DesiredCapacity)
	require.Equal(t, []string{f.TargetGroupARN}, ps.TargetGroupARNs, "registered in the ALB's target group")
	require.False(t, ps.TerminationProtection)
	require.Equal(t, awstest.GroupName, ps.Tags["aws:autoscaling:groupName"])
	require.Equal(t, f.QuarantineSubnetID, pf.QuarantineSubnetID, "found by the tag cordon:quarantine=true")
	require.Equal(t, f.Members, pf.GroupMembers)
	require.Empty(t, pf.Warnings)

	// Two network interfaces, in device order, and no group.
	pf = motoMust[activities.PreflightResult](h, h.acts.Preflight, activities.PreflightInput{Target: h.tgt, InstanceID: f.TwoENI, ProtectTag: "cordon:protected"})
	require.True(t, pf.Found)
	require.Len(t, pf.PreState.ENIs, 2)
	require.Equal(t, f.SecondENI, pf.PreState.ENIs[1].ENIID, "device index 1 second")
	require.Empty(t, pf.PreState.AutoScalingGroup)
	require.Empty(t, pf.PreState.TargetGroupARNs)

	// Unknown, malformed: not found, no error.
	for _, id := range []string{"i-0123456789abcdef0", "i-12345678", "web-1"} {
		pf = motoMust[activities.PreflightResult](h, h.acts.Preflight, activities.PreflightInput{Target: h.tgt, InstanceID: id})
		require.False(t, pf.Found, id)
	}

	// Tagged cordon:protected: found and protected.
	_, err := f.EC2.CreateTags(context.Background(), &ec2.CreateTagsInput{Resources: []string{f.OneENI}, Tags: []ec2types.Tag{{Key: aws.String("cordon:protected"), Value: aws.String("yes")}}})
	require.NoError(t, err)
	pf = motoMust[activities.PreflightResult](h, h.acts.Preflight, activities.PreflightInput{Target: h.tgt, InstanceID: f.OneENI, ProtectTag: "cordon:protected"})
	require.True(t, pf.Found)
	require.True(t, pf.Protected)

	// Terminated: gone.
	_, err = f.EC2.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: []string{f.OneENI}})
	require.NoError(t, err)
	pf = motoMust[activities.PreflightResult](h, h.acts.Preflight, activities.PreflightInput{Target: h.tgt, InstanceID: f.OneENI})
	require.False(t, pf.Found)
	require.Equal(t, "terminated", pf.State)

	for _, c := range h.rec.Calls() {
		require.True(t, strings.HasPrefix(c.Action, "sts:") || strings.Contains(c.Action, ":Describe"), "preflight changes nothing: %s", c.Action)
	}
}

// ---------------------------------------------------------------------------
// Isolation

func TestMotoEnsureIsolationGroups(t *testing.T) {
	h := newMoto(t, awstest.Options{NoStandalone: true})
	f := h.f
	first, second := motoTwice[activities.IsolationGroupsResult](h, h.acts.EnsureIsolationGroups, activities.IsolationGroupsInput{Target: h.tgt, VPCID: f.VPCID})
	require.Equal(t, first, second, "found by name the second time")
	require.Equal(t, 2, h.calls("ec2:CreateSecurityGroup"), "created once each")

	iso := f.SecurityGroupsNamed(t, f.VPCID, activities.IsolationGroupName)
	require.Len(t, iso, 1)
	require.Equal(t, first.IsolationGroupID, aws.ToString(iso[0].GroupId))
	require.Empty(t, iso[0].IpPermissions, "isolation: no inbound rule")
	require.Empty(t, iso[0].IpPermissionsEgress, "isolation: no outbound rule")
	requireTag(t, iso[0].Tags, "cordon:managed", "true")

	tr := f.SecurityGroupsNamed(t, f.VPCID, activities.TransitionGroupName)
	require.Len(t, tr, 1)
	require.Equal(t, first.TransitionGroupID, aws.ToString(tr[0].GroupId))
	require.True(t, allTraffic(tr[0].IpPermissions, true), "transition: all inbound IPv4 and IPv6: %+v", tr[0].IpPermissions)
	require.True(t, allTraffic(tr[0].IpPermissionsEgress, true), "transition: all outbound IPv4 and IPv6: %+v", tr[0].IpPermissionsEgress)

	// An isolation group left half-made (created, outbound rule not yet
	// revoked: a crash between the two calls), or made by hand with inbound
	// rules, is completed, not trusted.
	vpc, err := f.EC2.CreateVpc(context.Background(), &ec2.CreateVpcInput{CidrBlock: aws.String("10.30.0.0/16")})
	require.NoError(t, err)
	vpcID := aws.ToString(vpc.Vpc.VpcId)
	half, err := f.EC2.CreateSecurityGroup(context.Background(), &ec2.CreateSecurityGroupInput{GroupName: aws.String(activities.IsolationGroupName),
		Description: aws.String("half made"), VpcId: vpc.Vpc.VpcId})
	require.NoError(t, err)
	require.NotEmpty(t, f.SecurityGroupsNamed(t, vpcID, activities.IsolationGroupName)[0].IpPermissionsEgress, "moto adds AWS's default outbound rule")
	_, err = f.EC2.AuthorizeSecurityGroupIngress(context.Background(), &ec2.AuthorizeSecurityGroupIngressInput{GroupId: half.GroupId, IpPermissions: []ec2types.IpPermission{
		{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}},
		{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(443), ToPort: aws.Int32(443), Ipv6Ranges: []ec2types.Ipv6Range{{CidrIpv6: aws.String("::/0")}}},
	}})
	require.NoError(t, err)
	got := h.isolationGroups(vpcID)
	require.Equal(t, aws.ToString(half.GroupId), got.IsolationGroupID)
	found := f.SecurityGroupsNamed(t, vpcID, activities.IsolationGroupName)[0]
	require.Empty(t, found.IpPermissions, "inbound rules revoked on the found group")
	require.Empty(t, found.IpPermissionsEgress, "outbound rule revoked on the found group")
}

func allTraffic(perms []ec2types.IpPermission, ipv6 bool) bool {
	v4, v6 := false, false
	for _, p := range perms {
		if aws.ToString(p.IpProtocol) != "-1" {
			continue
		}
		for _, r := range p.IpRanges {
			v4 = v4 || aws.ToString(r.CidrIp) == "0.0.0.0/0"
		}
		for _, r := range p.Ipv6Ranges {
			v6 = v6 || aws.ToString(r.CidrIpv6) == "::/0"
		}
	}
	return v4 && (v6 || !ipv6)
}

func requireTag(t *testing.T, tags []ec2types.Tag, key, value string) {
	t.Helper()
	for _, tg := range tags {
		if aws.ToString(tg.Key) == key {
			require.Equal(t, value, aws.ToString(tg.Value), "tag %s", key)
			return
		}
	}
	t.Fatalf("no tag %s in %v", key, tags)
}

func ec2TagMap(tags []ec2types.Tag) map[string]string {
	m := map[string]string{}
	for _, tg := range tags {
		m[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	return m
}

// TestMotoTwoStepIsolationPerENI swaps every network interface of the
// two-ENI instance to the all-traffic group, then to the no-rule group, one
// ModifyNetworkInterfaceAttribute per ENI and step, each step twice.
func TestMotoTwoStepIsolationPerENI(t *testing.T) {
	h := newMoto(t, awstest.Options{})
	f := h.f
	groups := h.isolationGroups(f.VPCID)
	for _, inst := range []string{f.TwoENI, f.Members[0]} {
		before := awstest.ENIGroups(f.Instance(t, inst))
		for eni := range before {
			require.Equal(t, []string{f.WebGroupID}, f.ENIOwnGroups(t, f.VPCID, eni))
			for _, g := range []string{groups.TransitionGroupID, groups.IsolationGroupID} {
				motoTwice[struct{}](h, h.acts.SetENIGroups, activities.ENIGroupsInput{Target: h.tgt, ENIID: eni, GroupIDs: []string{g}})
				require.Equal(t, []string{g}, f.ENIOwnGroups(t, f.VPCID, eni), "%s %s after the swap to %s", inst, eni, g)
			}
		}
		after := awstest.ENIGroups(f.Instance(t, inst))
		require.Len(t, after, len(before))
		for eni := range after {
			require.Equal(t, []string{groups.IsolationGroupID}, f.ENIOwnGroups(t, f.VPCID, eni), "%s: ENI %s has only the isolation group", inst, eni)
		}
	}
	require.Len(t, awstest.ENIGroups(f.Instance(t, f.TwoENI)), 2)
	require.Equal(t, 12, h.calls("ec2:ModifyNetworkInterfaceAttribute"), "3 ENIs x 2 steps x 2 runs: one call per ENI and step")
	for _, c := range h.rec.Of("ec2:ModifyInstanceAttribute") {
		require.Empty(t, c.Input.(*ec2.ModifyInstanceAttributeInput).Groups, "isolation never uses the instance-level Groups call")
	}

	// Restoring (release) puts the recorded groups back per ENI.
	motoMust[struct{}](h, h.acts.SetENIGroups, activities.ENIGroupsInput{Target: h.tgt, ENIID: f.SecondENI, GroupIDs: []string{f.WebGroupID}})
	require.Equal(t, []string{f.WebGroupID}, f.ENIOwnGroups(t, f.VPCID, f.SecondENI))
}

// TestMotoInstanceLevelGroupsOnTwoENIs documents a moto difference: on AWS,
// ModifyInstanceAttribute with Groups on an instance with several network
// interfaces fails ("There are multiple interfaces attached to instance …
// Please specify an interface ID for the operation instead"), which is why
// Cordon swaps groups per ENI. moto 5.2.1 accepts the call, leaves every
// interface's own groups as they were and only adds the groups to what
// Describe shows. If this test fails, moto changed: update docs/moto.md.
func TestMotoInstanceLevelGroupsOnTwoENIs(t *testing.T) {
	h := newMoto(t, awstest.Options{})
	f := h.f
	groups := h.isolationGroups(f.VPCID)
	_, err := f.EC2.ModifyInstanceAttribute(context.Background(), &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(f.TwoENI), Groups: []string{groups.IsolationGroupID}})
	require.NoError(t, err, "moto accepts what AWS refuses")
	for eni, g := range awstest.ENIGroups(f.Instance(t, f.TwoENI)) {
		require.Contains(t, g, groups.IsolationGroupID, "%s: Describe shows the instance's groups on every ENI", eni)
		require.Equal(t, []string{f.WebGroupID}, f.ENIOwnGroups(t, f.VPCID, eni), "%s: the interface itself keeps its groups: on moto the call would not isolate it", eni)
	}
}

func TestMotoDetachFromGroupWithoutDecrement(t *testing.T) {
	h := newMoto(t, awstest.Options{NoStandalone: true})
	f := h.f
	victim := f.Members[0]
	in := activities.InstanceGroupInput{Target: h.tgt, InstanceID: victim, Group: f.Group}

	motoMust[struct{}](h, h.acts.DetachFromGroup, in)
	g := f.DescribeGroup(t)
	require.EqualValues(t, 2, aws.ToInt32(g.DesiredCapacity), "desired capacity not decremented")
	members := awstest.GroupMembers(g)
	require.NotContains(t, members, victim)
	require.Len(t, members, 2, "the group replaced the detached instance (at once on moto)")
	instancesAfterFirst := len(f.AllInstances(t))
	out, err := f.AutoScaling.DescribeAutoScalingInstances(context.Background(), &autoscaling.DescribeAutoScalingInstancesInput{InstanceIds: []string{victim}})
	require.NoError(t, err)
	require.Empty(t, out.AutoScalingInstances)
	require.Equal(t, "running", string(f.Instance(t, victim).State.Name), "detached, still running")

	motoMust[struct{}](h, h.acts.DetachFromGroup, in)
	require.Equal(t, 1, h.calls("autoscaling:DetachInstances"), "the second run sees it is no member and does nothing")
	require.Equal(t, members, awstest.GroupMembers(f.DescribeGroup(t)))
	require.Len(t, f.AllInstances(t), instancesAfterFirst, "no second replacement")
	for _, c := range h.rec.Of("autoscaling:DetachInstances") {
		require.False(t, aws.ToBool(c.Input.(*autoscaling.DetachInstancesInput).ShouldDecrementDesiredCapacity))
	}
}

func TestMotoDeregisterTargets(t *testing.T) {
	h := newMoto(t, awstest.Options{NoStandalone: true})
	f := h.f
	victim := f.Members[0]
	motoMust[struct{}](h, h.acts.DetachFromGroup, activities.InstanceGroupInput{Target: h.tgt, InstanceID: victim, Group: f.Group})
	// On AWS the detach deregisters it from the group's target groups
	// (draining); moto leaves the target registered and healthy.
	require.Equal(t, "healthy", string(f.TargetHealth(t, f.TargetGroupARN)[victim]))

	in := activities.TargetsInput{Target: h.tgt, InstanceID: victim, TargetGroupARNs: []string{f.TargetGroupARN}}
	motoTwice[struct{}](h, h.acts.DeregisterTargets, in)
	require.NotContains(t, f.TargetHealth(t, f.TargetGroupARN), victim)
	require.Equal(t, 1, h.calls("elasticloadbalancing:DeregisterTargets"), "the second run finds it deregistered")

	// Release puts it back.
	motoMust[struct{}](h, h.acts.RegisterTargets, in)
	require.Contains(t, f.TargetHealth(t, f.TargetGroupARN), victim)
}

func TestMotoTerminationProtection(t *testing.T) {
	h := newMoto(t, awstest.Options{NoStandalone: true})
	f := h.f
	id := f.Members[1]
	on := activities.TerminationProtectionInput{Target: h.tgt, InstanceID: id, Enabled: true}
	motoTwice[struct{}](h, h.acts.SetTerminationProtection, on)
	require.True(t, f.TerminationProtection(t, id))

	_, err := motoRun[struct{}](h, h.acts.TerminateInstance, activities.TerminateInput{Target: h.tgt, InstanceID: id})
	requireMotoAppError(t, err, activities.ErrNotPermitted)
	require.Contains(t, err.Error(), "OperationNotPermitted")
	require.Equal(t, "running", string(f.Instance(t, id).State.Name), "protected: still running")

	off := on
	off.Enabled = false
	motoTwice[struct{}](h, h.acts.SetTerminationProtection, off)
	require.False(t, f.TerminationProtection(t, id))
	for _, c := range h.rec.Of("ec2:ModifyInstanceAttribute") {
		in := c.Input.(*ec2.ModifyInstanceAttributeInput)
		require.NotNil(t, in.DisableApiTermination)
		require.Empty(t, in.Groups)
		require.Nil(t, in.InstanceType)
	}
}

func TestMotoTagAndUntag(t *testing.T) {
	h := newMoto(t, awstest.Options{NoStandalone: true})
	f := h.f
	id := f.Members[0]
	tags := map[string]string{"cordon:incident": "quarantine/" + f.ID + "/us-east-1/" + id, "cordon:state": "isolated", "cordon:bad-ip": "203.0.113.7"}
	motoTwice[struct{}](h, h.acts.TagResources, activities.TagsInput{Target: h.tgt, ResourceIDs: []string{id}, Tags: tags})
	got := ec2TagMap(f.Instance(t, id).Tags)
	for k, v := range tags {
		require.Equal(t, v, got[k])
	}
	require.Equal(t, "web", got["Name"], "other tags untouched")
	motoTwice[struct{}](h, h.acts.UntagResources, activities.TagsInput{Target: h.tgt, ResourceIDs: []string{id}, Tags: tags})
	got = ec2TagMap(f.Instance(t, id).Tags)
	for k := range tags {
		require.NotContains(t, got, k)
	}
	require.Equal(t, "web", got["Name"])
}

// ---------------------------------------------------------------------------
// Evidence, quarantine copy, termination, cleanup

func TestMotoCreateImageNoRebootTagged(t *testing.T) {
	h := newMoto(t, awstest.Options{NoStandalone: true})
	f := h.f
	id := f.Members[0]
	name := "cordon-" + id + "-20260101T000000Z-0123abcd"
	in := activities.CreateImageInput{Target: h.tgt, InstanceID: id, Name: name,
		Tags: map[string]string{"cordon:incident": "quarantine/x/us-east-1/" + id, "cordon:state": "evidence"}}
	first, second := motoTwice[activities.CreateImageResult](h, h.acts.CreateImage, in)
	require.Equal(t, first.ImageID, second.ImageID, "the deterministic name finds the first image")
	require.Len(t, f.ImagesNamed(t, name), 1, "one image")
	require.Equal(t, 1, h.calls("ec2:CreateImage"))

	req := h.rec.Of("ec2:CreateImage")[0].Input.(*ec2.CreateImageInput)
	require.True(t, aws.ToBool(req.NoReboot), "NoReboot: a reboot would destroy memory and connections")
	kinds := []ec2types.ResourceType{}
	for _, ts := range req.TagSpecifications {
		kinds = append(kinds, ts.ResourceType)
		require.Equal(t, in.Tags, ec2TagMap(ts.Tags))
	}
	require.ElementsMatch(t, []ec2types.ResourceType{ec2types.ResourceTypeImage, ec2types.ResourceTypeSnapshot}, kinds, "image and snapshots tagged at creation")
	require.EqualValues(t, 1, h.compat.SnapshotTagsDropped(), "moto cannot tag snapshots in CreateImage (docs/moto.md)")

	im, ok := f.Image(t, first.ImageID)
	require.True(t, ok)
	require.Equal(t, name, aws.ToString(im.Name))
	require.Equal(t, in.Tags, ec2TagMap(im.Tags))
	require.Equal(t, id, aws.ToString(im.SourceInstanceId))

	res := motoMust[activities.ImageResult](h, h.acts.WaitImageAvailable, activities.ImageInput{Target: h.tgt, ImageID: first.ImageID})
	require.Equal(t, "available", res.State, "moto: available at once")
	require.NotEmpty(t, res.SnapshotIDs)
	for _, s := range res.SnapshotIDs {
		require.True(t, f.SnapshotExists(t, s), s)
	}

	// An unknown instance: retried (eventual consistency), never "created".
	_, err := motoRun[activities.CreateImageResult](h, h.acts.CreateImage, activities.CreateImageInput{Target: h.tgt, InstanceID: "i-0123456789abcdef0", Name: "cordon-unknown-instance"})
	requireMotoRetryable(t, err)
	require.Contains(t, err.Error(), "InvalidInstanceID.NotFound")
}

func TestMotoLaunchQuarantineCopy(t *testing.T) {
	h := newMoto(t, awstest.Options{NoStandalone: true})
	f := h.f
	src := f.Members[0]
	imageID := h.image(src, "cordon-copy-source-"+src)
	groups := h.isolationGroups(f.VPCID)
	token := "cordon-0123456789abcdef0123456789abcdef"
	in := activities.LaunchCopyInput{Target: h.tgt, ImageID: imageID, SubnetID: f.QuarantineSubnetID, GroupID: groups.IsolationGroupID,
		InstanceType: awstest.InstanceType, ClientToken: token,
		Tags: map[string]string{"cordon:incident": "quarantine/x/us-east-1/" + src, "cordon:state": "quarantine-copy", "Name": "cordon-quarantine-" + src}}
	before := len(f.AllInstances(t))
	first, second := motoTwice[activities.LaunchCopyResult](h, h.acts.LaunchQuarantineCopy, in)
	require.Equal(t, first.InstanceID, second.InstanceID, "a retry returns the same copy")
	require.Len(t, f.AllInstances(t), before+1, "one copy")
	require.Len(t, f.InstancesTagged(t, "cordon:state", "quarantine-copy"), 1)

	motoMust[struct{}](h, h.acts.WaitInstanceRunning, activities.InstanceInput{Target: h.tgt, InstanceID: first.InstanceID})
	cp := f.Instance(t, first.InstanceID)
	require.Equal(t, "running", string(cp.State.Name))
	require.Equal(t, imageID, aws.ToString(cp.ImageId))
	require.Equal(t, f.QuarantineSubnetID, aws.ToString(cp.SubnetId), "in the quarantine subnet")
	require.Equal(t, f.VPCID, aws.ToString(cp.VpcId))
	require.Nil(t, cp.IamInstanceProfile, "no instance profile: no credentials on the copy")
	require.Empty(t, aws.ToString(cp.PublicIpAddress), "no public address although the subnet maps one")
	require.Len(t, cp.NetworkInterfaces, 1)
	for eni, g := range awstest.ENIGroups(cp) {
		require.Equal(t, []string{groups.IsolationGroupID}, g, "ENI %s: only the isolation group", eni)
		require.Equal(t, []string{groups.IsolationGroupID}, f.ENIOwnGroups(t, f.VPCID, eni), "ENI %s: only the isolation group", eni)
	}
	tags0 := ec2TagMap(cp.Tags)
	require.Equal(t, token, tags0[activities.ClientTokenTag], "the client token is on the copy")
	require.Equal(t, awstest.InstanceType, string(cp.InstanceType))
	tags := ec2TagMap(cp.Tags)
	for k, v := range in.Tags {
		require.Equal(t, v, tags[k], k)
	}
	g := f.DescribeGroup(t)
	require.NotContains(t, awstest.GroupMembers(g), first.InstanceID, "the copy is in no group")

	runs := h.rec.Of("ec2:RunInstances")
	require.NotEmpty(t, runs)
	for _, c := range runs {
		req := c.Input.(*ec2.RunInstancesInput)
		require.Equal(t, token, aws.ToString(req.ClientToken), "client token derived from the incident")
		require.Nil(t, req.IamInstanceProfile)
		require.Len(t, req.NetworkInterfaces, 1)
		require.False(t, aws.ToBool(req.NetworkInterfaces[0].AssociatePublicIpAddress))
		require.Equal(t, []string{groups.IsolationGroupID}, req.NetworkInterfaces[0].Groups)
		require.Empty(t, req.SecurityGroupIds)
	}

	// No quarantine subnet: a configuration error, nothing launched.
	_, err := motoRun[activities.LaunchCopyResult](h, h.acts.LaunchQuarantineCopy, activities.LaunchCopyInput{Target: h.tgt, ImageID: imageID, GroupID: groups.IsolationGroupID,
		InstanceType: awstest.InstanceType, ClientToken: "cordon-other"})
	requireMotoAppError(t, err, activities.ErrConfig)
	require.Len(t, f.AllInstances(t), before+1)
}

func TestMotoTerminateInstance(t *testing.T) {
	h := newMoto(t, awstest.Options{})
	f := h.f
	in := activities.TerminateInput{Target: h.tgt, InstanceID: f.OneENI}
	motoTwice[struct{}](h, h.acts.TerminateInstance, in)
	require.Equal(t, "terminated", string(f.Instance(t, f.OneENI).State.Name))
	require.Equal(t, 1, h.calls("ec2:TerminateInstances"), "the second run finds it terminated")
	// Long gone (or never there): a success.
	motoMust[struct{}](h, h.acts.TerminateInstance, activities.TerminateInput{Target: h.tgt, InstanceID: "i-0123456789abcdef0"})
	require.Equal(t, "running", string(f.Instance(t, f.TwoENI).State.Name), "nothing else touched")

	// Protected by Cordon during isolation: lifted first when asked.
	_, err := f.EC2.ModifyInstanceAttribute(context.Background(), &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(f.TwoENI),
		DisableApiTermination: &ec2types.AttributeBooleanValue{Value: aws.Bool(true)}})
	require.NoError(t, err)
	lift := activities.TerminateInput{Target: h.tgt, InstanceID: f.TwoENI, LiftProtection: true}
	motoTwice[struct{}](h, h.acts.TerminateInstance, lift)
	require.Equal(t, "terminated", string(f.Instance(t, f.TwoENI).State.Name))
	require.Equal(t, 2, h.calls("ec2:TerminateInstances"))
}

func TestMotoDeregisterImageKeepsSnapshotsThenDeleteSnapshots(t *testing.T) {
	h := newMoto(t, awstest.Options{NoStandalone: true})
	f := h.f
	imageID := h.image(f.Members[0], "cordon-cleanup-"+f.Members[0])
	avail := motoMust[activities.ImageResult](h, h.acts.WaitImageAvailable, activities.ImageInput{Target: h.tgt, ImageID: imageID})
	require.NotEmpty(t, avail.SnapshotIDs)

	// While the image is registered its snapshots are in use: permanent, nothing deleted.
	err := motoDeleteSnapshotsOnce(h, avail.SnapshotIDs)
	requireMotoAppError(t, err, activities.ErrWrongState)
	require.Contains(t, err.Error(), "InvalidSnapshot.InUse")
	for _, s := range avail.SnapshotIDs {
		require.True(t, f.SnapshotExists(t, s))
	}

	first, second := motoTwice[activities.DeregisterImageResult](h, h.acts.DeregisterImage, activities.ImageInput{Target: h.tgt, ImageID: imageID})
	require.Equal(t, avail.SnapshotIDs, first.SnapshotIDs, "reports the snapshots it leaves behind")
	require.Empty(t, second.SnapshotIDs, "already deregistered: nothing to do")
	require.Equal(t, 1, h.calls("ec2:DeregisterImage"))
	_, ok := f.Image(t, imageID)
	require.False(t, ok, "image deregistered")
	for _, s := range avail.SnapshotIDs {
		require.True(t, f.SnapshotExists(t, s), "snapshot %s kept as evidence", s)
	}

	in := activities.SnapshotsInput{Target: h.tgt, SnapshotIDs: avail.SnapshotIDs}
	motoTwice[struct{}](h, h.acts.DeleteSnapshots, in)
	for _, s := range avail.SnapshotIDs {
		require.False(t, f.SnapshotExists(t, s), "snapshot %s deleted", s)
	}
}

// motoDeleteSnapshotsOnce runs DeleteSnapshots as one attempt: its error.
func motoDeleteSnapshotsOnce(h *motoHarness, ids []string) error {
	_, err := motoRun[struct{}](h, h.acts.DeleteSnapshots, activities.SnapshotsInput{Target: h.tgt, SnapshotIDs: ids})
	return err
}

// ---------------------------------------------------------------------------
// Group: heal, members, release

func TestMotoWaitGroupHealed(t *testing.T) {
	h := newMoto(t, awstest.Options{NoStandalone: true})
	f := h.f
	victim := f.Members[0]
	motoMust[struct{}](h, h.acts.DetachFromGroup, activities.InstanceGroupInput{Target: h.tgt, InstanceID: victim, Group: f.Group})
	motoMust[struct{}](h, h.acts.DeregisterTargets, activities.TargetsInput{Target: h.tgt, InstanceID: victim, TargetGroupARNs: []string{f.TargetGroupARN}})
	motoMust[struct{}](h, h.acts.TerminateInstance, activities.TerminateInput{Target: h.tgt, InstanceID: victim})

	res := motoMust[activities.HealResult](h, h.acts.WaitGroupHealed, activities.HealInput{Target: h.tgt, Group: f.Group, Desired: 2, Exclude: victim,
		TargetGroupARNs: []string{f.TargetGroupARN}})
	require.EqualValues(t, 2, res.InService)
	require.EqualValues(t, 2, res.Desired)
	require.Len(t, res.Members, 2)
	require.NotContains(t, res.Members, victim)
	replacement := ""
	for _, m := range res.Members {
		if !slices.Contains(f.Members, m) {
			replacement = m
		}
	}
	require.NotEmpty(t, replacement, "a new member replaced the detached one")
	require.Equal(t, "healthy", string(f.TargetHealth(t, f.TargetGroupARN)[replacement]), "the replacement serves behind the ALB")

	members := motoMust[[]string](h, h.acts.GroupMembers, activities.GroupMembersInput{Target: h.tgt, Group: f.Group})
	require.Equal(t, res.Members, members)
}

// TestMotoGroupCapacity: the governor's count of healthy in-service members
// (InService, Healthy, and healthy in the group's target group).
func TestMotoGroupCapacity(t *testing.T) {
	h := newMoto(t, awstest.Options{NoStandalone: true, GroupSize: 3})
	f := h.f
	in := activities.CapacityInput{Target: h.tgt, Group: f.Group}
	require.Equal(t, 3, motoMust[activities.CapacityResult](h, h.acts.GroupCapacity, in).Healthy)
	in.Exclude = f.Members[:2]
	require.Equal(t, 1, motoMust[activities.CapacityResult](h, h.acts.GroupCapacity, in).Healthy, "excluded members do not count")

	// A member that is no healthy target does not count.
	_, err := f.ELBv2.DeregisterTargets(context.Background(), &elbv2.DeregisterTargetsInput{TargetGroupArn: aws.String(f.TargetGroupARN),
		Targets: []elbtypes.TargetDescription{{Id: aws.String(f.Members[2])}}})
	require.NoError(t, err)
	in.Exclude = nil
	require.Equal(t, 2, motoMust[activities.CapacityResult](h, h.acts.GroupCapacity, in).Healthy)
}

func TestMotoAttachToGroup(t *testing.T) {
	h := newMoto(t, awstest.Options{NoStandalone: true})
	f := h.f
	victim := f.Members[0]
	motoMust[struct{}](h, h.acts.DetachFromGroup, activities.InstanceGroupInput{Target: h.tgt, InstanceID: victim, Group: f.Group})
	require.NotContains(t, awstest.GroupMembers(f.DescribeGroup(t)), victim)

	var replacement string
	for id := range awstest.GroupMembers(f.DescribeGroup(t)) {
		if !slices.Contains(f.Members, id) {
			replacement = id
		}
	}
	require.NotEmpty(t, replacement)

	in := activities.AttachInput{Target: h.tgt, InstanceID: victim, Group: f.Group, Desired: 2, ProtectedFromScaleIn: false, Before: f.Members}
	motoTwice[struct{}](h, h.acts.AttachToGroup, in)
	g := f.DescribeGroup(t)
	require.EqualValues(t, 2, aws.ToInt32(g.DesiredCapacity), "back at the recorded capacity")
	members := awstest.GroupMembers(g)
	require.Contains(t, members, victim, "the released instance stays in the group")
	require.Equal(t, "InService", string(members[victim]))
	require.Contains(t, members, f.Members[1], "the member from before the incident stays")
	require.Len(t, members, 2, "the replacement launched during the incident left, not the released instance")
	require.NotContains(t, members, replacement)
	require.Equal(t, "terminated", string(f.Instance(t, replacement).State.Name))
	require.Equal(t, 1, h.calls("autoscaling:TerminateInstanceInAutoScalingGroup"), "one replacement removed, once")
	for _, m := range g.Instances {
		if aws.ToString(m.InstanceId) == victim {
			require.False(t, aws.ToBool(m.ProtectedFromScaleIn), "recorded scale-in protection restored")
		}
	}
	require.Equal(t, 1, h.calls("autoscaling:AttachInstances"), "the second run finds it attached")
}

// ---------------------------------------------------------------------------
// Alerts

// TestMotoNotifySNS publishes through the Notifier to an SNS topic in moto;
// an HTTP subscription receives it. (moto's delivery signatures are not
// AWS-correct, see docs/moto.md; this checks the publish, not the signature.)
func TestMotoNotifySNS(t *testing.T) {
	h := newMoto(t, awstest.Options{NoStandalone: true})
	f := h.f
	got := make(chan map[string]any, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		if json.Unmarshal(b, &m) == nil {
			got <- m
		}
	}))
	defer srv.Close()
	_, err := f.SNSAccount.SNS.Subscribe(context.Background(), &sns.SubscribeInput{TopicArn: aws.String(f.TopicARN), Protocol: aws.String("http"), Endpoint: aws.String(srv.URL)})
	require.NoError(t, err)

	al := activities.Alert{IncidentID: "quarantine/" + f.ID + "/us-east-1/" + f.Members[0], InstanceID: f.Members[0], Account: f.ID, Region: awstest.Region,
		BadIP: "203.0.113.7", Phase: "opened", Severity: "critical", Summary: f.Members[0] + " talked to 203.0.113.7; containing it", Light: "alarm"}
	res := motoMust[activities.NotifyResult](h, h.acts.Notify, al)
	require.Equal(t, []string{"sns"}, res.Delivered)
	require.Empty(t, res.Failed)

	select {
	case m := <-got:
		require.Equal(t, "Notification", m["Type"])
		require.Equal(t, f.TopicARN, m["TopicArn"])
		require.Equal(t, al.Subject(), m["Subject"])
		var body activities.Alert
		require.NoError(t, json.Unmarshal([]byte(m["Message"].(string)), &body))
		require.Equal(t, al, body)
	case <-time.After(10 * time.Second):
		t.Fatal("no SNS notification delivered")
	}
	pub := h.rec.Of("sns:Publish")
	require.Len(t, pub, 1)
	require.NoError(t, pub[0].Err)
}

// ---------------------------------------------------------------------------
// Errors: the codes moto really returns, classified by activities/errors.go.

func TestMotoErrorClassification(t *testing.T) {
	awstest.Endpoint(t)
	t.Parallel()
	f := awstest.Build(t, awstest.Options{})
	ctx := context.Background()
	_, err := f.EC2.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(f.OneENI),
		DisableApiTermination: &ec2types.AttributeBooleanValue{Value: aws.Bool(true)}})
	require.NoError(t, err)
	out, err := f.EC2.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: aws.String(f.TwoENI), Name: aws.String("cordon-classify")})
	require.NoError(t, err)
	im, _ := f.Image(t, aws.ToString(out.ImageId))
	snap := aws.ToString(im.BlockDeviceMappings[0].Ebs.SnapshotId)

	type call func() error
	cases := []struct {
		name    string
		code    string
		kind    activities.Kind
		appType string
		call    call
	}{
		{"unknown instance", "InvalidInstanceID.NotFound", activities.Retryable, "", func() error {
			_, err := f.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-0123456789abcdef0"}})
			return err
		}},
		{"terminating a protected instance", "OperationNotPermitted", activities.NonRetryable, activities.ErrNotPermitted, func() error {
			_, err := f.EC2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{f.OneENI}})
			return err
		}},
		{"malformed image ID", "InvalidAMIID.Malformed", activities.NonRetryable, activities.ErrInvalidRequest, func() error {
			_, err := f.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{"web-image"}})
			return err
		}},
		{"malformed resource ID to tag", "InvalidID", activities.NonRetryable, activities.ErrInvalidRequest, func() error {
			_, err := f.EC2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{"web-1"}, Tags: []ec2types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
			return err
		}},
		{"invalid CIDR", "InvalidParameterValue", activities.NonRetryable, activities.ErrInvalidRequest, func() error {
			_, err := f.EC2.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: aws.String(f.VPCID), CidrBlock: aws.String("10.20.300.0/24")})
			return err
		}},
		{"unknown image right after CreateImage", "InvalidAMIID.NotFound", activities.Retryable, "", func() error {
			_, err := f.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{"ami-0123456789abcdef0"}})
			return err
		}},
		{"unknown network interface", "InvalidNetworkInterfaceID.NotFound", activities.Retryable, "", func() error {
			_, err := f.EC2.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: aws.String("eni-0123456789abcdef0"), Groups: []string{f.WebGroupID}})
			return err
		}},
		{"unknown subnet", "InvalidSubnetID.NotFound", activities.NonRetryable, activities.ErrNotFound, func() error {
			_, err := f.EC2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{"subnet-0123456789abcdef0"}})
			return err
		}},
		{"unknown security group", "InvalidGroup.NotFound", activities.NonRetryable, activities.ErrNotFound, func() error {
			_, err := f.EC2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{"sg-0123456789abcdef0"}})
			return err
		}},
		{"unknown snapshot", "InvalidSnapshot.NotFound", activities.NonRetryable, activities.ErrNotFound, func() error {
			_, err := f.EC2.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String("snap-0123456789abcdef0")})
			return err
		}},
		{"snapshot of a registered image", "InvalidSnapshot.InUse", activities.NonRetryable, activities.ErrWrongState, func() error {
			_, err := f.EC2.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(snap)})
			return err
		}},
		{"unknown target group", "TargetGroupNotFound", activities.NonRetryable, activities.ErrNotFound, func() error {
			_, err := f.ELBv2.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(strings.Replace(f.TargetGroupARN, "web-tg", "no-tg", 1))})
			return err
		}},
		{"Auto Scaling validation", "ValidationError", activities.NonRetryable, activities.ErrInvalidRequest, func() error {
			_, err := f.AutoScaling.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{AutoScalingGroupName: aws.String("no-template"),
				MinSize: aws.Int32(1), MaxSize: aws.Int32(1)})
			return err
		}},
		{"unknown attribute", "InvalidParameterValue", activities.NonRetryable, activities.ErrInvalidRequest, func() error {
			_, err := f.EC2.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(f.OneENI), Attribute: "bogus"})
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			require.Error(t, err, "moto returns an error")
			require.Equal(t, tc.code, activities.ErrorCode(err), "moto's code: %v", err)
			kind, appType := activities.Classify(err)
			require.Equal(t, tc.kind, kind, "%s", tc.code)
			require.Equal(t, tc.appType, appType, "%s", tc.code)
		})
	}
}

// TestMotoActivityErrors: the same codes, through activities, become what the
// workflow branches on.
func TestMotoActivityErrors(t *testing.T) {
	h := newMoto(t, awstest.Options{})
	// A malformed ENI ID: moto says NotFound (AWS: InvalidNetworkInterfaceID.Malformed).
	_, err := motoRun[struct{}](h, h.acts.SetENIGroups, activities.ENIGroupsInput{Target: h.tgt, ENIID: "eni-0123456789abcdef0", GroupIDs: []string{h.f.WebGroupID}})
	requireMotoRetryable(t, err)
	// Tagging a malformed ID is a permanent request error.
	_, err = motoRun[struct{}](h, h.acts.TagResources, activities.TagsInput{Target: h.tgt, ResourceIDs: []string{"web-1"}, Tags: map[string]string{"cordon:state": "x"}})
	requireMotoAppError(t, err, activities.ErrInvalidRequest)
	// A quarantine subnet that does not exist.
	_, err = motoRun[activities.PreflightResult](h, h.acts.Preflight, activities.PreflightInput{Target: h.tgt, InstanceID: h.f.OneENI, QuarantineSubnet: "subnet-0123456789abcdef0"})
	requireMotoAppError(t, err, activities.ErrNotFound)
}

// ---------------------------------------------------------------------------
// Accounts: STS AssumeRole per account

func TestMotoAccountsAssumeRole(t *testing.T) {
	awstest.Endpoint(t)
	t.Parallel()
	ctx := context.Background()
	a := awstest.Build(t, awstest.Options{NoStandalone: true})
	b := awstest.NewAccount(t)
	rec := &awstest.Recorder{}
	p := awstest.Provider(t, []awstest.APIOption{rec.Option()}, a.Account, b)

	// The role's account sees its own instances, and only those.
	ca, err := p.Clients(ctx, a.ID, awstest.Region)
	require.NoError(t, err)
	out, err := ca.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: a.Members})
	require.NoError(t, err)
	n := 0
	for _, r := range out.Reservations {
		n += len(r.Instances)
	}
	require.Equal(t, len(a.Members), n)
	cb, err := p.Clients(ctx, b.ID, awstest.Region)
	require.NoError(t, err)
	_, err = cb.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: a.Members[:1]})
	require.Error(t, err, "another account does not see them")
	require.Equal(t, "InvalidInstanceID.NotFound", activities.ErrorCode(err))

	cfg, err := p.Config(ctx, a.ID, awstest.Region)
	require.NoError(t, err)
	id, err := sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = aws.String(a.Endpoint) }).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	require.NoError(t, err)
	require.Equal(t, a.ID, aws.ToString(id.Account))
	require.Equal(t, "arn:aws:sts::"+a.ID+":assumed-role/cordon/cordon", aws.ToString(id.Arn), "role session name cordon")

	assumes := rec.Of("sts:AssumeRole")
	require.NotEmpty(t, assumes)
	seen := map[string]bool{}
	for _, c := range assumes {
		seen[aws.ToString(c.Input.(*sts.AssumeRoleInput).RoleArn)] = true
	}
	require.True(t, seen[awstest.RoleARN(a.ID)] && seen[awstest.RoleARN(b.ID)], "one role per account: %v", seen)

	// The credentials' own account needs no role.
	own, err := p.Clients(ctx, awstest.CallerAccount, awstest.Region)
	require.NoError(t, err)
	_, err = own.EC2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{})
	require.NoError(t, err)

	// Any other account without a role is refused, saying what to set.
	_, err = p.Clients(ctx, "999988887777", awstest.Region)
	require.Error(t, err)
	require.Contains(t, err.Error(), "account 999988887777")
	require.Contains(t, err.Error(), "has no role")
	require.Contains(t, err.Error(), "CORDON_ROLES=999988887777=arn:aws:iam::999988887777:role/cordon")

	// Through an activity that is a permanent configuration error, not a retry loop.
	env := quietSuite().NewTestActivityEnvironment()
	acts := &activities.Activities{Cloud: p}
	env.RegisterActivity(acts)
	_, err = env.ExecuteActivity(acts.Preflight, activities.PreflightInput{Target: activities.Target{Account: "999988887777", Region: awstest.Region}, InstanceID: "i-0123456789abcdef0"})
	requireMotoAppError(t, err, activities.ErrConfig)
	require.Contains(t, err.Error(), "CORDON_ROLES")
}

// TestMotoCredentialCheckThrottledIsRetried: a throttled STS call while
// finding the credentials' account is transient, not a configuration error.
func TestMotoCredentialCheckThrottledIsRetried(t *testing.T) {
	awstest.Endpoint(t)
	t.Parallel()
	th := awstest.NewThrottle(1, 7, "STS")
	p := awstest.Provider(t, []awstest.APIOption{th.Option()})
	env := quietSuite().NewTestActivityEnvironment()
	acts := &activities.Activities{Cloud: p}
	env.RegisterActivity(acts)
	_, err := env.ExecuteActivity(acts.Preflight, activities.PreflightInput{Target: activities.Target{Account: awstest.CallerAccount, Region: awstest.Region}, InstanceID: "i-0123456789abcdef0"})
	requireMotoRetryable(t, err)
	require.Contains(t, err.Error(), "Throttling")
	th.SetRate(0)
	_, err = env.ExecuteActivity(acts.Preflight, activities.PreflightInput{Target: activities.Target{Account: awstest.CallerAccount, Region: awstest.Region}, InstanceID: "i-0123456789abcdef0"})
	require.NoError(t, err, "the next attempt succeeds")
}

// TestMotoEveryActivityCovered fails when an activity is added without a
// moto test naming it here.
func TestMotoEveryActivityCovered(t *testing.T) {
	covered := map[string]bool{
		"Preflight": true, "EnsureIsolationGroups": true, "DetachFromGroup": true, "DeregisterTargets": true, "RegisterTargets": true,
		"SetENIGroups": true, "SetTerminationProtection": true, "TagResources": true, "UntagResources": true, "CreateImage": true,
		"WaitImageAvailable": true, "LaunchQuarantineCopy": true, "WaitInstanceRunning": true, "TerminateInstance": true,
		"WaitGroupHealed": true, "DeregisterImage": true, "DeleteSnapshots": true, "AttachToGroup": true, "GroupMembers": true, "Notify": true,
		"GroupCapacity": true, "CheckPermissions": true,
	}
	var missing []string
	for _, m := range activityMethods() {
		if !covered[m] {
			missing = append(missing, m)
		}
	}
	sort.Strings(missing)
	require.Empty(t, missing, "activities without a moto test in activities/moto_test.go")
}

// activityMethods lists the activities: the exported methods of *Activities.
func activityMethods() []string {
	t := reflect.TypeOf(&activities.Activities{})
	var out []string
	for i := 0; i < t.NumMethod(); i++ {
		out = append(out, t.Method(i).Name)
	}
	return out
}

// TestMotoCheckPermissionsWithDryRun: moto answers EC2's DryRun as AWS does
// (DryRunOperation for a permitted call) and the checks change nothing.
func TestMotoCheckPermissionsWithDryRun(t *testing.T) {
	h := newMoto(t, awstest.Options{})
	f := h.f
	pf := motoMust[activities.PreflightResult](h, h.acts.Preflight, activities.PreflightInput{Target: h.tgt, InstanceID: f.TwoENI, ProtectTag: "cordon:protected"})
	res := motoMust[activities.PermissionsResult](h, h.acts.CheckPermissions, activities.PermissionsInput{Target: h.tgt, InstanceID: f.TwoENI, PreState: pf.PreState})
	require.Len(t, res.Checks, 7, "two ENIs: one check each")
	for _, c := range res.Checks {
		require.Equal(t, "allowed", c.Result, "%s: %s", c.Call, c.Detail)
	}
	require.Equal(t, "running", string(f.Instance(t, f.TwoENI).State.Name))
	require.False(t, f.TerminationProtection(t, f.TwoENI), "DryRun changed nothing")
	require.Empty(t, f.SecurityGroupsNamed(t, f.VPCID, "cordon-permission-check"))
	require.Empty(t, f.ImagesNamed(t, "cordon-permission-check"))
}
