package workflows

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

// Open starts the incident for in.InstanceID, or, when one is already open,
// adds in.Evidence to it: SignalWithStart, so an alert storm becomes one
// incident per instance with every alert as evidence.
func Open(ctx context.Context, c client.Client, in QuarantineInput) (client.WorkflowRun, error) {
	if !ValidInstanceID(in.InstanceID) {
		return nil, fmt.Errorf("%q is not an EC2 instance ID: want i- followed by 8 or 17 hex digits", in.InstanceID)
	}
	if in.Account == "" || in.Region == "" {
		return nil, fmt.Errorf("incident for %s needs an account and a region", in.InstanceID)
	}
	if _, err := in.Policy.Normalize(); err != nil {
		return nil, err
	}
	id := IncidentID(in.Account, in.Region, in.InstanceID)
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
	}
	return c.SignalWithStartWorkflow(ctx, id, SignalEvidence, in.Evidence, opts, WorkflowName, in)
}

// GetStatus queries an incident's status. A missing incident is reported
// with the ID that was looked for.
func GetStatus(ctx context.Context, c client.Client, id string) (Status, error) {
	var st Status
	v, err := c.QueryWorkflow(ctx, id, "", QueryStatus)
	if err != nil {
		return st, notFound(id, err)
	}
	return st, v.Get(&st)
}

// Decide sends the approve, reject or release update and waits for its
// result, so the caller hears at once whether it was accepted.
func Decide(ctx context.Context, c client.Client, id, update string, d Decision) (Status, error) {
	var st Status
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   id,
		UpdateName:   update,
		Args:         []any{d},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return st, notFound(id, err)
	}
	if err := h.Get(ctx, &st); err != nil {
		return st, err
	}
	return st, nil
}

// ErrNoIncident reports an incident ID that does not exist or is closed.
var ErrNoIncident = errors.New("no such incident")

func notFound(id string, err error) error {
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return fmt.Errorf("%w: %s", ErrNoIncident, id)
	}
	return err
}
