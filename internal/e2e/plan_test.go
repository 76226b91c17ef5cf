package e2e

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/cordonhq/cordon/simcloud"
	"github.com/cordonhq/cordon/workflows"
)

var callPattern = regexp.MustCompile(`\b[a-z0-9]+:([A-Z][A-Za-z]+)`)

// TestPlanEqualsTheCallsOfARealRun: the dry-run plan of an instance lists
// exactly the mutating AWS calls, in order, that a real incident on the same
// instance then makes.
func TestPlanEqualsTheCallsOfARealRun(t *testing.T) {
	const inst = "i-04f2ae54915567738" // two ENIs
	ctx := context.Background()

	plan := New(t, simcloud.Delays{}, "")
	run, err := plan.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "plan/" + inst, TaskQueue: workflows.TaskQueue}, workflows.WorkflowName,
		workflows.QuarantineInput{Account: "123456789012", Region: "us-east-1", InstanceID: inst, Policy: workflows.Policy{DryRun: true}})
	require.NoError(t, err)
	var res workflows.QuarantineResult
	require.NoError(t, run.Get(ctx, &res))
	require.Equal(t, workflows.OutcomeDryRun, res.Outcome)
	require.Empty(t, plan.Sim.Mutations(), "a dry run changes nothing")
	var planned []string
	for _, st := range res.Status.Steps {
		if st.Name == "preflight" {
			continue // the one step a dry run really does (read-only)
		}
		if st.Name == "permissions" {
			// EC2's DryRun answers for the worker's credentials.
			require.Equal(t, workflows.StepSucceeded, st.Outcome, st.Detail)
			require.Contains(t, st.Detail, "TerminateInstances allowed")
			require.Contains(t, st.Detail, "ModifyNetworkInterfaceAttribute allowed")
			continue
		}
		require.Equal(t, workflows.StepPlanned, st.Outcome, st.Name)
		for _, m := range callPattern.FindAllStringSubmatch(st.Detail, -1) {
			if !strings.HasPrefix(m[1], "Describe") {
				planned = append(planned, m[1])
			}
		}
	}

	real := New(t, simcloud.Delays{}, "")
	_, err = workflows.Open(ctx, real.Client, workflows.QuarantineInput{Account: "123456789012", Region: "us-east-1", InstanceID: inst,
		Evidence: workflows.Evidence{Source: "test", BadIP: "1.19.6.4"}})
	require.NoError(t, err)
	id := workflows.IncidentID("123456789012", "us-east-1", inst)
	st := real.WaitFinal([]string{id}, time.Minute)[id]
	require.Equal(t, workflows.OutcomeResolved, st.Outcome, st.Reason)
	require.Equal(t, planned, real.Sim.Mutations(), "the plan lists the real run's mutating calls in order")
}
