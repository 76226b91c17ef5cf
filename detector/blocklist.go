// Package detector matches Packetbeat network events against threat-intel
// blocklists: it loads the common list formats (plain IP/CIDR lists, FireHOL
// ipsets/netsets, Spamhaus DROP/EDROP/DROPv6, abuse.ch Feodo Tracker, Emerging
// Threats), builds a longest-prefix matcher with an allowlist that always
// wins, reads Packetbeat NDJSON and Elasticsearch documents as a stream, and
// reports which EC2 instance talked to which listed address. ElastAlert
// rules of type blacklist load as lists too (ParseElastAlertRule), and a
// Reloader rebuilds the matcher when list files change.
package detector

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Format is the syntax of a blocklist file.
type Format string

// Blocklist formats understood by ParseBlocklist.
const (
	// FormatPlain is one IP address or CIDR per line, with '#' (or ';')
	// comment lines and optional trailing comments. Emerging Threats
	// compromised-ips.txt and the abuse.ch Feodo Tracker .txt lists use it.
	FormatPlain Format = "plain"
	// FormatFireHOL is a FireHOL .ipset / .netset file: a '#' comment header,
	// then one IP or CIDR per line.
	FormatFireHOL Format = "firehol"
	// FormatSpamhaus is Spamhaus DROP / EDROP / DROPv6 text: "CIDR ; SBLid"
	// lines and ';' comments. The SBL id becomes the entry label.
	FormatSpamhaus Format = "spamhaus"
	// FormatSpamhausJSON is the Spamhaus JSON-lines flavour (drop_v4.json,
	// drop_v6.json): {"cidr":…,"sblid":…,"rir":…} per line and a trailing
	// {"type":"metadata",…} line.
	FormatSpamhausJSON Format = "spamhaus-json"
	// FormatFeodoCSV is the abuse.ch Feodo Tracker CSV: '#' banner, a quoted
	// header row with a dst_ip column, quoted rows. The malware family
	// becomes the entry label.
	FormatFeodoCSV Format = "feodo-csv"
	// FormatElastAlert is an ElastAlert rule file of type blacklist: its
	// compare_key must be an address field, its blacklist entries (inline
	// and "!file" lists) become the entries. See ParseElastAlertRule.
	FormatElastAlert Format = "elastalert"
)

// Limits of the blocklist reader.
const (
	// MaxLineErrors bounds LoadResult.Errors; LoadResult.BadLines counts them all.
	MaxLineErrors = 100
	// maxListLine is the longest blocklist line accepted.
	maxListLine = 64 << 10
	// detectPeek is how much of a file DetectFormat looks at.
	detectPeek = 16 << 10
)

// Entry is one address or network of a blocklist.
type Entry struct {
	// Prefix is the listed network; a single address is a /32 or /128.
	Prefix netip.Prefix `json:"prefix"`
	// Text is the entry as written in the file ("8.8.8.8", "1.10.16.0/20").
	Text string `json:"text"`
	// Label is the per-entry annotation when the format has one: the
	// Spamhaus SBL id, the Feodo malware family, a trailing comment.
	Label string `json:"label,omitempty"`
	// Line is the line of the file the entry was read from.
	Line int `json:"line"`
}

// List is a parsed blocklist.
type List struct {
	// Name labels the source, normally the file name ("firehol_level1.netset").
	Name string `json:"name"`
	// Format is the syntax the file was read with.
	Format Format `json:"format"`
	// Entries are in file order. Duplicates are kept; the matcher ignores them.
	Entries []Entry `json:"entries"`
}

// LineError is a line of a blocklist that could not be used.
type LineError struct {
	File   string `json:"file"`
	Line   int    `json:"line"`
	Text   string `json:"text,omitempty"`
	Reason string `json:"reason"`
}

// Error formats the problem as "file:line: reason".
func (e LineError) Error() string {
	if e.Text == "" {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Reason)
	}
	return fmt.Sprintf("%s:%d: %s: %q", e.File, e.Line, e.Reason, e.Text)
}

// LoadResult is a blocklist and the lines that were left out of it.
type LoadResult struct {
	List
	// Errors holds the first MaxLineErrors bad lines.
	Errors []LineError `json:"errors,omitempty"`
	// BadLines counts every bad line.
	BadLines int `json:"badLines"`
	// ElastAlert describes the rule when the list is an ElastAlert rule.
	ElastAlert *ElastAlertRule `json:"elastalert,omitempty"`

	// includeStamps are the "!file" lists read, as they were when opened
	// (for the Reloader).
	includeStamps map[string]stamp
}

// secretLine matches "name = value" / "name: value" lines whose name says
// they hold a credential (an AWS profile, a .env file passed as a list).
var secretLine = regexp.MustCompile(`(?i)^(\s*[\w.-]*(secret|password|passwd|token|key|credential)[\w.-]*\s*[=:]\s*).+$`)

// redactSecretLine keeps a bad line's text for the report unless it looks
// like a credential: a wrong file passed as a list must not put its secrets
// in the logs.
func redactSecretLine(text string) string {
	return secretLine.ReplaceAllString(text, "${1}REDACTED")
}

func (res *LoadResult) addError(line int, text, reason string) {
	res.addErrorIn(res.Name, line, text, reason)
}

// addErrorIn records a bad line of file, which may be a file the list
// includes (an ElastAlert "!file" list) rather than the list itself.
func (res *LoadResult) addErrorIn(file string, line int, text, reason string) {
	res.BadLines++
	if len(res.Errors) < MaxLineErrors {
		text = redactSecretLine(text)
		if len(text) > 120 {
			text = text[:120] + "…"
		}
		res.Errors = append(res.Errors, LineError{File: file, Line: line, Text: text, Reason: reason})
	}
}

// LoadBlocklistFile reads one blocklist file, detecting its format. The list
// is named after the file's base name. Bad lines are in the result; the error
// is for I/O problems only.
func LoadBlocklistFile(file string) (*LoadResult, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseBlocklist(f, filepath.Base(file), "", filepath.Dir(file))
}

// LoadBlocklists reads blocklist files and directories (LoadBlocklistFile,
// LoadBlocklistDir) in the order given.
func LoadBlocklists(paths []string) ([]*LoadResult, error) {
	var results []*LoadResult
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("blocklist: %w", err)
		}
		if fi.IsDir() {
			rs, err := LoadBlocklistDir(p)
			if err != nil {
				return nil, err
			}
			results = append(results, rs...)
			continue
		}
		r, err := LoadBlocklistFile(p)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		results = append(results, r)
	}
	return results, nil
}

// LoadBlocklistDir reads every blocklist under dir (recursively), sorted by
// name. Lists are named by their slash-separated path relative to dir
// ("firehol/et_block.netset"). Dot files and Markdown files (SOURCES.md,
// README.md) are skipped. Symbolic links to files are followed (a Kubernetes
// ConfigMap volume links each key to a file under "..data"); links to
// directories are not.
func LoadBlocklistDir(dir string) ([]*LoadResult, error) {
	var out []*LoadResult
	err := walkListDir(dir, func(p, rel string) error {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		res, err := parseBlocklist(f, rel, "", filepath.Dir(p))
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		out = append(out, res)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b *LoadResult) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// walkListDir calls fn with the path and the slash-separated relative name
// of every file LoadBlocklistDir reads.
func walkListDir(dir string, fn func(p, rel string) error) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if strings.HasPrefix(name, ".") && p != dir {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || strings.EqualFold(path.Ext(name), ".md") {
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			fi, err := os.Stat(p)
			if err != nil {
				return fmt.Errorf("read %s: %w", p, err)
			}
			if !fi.Mode().IsRegular() {
				return nil
			}
		} else if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		return fn(p, filepath.ToSlash(rel))
	})
}

// ListsOf returns the lists of results, for NewMatcher.
func ListsOf(results []*LoadResult) []*List {
	lists := make([]*List, len(results))
	for i, r := range results {
		lists[i] = &r.List
	}
	return lists
}

// ParseBlocklist reads a blocklist named name from r. An empty format is
// detected with DetectFormat. Lines that cannot be parsed are reported in
// the result and the rest is loaded; the error is for read errors, and for
// an ElastAlert rule that cannot be imported (whose relative "!file" lists
// are read from the current directory here: LoadBlocklistFile reads them
// from the rule's directory).
func ParseBlocklist(r io.Reader, name string, format Format) (*LoadResult, error) {
	return parseBlocklist(r, name, format, "")
}

// parseBlocklist is ParseBlocklist with the directory that relative
// ElastAlert "!file" paths are relative to.
func parseBlocklist(r io.Reader, name string, format Format, dir string) (*LoadResult, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if format == "" {
		head, err := br.Peek(detectPeek)
		if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
		format = DetectFormat(name, head)
	}
	res := &LoadResult{List: List{Name: name, Format: format}}
	var err error
	switch format {
	case FormatPlain, FormatFireHOL, FormatSpamhaus:
		err = parseTextList(br, res)
	case FormatSpamhausJSON:
		err = parseSpamhausJSON(br, res)
	case FormatFeodoCSV:
		err = parseFeodoCSV(br, res)
	case FormatElastAlert:
		err = parseElastAlertRule(br, res, dir)
	default:
		return nil, fmt.Errorf("blocklist %s: unknown format %q", name, format)
	}
	if err != nil {
		return nil, fmt.Errorf("blocklist %s: %w", name, err)
	}
	return res, nil
}

// DetectFormat guesses the format of a blocklist from its name and the
// first bytes of its content. A .yaml or .yml file, or a file with a
// top-level "type:" key next to another ElastAlert rule key (compare_key,
// blacklist, whitelist, index, filter, alert, name), is an ElastAlert rule.
// Otherwise content wins over the file extension:
//   - a first data line starting with '{' is Spamhaus JSON lines;
//   - a data line with a "dst_ip" column is the Feodo Tracker CSV;
//   - ';' comment lines or "CIDR ; SBL…" lines are Spamhaus DROP text;
//   - a FireHOL header ("hash:ip", "hash:net", "FireHOL") is FireHOL;
//
// then .ipset/.netset means FireHOL, .csv Feodo CSV, .json/.jsonl Spamhaus
// JSON; anything else is a plain IP/CIDR list.
func DetectFormat(name string, head []byte) Format {
	head = bytes.TrimPrefix(head, []byte("\xef\xbb\xbf"))
	if isYAMLName(name) || looksLikeElastAlertRule(head) {
		return FormatElastAlert
	}
	var firehol, semicolon bool
	for n := 0; len(head) > 0 && n < 200; n++ {
		var line []byte
		line, head, _ = bytes.Cut(head, []byte{'\n'})
		line = bytes.TrimSpace(line)
		switch {
		case len(line) == 0:
		case line[0] == '#':
			if bytes.Contains(line, []byte("hash:ip")) || bytes.Contains(line, []byte("hash:net")) ||
				bytes.Contains(line, []byte("FireHOL")) {
				firehol = true
			}
		case line[0] == ';':
			semicolon = true
		case line[0] == '{':
			return FormatSpamhausJSON
		case bytes.Contains(line, []byte("dst_ip")):
			return FormatFeodoCSV
		case bytes.Contains(line, []byte(" ; SBL")) || bytes.Contains(line, []byte(";SBL")):
			return FormatSpamhaus
		}
	}
	base := strings.ToLower(path.Base(filepath.ToSlash(name)))
	switch {
	case firehol:
		return FormatFireHOL
	case semicolon:
		return FormatSpamhaus
	case strings.Contains(base, ".ipset") || strings.Contains(base, ".netset"):
		return FormatFireHOL
	case strings.HasSuffix(base, ".csv"):
		return FormatFeodoCSV
	case strings.HasSuffix(base, ".json") || strings.HasSuffix(base, ".jsonl") || strings.HasSuffix(base, ".ndjson"):
		return FormatSpamhausJSON
	}
	return FormatPlain
}

func isYAMLName(name string) bool {
	ext := strings.ToLower(path.Ext(filepath.ToSlash(name)))
	return ext == ".yaml" || ext == ".yml"
}

// elastAlertKeys are top-level keys of ElastAlert rules that, next to a
// "type:" key, tell a rule from a list. No list format has lines like these.
var elastAlertKeys = [...]string{"compare_key", "blacklist", "whitelist", "index", "filter", "alert", "name"}

// looksLikeElastAlertRule reports whether head has a top-level "type:" key
// and another top-level ElastAlert key.
func looksLikeElastAlertRule(head []byte) bool {
	var typ, other bool
	for n := 0; len(head) > 0 && n < 400; n++ {
		var line []byte
		line, head, _ = bytes.Cut(head, []byte{'\n'})
		key, _, ok := bytes.Cut(line, []byte{':'})
		if !ok || len(key) == 0 || key[0] == ' ' || key[0] == '\t' || key[0] == '#' {
			continue
		}
		key = bytes.TrimRight(key, " \t")
		if string(key) == "type" {
			typ = true
		} else if slices.Contains(elastAlertKeys[:], string(key)) {
			other = true
		}
	}
	return typ && other
}

// parseTextList reads the line formats: plain, FireHOL and Spamhaus text.
// Each line is blank, a comment ('#' or ';'), or an address or CIDR followed
// by an optional comment ("1.10.16.0/20 ; SBL256894", "1.2.3.4 # scanner")
// that becomes the entry label.
func parseTextList(r io.Reader, res *LoadResult) error {
	return eachListLine(r, res, func(lineNo int, raw []byte) {
		if lineNo == 1 {
			raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))
		}
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 || raw[0] == '#' || raw[0] == ';' {
			return
		}
		line := string(raw) // Text and Label are sub-strings of it: one allocation per entry
		text, label := line, ""
		if i := strings.IndexAny(line, " \t#;"); i >= 0 {
			text = line[:i]
			rest := strings.TrimSpace(line[i:])
			if rest != "" {
				if rest[0] != '#' && rest[0] != ';' {
					res.addError(lineNo, line, "unexpected text after the address")
					return
				}
				label = strings.TrimSpace(rest[1:])
			}
		}
		pfx, err := ParsePrefix(text)
		if err != nil {
			res.addError(lineNo, line, err.Error())
			return
		}
		res.Entries = append(res.Entries, Entry{Prefix: pfx, Text: text, Label: label, Line: lineNo})
	})
}

// spamhausJSON is one line of Spamhaus drop_v4.json / drop_v6.json.
type spamhausJSON struct {
	CIDR  string `json:"cidr"`
	SBLID string `json:"sblid"`
	RIR   string `json:"rir"`
	Type  string `json:"type"`
}

func parseSpamhausJSON(r io.Reader, res *LoadResult) error {
	return eachListLine(r, res, func(lineNo int, raw []byte) {
		line := bytes.TrimSpace(raw)
		if len(line) == 0 || line[0] == '#' || line[0] == ';' {
			return
		}
		var rec spamhausJSON
		if err := json.Unmarshal(line, &rec); err != nil {
			res.addError(lineNo, string(line), "bad JSON: "+err.Error())
			return
		}
		if rec.Type == "metadata" {
			return
		}
		if rec.CIDR == "" {
			res.addError(lineNo, string(line), "no cidr")
			return
		}
		pfx, err := ParsePrefix(rec.CIDR)
		if err != nil {
			res.addError(lineNo, string(line), err.Error())
			return
		}
		res.Entries = append(res.Entries, Entry{Prefix: pfx, Text: rec.CIDR, Label: rec.SBLID, Line: lineNo})
	})
}

// parseFeodoCSV reads the abuse.ch Feodo Tracker CSV. The header row names
// the columns; without one (abuse.ch sometimes comments it out) the Feodo
// layout first_seen_utc,dst_ip,dst_port,c2_status,last_online,malware is
// assumed.
func parseFeodoCSV(r io.Reader, res *LoadResult) error {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	ipCol, malwareCol, header := 1, 5, false
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				res.addError(pe.Line, "", "bad CSV: "+pe.Err.Error())
				continue
			}
			return err
		}
		line, _ := cr.FieldPos(0)
		if !header && slices.ContainsFunc(rec, isDstIPColumn) {
			header = true
			ipCol, malwareCol = slices.IndexFunc(rec, isDstIPColumn), -1
			for i, f := range rec {
				if strings.EqualFold(strings.TrimSpace(f), "malware") {
					malwareCol = i
				}
			}
			continue
		}
		if ipCol >= len(rec) {
			res.addError(line, strings.Join(rec, ","), fmt.Sprintf("no dst_ip column (%d fields)", len(rec)))
			continue
		}
		text := strings.TrimSpace(rec[ipCol])
		pfx, err := ParsePrefix(text)
		if err != nil {
			res.addError(line, strings.Join(rec, ","), err.Error())
			continue
		}
		label := ""
		if malwareCol >= 0 && malwareCol < len(rec) {
			label = strings.TrimSpace(rec[malwareCol])
		}
		res.Entries = append(res.Entries, Entry{Prefix: pfx, Text: text, Label: label, Line: line})
	}
}

func isDstIPColumn(f string) bool {
	f = strings.TrimSpace(f)
	return strings.EqualFold(f, "dst_ip") || strings.EqualFold(f, "dstip")
}

// ParsePrefix parses a blocklist entry: an IPv4 or IPv6 address (a /32 or
// /128) or a CIDR. IPv4-mapped IPv6 forms are turned into IPv4, host bits are
// masked off. Zoned addresses and ranges are refused.
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, errors.New("not an IP address or CIDR")
		}
		if a := p.Addr(); a.Is4In6() {
			if p.Bits() < 96 {
				return netip.Prefix{}, errors.New("IPv4-mapped CIDR shorter than /96")
			}
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		if lo, hi, ok := strings.Cut(s, "-"); ok && isAddr(lo) && isAddr(hi) {
			return netip.Prefix{}, errors.New("address ranges are not supported")
		}
		if strings.Contains(s, "*") {
			return netip.Prefix{}, errors.New(wildcardHint(s))
		}
		return netip.Prefix{}, errors.New("not an IP address or CIDR")
	}
	if a.Zone() != "" {
		return netip.Prefix{}, errors.New("zoned IPv6 address")
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// wildcardHint explains that s, an address with '*' in it, is not a
// pattern, and names the CIDR it probably means ("210.120.*" →
// 210.120.0.0/16).
func wildcardHint(s string) string {
	const msg = "wildcards are not supported (the entry is not a pattern)"
	parts := strings.Split(s, ".")
	var octets []string
	for i, p := range parts {
		if p == "*" {
			if !slices.ContainsFunc(parts[i:], func(q string) bool { return q != "*" }) && len(parts) <= 4 && i > 0 {
				for len(octets) < 4 {
					octets = append(octets, "0")
				}
				return fmt.Sprintf("%s: write the network as a CIDR, e.g. %s/%d", msg, strings.Join(octets, "."), 8*i)
			}
			break
		}
		if _, err := strconv.ParseUint(p, 10, 8); err != nil {
			break
		}
		octets = append(octets, p)
	}
	return msg + ": write the network as a CIDR"
}

func isAddr(s string) bool {
	_, err := netip.ParseAddr(strings.TrimSpace(s))
	return err == nil
}

// eachListLine calls fn with each line of a list and its number, reporting
// lines over maxListLine as errors and skipping them.
func eachListLine(r io.Reader, res *LoadResult, fn func(lineNo int, raw []byte)) error {
	lr := newLineReader(r, 64<<10, maxListLine)
	for {
		raw, tooLong, err := lr.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if tooLong {
			res.addError(lr.line, "", fmt.Sprintf("line longer than %d bytes", maxListLine))
			continue
		}
		fn(lr.line, raw)
	}
}
