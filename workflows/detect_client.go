package workflows

import (
	"context"
	"errors"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

// EnsureIncident starts the incident for in.InstanceID with in.Evidence as
// its first evidence, unless it is already running; started says which.
// Unlike Open it sends no signal: the detection workflow signals the other
// evidence itself, so that each hit counts once.
func EnsureIncident(ctx context.Context, c client.Client, in QuarantineInput) (id string, started bool, err error) {
	if !ValidInstanceID(in.InstanceID) {
		return "", false, fmt.Errorf("%q is not an EC2 instance ID: want i- followed by 8 or 17 hex digits", in.InstanceID)
	}
	if in.Account == "" || in.Region == "" {
		return "", false, fmt.Errorf("incident for %s needs an account and a region", in.InstanceID)
	}
	if _, err := in.Policy.Normalize(); err != nil {
		return "", false, err
	}
	id = IncidentID(in.Account, in.Region, in.InstanceID)
	sa := []temporal.SearchAttributeUpdate{
		SAInstanceID.ValueSet(in.InstanceID),
		SAPhase.ValueSet(string(PhaseOpened)),
		SAAccount.ValueSet(in.Account),
	}
	if in.Evidence.BadIP != "" {
		sa = append(sa, SABadIP.ValueSet(in.Evidence.BadIP))
	}
	opts := client.StartWorkflowOptions{
		ID:                    id,
		TaskQueue:             TaskQueue,
		TypedSearchAttributes: temporal.NewSearchAttributes(sa...),
		Memo:                  map[string]any{MemoSummary: fmt.Sprintf("%s talked to %s; phase opened", in.InstanceID, in.Evidence.BadIP)},
		// A running incident is left alone (and reported); a closed one
		// is started anew, as SignalWithStart would.
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
	}
	_, err = c.ExecuteWorkflow(ctx, opts, WorkflowName, in)
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &already) {
		return id, false, nil
	}
	if err != nil {
		return "", false, err
	}
	return id, true, nil
}

// StartDetector starts the detector with workflow ID id (DefaultDetectorID
// when empty), or leaves the running one as it is (its checkpoint is its
// own); started says which.
func StartDetector(ctx context.Context, c client.Client, id string, cfg DetectorConfig) (client.WorkflowRun, bool, error) {
	if id == "" {
		id = DefaultDetectorID
	}
	if _, err := cfg.Policy.Normalize(); err != nil {
		return nil, false, err
	}
	opts := client.StartWorkflowOptions{
		ID:                                       id,
		TaskQueue:                                TaskQueue,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		Memo:                                     map[string]any{MemoSummary: "detector: flow events → incidents"},
		WorkflowExecutionErrorWhenAlreadyStarted: true,
	}
	run, err := c.ExecuteWorkflow(ctx, opts, DetectorWorkflowName, DetectorInput{Config: cfg})
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &already) {
		return c.GetWorkflow(ctx, id, ""), false, nil
	}
	return run, err == nil, err
}

// GetDetectorStatus queries a detector's status (id: DefaultDetectorID when
// empty).
func GetDetectorStatus(ctx context.Context, c client.Client, id string) (DetectorStatus, error) {
	if id == "" {
		id = DefaultDetectorID
	}
	var st DetectorStatus
	v, err := c.QueryWorkflow(ctx, id, "", QueryDetectorStatus)
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return st, fmt.Errorf("no such detector: %s", id)
		}
		return st, err
	}
	return st, v.Get(&st)
}
