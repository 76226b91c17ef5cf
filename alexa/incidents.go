package alexa

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
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
	// Breakers lists the tripped blast-radius breakers: running governors
	// (workflows.GovernorWorkflowName) whose workflows.QueryGovernor status
	// says Tripped, ordered by governor ID. On an error the list holds the
	// tripped breakers that could be read.
	Breakers(ctx context.Context) ([]Breaker, error)
	// ResetBreaker sends workflows.UpdateResetBreaker to the governor id and
	// waits for its result. A governor that does not exist (any more) is
	// ErrNoGovernor.
	ResetBreaker(ctx context.Context, id string, d workflows.Decision) (workflows.GovernorStatus, error)
}

// Breaker is a group's tripped blast-radius breaker: while it is tripped,
// new incidents in the group stop after reversible isolation and wait for
// approval.
type Breaker struct {
	ID      string // governor workflow ID: governor/<account>/<region>/<group>
	Account string
	Region  string
	Group   string
	Recent  int                      // slots granted within the breaker window
	Limits  workflows.GovernorLimits // BreakerCount, BreakerWindow
}

// ErrNoGovernor is a reset for a governor that does not exist (any more):
// a governor without a tripped breaker ends after a quiet day.
var ErrNoGovernor = errors.New("no such governor")

// governorPrefix starts every governor workflow ID ("governor/").
var governorPrefix = strings.TrimSuffix(workflows.GovernorID("", "", ""), "//")

// ParseGovernorID splits a workflow ID made by workflows.GovernorID. The
// group is the rest after the region, so a group name may contain "/".
func ParseGovernorID(id string) (account, region, group string, err error) {
	rest, ok := strings.CutPrefix(id, governorPrefix)
	parts := strings.SplitN(rest, "/", 3)
	if !ok || len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return "", "", "", fmt.Errorf("%q is not a governor ID: want governor/<account>/<region>/<group>", id)
	}
	return parts[0], parts[1], parts[2], nil
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
	// QueryWait bounds each governor-status query of Breakers (default
	// 2 s): a query needs a worker, and a status answer should not wait
	// for one that is down.
	QueryWait time.Duration
	// MaxGovernors caps the governors Breakers reads (default 500).
	MaxGovernors int
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

// Breakers lists running GovernorWorkflow executions, queries each (a few
// at a time) and keeps those whose breaker is tripped.
func (t *TemporalIncidents) Breakers(ctx context.Context) ([]Breaker, error) {
	max := t.MaxGovernors
	if max <= 0 {
		max = 500
	}
	var ids []string
	var token []byte
	for len(ids) < max {
		resp, err := t.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query:         fmt.Sprintf("WorkflowType = %q AND ExecutionStatus = %q", workflows.GovernorWorkflowName, "Running"),
			PageSize:      int32(min(max, 100)),
			NextPageToken: token,
		})
		if err != nil {
			return nil, fmt.Errorf("listing governors: %w", err)
		}
		for _, e := range resp.GetExecutions() {
			if len(ids) < max {
				ids = append(ids, e.GetExecution().GetWorkflowId())
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	wait := t.QueryWait
	if wait <= 0 {
		wait = 2 * time.Second
	}
	var (
		mu   sync.Mutex
		out  []Breaker
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, 8)
	)
	for _, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			st, err := t.governorStatus(ctx, id, wait)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, ErrNoGovernor):
				// Ended between the list and the query: nothing tripped.
			case err != nil:
				errs = append(errs, err)
			case st.Tripped:
				b := Breaker{ID: id, Group: st.Group, Recent: len(st.Recent), Limits: st.Limits}
				if acct, region, group, err := ParseGovernorID(id); err == nil {
					b.Account, b.Region = acct, region
					if b.Group == "" {
						b.Group = group
					}
				}
				out = append(out, b)
			}
		}()
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, errors.Join(errs...)
}

func (t *TemporalIncidents) governorStatus(ctx context.Context, id string, wait time.Duration) (workflows.GovernorStatus, error) {
	var st workflows.GovernorStatus
	qctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	v, err := t.Client.QueryWorkflow(qctx, id, "", workflows.QueryGovernor)
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return st, fmt.Errorf("%w: %s", ErrNoGovernor, id)
		}
		return st, fmt.Errorf("governor %s: %w", id, err)
	}
	if err := v.Get(&st); err != nil {
		return st, fmt.Errorf("governor %s: %w", id, err)
	}
	return st, nil
}

// ResetBreaker sends the reset-breaker update, as starter governor reset
// does, and waits for its result (the handler only clears the breaker).
func (t *TemporalIncidents) ResetBreaker(ctx context.Context, id string, d workflows.Decision) (workflows.GovernorStatus, error) {
	var st workflows.GovernorStatus
	h, err := t.Client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   id,
		UpdateName:   workflows.UpdateResetBreaker,
		Args:         []any{d},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return st, fmt.Errorf("%w: %s", ErrNoGovernor, id)
		}
		return st, err
	}
	if err := h.Get(ctx, &st); err != nil {
		return st, err
	}
	return st, nil
}
