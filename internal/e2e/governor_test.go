package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/workflows"
)

// TestGovernorUnderAStorm: 20 incidents at once in one group of 22 with the
// default limits (2 at a time): every one resolves, the group never has
// fewer than 20 healthy members outside the incidents in flight, and the
// queue drains.
func TestGovernorUnderAStorm(t *testing.T) {
	h := bigFleet(t, 22)
	h.Worker.Stop()
	h.Limits = workflows.GovernorLimits{MaxConcurrent: 2, MinHealthy: 1, BreakerCount: 1000, BreakerWindow: time.Hour, RecheckInterval: time.Second}
	h.StartWorker()
	ids := openAll(t, h, members(t, h)[:20])
	queued := 0
	for id, st := range h.WaitFinal(ids, 5*time.Minute) {
		require.Equal(t, workflows.OutcomeResolved, st.Outcome, "%s: %s", id, st.Reason)
		for _, p := range st.Phases {
			if p.Phase == workflows.PhaseQueued {
				queued++
			}
		}
	}
	require.Greater(t, queued, 0, "with two slots, most incidents queued")
	// An incident returns its slot right after it reaches its final phase.
	drained(t, h, workflows.GovernorID("123456789012", "us-east-1", "web-asg"), func(workflows.GovernorStatus) bool { return true })
}

// openAll opens an incident for each instance and returns their IDs.
func openAll(t *testing.T, h *Harness, insts []string) []string {
	t.Helper()
	var ids []string
	for _, inst := range insts {
		_, err := workflows.Open(context.Background(), h.Client, workflows.QuarantineInput{Account: "123456789012", Region: "us-east-1", InstanceID: inst,
			Evidence: workflows.Evidence{Source: "test", BadIP: "1.19.6.4"}})
		require.NoError(t, err)
		ids = append(ids, workflows.IncidentID("123456789012", "us-east-1", inst))
	}
	return ids
}

// drained waits until the governor id has no waiting request and no slot in
// flight, and also satisfies and; it returns the governor's status.
func drained(t *testing.T, h *Harness, id string, and func(workflows.GovernorStatus) bool) workflows.GovernorStatus {
	t.Helper()
	var gs workflows.GovernorStatus
	require.Eventually(t, func() bool {
		v, err := h.Client.QueryWorkflow(context.Background(), id, "", workflows.QueryGovernor)
		if err != nil || v.Get(&gs) != nil {
			return false
		}
		return len(gs.Waiting) == 0 && len(gs.InFlight) == 0 && and(gs)
	}, 2*time.Minute, 100*time.Millisecond, "every slot of %s returned: %+v", id, gs)
	return gs
}

// TestAccountGovernorOneAtATime: with an account-wide limit of one incident
// at a time (the group's own allowing four), four incidents still all
// resolve, one after another through the account-wide governor, which
// counts them all and gets every slot back.
func TestAccountGovernorOneAtATime(t *testing.T) {
	h := bigFleet(t, 8)
	h.Worker.Stop()
	h.Limits = workflows.GovernorLimits{MaxConcurrent: 4, MinHealthy: 1, BreakerCount: 1000, BreakerWindow: time.Hour, RecheckInterval: time.Second,
		AccountMaxConcurrent: 1, AccountBreakerCount: 1000}
	h.StartWorker()
	ids := openAll(t, h, members(t, h)[:4])
	waitedForAccount := 0
	for id, st := range h.WaitFinal(ids, 5*time.Minute) {
		require.Equal(t, workflows.OutcomeResolved, st.Outcome, "%s: %s", id, st.Reason)
		for _, s := range st.Steps {
			if s.Name == "governor" && strings.HasPrefix(s.Detail, "account: proceed after waiting for a free slot") {
				waitedForAccount++
			}
		}
	}
	require.GreaterOrEqual(t, waitedForAccount, 1, "one slot for the account: the others waited for it")
	// The account-wide governor counted four and got every slot back.
	gs := drained(t, h, workflows.AccountGovernorID("123456789012"), func(gs workflows.GovernorStatus) bool { return len(gs.Recent) == 4 })
	require.Equal(t, 1, gs.Limits.MaxConcurrent)
}
