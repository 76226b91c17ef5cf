package sns

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Formats a message can be parsed as.
const (
	FormatElastAlert = "elastalert"            // ElastAlert's SNS body (text)
	FormatHTTPPost2  = "elastalert-http-post2" // ElastAlert 2's http_post2 JSON (the match document)
	FormatGuardDuty  = "guardduty"             // a GuardDuty finding (EventBridge event, bare finding, Lambda SNS record)
	FormatDetection  = "cordon"                // Cordon's own detection JSON
)

// Alert is what a parser found in one message: one per match (an aggregated
// ElastAlert body yields several).
type Alert struct {
	// Format is the parser that produced it (Format* constants).
	Format string
	// Source becomes workflows.Evidence.Source: "elastalert", "guardduty", "cordon"…
	Source string
	// InstanceID is the EC2 instance, when the message names it.
	InstanceID string
	// SourceIP and Host identify the instance when InstanceID is empty: its
	// own (private) address and host name, for a Resolver.
	SourceIP netip.Addr
	Host     string
	// Account and Region of the instance; empty when the message does not say.
	Account, Region string
	// BadIP is the remote address (invalid when the alert names none, as
	// GuardDuty DNS findings do; Domain then says what was looked up).
	BadIP  netip.Addr
	Port   int
	Domain string
	// Direction is GuardDuty's connection direction ("outbound", "inbound",
	// "port-probe"); empty otherwise.
	Direction string
	// Rule is the ElastAlert rule name, GuardDuty finding type or detection rule.
	Rule string
	// Severity is GuardDuty's severity (0 for other formats).
	Severity float64
	// Sample is true for GuardDuty sample findings.
	Sample bool
	// Time is when the session or finding happened (zero when unknown).
	Time time.Time
	// Ref names the underlying document (index/_id, finding ID).
	Ref string
	// Raw is the part of the message this alert came from (the whole message
	// for one-alert formats).
	Raw string
}

// Reason is the human sentence put into the evidence.
func (a *Alert) Reason() string {
	who := a.InstanceID
	if who == "" {
		who = a.Host
	}
	if a.SourceIP.IsValid() {
		if who == "" {
			who = a.SourceIP.String()
		} else {
			who += " (" + a.SourceIP.String() + ")"
		}
	}
	if who == "" {
		who = "an instance"
	}
	var what string
	switch {
	case a.BadIP.IsValid():
		peer := a.BadIP.String()
		if a.Port > 0 {
			peer = netip.AddrPortFrom(a.BadIP, uint16(a.Port)).String()
		}
		switch a.Direction {
		case "inbound":
			what = "was contacted by " + a.BadIP.String()
		case "port-probe":
			what = "was port-probed by " + a.BadIP.String()
		default:
			what = "talked to " + peer
		}
	case a.Domain != "":
		what = "looked up " + a.Domain
	default:
		what = "was reported"
	}
	if a.Domain != "" && a.BadIP.IsValid() {
		what += " (" + a.Domain + ")"
	}
	var src string
	switch a.Format {
	case FormatGuardDuty:
		src = fmt.Sprintf("GuardDuty %s (severity %g)", a.Rule, a.Severity)
		if a.Sample {
			src += ", a sample finding"
		}
	case FormatElastAlert, FormatHTTPPost2:
		src = fmt.Sprintf("ElastAlert rule %q", a.Rule)
	default:
		src = fmt.Sprintf("%s detection %q", a.Source, a.Rule)
	}
	return fmt.Sprintf("%s: %s %s", src, who, what)
}

// NotUnderstoodError says why a verified message yields no alert. The
// handler answers 200 (a retry would not help) and logs Format and Reason.
type NotUnderstoodError struct {
	Format string // the parser that tried, or "" when no parser applied
	Reason string
}

func (e *NotUnderstoodError) Error() string {
	if e.Format == "" {
		return "not understood: " + e.Reason
	}
	return e.Format + ": not understood: " + e.Reason
}

func notUnderstood(format, f string, args ...any) error {
	return &NotUnderstoodError{Format: format, Reason: fmt.Sprintf(f, args...)}
}

// IsNotUnderstood reports whether err is a *NotUnderstoodError.
func IsNotUnderstood(err error) bool {
	var nu *NotUnderstoodError
	return errors.As(err, &nu)
}

// MaxRawBytes bounds Alert.Raw (and so workflows.Evidence.Raw).
const MaxRawBytes = 4 << 10

// Parse selects a parser by the message's content and runs it:
//
//   - a JSON object with EventBridge keys (detail-type, detail) or a bare
//     finding (schemaVersion, resource, service), or a Lambda SNS record
//     wrapping one: GuardDuty;
//   - a JSON object with "kind":"cordon.detection" or a "badIP" key: Cordon;
//   - any other JSON object: ElastAlert 2 http_post2 (the match document);
//   - a JSON string (goaws's raw delivery quotes the message): unquoted, then
//     parsed again;
//   - text: ElastAlert's SNS body (subject "ElastAlert: <rule>").
//
// It returns at least one alert or an error; a *NotUnderstoodError when the
// content is of no known format or names no instance or remote address.
func Parse(subject, message string) ([]Alert, error) {
	return parse(subject, message, 0)
}

func parse(subject, message string, depth int) ([]Alert, error) {
	s := strings.TrimSpace(message)
	if s == "" {
		return nil, notUnderstood("", "empty message")
	}
	if depth > 2 {
		return nil, notUnderstood("", "message nested too deeply")
	}
	switch s[0] {
	case '"':
		var inner string
		if json.Unmarshal([]byte(s), &inner) == nil {
			return parse(subject, inner, depth+1)
		}
	case '{':
		var top map[string]json.RawMessage
		if err := json.Unmarshal([]byte(s), &top); err == nil {
			return parseObject(subject, s, top, depth)
		}
	case '[':
		if json.Valid([]byte(s)) {
			return nil, notUnderstood("", "a JSON array is no known alert format")
		}
	}
	if strings.Contains(s, "GuardDuty finding type") {
		return nil, notUnderstood(FormatGuardDuty, "text made by an EventBridge input transformer names no remote address: deliver the GuardDuty event itself (no input transformer) to this topic")
	}
	return ParseElastAlert(subject, message)
}

func parseObject(subject, s string, top map[string]json.RawMessage, depth int) ([]Alert, error) {
	has := func(k string) bool { _, ok := top[k]; return ok }
	switch {
	case has("Records"):
		var rec struct {
			Records []struct {
				Sns struct {
					Subject *string `json:"Subject"`
					Message string  `json:"Message"`
				} `json:"Sns"`
			} `json:"Records"`
		}
		if err := json.Unmarshal([]byte(s), &rec); err != nil || len(rec.Records) == 0 || rec.Records[0].Sns.Message == "" {
			return nil, notUnderstood("", "a Records object that is not an SNS Lambda event")
		}
		var out []Alert
		var firstErr error
		for _, r := range rec.Records {
			sub := subject
			if r.Sns.Subject != nil {
				sub = *r.Sns.Subject
			}
			as, err := parse(sub, r.Sns.Message, depth+1)
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			out = append(out, as...)
		}
		if len(out) == 0 {
			return nil, firstErr
		}
		return out, nil
	case has("detail-type"), has("detail"), has("schemaVersion") && has("service") && has("resource"):
		return ParseGuardDuty(s)
	case has("badIP"), rawString(top["kind"]) == DetectionKind:
		return ParseDetection(s)
	default:
		return ParseHTTPPost2(s)
	}
}

func rawString(r json.RawMessage) string {
	var s string
	if r == nil || json.Unmarshal(r, &s) != nil {
		return ""
	}
	return s
}

// truncRaw cuts s to MaxRawBytes on a rune boundary, saying how much was cut.
func truncRaw(s string) string {
	if len(s) <= MaxRawBytes {
		return s
	}
	cut := MaxRawBytes - 40
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("\n…[%d more bytes]", len(s)-cut)
}

var instanceIDRe = regexp.MustCompile(`\bi-(?:[0-9a-f]{17}|[0-9a-f]{8})\b`)

// ec2HostRe matches EC2's default host names, ip-10-0-1-10[.region.compute.internal].
var ec2HostRe = regexp.MustCompile(`\bip-(\d{1,3})-(\d{1,3})-(\d{1,3})-(\d{1,3})\b`)

// hostAddr derives the private address from an EC2 default host name.
func hostAddr(host string) netip.Addr {
	m := ec2HostRe.FindStringSubmatch(host)
	if m == nil {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(m[1] + "." + m[2] + "." + m[3] + "." + m[4])
	if err != nil {
		return netip.Addr{}
	}
	return a
}

// public reports whether a is a routable unicast address (not private,
// loopback, link-local, multicast, unspecified or CGNAT).
func public(a netip.Addr) bool {
	if !a.IsValid() || a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsMulticast() ||
		a.IsUnspecified() || a.IsInterfaceLocalMulticast() || a.IsLinkLocalMulticast() {
		return false
	}
	return !netip.MustParsePrefix("100.64.0.0/10").Contains(a.Unmap())
}

func parseAddr(s string) netip.Addr {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// lookup finds a dotted key in a decoded JSON document whether it is nested
// ({"cloud":{"instance":{"id":…}}}), flattened ({"cloud.instance.id":…}) or
// mixed ({"cloud.instance":{"id":…}}).
func lookup(m map[string]any, key string) (any, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	parts := strings.Split(key, ".")
	for i := 1; i < len(parts); i++ {
		head := strings.Join(parts[:i], ".")
		v, ok := m[head]
		if !ok {
			continue
		}
		if sub, ok := v.(map[string]any); ok {
			if r, ok := lookup(sub, strings.Join(parts[i:], ".")); ok {
				return r, true
			}
		}
	}
	return nil, false
}

// lookupStrings returns the string values at key: a string, the strings of a
// list, or a number's text.
func lookupStrings(m map[string]any, key string) []string {
	v, ok := lookup(m, key)
	if !ok {
		return nil
	}
	return asStrings(v)
}

func asStrings(v any) []string {
	switch t := v.(type) {
	case string:
		return []string{t}
	case json.Number:
		return []string{t.String()}
	case float64:
		return []string{strconv.FormatFloat(t, 'f', -1, 64)}
	case []any:
		var out []string
		for _, e := range t {
			out = append(out, asStrings(e)...)
		}
		return out
	}
	return nil
}

func lookupString(m map[string]any, keys ...string) string {
	for _, k := range keys {
		for _, s := range lookupStrings(m, k) {
			if s = strings.TrimSpace(s); s != "" {
				return s
			}
		}
	}
	return ""
}

func lookupAddrs(m map[string]any, key string) []netip.Addr {
	var out []netip.Addr
	for _, s := range lookupStrings(m, key) {
		if a := parseAddr(s); a.IsValid() {
			out = append(out, a)
		}
	}
	return out
}

func parseTime(s string) time.Time {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

func clean(s string, n int) string {
	s = strings.TrimSpace(strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s))
	if len(s) > n {
		cut := n
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}
