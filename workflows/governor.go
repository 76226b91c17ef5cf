package workflows

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/cordonhq/cordon/activities"
)

// Governor is the blast-radius governor of one Auto Scaling group: an entity
// workflow every incident asks (SignalSlotRequest) before it takes an
// instance out of service, and which answers the incident (SignalSlotGrant)
// when it may. It never lets the group drop below MinHealthy healthy
// in-service instances (counting incidents already in flight), caps the
// incidents handled at once, and trips a breaker after BreakerCount incidents
// within BreakerWindow: then incidents stop after reversible isolation and
// wait for approval, and the operator is alerted, until reset.
//
// Requests and releases are signals, so any number of incidents can wait
// without holding anything open on the server.
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
	g.instances = map[string]string{}
	g.waited = map[string]map[string]bool{}
	if err := workflow.SetQueryHandler(ctx, QueryGovernor, func() (GovernorStatus, error) { return g.st, nil }); err != nil {
		return err
	}
	// Version 1 incidents asked with a blocking update; keep answering them.
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateAcquire, g.acquireV1, workflow.UpdateHandlerOptions{
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
	requests := workflow.GetSignalChannel(ctx, SignalSlotRequest)
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
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var r SlotRequest
			if !requests.Receive(ctx, &r) {
				return
			}
			g.enqueue(ctx, r)
		}
	})
	for {
		g.expire(workflow.Now(ctx))
		blocked, err := g.grantWaiting(ctx)
		if err != nil {
			return err
		}
		for i, id := range g.st.Waiting {
			why := "a free slot" // behind the head of the queue, it waits for a slot too
			if i == 0 && blocked != "" {
				why = blocked
			}
			if g.waited[id] == nil {
				g.waited[id] = map[string]bool{}
			}
			g.waited[id][why] = true
		}
		wait := 24 * time.Hour
		if len(g.st.Waiting) > 0 {
			wait = g.st.Limits.RecheckInterval // capacity may have come back
		}
		seen := g.changed
		ok, err := workflow.AwaitWithTimeout(ctx, wait, func() bool { return g.changed != seen })
		if err != nil {
			return err
		}
		idle := len(g.st.InFlight) == 0 && len(g.st.Waiting) == 0 && workflow.AllHandlersFinished(ctx)
		if !ok && idle && !g.st.Tripped && wait == 24*time.Hour {
			return nil // a day without incidents: the next one starts a fresh governor
		}
		if workflow.GetInfo(ctx).GetContinueAsNewSuggested() && len(g.st.Waiting) == 0 && workflow.AllHandlersFinished(ctx) {
			st := g.st
			return workflow.NewContinueAsNewError(ctx, GovernorWorkflowName, GovernorInput{Account: in.Account, Region: in.Region, Group: in.Group, Limits: in.Limits, State: &st})
		}
	}
}

type governor struct {
	in        GovernorInput
	st        GovernorStatus
	changed   int
	instances map[string]string          // waiting incident → instance
	waited    map[string]map[string]bool // waiting incident → what it was held back for ("a free slot", "healthy capacity")
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

func (g *governor) enqueue(ctx workflow.Context, r SlotRequest) {
	if r.IncidentID == "" || r.InstanceID == "" {
		return
	}
	if _, ok := g.st.InFlight[r.IncidentID]; ok {
		// A repeated request (the incident's activity retried): answer again.
		g.answer(ctx, r.IncidentID, SlotGrant{Decision: SlotProceed, Reason: "slot already held"})
		return
	}
	if slices.Contains(g.st.Waiting, r.IncidentID) {
		return
	}
	g.st.Waiting = append(g.st.Waiting, r.IncidentID)
	g.instances[r.IncidentID] = r.InstanceID
	g.changed++
}

// grantWaiting grants queued requests in order while a slot is free and the
// group keeps enough healthy capacity. It returns what holds the head of the
// queue back ("a free slot", "healthy capacity"; "" when nothing waits).
func (g *governor) grantWaiting(ctx workflow.Context) (string, error) {
	lim := g.st.Limits
	for len(g.st.Waiting) > 0 {
		if len(g.st.InFlight) >= lim.MaxConcurrent {
			return "a free slot", nil
		}
		id := g.st.Waiting[0]
		r := SlotRequest{IncidentID: id, InstanceID: g.instances[id]}
		healthy, err := g.capacity(ctx, r)
		if err != nil {
			workflow.GetLogger(ctx).Warn("capacity check failed; retrying", "group", g.in.Group, "error", err)
			return "a capacity check that failed", nil
		}
		if healthy < lim.MinHealthy {
			return "healthy capacity", nil // the group must keep MinHealthy healthy instances
		}
		grant := g.decide(ctx)
		grant.Waited = len(g.waited[id]) > 0
		grant.WaitedFor = waitedFor(g.waited[id])
		g.st.Waiting = g.st.Waiting[1:]
		delete(g.instances, id)
		delete(g.waited, id)
		now := workflow.Now(ctx)
		g.st.InFlight[id] = InFlightSlot{InstanceID: r.InstanceID, Since: now}
		g.st.Recent = append(g.st.Recent, now)
		g.changed++
		g.answer(ctx, id, grant)
	}
	return "", nil
}

// waitedFor says what a request waited for, in a fixed order.
func waitedFor(why map[string]bool) string {
	var out []string
	for _, w := range []string{"a free slot", "healthy capacity", "a capacity check that failed"} {
		if why[w] {
			out = append(out, w)
		}
	}
	return strings.Join(out, " and ")
}

// decide says whether the next grant proceeds or holds (breaker).
func (g *governor) decide(ctx workflow.Context) SlotGrant {
	lim := g.st.Limits
	what, reset := "group "+g.in.Group, "--group "+g.in.Group
	if g.in.Group == AccountScope {
		what, reset = "account "+g.in.Account+" (all groups)", "--account "+g.in.Account+" --region '*' --group '*'"
	}
	if !g.st.Tripped && len(g.st.Recent) >= lim.BreakerCount {
		g.st.Tripped = true
		g.alert(ctx, fmt.Sprintf("breaker tripped for %s: %d incidents within %s; new incidents stop after isolation and wait for approval until reset (starter governor reset %s)",
			what, len(g.st.Recent), lim.BreakerWindow, reset))
	}
	if g.st.Tripped {
		return SlotGrant{Decision: SlotHold, Reason: fmt.Sprintf("breaker tripped for %s: approve to go on, or reset the breaker", what)}
	}
	return SlotGrant{Decision: SlotProceed}
}

// answer signals the incident; an incident that is gone gives its slot back.
func (g *governor) answer(ctx workflow.Context, incidentID string, grant SlotGrant) {
	grant.Governor = GovernorID(g.in.Account, g.in.Region, g.in.Group)
	if err := workflow.SignalExternalWorkflow(ctx, incidentID, "", SignalSlotGrant, grant).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Warn("incident gone; slot returned", "incidentID", incidentID, "error", err)
		delete(g.st.InFlight, incidentID)
		g.changed++
	}
}

// acquireV1 answers version-1 incidents, which wait in an update.
func (g *governor) acquireV1(ctx workflow.Context, r SlotRequest) (SlotGrant, error) {
	if _, ok := g.st.InFlight[r.IncidentID]; ok {
		return SlotGrant{Decision: SlotProceed, Reason: "slot already held"}, nil
	}
	lim := g.st.Limits
	for {
		if err := workflow.Await(ctx, func() bool { return len(g.st.InFlight) < lim.MaxConcurrent }); err != nil {
			return SlotGrant{}, err
		}
		if healthy, err := g.capacity(ctx, r); err == nil && healthy >= lim.MinHealthy {
			break
		}
		if err := workflow.Sleep(ctx, lim.RecheckInterval); err != nil {
			return SlotGrant{}, err
		}
	}
	grant := g.decide(ctx)
	now := workflow.Now(ctx)
	g.st.InFlight[r.IncidentID] = InFlightSlot{InstanceID: r.InstanceID, Since: now}
	g.st.Recent = append(g.st.Recent, now)
	g.changed++
	return grant, nil
}

// capacity counts the group's healthy in-service instances that would remain
// if r's instance and every in-flight incident's instance were out.
func (g *governor) capacity(ctx workflow.Context, r SlotRequest) (int, error) {
	if g.in.Group == AccountScope {
		// The account-wide governor caps incidents and trips its breaker;
		// healthy capacity is each group's governor's business.
		return math.MaxInt32, nil
	}
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
