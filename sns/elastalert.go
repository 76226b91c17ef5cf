package sns

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// ElastAlertSeparator separates the matches of an aggregated ElastAlert body
// (alerts.py: "\n----------------------------------------\n" after each match).
const ElastAlertSeparator = "----------------------------------------"

// elastAlertField is one "key: value" line of BasicMatchString: the key
// starts with neither a blank nor a colon.
var elastAlertField = regexp.MustCompile(`^([^\s:][^:]*):(?: (.*))?$`)

// MaxAlertsPerMessage bounds the alerts taken from one aggregated body; an
// aggregation of more matches than that is cut (ElastAlert's own summaries
// are far smaller).
const MaxAlertsPerMessage = 1000

// maxBlockLines bounds how many lines one nested JSON value may span.
const maxBlockLines = 20000

// ParseElastAlert parses the body ElastAlert's SNS alerter publishes
// (Alerter.create_alert_body): per match the rule name (unless alert_text is
// set), the alert text, then every match field sorted as "key: value", with
// lists and objects as 4-space-indented JSON over several lines; aggregated
// matches separated by a line of 40 dashes. A body with no field lines
// (alert_text_type: alert_text_only) is read as free text: instance IDs,
// EC2 host names and addresses. subject is the SNS Subject, by default
// "ElastAlert: <rule name>".
func ParseElastAlert(subject, body string) ([]Alert, error) {
	body = strings.ReplaceAll(body, "\r\n", "\n")
	rule := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(subject), "ElastAlert:"))
	var chunks []string
	var cur []string
	for _, line := range strings.Split(body, "\n") {
		if strings.TrimRight(line, " ") == ElastAlertSeparator {
			chunks = append(chunks, strings.Join(cur, "\n"))
			cur = nil
			continue
		}
		cur = append(cur, line)
	}
	chunks = append(chunks, strings.Join(cur, "\n"))

	var out []Alert
	var reasons []string
	for i, chunk := range chunks {
		if len(out) == MaxAlertsPerMessage {
			break
		}
		if strings.TrimSpace(chunk) == "" {
			continue
		}
		a, err := parseElastAlertChunk(rule, chunk)
		if err != nil {
			reason := err.Error()
			var nu *NotUnderstoodError
			if errors.As(err, &nu) {
				reason = nu.Reason
			}
			if len(chunks) > 1 {
				reason = "match " + strconv.Itoa(i+1) + ": " + reason
			}
			reasons = append(reasons, reason)
			continue
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		if len(reasons) == 0 {
			reasons = []string{"empty body"}
		}
		return nil, notUnderstood(FormatElastAlert, "%s", strings.Join(reasons, "; "))
	}
	return out, nil
}

func parseElastAlertChunk(rule, chunk string) (Alert, error) {
	fields := map[string]any{}
	var header []string
	lines := strings.Split(chunk, "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if strings.TrimSpace(line) == "" {
			continue
		}
		m := elastAlertField.FindStringSubmatch(line)
		if m == nil {
			if len(fields) == 0 {
				header = append(header, strings.TrimSpace(line))
			}
			continue
		}
		key, val := m[1], m[2]
		if val == "{" || val == "[" {
			closing := "}"
			if val == "[" {
				closing = "]"
			}
			var buf bytes.Buffer
			buf.WriteString(val)
			// json.dumps(indent=4) indents every inner line and closes at
			// column 0; a line that is neither ends the block (broken), so
			// each line is scanned once whatever the input.
			end, last := -1, i
			for j := i + 1; j < len(lines) && j-i <= maxBlockLines; j++ {
				if lines[j] == closing {
					end = j
					break
				}
				if lines[j] == "" || (lines[j][0] != ' ' && lines[j][0] != '\t') {
					break
				}
				last = j
			}
			if end >= 0 {
				for j := i + 1; j <= end; j++ {
					buf.WriteByte('\n')
					buf.WriteString(lines[j])
				}
				var v any
				dec := json.NewDecoder(bytes.NewReader(buf.Bytes()))
				dec.UseNumber()
				if dec.Decode(&v) == nil {
					fields[key] = v
					i = end
					continue
				}
				last = end
			}
			fields[key] = val
			i = last
			continue
		}
		if (strings.HasPrefix(val, "{") || strings.HasPrefix(val, "[")) && json.Valid([]byte(val)) {
			var v any
			dec := json.NewDecoder(strings.NewReader(val))
			dec.UseNumber()
			if dec.Decode(&v) == nil {
				fields[key] = v
				continue
			}
		}
		fields[key] = val
	}
	if rule == "" && len(header) > 0 {
		rule = header[0]
	}
	if rule == "" {
		rule = "ElastAlert"
	}
	a := Alert{Format: FormatElastAlert, Source: "elastalert", Rule: clean(rule, 200), Raw: truncRaw(strings.TrimSpace(chunk))}
	if ecsAlert(&a, fields) {
		return a, a.check(FormatElastAlert)
	}
	// alert_text_only (or a rule whose fields name nothing useful): free text.
	freeText(&a, strings.Join(header, "\n"))
	if a.InstanceID == "" && a.Host == "" && !a.SourceIP.IsValid() && len(fields) > 0 {
		return a, notUnderstood(FormatElastAlert, "the match has no cloud.instance.id, host name or source address (fields: %s)", fieldNames(fields))
	}
	return a, a.check(FormatElastAlert)
}

func fieldNames(m map[string]any) string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	slices.Sort(k)
	if len(k) > 12 {
		k = append(k[:12], "…")
	}
	return strings.Join(k, ", ")
}

// check reports an alert that names no instance (nor a way to find it) or no
// remote address.
func (a *Alert) check(format string) error {
	if a.InstanceID == "" && a.Host == "" && !a.SourceIP.IsValid() {
		return notUnderstood(format, "no instance ID, host name or source address")
	}
	if !a.BadIP.IsValid() {
		return notUnderstood(format, "no remote address")
	}
	return nil
}

// ecsAlert fills a from the fields of an ECS document (Packetbeat, Elastic
// Agent network_traffic). It reports whether the document had any field it
// knows (so the caller does not fall back to free text).
func ecsAlert(a *Alert, doc map[string]any) bool {
	a.InstanceID = lookupString(doc, "cloud.instance.id")
	a.Account = lookupString(doc, "cloud.account.id")
	a.Region = lookupString(doc, "cloud.region")
	a.Host = lookupString(doc, "host.hostname", "host.name", "agent.name", "agent.hostname")
	if a.InstanceID != "" && !instanceIDRe.MatchString(a.InstanceID) {
		a.InstanceID = clean(a.InstanceID, 40)
	}
	if ts := lookupString(doc, "@timestamp", "timestamp", "event.start"); ts != "" {
		a.Time = parseTime(ts)
	}
	if id := lookupString(doc, "_id"); id != "" {
		a.Ref = lookupString(doc, "_index") + "/" + id
	}
	local := lookupAddrs(doc, "host.ip")
	isLocal := func(x netip.Addr) bool { return slices.Contains(local, x) }
	type cand struct {
		addr netip.Addr
		side string
	}
	var cands []cand
	for _, k := range []string{"threat.indicator.ip", "destination.ip", "server.ip", "source.ip", "client.ip"} {
		for _, x := range lookupAddrs(doc, k) {
			cands = append(cands, cand{x, strings.Split(k, ".")[0]})
		}
	}
	for _, c := range cands {
		if public(c.addr) && !isLocal(c.addr) {
			a.BadIP = c.addr
			a.Port, a.Domain = ecsPeer(doc, c.side)
			break
		}
	}
	if !a.BadIP.IsValid() {
		// Everything private (a blocklist with bogons, an internal peer): the
		// destination is what the rule compared; the allowlist decides.
		if d := lookupAddrs(doc, "destination.ip"); len(d) > 0 {
			a.BadIP = d[0]
			a.Port, a.Domain = ecsPeer(doc, "destination")
		}
	}
	for _, k := range []string{"source.ip", "client.ip", "destination.ip", "server.ip"} {
		for _, x := range lookupAddrs(doc, k) {
			if x != a.BadIP && (isLocal(x) || !public(x)) {
				a.SourceIP = x
				break
			}
		}
		if a.SourceIP.IsValid() {
			break
		}
	}
	if !a.SourceIP.IsValid() && len(local) > 0 {
		a.SourceIP = local[0]
	}
	return a.InstanceID != "" || a.BadIP.IsValid() || a.SourceIP.IsValid() || a.Host != ""
}

// ecsPeer returns the port and domain of one side (destination, server,
// source, client) of an ECS document.
func ecsPeer(doc map[string]any, side string) (int, string) {
	if side == "threat" {
		side = "destination"
	}
	port, _ := strconv.Atoi(lookupString(doc, side+".port"))
	domain := lookupString(doc, side+".domain")
	if domain == "" && (side == "destination" || side == "server") {
		domain = lookupString(doc, "tls.client.server_name", "url.domain")
	}
	if port < 0 || port > 65535 {
		port = 0
	}
	return port, clean(domain, 253)
}

// freeText reads instance IDs, EC2 host names and addresses from text.
func freeText(a *Alert, text string) {
	if a.InstanceID == "" {
		a.InstanceID = instanceIDRe.FindString(text)
	}
	if a.Host == "" {
		a.Host = ec2HostRe.FindString(text)
	}
	hostIP := hostAddr(a.Host)
	for _, tok := range strings.FieldsFunc(text, func(r rune) bool {
		return !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F' || r == '.' || r == ':')
	}) {
		tok = strings.Trim(tok, ".:")
		x := parseAddr(tok)
		if !x.IsValid() {
			continue
		}
		if public(x) && !a.BadIP.IsValid() {
			a.BadIP = x
		} else if !public(x) && !a.SourceIP.IsValid() {
			a.SourceIP = x
		}
	}
	if !a.SourceIP.IsValid() {
		a.SourceIP = hostIP
	}
}

// ParseHTTPPost2 parses the JSON ElastAlert 2's http_post2 alerter posts:
// with http_post2_all_values (the default without a payload) the match
// document itself, ECS fields nested or flattened, plus _id, _index,
// num_hits, num_matches and any payload keys. The rule name is taken from a
// payload key "rule", "rule_name" or "alert_name" when there is one.
func ParseHTTPPost2(body string) ([]Alert, error) {
	var doc map[string]any
	dec := json.NewDecoder(strings.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, notUnderstood(FormatHTTPPost2, "not a JSON object: %v", err)
	}
	a := Alert{Format: FormatHTTPPost2, Source: "elastalert", Raw: truncRaw(body)}
	a.Rule = clean(lookupString(doc, "rule", "rule_name", "alert_name", "rule.name"), 200)
	if a.Rule == "" {
		a.Rule = "ElastAlert http_post2"
	}
	if !ecsAlert(&a, doc) {
		return nil, notUnderstood(FormatHTTPPost2, "a JSON object with none of cloud.instance.id, host.name, source.ip, destination.ip (keys: %s)", fieldNames(doc))
	}
	if err := a.check(FormatHTTPPost2); err != nil {
		return nil, err
	}
	return []Alert{a}, nil
}
