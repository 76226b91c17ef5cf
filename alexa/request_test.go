package alexa

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cordonhq/cordon/workflows"
)

// TestCorpusEnvelopesParse parses every request envelope of the corpus
// (alexa-js/alexa-app fixtures) and lets the skill answer each.
func TestCorpusEnvelopesParse(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(corpusDir, "requests", "*.json"))
	if err != nil || len(files) != 11 {
		t.Fatalf("%d corpus requests (%v), want 11", len(files), err)
	}
	check := map[string]func(*testing.T, *RequestEnvelope, *ResponseEnvelope){
		"alexa-app_intent_request_launch.json": func(t *testing.T, e *RequestEnvelope, r *ResponseEnvelope) {
			if e.Request.Type != TypeLaunch || !e.Session.New {
				t.Fatal(e.Request.Type)
			}
			wantSaid(t, r, "Cordon here. 1 incident is open, 1 waits for your approval.")
		},
		"alexa-app_intent_request_airport_info.json": func(t *testing.T, e *RequestEnvelope, r *ResponseEnvelope) {
			in := e.Request.Intent
			if in.Name != "airportInfoIntent" || in.ConfirmationStatus != ConfirmationNone || in.SlotValue("AirportCode") != "JFK" ||
				in.Slots["AirportCode"].ConfirmationStatus != ConfirmationNone {
				t.Fatalf("%+v", in)
			}
			if e.Session.User.AccessToken != "" || e.UserID() != "amzn1.account.AM3B227HF3FAM1B261HK7FFM3A2" {
				t.Fatal(e.Session.User)
			}
			wantSaid(t, r, `Sorry, Cordon does not know the request "airportInfo".`)
		},
		"alexa-app_intent_request_airport_info_resolutions.json": func(t *testing.T, e *RequestEnvelope, r *ResponseEnvelope) {
			s := e.Request.Intent.Slots["AirportCode"]
			if s.Value != "my home airport" || e.Request.Intent.SlotValue("AirportCode") != "JFK" ||
				s.Resolutions.ResolutionsPerAuthority[0].Status.Code != ResolutionMatch || s.Resolutions.ResolutionsPerAuthority[0].Values[0].Value.ID != "200" {
				t.Fatalf("%+v", s)
			}
		},
		"alexa-app_intent_request_airport_info_resolutions_not_found.json": func(t *testing.T, e *RequestEnvelope, r *ResponseEnvelope) {
			s := e.Request.Intent.Slots["AirportCode"]
			if s.Resolutions.ResolutionsPerAuthority[0].Status.Code != ResolutionNoMatch || e.Request.Intent.SlotValue("AirportCode") != "my home airport" {
				t.Fatalf("%+v", s)
			}
		},
		"alexa-app_intent_request_airport_info_with_attributes.json": func(t *testing.T, e *RequestEnvelope, r *ResponseEnvelope) {
			if e.Session.Attributes["airportName"] != "Dallas Love Field" {
				t.Fatal(e.Session.Attributes)
			}
		},
		"alexa-app_intent_request_food_delivery_dialog_started.json": func(t *testing.T, e *RequestEnvelope, r *ResponseEnvelope) {
			if e.Request.DialogState != DialogStarted || e.Request.Intent.SlotValue("genre") != "" {
				t.Fatal(e.Request)
			}
		},
		"alexa-app_intent_request_food_delivery_dialog_in_progress.json": func(t *testing.T, e *RequestEnvelope, r *ResponseEnvelope) {
			if e.Request.DialogState != DialogInProgress {
				t.Fatal(e.Request.DialogState)
			}
		},
		"alexa-app_intent_request_food_delivery_dialog_completed.json": func(t *testing.T, e *RequestEnvelope, r *ResponseEnvelope) {
			if e.Request.DialogState != DialogCompleted || e.Request.Intent.ConfirmationStatus != ConfirmationConfirmed {
				t.Fatal(e.Request)
			}
		},
		"alexa-app_intent_request_malformed_session.json": func(t *testing.T, e *RequestEnvelope, r *ResponseEnvelope) {
			// session.user.userId is null and session.attributes absent.
			if e.Session.User.UserID != "" || e.Session.Attributes != nil || e.UserID() != "amzn1.account.AM3B227HF3FAM1B261HK7FFM3A2" {
				t.Fatalf("%+v", e.Session)
			}
			wantSaid(t, r, "Sorry, Cordon does not know")
		},
		"alexa-app_session_ended_request.json": func(t *testing.T, e *RequestEnvelope, r *ResponseEnvelope) {
			if e.Request.Type != TypeSessionEnded || e.Context != nil {
				t.Fatal(e.Request.Type)
			}
			b, _ := json.Marshal(r)
			if string(b) != `{"version":"1.0","response":{}}` {
				t.Fatalf("%s", b)
			}
		},
		"alexa-app_unknown_type_request.json": func(t *testing.T, e *RequestEnvelope, r *ResponseEnvelope) {
			if e.Request.Type != "UnknownRequest" {
				t.Fatal(e.Request.Type)
			}
			b, _ := json.Marshal(r)
			if string(b) != `{"version":"1.0","response":{}}` {
				t.Fatalf("%s", b)
			}
		},
	}
	skill := newTestSkill(newFake(testNow, workflows.PhaseAwaitingApproval))
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			e, err := ParseRequest(b)
			if err != nil {
				t.Fatal(err)
			}
			if e.Version != "1.0" || e.Request.RequestID == "" || !e.Request.Timestamp.Equal(time.Date(2015, 5, 13, 12, 34, 56, 0, time.UTC)) {
				t.Fatalf("%+v", e.Request)
			}
			if ids := e.ApplicationIDs(); len(ids) == 0 || ids[len(ids)-1] != "amzn1.echo-sdk-ams.app.000000-d0ed-0000-ad00-000000d00ebe" {
				t.Fatal(ids)
			}
			r := skill.Handle(context.Background(), e)
			checkResponse(t, r)
			c, ok := check[name]
			if !ok {
				t.Fatal("no check for", name)
			}
			c(t, e, r)
		})
	}
}

func TestParseRequestErrors(t *testing.T) {
	for _, body := range []string{``, `{`, `[]`, `{"version":"1.0"}`, `{"request":{"type":"IntentRequest","timestamp":"yesterday"}}`, `{"request":{"type":"IntentRequest","timestamp":true}}`} {
		if _, err := ParseRequest([]byte(body)); err == nil {
			t.Errorf("%q parsed", body)
		}
	}
	e, err := ParseRequest([]byte(`{"request":{"type":"AudioPlayer.PlaybackStarted","timestamp":1511167502000}}`))
	if err != nil || !e.Request.Timestamp.Equal(time.Date(2017, 11, 20, 8, 45, 2, 0, time.UTC)) {
		t.Fatal(e, err)
	}
	if e.IntentName() != "" || e.UserID() != "" || e.ApplicationIDs() != nil {
		t.Fatal("empty envelope accessors")
	}
}

func TestResponseJSON(t *testing.T) {
	r := ResponseEnvelope{
		Version:           "1.0",
		SessionAttributes: map[string]any{"current": 2},
		Response: Response{
			OutputSpeech:     SSML("Incident <say-as interpret-as=\"characters\">2</say-as>"),
			Card:             &Card{Type: CardSimple, Title: "Cordon", Content: "Incident 2"},
			Reprompt:         &Reprompt{OutputSpeech: PlainText("Say yes or no.")},
			Directives:       []Directive{{Type: DirectiveElicitSlot, SlotToElicit: SlotIncident, UpdatedIntent: &Intent{Name: IntentDetails, ConfirmationStatus: ConfirmationNone}}},
			ShouldEndSession: Bool(false),
		},
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":"1.0","sessionAttributes":{"current":2},"response":{"outputSpeech":{"type":"SSML","ssml":"\u003cspeak\u003eIncident \u003csay-as interpret-as=\"characters\"\u003e2\u003c/say-as\u003e\u003c/speak\u003e"},` +
		`"card":{"type":"Simple","title":"Cordon","content":"Incident 2"},"reprompt":{"outputSpeech":{"type":"PlainText","text":"Say yes or no."}},` +
		`"directives":[{"type":"Dialog.ElicitSlot","slotToElicit":"incident","updatedIntent":{"name":"DetailsIntent","confirmationStatus":"NONE"}}],"shouldEndSession":false}}`
	if string(b) != want {
		t.Fatalf("got\n%s\nwant\n%s", b, want)
	}
	if r.Spoken() != "Incident 2" || strings.Contains(SSML("<speak>x</speak>").SSML, "<speak><speak>") {
		t.Fatal(r.Spoken())
	}
	var sp speech
	sp.say("a & b < c")
	if sp.output().SSML != "<speak>a &amp; b &lt; c</speak>" || sp.String() != "a & b < c" || sp.output().String() != "a & b < c" {
		t.Fatal(sp.output().SSML)
	}
}
