package alexa

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/cordonhq/cordon/workflows"
)

// Incident is one open incident as the visibility list shows it.
type Incident struct {
	ID         string          // workflow ID: quarantine/<account>/<region>/<instance>
	InstanceID string          // CordonInstanceID
	BadIP      string          // CordonBadIP
	Phase      workflows.Phase // CordonPhase (visibility may lag the status query by a moment)
	Opened     time.Time       // workflow start time
	Summary    string          // memo summary
}

// Incidents is what the skill needs from Cordon. TemporalIncidents is the
// real one; tests may substitute their own.
type Incidents interface {
	// Open lists the open incidents, newest first.
	Open(ctx context.Context) ([]Incident, error)
	// Status queries one incident (workflows.QueryStatus).
	Status(ctx context.Context, id string) (workflows.Status, error)
	// Decide sends workflows.UpdateApprove, UpdateReject or UpdateRelease.
	// A refusal by the update's validator is returned at once as an error
	// (a *temporal.ApplicationError). done reports whether the update also
	// completed within the wait; an accepted release may still be restoring.
	Decide(ctx context.Context, id, update string, d workflows.Decision) (st workflows.Status, done bool, err error)
}

// TemporalIncidents reads and steers incidents on a Temporal server through
// the names in workflows/: visibility for the list, the status query, and
// the approve/reject/release updates with their validators.
type TemporalIncidents struct {
	Client client.Client
	// Limit caps the listed incidents (default 50).
	Limit int
	// Wait is how long Decide waits for an accepted update to complete
	// before reporting it as still running (default 3 s). Alexa wants an
	// answer within 8 s; a release restores several resources.
	Wait time.Duration
}

// Open lists running QuarantineWorkflow executions, newest first.
func (t *TemporalIncidents) Open(ctx context.Context) ([]Incident, error) {
	limit := t.Limit
	if limit <= 0 {
		limit = 50
	}
	resp, err := t.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Query:    fmt.Sprintf("WorkflowType = %q AND ExecutionStatus = %q", workflows.WorkflowName, "Running"),
		PageSize: int32(limit),
	})
	if err != nil {
		return nil, fmt.Errorf("listing incidents: %w", err)
	}
	var out []Incident
	for _, e := range resp.GetExecutions() {
		inc := Incident{
			ID:         e.GetExecution().GetWorkflowId(),
			InstanceID: keyword(e.GetSearchAttributes(), "CordonInstanceID"),
			BadIP:      keyword(e.GetSearchAttributes(), "CordonBadIP"),
			Phase:      workflows.Phase(keyword(e.GetSearchAttributes(), "CordonPhase")),
			Opened:     e.GetStartTime().AsTime(),
		}
		if p := e.GetMemo().GetFields()[workflows.MemoSummary]; p != nil {
			_ = converter.GetDefaultDataConverter().FromPayload(p, &inc.Summary)
		}
		if inc.InstanceID == "" {
			if _, _, inst, err := workflows.ParseIncidentID(inc.ID); err == nil {
				inc.InstanceID = inst
			}
		}
		out = append(out, inc)
		if len(out) == limit {
			break
		}
	}
	SortNewestFirst(out)
	return out, nil
}

// SortNewestFirst orders incidents by opening time, newest first (ties by ID).
func SortNewestFirst(incs []Incident) {
	sort.SliceStable(incs, func(i, j int) bool {
		if !incs[i].Opened.Equal(incs[j].Opened) {
			return incs[i].Opened.After(incs[j].Opened)
		}
		return incs[i].ID < incs[j].ID
	})
}

func keyword(sa *commonpb.SearchAttributes, name string) string {
	p := sa.GetIndexedFields()[name]
	if p == nil {
		return ""
	}
	var s string
	if err := converter.GetDefaultDataConverter().FromPayload(p, &s); err != nil {
		var list []string
		if converter.GetDefaultDataConverter().FromPayload(p, &list) == nil && len(list) > 0 {
			return list[0]
		}
	}
	return s
}

// Status queries the incident's status.
func (t *TemporalIncidents) Status(ctx context.Context, id string) (workflows.Status, error) {
	return workflows.GetStatus(ctx, t.Client, id)
}

// Decide sends the update and waits until the workflow accepted or refused
// it (the validator's answer), then up to Wait for its result.
func (t *TemporalIncidents) Decide(ctx context.Context, id, update string, d workflows.Decision) (workflows.Status, bool, error) {
	var st workflows.Status
	h, err := t.Client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   id,
		UpdateName:   update,
		Args:         []any{d},
		WaitForStage: client.WorkflowUpdateStageAccepted,
	})
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return st, false, fmt.Errorf("%w: %s", workflows.ErrNoIncident, id)
		}
		return st, false, err
	}
	wait := t.Wait
	if wait <= 0 {
		wait = 3 * time.Second
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	err = h.Get(wctx, &st)
	if err != nil && wctx.Err() != nil && ctx.Err() == nil {
		// Accepted (a refusal comes back with the acceptance stage), still running.
		return st, false, nil
	}
	if err != nil {
		return st, false, err
	}
	return st, true, nil
}
