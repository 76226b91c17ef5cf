package alexa

import (
	"html"
	"regexp"
	"strings"
)

// Output speech and card types.
const (
	SpeechPlainText = "PlainText"
	SpeechSSML      = "SSML"
	CardSimple      = "Simple"
	CardStandard    = "Standard"
	CardLinkAccount = "LinkAccount"
)

// Dialog directive types.
const (
	DirectiveDelegate      = "Dialog.Delegate"
	DirectiveElicitSlot    = "Dialog.ElicitSlot"
	DirectiveConfirmSlot   = "Dialog.ConfirmSlot"
	DirectiveConfirmIntent = "Dialog.ConfirmIntent"
)

// ResponseEnvelope is the skill's JSON answer.
type ResponseEnvelope struct {
	Version           string         `json:"version"`
	SessionAttributes map[string]any `json:"sessionAttributes,omitempty"`
	Response          Response       `json:"response"`
}

// Response is what Alexa says and shows. An empty Response (the answer to a
// SessionEndedRequest) is valid.
type Response struct {
	OutputSpeech     *OutputSpeech `json:"outputSpeech,omitempty"`
	Card             *Card         `json:"card,omitempty"`
	Reprompt         *Reprompt     `json:"reprompt,omitempty"`
	Directives       []Directive   `json:"directives,omitempty"`
	ShouldEndSession *bool         `json:"shouldEndSession,omitempty"`
}

// OutputSpeech is PlainText (Text) or SSML (SSML, wrapped in <speak>).
type OutputSpeech struct {
	Type         string `json:"type"`
	Text         string `json:"text,omitempty"`
	SSML         string `json:"ssml,omitempty"`
	PlayBehavior string `json:"playBehavior,omitempty"`
}

// Card is shown in the Alexa app: Simple{Title, Content},
// Standard{Title, Text, Image} or LinkAccount.
type Card struct {
	Type    string     `json:"type"`
	Title   string     `json:"title,omitempty"`
	Content string     `json:"content,omitempty"`
	Text    string     `json:"text,omitempty"`
	Image   *CardImage `json:"image,omitempty"`
}

// CardImage is the image of a Standard card.
type CardImage struct {
	SmallImageURL string `json:"smallImageUrl,omitempty"`
	LargeImageURL string `json:"largeImageUrl,omitempty"`
}

// Reprompt is said when the user does not answer a question.
type Reprompt struct {
	OutputSpeech *OutputSpeech `json:"outputSpeech"`
}

// Directive is a Dialog directive (the skill's side of a dialog model).
type Directive struct {
	Type          string  `json:"type"`
	SlotToElicit  string  `json:"slotToElicit,omitempty"`
	SlotToConfirm string  `json:"slotToConfirm,omitempty"`
	UpdatedIntent *Intent `json:"updatedIntent,omitempty"`
}

// PlainText is PlainText output speech.
func PlainText(text string) *OutputSpeech {
	return &OutputSpeech{Type: SpeechPlainText, Text: text}
}

// SSML is SSML output speech; ssml is wrapped in <speak> unless it already is.
func SSML(ssml string) *OutputSpeech {
	if !strings.HasPrefix(strings.TrimSpace(ssml), "<speak>") {
		ssml = "<speak>" + ssml + "</speak>"
	}
	return &OutputSpeech{Type: SpeechSSML, SSML: ssml}
}

// Bool returns a pointer to b, for ShouldEndSession.
func Bool(b bool) *bool { return &b }

var tags = regexp.MustCompile(`<[^>]*>`)

// String returns what the speech says as plain text (SSML tags removed,
// entities decoded, spaces collapsed).
func (s *OutputSpeech) String() string {
	if s == nil {
		return ""
	}
	if s.Type == SpeechSSML {
		return strings.Join(strings.Fields(html.UnescapeString(tags.ReplaceAllString(s.SSML, ""))), " ")
	}
	return s.Text
}

// Spoken returns the response's output speech as plain text ("" if none).
func (r *ResponseEnvelope) Spoken() string {
	if r == nil {
		return ""
	}
	return r.Response.OutputSpeech.String()
}

// Ends reports whether the response ends the session.
func (r *ResponseEnvelope) Ends() bool {
	return r.Response.ShouldEndSession == nil || *r.Response.ShouldEndSession
}
