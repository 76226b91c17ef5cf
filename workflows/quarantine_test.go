package workflows

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/cordonhq/cordon/activities"
)

const testInstance = "i-0144394dc883f9fe0"

// fakeActs stands in for the activities: it records every call in order and
// lets a test change what one step does.
type fakeActs struct {
	mu    sync.Mutex
	calls []string
	args  map[string][]any

	preflight activities.PreflightResult
	imageErr  error
	copyErr   error
	healErr   error
	imageWait time.Duration // simulated time the image stays pending
	grant     SlotGrant     // the governor's answer (default proceed)
	// accountGrant, when set, turns the account-wide governor on: it
	// answers first with this (its Governor field names it).
	accountGrant *SlotGrant
	terminateOK  bool
	// isolated, when set, is closed by the first SetENIGroups; the opened
	// alert waits for it (a slow channel) before it returns.
	isolated     chan struct{}
	isolatedOnce sync.Once
	// permissions is what the DryRun permission check answers.
	permissions activities.PermissionsResult
}

func newFake() *fakeActs {
	return &fakeActs{
		args: map[string][]any{},
		preflight: activities.PreflightResult{
			Found: true, State: "running",
			PreState: activities.PreState{
				InstanceState: "running", VPCID: "vpc-1", SubnetID: "subnet-web", InstanceType: "t3.micro",
				ENIs:             []activities.ENIState{{ENIID: "eni-a", GroupIDs: []string{"sg-web"}}, {ENIID: "eni-b", GroupIDs: []string{"sg-web", "sg-mgmt"}}},
				AutoScalingGroup: "web-asg", DesiredCapacity: 5, TargetGroupARNs: []string{"arn:tg/web"},
				Tags: map[string]string{"Name": "ip-10-0-3-24"},
			},
			QuarantineSubnetID: "subnet-q",
			GroupMembers:       []string{testInstance, "i-0000000000000000b"},
		},
	}
}

func (f *fakeActs) rec(name string, arg any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, name)
	f.args[name] = append(f.args[name], arg)
}

func (f *fakeActs) called(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == name {
			n++
		}
	}
	return n
}

func (f *fakeActs) index(name string) int { return slices.Index(f.calls, name) }

// mutating lists the activities that change the cloud.
var mutating = []string{"RequestSlot", "EnsureIsolationGroups", "DetachFromGroup", "DeregisterTargets", "RegisterTargets", "SetENIGroups",
	"SetTerminationProtection", "TagResources", "UntagResources", "CreateImage", "LaunchQuarantineCopy", "TerminateInstance",
	"DeregisterImage", "DeleteSnapshots", "AttachToGroup", "Notify"}

func (f *fakeActs) register(env *testsuite.TestWorkflowEnvironment) {
	env.RegisterActivity(&activities.Activities{})
	env.RegisterActivityWithOptions(func(_ context.Context, in AcquireInput) error {
		f.rec("RequestSlot", in)
		return nil
	}, activity.RegisterOptions{Name: ActivityRequestSlot})
	env.RegisterActivityWithOptions(func(_ context.Context, in AcquireInput) (AccountSlotResult, error) {
		if f.accountGrant == nil {
			return AccountSlotResult{}, nil // the worker runs no account-wide governor
		}
		f.rec("RequestAccountSlot", in)
		return AccountSlotResult{Enabled: true}, nil
	}, activity.RegisterOptions{Name: ActivityRequestAccountSlot})
	// The governors answer with signals; signals wait in the channel. A
	// repeated group answer first shows the incident tells the senders apart.
	env.RegisterDelayedCallback(func() {
		g := f.grant
		if g.Decision == "" {
			g = SlotGrant{Decision: SlotProceed}
		}
		if f.accountGrant != nil {
			g.Governor = GovernorID("123456789012", "us-east-1", "web-asg")
			env.SignalWorkflow(SignalSlotGrant, g)
			env.SignalWorkflow(SignalSlotGrant, *f.accountGrant)
		}
		env.SignalWorkflow(SignalSlotGrant, g)
	}, time.Millisecond)
	env.RegisterActivityWithOptions(func(_ context.Context, in AcquireInput) error {
		f.rec("ReleaseSlot", in)
		return nil
	}, activity.RegisterOptions{Name: ActivityReleaseSlot})
	env.OnActivity(a.Preflight, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.PreflightInput) (activities.PreflightResult, error) {
		f.rec("Preflight", in)
		return f.preflight, nil
	})
	env.OnActivity(a.Notify, mock.Anything, mock.Anything).Return(func(_ context.Context, al activities.Alert) (activities.NotifyResult, error) {
		f.rec("Notify", al)
		if al.Phase == "opened" && f.isolated != nil {
			select {
			case <-f.isolated:
				f.rec("OpenedAlertDone", nil)
			case <-time.After(10 * time.Second):
				f.rec("OpenedAlertBlockedContainment", nil)
			}
		}
		return activities.NotifyResult{}, nil
	})
	env.OnActivity(a.CheckPermissions, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.PermissionsInput) (activities.PermissionsResult, error) {
		f.rec("CheckPermissions", in)
		return f.permissions, nil
	})
	env.OnActivity(a.EnsureIsolationGroups, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.IsolationGroupsInput) (activities.IsolationGroupsResult, error) {
		f.rec("EnsureIsolationGroups", in)
		return activities.IsolationGroupsResult{TransitionGroupID: "sg-transition", IsolationGroupID: "sg-iso"}, nil
	})
	env.OnActivity(a.DetachFromGroup, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.InstanceGroupInput) error {
		f.rec("DetachFromGroup", in)
		return nil
	})
	env.OnActivity(a.DeregisterTargets, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.TargetsInput) error {
		f.rec("DeregisterTargets", in)
		return nil
	})
	env.OnActivity(a.RegisterTargets, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.TargetsInput) error {
		f.rec("RegisterTargets", in)
		return nil
	})
	env.OnActivity(a.SetENIGroups, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ENIGroupsInput) error {
		f.rec("SetENIGroups", in)
		if f.isolated != nil {
			f.isolatedOnce.Do(func() { close(f.isolated) })
		}
		return nil
	})
	env.OnActivity(a.SetTerminationProtection, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.TerminationProtectionInput) error {
		f.rec("SetTerminationProtection", in)
		return nil
	})
	env.OnActivity(a.TagResources, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.TagsInput) error {
		f.rec("TagResources", in)
		return nil
	})
	env.OnActivity(a.UntagResources, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.TagsInput) error {
		f.rec("UntagResources", in)
		return nil
	})
	env.OnActivity(a.CreateImage, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CreateImageInput) (activities.CreateImageResult, error) {
		f.rec("CreateImage", in)
		return activities.CreateImageResult{ImageID: "ami-evidence"}, nil
	})
	env.OnActivity(a.WaitImageAvailable, mock.Anything, mock.Anything).After(f.imageWait).Return(func(_ context.Context, in activities.ImageInput) (activities.ImageResult, error) {
		f.rec("WaitImageAvailable", in)
		if f.imageErr != nil {
			return activities.ImageResult{State: "failed"}, f.imageErr
		}
		return activities.ImageResult{State: "available", SnapshotIDs: []string{"snap-1", "snap-2"}}, nil
	})
	env.OnActivity(a.LaunchQuarantineCopy, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.LaunchCopyInput) (activities.LaunchCopyResult, error) {
		f.rec("LaunchQuarantineCopy", in)
		if f.copyErr != nil {
			return activities.LaunchCopyResult{}, f.copyErr
		}
		return activities.LaunchCopyResult{InstanceID: "i-0ccccccccccccccc1"}, nil
	})
	env.OnActivity(a.WaitInstanceRunning, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.InstanceInput) error {
		f.rec("WaitInstanceRunning", in)
		return nil
	})
	env.OnActivity(a.TerminateInstance, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.TerminateInput) error {
		f.rec("TerminateInstance", in)
		return nil
	})
	env.OnActivity(a.WaitGroupHealed, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.HealInput) (activities.HealResult, error) {
		f.rec("WaitGroupHealed", in)
		if f.healErr != nil {
			return activities.HealResult{InService: 4, Desired: 5}, f.healErr
		}
		return activities.HealResult{InService: 5, Desired: 5, Members: []string{"i-0000000000000000b", "i-0rrrrrrrrrrrrrrr1"}}, nil
	})
	env.OnActivity(a.DeregisterImage, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ImageInput) (activities.DeregisterImageResult, error) {
		f.rec("DeregisterImage", in)
		return activities.DeregisterImageResult{SnapshotIDs: []string{"snap-1", "snap-2"}}, nil
	})
	env.OnActivity(a.DeleteSnapshots, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.SnapshotsInput) error {
		f.rec("DeleteSnapshots", in)
		return nil
	})
	env.OnActivity(a.AttachToGroup, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.AttachInput) error {
		f.rec("AttachToGroup", in)
		return nil
	})
}

type QuarantineSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env  *testsuite.TestWorkflowEnvironment
	fake *fakeActs
}

func TestQuarantine(t *testing.T) { suite.Run(t, new(QuarantineSuite)) }

func (s *QuarantineSuite) SetupTest() {
	s.SetLogger(quietLogger{})
	s.env = s.NewTestWorkflowEnvironment()
	s.env.RegisterWorkflowWithOptions(Quarantine, workflow.RegisterOptions{Name: WorkflowName})
	s.fake = newFake()
}

func input(p Policy) QuarantineInput {
	return QuarantineInput{Account: "123456789012", Region: "us-east-1", InstanceID: testInstance,
		Evidence: Evidence{Source: "detector", BadIP: "85.239.243.155", Rule: "feodotracker", Time: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)},
		Policy:   p}
}

func (s *QuarantineSuite) run(in QuarantineInput) QuarantineResult {
	s.fake.register(s.env)
	s.env.ExecuteWorkflow(WorkflowName, in)
	s.Require().True(s.env.IsWorkflowCompleted())
	var res QuarantineResult
	if err := s.env.GetWorkflowError(); err != nil {
		return QuarantineResult{Outcome: "error: " + Outcome(err.Error())}
	}
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	return res
}

func (s *QuarantineSuite) stepOutcome(st Status, name string) StepOutcome {
	for _, x := range st.Steps {
		if x.Name == name {
			return x.Outcome
		}
	}
	return ""
}

func (s *QuarantineSuite) TestHappyPath() {
	res := s.run(input(Policy{}))
	f := s.fake
	s.Equal(PhaseResolved, res.Phase)
	s.Equal(OutcomeResolved, res.Outcome, res.Reason)

	// Runbook order: isolate before imaging; terminate only after image and copy.
	order := []string{"Preflight", "EnsureIsolationGroups", "DetachFromGroup", "DeregisterTargets", "SetENIGroups",
		"SetTerminationProtection", "TagResources", "CreateImage", "WaitImageAvailable", "LaunchQuarantineCopy",
		"WaitInstanceRunning", "TerminateInstance", "WaitGroupHealed", "DeregisterImage"}
	last := -1
	for _, name := range order {
		i := f.index(name)
		s.Greater(i, last, "%s out of order in %v", name, f.calls)
		last = i
	}
	// Two-step swap on each of the two ENIs: transition group, then isolation group.
	s.Equal(4, f.called("SetENIGroups"))
	swaps := f.args["SetENIGroups"]
	s.Equal([]string{"sg-transition"}, swaps[0].(activities.ENIGroupsInput).GroupIDs)
	s.Equal([]string{"sg-iso"}, swaps[1].(activities.ENIGroupsInput).GroupIDs)
	s.Equal("eni-b", swaps[3].(activities.ENIGroupsInput).ENIID)
	// Protection on during isolation, lifted by the termination itself.
	prot := f.args["SetTerminationProtection"]
	s.Len(prot, 1)
	s.True(prot[0].(activities.TerminationProtectionInput).Enabled)
	s.True(f.args["TerminateInstance"][0].(activities.TerminateInput).LiftProtection)
	// The copy goes to the quarantine subnet with only the isolation group and a client token.
	cp := f.args["LaunchQuarantineCopy"][0].(activities.LaunchCopyInput)
	s.Equal("subnet-q", cp.SubnetID)
	s.Equal("sg-iso", cp.GroupID)
	s.Equal("ami-evidence", cp.ImageID)
	s.NotEmpty(cp.ClientToken)
	// Snapshots kept by default.
	s.Zero(f.called("DeleteSnapshots"))
	st := res.Status
	s.Equal("ami-evidence", st.Resources.ImageID)
	s.True(st.Resources.ImageDeregistered)
	s.False(st.Resources.SnapshotsDeleted)
	s.Equal([]string{"snap-1", "snap-2"}, st.Resources.SnapshotIDs)
	s.Equal("i-0ccccccccccccccc1", st.Resources.QuarantineInstanceID)
	s.Equal([]string{"i-0rrrrrrrrrrrrrrr1"}, st.Resources.ReplacementIDs)
	s.True(st.Resources.OriginalTerminated)
	s.Equal("web-asg", st.Group)
	for _, step := range st.Steps {
		if step.Name == "snapshots" {
			s.Equal(StepSkipped, step.Outcome)
			s.Contains(step.Detail, "kept 2 snapshot(s)")
			continue
		}
		s.Equal(StepSucceeded, step.Outcome, step.Name)
		s.False(step.Ended.IsZero(), step.Name)
	}
	// Alerts: opened (light on) and resolved (light off).
	alerts := f.args["Notify"]
	s.Equal("opened", alerts[0].(activities.Alert).Phase)
	s.Equal("alarm", alerts[0].(activities.Alert).Light)
	s.Equal("resolved", alerts[len(alerts)-1].(activities.Alert).Phase)
	s.Equal("clear", alerts[len(alerts)-1].(activities.Alert).Light)
}

func (s *QuarantineSuite) TestSnapshotsDeletedByPolicy() {
	res := s.run(input(Policy{Snapshots: SnapshotsDelete}))
	s.Equal(OutcomeResolved, res.Outcome)
	s.Equal(1, s.fake.called("DeleteSnapshots"))
	s.Equal([]string{"snap-1", "snap-2"}, s.fake.args["DeleteSnapshots"][0].(activities.SnapshotsInput).SnapshotIDs)
	s.True(res.Status.Resources.SnapshotsDeleted)
}

func (s *QuarantineSuite) TestRelaunchOff() {
	off := false
	res := s.run(input(Policy{Relaunch: &off}))
	s.Equal(OutcomeResolved, res.Outcome)
	s.Zero(s.fake.called("LaunchQuarantineCopy"))
	s.Equal(1, s.fake.called("TerminateInstance"))
}

func (s *QuarantineSuite) noMutation() {
	for _, m := range mutating {
		if m == "Notify" {
			continue
		}
		s.Zero(s.fake.called(m), "unexpected %s in %v", m, s.fake.calls)
	}
}

func (s *QuarantineSuite) TestProtectedInstance() {
	s.fake.preflight.Protected = true
	res := s.run(input(Policy{}))
	s.Equal(PhaseSkipped, res.Phase)
	s.Equal(OutcomeProtected, res.Outcome)
	s.Contains(res.Reason, "cordon:protected")
	s.noMutation()
	s.Equal(1, s.fake.called("Notify"), "the operator hears that a protected instance was skipped")
}

// A slow alert channel (a rate-limited light) never delays containment: the
// opened alert runs while the incident isolates; the resolved alert still
// comes after it, so the light goes red before it clears.
func (s *QuarantineSuite) TestSlowAlertDoesNotDelayIsolation() {
	s.fake.isolated = make(chan struct{})
	res := s.run(input(Policy{}))
	s.Equal(OutcomeResolved, res.Outcome, res.Reason)
	s.Zero(s.fake.called("OpenedAlertBlockedContainment"), "isolation waited for the alert")
	s.Less(s.fake.index("SetENIGroups"), s.fake.index("OpenedAlertDone"))
	alerts := s.fake.args["Notify"]
	s.Equal("opened", alerts[0].(activities.Alert).Phase)
	s.Equal("resolved", alerts[len(alerts)-1].(activities.Alert).Phase)
	first := s.fake.index("Notify")
	second := first + 1 + slices.Index(s.fake.calls[first+1:], "Notify")
	s.Less(s.fake.index("OpenedAlertDone"), second, "the next alert waits for the opened one")
}

func (s *QuarantineSuite) TestAllowlistedInstance() {
	s.fake.preflight.Protected = true
	s.fake.preflight.ProtectedBy = "the worker's instance allowlist (--protect-instance)"
	res := s.run(input(Policy{}))
	s.Equal(OutcomeProtected, res.Outcome)
	s.Contains(res.Reason, "instance allowlist")
	s.noMutation()
	s.Equal(1, s.fake.called("Notify"))
}

func (s *QuarantineSuite) TestInstanceGone() {
	s.fake.preflight = activities.PreflightResult{Found: false, State: "terminated"}
	res := s.run(input(Policy{}))
	s.Equal(PhaseSkipped, res.Phase)
	s.Equal(OutcomeInstanceGone, res.Outcome)
	s.Contains(res.Reason, "terminated")
	s.noMutation()
}

func (s *QuarantineSuite) TestMalformedInstanceID() {
	in := input(Policy{})
	in.InstanceID = "web-1"
	res := s.run(in)
	s.Equal(PhaseNeedsAttention, res.Phase)
	s.Contains(res.Reason, "not an EC2 instance ID")
	s.Zero(s.fake.called("Preflight"))
}

func (s *QuarantineSuite) update(name string, delay time.Duration, wantErr bool) *updateResult {
	r := &updateResult{}
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(name, "upd-"+name, &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { r.rejected = err },
			OnAccept:   func() { r.accepted = true },
			OnComplete: func(v any, err error) { r.completeErr = err },
		}, Decision{By: "test"})
	}, delay)
	return r
}

type updateResult struct {
	accepted    bool
	rejected    error
	completeErr error
}

func (s *QuarantineSuite) TestApprovalApproved() {
	s.fake.imageWait = 0
	r := s.update(UpdateApprove, 10*time.Minute, false)
	res := s.run(input(Policy{Approval: ApprovalBeforeDestructive}))
	s.True(r.accepted, "approve accepted: %v", r.rejected)
	s.Equal(OutcomeResolved, res.Outcome)
	s.Equal(StepSucceeded, s.stepOutcome(res.Status, "approval"))
	// Nothing destructive happened before the approval.
	s.Greater(s.fake.index("CreateImage"), s.fake.index("TagResources"))
}

func (s *QuarantineSuite) TestApprovalRejectedReleases() {
	r := s.update(UpdateReject, 5*time.Minute, false)
	res := s.run(input(Policy{Approval: ApprovalBeforeDestructive}))
	s.True(r.accepted)
	s.Equal(PhaseReleased, res.Phase)
	s.Equal(OutcomeReleased, res.Outcome)
	s.Zero(s.fake.called("CreateImage"))
	s.Zero(s.fake.called("TerminateInstance"))
	// Restores the recorded state: original groups per ENI, protection as recorded, back into the group and targets.
	swaps := s.fake.args["SetENIGroups"]
	s.Equal([]string{"sg-web"}, swaps[4].(activities.ENIGroupsInput).GroupIDs)
	s.Equal([]string{"sg-web", "sg-mgmt"}, swaps[5].(activities.ENIGroupsInput).GroupIDs)
	prot := s.fake.args["SetTerminationProtection"]
	s.False(prot[len(prot)-1].(activities.TerminationProtectionInput).Enabled)
	att := s.fake.args["AttachToGroup"][0].(activities.AttachInput)
	s.Equal("web-asg", att.Group)
	s.Equal(int32(5), att.Desired)
	s.Equal(1, s.fake.called("RegisterTargets"))
	s.Equal(1, s.fake.called("UntagResources"))
}

func (s *QuarantineSuite) TestApprovalDeadlineHolds() {
	res := s.run(input(Policy{Approval: ApprovalBeforeDestructive, ApprovalTimeout: time.Hour}))
	s.Equal(PhaseNeedsAttention, res.Phase)
	s.Contains(res.Reason, "deadline")
	s.Zero(s.fake.called("CreateImage"))
	s.Zero(s.fake.called("AttachToGroup"), "containment is never undone automatically")
}

func (s *QuarantineSuite) TestApprovalDeadlineApproves() {
	res := s.run(input(Policy{Approval: ApprovalBeforeDestructive, ApprovalTimeout: time.Hour, OnDeadline: DeadlineApprove}))
	s.Equal(OutcomeResolved, res.Outcome)
	s.Equal(1, s.fake.called("TerminateInstance"))
}

func (s *QuarantineSuite) TestApproveRefusedWhenNotWaiting() {
	r := s.update(UpdateApprove, time.Second, true)
	s.fake.imageWait = time.Hour
	res := s.run(input(Policy{}))
	s.Error(r.rejected)
	s.Contains(r.rejected.Error(), "not waiting for approval")
	s.Equal(OutcomeResolved, res.Outcome)
}

func (s *QuarantineSuite) TestReleaseWhileImaging() {
	s.fake.imageWait = 45 * time.Minute // the image stays pending 45 minutes
	r := s.update(UpdateRelease, 10*time.Minute, false)
	res := s.run(input(Policy{}))
	s.True(r.accepted, "release accepted: %v", r.rejected)
	s.NoError(r.completeErr)
	s.Equal(OutcomeReleased, res.Outcome)
	s.Zero(s.fake.called("LaunchQuarantineCopy"))
	s.Zero(s.fake.called("TerminateInstance"))
	s.Equal(1, s.fake.called("AttachToGroup"))
	s.Contains(res.Reason, "ami-evidence kept")
}

func (s *QuarantineSuite) TestImageFailsNoTermination() {
	s.fake.imageErr = temporal.NewNonRetryableApplicationError("image ami-evidence is failed", activities.ErrWrongState, nil)
	res := s.run(input(Policy{}))
	s.Equal(PhaseNeedsAttention, res.Phase)
	s.Equal(OutcomeNeedsAttention, res.Outcome)
	s.Contains(res.Reason, "image ami-evidence kept")
	s.Contains(res.Reason, "isolated")
	s.Zero(s.fake.called("TerminateInstance"))
	s.Zero(s.fake.called("DeregisterImage"), "the image is evidence: kept")
	s.Zero(s.fake.called("AttachToGroup"), "containment is never undone automatically")
	alerts := s.fake.args["Notify"]
	s.Equal("needs-attention", alerts[len(alerts)-1].(activities.Alert).Phase)
	s.Equal(StepFailed, s.stepOutcome(res.Status, "image-available"))
}

func (s *QuarantineSuite) TestCopyFailsNoTermination() {
	s.fake.copyErr = temporal.NewNonRetryableApplicationError("no subnet", activities.ErrConfig, nil)
	res := s.run(input(Policy{}))
	s.Equal(PhaseNeedsAttention, res.Phase)
	s.Zero(s.fake.called("TerminateInstance"))
	s.Zero(s.fake.called("DeregisterImage"))
	s.Equal(StepFailed, s.stepOutcome(res.Status, "quarantine-copy"))
}

func (s *QuarantineSuite) TestGroupNeverHeals() {
	s.fake.healErr = temporal.NewApplicationError("timed out", activities.ErrTimeout)
	res := s.run(input(Policy{}))
	s.Equal(PhaseResolved, res.Phase)
	s.Equal(OutcomeResolvedWarn, res.Outcome)
	s.Contains(res.Reason, "did not heal")
	s.Equal(1, s.fake.called("DeregisterImage"), "cleanup still runs")
}

func (s *QuarantineSuite) TestRepeatedAlertsBecomeEvidence() {
	for i := range 3 {
		s.env.RegisterDelayedCallback(func() {
			s.env.SignalWorkflow(SignalEvidence, Evidence{Source: "elastalert", BadIP: "1.19.6.4", Ref: "msg-" + string(rune('a'+i))})
		}, time.Duration(i+1)*time.Minute)
	}
	s.fake.imageWait = time.Hour
	var mid Status
	s.env.RegisterDelayedCallback(func() {
		v, err := s.env.QueryWorkflow(QueryStatus)
		s.Require().NoError(err)
		s.Require().NoError(v.Get(&mid))
	}, 10*time.Minute)
	res := s.run(input(Policy{}))
	s.Equal(OutcomeResolved, res.Outcome)
	s.Equal(4, res.Status.EvidenceCount)
	s.Equal("85.239.243.155", res.Status.BadIP, "the first bad IP names the incident")
	s.Equal(PhaseImaging, mid.Phase)
	s.Equal(4, mid.EvidenceCount)
}

func (s *QuarantineSuite) TestCancellationCompensates() {
	s.fake.imageWait = 3 * time.Hour
	s.env.RegisterDelayedCallback(func() { s.env.CancelWorkflow() }, 30*time.Minute)
	s.fake.register(s.env)
	s.env.ExecuteWorkflow(WorkflowName, input(Policy{}))
	s.Require().True(s.env.IsWorkflowCompleted())
	err := s.env.GetWorkflowError()
	s.Require().Error(err)
	var canceled *temporal.CanceledError
	s.True(errors.As(err, &canceled), "%v", err)
	// Compensation ran on a disconnected context: tagged cancelled, alerted; nothing undone.
	tags := s.fake.args["TagResources"]
	s.Equal("cancelled", tags[len(tags)-1].(activities.TagsInput).Tags["cordon:state"])
	alerts := s.fake.args["Notify"]
	s.Contains(alerts[len(alerts)-1].(activities.Alert).Summary, "cancelled")
	s.Zero(s.fake.called("TerminateInstance"))
	s.Zero(s.fake.called("AttachToGroup"))
}

func (s *QuarantineSuite) TestDryRunMakesNoMutatingCall() {
	res := s.run(input(Policy{DryRun: true}))
	s.Equal(OutcomeDryRun, res.Outcome)
	for _, m := range mutating {
		s.Zero(s.fake.called(m), "dry run called %s", m)
	}
	var names []string
	for _, st := range res.Status.Steps {
		names = append(names, st.Name)
	}
	joined := strings.Join(names, ",")
	s.Contains(joined, "detach")
	s.Contains(joined, "isolate-eni-b")
	s.Contains(joined, "terminate")
	s.Equal(1, s.fake.called("CheckPermissions"), "the plan asks EC2 with DryRun")
	s.NotContains(res.Reason, "DENIED")
}

// A dry run says when the worker's credentials would be refused a call.
func (s *QuarantineSuite) TestDryRunReportsDeniedCalls() {
	s.fake.permissions = activities.PermissionsResult{Checks: []activities.PermissionCheck{
		{Call: "ec2:CreateTags", Result: "allowed"},
		{Call: "ec2:TerminateInstances", Result: "denied", Detail: "UnauthorizedOperation: grant it (see deploy/iam-policy.json)"},
	}}
	res := s.run(input(Policy{DryRun: true}))
	s.Equal(OutcomeDryRun, res.Outcome)
	s.Contains(res.Reason, "1 EC2 call(s) would be DENIED")
	last := res.Status.Steps[len(res.Status.Steps)-1]
	s.Equal("permissions", last.Name)
	s.Contains(last.Detail, "TerminateInstances denied (UnauthorizedOperation")
}

func (s *QuarantineSuite) TestNotInGroupWaitsForApproval() {
	s.fake.preflight.PreState.AutoScalingGroup = ""
	s.fake.preflight.PreState.TargetGroupARNs = nil
	res := s.run(input(Policy{ApprovalTimeout: time.Hour, OnDeadline: DeadlineApprove}))
	s.Equal(PhaseNeedsAttention, res.Phase, "a lone server is never terminated without a human")
	s.Zero(s.fake.called("DetachFromGroup"))
	s.Zero(s.fake.called("TerminateInstance"))
	s.Equal(1, s.fake.called("TagResources"), "isolated and tagged")
	s.NotEmpty(res.Status.Warnings)
}

func (s *QuarantineSuite) TestGovernorSlotAskedBeforeDetachAndReturned() {
	res := s.run(input(Policy{}))
	s.Equal(OutcomeResolved, res.Outcome)
	s.Less(s.fake.index("RequestSlot"), s.fake.index("DetachFromGroup"))
	s.Equal(1, s.fake.called("ReleaseSlot"))
	req := s.fake.args["RequestSlot"][0].(AcquireInput)
	s.Equal("web-asg", req.Group)
	s.Equal(testInstance, req.Request.InstanceID)
}

func (s *QuarantineSuite) TestBreakerHoldIsolatesThenWaitsForApproval() {
	s.fake.grant = SlotGrant{Decision: SlotHold, Reason: "breaker tripped for group web-asg"}
	res := s.run(input(Policy{ApprovalTimeout: time.Hour, OnDeadline: DeadlineApprove}))
	s.Equal(PhaseNeedsAttention, res.Phase, "a tripped breaker never proceeds by default")
	s.Equal(1, s.fake.called("DetachFromGroup"), "reversible isolation still happens")
	s.Zero(s.fake.called("CreateImage"))
	s.Zero(s.fake.called("TerminateInstance"))
	s.Equal(1, s.fake.called("ReleaseSlot"))
}

func (s *QuarantineSuite) TestAccountGovernorAskedFirstAndReleased() {
	s.fake.accountGrant = &SlotGrant{Decision: SlotProceed, Governor: AccountGovernorID("123456789012")}
	res := s.run(input(Policy{}))
	s.Equal(PhaseResolved, res.Phase)
	s.Equal(1, s.fake.called("RequestAccountSlot"))
	s.Equal(2, s.fake.called("ReleaseSlot"), "both slots returned")
	areq := s.fake.args["RequestAccountSlot"][0].(AcquireInput)
	s.Equal(AccountScope, areq.Group)
	s.Equal(AccountScope, areq.Region)
	s.Less(s.fake.index("RequestAccountSlot"), s.fake.index("RequestSlot"), "the account is asked before the group")
	var gov *Step
	for i := range res.Status.Steps {
		if res.Status.Steps[i].Name == "governor" {
			gov = &res.Status.Steps[i]
		}
	}
	s.Require().NotNil(gov)
	s.Equal("account: proceed; group: proceed", gov.Detail)
}

func (s *QuarantineSuite) TestAccountBreakerHoldsForApproval() {
	s.fake.accountGrant = &SlotGrant{Decision: SlotHold, Reason: "breaker tripped for account 123456789012 (all groups)", Governor: AccountGovernorID("123456789012")}
	res := s.run(input(Policy{ApprovalTimeout: time.Hour, OnDeadline: DeadlineApprove}))
	s.Equal(PhaseNeedsAttention, res.Phase, "a tripped account breaker never proceeds by default")
	s.Equal(1, s.fake.called("DetachFromGroup"), "reversible isolation still happens")
	s.Zero(s.fake.called("CreateImage"))
	s.Equal(2, s.fake.called("ReleaseSlot"))
}

func TestIncidentIDRoundTrip(t *testing.T) {
	id := IncidentID("123456789012", "us-east-1", testInstance)
	require.Equal(t, "quarantine/123456789012/us-east-1/"+testInstance, id)
	acct, region, inst, err := ParseIncidentID(id)
	require.NoError(t, err)
	require.Equal(t, []string{"123456789012", "us-east-1", testInstance}, []string{acct, region, inst})
	_, _, _, err = ParseIncidentID("quarantine/x")
	require.ErrorContains(t, err, "not an incident ID")
}

func TestPolicyNormalize(t *testing.T) {
	p, err := Policy{}.Normalize()
	require.NoError(t, err)
	require.Equal(t, ApprovalNone, p.Approval)
	require.True(t, *p.Relaunch)
	require.Equal(t, SnapshotsKeep, p.Snapshots)
	_, err = Policy{Approval: "maybe"}.Normalize()
	require.ErrorContains(t, err, "approval \"maybe\"")
}

// quietLogger drops the test environment's debug chatter.
type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}
