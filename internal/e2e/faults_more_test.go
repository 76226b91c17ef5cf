package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/simcloud"
	"github.com/cordonhq/cordon/workflows"
)

// TestFaultsMoreImageStuckPending: an image that stays pending for hours
// (the simulated cloud makes it available after one hour) ends the incident
// after the policy's ImageTimeout as needs-attention: the instance stays
// isolated, protected and running, the pending image is kept (not
// deregistered), no quarantine copy is launched, nothing is terminated, the
// operator is alerted and the governor slot comes back.
func TestFaultsMoreImageStuckPending(t *testing.T) {
	h := New(t, simcloud.Delays{ImageAvailable: time.Hour}, "")
	const inst = seedB // two ENIs, two volumes
	g0, _ := h.Sim.Group("web-asg")
	start := time.Now()
	st := openOne(t, h, inst, workflows.Policy{ImageTimeout: 3 * time.Second})
	took := time.Since(start)

	require.Equal(t, workflows.PhaseNeedsAttention, st.Phase, st.Reason)
	require.Equal(t, workflows.OutcomeNeedsAttention, st.Outcome, st.Reason)
	require.Contains(t, st.Reason, "image-available")
	require.Contains(t, st.Reason, "timed out")
	require.Contains(t, st.Reason, "instance isolated")
	require.Contains(t, st.Reason, "image "+st.Resources.ImageID+" kept")
	require.Less(t, took, 45*time.Second, "ended after the image timeout, not hours later")
	var failed *workflows.Step
	for i, s := range st.Steps {
		if s.Name == "image-available" {
			failed = &st.Steps[i]
		}
	}
	require.NotNil(t, failed)
	require.Equal(t, workflows.StepFailed, failed.Outcome, failed.Detail)
	require.GreaterOrEqual(t, failed.Ended.Sub(failed.Started), 3*time.Second, "waited the policy's ImageTimeout")
	t.Logf("incident ended in %s: %s", took.Round(time.Millisecond), st.Reason)

	// The instance: isolated (every ENI in the isolation group only),
	// protected, tagged, still running, out of its group.
	orig, ok := h.Sim.Instance(inst)
	require.True(t, ok)
	require.Equal(t, "running", orig.State, "not terminated")
	require.True(t, orig.TerminationProtection)
	require.Equal(t, "needs-attention", orig.Tags["cordon:state"])
	require.Equal(t, st.IncidentID, orig.Tags["cordon:incident"])
	iso, _ := h.Sim.SecurityGroup("cordon-isolation")
	require.Len(t, orig.ENIs, 2)
	for _, eni := range orig.ENIs {
		require.Equal(t, []string{iso.ID}, eni.GroupIDs, "%s still isolated", eni.ID)
	}
	require.Empty(t, orig.AutoScalingGroup, "detached from its group")

	// The image: still registered and pending, tagged, one of it.
	img, ok := h.Sim.Image(st.Resources.ImageID)
	require.True(t, ok, "image %s kept", st.Resources.ImageID)
	require.Equal(t, "pending", img.State)
	require.Equal(t, st.IncidentID, img.Tags["cordon:incident"])
	require.False(t, st.Resources.ImageDeregistered)
	images := 0
	for _, im := range h.Sim.Images() {
		if im.Tags["cordon:incident"] == st.IncidentID {
			images++
		}
	}
	require.Equal(t, 1, images, "exactly one image")

	// Nothing destructive happened.
	for _, c := range h.Sim.Mutations() {
		require.NotContains(t, []string{"RunInstances", "TerminateInstances", "DeregisterImage", "DeleteSnapshot"}, c)
	}
	require.Empty(t, st.Resources.QuarantineInstanceID)
	for _, in := range h.Sim.Instances() {
		require.NotEqual(t, "quarantine-copy", in.Tags["cordon:state"], "no quarantine copy")
	}

	// The group healed without it; the operator heard.
	require.Eventually(t, func() bool {
		g, _ := h.Sim.Group("web-asg")
		return len(g.InService()) == int(g0.Desired)
	}, 30*time.Second, 50*time.Millisecond, "the group replaced the isolated instance")
	var subjects []string
	for _, m := range h.Sim.Published() {
		subjects = append(subjects, m.Subject)
	}
	require.Contains(t, subjects[len(subjects)-1], "needs-attention", "alerts: %v", subjects)
	requireGovernorIdle(t, h, "web-asg")
}

// TestFaultsMoreThrottlingBurst: a burst of throttling on the operations of
// every step (the next N calls of each fail with RequestLimitExceeded, or
// Throttling for Auto Scaling, N between 6 and 24) while 12 incidents run at
// once in one group: every incident resolves, with exactly one image and one
// quarantine copy each, and every injected fault was met (the throttled
// calls were retried by Temporal, nothing was created twice).
func TestFaultsMoreThrottlingBurst(t *testing.T) {
	const n = 12
	h := bigFleet(t, n+4) // governor limits unbound: the incidents run at once
	insts := members(t, h)[:n]
	volumes := map[string]int{}
	for _, inst := range insts {
		info, _ := h.Sim.Instance(inst)
		volumes[workflows.IncidentID("123456789012", "us-east-1", inst)] = len(info.Volumes)
	}
	ec2Throttle := simcloud.APIError("RequestLimitExceeded", "Request limit exceeded.")
	asThrottle := simcloud.APIError("Throttling", "Rate exceeded")
	// Each op's next calls fail: about one or two per incident, more on
	// the creates, so several incidents back off more than once.
	burst := map[string]int{
		"DescribeInstances":               n,
		"DetachInstances":                 n,
		"ModifyNetworkInterfaceAttribute": 2 * n,
		"ModifyInstanceAttribute":         n,
		"CreateTags":                      n / 2,
		"CreateImage":                     2 * n,
		"DescribeImages":                  n,
		"RunInstances":                    2 * n,
		"TerminateInstances":              n,
		"DescribeAutoScalingGroups":       n / 2,
		"DeregisterImage":                 n,
		"Publish":                         n / 2,
	}
	h.Sim.ResetCalls()
	for op, times := range burst {
		err := ec2Throttle
		if op == "DetachInstances" || op == "DescribeAutoScalingGroups" {
			err = asThrottle
		}
		h.Sim.InjectFault(op, err, times)
	}
	ctx := context.Background()
	var ids []string
	start := time.Now()
	for _, inst := range insts {
		_, err := workflows.Open(ctx, h.Client, workflows.QuarantineInput{Account: "123456789012", Region: "us-east-1", InstanceID: inst,
			Evidence: workflows.Evidence{Source: "fault-test", BadIP: "1.19.6.4"}})
		require.NoError(t, err)
		ids = append(ids, workflows.IncidentID("123456789012", "us-east-1", inst))
	}
	final := h.WaitFinal(ids, 3*time.Minute)
	t.Logf("%d incidents resolved under the burst in %s", n, time.Since(start).Round(time.Millisecond))

	snapsByIncident := map[string]int{}
	for _, s := range h.Sim.Snapshots() {
		snapsByIncident[s.Tags["cordon:incident"]]++
	}
	copies := map[string]int{}
	for _, in := range h.Sim.Instances() {
		if in.Tags["cordon:state"] == "quarantine-copy" {
			copies[in.Tags["cordon:incident"]]++
		}
	}
	for _, id := range ids {
		st := final[id]
		require.Equal(t, workflows.OutcomeResolved, st.Outcome, "%s: %s", id, st.Reason)
		require.Equal(t, volumes[id], snapsByIncident[id], "%s: one image (one snapshot per volume, kept)", id)
		require.Len(t, st.Resources.SnapshotIDs, volumes[id])
		require.Equal(t, 1, copies[id], "%s: one quarantine copy", id)
	}
	calls := map[string]int{}
	for _, c := range h.Sim.Calls() {
		calls[c]++
	}
	// Faults fail a call before it changes anything: every create call
	// beyond the burst made exactly one resource per incident.
	require.Equal(t, n+burst["CreateImage"], calls["CreateImage"], "CreateImage: one per incident plus the throttled ones")
	require.Equal(t, n+burst["RunInstances"], calls["RunInstances"], "RunInstances: one per incident plus the throttled ones")
	for op, times := range burst {
		require.GreaterOrEqual(t, calls[op], times, "%s: the whole burst was met", op)
	}
	requireGovernorIdle(t, h, "web-asg")
}

// requireGovernorIdle waits until the group's governor holds no slot and no
// queue (an incident returns its slot just after its final phase).
func requireGovernorIdle(t *testing.T, h *Harness, group string) {
	t.Helper()
	require.Eventually(t, func() bool {
		v, err := h.Client.QueryWorkflow(context.Background(), workflows.GovernorID("123456789012", "us-east-1", group), "", workflows.QueryGovernor)
		var gs workflows.GovernorStatus
		return err == nil && v.Get(&gs) == nil && len(gs.InFlight) == 0 && len(gs.Waiting) == 0
	}, 2*time.Minute, 50*time.Millisecond, "governor of %s idle", group)
}
