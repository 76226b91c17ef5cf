package alexa

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/cordonhq/cordon/alexa/alexatest"
	"github.com/cordonhq/cordon/workflows"
)

// fakeIncidents is an in-memory Incidents for unit tests; the end-to-end
// test in skilltest/ drives the real workflows.
type fakeIncidents struct {
	mu      sync.Mutex
	open    []Incident
	status  map[string]workflows.Status
	err     error
	done    bool // Decide reports completion
	refuse  map[string]string
	decided []string

	governors  map[string]workflows.GovernorStatus // by governor ID
	breakerErr error                               // Breakers fails (after listing what it can)
	resets     []string
}

// trip adds a governor with a tripped breaker for group in account 123456789012, us-east-1.
func (f *fakeIncidents) trip(group string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.governors == nil {
		f.governors = map[string]workflows.GovernorStatus{}
	}
	id := workflows.GovernorID("123456789012", "us-east-1", group)
	f.governors[id] = workflows.GovernorStatus{Group: group, Tripped: true, Recent: make([]time.Time, 5), Limits: workflows.DefaultGovernorLimits}
	return id
}

func newFake(now time.Time, phases ...workflows.Phase) *fakeIncidents {
	f := &fakeIncidents{status: map[string]workflows.Status{}, refuse: map[string]string{}, done: true}
	for i, p := range phases {
		inst := fmt.Sprintf("i-0aaaaaaaaaaaa%04x", i+1)
		id := workflows.IncidentID("123456789012", "us-east-1", inst)
		opened := now.Add(-time.Duration(i+1) * time.Minute) // first is newest
		f.open = append(f.open, Incident{ID: id, InstanceID: inst, BadIP: "1.19.6.4", Phase: p, Opened: opened})
		f.status[id] = workflows.Status{IncidentID: id, Account: "123456789012", Region: "us-east-1", InstanceID: inst,
			BadIP: "1.19.6.4", Group: "web-asg", Phase: p, Opened: opened, EvidenceCount: 2,
			Phases: []workflows.PhaseChange{{Phase: p, At: opened}}}
	}
	return f
}

func (f *fakeIncidents) Open(ctx context.Context) ([]Incident, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	return append([]Incident(nil), f.open...), nil
}

func (f *fakeIncidents) Status(ctx context.Context, id string) (workflows.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return workflows.Status{}, f.err
	}
	st, ok := f.status[id]
	if !ok {
		return st, fmt.Errorf("%w: %s", workflows.ErrNoIncident, id)
	}
	return st, nil
}

func (f *fakeIncidents) Decide(ctx context.Context, id, update string, d workflows.Decision) (workflows.Status, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return workflows.Status{}, false, f.err
	}
	if msg, ok := f.refuse[id]; ok {
		return workflows.Status{}, false, temporal.NewApplicationError(msg, "")
	}
	f.decided = append(f.decided, update+" "+id+" by "+d.By)
	return f.status[id], f.done, nil
}

func (f *fakeIncidents) Breakers(ctx context.Context) ([]Breaker, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	var out []Breaker
	for id, g := range f.governors {
		if g.Tripped {
			acct, region, _, _ := ParseGovernorID(id)
			out = append(out, Breaker{ID: id, Account: acct, Region: region, Group: g.Group, Recent: len(g.Recent), Limits: g.Limits})
		}
	}
	slices.SortFunc(out, func(a, b Breaker) int { return strings.Compare(a.ID, b.ID) })
	return out, f.breakerErr
}

func (f *fakeIncidents) ResetBreaker(ctx context.Context, id string, d workflows.Decision) (workflows.GovernorStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return workflows.GovernorStatus{}, f.err
	}
	g, ok := f.governors[id]
	if !ok {
		return g, fmt.Errorf("%w: %s", ErrNoGovernor, id)
	}
	g.Tripped, g.Recent = false, nil
	f.governors[id] = g
	f.resets = append(f.resets, id+" by "+d.By)
	return g, nil
}

// session plays one Alexa session against a skill, carrying the session
// attributes from each response to the next request as Alexa does.
type session struct {
	t     *testing.T
	skill *Skill
	attrs map[string]any
	n     int
}

func (s *session) say(intent string, slots map[string]string) *ResponseEnvelope {
	return s.send(alexatest.Call{Intent: intent, Slots: slots})
}

func (s *session) send(c alexatest.Call) *ResponseEnvelope {
	s.t.Helper()
	c.AppID, c.UserID, c.SessionID = testSkillID, "amzn1.ask.account.TEST", "amzn1.echo-api.session.test"
	c.New, c.Attributes = s.n == 0, s.attrs
	s.n++
	env, err := ParseRequest(c.JSON())
	if err != nil {
		s.t.Fatal(err)
	}
	resp := s.skill.Handle(context.Background(), env)
	checkResponse(s.t, resp)
	s.attrs = resp.SessionAttributes
	if resp.Ends() {
		s.attrs, s.n = nil, 0
	}
	return resp
}

// checkResponse: valid JSON shape, well-formed SSML, a reprompt whenever the
// session stays open, no Go error text or stack in the speech.
func checkResponse(t *testing.T, r *ResponseEnvelope) {
	t.Helper()
	if r.Version != "1.0" {
		t.Fatalf("version %q", r.Version)
	}
	if sp := r.Response.OutputSpeech; sp != nil && sp.Type == SpeechSSML {
		d := xml.NewDecoder(strings.NewReader(sp.SSML))
		for {
			if _, err := d.Token(); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("SSML not well-formed: %v: %s", err, sp.SSML)
			}
		}
	}
	if !r.Ends() && r.Response.Reprompt == nil && len(r.Response.Directives) == 0 {
		t.Fatalf("open session without a reprompt: %s", r.Spoken())
	}
	for _, bad := range []string{"goroutine", "panic", ".go:", "rpc error", "%!"} {
		if strings.Contains(r.Spoken(), bad) {
			t.Fatalf("speech leaks %q: %s", bad, r.Spoken())
		}
	}
	if _, err := json.Marshal(r); err != nil {
		t.Fatal(err)
	}
}

func wantSaid(t *testing.T, r *ResponseEnvelope, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(r.Spoken(), p) {
			t.Fatalf("said %q; want it to contain %q", r.Spoken(), p)
		}
	}
}

var testNow = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

func newTestSkill(f Incidents) *Skill {
	return &Skill{Incidents: f, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return testNow }}
}

func num(n int) map[string]string { return map[string]string{SlotIncident: fmt.Sprint(n)} }

func TestStatusAndDetails(t *testing.T) {
	f := newFake(testNow, workflows.PhaseAwaitingApproval, workflows.PhaseImaging)
	s := &session{t: t, skill: newTestSkill(f)}

	r := s.send(alexatest.Call{Type: TypeLaunch})
	wantSaid(t, r, "Cordon here. 2 incidents are open, 1 waits for your approval.")

	r = s.say(IntentStatus, nil)
	wantSaid(t, r, "2 incidents are open, newest first. 1: instance ending 0001, waiting for your approval. 2: instance ending 0002, being imaged.",
		"Say approve incident 1, reject incident 1, or details of incident 1.")
	if r.Response.Card == nil || !strings.Contains(r.Response.Card.Content, "i-0aaaaaaaaaaaa0001") {
		t.Fatalf("card %+v", r.Response.Card)
	}
	if !strings.Contains(r.Response.OutputSpeech.SSML, `<say-as interpret-as="characters">0001</say-as>`) {
		t.Fatal(r.Response.OutputSpeech.SSML)
	}

	r = s.say(IntentDetails, num(2))
	wantSaid(t, r, "Incident 2: instance ending 0002 in group web-asg, talked to 1 dot 19 dot 6 dot 4; 2 alerts. Opened 2 minutes ago. It is being imaged.",
		"Say release incident 2")

	r = s.say(IntentDetails, num(1))
	wantSaid(t, r, "It is waiting for your approval until 12:29 UTC.", "Say approve incident 1, or reject incident 1.")

	r = s.say(IntentDetails, num(7))
	wantSaid(t, r, "There is no incident 7: 2 incidents are open. Say a number from 1 to 2")
	if r.Ends() {
		t.Fatal("a wrong number should leave the session open")
	}

	r = s.say(IntentDetails, map[string]string{SlotIncident: "?"})
	wantSaid(t, r, "I didn't catch the incident number. Say, for example, details of incident one.")

	// No number and nothing talked about yet: elicit the slot.
	s2 := &session{t: t, skill: newTestSkill(f)}
	r = s2.say(IntentDetails, map[string]string{SlotIncident: ""})
	if len(r.Response.Directives) != 1 || r.Response.Directives[0].Type != DirectiveElicitSlot || r.Response.Directives[0].SlotToElicit != SlotIncident {
		t.Fatalf("directives %+v", r.Response.Directives)
	}

	f.open = nil
	r = (&session{t: t, skill: newTestSkill(f)}).say(IntentStatus, nil)
	wantSaid(t, r, "No incident is open.")
	if !r.Ends() {
		t.Fatal("nothing to do: the session should end")
	}
}

func TestStatusSpeaksAtMostFive(t *testing.T) {
	f := newFake(testNow, workflows.PhaseImaging, workflows.PhaseImaging, workflows.PhaseImaging, workflows.PhaseImaging,
		workflows.PhaseImaging, workflows.PhaseImaging, workflows.PhaseHealing)
	r := (&session{t: t, skill: newTestSkill(f)}).say(IntentStatus, nil)
	wantSaid(t, r, "7 incidents are open", "5: instance ending 0005", "And 2 more; the Alexa app lists them all.")
	if strings.Contains(r.Spoken(), "instance ending 0006") || !strings.Contains(r.Response.Card.Content, "7. i-0aaaaaaaaaaaa0007") {
		t.Fatal(r.Spoken(), r.Response.Card.Content)
	}
}

func TestApproveRejectReleaseConfirmation(t *testing.T) {
	f := newFake(testNow, workflows.PhaseAwaitingApproval, workflows.PhaseImaging, workflows.PhaseAwaitingApproval)
	s := &session{t: t, skill: newTestSkill(f)}

	// Not waiting for approval: refused at once, nothing asked.
	r := s.say(IntentApprove, num(2))
	wantSaid(t, r, "Incident 2 is being imaged, not waiting for approval, so there is nothing to approve. Say release incident 2 to restore it instead.")

	// Approve: question naming the instance, then yes.
	r = s.say(IntentApprove, num(1))
	wantSaid(t, r, "Approve incident 1, instance ending 0001, which talked to 1 dot 19 dot 6 dot 4? Cordon will image it", "Say yes or no.")
	if r.Ends() || r.SessionAttributes["pending"] == nil {
		t.Fatalf("no pending question: %+v", r.SessionAttributes)
	}
	r = s.say(IntentYes, nil)
	wantSaid(t, r, "Approved. Cordon goes on with incident 1: it images instance ending 0001")
	if len(f.decided) != 1 || !strings.HasPrefix(f.decided[0], "approve quarantine/123456789012/us-east-1/i-0aaaaaaaaaaaa0001 by alexa:") {
		t.Fatalf("decided %v", f.decided)
	}

	// Reject, then no: nothing changes.
	r = s.say(IntentReject, num(3))
	wantSaid(t, r, "Reject incident 3 as a false positive, and restore instance ending 0003? Say yes or no.")
	r = s.say(IntentNo, nil)
	wantSaid(t, r, "OK, I did not reject incident 3; nothing changed.")
	if len(f.decided) != 1 {
		t.Fatalf("decided %v", f.decided)
	}

	// Reject, yes.
	r = s.say(IntentReject, num(3))
	r = s.say(IntentYes, nil)
	wantSaid(t, r, "Rejected as a false positive. Cordon is restoring instance ending 0003 to its state before incident 3.")

	// Release that has not finished within the wait.
	f.done = false
	s.say(IntentRelease, num(2))
	r = s.say(IntentYes, nil)
	wantSaid(t, r, "Release accepted. Cordon is restoring instance ending 0002 now")
	f.done = true
	s.say(IntentRelease, num(2))
	r = s.say(IntentYes, nil)
	wantSaid(t, r, "Released: instance ending 0002 is back in its state before incident 2.")

	// Yes and No with nothing pending.
	r = s.say(IntentYes, nil)
	wantSaid(t, r, "There is nothing to confirm.")
	r = s.say(IntentNo, nil)
	wantSaid(t, r, "OK. You can say")

	// Another intent drops an unanswered question.
	s.say(IntentApprove, num(1))
	s.say(IntentStatus, nil)
	r = s.say(IntentYes, nil)
	wantSaid(t, r, "There is nothing to confirm.")

	// Cancel while a question is pending.
	s.say(IntentApprove, num(1))
	r = s.say(IntentCancel, nil)
	wantSaid(t, r, "Cancelled; incident 1 is unchanged. Goodbye.")
	if !r.Ends() {
		t.Fatal("cancel should end the session")
	}
}

func TestDialogConfirmationStatus(t *testing.T) {
	f := newFake(testNow, workflows.PhaseAwaitingApproval)
	s := &session{t: t, skill: newTestSkill(f)}
	r := s.send(alexatest.Call{Intent: IntentApprove, Slots: num(1), Confirmation: ConfirmationDenied})
	wantSaid(t, r, "OK, I did not approve incident 1; nothing changed.")
	r = s.send(alexatest.Call{Intent: IntentApprove, Slots: num(1), Confirmation: ConfirmationConfirmed, DialogState: DialogCompleted})
	wantSaid(t, r, "Approved.")
	if len(f.decided) != 1 {
		t.Fatal(f.decided)
	}
}

func TestDecideWithoutNumber(t *testing.T) {
	// One incident waits: "approve" means it.
	f := newFake(testNow, workflows.PhaseImaging, workflows.PhaseAwaitingApproval)
	r := (&session{t: t, skill: newTestSkill(f)}).say(IntentApprove, nil)
	wantSaid(t, r, "Approve incident 2, instance ending 0002")

	// Two wait: ask which, with their numbers in the full list.
	f = newFake(testNow, workflows.PhaseAwaitingApproval, workflows.PhaseImaging, workflows.PhaseAwaitingApproval)
	r = (&session{t: t, skill: newTestSkill(f)}).say(IntentReject, nil)
	wantSaid(t, r, "2 incidents wait for approval: 1, instance ending 0001; 3, instance ending 0003. Say reject incident 1, or reject incident 3.")

	// None waits.
	f = newFake(testNow, workflows.PhaseImaging)
	r = (&session{t: t, skill: newTestSkill(f)}).say(IntentApprove, nil)
	wantSaid(t, r, "No incident is waiting for approval, so there is nothing to approve.")

	// "Release it" after details of incident 2 means incident 2.
	f = newFake(testNow, workflows.PhaseAwaitingApproval, workflows.PhaseImaging)
	s := &session{t: t, skill: newTestSkill(f)}
	s.say(IntentDetails, num(2))
	r = s.say(IntentRelease, nil)
	wantSaid(t, r, "Release incident 2, and restore instance ending 0002 to its state before the incident? Say yes or no.")

	// Release with several open and none named: ask which.
	r = (&session{t: t, skill: newTestSkill(f)}).say(IntentRelease, nil)
	wantSaid(t, r, "2 incidents are open: 1, instance ending 0001; 2, instance ending 0002. Say release incident 1, or release incident 2.")
}

func TestBadInput(t *testing.T) {
	f := newFake(testNow, workflows.PhaseAwaitingApproval, workflows.PhaseTerminating, workflows.PhaseResolved, workflows.PhaseIsolating, workflows.PhaseQueued)
	s := &session{t: t, skill: newTestSkill(f)}

	r := s.say(IntentApprove, map[string]string{SlotIncident: "?"})
	wantSaid(t, r, "I didn't catch the incident number. Say, for example, approve incident one.")
	r = s.say(IntentApprove, map[string]string{SlotIncident: "0"})
	wantSaid(t, r, "I didn't catch the incident number.")
	r = s.say(IntentRelease, num(9))
	wantSaid(t, r, "There is no incident 9: 5 incidents are open.")

	r = s.say(IntentRelease, num(2))
	wantSaid(t, r, "Incident 2 can no longer be released: its original instance is terminated or being terminated.")
	r = s.say(IntentApprove, num(3))
	wantSaid(t, r, "Incident 3 is already closed: resolved. Nothing to approve.")
	r = s.say(IntentRelease, num(4))
	wantSaid(t, r, "Incident 4 is being isolated; release is possible once isolation has finished.")
	r = s.say(IntentApprove, num(5))
	wantSaid(t, r, "Incident 5 is queued until its group can spare it, not waiting for approval, so there is nothing to approve.")

	// The validator refuses between the question and the yes.
	s.say(IntentApprove, num(1))
	f.refuse[f.open[0].ID] = "incident " + f.open[0].ID + " was already approved by cli:bob"
	r = s.say(IntentYes, nil)
	wantSaid(t, r, "Incident 1 was already approved by cli:bob. Nothing was changed.")
	if strings.Contains(r.Spoken(), "quarantine/") {
		t.Fatal("the workflow ID should not be read out")
	}
	delete(f.refuse, f.open[0].ID)

	// The incident vanished (closed) after the list was heard.
	delete(f.status, f.open[0].ID)
	r = s.say(IntentDetails, num(1))
	wantSaid(t, r, "Incident 1 is closed or no longer exists. Say what's happening to hear the open ones.")

	// One open: a wrong number names the only one.
	f1 := newFake(testNow, workflows.PhaseImaging)
	r = (&session{t: t, skill: newTestSkill(f1)}).say(IntentDetails, num(7))
	wantSaid(t, r, "There is no incident 7: only incident 1 is open.")
	f0 := newFake(testNow)
	r = (&session{t: t, skill: newTestSkill(f0)}).say(IntentDetails, num(2))
	wantSaid(t, r, "There is no incident 2: no incident is open.")

	// Unknown intent, and an arbitrary backend error.
	r = s.say("airportInfoIntent", nil)
	wantSaid(t, r, `Sorry, Cordon does not know the request "airportInfo".`, "You can say: what's happening")
	r = s.send(alexatest.Call{Intent: ""})
	wantSaid(t, r, "Sorry, I didn't get that.")
	f.err = errors.New("boom")
	r = s.say(IntentStatus, nil)
	wantSaid(t, r, "Something went wrong talking to Cordon; I logged the error.")
}

func TestBuiltInIntents(t *testing.T) {
	f := newFake(testNow)
	s := &session{t: t, skill: newTestSkill(f)}
	r := s.say(IntentHelp, nil)
	wantSaid(t, r, "Cordon contains compromised servers. You can say: what's happening; details of incident one; approve incident one")
	if r.Ends() {
		t.Fatal("help keeps the session open")
	}
	r = s.say(IntentFallback, nil)
	wantSaid(t, r, "Cordon can't help with that.")
	for _, in := range []string{IntentStop, IntentCancel, IntentNavigateHome} {
		r = s.say(in, nil)
		wantSaid(t, r, "Goodbye.")
		if !r.Ends() {
			t.Fatal(in, "should end the session")
		}
	}
	r = s.send(alexatest.Call{Type: TypeLaunch})
	wantSaid(t, r, "Cordon here. No incident is open.")
	r = s.send(alexatest.Call{Type: TypeSessionEnded, Reason: ReasonUserInitiated})
	if r.Response.OutputSpeech != nil || r.Response.ShouldEndSession != nil {
		t.Fatalf("SessionEndedRequest needs an empty response: %+v", r.Response)
	}
}

// TestTemporalUnreachable uses a real Temporal client pointed at a port
// nobody listens on.
func TestTemporalUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, err := client.NewLazyClient(client.Options{HostPort: addr, Logger: nopLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var logs bytes.Buffer
	skill := NewSkill(c, slog.New(slog.NewTextHandler(&logs, nil)))
	skill.Timeout = 2 * time.Second
	s := &session{t: t, skill: skill}
	for _, call := range []alexatest.Call{
		{Type: TypeLaunch},
		{Intent: IntentStatus},
		{Intent: IntentDetails, Slots: num(1)},
		{Intent: IntentApprove, Slots: num(1)},
		{Intent: IntentRelease},
		{Intent: IntentResetBreaker},
	} {
		start := time.Now()
		r := s.send(call)
		wantSaid(t, r, "I can't reach Cordon's Temporal service right now")
		if time.Since(start) > 5*time.Second {
			t.Fatalf("took %v", time.Since(start))
		}
	}
	// A pending question whose yes cannot reach Temporal.
	s2 := &session{t: t, skill: skill, attrs: map[string]any{"pending": map[string]any{"update": "approve", "number": 1, "id": "quarantine/123456789012/us-east-1/i-0aaaaaaaaaaaa0001", "instance": "i-0aaaaaaaaaaaa0001"}}, n: 1}
	r := s2.say(IntentYes, nil)
	wantSaid(t, r, "I can't reach Cordon's Temporal service right now")
	s3 := &session{t: t, skill: skill, attrs: map[string]any{"pending": map[string]any{"update": workflows.UpdateResetBreaker, "number": 1, "id": "governor/123456789012/us-east-1/web-asg", "group": "web-asg"}}, n: 1}
	r = s3.say(IntentYes, nil)
	wantSaid(t, r, "I can't reach Cordon's Temporal service right now")
	if !strings.Contains(logs.String(), "Temporal unreachable") {
		t.Fatal(logs.String())
	}
}

type nopLogger struct{}

func (nopLogger) Debug(string, ...any) {}
func (nopLogger) Info(string, ...any)  {}
func (nopLogger) Warn(string, ...any)  {}
func (nopLogger) Error(string, ...any) {}

func TestRefusalWording(t *testing.T) {
	id := "quarantine/123456789012/us-east-1/i-0144394dc883f9fe0"
	for msg, want := range map[string]string{
		"incident " + id + " is imaging, not waiting for approval":             "Incident 2 is imaging, not waiting for approval. Nothing was changed.",
		"incident " + id + " is awaiting-approval: release is possible once …": "Incident 2 is awaiting approval: release is possible once …. Nothing was changed.",
		"release of " + id + " failed: boom":                                   "Release of incident 2 failed: boom. Nothing was changed.",
		"incident " + id + " is closed (needs-attention)":                      "Incident 2 is closed (needs attention). Nothing was changed.",
	} {
		if got := refusal(msg, ref{N: 2, ID: id}); got != want {
			t.Errorf("refusal(%q) = %q, want %q", msg, got, want)
		}
	}
}

type panicky struct{ fakeIncidents }

func (*panicky) Open(context.Context) ([]Incident, error) { panic("nil map") }

func TestPanicBecomesSpeech(t *testing.T) {
	r := (&session{t: t, skill: newTestSkill(&panicky{})}).say(IntentStatus, nil)
	wantSaid(t, r, "Something went wrong in Cordon's skill; I logged the error.")
}

func group(n int) map[string]string { return map[string]string{SlotGroup: fmt.Sprint(n)} }

func TestStatusSaysTrippedBreakerFirst(t *testing.T) {
	f := newFake(testNow, workflows.PhaseImaging)
	id := f.trip("web-asg")
	r := (&session{t: t, skill: newTestSkill(f)}).say(IntentStatus, nil)
	if !strings.HasPrefix(r.Spoken(), "The breaker of web-asg is tripped: new incidents wait for approval. 1 incident is open, newest first.") {
		t.Fatalf("said %q", r.Spoken())
	}
	wantSaid(t, r, "Say details of incident 1, release incident 1, or reset the breaker.")
	if !strings.Contains(r.Response.Card.Content, "Breaker 1 tripped: group web-asg, account 123456789012, us-east-1, 5 incidents within 1h  ("+id+")") {
		t.Fatal(r.Response.Card.Content)
	}

	// No incident open, but a tripped breaker: the session stays open for the reset.
	f.open = nil
	r = (&session{t: t, skill: newTestSkill(f)}).say(IntentStatus, nil)
	wantSaid(t, r, "The breaker of web-asg is tripped: new incidents wait for approval. No incident is open. Say reset the breaker to close it, or stop.")
	if r.Ends() || strings.Contains(r.Spoken(), "All quiet") {
		t.Fatalf("ends %v: %s", r.Ends(), r.Spoken())
	}

	// Two: numbered, the numbers carried in the session.
	f.trip("api-asg")
	s := &session{t: t, skill: newTestSkill(f)}
	r = s.say(IntentStatus, nil)
	wantSaid(t, r, "The breakers of 2 groups are tripped: 1, api-asg; 2, web-asg. New incidents in them wait for approval. No incident is open.",
		"Say reset the breaker for group 1, or reset the breaker for group 2, or stop.")
	r = s.say(IntentResetBreaker, group(2))
	wantSaid(t, r, "Reset the breaker of group web-asg in account ending 9012, us-east-1? New incidents in the group will then proceed without approval")

	// The breakers cannot be read (a governor's query timed out): the
	// incidents are still read, with a word about it.
	f = newFake(testNow, workflows.PhaseImaging)
	f.breakerErr = errors.New("governor governor/123456789012/us-east-1/web-asg: context deadline exceeded")
	r = (&session{t: t, skill: newTestSkill(f)}).say(IntentStatus, nil)
	wantSaid(t, r, "I couldn't check the groups' breakers just now. 1 incident is open")
	f.open = nil
	r = (&session{t: t, skill: newTestSkill(f)}).say(IntentStatus, nil)
	if r.Spoken() != "I couldn't check the groups' breakers just now. No incident is open." {
		t.Fatalf("said %q", r.Spoken())
	}
}

func TestResetBreakerConfirmation(t *testing.T) {
	f := newFake(testNow, workflows.PhaseAwaitingApproval)
	id := f.trip("web-asg")
	s := &session{t: t, skill: newTestSkill(f)}

	// One tripped: "reset the breaker" means it; ask first.
	r := s.say(IntentResetBreaker, nil)
	wantSaid(t, r, "Reset the breaker of group web-asg in account ending 9012, us-east-1? New incidents in the group will then proceed without approval, unless their policy asks for it. Say yes or no.")
	if !strings.Contains(r.Response.OutputSpeech.SSML, `account ending <say-as interpret-as="characters">9012</say-as>`) {
		t.Fatal(r.Response.OutputSpeech.SSML)
	}
	if r.Ends() || r.SessionAttributes["pending"] == nil || len(f.resets) != 0 {
		t.Fatalf("no pending question, or acted early: %+v %v", r.SessionAttributes, f.resets)
	}
	r = s.say(IntentHelp, nil)
	wantSaid(t, r, "or reset the breaker.", "Or answer yes or no: reset the breaker of web-asg?")
	r = s.say(IntentYes, nil)
	wantSaid(t, r, "Breaker reset: new incidents in web-asg proceed again as their policy says. Incidents it already held still wait for your approval")
	if !r.Ends() || len(f.resets) != 1 || !regexp.MustCompile(`^governor/123456789012/us-east-1/web-asg by alexa:[0-9a-f]{8}$`).MatchString(f.resets[0]) {
		t.Fatalf("resets %v", f.resets)
	}
	if f.governors[id].Tripped {
		t.Fatal("still tripped")
	}

	// Now none is tripped.
	r = s.say(IntentResetBreaker, nil)
	wantSaid(t, r, "No breaker is tripped, so there is nothing to reset.")
	r = s.say(IntentResetBreaker, group(1))
	wantSaid(t, r, "No breaker is tripped, so there is nothing to reset.")

	// No: nothing changes. Cancel: nothing changes.
	f.trip("web-asg")
	s.say(IntentResetBreaker, nil)
	r = s.say(IntentNo, nil)
	wantSaid(t, r, "OK, I did not reset the breaker of web-asg; nothing changed.")
	s.say(IntentResetBreaker, nil)
	r = s.say(IntentCancel, nil)
	wantSaid(t, r, "Cancelled; the breaker of web-asg is unchanged. Goodbye.")
	// Another intent drops the question.
	s.say(IntentResetBreaker, nil)
	s.say(IntentStatus, nil)
	r = s.say(IntentYes, nil)
	wantSaid(t, r, "There is nothing to confirm.")
	if len(f.resets) != 1 || !f.governors[id].Tripped {
		t.Fatalf("resets %v", f.resets)
	}

	// A dialog model's confirmation is honoured.
	r = (&session{t: t, skill: newTestSkill(f)}).send(alexatest.Call{Intent: IntentResetBreaker, Confirmation: ConfirmationDenied})
	wantSaid(t, r, "OK, I did not reset the breaker of web-asg; nothing changed.")
	r = (&session{t: t, skill: newTestSkill(f)}).send(alexatest.Call{Intent: IntentResetBreaker, Confirmation: ConfirmationConfirmed, DialogState: DialogCompleted})
	wantSaid(t, r, "Breaker reset")
	if len(f.resets) != 2 {
		t.Fatalf("resets %v", f.resets)
	}
}

func TestResetBreakerWhichGroup(t *testing.T) {
	f := newFake(testNow)
	web := f.trip("web-asg")
	api := f.trip("api-asg")

	// Two tripped, none named: ask which.
	s := &session{t: t, skill: newTestSkill(f)}
	r := s.say(IntentResetBreaker, nil)
	wantSaid(t, r, "2 breakers are tripped: 1, api-asg; 2, web-asg. Say reset the breaker for group 1, or reset the breaker for group 2.")
	if r.Ends() || len(f.resets) != 0 {
		t.Fatal("should ask which and wait")
	}
	// Unknown number: say which exist.
	r = s.say(IntentResetBreaker, group(3))
	wantSaid(t, r, "There is no tripped breaker 3: 2 breakers are tripped. Say a number from 1 to 2")
	if r.Ends() {
		t.Fatal("a wrong number should leave the session open")
	}
	r = s.say(IntentResetBreaker, map[string]string{SlotGroup: "?"})
	wantSaid(t, r, "I didn't catch the group's number. Say, for example, reset the breaker for group one.")

	// The number names one; yes resets that governor only.
	r = s.say(IntentResetBreaker, group(2))
	wantSaid(t, r, "Reset the breaker of group web-asg in account ending 9012, us-east-1?")
	r = s.say(IntentYes, nil)
	wantSaid(t, r, "Breaker reset: new incidents in web-asg proceed again")
	if len(f.resets) != 1 || !strings.HasPrefix(f.resets[0], web+" by alexa:") || !f.governors[api].Tripped {
		t.Fatalf("resets %v", f.resets)
	}

	// The numbers hold for the conversation: in a session that heard both,
	// group 2 is still web-asg after api-asg was reset elsewhere.
	f.trip("web-asg")
	s = &session{t: t, skill: newTestSkill(f)}
	s.say(IntentStatus, nil)
	f.governors[api] = workflows.GovernorStatus{Group: "api-asg"}
	r = s.say(IntentResetBreaker, group(2))
	wantSaid(t, r, "Reset the breaker of group web-asg")
	r = s.say(IntentYes, nil)
	wantSaid(t, r, "Breaker reset: new incidents in web-asg")
	if len(f.resets) != 2 || !strings.HasPrefix(f.resets[1], web+" by alexa:") {
		t.Fatalf("resets %v", f.resets)
	}

	// One tripped, a wrong number names it.
	f = newFake(testNow)
	f.trip("web-asg")
	r = (&session{t: t, skill: newTestSkill(f)}).say(IntentResetBreaker, group(4))
	wantSaid(t, r, "There is no tripped breaker 4: only the breaker of web-asg is tripped, number 1. Say reset the breaker for group one, or stop.")

	// The governor ended between the question and the yes.
	s = &session{t: t, skill: newTestSkill(f)}
	s.say(IntentResetBreaker, nil)
	delete(f.governors, web)
	r = s.say(IntentYes, nil)
	wantSaid(t, r, "The governor of web-asg has ended, so its breaker is no longer tripped; nothing to reset.")

	// Temporal fails.
	f.trip("web-asg")
	s = &session{t: t, skill: newTestSkill(f)}
	s.say(IntentResetBreaker, nil)
	f.err = errors.New("boom")
	r = s.say(IntentYes, nil)
	wantSaid(t, r, "Something went wrong talking to Cordon")
	r = (&session{t: t, skill: newTestSkill(f)}).say(IntentResetBreaker, nil)
	wantSaid(t, r, "Something went wrong talking to Cordon")
}

func TestParseGovernorID(t *testing.T) {
	for _, g := range []string{"web-asg", "eks/nodes/a"} {
		id := workflows.GovernorID("123456789012", "eu-west-1", g)
		a, r, got, err := ParseGovernorID(id)
		if err != nil || a != "123456789012" || r != "eu-west-1" || got != g {
			t.Errorf("ParseGovernorID(%q) = %q %q %q %v", id, a, r, got, err)
		}
	}
	for _, bad := range []string{"", "governor/", "governor/1/r", "quarantine/1/r/i-1", "governor//r/g"} {
		if _, _, _, err := ParseGovernorID(bad); err == nil {
			t.Errorf("ParseGovernorID(%q) accepted", bad)
		}
	}
}
