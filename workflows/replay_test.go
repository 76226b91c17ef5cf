package workflows

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// TestReplayRecordedHistory replays the history of a real incident (with an
// approval and a second alert as evidence) recorded on the embedded server by
// internal/e2e TestRecordHistory. It fails when a code change would break
// incidents that are running now: guard such changes with workflow.GetVersion
// and keep one recorded history per version here.
func TestReplayRecordedHistory(t *testing.T) {
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(Quarantine, workflow.RegisterOptions{Name: WorkflowName})
	r.RegisterWorkflowWithOptions(Governor, workflow.RegisterOptions{Name: GovernorWorkflowName})
	// v1: before the blast-radius governor; v2: governor asked through a
	// blocking update ("governor" version 1); v3: through signals (version 2),
	// one activity for termination, release tags last; v4: the opened alert
	// beside containment, and the account-wide governor asked first.
	for _, f := range []string{"testdata/quarantine_v1.json", "testdata/quarantine_v2.json", "testdata/quarantine_v3.json", "testdata/quarantine_v4.json"} {
		require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(nil, f), f)
	}
}
