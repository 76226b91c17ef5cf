// Package workflows holds Cordon's incident workflow and its public contract:
// the task queue, the workflow-ID helper, every signal, update and query name
// with its payload, the incident phases and the search attributes. The CLI, the
// detector, the SNS endpoint and the Alexa skill all import these names from
// here, so there is exactly one place that defines how to talk to an incident.
package workflows

import (
	"fmt"
	"github.com/cordonhq/cordon/activities"
	"regexp"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
)

// TaskQueue is the task queue the Cordon worker polls.
const TaskQueue = "cordon"

// WorkflowIDPrefix starts every incident's workflow ID.
const WorkflowIDPrefix = "quarantine/"

var instanceIDPattern = regexp.MustCompile(`^i-([0-9a-f]{8}|[0-9a-f]{17})$`)

// ValidInstanceID reports whether id has the shape of an EC2 instance ID
// (i- followed by 8 or 17 lower-case hex digits).
func ValidInstanceID(id string) bool { return instanceIDPattern.MatchString(id) }

// IncidentID returns the workflow ID of the incident for one instance:
// quarantine/<account>/<region>/<instance>. There is at most one open incident
// per instance, so repeated alerts land on the same workflow.
func IncidentID(account, region, instanceID string) string {
	return WorkflowIDPrefix + account + "/" + region + "/" + instanceID
}

// ParseIncidentID splits a workflow ID made by IncidentID.
func ParseIncidentID(id string) (account, region, instanceID string, err error) {
	rest, ok := strings.CutPrefix(id, WorkflowIDPrefix)
	parts := strings.Split(rest, "/")
	if !ok || len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return "", "", "", fmt.Errorf("%q is not an incident ID: want quarantine/<account>/<region>/<instance-id>", id)
	}
	return parts[0], parts[1], parts[2], nil
}

// WorkflowName is the registered name of the incident workflow.
const WorkflowName = "QuarantineWorkflow"

// Signal, update and query names.
const (
	// SignalEvidence adds one alert or detection (Evidence) to an incident.
	// Every detector hit and SNS alert is sent with SignalWithStart, so an
	// alert storm becomes one incident per instance.
	SignalEvidence = "evidence"
	// UpdateApprove approves the destructive steps of an incident that waits
	// for approval (payload Decision). Its validator refuses it otherwise.
	UpdateApprove = "approve"
	// UpdateReject rejects an incident that waits for approval: a false
	// positive. The recorded pre-incident state is restored (payload Decision).
	UpdateReject = "reject"
	// UpdateRelease restores the recorded pre-incident state of an incident
	// whose instance is isolated but not yet destroyed, and closes it as a
	// false positive (payload Decision).
	UpdateRelease = "release"
	// QueryStatus returns the incident's Status.
	QueryStatus = "status"
)

// Evidence is one alert or detection about an instance.
type Evidence struct {
	// Source names where it came from: "detector", "elastalert", "guardduty", "cli", ...
	Source string `json:"source"`
	// BadIP is the remote address the instance talked to.
	BadIP string `json:"badIP,omitempty"`
	// Rule is the rule, list or finding type that matched.
	Rule string `json:"rule,omitempty"`
	// Reason is a human sentence.
	Reason string `json:"reason,omitempty"`
	// Time is when the session or finding happened.
	Time time.Time `json:"time"`
	// Ref identifies the underlying document (flow document ID, SNS MessageId, file:line).
	Ref string `json:"ref,omitempty"`
	// Raw keeps the original message or document, truncated to a few KiB.
	Raw string `json:"raw,omitempty"`
}

// Decision is the payload of the approve, reject and release updates.
type Decision struct {
	// By names who decided ("cli:alice", "alexa", "ui").
	By string `json:"by"`
	// Comment is optional free text.
	Comment string `json:"comment,omitempty"`
}

// ApprovalMode selects whether an incident waits for a human before the
// irreversible steps (imaging is not irreversible; termination is).
type ApprovalMode string

// Approval modes.
const (
	// ApprovalNone runs the whole runbook without waiting.
	ApprovalNone ApprovalMode = "none"
	// ApprovalBeforeDestructive waits after reversible isolation, before the
	// image, copy and termination, until approve, reject or the deadline.
	ApprovalBeforeDestructive ApprovalMode = "before-destructive"
)

// DeadlineAction is what happens when nobody decides before the deadline.
type DeadlineAction string

// Deadline actions.
const (
	DeadlineApprove DeadlineAction = "approve" // go on with the runbook
	DeadlineReject  DeadlineAction = "reject"  // release: restore the recorded state
	DeadlineHold    DeadlineAction = "hold"    // stay isolated; needs attention
)

// SnapshotRetention says what happens to the image's snapshots when the image
// is deregistered at the end.
type SnapshotRetention string

// Snapshot retention policies.
const (
	SnapshotsKeep   SnapshotRetention = "keep"   // default: they are evidence
	SnapshotsDelete SnapshotRetention = "delete" // delete them with the image
)

// Policy selects how an incident runs. The zero value is completed by
// Normalize into the default policy.
type Policy struct {
	Approval         ApprovalMode      `json:"approval,omitempty"`
	ApprovalTimeout  time.Duration     `json:"approvalTimeout,omitempty"`
	OnDeadline       DeadlineAction    `json:"onDeadline,omitempty"`
	Relaunch         *bool             `json:"relaunch,omitempty"` // launch a quarantine copy; default true
	Snapshots        SnapshotRetention `json:"snapshots,omitempty"`
	DryRun           bool              `json:"dryRun,omitempty"`
	ProtectTag       string            `json:"protectTag,omitempty"`       // tag key that exempts an instance; default cordon:protected
	QuarantineSubnet string            `json:"quarantineSubnet,omitempty"` // override; else the subnet tagged cordon:quarantine=true in the VPC
	HealTimeout      time.Duration     `json:"healTimeout,omitempty"`      // how long to wait for the group to heal
	ImageTimeout     time.Duration     `json:"imageTimeout,omitempty"`     // how long an image may stay pending
}

// Default policy values.
const (
	DefaultApprovalTimeout = 30 * time.Minute
	DefaultProtectTag      = "cordon:protected"
	DefaultHealTimeout     = 30 * time.Minute
	DefaultImageTimeout    = 12 * time.Hour
	// QuarantineSubnetTag marks the quarantine subnet of a VPC (value "true").
	QuarantineSubnetTag = "cordon:quarantine"
)

// Normalize fills defaults and reports the first invalid field.
func (p Policy) Normalize() (Policy, error) {
	if p.Approval == "" {
		p.Approval = ApprovalNone
	}
	if p.Approval != ApprovalNone && p.Approval != ApprovalBeforeDestructive {
		return p, fmt.Errorf("policy: approval %q is not one of none, before-destructive", p.Approval)
	}
	if p.ApprovalTimeout < 0 || p.HealTimeout < 0 || p.ImageTimeout < 0 {
		return p, fmt.Errorf("policy: timeouts must not be negative")
	}
	if p.ApprovalTimeout == 0 {
		p.ApprovalTimeout = DefaultApprovalTimeout
	}
	if p.OnDeadline == "" {
		p.OnDeadline = DeadlineHold
	}
	switch p.OnDeadline {
	case DeadlineApprove, DeadlineReject, DeadlineHold:
	default:
		return p, fmt.Errorf("policy: onDeadline %q is not one of approve, reject, hold", p.OnDeadline)
	}
	if p.Relaunch == nil {
		t := true
		p.Relaunch = &t
	}
	if p.Snapshots == "" {
		p.Snapshots = SnapshotsKeep
	}
	if p.Snapshots != SnapshotsKeep && p.Snapshots != SnapshotsDelete {
		return p, fmt.Errorf("policy: snapshots %q is not one of keep, delete", p.Snapshots)
	}
	if p.ProtectTag == "" {
		p.ProtectTag = DefaultProtectTag
	}
	if p.HealTimeout <= 0 {
		p.HealTimeout = DefaultHealTimeout
	}
	if p.ImageTimeout <= 0 {
		p.ImageTimeout = DefaultImageTimeout
	}
	return p, nil
}

// QuarantineInput starts an incident.
type QuarantineInput struct {
	Account    string `json:"account"`
	Region     string `json:"region"`
	InstanceID string `json:"instanceID"`
	// Evidence is the alert that opened the incident.
	Evidence Evidence `json:"evidence"`
	Policy   Policy   `json:"policy"`
	// UIBaseURL, when set, is put into alerts as a link to the incident.
	UIBaseURL string `json:"uiBaseURL,omitempty"`
}

// Phase is where an incident is. It is also the CordonPhase search attribute.
type Phase string

// Incident phases, in runbook order; the last five are final.
const (
	PhaseOpened           Phase = "opened"
	PhasePreflight        Phase = "preflight"
	PhaseQueued           Phase = "queued" // waiting for the group's governor: a slot or healthy capacity
	PhaseIsolating        Phase = "isolating"
	PhaseAwaitingApproval Phase = "awaiting-approval"
	PhaseImaging          Phase = "imaging"
	PhaseRelaunching      Phase = "relaunching"
	PhaseTerminating      Phase = "terminating"
	PhaseHealing          Phase = "healing"
	PhaseCleaningUp       Phase = "cleaning-up"
	PhaseReleasing        Phase = "releasing"

	PhaseResolved       Phase = "resolved"        // runbook done
	PhaseReleased       Phase = "released"        // false positive; pre-incident state restored
	PhaseNeedsAttention Phase = "needs-attention" // stopped safely; an operator must look
	PhaseSkipped        Phase = "skipped"         // nothing to do: protected, gone, or dry-run
)

// Final reports whether p ends an incident.
func (p Phase) Final() bool {
	switch p {
	case PhaseResolved, PhaseReleased, PhaseNeedsAttention, PhaseSkipped:
		return true
	}
	return false
}

// Outcome says why an incident ended.
type Outcome string

// Outcomes.
const (
	OutcomeResolved       Outcome = "resolved"         // contained, evidence kept, original terminated, group healed
	OutcomeResolvedWarn   Outcome = "resolved-warning" // as resolved, but the group did not heal in time
	OutcomeReleased       Outcome = "released"         // false positive; restored
	OutcomeProtected      Outcome = "protected"        // instance carries the protection tag or is on the worker's allowlist
	OutcomeInstanceGone   Outcome = "instance-gone"    // unknown or terminated instance
	OutcomeNeedsAttention Outcome = "needs-attention"  // a step failed or the approval deadline held
	OutcomeDryRun         Outcome = "dry-run"          // plan only
	OutcomeCancelled      Outcome = "cancelled"        // the workflow was cancelled; containment kept
)

// StepOutcome is how one runbook step ended.
type StepOutcome string

// Step outcomes.
const (
	StepRunning   StepOutcome = "running"
	StepSucceeded StepOutcome = "succeeded"
	StepFailed    StepOutcome = "failed"
	StepSkipped   StepOutcome = "skipped"
	StepPlanned   StepOutcome = "planned" // dry-run
)

// Step is one runbook step as reported by the status query.
type Step struct {
	Name    string      `json:"name"`
	Started time.Time   `json:"started"`
	Ended   time.Time   `json:"ended,omitzero"`
	Outcome StepOutcome `json:"outcome"`
	Detail  string      `json:"detail,omitempty"`
}

// PhaseChange records when an incident entered a phase.
type PhaseChange struct {
	Phase Phase     `json:"phase"`
	At    time.Time `json:"at"`
}

// Resources lists what the incident created or touched.
type Resources struct {
	ImageID              string   `json:"imageID,omitempty"`
	ImageName            string   `json:"imageName,omitempty"`
	ImageDeregistered    bool     `json:"imageDeregistered,omitempty"`
	SnapshotIDs          []string `json:"snapshotIDs,omitempty"`
	SnapshotsDeleted     bool     `json:"snapshotsDeleted,omitempty"`
	QuarantineInstanceID string   `json:"quarantineInstanceID,omitempty"`
	IsolationGroupID     string   `json:"isolationGroupID,omitempty"`
	OriginalTerminated   bool     `json:"originalTerminated,omitempty"`
	ReplacementIDs       []string `json:"replacementIDs,omitempty"`
}

// ENIState records one network interface's security groups before isolation.
type ENIState = activities.ENIState

// PreState is the pre-incident state recorded before isolation; release
// restores exactly this.
type PreState = activities.PreState

// Status is the payload of the status query.
type Status struct {
	IncidentID string    `json:"incidentID"`
	Account    string    `json:"account"`
	Region     string    `json:"region"`
	InstanceID string    `json:"instanceID"`
	BadIP      string    `json:"badIP,omitempty"`
	Group      string    `json:"group,omitempty"`
	Phase      Phase     `json:"phase"`
	Outcome    Outcome   `json:"outcome,omitempty"`
	Reason     string    `json:"reason,omitempty"` // why it ended this way, or what it waits for
	Opened     time.Time `json:"opened"`
	Closed     time.Time `json:"closed,omitzero"`
	Steps      []Step    `json:"steps"`
	// Phases lists every phase the incident entered, with the time it did.
	Phases    []PhaseChange `json:"phases"`
	Resources Resources     `json:"resources"`
	PreState  *PreState     `json:"preState,omitempty"`
	Evidence  []Evidence    `json:"evidence"`
	// EvidenceCount counts every evidence received; Evidence keeps the first MaxEvidence.
	EvidenceCount int      `json:"evidenceCount"`
	Warnings      []string `json:"warnings,omitempty"`
	Policy        Policy   `json:"policy"`
}

// MaxEvidence bounds how many evidence items an incident keeps in its state
// (all of them stay in the workflow history as signals).
const MaxEvidence = 100

// QuarantineResult is the workflow's result.
type QuarantineResult struct {
	Phase   Phase   `json:"phase"`
	Outcome Outcome `json:"outcome"`
	Reason  string  `json:"reason,omitempty"`
	Status  Status  `json:"status"`
}

// Search attributes: every incident is findable in the Temporal UI by these.
var (
	SAInstanceID = temporal.NewSearchAttributeKeyKeyword("CordonInstanceID")
	SABadIP      = temporal.NewSearchAttributeKeyKeyword("CordonBadIP")
	SAPhase      = temporal.NewSearchAttributeKeyKeyword("CordonPhase")
	SAGroup      = temporal.NewSearchAttributeKeyKeyword("CordonGroup")
	SAAccount    = temporal.NewSearchAttributeKeyKeyword("CordonAccount")
)

// SearchAttributeNames lists the custom search attributes (all Keyword) that
// the server must have registered.
var SearchAttributeNames = []string{"CordonInstanceID", "CordonBadIP", "CordonPhase", "CordonGroup", "CordonAccount"}

// MemoSummary is the memo key holding a one-line human summary of the incident.
const MemoSummary = "summary"

// Blast-radius governor: one entity workflow per Auto Scaling group that every
// incident asks before it takes an instance out of service.
const (
	// GovernorWorkflowName is the registered name of the governor workflow.
	GovernorWorkflowName = "GovernorWorkflow"
	// UpdateAcquire asked the governor for a slot and waited in the update
	// (version 1 of "governor"; too many waiting updates hit the server's
	// in-flight update limit, so version 2 uses the two signals below).
	UpdateAcquire = "acquire"
	// SignalSlotRequest asks the governor for a slot (payload SlotRequest,
	// sent with signal-with-start). The governor answers the incident with
	// SignalSlotGrant (payload SlotGrant) when it may go on.
	SignalSlotRequest = "slot-request"
	SignalSlotGrant   = "slot-grant"
	// SignalReleaseSlot returns an incident's slot (payload SlotRequest).
	SignalReleaseSlot = "release-slot"
	// UpdateResetBreaker closes a tripped breaker (payload Decision).
	UpdateResetBreaker = "reset-breaker"
	// QueryGovernor returns the GovernorStatus.
	QueryGovernor = "governor-status"
)

// GovernorID returns the governor workflow ID of a group.
func GovernorID(account, region, group string) string {
	return "governor/" + account + "/" + region + "/" + group
}

// AccountScope is the region and group of an account-wide governor: one per
// account, over every group in every region, asked before the group's own.
const AccountScope = "*"

// AccountGovernorID returns the workflow ID of an account's account-wide
// governor ("governor/<account>/*/*").
func AccountGovernorID(account string) string {
	return GovernorID(account, AccountScope, AccountScope)
}

// AccountSlotResult is RequestAccountSlot's answer: whether the worker runs
// account-wide limits (when it does not, no grant will come).
type AccountSlotResult struct {
	Enabled bool `json:"enabled"`
}

// GovernorLimits are the governor's safety limits.
type GovernorLimits struct {
	// MaxConcurrent caps the incidents a group handles at once.
	MaxConcurrent int `json:"maxConcurrent"`
	// MinHealthy is how many healthy in-service instances must remain in the
	// group after an instance is taken out.
	MinHealthy int `json:"minHealthy"`
	// BreakerCount incidents within BreakerWindow trip the breaker: later
	// incidents stop after reversible isolation and wait for approval.
	BreakerCount  int           `json:"breakerCount"`
	BreakerWindow time.Duration `json:"breakerWindow"`
	// RecheckInterval is how often a waiting request re-reads the group's capacity.
	RecheckInterval time.Duration `json:"recheckInterval"`
	// AccountMaxConcurrent caps the incidents one account handles at once,
	// across all its groups and regions, and AccountBreakerCount incidents
	// within BreakerWindow trip the account-wide breaker. Zero: no
	// account-wide governor (the worker's flags default to
	// DefaultAccountMaxConcurrent and DefaultAccountBreakerCount).
	AccountMaxConcurrent int `json:"accountMaxConcurrent,omitempty"`
	AccountBreakerCount  int `json:"accountBreakerCount,omitempty"`
}

// Account returns the limits of the account-wide governor, and false when
// it is off.
func (l GovernorLimits) Account() (GovernorLimits, bool) {
	if l.AccountMaxConcurrent <= 0 {
		return GovernorLimits{}, false
	}
	acct := l.Normalize()
	acct.MaxConcurrent = l.AccountMaxConcurrent
	acct.BreakerCount = l.AccountBreakerCount
	if acct.BreakerCount <= 0 {
		acct.BreakerCount = 4 * l.AccountMaxConcurrent
	}
	acct.MinHealthy = 1 // not used: an account has no capacity to count
	acct.AccountMaxConcurrent, acct.AccountBreakerCount = 0, 0
	return acct, true
}

// The worker's defaults for the account-wide governor (GovernorLimits
// AccountMaxConcurrent and AccountBreakerCount).
const (
	DefaultAccountMaxConcurrent = 10
	DefaultAccountBreakerCount  = 20
)

// DefaultGovernorLimits are safe defaults: two incidents at a time per group,
// at least one healthy instance left, five incidents an hour trip the breaker.
var DefaultGovernorLimits = GovernorLimits{MaxConcurrent: 2, MinHealthy: 1, BreakerCount: 5, BreakerWindow: time.Hour, RecheckInterval: 15 * time.Second}

// Normalize fills zero fields from the defaults.
func (l GovernorLimits) Normalize() GovernorLimits {
	d := DefaultGovernorLimits
	if l.MaxConcurrent <= 0 {
		l.MaxConcurrent = d.MaxConcurrent
	}
	if l.MinHealthy <= 0 {
		l.MinHealthy = d.MinHealthy
	}
	if l.BreakerCount <= 0 {
		l.BreakerCount = d.BreakerCount
	}
	if l.BreakerWindow <= 0 {
		l.BreakerWindow = d.BreakerWindow
	}
	if l.RecheckInterval <= 0 {
		l.RecheckInterval = d.RecheckInterval
	}
	return l
}

// GovernorInput starts a group's governor.
type GovernorInput struct {
	Account string         `json:"account"`
	Region  string         `json:"region"`
	Group   string         `json:"group"`
	Limits  GovernorLimits `json:"limits"`
	// State carries the governor's state across continue-as-new.
	State *GovernorStatus `json:"state,omitempty"`
}

// SlotRequest names the incident asking for, or returning, a slot.
type SlotRequest struct {
	IncidentID string `json:"incidentID"`
	InstanceID string `json:"instanceID"`
}

// Slot decisions.
const (
	SlotProceed = "proceed" // take the instance out of service now
	SlotHold    = "hold"    // breaker tripped: isolate, then wait for approval
)

// SlotGrant is the governor's answer.
type SlotGrant struct {
	Decision string `json:"decision"`
	Reason   string `json:"reason,omitempty"`
	Waited   bool   `json:"waited,omitempty"` // the request queued for a slot or capacity
	// WaitedFor says what it waited for: "a free slot", "healthy capacity"
	// or both, joined by "and".
	WaitedFor string `json:"waitedFor,omitempty"`
	// Governor is the ID of the governor that answers (empty from older
	// governors): an incident asks the account-wide governor, then the
	// group's, and tells their answers apart by it.
	Governor string `json:"governor,omitempty"`
}

// InFlightSlot is a slot held by an incident.
type InFlightSlot struct {
	InstanceID string    `json:"instanceID"`
	Since      time.Time `json:"since"`
}

// Activities run by name (their implementation needs a Temporal client and
// lives in internal/app, which imports this package).
const (
	ActivityAcquireSlot = "AcquireSlot" // version 1 only
	ActivityRequestSlot = "RequestSlot"
	ActivityReleaseSlot = "ReleaseSlot"
	// ActivityRequestAccountSlot asks the account-wide governor (version 1
	// of "account-governor"); it answers AccountSlotResult.
	ActivityRequestAccountSlot = "RequestAccountSlot"
)

// AcquireInput is the input of the AcquireSlot and ReleaseSlot activities.
type AcquireInput struct {
	Account string         `json:"account"`
	Region  string         `json:"region"`
	Group   string         `json:"group"`
	Request SlotRequest    `json:"request"`
	Limits  GovernorLimits `json:"limits,omitempty"`
}

// GovernorStatus is the governor's state, also its query result.
type GovernorStatus struct {
	Group    string                  `json:"group"`
	InFlight map[string]InFlightSlot `json:"inFlight"` // by incident ID
	Waiting  []string                `json:"waiting"`  // incident IDs, in order
	Recent   []time.Time             `json:"recent"`   // grants within the breaker window
	Tripped  bool                    `json:"tripped"`
	Limits   GovernorLimits          `json:"limits"`
	// LastCapacity is the last healthy in-service count read, with its time.
	LastCapacity   int       `json:"lastCapacity"`
	LastCapacityAt time.Time `json:"lastCapacityAt,omitzero"`
}
