package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	neturl "net/url"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/cordonhq/cordon/activities"
)

// a is only used to name activity methods; the worker registers the real one.
var a *activities.Activities

// Quarantine is the incident workflow. It reads like the runbook in
// DESIGN.md: preflight, alert, reversible isolation, approval gate, evidence
// image, quarantine copy, terminate, verify healing, clean up. Failure before
// termination leaves the instance isolated and its image kept and ends the
// incident as needs-attention; containment is never undone automatically.
func Quarantine(ctx workflow.Context, in QuarantineInput) (QuarantineResult, error) {
	inc, err := newIncident(ctx, in)
	if err != nil {
		return QuarantineResult{}, err
	}
	runErr := inc.run(ctx)
	if runErr != nil && temporal.IsCanceledError(runErr) {
		// Cancellation: keep containment, record and alert on a
		// disconnected context so the activities still run.
		dctx, cancel := workflow.NewDisconnectedContext(ctx)
		defer cancel()
		inc.compensateCancel(dctx)
		inc.releaseSlot(dctx)
		return inc.result(), runErr
	}
	if runErr != nil {
		inc.needsAttention(ctx, runErr.Error())
	}
	inc.releaseSlot(ctx)
	// Let in-flight update handlers (release waits for the release) return.
	_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
	return inc.result(), nil
}

type incident struct {
	// pendingAlert is the opened alert while it runs beside containment.
	pendingAlert workflow.Future

	in     QuarantineInput
	policy Policy
	target activities.Target
	logger interface {
		Info(string, ...any)
		Warn(string, ...any)
	}
	st Status

	isolated        bool // reversible isolation completed (release possible)
	destroyed       bool // the original was terminated: release no longer possible
	protectionOff   bool // termination protection was turned off to terminate
	groupMembers    []string
	quarantineSub   string
	isoGroups       activities.IsolationGroupsResult
	mustApprove     bool   // approval required regardless of policy (no group heals it, or the breaker tripped)
	mustReason      string // why
	slotHeld        bool   // the group's governor gave this incident a slot
	accountSlotHeld bool   // the account-wide governor gave this incident a slot
	decision        string
	decisionBy      string
	releaseWanted   bool
	releaseBy       string
	releaseDone     bool
	releaseErr      string
	cancelRelease   workflow.CancelFunc // cancels the running long wait when release arrives
	evidenceSignal  workflow.ReceiveChannel
	ctx             workflow.Context // the root context, for the workflow clock
}

// errReleased unwinds the runbook when a release was requested mid-way.
var errReleased = errors.New("released by operator")

func newIncident(ctx workflow.Context, in QuarantineInput) (*incident, error) {
	info := workflow.GetInfo(ctx)
	inc := &incident{
		in:     in,
		target: activities.Target{Account: in.Account, Region: in.Region},
		logger: workflow.GetLogger(ctx),
		ctx:    ctx,
	}
	inc.st = Status{
		IncidentID: info.WorkflowExecution.ID,
		Account:    in.Account,
		Region:     in.Region,
		InstanceID: in.InstanceID,
		BadIP:      in.Evidence.BadIP,
		Phase:      PhaseOpened,
		Opened:     workflow.Now(ctx),
		Phases:     []PhaseChange{{Phase: PhaseOpened, At: workflow.Now(ctx)}},
		Steps:      []Step{},
		Evidence:   []Evidence{},
	}
	inc.addEvidence(in.Evidence)
	workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"source": in.Evidence.Source}).Counter("cordon_incidents_opened").Inc(1)
	p, perr := in.Policy.Normalize()
	inc.policy = p
	inc.st.Policy = p

	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (Status, error) { return inc.st, nil }); err != nil {
		return nil, err
	}
	inc.evidenceSignal = workflow.GetSignalChannel(ctx, SignalEvidence)
	workflow.Go(ctx, func(ctx workflow.Context) {
		// SignalWithStart delivers the opening alert twice: as the input
		// and as the first signal. Count it once.
		startEvidence := true
		for {
			var ev Evidence
			more := inc.evidenceSignal.Receive(ctx, &ev)
			if !more {
				return
			}
			if startEvidence && sameEvidence(ev, in.Evidence) {
				startEvidence = false
				continue
			}
			inc.addEvidence(ev)
		}
	})
	if err := inc.setUpdateHandlers(ctx); err != nil {
		return nil, err
	}
	inc.upsert(ctx)
	if perr != nil {
		inc.st.Reason = perr.Error()
	}
	if perr == nil && !ValidInstanceID(in.InstanceID) {
		perr = fmt.Errorf("%q is not an EC2 instance ID (i- and 8 or 17 hex digits)", in.InstanceID)
		inc.st.Reason = perr.Error()
	}
	if perr != nil {
		inc.finish(ctx, PhaseNeedsAttention, OutcomeNeedsAttention, perr.Error())
	}
	return inc, nil
}

func sameEvidence(a, b Evidence) bool {
	return a.Source == b.Source && a.BadIP == b.BadIP && a.Rule == b.Rule && a.Reason == b.Reason &&
		a.Time.Equal(b.Time) && a.Ref == b.Ref && a.Raw == b.Raw
}

func (inc *incident) addEvidence(ev Evidence) {
	inc.st.EvidenceCount++
	if len(inc.st.Evidence) < MaxEvidence {
		if len(ev.Raw) > 4096 {
			ev.Raw = ev.Raw[:4096]
		}
		inc.st.Evidence = append(inc.st.Evidence, ev)
	}
	if inc.st.BadIP == "" && ev.BadIP != "" {
		inc.st.BadIP = ev.BadIP
	}
}

func (inc *incident) setUpdateHandlers(ctx workflow.Context) error {
	waiting := func() error {
		if inc.st.Phase != PhaseAwaitingApproval {
			return fmt.Errorf("incident %s is %s, not waiting for approval", inc.st.IncidentID, inc.st.Phase)
		}
		if inc.decision != "" {
			return fmt.Errorf("incident %s was already %s by %s", inc.st.IncidentID, inc.decision, inc.decisionBy)
		}
		return nil
	}
	decide := func(what string) func(workflow.Context, Decision) (Status, error) {
		return func(ctx workflow.Context, d Decision) (Status, error) {
			inc.decision, inc.decisionBy = what, d.By
			return inc.st, nil
		}
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateApprove, decide("approved"), workflow.UpdateHandlerOptions{
		Validator: func(ctx workflow.Context, d Decision) error { return waiting() },
	}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateReject, decide("rejected"), workflow.UpdateHandlerOptions{
		Validator: func(ctx workflow.Context, d Decision) error { return waiting() },
	}); err != nil {
		return err
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, UpdateRelease,
		func(ctx workflow.Context, d Decision) (Status, error) {
			inc.releaseWanted, inc.releaseBy = true, d.By
			if inc.cancelRelease != nil {
				inc.cancelRelease()
			}
			if err := workflow.Await(ctx, func() bool { return inc.releaseDone }); err != nil {
				return inc.st, err
			}
			if inc.releaseErr != "" {
				return inc.st, fmt.Errorf("release of %s failed: %s", inc.st.IncidentID, inc.releaseErr)
			}
			return inc.st, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, d Decision) error {
			switch {
			case inc.releaseWanted:
				return fmt.Errorf("incident %s is already being released", inc.st.IncidentID)
			case inc.st.Phase.Final():
				return fmt.Errorf("incident %s is closed (%s): nothing to release", inc.st.IncidentID, inc.st.Phase)
			case inc.destroyed || inc.st.Phase == PhaseTerminating || inc.st.Phase == PhaseHealing || inc.st.Phase == PhaseCleaningUp:
				return fmt.Errorf("incident %s can no longer be released: the original instance is being or was terminated", inc.st.IncidentID)
			case !inc.isolated:
				return fmt.Errorf("incident %s is %s: release is possible once isolation has finished", inc.st.IncidentID, inc.st.Phase)
			}
			return nil
		}})
}

// run executes the runbook.
func (inc *incident) run(ctx workflow.Context) error {
	if inc.st.Phase.Final() {
		return nil
	}
	pf, err := inc.preflight(ctx)
	if err != nil || inc.st.Phase.Final() {
		return err
	}
	if inc.policy.DryRun {
		inc.plan(ctx, pf)
		return nil
	}
	opened := fmt.Sprintf("%s %s; containing it", inc.in.InstanceID, inc.what())
	if workflow.GetVersion(ctx, "opened-alert-async", workflow.DefaultVersion, 1) == 1 {
		// Alerting never delays containment: a slow channel (a rate-limited
		// light) runs while the incident asks the governor and isolates.
		// Later alerts wait for it, so the light goes red before it clears.
		inc.pendingAlert = inc.startAlert(ctx, "opened", "critical", "alarm", opened)
	} else {
		inc.alert(ctx, "opened", "critical", "alarm", opened)
	}
	if err := inc.acquireSlot(ctx); err != nil {
		return err
	}

	if err := inc.isolate(ctx, pf); err != nil {
		return err
	}
	if err := inc.approvalGate(ctx); err != nil {
		if errors.Is(err, errReleased) {
			return inc.release(ctx)
		}
		return err
	}
	if inc.st.Phase.Final() {
		return nil
	}
	if err := inc.evidence(ctx); err != nil {
		if errors.Is(err, errReleased) {
			return inc.release(ctx)
		}
		return err
	}
	if err := inc.relaunch(ctx); err != nil {
		if errors.Is(err, errReleased) {
			return inc.release(ctx)
		}
		return err
	}
	if inc.releaseWanted {
		return inc.release(ctx)
	}
	if err := inc.terminate(ctx); err != nil {
		return err
	}
	warning := inc.heal(ctx)
	inc.cleanup(ctx)
	outcome, reason := OutcomeResolved, "contained, imaged, relaunched in quarantine, terminated; group healed"
	if !*inc.policy.Relaunch {
		reason = "contained, imaged, terminated; group healed"
	}
	if warning != "" {
		outcome, reason = OutcomeResolvedWarn, warning
	}
	inc.finish(ctx, PhaseResolved, outcome, reason)
	inc.alert(ctx, string(PhaseResolved), "info", "clear", reason)
	return nil
}

// ---------------------------------------------------------------------------
// 1. Preflight

func (inc *incident) preflight(ctx workflow.Context) (activities.PreflightResult, error) {
	inc.setPhase(ctx, PhasePreflight)
	// Read-only and quick; retry transient errors for up to 5 minutes.
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    time.Minute,
		ScheduleToCloseTimeout: 5 * time.Minute,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second},
	})
	var pf activities.PreflightResult
	done := inc.step("preflight")
	err := workflow.ExecuteActivity(actx, a.Preflight, activities.PreflightInput{
		Target: inc.target, InstanceID: inc.in.InstanceID, ProtectTag: inc.policy.ProtectTag, QuarantineSubnet: inc.policy.QuarantineSubnet,
	}).Get(ctx, &pf)
	if err != nil {
		done(err, "")
		return pf, err
	}
	for _, w := range pf.Warnings {
		inc.warn(w)
	}
	switch {
	case !pf.Found:
		done(nil, "instance "+pf.State)
		reason := fmt.Sprintf("instance %s is %s in %s/%s: nothing to contain", inc.in.InstanceID, pf.State, inc.in.Account, inc.in.Region)
		inc.finish(ctx, PhaseSkipped, OutcomeInstanceGone, reason)
		inc.alert(ctx, string(PhaseSkipped), "warning", "", reason)
		return pf, nil
	case pf.Protected:
		by := pf.ProtectedBy
		if by == "" { // recorded before ProtectedBy existed
			by = "tag " + inc.policy.ProtectTag
		}
		done(nil, "protected by "+by)
		reason := fmt.Sprintf("instance %s is protected by %s: Cordon leaves it alone", inc.in.InstanceID, by)
		inc.finish(ctx, PhaseSkipped, OutcomeProtected, reason)
		inc.alert(ctx, string(PhaseSkipped), "warning", "", reason)
		return pf, nil
	}
	ps := pf.PreState
	inc.st.PreState = &ps
	inc.st.Group = ps.AutoScalingGroup
	inc.quarantineSub = pf.QuarantineSubnetID
	inc.groupMembers = pf.GroupMembers
	detail := fmt.Sprintf("%s, %d ENI(s)", ps.InstanceState, len(ps.ENIs))
	if ps.AutoScalingGroup == "" {
		inc.mustApprove = true
		inc.mustReason = "not in an Auto Scaling group: nothing would replace it"
		inc.warn("instance is not in an Auto Scaling group: nothing would replace it, so Cordon contains it and waits for approval before terminating")
		detail += ", no Auto Scaling group"
	} else {
		detail += ", group " + ps.AutoScalingGroup
	}
	done(nil, detail)
	inc.upsert(ctx)
	return pf, nil
}

// plan records what a real run would do, without any mutating call.
func (inc *incident) plan(ctx workflow.Context, pf activities.PreflightResult) {
	for _, s := range Plan(inc.in, pf) {
		inc.st.Steps = append(inc.st.Steps, Step{Name: s.Name, Started: workflow.Now(ctx), Ended: workflow.Now(ctx), Outcome: StepPlanned, Detail: strings.Join(s.Calls, ", ")})
	}
	reason := "dry run: the steps above were planned, nothing was changed"
	if workflow.GetVersion(ctx, "plan-permissions", workflow.DefaultVersion, 1) == 1 {
		if denied := inc.checkPermissions(ctx, pf); denied > 0 {
			reason += fmt.Sprintf("; %d EC2 call(s) would be DENIED to this worker's credentials (see the permissions step)", denied)
		}
	}
	inc.finish(ctx, PhaseSkipped, OutcomeDryRun, reason)
}

// checkPermissions asks EC2, with DryRun, whether the worker may make the
// plan's EC2 calls, records the answers as the step "permissions" and
// returns how many were denied.
func (inc *incident) checkPermissions(ctx workflow.Context, pf activities.PreflightResult) int {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 5},
	})
	done := inc.step("permissions")
	var res activities.PermissionsResult
	err := workflow.ExecuteActivity(actx, a.CheckPermissions, activities.PermissionsInput{Target: inc.target, InstanceID: inc.in.InstanceID, PreState: pf.PreState}).Get(ctx, &res)
	if err != nil {
		done(err, "")
		return 0
	}
	var parts []string
	for _, c := range res.Checks {
		p := strings.TrimPrefix(c.Call, "ec2:") + " " + c.Result
		if c.Detail != "" {
			p += " (" + c.Detail + ")"
		}
		parts = append(parts, p)
	}
	done(nil, "EC2 DryRun: "+strings.Join(parts, "; ")+"; Auto Scaling, ELB and SNS have no DryRun (see deploy/iam-policy.json)")
	return res.Denied()
}

// PlannedStep is one step of a dry-run plan with the AWS calls it would make,
// each "service:Operation", optionally followed by " — a note".
type PlannedStep struct {
	Name  string   `json:"name"`
	Calls []string `json:"calls"`
}

// Plan lists the steps and AWS calls a run with this input would make for
// the instance described by pf.
func Plan(in QuarantineInput, pf activities.PreflightResult) []PlannedStep {
	p, _ := in.Policy.Normalize()
	ps := pf.PreState
	var steps []PlannedStep
	add := func(name string, calls ...string) { steps = append(steps, PlannedStep{name, calls}) }
	add("alert", "sns:Publish")
	if ps.AutoScalingGroup != "" {
		add("governor", "autoscaling:DescribeAutoScalingGroups — the governor of "+ps.AutoScalingGroup+" counts healthy capacity", "elasticloadbalancing:DescribeTargetHealth")
	}
	add("isolation-groups", "ec2:DescribeSecurityGroups — then CreateSecurityGroup, AuthorizeSecurityGroupIngress/Egress (transition group: all traffic both ways, IPv4 and IPv6) and RevokeSecurityGroupIngress/Egress (isolation group: no rule at all) only where a group is missing or its rules differ")
	if ps.AutoScalingGroup != "" {
		add("detach", "autoscaling:DetachInstances — from "+ps.AutoScalingGroup+", ShouldDecrementDesiredCapacity=false")
	}
	if len(ps.TargetGroupARNs) > 0 {
		add("deregister-targets", "elasticloadbalancing:DescribeTargetHealth — then DeregisterTargets only for a registration the detach left (the detach drains the group's own)")
	}
	for _, e := range ps.ENIs {
		add("isolate-"+e.ENIID, "ec2:ModifyNetworkInterfaceAttribute — transition group", "ec2:ModifyNetworkInterfaceAttribute — isolation group")
	}
	add("termination-protection", "ec2:ModifyInstanceAttribute — DisableApiTermination=true")
	add("tag", "ec2:CreateTags")
	if p.Approval == ApprovalBeforeDestructive || ps.AutoScalingGroup == "" {
		add("approval", "— wait for approve or reject")
	}
	add("image", "ec2:CreateImage — NoReboot=true", "ec2:DescribeImages — until available")
	if *p.Relaunch {
		add("quarantine-copy", "ec2:RunInstances — subnet "+pf.QuarantineSubnetID+", isolation group, no profile, no public IP")
	}
	add("terminate", "ec2:ModifyInstanceAttribute — DisableApiTermination=false", "ec2:TerminateInstances")
	if ps.AutoScalingGroup != "" {
		add("heal", "autoscaling:DescribeAutoScalingGroups — until healed")
	}
	calls := []string{"ec2:DeregisterImage"}
	if p.Snapshots == SnapshotsDelete {
		calls = append(calls, "ec2:DeleteSnapshot")
	}
	add("cleanup", calls...)
	add("resolved-alert", "sns:Publish")
	return steps
}

// ---------------------------------------------------------------------------
// 2. Alert

// alert is best effort: short timeouts, few retries, failures only logged.
func (inc *incident) alert(ctx workflow.Context, phase, severity, light, summary string) {
	if f := inc.startAlert(ctx, phase, severity, light, summary); f != nil {
		inc.awaitAlert(ctx, f)
	}
}

// startAlert schedules the Notify activity after any alert still in flight
// (nil in a dry run).
func (inc *incident) startAlert(ctx workflow.Context, phase, severity, light, summary string) workflow.Future {
	if inc.policy.DryRun {
		return nil
	}
	if f := inc.pendingAlert; f != nil {
		inc.pendingAlert = nil
		inc.awaitAlert(ctx, f)
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
	})
	url := ""
	if inc.in.UIBaseURL != "" {
		url = strings.TrimRight(inc.in.UIBaseURL, "/") + "/namespaces/" + neturl.PathEscape(workflow.GetInfo(ctx).Namespace) + "/workflows/" + neturl.PathEscape(inc.st.IncidentID)
	}
	return workflow.ExecuteActivity(actx, a.Notify, activities.Alert{
		IncidentID: inc.st.IncidentID, InstanceID: inc.in.InstanceID, Account: inc.in.Account, Region: inc.in.Region,
		BadIP: inc.st.BadIP, Group: inc.st.Group, Phase: phase, Outcome: string(inc.st.Outcome),
		Severity: severity, Summary: summary, URL: url, Light: light,
	})
}

func (inc *incident) awaitAlert(ctx workflow.Context, f workflow.Future) {
	var res activities.NotifyResult
	if err := f.Get(ctx, &res); err != nil {
		inc.logger.Warn("alert failed", "incidentID", inc.st.IncidentID, "error", err)
	}
}

// ---------------------------------------------------------------------------
// 2b. Ask the group's blast-radius governor

// acquireSlot asks the governor of the instance's group before the instance
// leaves service. The answer may take a while (a slot or healthy capacity to
// free up): after a few seconds the incident shows phase queued.
func (inc *incident) acquireSlot(ctx workflow.Context) error {
	ps := inc.st.PreState
	if ps == nil || ps.AutoScalingGroup == "" {
		return nil
	}
	v := workflow.GetVersion(ctx, "governor", workflow.DefaultVersion, 2)
	if v == workflow.DefaultVersion {
		return nil
	}
	done := inc.step("governor")
	req := AcquireInput{
		Account: inc.in.Account, Region: inc.in.Region, Group: ps.AutoScalingGroup,
		Request: SlotRequest{IncidentID: inc.st.IncidentID, InstanceID: inc.in.InstanceID},
	}
	if v == 2 && workflow.GetVersion(ctx, "account-governor", workflow.DefaultVersion, 1) == 1 {
		return inc.acquireSlots(ctx, req, done)
	}
	var grant SlotGrant
	var wait workflow.Future // resolves when the governor has answered
	if v == 1 {
		// Version 1 waited in an update on the governor, from a heartbeating activity.
		actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: 24 * time.Hour,
			HeartbeatTimeout:    time.Minute,
			RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: time.Minute},
		})
		wait = workflow.ExecuteActivity(actx, ActivityAcquireSlot, req)
	} else {
		// Ask with signal-with-start (quick; retried like any AWS-free call),
		// then wait for the governor's answer on the slot-grant signal.
		if err := workflow.ExecuteActivity(slotOpts(ctx), ActivityRequestSlot, req).Get(ctx, nil); err != nil {
			done(err, "")
			return &stepError{step: "governor", cause: err}
		}
		f, settable := workflow.NewFuture(ctx)
		workflow.Go(ctx, func(ctx workflow.Context) {
			var g SlotGrant
			workflow.GetSignalChannel(ctx, SignalSlotGrant).Receive(ctx, &g)
			settable.Set(g, nil)
		})
		wait = f
	}
	grant, err := inc.awaitGrant(ctx, wait, "the governor of "+ps.AutoScalingGroup+": a free slot and enough healthy capacity")
	if err != nil {
		done(err, "")
		return &stepError{step: "governor", cause: err}
	}
	inc.slotHeld = true
	inc.noteGrant(grant)
	done(nil, grantDetail(grant))
	return nil
}

// awaitGrant waits for a governor's answer; after a few seconds the
// incident shows phase queued, with why.
func (inc *incident) awaitGrant(ctx workflow.Context, wait workflow.Future, waitingFor string) (SlotGrant, error) {
	var grant SlotGrant
	queued := false
	sel := workflow.NewSelector(ctx)
	sel.AddFuture(wait, func(workflow.Future) {})
	sel.AddFuture(workflow.NewTimer(ctx, 3*time.Second), func(workflow.Future) {
		queued = true
		inc.setPhase(ctx, PhaseQueued)
		inc.st.Reason = "waiting for " + waitingFor
	})
	sel.Select(ctx)
	err := wait.Get(ctx, &grant)
	if queued {
		inc.st.Reason = ""
	}
	return grant, err
}

// noteGrant applies a hold (the breaker of the account or the group).
func (inc *incident) noteGrant(grant SlotGrant) {
	if grant.Decision == SlotHold {
		inc.mustApprove = true
		if inc.mustReason != "" {
			inc.mustReason += "; "
		}
		inc.mustReason += grant.Reason
	}
}

func grantDetail(grant SlotGrant) string {
	detail := grant.Decision
	switch {
	case grant.WaitedFor != "":
		detail += " after waiting for " + grant.WaitedFor
	case grant.Waited:
		detail += " after waiting"
	}
	if grant.Decision == SlotHold {
		detail += ": " + grant.Reason
	}
	return detail
}

// acquireSlots (version 1 of "account-governor") asks the account-wide
// governor first, when the worker runs one, then the group's. Each answer
// is told apart by the governor that sent it, so a repeated answer of the
// one cannot pass for the other.
func (inc *incident) acquireSlots(ctx workflow.Context, req AcquireInput, done func(error, string)) error {
	actx := slotOpts(ctx)
	grants := workflow.GetSignalChannel(ctx, SignalSlotGrant)
	from := func(governor string) workflow.Future {
		f, settable := workflow.NewFuture(ctx)
		workflow.Go(ctx, func(ctx workflow.Context) {
			for {
				var g SlotGrant
				grants.Receive(ctx, &g)
				if g.Governor == "" || g.Governor == governor {
					settable.Set(g, nil)
					return
				}
			}
		})
		return f
	}
	fail := func(err error) error {
		done(err, "")
		return &stepError{step: "governor", cause: err}
	}
	var details []string
	areq := req
	areq.Region, areq.Group = AccountScope, AccountScope
	var acct AccountSlotResult
	if err := workflow.ExecuteActivity(actx, ActivityRequestAccountSlot, areq).Get(ctx, &acct); err != nil {
		return fail(err)
	}
	if acct.Enabled {
		g, err := inc.awaitGrant(ctx, from(AccountGovernorID(req.Account)), "the account-wide governor of "+req.Account+": a free slot")
		if err != nil {
			return fail(err)
		}
		inc.accountSlotHeld = true
		inc.noteGrant(g)
		details = append(details, "account: "+grantDetail(g))
	}
	if err := workflow.ExecuteActivity(actx, ActivityRequestSlot, req).Get(ctx, nil); err != nil {
		return fail(err)
	}
	g, err := inc.awaitGrant(ctx, from(GovernorID(req.Account, req.Region, req.Group)), "the governor of "+req.Group+": a free slot and enough healthy capacity")
	if err != nil {
		return fail(err)
	}
	inc.slotHeld = true
	inc.noteGrant(g)
	if len(details) == 0 {
		done(nil, grantDetail(g))
	} else {
		done(nil, strings.Join(append(details, "group: "+grantDetail(g)), "; "))
	}
	return nil
}

// slotOpts are the options of the quick slot requests to the governors.
func slotOpts(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 30 * time.Second},
	})
}

// releaseSlot returns the governor slot (best effort: the governor also
// expires slots that are never returned).
func (inc *incident) releaseSlot(ctx workflow.Context) {
	if inc.accountSlotHeld {
		inc.returnSlot(ctx, AccountScope, AccountScope, "account-wide governor")
		inc.accountSlotHeld = false
	}
	if inc.slotHeld {
		inc.returnSlot(ctx, inc.in.Region, inc.st.PreState.AutoScalingGroup, "governor")
		inc.slotHeld = false
	}
}

func (inc *incident) returnSlot(ctx workflow.Context, region, group, governor string) {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Second, RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 5}})
	if err := workflow.ExecuteActivity(actx, ActivityReleaseSlot, AcquireInput{
		Account: inc.in.Account, Region: region, Group: group,
		Request: SlotRequest{IncidentID: inc.st.IncidentID, InstanceID: inc.in.InstanceID},
	}).Get(ctx, nil); err != nil {
		inc.logger.Warn(governor+" slot not returned; it expires by itself", "incidentID", inc.st.IncidentID, "error", err)
	}
}

// ---------------------------------------------------------------------------
// 3. Isolate (reversible)

func (inc *incident) mutOpts(ctx workflow.Context) workflow.Context {
	// One AWS mutation per activity. Transient errors (throttling, 5xx,
	// eventual consistency) are retried with backoff for up to 10 minutes;
	// the SDK's own retryer is kept short so Temporal owns retrying.
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    time.Minute,
		ScheduleToCloseTimeout: 10 * time.Minute,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
	})
}

func (inc *incident) isolate(ctx workflow.Context, pf activities.PreflightResult) error {
	inc.setPhase(ctx, PhaseIsolating)
	ps := pf.PreState
	actx := inc.mutOpts(ctx)
	t := inc.target

	if err := inc.do(ctx, "isolation-groups", func() (string, error) {
		err := workflow.ExecuteActivity(actx, a.EnsureIsolationGroups, activities.IsolationGroupsInput{Target: t, VPCID: ps.VPCID}).Get(ctx, &inc.isoGroups)
		inc.st.Resources.IsolationGroupID = inc.isoGroups.IsolationGroupID
		return inc.isoGroups.IsolationGroupID, err
	}); err != nil {
		return err
	}
	if ps.AutoScalingGroup != "" {
		if err := inc.do(ctx, "detach", func() (string, error) {
			return "from " + ps.AutoScalingGroup + " without decrement", workflow.ExecuteActivity(actx, a.DetachFromGroup,
				activities.InstanceGroupInput{Target: t, InstanceID: inc.in.InstanceID, Group: ps.AutoScalingGroup}).Get(ctx, nil)
		}); err != nil {
			return err
		}
	}
	if len(ps.TargetGroupARNs) > 0 {
		if err := inc.do(ctx, "deregister-targets", func() (string, error) {
			return fmt.Sprintf("%d target group(s)", len(ps.TargetGroupARNs)), workflow.ExecuteActivity(actx, a.DeregisterTargets,
				activities.TargetsInput{Target: t, InstanceID: inc.in.InstanceID, TargetGroupARNs: ps.TargetGroupARNs}).Get(ctx, nil)
		}); err != nil {
			return err
		}
	}
	// Two steps per ENI: all-traffic first makes tracked flows untracked,
	// then the no-rule group cuts them at once.
	for _, eni := range ps.ENIs {
		if err := inc.do(ctx, "isolate-"+eni.ENIID, func() (string, error) {
			for _, g := range []string{inc.isoGroups.TransitionGroupID, inc.isoGroups.IsolationGroupID} {
				if err := workflow.ExecuteActivity(actx, a.SetENIGroups, activities.ENIGroupsInput{Target: t, ENIID: eni.ENIID, GroupIDs: []string{g}}).Get(ctx, nil); err != nil {
					return "", err
				}
			}
			return strings.Join(eni.GroupIDs, ",") + " -> " + inc.isoGroups.IsolationGroupID, nil
		}); err != nil {
			return err
		}
	}
	if err := inc.do(ctx, "termination-protection", func() (string, error) {
		return "on", workflow.ExecuteActivity(actx, a.SetTerminationProtection,
			activities.TerminationProtectionInput{Target: t, InstanceID: inc.in.InstanceID, Enabled: true}).Get(ctx, nil)
	}); err != nil {
		return err
	}
	if err := inc.do(ctx, "tag", func() (string, error) {
		return "cordon:incident", workflow.ExecuteActivity(actx, a.TagResources,
			activities.TagsInput{Target: t, ResourceIDs: []string{inc.in.InstanceID}, Tags: inc.tags("isolated")}).Get(ctx, nil)
	}); err != nil {
		return err
	}
	inc.isolated = true
	return nil
}

func (inc *incident) tags(state string) map[string]string {
	return map[string]string{
		"cordon:incident": inc.st.IncidentID,
		"cordon:state":    state,
		"cordon:bad-ip":   inc.st.BadIP,
	}
}

// ---------------------------------------------------------------------------
// 4. Approval gate

func (inc *incident) approvalGate(ctx workflow.Context) error {
	if inc.releaseWanted {
		return errReleased
	}
	if inc.policy.Approval != ApprovalBeforeDestructive && !inc.mustApprove {
		return nil
	}
	onDeadline := inc.policy.OnDeadline
	if inc.mustApprove && inc.policy.Approval != ApprovalBeforeDestructive {
		onDeadline = DeadlineHold // nothing heals a lone instance: never terminate it by default
	}
	inc.setPhase(ctx, PhaseAwaitingApproval)
	inc.st.Reason = fmt.Sprintf("waiting for approve or reject until %s (then: %s)", workflow.Now(ctx).Add(inc.policy.ApprovalTimeout).UTC().Format(time.RFC3339), onDeadline)
	if inc.mustReason != "" {
		inc.st.Reason = inc.mustReason + "; " + inc.st.Reason
	}
	inc.alert(ctx, string(PhaseAwaitingApproval), "critical", "", inc.st.Reason)
	done := inc.step("approval")
	ok, err := workflow.AwaitWithTimeout(ctx, inc.policy.ApprovalTimeout, func() bool { return inc.decision != "" || inc.releaseWanted })
	if err != nil {
		done(err, "")
		return err
	}
	inc.st.Reason = ""
	switch {
	case inc.releaseWanted:
		done(nil, "release by "+inc.releaseBy)
		return errReleased
	case inc.decision == "approved":
		done(nil, "approved by "+inc.decisionBy)
		return nil
	case inc.decision == "rejected":
		done(nil, "rejected by "+inc.decisionBy)
		inc.releaseWanted, inc.releaseBy = true, inc.decisionBy
		return errReleased
	}
	_ = ok
	// Deadline passed.
	switch onDeadline {
	case DeadlineApprove:
		done(nil, "deadline passed: approved by policy")
		return nil
	case DeadlineReject:
		done(nil, "deadline passed: rejected by policy")
		inc.releaseWanted, inc.releaseBy = true, "policy"
		return errReleased
	default:
		done(nil, "deadline passed: holding")
		inc.finish(ctx, PhaseNeedsAttention, OutcomeNeedsAttention, "nobody approved or rejected before the deadline: the instance stays isolated")
		inc.alert(ctx, string(PhaseNeedsAttention), "critical", "", inc.st.Reason)
		return nil
	}
}

// ---------------------------------------------------------------------------
// 5. Evidence image

// ImageName is the deterministic name of an incident's image: the
// idempotency key of CreateImage, which has no client token.
func ImageName(instanceID string, started time.Time, runID string) string {
	return fmt.Sprintf("cordon-%s-%s-%s", instanceID, started.UTC().Format("20060102T150405Z"), shortHash(runID))
}

func shortHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:4])
}

// ClientToken derives a RunInstances client token from the incident run and
// the step, so a retried launch returns the same instance.
func ClientToken(incidentID, runID, step string) string {
	h := sha256.Sum256([]byte(incidentID + "|" + runID + "|" + step))
	return "cordon-" + hex.EncodeToString(h[:16])
}

func (inc *incident) evidence(ctx workflow.Context) error {
	inc.setPhase(ctx, PhaseImaging)
	info := workflow.GetInfo(ctx)
	name := ImageName(inc.in.InstanceID, info.WorkflowStartTime, info.WorkflowExecution.RunID)
	inc.st.Resources.ImageName = name
	actx := inc.mutOpts(ctx)
	var img activities.CreateImageResult
	if err := inc.do(ctx, "image", func() (string, error) {
		tags := inc.tags("evidence")
		tags["cordon:source-instance"] = inc.in.InstanceID
		err := workflow.ExecuteActivity(actx, a.CreateImage, activities.CreateImageInput{
			Target: inc.target, InstanceID: inc.in.InstanceID, Name: name, Tags: tags,
		}).Get(ctx, &img)
		inc.st.Resources.ImageID = img.ImageID
		return img.ImageID + " (NoReboot)", err
	}); err != nil {
		return err
	}
	// Images can take hours. The wait heartbeats every poll, so a worker
	// crash is noticed within the heartbeat timeout and the wait resumes.
	wctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    inc.policy.ImageTimeout,
		ScheduleToCloseTimeout: inc.policy.ImageTimeout,
		HeartbeatTimeout:       activities.WaitHeartbeatTimeout,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: 5 * time.Second, MaximumInterval: 2 * time.Minute},
	})
	return inc.do(ctx, "image-available", func() (string, error) {
		var res activities.ImageResult
		err := inc.releasable(ctx, func(c workflow.Context) error {
			return workflow.ExecuteActivity(workflow.WithActivityOptions(c, workflow.GetActivityOptions(wctx)), a.WaitImageAvailable,
				activities.ImageInput{Target: inc.target, ImageID: img.ImageID}).Get(c, &res)
		})
		inc.st.Resources.SnapshotIDs = res.SnapshotIDs
		return fmt.Sprintf("%s, %d snapshot(s)", res.State, len(res.SnapshotIDs)), err
	})
}

// releasable runs a long wait that a release request cancels.
func (inc *incident) releasable(ctx workflow.Context, fn func(workflow.Context) error) error {
	if inc.releaseWanted {
		return errReleased
	}
	cctx, cancel := workflow.WithCancel(ctx)
	inc.cancelRelease = cancel
	defer func() { inc.cancelRelease = nil; cancel() }()
	err := fn(cctx)
	if inc.releaseWanted {
		return errReleased
	}
	return err
}

// ---------------------------------------------------------------------------
// 6. Quarantine copy

func (inc *incident) relaunch(ctx workflow.Context) error {
	if !*inc.policy.Relaunch {
		inc.skip(ctx, "quarantine-copy", "policy: relaunch off")
		return nil
	}
	inc.setPhase(ctx, PhaseRelaunching)
	info := workflow.GetInfo(ctx)
	actx := inc.mutOpts(ctx)
	var cp activities.LaunchCopyResult
	if err := inc.do(ctx, "quarantine-copy", func() (string, error) {
		tags := inc.tags("quarantine-copy")
		tags["cordon:source-instance"] = inc.in.InstanceID
		tags["Name"] = "cordon-quarantine-" + inc.in.InstanceID
		err := workflow.ExecuteActivity(actx, a.LaunchQuarantineCopy, activities.LaunchCopyInput{
			Target: inc.target, ImageID: inc.st.Resources.ImageID, SubnetID: inc.quarantineSub,
			GroupID: inc.isoGroups.IsolationGroupID, InstanceType: inc.st.PreState.InstanceType,
			ClientToken: ClientToken(inc.st.IncidentID, info.WorkflowExecution.RunID, "quarantine-copy"), Tags: tags,
		}).Get(ctx, &cp)
		inc.st.Resources.QuarantineInstanceID = cp.InstanceID
		return cp.InstanceID + " in " + inc.quarantineSub, err
	}); err != nil {
		return err
	}
	wctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Minute,
		HeartbeatTimeout:    activities.WaitHeartbeatTimeout,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 5},
	})
	return inc.do(ctx, "quarantine-copy-running", func() (string, error) {
		return "running", inc.releasable(ctx, func(c workflow.Context) error {
			return workflow.ExecuteActivity(workflow.WithActivityOptions(c, workflow.GetActivityOptions(wctx)), a.WaitInstanceRunning,
				activities.InstanceInput{Target: inc.target, InstanceID: cp.InstanceID}).Get(c, nil)
		})
	})
}

// ---------------------------------------------------------------------------
// 7. Terminate the original (only after the image and the copy exist)

func (inc *incident) terminate(ctx workflow.Context) error {
	r := inc.st.Resources
	if r.ImageID == "" || (*inc.policy.Relaunch && r.QuarantineInstanceID == "") {
		return fmt.Errorf("refusing to terminate %s: evidence is incomplete (image %q, copy %q)", inc.in.InstanceID, r.ImageID, r.QuarantineInstanceID)
	}
	inc.setPhase(ctx, PhaseTerminating)
	actx := inc.mutOpts(ctx)
	t := inc.target
	oneCall := workflow.GetVersion(ctx, "terminate-one-activity", workflow.DefaultVersion, 1) == 1
	return inc.do(ctx, "terminate", func() (string, error) {
		inc.protectionOff = true
		if oneCall {
			// Lifts protection and terminates; an instance already gone
			// (the group or a person got there first) is a success.
			if err := workflow.ExecuteActivity(actx, a.TerminateInstance,
				activities.TerminateInput{Target: t, InstanceID: inc.in.InstanceID, LiftProtection: true}).Get(ctx, nil); err != nil {
				return "", err
			}
		} else {
			if err := workflow.ExecuteActivity(actx, a.SetTerminationProtection,
				activities.TerminationProtectionInput{Target: t, InstanceID: inc.in.InstanceID, Enabled: false}).Get(ctx, nil); err != nil {
				return "", err
			}
			if err := workflow.ExecuteActivity(actx, a.TerminateInstance, activities.TerminateInput{Target: t, InstanceID: inc.in.InstanceID}).Get(ctx, nil); err != nil {
				return "", err
			}
		}
		inc.destroyed = true
		inc.protectionOff = false
		inc.st.Resources.OriginalTerminated = true
		return inc.in.InstanceID + " terminated", nil
	})
}

// ---------------------------------------------------------------------------
// 8. Verify healing

// heal waits for the group to be back at its recorded capacity. A group that
// does not heal in time is a warning, not a failure: the incident is done.
func (inc *incident) heal(ctx workflow.Context) string {
	ps := inc.st.PreState
	if ps == nil || ps.AutoScalingGroup == "" {
		inc.skip(ctx, "heal", "not in an Auto Scaling group")
		return ""
	}
	inc.setPhase(ctx, PhaseHealing)
	wctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    inc.policy.HealTimeout,
		ScheduleToCloseTimeout: inc.policy.HealTimeout,
		HeartbeatTimeout:       activities.WaitHeartbeatTimeout,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: 5 * time.Second, MaximumInterval: time.Minute},
	})
	var res activities.HealResult
	warning := ""
	err := inc.do(ctx, "heal", func() (string, error) {
		err := workflow.ExecuteActivity(wctx, a.WaitGroupHealed, activities.HealInput{
			Target: inc.target, Group: ps.AutoScalingGroup, Desired: ps.DesiredCapacity, Exclude: inc.in.InstanceID, TargetGroupARNs: ps.TargetGroupARNs,
		}).Get(ctx, &res)
		for _, id := range res.Members {
			if !slices.Contains(inc.groupMembers, id) {
				inc.st.Resources.ReplacementIDs = append(inc.st.Resources.ReplacementIDs, id)
			}
		}
		return fmt.Sprintf("%d/%d in service", res.InService, res.Desired), err
	})
	if err != nil {
		warning = fmt.Sprintf("group %s did not heal to %d in service within %s: check it", ps.AutoScalingGroup, ps.DesiredCapacity, inc.policy.HealTimeout)
		inc.warn(warning)
		inc.alert(ctx, "heal-warning", "warning", "", warning)
	}
	return warning
}

// ---------------------------------------------------------------------------
// 9. Clean up

func (inc *incident) cleanup(ctx workflow.Context) {
	inc.setPhase(ctx, PhaseCleaningUp)
	actx := inc.mutOpts(ctx)
	var res activities.DeregisterImageResult
	err := inc.do(ctx, "deregister-image", func() (string, error) {
		err := workflow.ExecuteActivity(actx, a.DeregisterImage, activities.ImageInput{Target: inc.target, ImageID: inc.st.Resources.ImageID}).Get(ctx, &res)
		if err == nil {
			inc.st.Resources.ImageDeregistered = true
		}
		if len(res.SnapshotIDs) > 0 {
			inc.st.Resources.SnapshotIDs = res.SnapshotIDs
		}
		return inc.st.Resources.ImageID, err
	})
	if err != nil {
		inc.warn("could not deregister image " + inc.st.Resources.ImageID + ": " + err.Error())
		return
	}
	if inc.policy.Snapshots != SnapshotsDelete {
		inc.skip(ctx, "snapshots", fmt.Sprintf("kept %d snapshot(s) as evidence", len(inc.st.Resources.SnapshotIDs)))
		return
	}
	if err := inc.do(ctx, "delete-snapshots", func() (string, error) {
		return strings.Join(inc.st.Resources.SnapshotIDs, ","), workflow.ExecuteActivity(actx, a.DeleteSnapshots,
			activities.SnapshotsInput{Target: inc.target, SnapshotIDs: inc.st.Resources.SnapshotIDs}).Get(ctx, nil)
	}); err != nil {
		inc.warn("could not delete snapshots: " + err.Error())
		return
	}
	inc.st.Resources.SnapshotsDeleted = true
}

// ---------------------------------------------------------------------------
// Release: restore the recorded pre-incident state (false positive)

func (inc *incident) release(ctx workflow.Context) error {
	defer func() { inc.releaseDone = true }()
	inc.setPhase(ctx, PhaseReleasing)
	ps := inc.st.PreState
	actx := inc.mutOpts(ctx)
	t := inc.target
	id := inc.in.InstanceID
	fail := func(err error) error {
		inc.releaseErr = err.Error()
		return err
	}
	// Undo: termination protection, security groups, group membership,
	// target registration, then the incident's tags (before version 1 of
	// "release-tags-last" the tags went first).
	untag := func() error {
		return inc.do(ctx, "release-tags", func() (string, error) {
			return "removed cordon tags", workflow.ExecuteActivity(actx, a.UntagResources, activities.TagsInput{Target: t, ResourceIDs: []string{id}, Tags: inc.tags("")}).Get(ctx, nil)
		})
	}
	tagsLast := workflow.GetVersion(ctx, "release-tags-last", workflow.DefaultVersion, 1) == 1
	if !tagsLast {
		if err := untag(); err != nil {
			return fail(err)
		}
	}
	if err := inc.do(ctx, "release-termination-protection", func() (string, error) {
		return fmt.Sprint(ps.TerminationProtection), workflow.ExecuteActivity(actx, a.SetTerminationProtection,
			activities.TerminationProtectionInput{Target: t, InstanceID: id, Enabled: ps.TerminationProtection}).Get(ctx, nil)
	}); err != nil {
		return fail(err)
	}
	for _, eni := range ps.ENIs {
		if err := inc.do(ctx, "release-"+eni.ENIID, func() (string, error) {
			return strings.Join(eni.GroupIDs, ","), workflow.ExecuteActivity(actx, a.SetENIGroups, activities.ENIGroupsInput{Target: t, ENIID: eni.ENIID, GroupIDs: eni.GroupIDs}).Get(ctx, nil)
		}); err != nil {
			return fail(err)
		}
	}
	if ps.AutoScalingGroup != "" {
		if err := inc.do(ctx, "release-attach", func() (string, error) {
			return fmt.Sprintf("%s, desired %d", ps.AutoScalingGroup, ps.DesiredCapacity), workflow.ExecuteActivity(actx, a.AttachToGroup, activities.AttachInput{
				Target: t, InstanceID: id, Group: ps.AutoScalingGroup, Desired: ps.DesiredCapacity, ProtectedFromScaleIn: ps.ProtectedFromScaleIn,
				Before: inc.groupMembers,
			}).Get(ctx, nil)
		}); err != nil {
			return fail(err)
		}
	}
	if len(ps.TargetGroupARNs) > 0 {
		if err := inc.do(ctx, "release-targets", func() (string, error) {
			return fmt.Sprintf("%d target group(s)", len(ps.TargetGroupARNs)), workflow.ExecuteActivity(actx, a.RegisterTargets,
				activities.TargetsInput{Target: t, InstanceID: id, TargetGroupARNs: ps.TargetGroupARNs}).Get(ctx, nil)
		}); err != nil {
			return fail(err)
		}
	}
	// Tags last: while the instance carries cordon:incident, a concurrent
	// release in the same group never takes it for a replacement.
	if tagsLast {
		if err := untag(); err != nil {
			return fail(err)
		}
	}
	reason := "released by " + inc.releaseBy + ": false positive, pre-incident state restored"
	if inc.st.Resources.ImageID != "" {
		reason += "; evidence image " + inc.st.Resources.ImageID + " kept"
	}
	if inc.st.Resources.QuarantineInstanceID != "" {
		reason += "; quarantine copy " + inc.st.Resources.QuarantineInstanceID + " left running for review"
	}
	inc.finish(ctx, PhaseReleased, OutcomeReleased, reason)
	inc.alert(ctx, string(PhaseReleased), "info", "clear", reason)
	return nil
}

// ---------------------------------------------------------------------------
// Failure and cancellation

// needsAttention ends the incident safely after a failed step: the instance
// stays isolated, the image is kept, an operator is alerted.
func (inc *incident) needsAttention(ctx workflow.Context, cause string) {
	if inc.protectionOff && !inc.destroyed {
		// Terminate failed after protection may have been lifted: put it
		// back, briefly (the instance may be gone, which is why it failed).
		actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute, RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 3}})
		_ = workflow.ExecuteActivity(actx, a.SetTerminationProtection,
			activities.TerminationProtectionInput{Target: inc.target, InstanceID: inc.in.InstanceID, Enabled: true}).Get(ctx, nil)
		inc.protectionOff = false
	}
	if inc.releaseWanted && !inc.releaseDone {
		inc.releaseErr = cause
		inc.releaseDone = true
	}
	state := "not isolated"
	if inc.isolated {
		state = "isolated"
	}
	reason := fmt.Sprintf("stopped in %s: %s (instance %s", inc.st.Phase, cause, state)
	if inc.st.Resources.ImageID != "" {
		reason += ", image " + inc.st.Resources.ImageID + " kept"
	}
	reason += ")"
	if inc.isolated && !inc.destroyed {
		actx := inc.mutOpts(ctx)
		_ = workflow.ExecuteActivity(actx, a.TagResources, activities.TagsInput{Target: inc.target, ResourceIDs: []string{inc.in.InstanceID}, Tags: inc.tags("needs-attention")}).Get(ctx, nil)
	}
	inc.finish(ctx, PhaseNeedsAttention, OutcomeNeedsAttention, reason)
	inc.alert(ctx, string(PhaseNeedsAttention), "critical", "", reason)
}

// compensateCancel runs on a disconnected context after cancellation:
// containment stays (it is never undone automatically), but termination
// protection is restored if it was lifted, the instance is tagged, and the
// operator is told.
func (inc *incident) compensateCancel(ctx workflow.Context) {
	actx := inc.mutOpts(ctx)
	if inc.protectionOff && !inc.destroyed {
		_ = workflow.ExecuteActivity(actx, a.SetTerminationProtection,
			activities.TerminationProtectionInput{Target: inc.target, InstanceID: inc.in.InstanceID, Enabled: true}).Get(ctx, nil)
	}
	if inc.isolated && !inc.destroyed {
		_ = workflow.ExecuteActivity(actx, a.TagResources, activities.TagsInput{Target: inc.target, ResourceIDs: []string{inc.in.InstanceID}, Tags: inc.tags("cancelled")}).Get(ctx, nil)
	}
	reason := "cancelled in " + string(inc.st.Phase) + ": containment kept"
	if inc.st.Resources.ImageID != "" {
		reason += ", image " + inc.st.Resources.ImageID + " kept"
	}
	inc.finish(ctx, PhaseNeedsAttention, OutcomeCancelled, reason)
	inc.alert(ctx, string(PhaseNeedsAttention), "critical", "", reason)
}

// ---------------------------------------------------------------------------
// Bookkeeping

// step records a step's start and returns the function that records its end.
func (inc *incident) step(name string) func(err error, detail string) {
	inc.st.Steps = append(inc.st.Steps, Step{Name: name, Started: inc.now(), Outcome: StepRunning})
	i := len(inc.st.Steps) - 1
	return func(err error, detail string) {
		s := &inc.st.Steps[i]
		s.Ended = inc.now()
		s.Detail = detail
		s.Outcome = StepSucceeded
		if err != nil {
			s.Outcome = StepFailed
			if detail != "" {
				s.Detail = detail + ": " + errorMessage(err)
			} else {
				s.Detail = errorMessage(err)
			}
		}
	}
}

// do runs one step, recording it.
func (inc *incident) do(ctx workflow.Context, name string, fn func() (string, error)) error {
	done := inc.step(name)
	detail, err := fn()
	if errors.Is(err, errReleased) || (err != nil && inc.releaseWanted && temporal.IsCanceledError(err)) {
		done(nil, "interrupted by release")
		return errReleased
	}
	done(err, detail)
	if err != nil {
		return &stepError{step: name, cause: err}
	}
	return nil
}

// stepError names the failed step with a readable cause, and unwraps to the
// original error so cancellation and application error types survive.
type stepError struct {
	step  string
	cause error
}

func (e *stepError) Error() string { return e.step + ": " + errorMessage(e.cause) }
func (e *stepError) Unwrap() error { return e.cause }

func (inc *incident) skip(ctx workflow.Context, name, detail string) {
	now := workflow.Now(ctx)
	inc.st.Steps = append(inc.st.Steps, Step{Name: name, Started: now, Ended: now, Outcome: StepSkipped, Detail: detail})
}

// errorMessage unwraps Temporal's activity error wrapper to the cause.
func errorMessage(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Error()
	}
	var timeoutErr *temporal.TimeoutError
	if errors.As(err, &timeoutErr) {
		return "timed out (" + timeoutErr.TimeoutType().String() + ")"
	}
	return err.Error()
}

func (inc *incident) now() time.Time { return workflow.Now(inc.ctx) }

func (inc *incident) warn(w string) {
	inc.st.Warnings = append(inc.st.Warnings, w)
}

func (inc *incident) setPhase(ctx workflow.Context, p Phase) {
	// Metrics go through the SDK's replay-safe handler (no commands).
	if n := len(inc.st.Phases); n > 0 {
		prev := inc.st.Phases[n-1]
		workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"phase": string(prev.Phase)}).
			Timer("cordon_phase_duration").Record(workflow.Now(ctx).Sub(prev.At))
	}
	inc.st.Phase = p
	inc.st.Phases = append(inc.st.Phases, PhaseChange{Phase: p, At: workflow.Now(ctx)})
	inc.logger.Info("incident phase", "incidentID", inc.st.IncidentID, "phase", string(p))
	inc.upsert(ctx)
}

func (inc *incident) finish(ctx workflow.Context, p Phase, o Outcome, reason string) {
	workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"outcome": string(o)}).Counter("cordon_incidents_closed").Inc(1)
	inc.st.Outcome = o
	inc.st.Reason = reason
	inc.st.Closed = workflow.Now(ctx)
	inc.setPhase(ctx, p)
}

func (inc *incident) upsert(ctx workflow.Context) {
	updates := []temporal.SearchAttributeUpdate{
		SAInstanceID.ValueSet(inc.in.InstanceID),
		SAPhase.ValueSet(string(inc.st.Phase)),
		SAAccount.ValueSet(inc.in.Account),
	}
	if inc.st.BadIP != "" {
		updates = append(updates, SABadIP.ValueSet(inc.st.BadIP))
	}
	if inc.st.Group != "" {
		updates = append(updates, SAGroup.ValueSet(inc.st.Group))
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, updates...); err != nil {
		inc.logger.Warn("search attributes not updated", "incidentID", inc.st.IncidentID, "error", err)
	}
	if err := workflow.UpsertMemo(ctx, map[string]any{MemoSummary: inc.summary()}); err != nil {
		inc.logger.Warn("memo not updated", "incidentID", inc.st.IncidentID, "error", err)
	}
}

func (inc *incident) summary() string {
	s := fmt.Sprintf("%s %s; phase %s", inc.in.InstanceID, inc.what(), inc.st.Phase)
	if inc.st.Group != "" {
		s += "; group " + inc.st.Group
	}
	if inc.st.Outcome != "" {
		s += "; outcome " + string(inc.st.Outcome)
	}
	if inc.st.Reason != "" {
		s += ": " + inc.st.Reason
	}
	return s
}

// what says why the incident was opened, for summaries and alerts.
func (inc *incident) what() string {
	if inc.st.BadIP != "" {
		return "talked to " + inc.st.BadIP
	}
	if src := inc.in.Evidence.Source; src != "" {
		return "reported by " + src
	}
	return "reported"
}

func (inc *incident) result() QuarantineResult {
	return QuarantineResult{Phase: inc.st.Phase, Outcome: inc.st.Outcome, Reason: inc.st.Reason, Status: inc.st}
}
