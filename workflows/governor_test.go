package workflows

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/cordonhq/cordon/activities"
)

type govHarness struct {
	env      *testsuite.TestWorkflowEnvironment
	mu       sync.Mutex
	healthy  func() int
	alerts   []activities.Alert
	grants   map[string]SlotGrant
	grantAt  map[string]time.Duration
	rejected map[string]error
	start    time.Time
}

func newGov(t *testing.T, healthy func() int) *govHarness {
	var ts testsuite.WorkflowTestSuite
	ts.SetLogger(quietLogger{})
	h := &govHarness{env: ts.NewTestWorkflowEnvironment(), healthy: healthy, grants: map[string]SlotGrant{}, grantAt: map[string]time.Duration{}, rejected: map[string]error{}}
	h.env.RegisterWorkflowWithOptions(Governor, workflow.RegisterOptions{Name: GovernorWorkflowName})
	h.env.RegisterActivity(&activities.Activities{})
	h.env.OnActivity(a.GroupCapacity, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CapacityInput) (activities.CapacityResult, error) {
		return activities.CapacityResult{Healthy: h.healthy()}, nil
	})
	h.env.OnActivity(a.Notify, mock.Anything, mock.Anything).Return(func(_ context.Context, al activities.Alert) (activities.NotifyResult, error) {
		h.mu.Lock()
		h.alerts = append(h.alerts, al)
		h.mu.Unlock()
		return activities.NotifyResult{}, nil
	})
	h.env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, mock.Anything, SignalSlotGrant, mock.Anything).Return(
		func(_ string, workflowID, _ string, _ string, arg any) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			if _, seen := h.grants[workflowID]; !seen {
				h.grants[workflowID] = arg.(SlotGrant)
				h.grantAt[workflowID] = h.env.Now().Sub(h.start)
			}
			return nil
		})
	return h
}

// acquire sends a slot request at the given time; the governor's answer
// (a signal to the incident) is captured.
func (h *govHarness) acquire(at time.Duration, id string) {
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(SignalSlotRequest, SlotRequest{IncidentID: id, InstanceID: "i-" + id})
	}, at)
}

func (h *govHarness) release(at time.Duration, id string) {
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(SignalReleaseSlot, SlotRequest{IncidentID: id, InstanceID: "i-" + id})
	}, at)
}

func (h *govHarness) run(limits GovernorLimits, until time.Duration) {
	h.start = h.env.Now()
	h.env.RegisterDelayedCallback(func() {}, until)
	h.env.SetTestTimeout(time.Minute)
	h.env.ExecuteWorkflow(GovernorWorkflowName, GovernorInput{Account: "123456789012", Region: "us-east-1", Group: "web-asg", Limits: limits})
}

func TestGovernorCapsConcurrentIncidents(t *testing.T) {
	h := newGov(t, func() int { return 10 })
	h.acquire(time.Second, "a")
	h.acquire(time.Second, "b")
	h.acquire(time.Second, "c")
	h.release(10*time.Minute, "a")
	h.release(20*time.Minute, "b")
	h.release(20*time.Minute, "c")
	h.run(GovernorLimits{MaxConcurrent: 2, BreakerCount: 10}, 30*time.Minute)
	require.Len(t, h.grants, 3)
	require.Equal(t, time.Second, h.grantAt["a"])
	require.Equal(t, time.Second, h.grantAt["b"])
	require.Equal(t, 10*time.Minute, h.grantAt["c"], "the third incident waited for the first slot to return")
	require.Equal(t, "a free slot", h.grants["c"].WaitedFor, "it says what it waited for")
	require.Empty(t, h.grants["a"].WaitedFor)
}

func TestGovernorNeverTakesTheLastHealthyInstance(t *testing.T) {
	var mu sync.Mutex
	healthy := 0 // the rest of the group is unhealthy at first
	h := newGov(t, func() int { mu.Lock(); defer mu.Unlock(); return healthy })
	h.env.RegisterDelayedCallback(func() { mu.Lock(); healthy = 2; mu.Unlock() }, 5*time.Minute)
	h.acquire(time.Second, "a")
	h.release(time.Hour, "a")
	h.run(GovernorLimits{RecheckInterval: 30 * time.Second}, 2*time.Hour)
	require.Contains(t, h.grants, "a")
	require.True(t, h.grants["a"].Waited)
	require.Equal(t, "healthy capacity", h.grants["a"].WaitedFor)
	require.GreaterOrEqual(t, h.grantAt["a"], 5*time.Minute, "granted only once another healthy instance was there")
	require.Equal(t, SlotProceed, h.grants["a"].Decision)
}

func TestGovernorBreakerTripsAndResets(t *testing.T) {
	h := newGov(t, func() int { return 10 })
	for i, id := range []string{"a", "b", "c"} {
		h.acquire(time.Duration(i+1)*time.Minute, id)
		h.release(time.Duration(i+1)*time.Minute+time.Second, id)
	}
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(UpdateResetBreaker, "reset", &testsuite.TestUpdateCallback{OnAccept: func() {}, OnReject: func(error) {}, OnComplete: func(any, error) {}}, Decision{By: "test"})
	}, 10*time.Minute)
	h.acquire(11*time.Minute, "d")
	h.release(12*time.Minute, "d")
	h.run(GovernorLimits{BreakerCount: 2, BreakerWindow: time.Hour}, 20*time.Minute)
	require.Equal(t, SlotProceed, h.grants["a"].Decision)
	require.Equal(t, SlotProceed, h.grants["b"].Decision)
	require.Equal(t, SlotHold, h.grants["c"].Decision, "third incident within the window: breaker tripped")
	require.Contains(t, h.grants["c"].Reason, "breaker tripped")
	require.Len(t, h.alerts, 1)
	require.Equal(t, "breaker-tripped", h.alerts[0].Phase)
	require.Equal(t, SlotProceed, h.grants["d"].Decision, "reset closes the breaker")
}

// TestAccountGovernorCapsWithoutCountingCapacity: the account-wide governor
// (region and group "*") caps incidents across groups and trips its breaker,
// but never asks a group's capacity, and signs its answers.
func TestAccountGovernorCapsWithoutCountingCapacity(t *testing.T) {
	h := newGov(t, func() int { t.Error("the account-wide governor asked a group's capacity"); return 0 })
	h.acquire(time.Second, "a")
	h.acquire(time.Second, "b")
	h.acquire(time.Second, "c")
	h.release(time.Minute, "a")
	acct, ok := GovernorLimits{AccountMaxConcurrent: 2, AccountBreakerCount: 2, BreakerWindow: time.Hour}.Account()
	require.True(t, ok)
	h.start = h.env.Now()
	h.env.RegisterDelayedCallback(func() {}, 2*time.Minute)
	h.env.SetTestTimeout(time.Minute)
	h.env.ExecuteWorkflow(GovernorWorkflowName, GovernorInput{Account: "123456789012", Region: AccountScope, Group: AccountScope, Limits: acct})
	require.Len(t, h.grants, 3)
	require.Equal(t, SlotProceed, h.grants["a"].Decision)
	require.Equal(t, AccountGovernorID("123456789012"), h.grants["a"].Governor)
	require.GreaterOrEqual(t, h.grantAt["c"], time.Minute, "the third waits for a free slot")
	require.Equal(t, SlotHold, h.grants["c"].Decision, "after two incidents within the window the account breaker trips")
	require.Contains(t, h.grants["c"].Reason, "breaker tripped for account 123456789012 (all groups)")
	require.Len(t, h.alerts, 1)
	require.Contains(t, h.alerts[0].Summary, "starter governor reset --account 123456789012 --region '*' --group '*'")

	_, ok = GovernorLimits{}.Account()
	require.False(t, ok, "no account-wide governor unless configured")
}
