package workflows

import (
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"
)

// detectFakeSearch plays SearchFlows from a script: one answer (or error) per call.
type detectFakeSearch struct {
	mu      sync.Mutex
	script  []func(SearchFlowsInput) (SearchFlowsResult, error)
	inputs  []SearchFlowsInput
	ensured []EnsureIncidentInput
	running map[string]bool // incidents already open
}

func (f *detectFakeSearch) SearchFlows(_ context.Context, in SearchFlowsInput) (SearchFlowsResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inputs = append(f.inputs, in)
	if len(f.script) == 0 {
		return SearchFlowsResult{Next: in.Checkpoint}, nil
	}
	step := f.script[0]
	f.script = f.script[1:]
	return step(in)
}

func (f *detectFakeSearch) EnsureIncident(_ context.Context, in EnsureIncidentInput) (EnsureIncidentResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ensured = append(f.ensured, in)
	if in.Hit.InstanceID == "" {
		return EnsureIncidentResult{Unresolved: "no instance at " + in.Hit.SourceIP}, nil
	}
	id := IncidentID(detectFirst(in.Hit.Account, in.Account), detectFirst(in.Hit.Region, in.Region), in.Hit.InstanceID)
	if f.running[id] {
		return EnsureIncidentResult{IncidentID: id, InstanceID: in.Hit.InstanceID}, nil
	}
	f.running[id] = true
	return EnsureIncidentResult{IncidentID: id, InstanceID: in.Hit.InstanceID, Started: true}, nil
}

func detectEnv(t *testing.T, f *detectFakeSearch) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(Detector, workflow.RegisterOptions{Name: DetectorWorkflowName})
	env.RegisterActivityWithOptions(f.SearchFlows, activity.RegisterOptions{Name: ActivitySearchFlows})
	env.RegisterActivityWithOptions(f.EnsureIncident, activity.RegisterOptions{Name: ActivityEnsureIncident})
	return env
}

func detectTestHit(instance, ref string) DetectHit {
	return DetectHit{Account: "123456789012", Region: "us-east-1", InstanceID: instance,
		Evidence: Evidence{Source: "detector", BadIP: "1.19.6.4", Ref: ref, Time: time.Unix(0, 0).UTC()}}
}

// continued returns the state a run handed to the next one.
func detectContinued(t *testing.T, env *testsuite.TestWorkflowEnvironment) DetectorInput {
	t.Helper()
	require.True(t, env.IsWorkflowCompleted())
	var can *workflow.ContinueAsNewError
	require.True(t, errors.As(env.GetWorkflowError(), &can), "continued as new: %v", env.GetWorkflowError())
	var in DetectorInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &in))
	return in
}

func TestDetectorDeliversEachHitOnce(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	f := &detectFakeSearch{running: map[string]bool{IncidentID("123456789012", "us-east-1", "i-0000000000000000b"): true}}
	f.script = []func(SearchFlowsInput) (SearchFlowsResult, error){
		func(in SearchFlowsInput) (SearchFlowsResult, error) {
			return SearchFlowsResult{
				Next: DetectCheckpoint{Time: t0, Seen: []string{"x/3"}}, More: true, Events: 10, Considered: 8,
				Hits: []DetectHit{detectTestHit("i-0000000000000000a", "x/1"), detectTestHit("i-0000000000000000b", "x/2"), detectTestHit("i-0000000000000000a", "x/3"),
					{Account: "123456789012", Region: "us-east-1", SourceIP: "10.9.9.9", Evidence: Evidence{Ref: "x/4"}}},
			}, nil
		},
		func(in SearchFlowsInput) (SearchFlowsResult, error) {
			return SearchFlowsResult{Next: DetectCheckpoint{Time: t0.Add(time.Second), Seen: []string{"x/5"}}, Events: 1, Considered: 1,
				Hits: []DetectHit{detectTestHit("i-0000000000000000a", "x/5")}}, nil
		},
	}
	env := detectEnv(t, f)
	var mu sync.Mutex
	var signals []string
	env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, "", SignalEvidence, mock.Anything).Return(
		func(_, id, _, _ string, arg any) error {
			mu.Lock()
			defer mu.Unlock()
			signals = append(signals, id+" "+arg.(Evidence).Ref)
			return nil
		})
	env.ExecuteWorkflow(DetectorWorkflowName, DetectorInput{Config: DetectorConfig{RunPolls: 2}})
	in := detectContinued(t, env)

	sort.Strings(signals) // the test environment delivers them concurrently
	require.Equal(t, []string{
		"quarantine/123456789012/us-east-1/i-0000000000000000a x/3", // x/1 opened it
		"quarantine/123456789012/us-east-1/i-0000000000000000a x/5",
		"quarantine/123456789012/us-east-1/i-0000000000000000b x/2", // already open: signalled
	}, signals)
	st := in.State
	require.Equal(t, DetectCheckpoint{Time: t0.Add(time.Second), Seen: []string{"x/5"}}, st.Checkpoint)
	require.EqualValues(t, 2, st.Counts.Polls)
	require.EqualValues(t, 11, st.Counts.Events)
	require.EqualValues(t, 5, st.Counts.Hits)
	require.EqualValues(t, 1, st.Counts.Started)
	require.EqualValues(t, 4, st.Counts.Evidence)
	require.EqualValues(t, 1, st.Counts.Unresolved)
	require.Contains(t, st.Problems[0], "x/4: no instance at 10.9.9.9")
	require.Equal(t, 1, st.Runs)
	// The second search started from the first one's checkpoint.
	require.Equal(t, DetectCheckpoint{Time: t0, Seen: []string{"x/3"}}, f.inputs[1].Checkpoint)
}

func TestDetectorBacksOffAndKeepsCheckpoint(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	start := DetectCheckpoint{Time: t0, Seen: []string{"x/0"}}
	down := func(SearchFlowsInput) (SearchFlowsResult, error) {
		return SearchFlowsResult{}, errors.New("connection refused")
	}
	f := &detectFakeSearch{running: map[string]bool{}}
	f.script = []func(SearchFlowsInput) (SearchFlowsResult, error){down, down, down, down,
		func(in SearchFlowsInput) (SearchFlowsResult, error) {
			return SearchFlowsResult{Next: DetectCheckpoint{Time: t0.Add(time.Minute), Seen: []string{"x/9"}}, Events: 1}, nil
		},
	}
	env := detectEnv(t, f)
	var statuses []DetectorStatus
	for _, at := range []time.Duration{time.Second, 3 * time.Second, 7 * time.Second, 15 * time.Second} {
		env.RegisterDelayedCallback(func() {
			v, err := env.QueryWorkflow(QueryDetectorStatus)
			require.NoError(t, err)
			var st DetectorStatus
			require.NoError(t, v.Get(&st))
			statuses = append(statuses, st)
		}, at)
	}
	env.ExecuteWorkflow(DetectorWorkflowName, DetectorInput{
		Config: DetectorConfig{RunPolls: 5, SearchAttempts: 1, BackoffInitial: 2 * time.Second, BackoffMax: 5 * time.Second},
		State:  DetectorState{Checkpoint: start},
	})
	in := detectContinued(t, env)

	for _, in := range f.inputs[:5] {
		require.Equal(t, start, in.Checkpoint, "retried from the same checkpoint")
	}
	require.Len(t, statuses, 4)
	for i, st := range statuses {
		require.Equal(t, DetectorBackingOff, st.Phase, "status %d", i)
		require.Equal(t, start, st.Checkpoint)
		require.Contains(t, st.LastError, "connection refused")
	}
	require.Equal(t, 1, statuses[0].Failures)
	require.Equal(t, 2, statuses[1].Failures) // after 2 s
	require.Equal(t, 3, statuses[2].Failures) // after 2+4 s
	require.Equal(t, 4, statuses[3].Failures) // after 2+4+5 s (capped)

	st := in.State
	require.Equal(t, 0, st.Failures, "recovered")
	require.Contains(t, st.LastError, "connection refused", "the last failure stays visible")
	require.EqualValues(t, 4, st.Counts.FailedPolls)
	require.Equal(t, DetectCheckpoint{Time: t0.Add(time.Minute), Seen: []string{"x/9"}}, st.Checkpoint)
}

func TestDetectorSignalToClosedIncidentReopens(t *testing.T) {
	f := &detectFakeSearch{running: map[string]bool{IncidentID("123456789012", "us-east-1", "i-0000000000000000a"): true}}
	f.script = []func(SearchFlowsInput) (SearchFlowsResult, error){
		func(in SearchFlowsInput) (SearchFlowsResult, error) {
			return SearchFlowsResult{Next: DetectCheckpoint{Time: time.Unix(1, 0)}, Hits: []DetectHit{detectTestHit("i-0000000000000000a", "x/1")}}, nil
		},
	}
	env := detectEnv(t, f)
	env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, "", SignalEvidence, mock.Anything).Return(
		func(_, id, _, _ string, _ any) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			delete(f.running, id) // it closed just before the signal
			return errors.New("workflow execution already completed")
		}).Once()
	env.ExecuteWorkflow(DetectorWorkflowName, DetectorInput{Config: DetectorConfig{RunPolls: 1}})
	in := detectContinued(t, env)
	require.Len(t, f.ensured, 2, "ensured again after the failed signal")
	require.EqualValues(t, 1, in.State.Counts.Started)
	require.EqualValues(t, 1, in.State.Counts.Evidence)
}

func TestDetectCheckpoint(t *testing.T) {
	t0 := time.Unix(100, 0)
	cp := DetectCheckpoint{}
	require.True(t, cp.After(t0, "a"))
	cp = cp.Advance(t0, "a")
	cp2 := cp.Advance(t0, "b")
	require.Equal(t, []string{"a"}, cp.Seen, "Advance does not alias")
	require.Equal(t, []string{"a", "b"}, cp2.Seen)
	require.False(t, cp2.After(t0, "a"))
	require.False(t, cp2.After(t0, "b"))
	require.True(t, cp2.After(t0, "c"))
	require.False(t, cp2.After(t0.Add(-1), "z"))
	cp3 := cp2.Advance(t0.Add(1), "c")
	require.Equal(t, DetectCheckpoint{Time: t0.Add(1), Seen: []string{"c"}}, cp3)
}
