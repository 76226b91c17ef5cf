package workflows

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
)

// ValidAccountID reports whether id has the shape of an AWS account ID
// (12 digits).
func ValidAccountID(id string) bool { return accountPattern.MatchString(id) }

var (
	accountPattern = regexp.MustCompile(`^[0-9]{12}$`)
	regionPattern  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
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
	if !ValidAccountID(in.Account) {
		return nil, fmt.Errorf("account %q is not a 12-digit AWS account ID", in.Account)
	}
	if !regionPattern.MatchString(in.Region) {
		return nil, fmt.Errorf("region %q is not an AWS region name such as us-east-1", in.Region)
	}
	if in.Evidence.BadIP != "" {
		if _, err := netip.ParseAddr(in.Evidence.BadIP); err != nil {
			return nil, fmt.Errorf("bad IP %q is not an IPv4 or IPv6 address", in.Evidence.BadIP)
		}
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
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			if closed := closedIncident(ctx, c, id); closed != "" {
				return st, fmt.Errorf("incident %s is closed (%s): nothing to %s", id, closed, update)
			}
		}
		return st, notFound(id, err)
	}
	if err := h.Get(ctx, &st); err != nil {
		return st, err
	}
	return st, nil
}

// closedIncident returns the final phase of a closed incident ("resolved"),
// or "" when it is not a closed incident.
func closedIncident(ctx context.Context, c client.Client, id string) string {
	d, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil || d.GetWorkflowExecutionInfo().GetCloseTime() == nil {
		return ""
	}
	if p, ok := d.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields()[SAPhase.GetName()]; ok {
		var phase string
		if converter.GetDefaultDataConverter().FromPayload(p, &phase) == nil && phase != "" {
			return phase
		}
	}
	return "closed"
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
