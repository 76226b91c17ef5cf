package alexa

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/grpc/codes"

	"github.com/cordonhq/cordon/workflows"
)

// Intent and slot names of the interaction model
// (skill-package/interactionModels/custom/en-US.json).
const (
	IntentStatus  = "StatusIntent"  // open incidents, newest first
	IntentDetails = "DetailsIntent" // one incident by its number
	IntentApprove = "ApproveIntent" // workflows.UpdateApprove, after a yes
	IntentReject  = "RejectIntent"  // workflows.UpdateReject, after a yes
	IntentRelease = "ReleaseIntent" // workflows.UpdateRelease, after a yes
	// IntentResetBreaker closes a group's tripped blast-radius breaker
	// (workflows.UpdateResetBreaker), after a yes.
	IntentResetBreaker = "ResetBreakerIntent"

	IntentHelp         = "AMAZON.HelpIntent"
	IntentStop         = "AMAZON.StopIntent"
	IntentCancel       = "AMAZON.CancelIntent"
	IntentNavigateHome = "AMAZON.NavigateHomeIntent"
	IntentFallback     = "AMAZON.FallbackIntent"
	IntentYes          = "AMAZON.YesIntent"
	IntentNo           = "AMAZON.NoIntent"

	// SlotIncident is the AMAZON.NUMBER slot naming an incident by its
	// number in the newest-first list of open incidents.
	SlotIncident = "incident"
	// SlotGroup is the AMAZON.NUMBER slot of IntentResetBreaker naming a
	// group by its number in the list of tripped breakers.
	SlotGroup = "group"
)

// Intents lists every intent the skill handles (the model must declare
// exactly these).
var Intents = []string{
	IntentStatus, IntentDetails, IntentApprove, IntentReject, IntentRelease, IntentResetBreaker,
	IntentHelp, IntentStop, IntentCancel, IntentNavigateHome, IntentFallback, IntentYes, IntentNo,
}

// Skill answers Alexa requests about Cordon's incidents.
//
// Incidents are named by small spoken numbers: their position in the
// newest-first list of open incidents. The list a session first hears (or
// needs) is kept in the session attributes, so "incident two" means the
// same incident for the whole conversation even when others open or close
// meanwhile; a new session numbers afresh. Every confirmation question says
// the instance the number stands for.
//
// Tripped blast-radius breakers are named the same way, by their position
// in the list of tripped breakers (ordered by governor ID), also kept in
// the session; the status answer names them first.
//
// Approve, reject, release and reset-breaker ask "are you sure?" first and
// act on yes (AMAZON.YesIntent) with the pending action kept in the session
// attributes; an intent that arrives already CONFIRMED by a dialog model
// acts at once.
type Skill struct {
	Incidents Incidents
	// Logger gets one line per request (nil: slog.Default()).
	Logger *slog.Logger
	// Now is the clock for "opened 5 minutes ago" (nil: time.Now).
	Now func() time.Time
	// Timeout bounds the work for one request (default 6 s; Alexa waits 8).
	Timeout time.Duration
	// MaxSpoken caps the incidents read out by the status intent (default 5;
	// the card lists all).
	MaxSpoken int
}

// NewSkill returns a skill over the Temporal client c.
func NewSkill(c client.Client, log *slog.Logger) *Skill {
	return &Skill{Incidents: &TemporalIncidents{Client: c}, Logger: log}
}

func (s *Skill) log() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *Skill) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// sessionState is what the skill keeps in the session attributes.
type sessionState struct {
	// Incidents are the workflow IDs behind the spoken numbers (n = index+1).
	Incidents []string `json:"incidents,omitempty"`
	// Instances are their instance IDs, same order.
	Instances []string `json:"instances,omitempty"`
	// Current is the number last talked about ("approve it").
	Current int `json:"current,omitempty"`
	// Breakers are the governor IDs behind the spoken numbers of the
	// tripped breakers (n = index+1).
	Breakers []string `json:"breakers,omitempty"`
	// Pending is an action waiting for yes or no.
	Pending *pendingAction `json:"pending,omitempty"`
}

type pendingAction struct {
	Update   string `json:"update"` // workflows.UpdateApprove, UpdateReject, UpdateRelease, UpdateResetBreaker
	Number   int    `json:"number"`
	ID       string `json:"id"` // incident ID, or governor ID for UpdateResetBreaker
	Instance string `json:"instance"`
	Group    string `json:"group,omitempty"` // UpdateResetBreaker
}

// what names the object of the pending action: "incident 3", "the breaker
// of web-asg".
func (p *pendingAction) what() string {
	if p.Update == workflows.UpdateResetBreaker {
		return "the breaker of " + p.Group
	}
	return fmt.Sprintf("incident %d", p.Number)
}

// verb is the pending action as a spoken verb.
func (p *pendingAction) verb() string {
	if p.Update == workflows.UpdateResetBreaker {
		return "reset"
	}
	return p.Update
}

func loadState(env *RequestEnvelope) *sessionState {
	st := &sessionState{}
	if env.Session == nil || len(env.Session.Attributes) == 0 {
		return st
	}
	b, err := json.Marshal(env.Session.Attributes)
	if err == nil {
		_ = json.Unmarshal(b, st)
	}
	if len(st.Instances) != len(st.Incidents) {
		st.Instances = make([]string, len(st.Incidents))
	}
	return st
}

func (st *sessionState) attributes() map[string]any {
	b, _ := json.Marshal(st)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	if len(m) == 0 {
		return nil
	}
	return m
}

// ref is an incident with its spoken number.
type ref struct {
	N        int
	ID       string
	Instance string
}

// turn is one request being answered.
type turn struct {
	s   *Skill
	ctx context.Context
	env *RequestEnvelope
	st  *sessionState
}

// Handle answers one request. It never fails: every problem becomes a short
// spoken answer (or, for SessionEndedRequest and request types the skill
// does not use, an empty response).
func (s *Skill) Handle(ctx context.Context, env *RequestEnvelope) (out *ResponseEnvelope) {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 6 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := &turn{s: s, ctx: ctx, env: env, st: loadState(env)}
	var resp *ResponseEnvelope
	defer func() {
		if p := recover(); p != nil {
			s.log().Error("alexa: panic answering a request", "panic", fmt.Sprint(p), "requestId", env.Request.RequestID)
			sp := (&speech{}).say("Something went wrong in Cordon's skill; I logged the error. Try again, or use the starter command line.")
			out = &ResponseEnvelope{Version: "1.0", Response: Response{OutputSpeech: sp.output(), ShouldEndSession: Bool(true)}}
		}
	}()
	switch env.Request.Type {
	case TypeLaunch:
		resp = t.launch()
	case TypeIntent:
		resp = t.intent()
	case TypeSessionEnded:
		attrs := []any{"reason", env.Request.Reason}
		if e := env.Request.Error; e != nil {
			attrs = append(attrs, "errorType", e.Type, "error", e.Message)
		}
		s.log().Info("alexa: session ended", attrs...)
		return &ResponseEnvelope{Version: "1.0"}
	default:
		s.log().Info("alexa: request type not used by the skill", "type", env.Request.Type, "requestId", env.Request.RequestID)
		return &ResponseEnvelope{Version: "1.0"}
	}
	s.log().Info("alexa: answered", "type", env.Request.Type, "intent", env.IntentName(),
		"requestId", env.Request.RequestID, "said", resp.Spoken())
	return resp
}

// ask keeps the session open with a question and a reprompt.
func (t *turn) ask(sp *speech, reprompt string, card string) *ResponseEnvelope {
	r := &ResponseEnvelope{Version: "1.0", SessionAttributes: t.st.attributes(), Response: Response{
		OutputSpeech:     sp.output(),
		Reprompt:         &Reprompt{OutputSpeech: PlainText(reprompt)},
		ShouldEndSession: Bool(false),
	}}
	if card != "" {
		r.Response.Card = &Card{Type: CardSimple, Title: "Cordon", Content: card}
	}
	return r
}

// tell answers and ends the session.
func (t *turn) tell(sp *speech, card string) *ResponseEnvelope {
	r := &ResponseEnvelope{Version: "1.0", Response: Response{OutputSpeech: sp.output(), ShouldEndSession: Bool(true)}}
	if card != "" {
		r.Response.Card = &Card{Type: CardSimple, Title: "Cordon", Content: card}
	}
	return r
}

const helpText = "You can say: what's happening; details of incident one; approve incident one; reject incident one; release incident one; or reset the breaker."

func (t *turn) launch() *ResponseEnvelope {
	incs, err := t.s.Incidents.Open(t.ctx)
	if err != nil {
		return t.failure(err, ref{})
	}
	t.remember(incs)
	sp := &speech{}
	sp.say("Cordon here. ")
	if len(incs) == 0 {
		sp.say("No incident is open. Say what's happening at any time, or stop.")
		return t.ask(sp, "Say what's happening, or stop.", "")
	}
	waiting := 0
	for _, inc := range incs {
		if inc.Phase == workflows.PhaseAwaitingApproval {
			waiting++
		}
	}
	sp.say("%s open", plural(len(incs), "incident is", "incidents are"))
	if waiting > 0 {
		sp.say(", %s for your approval", plural(waiting, "waits", "wait"))
	}
	sp.say(". Say what's happening for the list, or help.")
	return t.ask(sp, "Say what's happening, help, or stop.", "")
}

func (t *turn) intent() *ResponseEnvelope {
	name := t.env.IntentName()
	pending := t.st.Pending
	if name != IntentYes && name != IntentNo && name != IntentHelp {
		t.st.Pending = nil // a new request replaces an unanswered question
	}
	switch name {
	case IntentStatus:
		return t.status()
	case IntentDetails:
		return t.details()
	case IntentApprove:
		return t.decide(workflows.UpdateApprove)
	case IntentReject:
		return t.decide(workflows.UpdateReject)
	case IntentRelease:
		return t.decide(workflows.UpdateRelease)
	case IntentResetBreaker:
		return t.resetBreaker()
	case IntentYes:
		if pending == nil {
			sp := (&speech{}).say("There is nothing to confirm. " + helpText)
			return t.ask(sp, "Say what's happening, or stop.", "")
		}
		t.st.Pending = nil
		if pending.Update == workflows.UpdateResetBreaker {
			b := breakerOf(pending.Number, pending.ID)
			if b.Group == "" {
				b.Group = pending.Group
			}
			return t.reset(b)
		}
		return t.act(ref{N: pending.Number, ID: pending.ID, Instance: pending.Instance}, pending.Update)
	case IntentNo:
		if pending == nil {
			sp := (&speech{}).say("OK. " + helpText)
			return t.ask(sp, "Say what's happening, or stop.", "")
		}
		t.st.Pending = nil
		sp := (&speech{}).say("OK, I did not %s %s; nothing changed.", pending.verb(), pending.what())
		return t.tell(sp, "")
	case IntentHelp:
		sp := (&speech{}).say("Cordon contains compromised servers. " + helpText)
		if pending != nil {
			sp.say(" Or answer yes or no: %s %s?", pending.verb(), pending.what())
		}
		return t.ask(sp, "What would you like to do?", "")
	case IntentStop, IntentCancel, IntentNavigateHome:
		sp := &speech{}
		if pending != nil {
			sp.say("Cancelled; %s is unchanged. ", pending.what())
		}
		sp.say("Goodbye.")
		return t.tell(sp, "")
	case IntentFallback:
		sp := (&speech{}).say("Cordon can't help with that. " + helpText)
		return t.ask(sp, "Say what's happening, or stop.", "")
	}
	t.s.log().Warn("alexa: unknown intent", "intent", name, "requestId", t.env.Request.RequestID)
	sp := &speech{}
	if name == "" {
		sp.say("Sorry, I didn't get that. %s", helpText)
	} else {
		sp.say("Sorry, Cordon does not know the request %q. %s", strings.TrimSuffix(name, "Intent"), helpText)
	}
	return t.ask(sp, "Say what's happening, or stop.", "")
}

// remember numbers a freshly listed set of open incidents for the session.
func (t *turn) remember(incs []Incident) {
	t.st.Incidents, t.st.Instances = nil, nil
	for _, inc := range incs {
		t.st.Incidents = append(t.st.Incidents, inc.ID)
		t.st.Instances = append(t.st.Instances, inc.InstanceID)
	}
	t.st.Current = 0
}

func (t *turn) status() *ResponseEnvelope {
	incs, err := t.s.Incidents.Open(t.ctx)
	if err != nil {
		return t.failure(err, ref{})
	}
	t.remember(incs)
	sp := &speech{}
	var card strings.Builder
	brs, complete := t.breakerNews(sp, &card)
	if len(incs) == 0 {
		sp.say("No incident is open.")
		if len(brs) > 0 {
			hint := "Say reset the breaker to close it, or stop."
			if len(brs) > 1 {
				hint = fmt.Sprintf("Say reset the breaker for group %d, or reset the breaker for group %d, or stop.", brs[0].N, brs[1].N)
			}
			sp.say(" %s", hint)
			return t.ask(sp, hint, card.String()+"No open incidents.")
		}
		if complete {
			sp.say(" All quiet.")
		}
		return t.tell(sp, card.String()+"No open incidents.")
	}
	max := t.s.MaxSpoken
	if max <= 0 {
		max = 5
	}
	sp.say("%s open, newest first. ", plural(len(incs), "incident is", "incidents are"))
	firstWaiting, firstOther := 0, 0
	for i, inc := range incs {
		n := i + 1
		fmt.Fprintf(&card, "%d. %s  %s  bad IP %s  opened %s  (%s)\n", n, inc.InstanceID, inc.Phase, inc.BadIP,
			inc.Opened.UTC().Format("2006-01-02 15:04 UTC"), inc.ID)
		if inc.Phase == workflows.PhaseAwaitingApproval && firstWaiting == 0 {
			firstWaiting = n
		} else if firstOther == 0 {
			firstOther = n
		}
		if i < max {
			sp.say("%d: ", n).instance(inc.InstanceID).say(", %s. ", phaseWords(inc.Phase)).pause()
		}
	}
	if len(incs) > max {
		sp.say("And %d more; the Alexa app lists them all. ", len(incs)-max)
	}
	var hint string
	switch {
	case firstWaiting > 0:
		hint = fmt.Sprintf("Say approve incident %d, reject incident %d, or details of incident %d.", firstWaiting, firstWaiting, firstWaiting)
	case len(brs) > 0:
		hint = fmt.Sprintf("Say details of incident %d, release incident %d, or reset the breaker.", firstOther, firstOther)
	default:
		hint = fmt.Sprintf("Say details of incident %d, release incident %d, or stop.", firstOther, firstOther)
	}
	sp.say("%s", hint)
	return t.ask(sp, hint, card.String())
}

// slotNumber reads the incident slot: ok false when absent; err when
// present but not a positive whole number ("?" is what Alexa sends for
// a number it did not recognise).
func slotNumber(in *Intent) (n int, ok bool, err error) { return numberSlot(in, SlotIncident) }

// numberSlot reads an AMAZON.NUMBER slot as slotNumber does.
func numberSlot(in *Intent, slot string) (n int, ok bool, err error) {
	v := in.SlotValue(slot)
	if v == "" {
		return 0, false, nil
	}
	n, err = strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, true, fmt.Errorf("%s number %q not understood", slot, v)
	}
	return n, true, nil
}

// errNoNumber is a spoken number beyond the session's list.
type errNoNumber struct{ n, count int }

func (e errNoNumber) Error() string { return fmt.Sprintf("no incident %d of %d", e.n, e.count) }

// lookup returns the incident a number stands for in this session, listing
// the open incidents first if the session has no list yet.
func (t *turn) lookup(n int) (ref, error) {
	if len(t.st.Incidents) == 0 {
		incs, err := t.s.Incidents.Open(t.ctx)
		if err != nil {
			return ref{}, err
		}
		t.remember(incs)
	}
	if n < 1 || n > len(t.st.Incidents) {
		return ref{}, errNoNumber{n, len(t.st.Incidents)}
	}
	t.st.Current = n
	return ref{N: n, ID: t.st.Incidents[n-1], Instance: t.st.Instances[n-1]}, nil
}

func (t *turn) details() *ResponseEnvelope {
	in := t.env.Request.Intent
	n, ok, err := slotNumber(in)
	if err != nil {
		return t.badNumber("details of incident one")
	}
	if !ok {
		if t.st.Current == 0 {
			// The dialog model elicits the number; this is its prompt if
			// the request came without one anyway.
			sp := (&speech{}).say("Which incident number?")
			r := t.ask(sp, "Say the incident's number, for example one.", "")
			r.Response.Directives = []Directive{{Type: DirectiveElicitSlot, SlotToElicit: SlotIncident, UpdatedIntent: in}}
			return r
		}
		n = t.st.Current
	}
	r, err := t.lookup(n)
	if err != nil {
		return t.failure(err, ref{N: n})
	}
	st, err := t.s.Incidents.Status(t.ctx, r.ID)
	if err != nil {
		return t.failure(err, r)
	}
	sp := &speech{}
	sp.say("Incident %d: ", r.N).instance(st.InstanceID)
	if st.Group != "" {
		sp.say(" in group %s", st.Group)
	}
	if st.BadIP != "" {
		sp.say(", talked to ").ip(st.BadIP)
	}
	sp.say("; %s. ", plural(st.EvidenceCount, "alert", "alerts"))
	if !st.Opened.IsZero() {
		sp.say("Opened %s. ", ago(t.s.now(), st.Opened))
	}
	sp.say("It is %s", phaseWords(st.Phase))
	if st.Phase == workflows.PhaseAwaitingApproval {
		if dl, ok := deadline(st); ok {
			sp.say(" until %s UTC", dl.UTC().Format("15:04"))
		}
	}
	sp.say(". ")
	if st.Phase.Final() && st.Outcome != "" {
		sp.say("Outcome: %s. ", phaseName(string(st.Outcome)))
	}
	if q := st.Resources.QuarantineInstanceID; q != "" {
		sp.say("Its quarantine copy is ").instance(q).say(". ")
	}
	card := fmt.Sprintf("Incident %d: %s\nInstance %s (account %s, %s)\nBad IP %s\nPhase %s\nAlerts %d\nOpened %s",
		r.N, st.IncidentID, st.InstanceID, st.Account, st.Region, st.BadIP, st.Phase, st.EvidenceCount, st.Opened.UTC().Format(time.RFC3339))
	if st.Reason != "" {
		card += "\nReason " + st.Reason
	}
	switch {
	case st.Phase == workflows.PhaseAwaitingApproval:
		hint := fmt.Sprintf("Say approve incident %d, or reject incident %d.", r.N, r.N)
		sp.say("%s", hint)
		return t.ask(sp, hint, card)
	case releasable(st.Phase):
		hint := fmt.Sprintf("Say release incident %d to restore it, or stop.", r.N)
		sp.say("%s", hint)
		return t.ask(sp, hint, card)
	}
	return t.tell(sp, card)
}

// deadline is when an incident waiting for approval stops waiting.
func deadline(st workflows.Status) (time.Time, bool) {
	for i := len(st.Phases) - 1; i >= 0; i-- {
		if st.Phases[i].Phase == workflows.PhaseAwaitingApproval {
			p, err := st.Policy.Normalize()
			if err != nil {
				return time.Time{}, false
			}
			return st.Phases[i].At.Add(p.ApprovalTimeout), true
		}
	}
	return time.Time{}, false
}

// releasable reports whether release can still restore an incident in p
// (the update's validator has the last word).
func releasable(p workflows.Phase) bool {
	switch p {
	case workflows.PhaseAwaitingApproval, workflows.PhaseImaging, workflows.PhaseRelaunching:
		return true
	}
	return false
}

func (t *turn) badNumber(example string) *ResponseEnvelope {
	sp := (&speech{}).say("I didn't catch the incident number. Say, for example, %s.", example)
	return t.ask(sp, fmt.Sprintf("Say, for example, %s.", example), "")
}

// decide handles approve, reject and release: find the incident, check it
// can take the update, then ask for confirmation (or act when the intent
// arrives confirmed).
func (t *turn) decide(update string) *ResponseEnvelope {
	in := t.env.Request.Intent
	n, ok, err := slotNumber(in)
	if err != nil {
		return t.badNumber(update + " incident one")
	}
	var r ref
	switch {
	case ok:
		if r, err = t.lookup(n); err != nil {
			return t.failure(err, ref{N: n})
		}
	case t.st.Current > 0:
		if r, err = t.lookup(t.st.Current); err != nil {
			return t.failure(err, ref{N: t.st.Current})
		}
	default:
		var resp *ResponseEnvelope
		if r, resp = t.pick(update); resp != nil {
			return resp
		}
	}
	st, err := t.s.Incidents.Status(t.ctx, r.ID)
	if err != nil {
		return t.failure(err, r)
	}
	if r.Instance == "" {
		r.Instance = st.InstanceID
	}
	if resp := t.precheck(update, r, st); resp != nil {
		return resp
	}
	switch in.ConfirmationStatus {
	case ConfirmationConfirmed:
		return t.act(r, update)
	case ConfirmationDenied:
		sp := (&speech{}).say("OK, I did not %s incident %d; nothing changed.", update, r.N)
		return t.tell(sp, "")
	}
	t.st.Pending = &pendingAction{Update: update, Number: r.N, ID: r.ID, Instance: r.Instance}
	sp := &speech{}
	switch update {
	case workflows.UpdateApprove:
		sp.say("Approve incident %d, ", r.N).instance(r.Instance)
		if st.BadIP != "" {
			sp.say(", which talked to ").ip(st.BadIP)
		}
		sp.say("? Cordon will image it, launch a quarantine copy and terminate the original. Say yes or no.")
	case workflows.UpdateReject:
		sp.say("Reject incident %d as a false positive, and restore ", r.N).instance(r.Instance).say("? Say yes or no.")
	default:
		sp.say("Release incident %d, and restore ", r.N).instance(r.Instance).say(" to its state before the incident? Say yes or no.")
	}
	return t.ask(sp, fmt.Sprintf("Should I %s incident %d? Say yes or no.", update, r.N), "")
}

// pick chooses the incident an update without a number means: the only
// one waiting for approval (approve, reject) or the only open one
// (release); otherwise it asks which.
func (t *turn) pick(update string) (ref, *ResponseEnvelope) {
	incs, err := t.s.Incidents.Open(t.ctx)
	if err != nil {
		return ref{}, t.failure(err, ref{})
	}
	t.remember(incs)
	var cands []ref
	for i, inc := range incs {
		if update == workflows.UpdateRelease || inc.Phase == workflows.PhaseAwaitingApproval {
			cands = append(cands, ref{N: i + 1, ID: inc.ID, Instance: inc.InstanceID})
		}
	}
	if len(cands) == 1 {
		t.st.Current = cands[0].N
		return cands[0], nil
	}
	sp := &speech{}
	if len(cands) == 0 {
		if update == workflows.UpdateRelease {
			sp.say("No incident is open, so there is nothing to release.")
		} else {
			sp.say("No incident is waiting for approval, so there is nothing to %s. Say what's happening to hear the open ones.", update)
		}
		return ref{}, t.tell(sp, "")
	}
	if update == workflows.UpdateRelease {
		sp.say("%d incidents are open: ", len(cands))
	} else {
		sp.say("%d incidents wait for approval: ", len(cands))
	}
	for i, c := range cands {
		if i > 0 {
			sp.say("; ")
		}
		sp.say("%d, ", c.N).instance(c.Instance)
	}
	hint := fmt.Sprintf("Say %s incident %d, or %s incident %d.", update, cands[0].N, update, cands[1].N)
	sp.say(". %s", hint)
	return ref{}, t.ask(sp, hint, "")
}

// precheck refuses at once an update the incident cannot take in its
// current phase, in the words of the workflow's validators.
func (t *turn) precheck(update string, r ref, st workflows.Status) *ResponseEnvelope {
	sp := &speech{}
	switch {
	case st.Phase.Final():
		sp.say("Incident %d is already closed: %s. Nothing to %s.", r.N, phaseWords(st.Phase), update)
	case update != workflows.UpdateRelease && st.Phase != workflows.PhaseAwaitingApproval:
		sp.say("Incident %d is %s, not waiting for approval, so there is nothing to %s.", r.N, phaseWords(st.Phase), update)
		if releasable(st.Phase) {
			sp.say(" Say release incident %d to restore it instead.", r.N)
		}
	case update == workflows.UpdateRelease && !releasable(st.Phase) && st.Phase != workflows.PhaseReleasing:
		switch st.Phase {
		case workflows.PhaseTerminating, workflows.PhaseHealing, workflows.PhaseCleaningUp:
			sp.say("Incident %d can no longer be released: its original instance is terminated or being terminated.", r.N)
		default:
			sp.say("Incident %d is %s; release is possible once isolation has finished. Ask me again in a moment.", r.N, phaseWords(st.Phase))
		}
	default:
		return nil
	}
	return t.tell(sp, "")
}

// act sends the update.
func (t *turn) act(r ref, update string) *ResponseEnvelope {
	d := workflows.Decision{By: t.by(), Comment: "by voice (Alexa)"}
	st, done, err := t.s.Incidents.Decide(t.ctx, r.ID, update, d)
	if err != nil {
		return t.failure(err, r)
	}
	t.s.log().Info("alexa: decision", "incidentID", r.ID, "update", update, "by", d.By, "completed", done, "phase", string(st.Phase))
	sp := &speech{}
	switch update {
	case workflows.UpdateApprove:
		sp.say("Approved. Cordon goes on with incident %d: it images ", r.N).instance(r.Instance).say(", launches the quarantine copy, then terminates the original.")
	case workflows.UpdateReject:
		sp.say("Rejected as a false positive. Cordon is restoring ").instance(r.Instance).say(" to its state before incident %d.", r.N)
	default:
		if done {
			sp.say("Released: ").instance(r.Instance).say(" is back in its state before incident %d.", r.N)
		} else {
			sp.say("Release accepted. Cordon is restoring ").instance(r.Instance).say(" now; ask me for details of incident %d in a minute.", r.N)
		}
	}
	return t.tell(sp, fmt.Sprintf("%s %s: accepted (by %s)", update, r.ID, d.By))
}

// by names the decider in the incident: alexa plus a short hash of the
// Alexa user, so two operators can be told apart.
func (t *turn) by() string {
	u := t.env.UserID()
	if u == "" {
		return "alexa"
	}
	h := sha256.Sum256([]byte(u))
	return "alexa:" + hex.EncodeToString(h[:4])
}

// failure turns an error into a short spoken answer saying what happened
// and what to say instead.
func (t *turn) failure(err error, r ref) *ResponseEnvelope {
	sp := &speech{}
	var nn errNoNumber
	var app *temporal.ApplicationError
	switch {
	case errors.As(err, &nn):
		if nn.count == 0 {
			sp.say("There is no incident %d: no incident is open.", nn.n)
			return t.tell(sp, "")
		}
		if nn.count == 1 {
			sp.say("There is no incident %d: only incident 1 is open. Say details of incident 1, or what's happening.", nn.n)
		} else {
			sp.say("There is no incident %d: %d incidents are open. Say a number from 1 to %d, or say what's happening to hear them.", nn.n, nn.count, nn.count)
		}
		return t.ask(sp, "Say what's happening, or stop.", "")
	case errors.Is(err, workflows.ErrNoIncident):
		sp.say("Incident %d is closed or no longer exists. Say what's happening to hear the open ones.", r.N)
		return t.ask(sp, "Say what's happening, or stop.", "")
	case errors.As(err, &app):
		sp.say("%s", refusal(app.Message(), r))
		t.s.log().Info("alexa: update refused", "incidentID", r.ID, "reason", app.Message())
		return t.tell(sp, app.Message())
	case unreachable(err):
		t.s.log().Error("alexa: Temporal unreachable", "error", err.Error())
		sp.say("I can't reach Cordon's Temporal service right now, so I can't tell or change anything. Try again in a minute, or use the starter command line.")
		return t.tell(sp, "Temporal unreachable: "+err.Error())
	}
	t.s.log().Error("alexa: request failed", "incidentID", r.ID, "error", err.Error())
	sp.say("Something went wrong talking to Cordon; I logged the error. Try again, or use the starter command line.")
	return t.tell(sp, "Error: "+err.Error())
}

// refusal rewrites a validator's message ("incident quarantine/… is
// imaging, not waiting for approval") for the ear ("Incident 2 is imaging,
// not waiting for approval.").
func refusal(msg string, r ref) string {
	if r.ID != "" {
		msg = strings.ReplaceAll(msg, "incident "+r.ID, fmt.Sprintf("incident %d", r.N))
		msg = strings.ReplaceAll(msg, r.ID, fmt.Sprintf("incident %d", r.N))
	}
	for _, p := range []workflows.Phase{workflows.PhaseAwaitingApproval, workflows.PhaseNeedsAttention, workflows.PhaseCleaningUp} {
		msg = strings.ReplaceAll(msg, string(p), phaseName(string(p)))
	}
	if msg != "" {
		msg = strings.ToUpper(msg[:1]) + msg[1:]
	}
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return msg + " Nothing was changed."
}

// unreachable reports errors that mean Temporal (or its worker) did not answer.
func unreachable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	var to *client.WorkflowUpdateServiceTimeoutOrCanceledError
	if errors.As(err, &to) {
		return true
	}
	var un *serviceerror.Unavailable
	var de *serviceerror.DeadlineExceeded
	var ca *serviceerror.Canceled
	if errors.As(err, &un) || errors.As(err, &de) || errors.As(err, &ca) {
		return true
	}
	switch serviceerror.ToStatus(err).Code() {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		return true
	}
	return false
}
