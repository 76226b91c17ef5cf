package alexa

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Request types Alexa sends to a custom skill.
const (
	TypeLaunch       = "LaunchRequest"
	TypeIntent       = "IntentRequest"
	TypeSessionEnded = "SessionEndedRequest"
)

// Dialog states of an IntentRequest (only with a dialog model).
const (
	DialogStarted    = "STARTED"
	DialogInProgress = "IN_PROGRESS"
	DialogCompleted  = "COMPLETED"
)

// Confirmation statuses of an intent or a slot.
const (
	ConfirmationNone      = "NONE"
	ConfirmationConfirmed = "CONFIRMED"
	ConfirmationDenied    = "DENIED"
)

// Entity-resolution status codes of a slot.
const (
	ResolutionMatch   = "ER_SUCCESS_MATCH"
	ResolutionNoMatch = "ER_SUCCESS_NO_MATCH"
)

// Reasons of a SessionEndedRequest.
const (
	ReasonUserInitiated        = "USER_INITIATED"
	ReasonError                = "ERROR"
	ReasonExceededMaxReprompts = "EXCEEDED_MAX_REPROMPTS"
)

// RequestEnvelope is the JSON body Alexa POSTs to the skill (or passes to
// the Lambda function).
type RequestEnvelope struct {
	Version string   `json:"version"`
	Session *Session `json:"session,omitempty"`
	Context *Context `json:"context,omitempty"`
	Request Request  `json:"request"`
}

// Session is the conversation a request belongs to. Attributes are the
// sessionAttributes of the skill's previous response in the session.
type Session struct {
	New         bool           `json:"new"`
	SessionID   string         `json:"sessionId"`
	Application Application    `json:"application"`
	Attributes  map[string]any `json:"attributes,omitempty"`
	User        User           `json:"user"`
}

// Application identifies the skill (amzn1.ask.skill.…).
type Application struct {
	ApplicationID string `json:"applicationId"`
}

// User is the Alexa account talking to the skill (skill-scoped ID).
type User struct {
	UserID      string `json:"userId"`
	AccessToken string `json:"accessToken,omitempty"` // account linking only
}

// Context is the device and skill context of a request.
type Context struct {
	System System `json:"System"`
}

// System is context.System.
type System struct {
	Application    Application `json:"application"`
	User           User        `json:"user"`
	Device         *Device     `json:"device,omitempty"`
	APIEndpoint    string      `json:"apiEndpoint,omitempty"`
	APIAccessToken string      `json:"apiAccessToken,omitempty"`
}

// Device is context.System.device.
type Device struct {
	DeviceID            string         `json:"deviceId,omitempty"`
	SupportedInterfaces map[string]any `json:"supportedInterfaces,omitempty"`
}

// Request is the request object: a LaunchRequest, IntentRequest or
// SessionEndedRequest (other types parse too; the skill ignores them).
type Request struct {
	Type      string    `json:"type"`
	RequestID string    `json:"requestId"`
	Timestamp Timestamp `json:"timestamp"`
	Locale    string    `json:"locale,omitempty"`
	// DialogState is set on an IntentRequest of an intent with a dialog model.
	DialogState string  `json:"dialogState,omitempty"`
	Intent      *Intent `json:"intent,omitempty"`
	// Reason and Error are set on a SessionEndedRequest.
	Reason string        `json:"reason,omitempty"`
	Error  *RequestError `json:"error,omitempty"`
}

// Intent is the intent Alexa resolved the utterance to.
type Intent struct {
	Name               string          `json:"name"`
	ConfirmationStatus string          `json:"confirmationStatus,omitempty"`
	Slots              map[string]Slot `json:"slots,omitempty"`
}

// Slot is one slot of an intent. Value is empty when the slot was not filled.
type Slot struct {
	Name               string       `json:"name"`
	Value              string       `json:"value,omitempty"`
	ConfirmationStatus string       `json:"confirmationStatus,omitempty"`
	Resolutions        *Resolutions `json:"resolutions,omitempty"`
}

// Resolutions carries entity resolution of a slot value (custom slot types
// with synonyms and IDs).
type Resolutions struct {
	ResolutionsPerAuthority []Resolution `json:"resolutionsPerAuthority"`
}

// Resolution is one authority's resolution of a slot value.
type Resolution struct {
	Authority string            `json:"authority"`
	Status    ResolutionStatus  `json:"status"`
	Values    []ResolutionValue `json:"values,omitempty"`
}

// ResolutionStatus is ER_SUCCESS_MATCH, ER_SUCCESS_NO_MATCH, …
type ResolutionStatus struct {
	Code string `json:"code"`
}

// ResolutionValue wraps one resolved value.
type ResolutionValue struct {
	Value ResolvedValue `json:"value"`
}

// ResolvedValue is a resolved slot value: its canonical name and ID.
type ResolvedValue struct {
	Name string `json:"name"`
	ID   string `json:"id"`
}

// RequestError is the error of a SessionEndedRequest with reason ERROR.
type RequestError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// Timestamp is request.timestamp: an ISO-8601 string, or (in some older
// request types) milliseconds since the epoch.
type Timestamp struct{ time.Time }

// UnmarshalJSON accepts an RFC 3339 string or a number of milliseconds.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return fmt.Errorf("request timestamp %q is not ISO 8601: %w", s, err)
		}
		t.Time = v
		return nil
	}
	ms, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("request timestamp %s is neither a string nor milliseconds", b)
	}
	t.Time = time.UnixMilli(ms).UTC()
	return nil
}

// MarshalJSON writes RFC 3339 in UTC.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte(`null`), nil
	}
	return json.Marshal(t.UTC().Format(time.RFC3339))
}

// ErrMalformedRequest reports a body that is not an Alexa request envelope.
var ErrMalformedRequest = errors.New("malformed Alexa request")

// ParseRequest decodes a request envelope. It needs request.type; everything
// else may be missing (a malformed session, an unknown request type) and is
// handled by the skill.
func ParseRequest(body []byte) (*RequestEnvelope, error) {
	var env RequestEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedRequest, err)
	}
	if env.Request.Type == "" {
		return nil, fmt.Errorf("%w: no request.type", ErrMalformedRequest)
	}
	return &env, nil
}

// ApplicationIDs returns the application IDs the envelope names
// (context.System.application, then session.application), without blanks.
func (e *RequestEnvelope) ApplicationIDs() []string {
	var ids []string
	if e.Context != nil && e.Context.System.Application.ApplicationID != "" {
		ids = append(ids, e.Context.System.Application.ApplicationID)
	}
	if e.Session != nil && e.Session.Application.ApplicationID != "" {
		ids = append(ids, e.Session.Application.ApplicationID)
	}
	return ids
}

// UserID returns the Alexa user ID (context first, then session), or "".
func (e *RequestEnvelope) UserID() string {
	if e.Context != nil && e.Context.System.User.UserID != "" {
		return e.Context.System.User.UserID
	}
	if e.Session != nil {
		return e.Session.User.UserID
	}
	return ""
}

// IntentName returns request.intent.name, or "".
func (e *RequestEnvelope) IntentName() string {
	if e.Request.Intent == nil {
		return ""
	}
	return e.Request.Intent.Name
}

// SlotValue returns a slot's value: the first resolved canonical name when
// entity resolution matched, else the spoken value ("" when not filled).
func (i *Intent) SlotValue(name string) string {
	if i == nil {
		return ""
	}
	s, ok := i.Slots[name]
	if !ok {
		return ""
	}
	if s.Resolutions != nil {
		for _, r := range s.Resolutions.ResolutionsPerAuthority {
			if r.Status.Code == ResolutionMatch && len(r.Values) > 0 {
				return r.Values[0].Value.Name
			}
		}
	}
	return strings.TrimSpace(s.Value)
}
