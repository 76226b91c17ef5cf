package workflows

import (
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/cordonhq/cordon/activities"
)

// Governor is the blast-radius governor of one Auto Scaling group: an entity
// workflow every incident asks (UpdateAcquire) before it takes an instance
// out of service. It never lets the group drop below MinHealthy healthy
// in-service instances (counting incidents already in flight), caps the
// incidents handled at once, and trips a breaker after BreakerCount incidents
// within BreakerWindow: then incidents stop after reversible isolation and
// wait for approval, and the operator is alerted, until reset.
func Governor(ctx workflow.Context, in GovernorInput) error {
	g := &governor{in: in}
	if in.State != nil {
		g.st = *in.State
	} else {
		g.st = GovernorStatus{Group: in.Group}
	}
	g.st.Limits = in.Limits.Normalize()
	if g.st.InFlight == nil {
		g.st.InFlight = map[string]InFlightSlot{}
	}
	if err := workflow.SetQueryHandler(ctx, QueryGovernor, func() (GovernorStatus, error) { return g.st, nil }); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateAcquire, g.acquire, workflow.UpdateHandlerOptions{
		Validator: func(ctx workflow.Context, r SlotRequest) error {
			if r.IncidentID == "" || r.InstanceID == "" {
				return fmt.Errorf("acquire needs an incident ID and an instance ID")
			}
			return nil
		},
	}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandler(ctx, UpdateResetBreaker, func(ctx workflow.Context, d Decision) (GovernorStatus, error) {
		g.st.Tripped = false
		g.st.Recent = nil
		g.changed++
		workflow.GetLogger(ctx).Info("breaker reset", "group", in.Group, "by", d.By)
		return g.st, nil
	}); err != nil {
		return err
	}
	releases := workflow.GetSignalChannel(ctx, SignalReleaseSlot)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var r SlotRequest
			if !releases.Receive(ctx, &r) {
				return
			}
			delete(g.st.InFlight, r.IncidentID)
			g.changed++
		}
	})
	for {
		seen := g.changed
		ok, err := workflow.AwaitWithTimeout(ctx, 24*time.Hour, func() bool { return g.changed != seen })
		if err != nil {
			return err
		}
		g.expire(workflow.Now(ctx))
		idle := len(g.st.InFlight) == 0 && len(g.st.Waiting) == 0 && workflow.AllHandlersFinished(ctx)
		if !ok && idle && !g.st.Tripped {
			return nil // a day without incidents: the next one starts a fresh governor
		}
		if workflow.GetInfo(ctx).GetContinueAsNewSuggested() && len(g.st.Waiting) == 0 && workflow.AllHandlersFinished(ctx) {
			st := g.st
			return workflow.NewContinueAsNewError(ctx, GovernorWorkflowName, GovernorInput{Account: in.Account, Region: in.Region, Group: in.Group, Limits: in.Limits, State: &st})
		}
	}
}

type governor struct {
	in      GovernorInput
	st      GovernorStatus
	changed int
}

// slotTTL drops a slot whose incident never returned it (killed workflow).
const slotTTL = 24 * time.Hour

func (g *governor) expire(now time.Time) {
	for id, s := range g.st.InFlight {
		if now.Sub(s.Since) > slotTTL {
			delete(g.st.InFlight, id)
		}
	}
	lim := g.st.Limits
	g.st.Recent = slices.DeleteFunc(g.st.Recent, func(t time.Time) bool { return now.Sub(t) > lim.BreakerWindow })
}

func (g *governor) acquire(ctx workflow.Context, r SlotRequest) (SlotGrant, error) {
	if _, ok := g.st.InFlight[r.IncidentID]; ok {
		return SlotGrant{Decision: SlotProceed, Reason: "slot already held"}, nil
	}
	lim := g.st.Limits
	g.expire(workflow.Now(ctx))
	grant := SlotGrant{Decision: SlotProceed}
	if !g.st.Tripped && len(g.st.Recent) >= lim.BreakerCount {
		g.st.Tripped = true
		g.alert(ctx, fmt.Sprintf("breaker tripped for group %s: %d incidents within %s; new incidents stop after isolation and wait for approval until reset (starter governor reset %s)",
			g.in.Group, len(g.st.Recent), lim.BreakerWindow, g.in.Group))
	}
	if g.st.Tripped {
		grant.Decision = SlotHold
		grant.Reason = fmt.Sprintf("breaker tripped for group %s: approve to go on, or reset the breaker", g.in.Group)
	}
	g.st.Waiting = append(g.st.Waiting, r.IncidentID)
	g.changed++
	defer func() {
		g.st.Waiting = slices.DeleteFunc(g.st.Waiting, func(id string) bool { return id == r.IncidentID })
		g.changed++
	}()
	for {
		err := workflow.Await(ctx, func() bool {
			return g.st.Waiting[0] == r.IncidentID && len(g.st.InFlight) < lim.MaxConcurrent
		})
		if err != nil {
			return SlotGrant{}, err
		}
		healthy, err := g.capacity(ctx, r)
		if err == nil && healthy >= lim.MinHealthy {
			break
		}
		grant.Waited = true
		if err != nil {
			workflow.GetLogger(ctx).Warn("capacity check failed; retrying", "group", g.in.Group, "error", err)
		}
		if err := workflow.Sleep(ctx, lim.RecheckInterval); err != nil {
			return SlotGrant{}, err
		}
	}
	now := workflow.Now(ctx)
	g.st.InFlight[r.IncidentID] = InFlightSlot{InstanceID: r.InstanceID, Since: now}
	g.st.Recent = append(g.st.Recent, now)
	return grant, nil
}

// capacity counts the group's healthy in-service instances that would remain
// if r's instance and every in-flight incident's instance were out.
func (g *governor) capacity(ctx workflow.Context, r SlotRequest) (int, error) {
	exclude := []string{r.InstanceID}
	for _, s := range g.st.InFlight {
		exclude = append(exclude, s.InstanceID)
	}
	slices.Sort(exclude)
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
	})
	var res activities.CapacityResult
	err := workflow.ExecuteActivity(actx, a.GroupCapacity, activities.CapacityInput{
		Target: activities.Target{Account: g.in.Account, Region: g.in.Region}, Group: g.in.Group, Exclude: exclude,
	}).Get(ctx, &res)
	if err == nil {
		g.st.LastCapacity, g.st.LastCapacityAt = res.Healthy, workflow.Now(ctx)
	}
	return res.Healthy, err
}

func (g *governor) alert(ctx workflow.Context, summary string) {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Second, RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 3}})
	_ = workflow.ExecuteActivity(actx, a.Notify, activities.Alert{
		IncidentID: GovernorID(g.in.Account, g.in.Region, g.in.Group), Account: g.in.Account, Region: g.in.Region,
		Group: g.in.Group, Phase: "breaker-tripped", Severity: "critical", Summary: summary,
	}).Get(ctx, nil)
}
