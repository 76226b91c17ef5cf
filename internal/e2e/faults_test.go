package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/simcloud"
	"github.com/cordonhq/cordon/workflows"
)

// openOne opens the incident of one seed web server and waits for its end.
func openOne(t *testing.T, h *Harness, inst string, p workflows.Policy) workflows.Status {
	t.Helper()
	in := workflows.QuarantineInput{Account: "123456789012", Region: "us-east-1", InstanceID: inst,
		Evidence: workflows.Evidence{Source: "test", BadIP: "1.19.6.4"}, Policy: p}
	_, err := workflows.Open(context.Background(), h.Client, in)
	require.NoError(t, err)
	id := workflows.IncidentID(in.Account, in.Region, in.InstanceID)
	return h.WaitFinal([]string{id}, 2*time.Minute)[id]
}

// TestTransientFaultsAreRetried: throttling, 5xx and eventual-consistency
// NotFound on the way are retried with backoff; the incident resolves and
// nothing is created twice.
func TestTransientFaultsAreRetried(t *testing.T) {
	h := New(t, simcloud.Delays{}, "")
	h.Sim.InjectFault("DetachInstances", simcloud.APIError("RequestLimitExceeded", "Request limit exceeded."), 2)
	h.Sim.InjectFault("ModifyNetworkInterfaceAttribute", simcloud.APIError("InternalError", "An internal error has occurred."), 1)
	h.Sim.InjectFault("CreateImage", simcloud.APIError("RequestLimitExceeded", "Request limit exceeded."), 2)
	h.Sim.InjectFault("DescribeImages", simcloud.APIError("InvalidAMIID.NotFound", "The image id '[ami-0]' does not exist"), 1)
	h.Sim.InjectFault("RunInstances", simcloud.APIError("InsufficientInstanceCapacity", "We currently do not have sufficient capacity."), 1)
	h.Sim.InjectFault("TerminateInstances", simcloud.APIError("ServiceUnavailable", "Service unavailable."), 1)

	st := openOne(t, h, "i-04f2ae54915567738", workflows.Policy{})
	require.Equal(t, workflows.OutcomeResolved, st.Outcome, st.Reason)
	created := map[string]int{}
	for _, c := range h.Sim.Mutations() {
		created[c]++
	}
	var images, copies int
	for _, s := range h.Sim.Snapshots() {
		if s.Tags["cordon:incident"] == st.IncidentID {
			images++
		}
	}
	for _, i := range h.Sim.Instances() {
		if i.Tags["cordon:incident"] == st.IncidentID && i.Tags["cordon:state"] == "quarantine-copy" {
			copies++
		}
	}
	require.Equal(t, 2, images, "one image with the instance's two volumes' snapshots")
	require.Equal(t, 1, copies, "one quarantine copy")
	require.Equal(t, 3, created["CreateImage"], "two throttled attempts, one success")
}

// TestPermanentFaultNeedsAttention: a permanent error while imaging stops the
// incident safely: isolated, not terminated, operator alerted.
func TestPermanentFaultNeedsAttention(t *testing.T) {
	h := New(t, simcloud.Delays{}, "")
	h.Sim.InjectFault("CreateImage", simcloud.APIError("UnauthorizedOperation", "You are not authorized to perform this operation."), -1)
	st := openOne(t, h, "i-085a2fa5fa92cd19c", workflows.Policy{})
	require.Equal(t, workflows.PhaseNeedsAttention, st.Phase)
	require.Contains(t, st.Reason, "UnauthorizedOperation")
	inst, ok := h.Sim.Instance("i-085a2fa5fa92cd19c")
	require.True(t, ok)
	require.Equal(t, "running", inst.State, "not terminated")
	require.True(t, inst.TerminationProtection)
	require.Equal(t, "needs-attention", inst.Tags["cordon:state"])
	iso, _ := h.Sim.SecurityGroup("cordon-isolation")
	for _, eni := range inst.ENIs {
		require.Equal(t, []string{iso.ID}, eni.GroupIDs, "still isolated")
	}
	last := h.Sim.Published()[len(h.Sim.Published())-1]
	require.Contains(t, last.Subject, "needs-attention")
}
