package skilltest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/cordonhq/cordon/alexa"
	"github.com/cordonhq/cordon/alexa/alexatest"
	"github.com/cordonhq/cordon/internal/e2e"
	"github.com/cordonhq/cordon/simcloud"
	"github.com/cordonhq/cordon/workflows"
)

// imageDelay is how long the simulated CreateImage stays pending.
const imageDelay = 60 * time.Second

const (
	skillID = "amzn1.ask.skill.c0rd0n00-0000-4000-8000-000000000001"
	userID  = "amzn1.ask.account.OPERATOR"
	account = "123456789012"
	region  = "us-east-1"
)

// The three web servers of the seed scenario the test opens incidents for,
// oldest first.
var instances = []string{"i-0144394dc883f9fe0", "i-04f2ae54915567738", "i-085a2fa5fa92cd19c"}

// echo plays Alexa: it turns an utterance (already resolved to an intent,
// checked against the interaction model's samples) into a signed HTTPS
// request, carries the session attributes, and prints the transcript.
type echo struct {
	t       *testing.T
	h       *e2e.Harness
	url     string
	signer  *alexatest.Signer
	samples map[string][]*regexp.Regexp
	attrs   map[string]any
	turn    int
	session int
	inSess  bool
	lines   []string
}

// say sends one turn. slot is the incident number (for ResetBreakerIntent:
// the group number) Alexa resolved from the spoken words in the utterance
// (0: none).
func (e *echo) say(utterance, intent string, slot int) *alexa.ResponseEnvelope {
	e.t.Helper()
	call := alexatest.Call{Intent: intent, Type: alexa.TypeIntent}
	label := intent
	switch intent {
	case alexa.TypeLaunch, alexa.TypeSessionEnded:
		call = alexatest.Call{Type: intent, Reason: alexa.ReasonUserInitiated}
	default:
		if !strings.HasPrefix(intent, "AMAZON.") && intent != "PlayAudio" {
			e.checkSample(utterance, intent)
		}
		if slot > 0 {
			name := alexa.SlotIncident
			if intent == alexa.IntentResetBreaker {
				name = alexa.SlotGroup
			}
			call.Slots = map[string]string{name: fmt.Sprint(slot)}
			label = fmt.Sprintf("%s{%s=%d}", intent, name, slot)
		}
	}
	if !e.inSess {
		e.session++
		e.attrs = nil
	}
	call.AppID, call.UserID = skillID, userID
	call.SessionID = fmt.Sprintf("amzn1.echo-api.session.test-%d", e.session)
	call.New, call.Attributes, call.Time = !e.inSess, e.attrs, time.Now()
	body := call.JSON()

	req, err := http.NewRequest(http.MethodPost, e.url, bytes.NewReader(body))
	require.NoError(e.t, err)
	req.Header = e.signer.Headers(body)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	require.Equal(e.t, http.StatusOK, resp.StatusCode, "%s", raw)
	var out alexa.ResponseEnvelope
	require.NoError(e.t, json.Unmarshal(raw, &out))

	e.attrs = out.SessionAttributes
	e.inSess = intent != alexa.TypeSessionEnded && !out.Ends()
	e.turn++
	said := out.Spoken()
	if said == "" {
		said = "(no speech)"
	}
	e.lines = append(e.lines, fmt.Sprintf("%2d  %-44s → %-30s → %s\n      phases: %s",
		e.turn, quote(utterance), label, said, e.phases()))
	return &out
}

func quote(s string) string {
	if s == "" {
		return "-"
	}
	return `"` + s + `"`
}

// note records something that happens outside the conversation.
func (e *echo) note(format string, a ...any) {
	e.lines = append(e.lines, "    ("+fmt.Sprintf(format, a...)+")")
}

// phases reads each incident's phase through the status query.
func (e *echo) phases() string {
	var parts []string
	for _, inst := range instances {
		st, err := workflows.GetStatus(context.Background(), e.h.Client, workflows.IncidentID(account, region, inst))
		p := string(st.Phase)
		if err != nil {
			p = "-"
		}
		parts = append(parts, inst[len(inst)-4:]+" "+p)
	}
	return strings.Join(parts, " | ")
}

// checkSample fails the test unless the utterance is one of the intent's
// samples in the interaction model ({incident} matching spoken words).
func (e *echo) checkSample(utterance, intent string) {
	e.t.Helper()
	for _, re := range e.samples[intent] {
		if re.MatchString(utterance) {
			return
		}
	}
	e.t.Fatalf("%q is not a sample of %s in the interaction model", utterance, intent)
}

func loadSamples(t *testing.T) map[string][]*regexp.Regexp {
	b, err := os.ReadFile("../skill-package/interactionModels/custom/en-US.json")
	require.NoError(t, err)
	var m struct {
		InteractionModel struct {
			LanguageModel struct {
				Intents []struct {
					Name    string   `json:"name"`
					Samples []string `json:"samples"`
				} `json:"intents"`
			} `json:"languageModel"`
		} `json:"interactionModel"`
	}
	require.NoError(t, json.Unmarshal(b, &m))
	out := map[string][]*regexp.Regexp{}
	slot := regexp.MustCompile(`\\\{[A-Za-z_]+\\\}`)
	for _, in := range m.InteractionModel.LanguageModel.Intents {
		for _, s := range in.Samples {
			re := slot.ReplaceAllString(regexp.QuoteMeta(s), `[a-z ]+`)
			out[in.Name] = append(out[in.Name], regexp.MustCompile("^"+re+"$"))
		}
	}
	return out
}

func said(t *testing.T, r *alexa.ResponseEnvelope, parts ...string) {
	t.Helper()
	for _, p := range parts {
		require.Contains(t, r.Spoken(), p)
	}
}

// waitPhase is e2e.Harness.WaitPhase that says where the incident is
// when it never gets there.
func waitPhase(t *testing.T, h *e2e.Harness, id string, phase workflows.Phase) {
	t.Helper()
	var st workflows.Status
	var err error
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if st, err = workflows.GetStatus(context.Background(), h.Client, id); err == nil && st.Phase == phase {
			return
		}
	}
	t.Fatalf("incident %s never reached %s: phase %q, reason %q, steps %+v, error %v", id, phase, st.Phase, st.Reason, st.Steps, err)
}

// spokenList checks that the status answer reads exactly the listed
// incidents, in order, each with its phase.
func spokenList(t *testing.T, r *alexa.ResponseEnvelope, incs []alexa.Incident) {
	t.Helper()
	words := map[workflows.Phase]string{workflows.PhaseAwaitingApproval: "waiting for your approval", workflows.PhaseImaging: "being imaged",
		workflows.PhaseQueued: "queued until its group can spare it"}
	var want strings.Builder
	for i, inc := range incs {
		fmt.Fprintf(&want, "%d: instance ending %s, %s. ", i+1, inc.InstanceID[len(inc.InstanceID)-4:], words[inc.Phase])
	}
	require.Contains(t, r.Spoken(), strings.TrimSpace(want.String()))
	require.Contains(t, r.Spoken(), fmt.Sprintf("%d incident", len(incs)))
	require.NotContains(t, r.Spoken(), fmt.Sprintf("%d: ", len(incs)+1))
}

func openIncident(t *testing.T, h *e2e.Harness, inst, badIP string) string {
	run, err := workflows.Open(context.Background(), h.Client, workflows.QuarantineInput{
		Account: account, Region: region, InstanceID: inst,
		Evidence: workflows.Evidence{Source: "test", BadIP: badIP, Reason: "talked to a listed address", Time: time.Now().UTC()},
		Policy:   workflows.Policy{Approval: workflows.ApprovalBeforeDestructive},
	})
	require.NoError(t, err)
	return run.GetID()
}

// waitListed waits until visibility lists exactly want (IDs, newest first)
// with each in phase.
func waitListed(t *testing.T, inc alexa.Incidents, want []string, phase map[string]workflows.Phase) []alexa.Incident {
	t.Helper()
	var got []alexa.Incident
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var err error
		got, err = inc.Open(context.Background())
		if err == nil && len(got) == len(want) {
			ok := true
			for i, g := range got {
				if g.ID != want[i] || (phase[g.ID] != "" && g.Phase != phase[g.ID]) {
					ok = false
				}
			}
			if ok {
				return got
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("visibility lists %+v, want %v with %v", got, want, phase)
	return nil
}

// TestSkillOnTemporal drives every intent against real incidents: the
// embedded Temporal server, a worker, the simulated cloud, and the skill
// behind its verified HTTPS handler. Run with -v for the transcript.
func TestSkillOnTemporal(t *testing.T) {
	// Images take 60 s, so an approved incident stays in "imaging" long
	// enough to be asked about, released, or approved again.
	h := e2e.New(t, simcloud.Delays{ImageAvailable: imageDelay}, "")
	signer, err := alexatest.NewSigner(alexatest.Options{})
	require.NoError(t, err)
	chains := alexatest.NewChainServer(map[string][]byte{signer.CertURL: signer.ChainPEM})
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	skill := alexa.NewSkill(h.Client, log)
	srv := httptest.NewServer(alexa.NewHTTPHandler(alexa.Config{
		SkillID: skillID, Users: []string{userID}, Roots: signer.Roots, HTTPClient: chains.Client(), Logger: log,
	}, skill))
	defer srv.Close()
	e := &echo{t: t, h: h, url: srv.URL + "/alexa", signer: signer, samples: loadSamples(t)}
	defer func() {
		t.Log("transcript (turn, utterance → intent → Alexa says; phases of 9fe0 | 7738 | d19c after the turn):\n" + strings.Join(e.lines, "\n"))
	}()

	// Three incidents in web-asg; newest first they are d19c (1), 7738 (2),
	// 9fe0 (3). The group's governor lets two at a time take an instance
	// out of service: 9fe0 and 7738 wait for approval, d19c is queued.
	var ids []string
	for i, inst := range instances {
		ids = append(ids, openIncident(t, h, inst, []string{"1.19.6.4", "101.50.83.146", "85.239.243.155"}[i]))
		time.Sleep(20 * time.Millisecond)
	}
	idA, idB, idC := ids[0], ids[1], ids[2]
	waitPhase(t, h, idA, workflows.PhaseAwaitingApproval)
	waitPhase(t, h, idB, workflows.PhaseAwaitingApproval)
	waitPhase(t, h, idC, workflows.PhaseQueued)
	listing := &alexa.TemporalIncidents{Client: h.Client}
	phases := map[string]workflows.Phase{idA: workflows.PhaseAwaitingApproval, idB: workflows.PhaseAwaitingApproval, idC: workflows.PhaseQueued}
	waitListed(t, listing, []string{idC, idB, idA}, phases)
	e.note("opened 3 incidents in web-asg with --approval before-destructive: 9fe0, then 7738, then d19c (queued by the group's governor: two at a time)")

	r := e.say("open cordon control", alexa.TypeLaunch, 0)
	said(t, r, "Cordon here. 3 incidents are open, 2 wait for your approval.")

	r = e.say("what's happening", alexa.IntentStatus, 0)
	said(t, r, "3 incidents are open, newest first. 1: instance ending d19c, queued until its group can spare it. 2: instance ending 7738, waiting for your approval. 3: instance ending 9fe0, waiting for your approval.",
		"Say approve incident 2, reject incident 2, or details of incident 2.")
	spokenList(t, r, waitListed(t, listing, []string{idC, idB, idA}, phases))
	require.Contains(t, r.Response.Card.Content, "1. i-085a2fa5fa92cd19c  queued")
	require.Contains(t, r.Response.Card.Content, "3. i-0144394dc883f9fe0  awaiting-approval")

	r = e.say("approve", alexa.IntentApprove, 0)
	said(t, r, "2 incidents wait for approval: 2, instance ending 7738; 3, instance ending 9fe0. Say approve incident 2, or approve incident 3.")

	r = e.say("approve incident one", alexa.IntentApprove, 1)
	said(t, r, "Incident 1 is queued until its group can spare it, not waiting for approval, so there is nothing to approve.")
	require.True(t, r.Ends())

	r = e.say("details of incident three", alexa.IntentDetails, 3)
	said(t, r, "Incident 3: instance ending 9fe0 in group web-asg, talked to 1 dot 19 dot 6 dot 4; 1 alert.", "It is waiting for your approval until", "Say approve incident 3, or reject incident 3.")

	r = e.say("tell me about incident seven", alexa.IntentDetails, 7)
	said(t, r, "There is no incident 7: 3 incidents are open. Say a number from 1 to 3")

	r = e.say("approve incident three", alexa.IntentApprove, 3)
	said(t, r, "Approve incident 3, instance ending 9fe0, which talked to 1 dot 19 dot 6 dot 4? Cordon will image it, launch a quarantine copy and terminate the original. Say yes or no.")
	require.False(t, r.Ends())

	r = e.say("yes", alexa.IntentYes, 0)
	said(t, r, "Approved. Cordon goes on with incident 3: it images instance ending 9fe0")
	waitPhase(t, h, idA, workflows.PhaseImaging)
	e.note("9fe0 moved on to imaging")
	imagingSince := time.Now()

	r = e.say("approve incident three", alexa.IntentApprove, 3)
	said(t, r, "Incident 3 is being imaged, not waiting for approval, so there is nothing to approve. Say release incident 3 to restore it instead.")

	r = e.say("reject incident two", alexa.IntentReject, 2)
	said(t, r, "Reject incident 2 as a false positive, and restore instance ending 7738? Say yes or no.")
	r = e.say("no", alexa.IntentNo, 0)
	said(t, r, "OK, I did not reject incident 2; nothing changed.")
	require.True(t, r.Ends())
	st, err := workflows.GetStatus(context.Background(), h.Client, idB)
	require.NoError(t, err)
	require.Equal(t, workflows.PhaseAwaitingApproval, st.Phase)

	// A new session numbers afresh: still d19c, 7738, 9fe0.
	r = e.say("incident two is a false positive", alexa.IntentReject, 2)
	said(t, r, "Reject incident 2 as a false positive, and restore instance ending 7738?")
	r = e.say("yes", alexa.IntentYes, 0)
	said(t, r, "Rejected as a false positive. Cordon is restoring instance ending 7738 to its state before incident 2.")
	stB := h.WaitFinal([]string{idB}, time.Minute)[idB]
	require.Equal(t, workflows.PhaseReleased, stB.Phase, stB.Reason)
	e.note("7738 released: its security groups, group membership and targets restored; its slot went to d19c")
	waitPhase(t, h, idC, workflows.PhaseAwaitingApproval)

	// Next session: open incidents are now d19c (1) and 9fe0 (2).
	waitListed(t, listing, []string{idC, idA}, map[string]workflows.Phase{idC: workflows.PhaseAwaitingApproval})
	r = e.say("approve incident one", alexa.IntentApprove, 1)
	said(t, r, "Approve incident 1, instance ending d19c")
	_, err = workflows.Decide(context.Background(), h.Client, idC, workflows.UpdateApprove, workflows.Decision{By: "cli:bob"})
	require.NoError(t, err)
	waitPhase(t, h, idC, workflows.PhaseImaging)
	e.note("meanwhile: starter approve i-085a2fa5fa92cd19c --by cli:bob; d19c is imaging")
	r = e.say("yes", alexa.IntentYes, 0)
	said(t, r, "Incident 1 is imaging, not waiting for approval. Nothing was changed.")
	require.Contains(t, logs.String(), `"msg":"alexa: update refused"`)
	require.True(t, r.Ends())

	// The refusal ended the session; the next one numbers d19c (1), 9fe0 (2).
	r = e.say("release incident one", alexa.IntentRelease, 1)
	said(t, r, "Release incident 1, and restore instance ending d19c to its state before the incident? Say yes or no.")
	r = e.say("yes", alexa.IntentYes, 0)
	require.Regexp(t, `^(Released: instance ending d19c is back in its state before incident 1\.|Release accepted\. Cordon is restoring instance ending d19c now)`, r.Spoken())
	stC := h.WaitFinal([]string{idC}, time.Minute)[idC]
	require.Equal(t, workflows.PhaseReleased, stC.Phase, stC.Reason)
	require.Equal(t, workflows.OutcomeReleased, stC.Outcome)
	e.note("d19c released during imaging")

	// Next session: only 9fe0 is open, still imaging.
	got := waitListed(t, listing, []string{idA}, map[string]workflows.Phase{idA: workflows.PhaseImaging})
	require.Less(t, time.Since(imagingSince), imageDelay, "9fe0 left imaging before the test could ask about it")
	r = e.say("which incidents are open", alexa.IntentStatus, 0)
	said(t, r, "1 incident is open, newest first. 1: instance ending 9fe0, being imaged.", "Say details of incident 1, release incident 1, or stop.")
	require.Equal(t, "i-0144394dc883f9fe0", got[0].InstanceID)
	spokenList(t, r, got)
	r = e.say("details of incident one", alexa.IntentDetails, 1)
	said(t, r, "Incident 1: instance ending 9fe0", "It is being imaged.", "Say release incident 1 to restore it, or stop.")
	r = e.say("reject it", alexa.IntentReject, 0)
	said(t, r, "Incident 1 is being imaged, not waiting for approval, so there is nothing to reject.")

	r = e.say("help", alexa.IntentHelp, 0)
	said(t, r, "You can say: what's happening; details of incident one; approve incident one; reject incident one; release incident one; or reset the breaker.")
	r = e.say("yes", alexa.IntentYes, 0)
	said(t, r, "There is nothing to confirm.")
	r = e.say("order a pizza", alexa.IntentFallback, 0)
	said(t, r, "Cordon can't help with that.")
	r = e.say("play audio", "PlayAudio", 0)
	said(t, r, `Sorry, Cordon does not know the request "PlayAudio".`)
	r = e.say("stop", alexa.IntentStop, 0)
	said(t, r, "Goodbye.")
	r = e.say("open cordon control", alexa.TypeLaunch, 0)
	said(t, r, "1 incident is open.")
	r = e.say("cancel", alexa.IntentCancel, 0)
	said(t, r, "Goodbye.")
	r = e.say("open cordon control", alexa.TypeLaunch, 0)
	r = e.say("go home", alexa.IntentNavigateHome, 0)
	said(t, r, "Goodbye.")
	r = e.say("open cordon control", alexa.TypeLaunch, 0)
	r = e.say("", alexa.TypeSessionEnded, 0)
	require.Nil(t, r.Response.OutputSpeech)

	// Approve → the workflow proceeded: 9fe0 resolves.
	stA := h.WaitFinal([]string{idA}, 2*time.Minute)[idA]
	require.Equal(t, workflows.PhaseResolved, stA.Phase, stA.Reason)
	require.Equal(t, workflows.OutcomeResolved, stA.Outcome)
	require.True(t, stA.Resources.OriginalTerminated)
	e.note("9fe0 resolved: imaged, copied to the quarantine subnet, terminated, group healed")
	waitListed(t, listing, nil, nil)

	r = e.say("what's happening", alexa.IntentStatus, 0)
	said(t, r, "No incident is open. All quiet.")
	r = e.say("details of incident one", alexa.IntentDetails, 1)
	said(t, r, "There is no incident 1: no incident is open.")

	// Breakers. The web-asg governor that queued d19c still runs (a governor
	// ends after a quiet day), its breaker not tripped: nothing to reset.
	ctx := context.Background()
	webGov := workflows.GovernorID(account, region, "web-asg")
	desc, err := h.Client.DescribeWorkflowExecution(ctx, webGov, "")
	require.NoError(t, err)
	require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, desc.GetWorkflowExecutionInfo().GetStatus())
	brs, err := listing.Breakers(ctx)
	require.NoError(t, err)
	require.Empty(t, brs)
	r = e.say("reset the breaker", alexa.IntentResetBreaker, 0)
	said(t, r, "No breaker is tripped, so there is nothing to reset.")

	// A governor whose breaker is tripped (started with that state, as a
	// storm of five incidents within the hour leaves it): the status answer
	// names it first, and a reset by voice closes it.
	apiGov := workflows.GovernorID(account, region, "api-asg")
	storm := []time.Time{time.Now().Add(-5 * time.Minute), time.Now().Add(-4 * time.Minute), time.Now().Add(-3 * time.Minute), time.Now().Add(-2 * time.Minute), time.Now().Add(-time.Minute)}
	_, err = h.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: apiGov, TaskQueue: workflows.TaskQueue}, workflows.GovernorWorkflowName,
		workflows.GovernorInput{Account: account, Region: region, Group: "api-asg", Limits: h.Limits,
			State: &workflows.GovernorStatus{Group: "api-asg", Tripped: true, Recent: storm}})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		brs, err = listing.Breakers(ctx)
		return err == nil && len(brs) == 1
	}, 30*time.Second, 100*time.Millisecond, "tripped breakers %+v, error %v", brs, err)
	require.Equal(t, alexa.Breaker{ID: apiGov, Account: account, Region: region, Group: "api-asg", Recent: 5, Limits: h.Limits.Normalize()}, brs[0])
	e.note("the governor of api-asg runs with its breaker tripped (5 incidents within the hour); web-asg's governor runs untripped")

	r = e.say("what's happening", alexa.IntentStatus, 0)
	said(t, r, "The breaker of api-asg is tripped: new incidents wait for approval. No incident is open. Say reset the breaker to close it, or stop.")
	require.Contains(t, r.Response.Card.Content, "Breaker 1 tripped: group api-asg, account 123456789012, us-east-1, 5 incidents within 1h  ("+apiGov+")")
	r = e.say("reset the breaker for group two", alexa.IntentResetBreaker, 2)
	said(t, r, "There is no tripped breaker 2: only the breaker of api-asg is tripped, number 1.")
	r = e.say("reset the breaker for group one", alexa.IntentResetBreaker, 1)
	said(t, r, "Reset the breaker of group api-asg in account ending 9012, us-east-1? New incidents in the group will then proceed without approval, unless their policy asks for it. Say yes or no.")
	r = e.say("no", alexa.IntentNo, 0)
	said(t, r, "OK, I did not reset the breaker of api-asg; nothing changed.")
	var gst workflows.GovernorStatus
	v, err := h.Client.QueryWorkflow(ctx, apiGov, "", workflows.QueryGovernor)
	require.NoError(t, err)
	require.NoError(t, v.Get(&gst))
	require.True(t, gst.Tripped)

	r = e.say("reset the breaker", alexa.IntentResetBreaker, 0)
	said(t, r, "Reset the breaker of group api-asg in account ending 9012, us-east-1?")
	r = e.say("yes", alexa.IntentYes, 0)
	said(t, r, "Breaker reset: new incidents in api-asg proceed again as their policy says.")
	require.True(t, r.Ends())
	v, err = h.Client.QueryWorkflow(ctx, apiGov, "", workflows.QueryGovernor)
	require.NoError(t, err)
	require.NoError(t, v.Get(&gst))
	require.False(t, gst.Tripped)
	require.Empty(t, gst.Recent)
	require.Contains(t, logs.String(), `"msg":"alexa: breaker reset"`)
	brs, err = listing.Breakers(ctx)
	require.NoError(t, err)
	require.Empty(t, brs)
	e.note("api-asg's breaker reset by alexa")
	r = e.say("what's happening", alexa.IntentStatus, 0)
	said(t, r, "No incident is open. All quiet.")

	// Decisions are recorded with the Alexa operator's short ID.
	var approvedBy string
	for _, s := range stA.Steps {
		if s.Name == "approval" {
			approvedBy = s.Detail
		}
	}
	require.Regexp(t, `^approved by alexa:[0-9a-f]{8}$`, approvedBy)
	require.Contains(t, stB.Steps[len(stB.Steps)-1].Detail+fmt.Sprint(stB.Steps), "rejected by alexa:")

	// A request that fails verification never reaches the skill.
	body := alexatest.Call{AppID: skillID, UserID: userID, Type: alexa.TypeLaunch}.JSON()
	hdr := signer.Headers(body)
	body[len(body)-2] ^= 1
	req, _ := http.NewRequest(http.MethodPost, e.url, bytes.NewReader(body))
	req.Header = hdr
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, logs.String(), "invalid request signature")
	e.note("a tampered request: HTTP 400, logged %q", "alexa: request refused")

	// Temporal unreachable: the same skill over a client to a dead port.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := l.Addr().String()
	l.Close()
	c, err := client.NewLazyClient(client.Options{HostPort: dead, Logger: quiet{}})
	require.NoError(t, err)
	defer c.Close()
	down := alexa.NewSkill(c, log)
	down.Timeout = 2 * time.Second
	srv2 := httptest.NewServer(alexa.NewHTTPHandler(alexa.Config{SkillID: skillID, Roots: signer.Roots, HTTPClient: chains.Client(), Logger: log}, down))
	defer srv2.Close()
	e.url = srv2.URL + "/alexa"
	e.note("Temporal unreachable: the skill now talks to %s, where nothing listens", dead)
	r = e.say("what's happening", alexa.IntentStatus, 0)
	said(t, r, "I can't reach Cordon's Temporal service right now, so I can't tell or change anything. Try again in a minute, or use the starter command line.")
}

type quiet struct{}

func (quiet) Debug(string, ...any) {}
func (quiet) Info(string, ...any)  {}
func (quiet) Warn(string, ...any)  {}
func (quiet) Error(string, ...any) {}
