package e2e

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/simcloud"
	"github.com/cordonhq/cordon/workflows"
)

// TestConcurrentRejectsRestoreEveryInstance: false positives rejected at the
// same moment in one group are all restored, running, in service and
// registered; the group is back at its recorded desired capacity, and only
// replacements were scaled in.
func TestConcurrentRejectsRestoreEveryInstance(t *testing.T) {
	h := New(t, simcloud.Delays{}, "")
	h.Worker.Stop()
	h.Limits = workflows.GovernorLimits{MaxConcurrent: 10, BreakerCount: 100}
	h.StartWorker()
	insts := []string{"i-0144394dc883f9fe0", "i-085a2fa5fa92cd19c", "i-04f2ae54915567738"}
	g0, _ := h.Sim.Group("web-asg")
	ctx := context.Background()
	var ids []string
	for _, inst := range insts {
		in := workflows.QuarantineInput{Account: "123456789012", Region: "us-east-1", InstanceID: inst,
			Evidence: workflows.Evidence{Source: "test", BadIP: "1.19.6.4"}, Policy: workflows.Policy{Approval: workflows.ApprovalBeforeDestructive}}
		_, err := workflows.Open(ctx, h.Client, in)
		require.NoError(t, err)
		ids = append(ids, workflows.IncidentID(in.Account, in.Region, inst))
	}
	for _, id := range ids {
		h.WaitPhase(id, workflows.PhaseAwaitingApproval, time.Minute)
	}
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := workflows.Decide(ctx, h.Client, id, workflows.UpdateReject, workflows.Decision{By: "test"})
			require.NoError(t, err)
		}()
	}
	wg.Wait()
	for id, st := range h.WaitFinal(ids, time.Minute) {
		require.Equal(t, workflows.OutcomeReleased, st.Outcome, "%s: %s", id, st.Reason)
	}
	g, _ := h.Sim.Group("web-asg")
	require.Equal(t, g0.Desired, g.Desired, "desired capacity restored")
	tg, _ := h.Sim.TargetGroupARN("web-tg")
	for _, inst := range insts {
		i, ok := h.Sim.Instance(inst)
		require.True(t, ok)
		require.Equal(t, "running", i.State, "%s restored, not scaled in", inst)
		require.Equal(t, "web-asg", i.AutoScalingGroup)
		require.Empty(t, i.Tags["cordon:incident"])
		registered := false
		for _, tr := range h.Sim.Targets(tg) {
			if tr.ID == inst {
				registered = true
			}
		}
		require.True(t, registered, "%s back in the target group", inst)
	}
}
