package e2e

// The whole incident workflow on the embedded Temporal server against moto's
// server mode through the worker's real AWS provider (endpoint override,
// per-account STS role, short SDK retryer): the verified end state, the IAM
// policy in deploy/iam-policy.json against every AWS operation the workflow
// called, and many concurrent incidents under injected throttling. Start moto
// with eval "$(scripts/moto start)"; docs/moto.md lists where moto differs
// from AWS.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
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
	enums "go.temporal.io/api/enums/v1"

	"github.com/cordonhq/cordon/activities"
	"github.com/cordonhq/cordon/internal/awstest"
	"github.com/cordonhq/cordon/workflows"
)

// motoRig is one fixture account, the worker's provider on moto with call
// recording, and the embedded Temporal server with a worker.
type motoRig struct {
	f      *awstest.Fixture
	rec    *awstest.Recorder
	compat *awstest.MotoCompat
	h      *Harness
}

func newMotoRig(t *testing.T, opts awstest.Options, extra ...awstest.APIOption) *motoRig {
	t.Helper()
	awstest.Endpoint(t)
	f := awstest.Build(t, opts)
	r := &motoRig{f: f, rec: &awstest.Recorder{}, compat: &awstest.MotoCompat{}}
	p := awstest.Provider(t, append([]awstest.APIOption{r.rec.Option(), r.compat.Option()}, extra...), f.Account)
	r.h = NewWithCloud(t, p, &activities.Notifier{SNS: p.SNS(awstest.Region), TopicARN: f.TopicARN}, "")
	return r
}

// withLimits restarts the worker with these governor limits.
func (r *motoRig) withLimits(l workflows.GovernorLimits) {
	r.h.Worker.Stop()
	r.h.Limits = l
	r.h.StartWorker()
}

func (r *motoRig) open(t *testing.T, instanceID string, p workflows.Policy) string {
	t.Helper()
	in := workflows.QuarantineInput{Account: r.f.ID, Region: awstest.Region, InstanceID: instanceID,
		Evidence: workflows.Evidence{Source: "test", BadIP: "203.0.113.7", Rule: "moto"}, Policy: p}
	_, err := workflows.Open(context.Background(), r.h.Client, in)
	require.NoError(t, err)
	return workflows.IncidentID(in.Account, in.Region, in.InstanceID)
}

// requireContained checks, with Describe calls, the state a resolved
// incident leaves: original terminated; the copy running in the quarantine
// subnet with only the isolation group, no profile, no public address;
// image deregistered; snapshots kept (or deleted by policy).
func (r *motoRig) requireContained(t *testing.T, st workflows.Status, snapshotsDeleted bool) {
	t.Helper()
	f := r.f
	require.Equal(t, workflows.PhaseResolved, st.Phase, "%s: %s", st.IncidentID, st.Reason)
	require.Equal(t, workflows.OutcomeResolved, st.Outcome, st.Reason)
	require.Equal(t, "terminated", string(f.Instance(t, st.InstanceID).State.Name), "original %s terminated", st.InstanceID)

	res := st.Resources
	cp := f.Instance(t, res.QuarantineInstanceID)
	require.Equal(t, "running", string(cp.State.Name), "copy %s", res.QuarantineInstanceID)
	require.Equal(t, f.QuarantineSubnetID, aws.ToString(cp.SubnetId), "copy in the quarantine subnet")
	require.Nil(t, cp.IamInstanceProfile, "copy without instance profile")
	require.Empty(t, aws.ToString(cp.PublicIpAddress), "copy without public address")
	iso := f.SecurityGroupsNamed(t, f.VPCID, activities.IsolationGroupName)
	require.Len(t, iso, 1, "one isolation group per VPC, however many incidents")
	isoID := aws.ToString(iso[0].GroupId)
	require.Equal(t, isoID, res.IsolationGroupID)
	require.Empty(t, iso[0].IpPermissions)
	require.Empty(t, iso[0].IpPermissionsEgress)
	require.Len(t, cp.NetworkInterfaces, 1)
	for eni, groups := range awstest.ENIGroups(cp) {
		require.Equal(t, []string{isoID}, groups, "copy ENI %s: only the isolation group", eni)
		require.Equal(t, []string{isoID}, f.ENIOwnGroups(t, f.VPCID, eni))
	}
	tags := map[string]string{}
	for _, tg := range cp.Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	require.Equal(t, st.IncidentID, tags["cordon:incident"])
	require.Equal(t, "quarantine-copy", tags["cordon:state"])
	require.Equal(t, st.InstanceID, tags["cordon:source-instance"])
	require.Len(t, f.InstancesTagged(t, "cordon:incident", st.IncidentID), 2, "the original and exactly one copy carry the incident tag")

	require.True(t, res.ImageDeregistered)
	_, registered := f.Image(t, res.ImageID)
	require.False(t, registered, "image %s deregistered", res.ImageID)
	require.NotEmpty(t, res.SnapshotIDs)
	require.Equal(t, snapshotsDeleted, res.SnapshotsDeleted)
	for _, s := range res.SnapshotIDs {
		require.Equal(t, !snapshotsDeleted, f.SnapshotExists(t, s), "snapshot %s kept=%v", s, !snapshotsDeleted)
	}
}

// TestMotoWorkflowEndToEnd runs four incidents at once in one account and
// checks the end state of each with Describe calls:
//   - a group member, default policy: resolved, snapshots kept;
//   - a group member with --snapshots delete: resolved, snapshots deleted;
//   - a group member with approval, rejected: released, pre-incident state restored;
//   - the standalone instance with two network interfaces (no group, so
//     Cordon waits for approval), approved: resolved.
//
// The account already has a cordon-isolation group, made by hand as the
// README allows, that still lets SSH in: Cordon uses it and strips its rules.
//
// Then the IAM policy in deploy/iam-policy.json must grant exactly the AWS
// operations the worker called.
func TestMotoWorkflowEndToEnd(t *testing.T) {
	r := newMotoRig(t, awstest.Options{GroupSize: 3})
	f := r.f
	ctx := context.Background()
	g0 := f.DescribeGroup(t)
	byHand, err := f.EC2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String(activities.IsolationGroupName),
		Description: aws.String("made by hand"), VpcId: aws.String(f.VPCID),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSecurityGroup,
			Tags: []ec2types.Tag{{Key: aws.String("cordon:managed"), Value: aws.String("true")}}}}})
	require.NoError(t, err)
	_, err = f.EC2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: byHand.GroupId, IpPermissions: []ec2types.IpPermission{
		{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}})
	require.NoError(t, err)

	keep := r.open(t, f.Members[0], workflows.Policy{})
	del := r.open(t, f.Members[1], workflows.Policy{Snapshots: workflows.SnapshotsDelete})
	rej := r.open(t, f.Members[2], workflows.Policy{Approval: workflows.ApprovalBeforeDestructive})
	two := r.open(t, f.TwoENI, workflows.Policy{})

	r.h.WaitPhase(rej, workflows.PhaseAwaitingApproval, 2*time.Minute)
	// Isolated while waiting: every ENI has only the isolation group, the
	// instance is out of the group and the target group, protected, tagged.
	iso := f.SecurityGroupsNamed(t, f.VPCID, activities.IsolationGroupName)
	require.Len(t, iso, 1)
	require.Equal(t, aws.ToString(byHand.GroupId), aws.ToString(iso[0].GroupId), "the group made by hand is used")
	require.Empty(t, iso[0].IpPermissions, "no inbound rule left in the isolation group")
	require.Empty(t, iso[0].IpPermissionsEgress, "no outbound rule left in the isolation group")
	for eni := range awstest.ENIGroups(f.Instance(t, f.Members[2])) {
		require.Equal(t, []string{aws.ToString(iso[0].GroupId)}, f.ENIOwnGroups(t, f.VPCID, eni), "isolated ENI %s", eni)
	}
	require.NotContains(t, awstest.GroupMembers(f.DescribeGroup(t)), f.Members[2])
	require.NotContains(t, f.TargetHealth(t, f.TargetGroupARN), f.Members[2])
	require.True(t, f.TerminationProtection(t, f.Members[2]))
	_, err = workflows.Decide(ctx, r.h.Client, rej, workflows.UpdateReject, workflows.Decision{By: "moto-test"})
	require.NoError(t, err)

	r.h.WaitPhase(two, workflows.PhaseAwaitingApproval, 2*time.Minute)
	for eni := range awstest.ENIGroups(f.Instance(t, f.TwoENI)) {
		require.Equal(t, []string{aws.ToString(iso[0].GroupId)}, f.ENIOwnGroups(t, f.VPCID, eni), "two-ENI instance: ENI %s isolated", eni)
	}
	_, err = workflows.Decide(ctx, r.h.Client, two, workflows.UpdateApprove, workflows.Decision{By: "moto-test"})
	require.NoError(t, err)

	final := r.h.WaitFinal([]string{keep, del, rej, two}, 3*time.Minute)
	r.requireContained(t, final[keep], false)
	r.requireContained(t, final[del], true)
	r.requireContained(t, final[two], false)
	require.Len(t, final[two].PreState.ENIs, 2, "both interfaces recorded")

	// Released: back as it was.
	st := final[rej]
	require.Equal(t, workflows.OutcomeReleased, st.Outcome, st.Reason)
	back := f.Instance(t, f.Members[2])
	require.Equal(t, "running", string(back.State.Name))
	for eni := range awstest.ENIGroups(back) {
		require.Equal(t, []string{f.WebGroupID}, f.ENIOwnGroups(t, f.VPCID, eni), "ENI %s restored", eni)
	}
	require.False(t, f.TerminationProtection(t, f.Members[2]))
	for _, tg := range back.Tags {
		require.False(t, strings.HasPrefix(aws.ToString(tg.Key), "cordon:"), "cordon tag %s removed", aws.ToString(tg.Key))
	}
	require.Contains(t, f.TargetHealth(t, f.TargetGroupARN), f.Members[2], "registered again")

	// The group: back at its capacity, every member InService and healthy.
	g := f.DescribeGroup(t)
	require.Equal(t, aws.ToInt32(g0.DesiredCapacity), aws.ToInt32(g.DesiredCapacity), "desired capacity unchanged")
	members := awstest.GroupMembers(g)
	require.Contains(t, members, f.Members[2], "the released instance is a member again")
	require.Len(t, members, 3)
	health := f.TargetHealth(t, f.TargetGroupARN)
	for id, state := range members {
		require.Equal(t, "InService", string(state), id)
		require.Equal(t, "healthy", string(health[id]), id)
	}
	for _, id := range []string{keep, del} {
		require.NotEmpty(t, final[id].Resources.ReplacementIDs, "%s: replacement recorded", id)
	}

	// Nothing twice: one CreateImage and one RunInstances per destroyed original.
	require.Len(t, okCalls(r.rec, "ec2:CreateImage"), 3)
	require.Len(t, okCalls(r.rec, "ec2:RunInstances"), 3)
	require.Len(t, f.InstancesTagged(t, "cordon:state", "quarantine-copy"), 3)

	t.Run("IAMPolicy", func(t *testing.T) { requirePolicyMatches(t, r.rec.Actions()) })
}

func okCalls(rec *awstest.Recorder, action string) []awstest.Call {
	var out []awstest.Call
	for _, c := range rec.Of(action) {
		if c.Err == nil {
			out = append(out, c)
		}
	}
	return out
}

// exemptActions need no IAM permission.
var exemptActions = map[string]string{
	"sts:GetCallerIdentity": "no permission is required to call it",
}

// requirePolicyMatches fails if deploy/iam-policy.json misses an operation
// that was called or grants one that never was.
func requirePolicyMatches(t *testing.T, called []string) {
	t.Helper()
	missing, unused := policyDiff(policyActions(t), called)
	t.Logf("the workflow called %d AWS operations: %s", len(called), strings.Join(called, ", "))
	require.Empty(t, missing, "deploy/iam-policy.json does not grant these operations the worker calls")
	require.Empty(t, unused, "deploy/iam-policy.json grants operations the worker never calls")
}

// policyDiff returns the called operations the policy does not grant and the
// granted ones never called, sorted.
func policyDiff(granted map[string]bool, called []string) (missing, unused []string) {
	calledSet := map[string]bool{}
	for _, a := range called {
		if _, ok := exemptActions[a]; ok {
			continue
		}
		calledSet[a] = true
		if !granted[a] {
			missing = append(missing, a)
		}
	}
	for a := range granted {
		if !calledSet[a] {
			unused = append(unused, a)
		}
	}
	sort.Strings(missing)
	sort.Strings(unused)
	return missing, unused
}

// TestIAMPolicyCheckCatchesDrift (no moto needed): the policy check reports
// an operation the policy lacks and one it grants in vain, and the policy
// keeps its conditions on the destructive and tagging operations.
func TestIAMPolicyCheckCatchesDrift(t *testing.T) {
	granted := policyActions(t)
	var called []string
	for a := range granted {
		if a != "ec2:RunInstances" {
			called = append(called, a)
		}
	}
	called = append(called, "ec2:StopInstances", "sts:GetCallerIdentity")
	missing, unused := policyDiff(granted, called)
	require.Equal(t, []string{"ec2:StopInstances"}, missing)
	require.Equal(t, []string{"ec2:RunInstances"}, unused)

	b, err := os.ReadFile(filepath.Join(Testdata, "..", "deploy", "iam-policy.json"))
	require.NoError(t, err)
	var doc struct {
		Statement []struct {
			Action    any
			Condition map[string]map[string]any
		}
	}
	require.NoError(t, json.Unmarshal(b, &doc))
	conditioned := map[string]string{}
	for _, s := range doc.Statement {
		var actions []string
		switch v := s.Action.(type) {
		case string:
			actions = []string{v}
		case []any:
			for _, a := range v {
				actions = append(actions, a.(string))
			}
		}
		for _, a := range actions {
			for op, kv := range s.Condition {
				for k := range kv {
					conditioned[a] = op + " " + k
				}
			}
		}
	}
	for _, a := range []string{"ec2:TerminateInstances", "ec2:DeregisterImage", "ec2:DeleteSnapshot"} {
		require.Equal(t, "StringLike ec2:ResourceTag/cordon:incident", conditioned[a], a)
	}
	require.Equal(t, "ForAllValues:StringLike aws:TagKeys", conditioned["ec2:CreateTags"])
	require.Equal(t, "ForAllValues:StringLike aws:TagKeys", conditioned["ec2:DeleteTags"])
	require.Equal(t, "StringEquals ec2:ResourceTag/cordon:managed", conditioned["ec2:RevokeSecurityGroupEgress"])
	require.Equal(t, "StringEquals ec2:ResourceTag/cordon:managed", conditioned["ec2:AuthorizeSecurityGroupIngress"])
	require.NotContains(t, granted, "iam:PassRole", "without it no instance profile can be given to the quarantine copy")
}

// policyActions reads every action the policy allows; wildcards are refused
// (least privilege names each operation).
func policyActions(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Testdata, "..", "deploy", "iam-policy.json"))
	require.NoError(t, err)
	var doc struct {
		Version   string
		Statement []struct {
			Sid      string
			Effect   string
			Action   json.RawMessage
			Resource json.RawMessage
		}
	}
	require.NoError(t, json.Unmarshal(b, &doc))
	require.Equal(t, "2012-10-17", doc.Version)
	out := map[string]bool{}
	for _, s := range doc.Statement {
		require.Equal(t, "Allow", s.Effect, s.Sid)
		var list []string
		if err := json.Unmarshal(s.Action, &list); err != nil {
			var one string
			require.NoError(t, json.Unmarshal(s.Action, &one), s.Sid)
			list = []string{one}
		}
		for _, a := range list {
			require.NotContains(t, a, "*", "%s: no wildcard actions", s.Sid)
			require.False(t, out[a], "%s: %s granted twice", s.Sid, a)
			out[a] = true
		}
	}
	return out
}

// TestMotoThrottledIncidents runs 20 concurrent incidents while 30% of all
// EC2 request attempts are refused with RequestLimitExceeded (HTTP 400, EC2's
// XML error body, through the SDK's own deserializer). Every incident
// resolves, nothing is created twice, and no call anywhere fails with the
// SDK's client-side "retry quota exceeded": the SDK makes two attempts
// without a retry quota and Temporal owns retrying. The governor's limits are
// set so they never bind.
func TestMotoThrottledIncidents(t *testing.T) {
	const n = 20
	th := awstest.NewThrottle(0, 42)
	r := newMotoRig(t, awstest.Options{GroupSize: n, NoStandalone: true}, th.Option())
	f := r.f
	// All 20 members of one group at once is exactly what the blast-radius
	// governor exists to stop; here it must not bind, this test is about
	// throttling.
	r.withLimits(workflows.GovernorLimits{MaxConcurrent: 1000, MinHealthy: 1, BreakerCount: 1000, BreakerWindow: time.Minute, RecheckInterval: time.Second})
	th.SetRate(0.3)

	var ids []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range f.Members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := r.open(t, m, workflows.Policy{})
			mu.Lock()
			ids = append(ids, id)
			mu.Unlock()
		}()
	}
	wg.Wait()
	final := r.h.WaitFinal(ids, 8*time.Minute)
	th.SetRate(0)

	injected, perAction := th.Injected()
	attempts, _ := th.Attempts()
	t.Logf("EC2 attempts %d, throttled %d (%.0f%%): %v", attempts, injected, 100*float64(injected)/float64(attempts), perAction)
	require.Greater(t, injected, 100, "throttling was injected many times")

	throttledCalls := 0
	for _, err := range r.rec.Errors() {
		require.NotContains(t, err.Error(), "retry quota exceeded", "the SDK's client-side retry quota must never fail a call")
		if activities.ErrorCode(err) == "RequestLimitExceeded" {
			throttledCalls++
			require.Contains(t, err.Error(), "exceeded maximum number of attempts, 2", "two SDK attempts, then Temporal")
		}
	}
	require.Greater(t, throttledCalls, 0, "some calls failed both SDK attempts and were retried by Temporal")
	activityRetries := 0
	for _, id := range ids {
		hist := r.h.Client.GetWorkflowHistory(context.Background(), id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for hist.HasNext() {
			ev, err := hist.Next()
			require.NoError(t, err)
			if a := ev.GetActivityTaskStartedEventAttributes(); a != nil {
				if a.GetAttempt() > 1 {
					activityRetries++
				}
				if lf := a.GetLastFailure(); lf != nil {
					require.NotContains(t, lf.GetMessage(), "retry quota exceeded")
				}
			}
			if a := ev.GetActivityTaskFailedEventAttributes(); a != nil {
				require.NotContains(t, a.GetFailure().GetMessage(), "retry quota exceeded")
			}
		}
	}
	t.Logf("calls that failed both SDK attempts: %d; activity attempts after the first: %d", throttledCalls, activityRetries)
	require.Greater(t, activityRetries, 0, "Temporal retried throttled activities")

	for _, id := range ids {
		r.requireContained(t, final[id], false)
	}
	require.Len(t, okCalls(r.rec, "ec2:CreateImage"), n, "one image per incident")
	require.Len(t, f.InstancesTagged(t, "cordon:state", "quarantine-copy"), n, "one copy per incident")
	g := f.DescribeGroup(t)
	require.EqualValues(t, n, aws.ToInt32(g.DesiredCapacity))
	inService := 0
	for _, m := range g.Instances {
		if m.LifecycleState == "InService" && !slices.Contains(f.Members, aws.ToString(m.InstanceId)) {
			inService++
		}
	}
	require.Equal(t, n, inService, "the group healed with %d replacements", n)
}

// TestMotoIncidentForUnknownAccount: an account without a role (and not the
// credentials' own) ends the incident at once with a clear reason instead of
// retrying.
func TestMotoIncidentForUnknownAccount(t *testing.T) {
	r := newMotoRig(t, awstest.Options{NoStandalone: true})
	in := workflows.QuarantineInput{Account: "999988887777", Region: awstest.Region, InstanceID: "i-0123456789abcdef0",
		Evidence: workflows.Evidence{Source: "test", BadIP: "203.0.113.7"}}
	_, err := workflows.Open(context.Background(), r.h.Client, in)
	require.NoError(t, err)
	id := workflows.IncidentID(in.Account, in.Region, in.InstanceID)
	st := r.h.WaitFinal([]string{id}, time.Minute)[id]
	require.Equal(t, workflows.PhaseNeedsAttention, st.Phase, st.Reason)
	require.Contains(t, st.Reason, "CORDON_ROLES=999988887777=arn:aws:iam::999988887777:role/cordon")
	require.Empty(t, r.rec.Of("ec2:DescribeInstances"), fmt.Sprint("no AWS call in an account Cordon may not enter"))
	_, err = r.f.EC2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: r.f.Members})
	require.NoError(t, err)
}
