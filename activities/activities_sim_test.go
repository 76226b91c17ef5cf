package activities_test

import (
	"errors"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/cordonhq/cordon/activities"
	"github.com/cordonhq/cordon/simcloud"
)

// The seed environment (testdata/sim/seed.yaml).
const (
	seedFile       = "../testdata/sim/seed.yaml"
	account        = "123456789012"
	region         = "us-east-1"
	asg            = "web-asg"
	twoENI         = "i-04f2ae54915567738" // ip-10-0-1-10: primary ENI in web, second ENI in web-mgmt
	primaryENI     = "eni-0f6a6f0fb23c6f5da"
	mgmtENI        = "eni-0cec255404e4fb440"
	otherServer    = "i-085a2fa5fa92cd19c" // ip-10-0-2-17
	webSG          = "sg-0dba41ecccc3fc162"
	mgmtSG         = "sg-0bf33feff9243a8f5"
	seedIsolation  = "sg-06b40928b5b7a767c"
	seedTransition = "sg-06fb008f86bebb273"
	seedVPC        = "vpc-04c123b1612dd272d"
	quarantineSub  = "subnet-0dbc74254770f5890"
	webSubnet1a    = "subnet-0371c17149d439536"
	protectTag     = "cordon:protected"
)

var tgt = activities.Target{Account: account, Region: region}

// harness runs activities through Temporal's activity test environment
// against a simulated cloud.
type harness struct {
	t     *testing.T
	cloud *simcloud.Cloud
	acts  *activities.Activities
	env   *testsuite.TestActivityEnvironment

	mu         sync.Mutex
	heartbeats []string
}

func seedEnv(t *testing.T) *simcloud.Environment {
	t.Helper()
	env, err := simcloud.LoadEnvironment(seedFile)
	require.NoError(t, err)
	return env
}

func quietSuite() *testsuite.WorkflowTestSuite {
	s := &testsuite.WorkflowTestSuite{}
	s.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	return s
}

func newHarness(t *testing.T, env *simcloud.Environment, opts simcloud.Options) *harness {
	t.Helper()
	cloud, err := simcloud.New(env, opts)
	require.NoError(t, err)
	h := &harness{t: t, cloud: cloud}
	h.acts = &activities.Activities{Cloud: cloud, PollInterval: time.Millisecond}
	h.env = quietSuite().NewTestActivityEnvironment()
	h.env.RegisterActivity(h.acts)
	h.env.SetOnActivityHeartbeatListener(func(_ *activity.Info, d converter.EncodedValues) {
		var s string
		_ = d.Get(&s)
		h.mu.Lock()
		h.heartbeats = append(h.heartbeats, s)
		h.mu.Unlock()
	})
	return h
}

// seed builds the seed cloud with zero delays.
func seed(t *testing.T) *harness { return newHarness(t, seedEnv(t), simcloud.Options{}) }

func (h *harness) Heartbeats() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.heartbeats)
}

// exec runs an activity that returns only an error.
func (h *harness) exec(fn any, in any) error {
	h.t.Helper()
	_, err := h.env.ExecuteActivity(fn, in)
	return err
}

// run runs an activity and decodes its result.
func run[T any](h *harness, fn any, in any) (T, error) {
	h.t.Helper()
	var out T
	v, err := h.env.ExecuteActivity(fn, in)
	if err != nil {
		return out, err
	}
	require.NoError(h.t, v.Get(&out))
	return out, nil
}

func must[T any](h *harness, fn any, in any) T {
	h.t.Helper()
	out, err := run[T](h, fn, in)
	require.NoError(h.t, err)
	return out
}

func (h *harness) instance(id string) simcloud.InstanceInfo {
	h.t.Helper()
	in, ok := h.cloud.Instance(id)
	require.True(h.t, ok, "instance %s", id)
	return in
}

func (h *harness) group() simcloud.GroupInfo {
	h.t.Helper()
	g, ok := h.cloud.Group(asg)
	require.True(h.t, ok)
	return g
}

func (h *harness) tgARN() string {
	h.t.Helper()
	arn, ok := h.cloud.TargetGroupARN("web-tg")
	require.True(h.t, ok)
	return arn
}

func (h *harness) targetIDs() []string {
	var ids []string
	for _, tr := range h.cloud.Targets("web-tg") {
		ids = append(ids, tr.ID)
	}
	return ids
}

func (h *harness) countMutations(op string) int {
	n := 0
	for _, m := range h.cloud.Mutations() {
		if m == op {
			n++
		}
	}
	return n
}

func (h *harness) countCalls(op string) int {
	n := 0
	for _, m := range h.cloud.Calls() {
		if m == op {
			n++
		}
	}
	return n
}

func memberIDs(g simcloud.GroupInfo) []string {
	var ids []string
	for _, m := range g.Members {
		ids = append(ids, m.InstanceID)
	}
	sort.Strings(ids)
	return ids
}

func instanceIDs(list []simcloud.InstanceInfo) []string {
	var ids []string
	for _, in := range list {
		ids = append(ids, in.ID)
	}
	return ids
}

// requireAppError asserts err is a non-retryable application error of the type.
func requireAppError(t *testing.T, err error, appType string) {
	t.Helper()
	require.Error(t, err)
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "want an application error, got %T: %v", err, err)
	require.Equal(t, appType, appErr.Type(), "application error type (%v)", err)
	require.True(t, appErr.NonRetryable(), "want non-retryable: %v", err)
}

// requireRetryable asserts err is one Temporal retries.
func requireRetryable(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		require.False(t, appErr.NonRetryable(), "want a retryable error, got non-retryable %q: %v", appErr.Type(), err)
	}
}

// advanceAfterPolls moves the manual clock by d once the activity under test
// has made n calls of op, so the test sees it wait first. stop waits for the
// goroutine.
func advanceAfterPolls(h *harness, clock *simcloud.ManualClock, op string, n int, d time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
			if h.countCalls(op) >= n {
				clock.Advance(d)
				return
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// ---------------------------------------------------------------------------
// Preflight

func TestPreflightTwoENIInstance(t *testing.T) {
	h := seed(t)
	res := must[activities.PreflightResult](h, h.acts.Preflight,
		activities.PreflightInput{Target: tgt, InstanceID: twoENI, ProtectTag: protectTag})

	require.True(t, res.Found)
	require.False(t, res.Protected)
	require.Equal(t, "running", res.State)
	ps := res.PreState
	require.Equal(t, "running", ps.InstanceState)
	require.Equal(t, seedVPC, ps.VPCID)
	require.Equal(t, webSubnet1a, ps.SubnetID)
	require.Equal(t, "t3.medium", ps.InstanceType)
	require.False(t, ps.TerminationProtection)
	require.Equal(t, "web", ps.Tags["app"])

	// Both interfaces, with their own groups, in device order, as the cloud has them.
	require.Equal(t, []activities.ENIState{
		{ENIID: primaryENI, GroupIDs: []string{webSG}},
		{ENIID: mgmtENI, GroupIDs: []string{mgmtSG}},
	}, ps.ENIs)
	for i, e := range h.instance(twoENI).ENIs {
		require.Equal(t, e.ID, ps.ENIs[i].ENIID)
		require.Equal(t, e.GroupIDs, ps.ENIs[i].GroupIDs)
	}

	g := h.group()
	require.Equal(t, asg, ps.AutoScalingGroup)
	require.Equal(t, int32(5), ps.DesiredCapacity)
	require.Equal(t, g.Desired, ps.DesiredCapacity)
	require.False(t, ps.ProtectedFromScaleIn)
	require.Equal(t, []string{h.tgARN()}, ps.TargetGroupARNs)

	require.Equal(t, quarantineSub, res.QuarantineSubnetID, "found by its cordon:quarantine tag")
	require.Empty(t, res.Warnings)
	require.Equal(t, memberIDs(g), res.GroupMembers)
	require.Len(t, res.GroupMembers, 5)
	require.Contains(t, res.GroupMembers, twoENI)

	require.Empty(t, h.cloud.Mutations(), "preflight changes nothing")
}

func TestPreflightInstanceGone(t *testing.T) {
	h := seed(t)
	// A terminated instance stays visible to DescribeInstances for a while.
	_, err := h.cloud.TerminateInstances(t.Context(), &ec2.TerminateInstancesInput{InstanceIds: []string{otherServer}})
	require.NoError(t, err)
	require.Equal(t, "terminated", h.instance(otherServer).State)

	for _, tc := range []struct{ name, id string }{
		{"unknown well-formed ID", "i-0123456789abcdef0"},
		{"malformed ID", "web-server-1"},
		{"terminated", otherServer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := run[activities.PreflightResult](h, h.acts.Preflight,
				activities.PreflightInput{Target: tgt, InstanceID: tc.id, ProtectTag: protectTag})
			require.NoError(t, err, "a gone instance is an outcome, not an error")
			require.False(t, res.Found)
			require.False(t, res.Protected)
		})
	}
}

func TestPreflightProtectedByTag(t *testing.T) {
	env := seedEnv(t)
	for i := range env.Instances {
		switch env.Instances[i].ID {
		case twoENI:
			env.Instances[i].Tags[protectTag] = "true"
		case otherServer:
			env.Instances[i].Tags[protectTag] = "false" // explicitly not protected
		}
	}
	h := newHarness(t, env, simcloud.Options{})

	res := must[activities.PreflightResult](h, h.acts.Preflight, activities.PreflightInput{Target: tgt, InstanceID: twoENI, ProtectTag: protectTag})
	require.True(t, res.Found)
	require.True(t, res.Protected)
	require.Equal(t, "tag "+protectTag, res.ProtectedBy)

	res = must[activities.PreflightResult](h, h.acts.Preflight, activities.PreflightInput{Target: tgt, InstanceID: otherServer, ProtectTag: protectTag})
	require.True(t, res.Found)
	require.False(t, res.Protected, "cordon:protected=false does not protect")

	require.Empty(t, h.cloud.Mutations())
}

// The worker's instance allowlist protects an instance without any tag.
func TestPreflightProtectedByAllowlist(t *testing.T) {
	h := seed(t)
	h.acts.ProtectedInstances = map[string]bool{otherServer: true}
	res := must[activities.PreflightResult](h, h.acts.Preflight, activities.PreflightInput{Target: tgt, InstanceID: otherServer, ProtectTag: protectTag})
	require.True(t, res.Found)
	require.True(t, res.Protected)
	require.Contains(t, res.ProtectedBy, "allowlist")

	res = must[activities.PreflightResult](h, h.acts.Preflight, activities.PreflightInput{Target: tgt, InstanceID: twoENI, ProtectTag: protectTag})
	require.False(t, res.Protected, "an instance not on the list")
}

// bareEnv is a VPC with an instance and nothing of Cordon's: no isolation
// groups, no quarantine subnet, no Auto Scaling group.
const bareEnv = `
account: "123456789012"
region: us-east-1
vpcs:
  - id: vpc-0b1e2a3d4c5f60718
    name: bare-vpc
    cidr: 10.20.0.0/16
subnets:
  - id: subnet-0b1e2a3d4c5f60718
    name: bare-a
    vpc: bare-vpc
    cidr: 10.20.1.0/24
    az: us-east-1a
securityGroups:
  - id: sg-0b1e2a3d4c5f60718
    name: app
    vpc: bare-vpc
    description: app servers
    ingress:
      - {protocol: tcp, ports: "443", cidr: 0.0.0.0/0}
    egress:
      - {protocol: all, cidr: 0.0.0.0/0}
images:
  - id: ami-0b1e2a3d4c5f60718
    name: base
instances:
  - id: i-0b1e2a3d4c5f60718
    type: t3.micro
    image: ami-0b1e2a3d4c5f60718
    subnet: bare-a
    privateIP: 10.20.1.10
    securityGroups: [app]
`

const (
	bareVPC      = "vpc-0b1e2a3d4c5f60718"
	bareInstance = "i-0b1e2a3d4c5f60718"
)

func bare(t *testing.T) *harness {
	t.Helper()
	env, err := simcloud.ParseEnvironment([]byte(bareEnv))
	require.NoError(t, err)
	return newHarness(t, env, simcloud.Options{})
}

func TestPreflightWithoutQuarantineSubnetOrGroup(t *testing.T) {
	h := bare(t)
	res := must[activities.PreflightResult](h, h.acts.Preflight, activities.PreflightInput{Target: tgt, InstanceID: bareInstance, ProtectTag: protectTag})
	require.True(t, res.Found)
	require.Empty(t, res.QuarantineSubnetID)
	require.Len(t, res.Warnings, 1)
	require.Contains(t, res.Warnings[0], "no quarantine subnet")
	require.Empty(t, res.PreState.AutoScalingGroup)
	require.Empty(t, res.PreState.TargetGroupARNs)
	require.Empty(t, res.GroupMembers)
}

// ---------------------------------------------------------------------------
// Isolation groups

func TestEnsureIsolationGroupsFindsSeedGroups(t *testing.T) {
	h := seed(t)
	in := activities.IsolationGroupsInput{Target: tgt, VPCID: seedVPC}
	first := must[activities.IsolationGroupsResult](h, h.acts.EnsureIsolationGroups, in)
	require.Equal(t, seedIsolation, first.IsolationGroupID)
	require.Equal(t, seedTransition, first.TransitionGroupID)
	iso, _ := h.cloud.SecurityGroup(activities.IsolationGroupName)
	tr, _ := h.cloud.SecurityGroup(activities.TransitionGroupName)
	require.Equal(t, iso.ID, first.IsolationGroupID)
	require.Equal(t, tr.ID, first.TransitionGroupID)

	second := must[activities.IsolationGroupsResult](h, h.acts.EnsureIsolationGroups, in)
	require.Equal(t, first, second)
	require.Empty(t, h.cloud.Mutations(), "existing groups: no group created, no rule changed")
}

func vpcGroups(t *testing.T, h *harness, vpc string) []string {
	t.Helper()
	out, err := h.cloud.DescribeSecurityGroups(t.Context(), &ec2.DescribeSecurityGroupsInput{})
	require.NoError(t, err)
	var ids []string
	for _, g := range out.SecurityGroups {
		if aws.ToString(g.VpcId) == vpc {
			ids = append(ids, aws.ToString(g.GroupId))
		}
	}
	return ids
}

// requireIsolationRules checks the two groups do what their names say.
func requireIsolationRules(t *testing.T, h *harness, res activities.IsolationGroupsResult, vpc string) {
	t.Helper()
	iso, ok := h.cloud.SecurityGroup(res.IsolationGroupID)
	require.True(t, ok)
	require.Equal(t, activities.IsolationGroupName, iso.Name)
	require.Equal(t, vpc, iso.VPCID)
	require.Empty(t, iso.Ingress, "isolation group: no inbound rule")
	require.Empty(t, iso.Egress, "isolation group: no outbound rule (the default allow-all egress must be gone)")

	tr, ok := h.cloud.SecurityGroup(res.TransitionGroupID)
	require.True(t, ok)
	require.Equal(t, activities.TransitionGroupName, tr.Name)
	require.Equal(t, vpc, tr.VPCID)
	peers := func(rules []simcloud.RuleInfo) []string {
		var out []string
		for _, r := range rules {
			require.Equal(t, "-1", r.Protocol, "all protocols: %+v", r)
			out = append(out, r.CIDR)
		}
		sort.Strings(out)
		return out
	}
	require.Equal(t, []string{"0.0.0.0/0", "::/0"}, peers(tr.Ingress), "transition group: all traffic in")
	require.Equal(t, []string{"0.0.0.0/0", "::/0"}, peers(tr.Egress), "transition group: all traffic out")
}

// Groups of Cordon's names that someone else made or edited are set right,
// not trusted: an isolation group that still lets SSH in, or a web port, or
// traffic from another group, would leave the server reachable; a transition
// group without the IPv6 rules would leave IPv6 flows tracked, so the
// second swap would not cut them.
func TestEnsureIsolationGroupsFixesFoundGroups(t *testing.T) {
	h := bare(t)
	ctx := t.Context()
	mk := func(name string) string {
		out, err := h.cloud.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String(name),
			Description: aws.String("made by hand"), VpcId: aws.String(bareVPC)})
		require.NoError(t, err)
		return aws.ToString(out.GroupId)
	}
	iso, tr := mk(activities.IsolationGroupName), mk(activities.TransitionGroupName)
	_, err := h.cloud.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(iso), IpPermissions: []ec2types.IpPermission{
		{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}},
		{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(443), ToPort: aws.Int32(443), Ipv6Ranges: []ec2types.Ipv6Range{{CidrIpv6: aws.String("::/0")}}},
		{IpProtocol: aws.String("-1"), UserIdGroupPairs: []ec2types.UserIdGroupPair{{GroupId: aws.String(tr)}}},
	}})
	require.NoError(t, err)
	_, err = h.cloud.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(tr), IpPermissions: []ec2types.IpPermission{
		{IpProtocol: aws.String("-1"), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}},
	}})
	require.NoError(t, err)
	h.cloud.ResetCalls()

	res := must[activities.IsolationGroupsResult](h, h.acts.EnsureIsolationGroups, activities.IsolationGroupsInput{Target: tgt, VPCID: bareVPC})
	require.Equal(t, activities.IsolationGroupsResult{TransitionGroupID: tr, IsolationGroupID: iso}, res, "the found groups are used")
	requireIsolationRules(t, h, res, bareVPC)
	require.ElementsMatch(t, []string{"RevokeSecurityGroupIngress", "RevokeSecurityGroupEgress", "AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress"}, h.cloud.Mutations())
}

func TestEnsureIsolationGroupsCreatesMissingGroups(t *testing.T) {
	h := bare(t)
	before := vpcGroups(t, h, bareVPC)
	in := activities.IsolationGroupsInput{Target: tgt, VPCID: bareVPC}

	first := must[activities.IsolationGroupsResult](h, h.acts.EnsureIsolationGroups, in)
	require.NotEmpty(t, first.IsolationGroupID)
	require.NotEmpty(t, first.TransitionGroupID)
	require.NotEqual(t, first.IsolationGroupID, first.TransitionGroupID)
	require.Len(t, vpcGroups(t, h, bareVPC), len(before)+2)
	requireIsolationRules(t, h, first, bareVPC)
	iso, _ := h.cloud.SecurityGroup(first.IsolationGroupID)
	require.Equal(t, "true", iso.Tags["cordon:managed"])

	h.cloud.ResetCalls()
	second := must[activities.IsolationGroupsResult](h, h.acts.EnsureIsolationGroups, in)
	require.Equal(t, first, second)
	require.Len(t, vpcGroups(t, h, bareVPC), len(before)+2, "no new group on the second run")
	require.Empty(t, h.cloud.Mutations(), "second run changes nothing")
	requireIsolationRules(t, h, second, bareVPC)
}

// A retry after the group was created but its rules were not set (throttled
// half-way) must still end with the rules right: a "cordon-isolation" group
// that still allows all egress would not isolate anything.
func TestEnsureIsolationGroupsRetryAfterPartialFailure(t *testing.T) {
	for _, op := range []string{"RevokeSecurityGroupEgress", "AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress"} {
		t.Run(op, func(t *testing.T) {
			h := bare(t)
			before := vpcGroups(t, h, bareVPC)
			in := activities.IsolationGroupsInput{Target: tgt, VPCID: bareVPC}
			h.cloud.InjectFault(op, simcloud.APIError("RequestLimitExceeded", "Request limit exceeded."), 1)

			_, err := run[activities.IsolationGroupsResult](h, h.acts.EnsureIsolationGroups, in)
			requireRetryable(t, err)

			res := must[activities.IsolationGroupsResult](h, h.acts.EnsureIsolationGroups, in)
			require.Len(t, vpcGroups(t, h, bareVPC), len(before)+2, "the retry reuses the group it created")
			requireIsolationRules(t, h, res, bareVPC)
		})
	}
}

// ---------------------------------------------------------------------------
// Isolation steps

func TestDetachFromGroupTwice(t *testing.T) {
	h := seed(t)
	before := h.cloud.Instances()
	in := activities.InstanceGroupInput{Target: tgt, InstanceID: twoENI, Group: asg}

	require.NoError(t, h.exec(h.acts.DetachFromGroup, in))
	require.NoError(t, h.exec(h.acts.DetachFromGroup, in))

	require.Equal(t, 1, h.countMutations("DetachInstances"), "the retry sees the instance is no longer a member")
	inst := h.instance(twoENI)
	require.Equal(t, "running", inst.State, "detached, not terminated")
	require.Empty(t, inst.AutoScalingGroup)

	g := h.group()
	require.Equal(t, int32(5), g.Desired, "desired capacity not decremented")
	require.NotContains(t, memberIDs(g), twoENI)
	require.Len(t, g.InService(), 5, "the group healed with a replacement")

	after := h.cloud.Instances()
	require.Len(t, after, len(before)+1, "exactly one replacement launched")
	replacement := after[len(after)-1]
	require.NotContains(t, instanceIDs(before), replacement.ID)
	require.Equal(t, asg, replacement.AutoScalingGroup)
}

// On AWS a detached instance stays a member, Detaching, while the target
// group drains it (300 s by default). A retry of the activity in that window
// (lost response, worker restart) must not fail.
func TestDetachFromGroupRetryWhileDraining(t *testing.T) {
	clock := simcloud.NewManualClock(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC))
	h := newHarness(t, seedEnv(t), simcloud.Options{Now: clock.Now, Delays: simcloud.Delays{TargetDraining: 5 * time.Minute}})
	in := activities.InstanceGroupInput{Target: tgt, InstanceID: twoENI, Group: asg}

	require.NoError(t, h.exec(h.acts.DetachFromGroup, in))
	require.Equal(t, asg, h.instance(twoENI).AutoScalingGroup, "still Detaching while draining")

	require.NoError(t, h.exec(h.acts.DetachFromGroup, in), "retry while Detaching")
	require.Equal(t, 1, h.countMutations("DetachInstances"))

	clock.Advance(5 * time.Minute)
	require.Empty(t, h.instance(twoENI).AutoScalingGroup)
	g := h.group()
	require.Equal(t, int32(5), g.Desired)
	require.Len(t, g.InService(), 5)
}

func TestDeregisterTargetsTwice(t *testing.T) {
	h := seed(t)
	arn := h.tgARN()
	require.Contains(t, h.targetIDs(), twoENI)
	others := len(h.targetIDs()) - 1
	in := activities.TargetsInput{Target: tgt, InstanceID: twoENI, TargetGroupARNs: []string{arn}}

	require.NoError(t, h.exec(h.acts.DeregisterTargets, in))
	require.NoError(t, h.exec(h.acts.DeregisterTargets, in))

	require.NotContains(t, h.targetIDs(), twoENI)
	require.Len(t, h.targetIDs(), others, "the other servers stay registered")
	require.Equal(t, 1, h.countMutations("DeregisterTargets"))
}

func TestSetENIGroupsPerENI(t *testing.T) {
	h := seed(t)
	iso := must[activities.IsolationGroupsResult](h, h.acts.EnsureIsolationGroups, activities.IsolationGroupsInput{Target: tgt, VPCID: seedVPC})
	pre := must[activities.PreflightResult](h, h.acts.Preflight, activities.PreflightInput{Target: tgt, InstanceID: twoENI, ProtectTag: protectTag})
	require.Len(t, pre.PreState.ENIs, 2)

	// Transition, then isolation, each ENI; every call twice (a retry).
	for _, e := range pre.PreState.ENIs {
		for _, g := range []string{iso.TransitionGroupID, iso.IsolationGroupID} {
			for range 2 {
				require.NoError(t, h.exec(h.acts.SetENIGroups, activities.ENIGroupsInput{Target: tgt, ENIID: e.ENIID, GroupIDs: []string{g}}))
			}
		}
	}
	inst := h.instance(twoENI)
	require.Len(t, inst.ENIs, 2)
	for _, e := range inst.ENIs {
		require.Equal(t, []string{iso.IsolationGroupID}, e.GroupIDs, "ENI %s", e.ID)
	}
	require.Equal(t, []string{iso.IsolationGroupID}, inst.GroupIDs)

	// Release restores each ENI's own groups.
	for _, e := range pre.PreState.ENIs {
		require.NoError(t, h.exec(h.acts.SetENIGroups, activities.ENIGroupsInput{Target: tgt, ENIID: e.ENIID, GroupIDs: e.GroupIDs}))
	}
	inst = h.instance(twoENI)
	require.Equal(t, []string{webSG}, inst.ENIs[0].GroupIDs)
	require.Equal(t, []string{mgmtSG}, inst.ENIs[1].GroupIDs)
}

func TestSetTerminationProtection(t *testing.T) {
	h := seed(t)
	on := activities.TerminationProtectionInput{Target: tgt, InstanceID: twoENI, Enabled: true}
	require.NoError(t, h.exec(h.acts.SetTerminationProtection, on))
	require.NoError(t, h.exec(h.acts.SetTerminationProtection, on))
	require.True(t, h.instance(twoENI).TerminationProtection)
	pre := must[activities.PreflightResult](h, h.acts.Preflight, activities.PreflightInput{Target: tgt, InstanceID: twoENI})
	require.True(t, pre.PreState.TerminationProtection, "preflight reads the flag back")

	off := activities.TerminationProtectionInput{Target: tgt, InstanceID: twoENI, Enabled: false}
	require.NoError(t, h.exec(h.acts.SetTerminationProtection, off))
	require.NoError(t, h.exec(h.acts.SetTerminationProtection, off))
	require.False(t, h.instance(twoENI).TerminationProtection)
}

func TestTagAndUntagResources(t *testing.T) {
	h := seed(t)
	tags := map[string]string{"cordon:incident": "quarantine/123456789012/us-east-1/" + twoENI, "cordon:state": "isolated"}
	in := activities.TagsInput{Target: tgt, ResourceIDs: []string{twoENI}, Tags: tags}
	require.NoError(t, h.exec(h.acts.TagResources, in))
	require.NoError(t, h.exec(h.acts.TagResources, in))
	got := h.instance(twoENI).Tags
	for k, v := range tags {
		require.Equal(t, v, got[k], k)
	}
	require.Equal(t, "web", got["app"], "other tags kept")

	// CreateTags overwrites: a state change is one more call, not a second tag.
	require.NoError(t, h.exec(h.acts.TagResources, activities.TagsInput{Target: tgt, ResourceIDs: []string{twoENI}, Tags: map[string]string{"cordon:state": "imaging"}}))
	require.Equal(t, "imaging", h.instance(twoENI).Tags["cordon:state"])

	// Untag removes the keys whatever their current values.
	require.NoError(t, h.exec(h.acts.UntagResources, in))
	require.NoError(t, h.exec(h.acts.UntagResources, in))
	got = h.instance(twoENI).Tags
	require.NotContains(t, got, "cordon:incident")
	require.NotContains(t, got, "cordon:state")
	require.Equal(t, "web", got["app"], "untag removes only the incident's keys")
}

// ---------------------------------------------------------------------------
// Evidence

func imagesNamed(h *harness, name string) []simcloud.ImageInfo {
	var out []simcloud.ImageInfo
	for _, im := range h.cloud.Images() {
		if im.Name == name {
			out = append(out, im)
		}
	}
	return out
}

func createImage(t *testing.T, h *harness, name string) string {
	t.Helper()
	res := must[activities.CreateImageResult](h, h.acts.CreateImage, activities.CreateImageInput{
		Target: tgt, InstanceID: twoENI, Name: name, Tags: map[string]string{"cordon:incident": "inc-1"},
	})
	require.NotEmpty(t, res.ImageID)
	return res.ImageID
}

func TestCreateImageTwiceSameName(t *testing.T) {
	h := seed(t)
	const name = "cordon-i-04f2ae54915567738-20240501T120000Z"
	first := createImage(t, h, name)
	second := createImage(t, h, name)
	require.Equal(t, first, second)
	require.Len(t, imagesNamed(h, name), 1, "one image for one name")
	require.Equal(t, 1, h.countMutations("CreateImage"))

	im, ok := h.cloud.Image(first)
	require.True(t, ok)
	require.True(t, im.NoReboot, "CreateImage with NoReboot: memory and processes survive")
	require.Equal(t, twoENI, im.SourceInstanceID)
	require.Equal(t, "inc-1", im.Tags["cordon:incident"])
	require.Len(t, im.SnapshotIDs, 2, "one snapshot per volume")
	for _, id := range im.SnapshotIDs {
		s, ok := h.cloud.Snapshot(id)
		require.True(t, ok)
		require.Equal(t, "inc-1", s.Tags["cordon:incident"], "snapshots tagged too")
	}
	inst := h.instance(twoENI)
	require.Zero(t, inst.Reboots)
	require.Equal(t, "running", inst.State)
}

func TestWaitImageAvailableHeartbeatsWhilePending(t *testing.T) {
	clock := simcloud.NewManualClock(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC))
	h := newHarness(t, seedEnv(t), simcloud.Options{Now: clock.Now, Delays: simcloud.Delays{ImageAvailable: 20 * time.Minute}})
	id := createImage(t, h, "cordon-pending-image")
	im, _ := h.cloud.Image(id)
	require.Equal(t, "pending", im.State)

	h.cloud.ResetCalls()
	stop := advanceAfterPolls(h, clock, "DescribeImages", 3, 20*time.Minute)
	res, err := run[activities.ImageResult](h, h.acts.WaitImageAvailable, activities.ImageInput{Target: tgt, ImageID: id})
	stop()
	require.NoError(t, err)

	require.Equal(t, "available", res.State)
	require.GreaterOrEqual(t, h.countCalls("DescribeImages"), 3, "it polled while pending")
	im, _ = h.cloud.Image(id)
	require.Equal(t, "available", im.State)
	want := slices.Clone(im.SnapshotIDs)
	sort.Strings(want)
	require.Equal(t, want, res.SnapshotIDs)
	hb := h.Heartbeats()
	require.NotEmpty(t, hb, "heartbeats while waiting")
	require.Equal(t, "pending", hb[0])
}

func TestLaunchQuarantineCopyTwiceSameToken(t *testing.T) {
	env := seedEnv(t)
	for i := range env.Subnets {
		if env.Subnets[i].ID == quarantineSub {
			env.Subnets[i].MapPublicIP = true // the copy must not get one anyway
		}
	}
	h := newHarness(t, env, simcloud.Options{})
	imageID := createImage(t, h, "cordon-copy-source")
	iso := must[activities.IsolationGroupsResult](h, h.acts.EnsureIsolationGroups, activities.IsolationGroupsInput{Target: tgt, VPCID: seedVPC})
	before := len(h.cloud.Instances())

	in := activities.LaunchCopyInput{
		Target: tgt, ImageID: imageID, SubnetID: quarantineSub, GroupID: iso.IsolationGroupID,
		InstanceType: "t3.medium", ClientToken: "cordon-quarantine-copy-0123456789abcdef",
		Tags: map[string]string{"cordon:quarantine": "true", "cordon:source": twoENI},
	}
	first := must[activities.LaunchCopyResult](h, h.acts.LaunchQuarantineCopy, in)
	second := must[activities.LaunchCopyResult](h, h.acts.LaunchQuarantineCopy, in)
	require.Equal(t, first.InstanceID, second.InstanceID, "same client token, same instance")
	require.Len(t, h.cloud.Instances(), before+1, "one copy")

	cp := h.instance(first.InstanceID)
	require.Equal(t, imageID, cp.ImageID)
	require.Equal(t, quarantineSub, cp.SubnetID)
	require.Equal(t, []string{iso.IsolationGroupID}, cp.GroupIDs, "only the isolation group")
	require.Empty(t, cp.IAMInstanceProfile, "no instance profile: no credentials")
	require.Empty(t, cp.PublicIP, "no public address, although the subnet maps one")
	require.Equal(t, "t3.medium", cp.Type)
	require.Equal(t, "true", cp.Tags["cordon:quarantine"])
	require.Empty(t, cp.AutoScalingGroup)
	require.Len(t, cp.ENIs, 1)
}

func TestLaunchQuarantineCopyWithoutSubnet(t *testing.T) {
	h := seed(t)
	_, err := run[activities.LaunchCopyResult](h, h.acts.LaunchQuarantineCopy, activities.LaunchCopyInput{
		Target: tgt, ImageID: "ami-0abcdef1234567890", GroupID: seedIsolation, InstanceType: "t3.medium", ClientToken: "x",
	})
	requireAppError(t, err, activities.ErrConfig)
	require.Zero(t, h.countMutations("RunInstances"))
}

func TestTerminateInstance(t *testing.T) {
	h := seed(t)
	in := activities.TerminateInput{Target: tgt, InstanceID: twoENI}
	require.NoError(t, h.exec(h.acts.SetTerminationProtection, activities.TerminationProtectionInput{Target: tgt, InstanceID: twoENI, Enabled: true}))

	err := h.exec(h.acts.TerminateInstance, in)
	requireAppError(t, err, activities.ErrNotPermitted)
	require.Equal(t, "running", h.instance(twoENI).State, "protection held")

	require.NoError(t, h.exec(h.acts.SetTerminationProtection, activities.TerminationProtectionInput{Target: tgt, InstanceID: twoENI, Enabled: false}))
	require.NoError(t, h.exec(h.acts.TerminateInstance, in))
	require.Equal(t, "terminated", h.instance(twoENI).State)
	require.NoError(t, h.exec(h.acts.TerminateInstance, in), "terminating a terminated instance is fine")
	require.NoError(t, h.exec(h.acts.TerminateInstance, activities.TerminateInput{Target: tgt, InstanceID: "i-0123456789abcdef0"}),
		"an instance gone long ago is fine")
}

func TestTerminateInstanceLiftsProtection(t *testing.T) {
	h := seed(t)
	require.NoError(t, h.exec(h.acts.SetTerminationProtection, activities.TerminationProtectionInput{Target: tgt, InstanceID: twoENI, Enabled: true}))
	in := activities.TerminateInput{Target: tgt, InstanceID: twoENI, LiftProtection: true}
	require.NoError(t, h.exec(h.acts.TerminateInstance, in))
	require.Equal(t, "terminated", h.instance(twoENI).State)
	before := len(h.cloud.Mutations())
	require.NoError(t, h.exec(h.acts.TerminateInstance, in), "a retry after success changes nothing")
	require.Equal(t, before, len(h.cloud.Mutations()), "no protection change on a terminated instance")
}

func TestWaitGroupHealedAfterDetach(t *testing.T) {
	clock := simcloud.NewManualClock(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC))
	h := newHarness(t, seedEnv(t), simcloud.Options{Now: clock.Now, Delays: simcloud.Delays{
		Replace: time.Minute, InstanceStart: 30 * time.Second, TargetHealthy: 20 * time.Second, TargetDraining: 10 * time.Minute,
	}})
	arn := h.tgARN()
	require.NoError(t, h.exec(h.acts.DetachFromGroup, activities.InstanceGroupInput{Target: tgt, InstanceID: twoENI, Group: asg}))
	g := h.group()
	require.Len(t, g.InService(), 4, "replacement not launched yet")

	h.cloud.ResetCalls()
	stop := advanceAfterPolls(h, clock, "DescribeAutoScalingGroups", 3, 5*time.Minute)
	res, err := run[activities.HealResult](h, h.acts.WaitGroupHealed, activities.HealInput{
		Target: tgt, Group: asg, Exclude: twoENI, TargetGroupARNs: []string{arn},
	})
	stop()
	require.NoError(t, err)

	require.Equal(t, int32(5), res.Desired)
	require.GreaterOrEqual(t, res.InService, res.Desired)
	require.NotContains(t, res.Members, twoENI, "the quarantined instance does not count")
	g = h.group()
	require.Contains(t, memberIDs(g), twoENI, "still Detaching while its target drains")
	require.Equal(t, slices.DeleteFunc(memberIDs(g), func(id string) bool { return id == twoENI }), res.Members)
	require.Len(t, g.InService(), 5)
	healthy := map[string]bool{}
	for _, tr := range h.cloud.Targets(arn) {
		healthy[tr.ID] = tr.State == "healthy"
	}
	for _, id := range res.Members {
		require.True(t, healthy[id], "member %s healthy in the target group", id)
	}
	hb := h.Heartbeats()
	require.NotEmpty(t, hb)
	require.Equal(t, "4/5 in service", hb[0])
}

func TestDeregisterImageKeepsSnapshots(t *testing.T) {
	h := seed(t)
	id := createImage(t, h, "cordon-cleanup-image")
	im, _ := h.cloud.Image(id)
	snaps := slices.Clone(im.SnapshotIDs)
	sort.Strings(snaps)
	require.Len(t, snaps, 2)

	in := activities.ImageInput{Target: tgt, ImageID: id}
	res := must[activities.DeregisterImageResult](h, h.acts.DeregisterImage, in)
	require.Equal(t, snaps, res.SnapshotIDs)
	_, err := run[activities.DeregisterImageResult](h, h.acts.DeregisterImage, in)
	require.NoError(t, err, "an image already gone is a success")

	_, ok := h.cloud.Image(id)
	require.False(t, ok, "deregistered")
	for _, s := range snaps {
		_, ok := h.cloud.Snapshot(s)
		require.True(t, ok, "snapshot %s kept as evidence", s)
	}
	require.Equal(t, 1, h.countMutations("DeregisterImage"))
	require.Zero(t, h.countMutations("DeleteSnapshot"))
}

func TestDeleteSnapshots(t *testing.T) {
	h := seed(t)
	id := createImage(t, h, "cordon-snapshots-image")
	im, _ := h.cloud.Image(id)
	in := activities.SnapshotsInput{Target: tgt, SnapshotIDs: im.SnapshotIDs}

	// While the image is registered its snapshots are in use: a permanent error, nothing deleted.
	err := h.exec(h.acts.DeleteSnapshots, in)
	requireAppError(t, err, activities.ErrWrongState)
	for _, s := range im.SnapshotIDs {
		_, ok := h.cloud.Snapshot(s)
		require.True(t, ok)
	}

	_ = must[activities.DeregisterImageResult](h, h.acts.DeregisterImage, activities.ImageInput{Target: tgt, ImageID: id})
	require.NoError(t, h.exec(h.acts.DeleteSnapshots, in))
	require.NoError(t, h.exec(h.acts.DeleteSnapshots, in), "snapshots already gone are a success")
	for _, s := range im.SnapshotIDs {
		_, ok := h.cloud.Snapshot(s)
		require.False(t, ok, "snapshot %s deleted", s)
	}
}

// ---------------------------------------------------------------------------
// Release

func TestAttachToGroupRestoresMembershipAndCapacity(t *testing.T) {
	h := seed(t)
	pre := must[activities.PreflightResult](h, h.acts.Preflight, activities.PreflightInput{Target: tgt, InstanceID: twoENI, ProtectTag: protectTag})
	require.NoError(t, h.exec(h.acts.DetachFromGroup, activities.InstanceGroupInput{Target: tgt, InstanceID: twoENI, Group: asg}))
	g := h.group()
	require.Len(t, g.InService(), 5)
	var replacement string
	for _, id := range memberIDs(g) {
		if !slices.Contains(pre.GroupMembers, id) {
			replacement = id
		}
	}
	require.NotEmpty(t, replacement)

	in := activities.AttachInput{Target: tgt, InstanceID: twoENI, Group: asg,
		Desired: pre.PreState.DesiredCapacity, ProtectedFromScaleIn: pre.PreState.ProtectedFromScaleIn}
	require.NoError(t, h.exec(h.acts.AttachToGroup, in))
	require.NoError(t, h.exec(h.acts.AttachToGroup, in), "a retry is harmless")
	require.Equal(t, 1, h.countMutations("AttachInstances"))

	g = h.group()
	require.Equal(t, pre.PreState.DesiredCapacity, g.Desired, "back at the recorded desired capacity")
	require.Len(t, g.InService(), int(pre.PreState.DesiredCapacity))
	require.Contains(t, g.InService(), twoENI, "the released instance is back in service")
	for _, m := range g.Members {
		if m.InstanceID == twoENI {
			require.Equal(t, pre.PreState.ProtectedFromScaleIn, m.ProtectedFromScaleIn, "recorded scale-in protection restored")
		}
	}
	inst := h.instance(twoENI)
	require.Equal(t, "running", inst.State, "the released instance was not the one scaled in")
	require.Equal(t, asg, inst.AutoScalingGroup)
	require.NotEqual(t, "running", h.instance(replacement).State, "the replacement was scaled in instead")
	require.Contains(t, h.targetIDs(), twoENI, "registered with the group's target group again")
}

// ---------------------------------------------------------------------------
// Faults

func TestCreateImageThrottledIsRetryable(t *testing.T) {
	h := seed(t)
	h.cloud.InjectFault("CreateImage", simcloud.APIError("RequestLimitExceeded", "Request limit exceeded."), 1)
	in := activities.CreateImageInput{Target: tgt, InstanceID: twoENI, Name: "cordon-throttled"}

	_, err := run[activities.CreateImageResult](h, h.acts.CreateImage, in)
	requireRetryable(t, err)
	require.Contains(t, err.Error(), "RequestLimitExceeded")
	require.Empty(t, imagesNamed(h, "cordon-throttled"))

	// Temporal's retry then succeeds, with one image.
	res := must[activities.CreateImageResult](h, h.acts.CreateImage, in)
	require.Len(t, imagesNamed(h, "cordon-throttled"), 1)
	require.Equal(t, res.ImageID, imagesNamed(h, "cordon-throttled")[0].ID)
}

func TestCreateImageInvalidParameterIsPermanent(t *testing.T) {
	h := seed(t)
	h.cloud.InjectFault("CreateImage", simcloud.APIError("InvalidParameterValue", "Value for parameter name is invalid."), 1)
	_, err := run[activities.CreateImageResult](h, h.acts.CreateImage, activities.CreateImageInput{Target: tgt, InstanceID: twoENI, Name: "cordon-bad"})
	requireAppError(t, err, activities.ErrInvalidRequest)
	require.True(t, strings.Contains(err.Error(), "InvalidParameterValue"), err.Error())
	require.Empty(t, imagesNamed(h, "cordon-bad"))
}
