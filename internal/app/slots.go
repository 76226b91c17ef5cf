package app

import (
	"context"
	"errors"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"

	"github.com/cordonhq/cordon/workflows"
)

// SlotActivities talk to the blast-radius governors for the incidents: they
// need a Temporal client, so they live here rather than in activities/.
type SlotActivities struct {
	Client client.Client
	Limits workflows.GovernorLimits
}

// AcquireSlot asks the group's governor for a slot, starting the governor
// if needed (update-with-start), and waits for its answer while
// heartbeating. The update ID is derived from the incident, so a retried
// request is the same request.
func (s *SlotActivities) AcquireSlot(ctx context.Context, in workflows.AcquireInput) (workflows.SlotGrant, error) {
	id := workflows.GovernorID(in.Account, in.Region, in.Group)
	limits := in.Limits
	if limits == (workflows.GovernorLimits{}) {
		limits = s.Limits
	}
	start := s.Client.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                workflows.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, workflows.GovernorWorkflowName, workflows.GovernorInput{Account: in.Account, Region: in.Region, Group: in.Group, Limits: limits})

	hctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-hctx.Done():
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx, "waiting for the governor of "+in.Group)
			}
		}
	}()
	h, err := s.Client.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions: client.UpdateWorkflowOptions{
			UpdateID:     "acquire/" + in.Request.IncidentID,
			UpdateName:   workflows.UpdateAcquire,
			Args:         []any{in.Request},
			WaitForStage: client.WorkflowUpdateStageAccepted,
		},
	})
	if err != nil {
		return workflows.SlotGrant{}, err
	}
	var g workflows.SlotGrant
	err = h.Get(ctx, &g)
	return g, err
}

// RequestSlot asks the group's governor for a slot, starting the governor if
// needed (signal-with-start). The governor answers the incident with the
// slot-grant signal; asking twice is harmless.
func (s *SlotActivities) RequestSlot(ctx context.Context, in workflows.AcquireInput) error {
	limits := in.Limits
	if limits == (workflows.GovernorLimits{}) {
		limits = s.Limits
	}
	limits.AccountMaxConcurrent, limits.AccountBreakerCount = 0, 0 // the group's governor has its own
	return s.request(ctx, in, limits)
}

// RequestAccountSlot asks the account-wide governor for a slot (in.Region
// and in.Group are workflows.AccountScope), starting it if needed, when this
// worker runs account-wide limits; otherwise it answers Enabled false and
// the incident asks only its group's governor.
func (s *SlotActivities) RequestAccountSlot(ctx context.Context, in workflows.AcquireInput) (workflows.AccountSlotResult, error) {
	limits, ok := s.Limits.Account()
	if !ok {
		return workflows.AccountSlotResult{}, nil
	}
	in.Region, in.Group = workflows.AccountScope, workflows.AccountScope
	if err := s.request(ctx, in, limits); err != nil {
		return workflows.AccountSlotResult{}, err
	}
	return workflows.AccountSlotResult{Enabled: true}, nil
}

// request signals-with-start the governor of in's account, region and group.
func (s *SlotActivities) request(ctx context.Context, in workflows.AcquireInput, limits workflows.GovernorLimits) error {
	id := workflows.GovernorID(in.Account, in.Region, in.Group)
	_, err := s.Client.SignalWithStartWorkflow(ctx, id, workflows.SignalSlotRequest, in.Request, client.StartWorkflowOptions{
		ID:        id,
		TaskQueue: workflows.TaskQueue,
	}, workflows.GovernorWorkflowName, workflows.GovernorInput{Account: in.Account, Region: in.Region, Group: in.Group, Limits: limits})
	return err
}

// ReleaseSlot returns the incident's slot. A governor that is gone has
// nothing to return.
func (s *SlotActivities) ReleaseSlot(ctx context.Context, in workflows.AcquireInput) error {
	err := s.Client.SignalWorkflow(ctx, workflows.GovernorID(in.Account, in.Region, in.Group), "", workflows.SignalReleaseSlot, in.Request)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return nil
	}
	return err
}
