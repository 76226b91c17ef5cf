package sns

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Message types of the SNS HTTP(S) protocol.
const (
	TypeNotification             = "Notification"
	TypeSubscriptionConfirmation = "SubscriptionConfirmation"
	TypeUnsubscribeConfirmation  = "UnsubscribeConfirmation"
)

// Message is the JSON envelope SNS POSTs to an HTTP(S) subscriber. Only the
// fields of the string to sign are covered by the signature; UnsubscribeURL
// and MessageAttributes are not, and Cordon never acts on them.
type Message struct {
	Type             string
	MessageId        string //nolint:revive // SNS's own spelling
	Token            string
	TopicArn         string
	Subject          string // "" when absent or null
	Message          string
	SubscribeURL     string
	UnsubscribeURL   string
	Timestamp        string
	SignatureVersion string
	Signature        string
	SigningCertURL   string
	// MessageAttributes are delivered unsigned; kept for logging only.
	MessageAttributes map[string]MessageAttribute
}

// MessageAttribute is one (unsigned) message attribute.
type MessageAttribute struct {
	Type  string
	Value string
}

// wire is the JSON form. SNS's HTTP deliveries spell SigningCertURL and
// UnsubscribeURL; the same messages handed to Lambda spell SigningCertUrl
// and UnsubscribeUrl. Both are accepted (the URL is validated either way).
type wire struct {
	Type              *string                     `json:"Type"`
	MessageID         *string                     `json:"MessageId"`
	Token             *string                     `json:"Token"`
	TopicArn          *string                     `json:"TopicArn"`
	Subject           *string                     `json:"Subject"`
	Message           *string                     `json:"Message"`
	SubscribeURL      *string                     `json:"SubscribeURL"`
	UnsubscribeURL    *string                     `json:"UnsubscribeURL"`
	UnsubscribeURL2   *string                     `json:"UnsubscribeUrl"`
	Timestamp         *string                     `json:"Timestamp"`
	SignatureVersion  *string                     `json:"SignatureVersion"`
	Signature         *string                     `json:"Signature"`
	SigningCertURL    *string                     `json:"SigningCertURL"`
	SigningCertURL2   *string                     `json:"SigningCertUrl"`
	MessageAttributes map[string]MessageAttribute `json:"MessageAttributes"`
}

// ErrMalformed is wrapped by ParseMessage errors: the body is not an SNS
// JSON envelope (the handler answers 400).
var ErrMalformed = errors.New("malformed SNS message")

// ParseMessage decodes an SNS JSON envelope. It checks the JSON shape only;
// Verifier.Verify decides whether the message is authentic.
func ParseMessage(body []byte) (*Message, error) {
	var w wire
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the JSON object", ErrMalformed)
	}
	s := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	m := &Message{
		Type: s(w.Type), MessageId: s(w.MessageID), Token: s(w.Token), TopicArn: s(w.TopicArn),
		Subject: s(w.Subject), Message: s(w.Message), SubscribeURL: s(w.SubscribeURL),
		UnsubscribeURL: s(w.UnsubscribeURL), Timestamp: s(w.Timestamp), SignatureVersion: s(w.SignatureVersion),
		Signature: s(w.Signature), SigningCertURL: s(w.SigningCertURL), MessageAttributes: w.MessageAttributes,
	}
	if m.SigningCertURL == "" {
		m.SigningCertURL = s(w.SigningCertURL2)
	}
	if m.UnsubscribeURL == "" {
		m.UnsubscribeURL = s(w.UnsubscribeURL2)
	}
	return m, nil
}

// LooksLikeEnvelope reports whether body is a JSON object carrying SNS
// envelope keys (Type plus a signature or certificate URL). Raw deliveries
// and direct posts are not envelopes.
func LooksLikeEnvelope(body []byte) bool {
	var probe struct {
		Type           json.RawMessage `json:"Type"`
		Signature      json.RawMessage `json:"Signature"`
		SigningCertURL json.RawMessage `json:"SigningCertURL"`
		SigningCertUrl json.RawMessage `json:"SigningCertUrl"` //nolint:revive
	}
	if err := json.Unmarshal(body, &probe); err != nil {
		return false
	}
	return probe.Type != nil && (probe.Signature != nil || probe.SigningCertURL != nil || probe.SigningCertUrl != nil)
}

// StringToSign builds the canonical string SNS signs: "Key\nValue\n" for the
// keys of the message type in byte order, skipping absent (and empty) values.
//
//	Notification:                      Message, MessageId, Subject, Timestamp, TopicArn, Type
//	Subscription/UnsubscribeConfirmation: Message, MessageId, SubscribeURL, Timestamp, Token, TopicArn, Type
//
// Empty values are skipped because emulators (goaws) send "Subject":"" and
// "Token":""; real SNS never sends an empty Subject.
func StringToSign(m *Message) (string, error) {
	var b strings.Builder
	add := func(k, v string) {
		if v == "" {
			return
		}
		b.WriteString(k)
		b.WriteByte('\n')
		b.WriteString(v)
		b.WriteByte('\n')
	}
	switch m.Type {
	case TypeNotification:
		add("Message", m.Message)
		add("MessageId", m.MessageId)
		add("Subject", m.Subject)
		add("Timestamp", m.Timestamp)
		add("TopicArn", m.TopicArn)
		add("Type", m.Type)
	case TypeSubscriptionConfirmation, TypeUnsubscribeConfirmation:
		add("Message", m.Message)
		add("MessageId", m.MessageId)
		add("SubscribeURL", m.SubscribeURL)
		add("Timestamp", m.Timestamp)
		add("Token", m.Token)
		add("TopicArn", m.TopicArn)
		add("Type", m.Type)
	default:
		return "", fmt.Errorf("unknown message type %q", m.Type)
	}
	return b.String(), nil
}
