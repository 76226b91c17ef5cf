package workflows

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// TestReplayDetectorHistory replays the first run of a real detector (a
// failed search and its backoff, hits delivered as incident starts and
// evidence signals over several polls, continue-as-new) recorded on the
// embedded server and the real search engine by internal/e2e
// TestRecordDetectorHistory. It fails when a change to Detector would break
// detectors running now: guard such changes with workflow.GetVersion and
// keep one recorded history per version here.
func TestReplayDetectorHistory(t *testing.T) {
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(Detector, workflow.RegisterOptions{Name: DetectorWorkflowName})
	for _, f := range []string{"testdata/detector_v1.json"} {
		require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(nil, f), f)
	}
}
