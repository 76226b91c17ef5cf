package detector

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ElastAlertRule describes an ElastAlert rule of type blacklist loaded as a
// list (FormatElastAlert).
type ElastAlertRule struct {
	// Name is the rule's name: key, or the file name when it has none.
	Name string `json:"name"`
	// CompareKey is the field the rule compares (destination.ip, …).
	CompareKey string `json:"compareKey"`
	// Direction is the side of a flow the field names: Outbound for a
	// destination field, Inbound for a source field, empty when the field
	// does not say (meta.ip, related.ip). Cordon looks every listed
	// address up on both sides of a flow, as for every other list format;
	// Direction documents what the rule compared in ElastAlert.
	Direction Direction `json:"direction,omitempty"`
	// Includes are the "!file" lists the rule names, as resolved.
	Includes []string `json:"includes,omitempty"`
}

// Side describes Direction in words: "outbound (destination)", "inbound
// (source)" or "either side".
func (r *ElastAlertRule) Side() string {
	switch r.Direction {
	case Outbound:
		return "outbound (destination)"
	case Inbound:
		return "inbound (source)"
	}
	return "either side (the field does not say)"
}

// maxRuleBytes bounds an ElastAlert rule file.
const maxRuleBytes = 4 << 20

// ParseElastAlertRule reads an ElastAlert rule named name from r and returns
// its blacklist as a list. Relative "!file" paths are relative to dir (the
// rule's directory; ElastAlert itself opens them relative to its working
// directory, so absolute paths, the usual practice, mean the same in both).
//
// The rule must be one YAML document of type blacklist whose compare_key is
// an address field; anything else is an error that names the problem and
// what to do. Entries are IPv4/IPv6 addresses or CIDRs; an entry that is not
// one (ElastAlert compares strings: "210.120.*" or a host name never match
// an address there either) is a bad line with its reason, and the rest
// loads. Lines of "!file" lists are trimmed; blank lines and '#' comment
// lines are skipped.
func ParseElastAlertRule(r io.Reader, name, dir string) (*LoadResult, error) {
	res := &LoadResult{List: List{Name: name, Format: FormatElastAlert}}
	if err := parseElastAlertRule(r, res, dir); err != nil {
		return nil, fmt.Errorf("blocklist %s: %w", name, err)
	}
	return res, nil
}

func parseElastAlertRule(r io.Reader, res *LoadResult, dir string) error {
	data, err := io.ReadAll(io.LimitReader(r, maxRuleBytes+1))
	if err != nil {
		return err
	}
	if len(data) > maxRuleBytes {
		return fmt.Errorf("ElastAlert rule larger than %d bytes", maxRuleBytes)
	}
	root, err := decodeRule(data)
	if err != nil {
		return err
	}
	keys, err := ruleKeys(root)
	if err != nil {
		return err
	}
	rule := &ElastAlertRule{Name: filepath.Base(res.Name)}
	if n := keys["name"]; n != nil && n.Kind == yaml.ScalarNode && strings.TrimSpace(n.Value) != "" {
		rule.Name = strings.TrimSpace(n.Value)
	}
	if err := checkRuleType(keys); err != nil {
		return err
	}
	if rule.CompareKey, rule.Direction, err = ruleCompareKey(keys); err != nil {
		return err
	}
	list := keys["blacklist"]
	if list == nil {
		if keys["whitelist"] != nil {
			return errors.New(`a blacklist rule without a "blacklist:" key (its entries are under "whitelist:", which a blacklist rule ignores; ElastAlert refuses it too): rename the key to blacklist`)
		}
		return errors.New(`a blacklist rule without a "blacklist:" list (ElastAlert requires one): add the addresses under blacklist:`)
	}
	if list.Kind != yaml.SequenceNode {
		return fmt.Errorf("line %d: blacklist: must be a list of entries (\"- 1.2.3.4\"), not a %s", list.Line, kindName(list))
	}
	res.ElastAlert = rule
	label := fmt.Sprintf("ElastAlert rule %q (%s)", rule.Name, rule.CompareKey)
	for _, item := range list.Content {
		if item.Kind == yaml.AliasNode && item.Alias != nil {
			item = item.Alias
		}
		if item.Kind != yaml.ScalarNode {
			res.addError(item.Line, "", fmt.Sprintf("blacklist entry is a %s, not a single address", kindName(item)))
			continue
		}
		text := strings.TrimSpace(item.Value)
		if item.Tag == "!file" { // unquoted "- !file /path": YAML reads !file as a tag
			text = "!file " + text
		}
		if strings.HasPrefix(text, "!file") {
			if err := readRuleInclude(res, rule, dir, text, item.Line, label); err != nil {
				return err
			}
			continue
		}
		addRuleEntry(res, res.Name, item.Line, text, label)
	}
	return nil
}

// decodeRule parses one YAML document and returns its top-level mapping.
func decodeRule(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, errors.New("empty file: not an ElastAlert rule")
		}
		return nil, fmt.Errorf("not valid YAML (ElastAlert cannot load it either): %v", err)
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		return nil, fmt.Errorf(`more than one YAML document ("---" before line %d): ElastAlert reads one rule per file; split it into one file per rule`, next.Line)
	} else if err != io.EOF {
		return nil, fmt.Errorf("not valid YAML (ElastAlert cannot load it either): %v", err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == 0 || root.Kind == yaml.DocumentNode || root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, errors.New("empty file: not an ElastAlert rule")
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("the YAML is a %s, not a rule (a mapping of keys such as type:, compare_key:, blacklist:)", kindName(root))
	}
	return root, nil
}

// ruleKeys maps the top-level keys of a rule to their values, refusing
// duplicate keys (YAML forbids them; ElastAlert would silently keep the
// last one).
func ruleKeys(root *yaml.Node) (map[string]*yaml.Node, error) {
	keys := make(map[string]*yaml.Node, len(root.Content)/2)
	lines := make(map[string]int, len(root.Content)/2)
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if v.Kind == yaml.AliasNode && v.Alias != nil {
			v = v.Alias
		}
		if prev, dup := lines[k.Value]; dup {
			return nil, fmt.Errorf("key %q appears twice (lines %d and %d): one rule per file, one value per key", k.Value, prev, k.Line)
		}
		keys[k.Value], lines[k.Value] = v, k.Line
	}
	return keys, nil
}

// checkRuleType refuses every rule that is not of type blacklist, saying why.
func checkRuleType(keys map[string]*yaml.Node) error {
	t := keys["type"]
	if t == nil {
		if keys["import"] != nil {
			return errors.New(`no "type:" key (Cordon does not follow ElastAlert's import:): put "type: blacklist" into the rule itself`)
		}
		if keys["blacklist"] != nil || keys["compare_key"] != nil {
			return errors.New(`no "type:" key (ElastAlert requires one): add "type: blacklist" and "compare_key:" to use this blacklist`)
		}
		return errors.New(`no "type:" key: not an ElastAlert rule (Cordon reads .yaml/.yml files as ElastAlert rules of type blacklist); keep other YAML files out of the blocklist paths`)
	}
	if t.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: type: is a %s, not a rule type", t.Line, kindName(t))
	}
	typ := strings.TrimSpace(t.Value)
	switch {
	case typ == "blacklist":
		return nil
	case strings.HasPrefix(typ, "blacklist") && strings.ContainsAny(typ, " \n"):
		return fmt.Errorf(`line %d: type is %q, not blacklist: the list items below "type: blacklist" are indented, so YAML read them as part of the type; put them under a "blacklist:" key`, t.Line, shorten(typ, 60))
	case typ == "whitelist":
		return fmt.Errorf(`line %d: type "whitelist" is not supported: a whitelist rule alerts on every value NOT listed, which is not a blocklist; keep it in ElastAlert (addresses that must never match belong in Cordon's --allow)`, t.Line)
	}
	return fmt.Errorf(`line %d: type %q is not supported: Cordon imports only ElastAlert rules of type blacklist (their compare_key and blacklist entries); keep this rule in ElastAlert, which can alert Cordon through SNS`, t.Line, shorten(typ, 60))
}

// ruleCompareKey returns the compare_key and the flow direction it names,
// refusing fields that are not peer addresses.
func ruleCompareKey(keys map[string]*yaml.Node) (string, Direction, error) {
	ck := keys["compare_key"]
	if ck == nil {
		return "", "", errors.New(`a blacklist rule without "compare_key:" (ElastAlert requires it): name the address field to compare, e.g. compare_key: destination.ip`)
	}
	if ck.Kind == yaml.SequenceNode {
		return "", "", fmt.Errorf("line %d: compare_key is a list: a blacklist compares one field; use one rule per address field (destination.ip, source.ip)", ck.Line)
	}
	if ck.Kind != yaml.ScalarNode || strings.TrimSpace(ck.Value) == "" {
		return "", "", fmt.Errorf("line %d: compare_key must name one field, e.g. destination.ip", ck.Line)
	}
	key := strings.TrimSpace(ck.Value)
	dir, ok, why := addressField(key)
	if !ok {
		return "", "", fmt.Errorf("line %d: compare_key %q %s", ck.Line, key, why)
	}
	return key, dir, nil
}

// Address fields by the side of the flow they name. Keys are lower case,
// without a ".keyword" or ".raw" suffix.
var (
	destinationFields = fieldSet("destination.ip", "destination.address", "server.ip", "server.address",
		"dst_ip", "dstip", "dst-ip", "dest_ip", "destip", "dest-ip", "destination_ip", "destination-ip",
		"dst_addr", "dstaddr", "dest_addr", "destination_address", "dst", "dest", "id.resp_h", "ip.dst",
		"netflow.destination_ipv4_address", "netflow.destination_ipv6_address", "dns.resolved_ip")
	sourceFields = fieldSet("source.ip", "source.address", "client.ip", "client.address",
		"src_ip", "srcip", "src-ip", "source_ip", "source-ip", "src_addr", "srcaddr", "source_address",
		"src", "id.orig_h", "ip.src", "clientip", "client_ip", "client-ip", "remote_addr", "remote_ip",
		"netflow.source_ipv4_address", "netflow.source_ipv6_address")
	// ownFields are the monitored host's own addresses, not a peer's.
	ownFields = fieldSet("host.ip", "observer.ip", "agent.ip", "host.address", "observer.address")
)

func fieldSet(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// addressField tells whether key is an address field of a flow and which
// side it names; why says what is wrong when it is not.
func addressField(key string) (dir Direction, ok bool, why string) {
	k := strings.ToLower(key)
	k = strings.TrimSuffix(strings.TrimSuffix(k, ".keyword"), ".raw")
	switch {
	case destinationFields[k]:
		return Outbound, true, ""
	case sourceFields[k]:
		return Inbound, true, ""
	case ownFields[k]:
		return "", false, "is the monitored host's own address, not the peer it talks to: Cordon matches the peers of network flows; compare source.ip or destination.ip instead"
	}
	last := k[strings.LastIndexByte(k, '.')+1:]
	switch last {
	case "ip", "ips", "ipv4", "ipv6", "ip_address", "ipaddress", "ip_addr", "ipaddr", "addr":
		return "", true, ""
	}
	for _, suffix := range [...]string{"_ip", "-ip", "_ipv4", "_ipv6", "_ip_address"} {
		if strings.HasSuffix(last, suffix) {
			return "", true, ""
		}
	}
	return "", false, "is not an IP address field: ElastAlert compares its value as a string, Cordon matches the addresses of network flows (destination.ip, source.ip and the like); keep this rule in ElastAlert"
}

// readRuleInclude adds the entries of a "!file PATH" list.
func readRuleInclude(res *LoadResult, rule *ElastAlertRule, dir, text string, line int, label string) error {
	fields := strings.Fields(text)
	if len(fields) < 2 || fields[0] != "!file" {
		res.addError(line, text, `not a "!file /path/to/list" include`)
		return nil
	}
	p := fields[1] // as ElastAlert: the first word after !file
	if !filepath.IsAbs(p) && dir != "" {
		p = filepath.Join(dir, p)
	}
	rule.Includes = append(rule.Includes, p)
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("line %d: %s: %w (a relative path is relative to the rule's directory)", line, text, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil {
		if res.includeStamps == nil {
			res.includeStamps = map[string]stamp{}
		}
		res.includeStamps[p] = stampOf(fi)
	}
	label = label + ", !file " + fields[1]
	lr := newLineReader(f, 64<<10, maxListLine)
	for {
		raw, tooLong, err := lr.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("line %d: %s: %w", line, text, err)
		}
		if tooLong {
			res.addErrorIn(p, lr.line, "", fmt.Sprintf("line longer than %d bytes", maxListLine))
			continue
		}
		if lr.line == 1 {
			raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))
		}
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 || raw[0] == '#' {
			continue
		}
		addRuleEntry(res, p, lr.line, string(raw), label)
	}
}

// addRuleEntry adds one blacklist entry, or reports why it cannot be one.
func addRuleEntry(res *LoadResult, file string, line int, text, label string) {
	if text == "" {
		res.addErrorIn(file, line, "", "empty blacklist entry")
		return
	}
	pfx, err := ParsePrefix(text)
	if err != nil {
		reason := err.Error()
		if looksLikeHostName(text) {
			reason = "a host name, not an address: Cordon matches the addresses of flows; list the host's IP addresses instead"
		}
		res.addErrorIn(file, line, text, reason+" (ElastAlert compares entries as exact strings)")
		return
	}
	res.Entries = append(res.Entries, Entry{Prefix: pfx, Text: text, Label: label, Line: line})
}

// looksLikeHostName reports a dotted name with a letter that is not an
// IPv6 address ("www.testbad.domain").
func looksLikeHostName(s string) bool {
	if strings.ContainsAny(s, ":/* ") || !strings.Contains(s, ".") {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }) >= 0
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "single value"
	case yaml.AliasNode:
		return "alias"
	case yaml.DocumentNode:
		return "document"
	}
	return "empty document"
}

func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
