package detector

import (
	"bytes"
	"context"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const (
	elastAlertDir    = "testdata/elastalert"
	elastAlertCorpus = "testdata/elastalert/corpus"
	// sharedCorpus is where the corpus the copies come from lives on the
	// machine they were made on; TestElastAlertCopiesMatchCorpus compares
	// them when it is there.
	sharedCorpus = "/work/shared/corpus/elastalert"
)

// corpusRuleOutcomes is the expected outcome of loading each ElastAlert
// sample of the corpus (rules-from-repos, rules-from-issues, docs-snippets)
// as a blocklist: the error it is refused with (a phrase of it), or, for
// the files that are lists rather than rules, the list they load as.
// alert-bodies/ holds SNS message bodies, not rules: the sns package tests
// them.
var corpusRuleOutcomes = map[string]struct {
	refused string // phrase of the error; empty: loads
	format  Format
	entries []string // entry texts when it loads
	bad     []string // bad line reasons (phrases) when it loads
}{
	"rules-from-repos/cdsl-research_blacklist_MISSING-compare_key.yaml": {refused: `a blacklist rule without "compare_key:"`},
	"rules-from-repos/elastalert2_example_frequency.yaml":               {refused: `line 26: type "frequency" is not supported: Cordon imports only ElastAlert rules of type blacklist`},
	"rules-from-repos/elastalert2_example_iris_alert_any.yaml":          {refused: `line 3: type "any" is not supported`},
	"rules-from-repos/elastalert2_exemple_discord_any.yaml":             {refused: `line 6: type "any" is not supported`},
	"rules-from-issues/helk-437_blacklist_hash_file.yml":                {refused: `line 11: compare_key "hash_md5" is not an IP address field`},
	"rules-from-issues/yelp-1389_any_query-string_aggregation.yaml":     {refused: `type "any" is not supported`},
	"rules-from-issues/yelp-1696_blacklist_MALFORMED-type-becomes-multiline-string.yaml": {
		refused: `the list items below "type: blacklist" are indented, so YAML read them as part of the type; put them under a "blacklist:" key`},
	"rules-from-issues/yelp-181_blacklist_type-field.yaml": {refused: `compare_key "type" is not an IP address field`},
	"rules-from-issues/yelp-2091_b-list.txt": {format: FormatPlain, entries: []string{"127.0.0.1", "1.1.1.1"},
		bad: []string{"3: wildcards are not supported (the entry is not a pattern): write the network as a CIDR, e.g. 210.120.0.0/16"}},
	// The user's list is at a path of their machine: refused until it is
	// found (yelp-2091_blacklist_meta-ip_relative-file.yaml imports it).
	"rules-from-issues/yelp-2091_blacklist_meta-ip_file.yaml": {
		refused: `line 7: !file /Users/REDACTED_USER/elastalert-master/list_folder/b-list.txt: open /Users/REDACTED_USER/elastalert-master/list_folder/b-list.txt: no such file or directory`},
	"rules-from-issues/yelp-2521_whitelist-blacklist-frequency_INVALID-unclosed-quote.yaml": {refused: "not valid YAML (ElastAlert cannot load it either)"},
	"rules-from-issues/yelp-2642_blacklist_message_msteams.yaml":                            {refused: `compare_key "message" is not an IP address field`},
	"rules-from-issues/yelp-2937_blacklist_php-notice.yaml":                                 {refused: `compare_key "message" is not an IP address field`},
	"rules-from-issues/yelp-3105_blacklist-whitelist_KEYS-SWAPPED_snippets.yaml":            {refused: "more than one YAML document"},
	"rules-from-issues/yelp-3187_any_query-string_ip-cidr_INVALID-yaml.yaml":                {refused: "not valid YAML"},
	"rules-from-issues/yelp-417_any_term-and-terms.yaml":                                    {refused: `type "any" is not supported`},
	"rules-from-issues/yelp-572_whitelist-zone.yaml":                                        {refused: `type "whitelist" is not supported: a whitelist rule alerts on every value NOT listed`},
	"rules-from-issues/yelp-612_blacklist_inline-flow-list_snippet.yaml":                    {refused: `compare_key "username" is not an IP address field`},
	"rules-from-issues/yelp-648_frequency_with-whitelist-option_IGNORED.yaml":               {refused: `type "frequency" is not supported`},
	// Not a rule (INI and YAML mixed, .txt): read as a plain list, every
	// line refused.
	"docs-snippets/elastalert2-docs_alerts_sns_profile.txt": {format: FormatPlain,
		bad: slices.Repeat([]string{""}, 9)},
	"docs-snippets/elastalert2-docs_alerts_sns_static-keys_INVALID-quote.yaml": {refused: "not valid YAML"},
	"docs-snippets/elastalert2-docs_ruletypes_blacklist.yaml":                  {refused: `no "type:" key (ElastAlert requires one): add "type: blacklist" and "compare_key:"`},
	"docs-snippets/elastalert2-docs_ruletypes_whitelist.yaml":                  {refused: `no "type:" key: not an ElastAlert rule`},
	"docs-snippets/elastalert2-docs_writing_filters_terms_1.yaml":              {refused: `no "type:" key: not an ElastAlert rule`},
	"docs-snippets/elastalert2-docs_writing_filters_terms_2.yaml":              {refused: "the YAML is a list, not a rule"},
	"docs-snippets/elastalert2-docs_writing_filters_terms_3.yaml":              {refused: `no "type:" key: not an ElastAlert rule`},
}

func TestElastAlertCorpusRulesImportOrAreRefused(t *testing.T) {
	var files []string
	require.NoError(t, filepath.WalkDir(elastAlertCorpus, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(elastAlertCorpus, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return err
	}))
	require.Len(t, files, len(corpusRuleOutcomes), "every corpus sample has an expected outcome, and every outcome a sample")
	for _, rel := range files {
		want, ok := corpusRuleOutcomes[rel]
		require.True(t, ok, "no expected outcome for %s", rel)
		t.Run(rel, func(t *testing.T) {
			res, err := LoadBlocklistFile(filepath.Join(elastAlertCorpus, rel))
			if want.refused != "" {
				require.Error(t, err)
				require.Nil(t, res)
				require.Contains(t, err.Error(), want.refused)
				require.True(t, strings.HasPrefix(err.Error(), "blocklist "+filepath.Base(rel)+": "), "the error names the file: %v", err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, want.format, res.Format)
			var texts []string
			for _, e := range res.Entries {
				texts = append(texts, e.Text)
			}
			require.Equal(t, want.entries, texts)
			require.Equal(t, len(want.bad), res.BadLines)
			for i, phrase := range want.bad {
				require.Contains(t, res.Errors[i].Error(), phrase)
			}
		})
	}
}

// TestElastAlertCopiesMatchCorpus checks that each copy under
// testdata/elastalert/corpus is its corpus file with one origin line on top.
func TestElastAlertCopiesMatchCorpus(t *testing.T) {
	if _, err := os.Stat(sharedCorpus); err != nil {
		t.Skip("the corpus is not on this machine:", err)
	}
	for rel := range corpusRuleOutcomes {
		copied, err := os.ReadFile(filepath.Join(elastAlertCorpus, rel))
		require.NoError(t, err)
		orig, err := os.ReadFile(filepath.Join(sharedCorpus, rel))
		require.NoError(t, err)
		origin, rest, ok := bytes.Cut(copied, []byte{'\n'})
		require.True(t, ok)
		require.True(t, bytes.HasPrefix(origin, []byte("# origin: ")), rel)
		require.Equal(t, string(orig), string(rest), rel)
	}
}

// TestElastAlertRuleWithFileImports loads the real rule of issue 2091 with
// its !file list found: meta.ip is an address field that names no side, the
// list's wildcard entry is refused with the CIDR it probably means.
func TestElastAlertRuleWithFileImports(t *testing.T) {
	res, err := LoadBlocklistFile(filepath.Join(elastAlertDir, "yelp-2091_blacklist_meta-ip_relative-file.yaml"))
	require.NoError(t, err)
	require.Equal(t, FormatElastAlert, res.Format)
	include := filepath.Join(elastAlertDir, "corpus/rules-from-issues/yelp-2091_b-list.txt")
	require.Equal(t, &ElastAlertRule{Name: "yelp-2091_blacklist_meta-ip_relative-file.yaml", CompareKey: "meta.ip",
		Includes: []string{include}}, res.ElastAlert)
	require.Equal(t, "either side (the field does not say)", res.ElastAlert.Side())
	label := `ElastAlert rule "yelp-2091_blacklist_meta-ip_relative-file.yaml" (meta.ip), !file corpus/rules-from-issues/yelp-2091_b-list.txt`
	require.Equal(t, []Entry{
		{Prefix: netip.MustParsePrefix("127.0.0.1/32"), Text: "127.0.0.1", Label: label, Line: 2},
		{Prefix: netip.MustParsePrefix("1.1.1.1/32"), Text: "1.1.1.1", Label: label, Line: 4},
	}, res.Entries)
	require.Equal(t, 1, res.BadLines)
	require.Equal(t, include+`:3: wildcards are not supported (the entry is not a pattern): write the network as a CIDR, e.g. 210.120.0.0/16 (ElastAlert compares entries as exact strings): "210.120.*"`,
		res.Errors[0].Error())
}

// TestElastAlertRuleMatchesNameRuleAndEntry loads a Packetbeat blacklist rule
// and checks that a flow to a listed address is a hit that names the rule
// file, the rule and the entry, inline or from the !file list.
func TestElastAlertRuleMatchesNameRuleAndEntry(t *testing.T) {
	results, err := LoadBlocklists([]string{filepath.Join(elastAlertDir, "GENERATED_packetbeat-c2-destinations.yaml")})
	require.NoError(t, err)
	require.Len(t, results, 1)
	res := results[0]
	const name = "GENERATED_packetbeat-c2-destinations.yaml"
	require.Equal(t, name, res.Name)
	require.Equal(t, FormatElastAlert, res.Format)
	require.Equal(t, "Packetbeat flows to known C2 servers", res.ElastAlert.Name)
	require.Equal(t, "destination.ip", res.ElastAlert.CompareKey)
	require.Equal(t, Outbound, res.ElastAlert.Direction)
	require.Equal(t, "outbound (destination)", res.ElastAlert.Side())

	inline := `ElastAlert rule "Packetbeat flows to known C2 servers" (destination.ip)`
	file := inline + ", !file GENERATED_c2-ips.txt"
	require.Equal(t, []Entry{
		{Prefix: netip.MustParsePrefix("1.19.6.4/32"), Text: "1.19.6.4", Label: inline, Line: 9},
		{Prefix: netip.MustParsePrefix("185.220.101.0/24"), Text: "185.220.101.0/24", Label: inline, Line: 10},
		{Prefix: netip.MustParsePrefix("2a0b:4142:aaa::1/128"), Text: "2a0b:4142:aaa::1", Label: inline, Line: 11},
		{Prefix: netip.MustParsePrefix("101.50.83.146/32"), Text: "101.50.83.146", Label: file, Line: 2},
		{Prefix: netip.MustParsePrefix("103.145.13.0/24"), Text: "103.145.13.0/24", Label: file, Line: 5},
	}, res.Entries)
	require.Equal(t, 2, res.BadLines)
	require.Equal(t, name+`:12: a host name, not an address: Cordon matches the addresses of flows; list the host's IP addresses instead (ElastAlert compares entries as exact strings): "evil.example.com"`, res.Errors[0].Error())
	require.Equal(t, filepath.Join(elastAlertDir, "GENERATED_c2-ips.txt")+`:4: wildcards are not supported (the entry is not a pattern): write the network as a CIDR, e.g. 45.9.148.0/24 (ElastAlert compares entries as exact strings): "45.9.148.*"`, res.Errors[1].Error())

	events := `{"@timestamp":"2024-05-01T12:00:00Z","type":"flow","flow":{"final":true},"source":{"ip":"10.0.1.10","port":51544},"destination":{"ip":"1.19.6.4","port":443},"network":{"transport":"tcp"},"cloud":{"instance":{"id":"i-0aaaaaaaaaaaaaaa1"}}}
{"@timestamp":"2024-05-01T12:00:01Z","type":"flow","flow":{"final":true},"source":{"ip":"10.0.1.11","port":40000},"destination":{"ip":"103.145.13.77","port":22},"network":{"transport":"tcp"},"cloud":{"instance":{"id":"i-0aaaaaaaaaaaaaaa2"}}}
{"@timestamp":"2024-05-01T12:00:02Z","type":"flow","flow":{"final":true},"source":{"ip":"10.0.1.12","port":40001},"destination":{"ip":"45.9.148.3","port":80},"network":{"transport":"tcp"},"cloud":{"instance":{"id":"i-0aaaaaaaaaaaaaaa3"}}}
`
	d := NewDetector(NewMatcherHolder(NewMatcher(ListsOf(results), MatcherConfig{})), Options{})
	hits, _, err := d.Scan(context.Background(), strings.NewReader(events), "flows.ndjson")
	require.NoError(t, err)
	require.Len(t, hits, 2, "45.9.148.* is refused, not expanded")
	require.Equal(t, []Match{{List: name, Entry: res.Entries[0]}}, hits[0].Matches)
	require.Equal(t, `i-0aaaaaaaaaaaaaaa1 outbound tcp 10.0.1.10:51544 -> 1.19.6.4:443: 1.19.6.4 is on `+name+` (1.19.6.4 `+inline+`)`, hits[0].Reason())
	require.Equal(t, []Match{{List: name, Entry: res.Entries[4]}}, hits[1].Matches)
	require.Equal(t, `i-0aaaaaaaaaaaaaaa2 outbound tcp 10.0.1.11:40000 -> 103.145.13.77:22: 103.145.13.77 is on `+name+` (103.145.13.0/24 `+file+`)`, hits[1].Reason())
}

func TestElastAlertRulesAreDetected(t *testing.T) {
	rule := []byte("# a rule\nname: x\ntype: blacklist\ncompare_key: dst_ip\nblacklist:\n  - 1.2.3.4\n")
	for _, name := range []string{"r.yaml", "r.YML", "rules/r.yml"} {
		require.Equal(t, FormatElastAlert, DetectFormat(name, nil), name)
	}
	// By content, whatever the name: "compare_key: dst_ip" must not read as
	// the Feodo CSV's dst_ip column.
	for _, name := range []string{"r.rule", "r", "r.txt", "r.csv"} {
		require.Equal(t, FormatElastAlert, DetectFormat(name, rule), name)
	}
	// A list is not a rule; "type:" alone or indented does not make one.
	require.Equal(t, FormatPlain, DetectFormat("l.txt", []byte("1.2.3.4\n2001:db8::/32\n")))
	require.Equal(t, FormatPlain, DetectFormat("l.txt", []byte("type: blacklist\n")))
	require.Equal(t, FormatPlain, DetectFormat("l.txt", []byte("x:\n  type: blacklist\n  compare_key: a\n")))
	require.Equal(t, FormatFireHOL, DetectFormat("l.netset", []byte("# FireHOL type: x\n# name: y\n1.2.3.0/24\n")))

	// A rule without a YAML extension loads from a directory with its !file
	// list next to it, beside an ordinary list.
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "c2.rule"), "name: C2\ntype: blacklist\ncompare_key: source.ip\nblacklist:\n  - '!file ips/c2.txt'\n  - 5.6.7.8\n")
	writeFile(t, filepath.Join(dir, "ips", "c2.txt"), "9.9.9.9\r\n")
	results, err := LoadBlocklistDir(dir)
	require.NoError(t, err)
	require.Len(t, results, 2)
	require.Equal(t, "c2.rule", results[0].Name)
	require.Equal(t, FormatElastAlert, results[0].Format)
	require.Equal(t, Inbound, results[0].ElastAlert.Direction)
	require.Equal(t, []string{"9.9.9.9", "5.6.7.8"}, entryTexts(results[0]))
	require.Equal(t, "ips/c2.txt", results[1].Name, "a !file list inside a list directory is a list of its own too")
	require.Equal(t, []string{"9.9.9.9"}, entryTexts(results[1]))
}

func TestElastAlertRuleProblems(t *testing.T) {
	for _, tc := range []struct{ name, rule, refused string }{
		{"no blacklist", "type: blacklist\ncompare_key: destination.ip\n", `without a "blacklist:" list`},
		{"keys swapped", "type: blacklist\ncompare_key: destination.ip\nwhitelist: [1.2.3.4]\n", `its entries are under "whitelist:"`},
		{"blacklist not a list", "type: blacklist\ncompare_key: destination.ip\nblacklist: 1.2.3.4\n", "line 3: blacklist: must be a list"},
		{"compound compare_key", "type: blacklist\ncompare_key: [source.ip, destination.ip]\nblacklist: []\n", "compare_key is a list"},
		{"host's own address", "type: blacklist\ncompare_key: host.ip\nblacklist: []\n", `compare_key "host.ip" is the monitored host's own address`},
		{"duplicate key", "type: blacklist\ncompare_key: source.ip\ncompare_key: destination.ip\nblacklist: []\n", `key "compare_key" appears twice (lines 2 and 3)`},
		{"import", "import: base.yaml\ncompare_key: source.ip\nblacklist: []\n", "does not follow ElastAlert's import:"},
		{"empty", "# nothing\n", "empty file"},
		{"missing include", "type: blacklist\ncompare_key: source.ip\nblacklist:\n  - '!file nope.txt'\n", "line 4: !file nope.txt: open "},
		{"scalar", "just text\n", "the YAML is a single value, not a rule"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := ParseElastAlertRule(strings.NewReader(tc.rule), "r.yaml", t.TempDir())
			require.Nil(t, res)
			require.ErrorContains(t, err, "blocklist r.yaml: ")
			require.ErrorContains(t, err, tc.refused)
		})
	}

	// Entries: unquoted "!file" (a YAML tag), keyword suffixes, bad entries
	// reported with their line while the rest loads.
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "more.txt"), "\xef\xbb\xbf# comment\n198.51.100.7\n")
	rule := "type: blacklist\ncompare_key: destination.ip.keyword\nblacklist:\n" +
		"  - !file more.txt\n" + // line 4
		"  - 10\n" + // 5
		"  - [1.2.3.4]\n" + // 6
		"  -\n" + // 7
		"  - 1.2.3.4-1.2.3.9\n" + // 8
		"  - ' 203.0.113.9 '\n" + // 9
		"  - '!file'\n" // 10
	res, err := ParseElastAlertRule(strings.NewReader(rule), "r.yaml", dir)
	require.NoError(t, err)
	require.Equal(t, Outbound, res.ElastAlert.Direction)
	require.Equal(t, []string{filepath.Join(dir, "more.txt")}, res.ElastAlert.Includes)
	require.Equal(t, []string{"198.51.100.7", "203.0.113.9"}, entryTexts(res))
	var got []string
	for _, e := range res.Errors {
		got = append(got, e.Error())
	}
	require.Equal(t, []string{
		`r.yaml:5: not an IP address or CIDR (ElastAlert compares entries as exact strings): "10"`,
		`r.yaml:6: blacklist entry is a list, not a single address`,
		`r.yaml:7: empty blacklist entry`,
		`r.yaml:8: address ranges are not supported (ElastAlert compares entries as exact strings): "1.2.3.4-1.2.3.9"`,
		`r.yaml:10: not a "!file /path/to/list" include: "!file"`,
	}, got)
}

func TestAddressFieldDirections(t *testing.T) {
	for key, want := range map[string]Direction{
		"destination.ip": Outbound, "dst_ip": Outbound, "dest_ip": Outbound, "server.ip": Outbound, "id.resp_h": Outbound,
		"destination.ip.keyword": Outbound, "DST_IP": Outbound,
		"source.ip": Inbound, "src_ip": Inbound, "client.ip": Inbound, "clientip.raw": Inbound, "id.orig_h": Inbound,
		"meta.ip": "", "related.ip": "", "ip": "", "json.peer_ip": "",
	} {
		dir, ok, why := addressField(key)
		require.True(t, ok, "%s: %s", key, why)
		require.Equal(t, want, dir, key)
	}
	for _, key := range []string{"message", "hash_md5", "zip", "username", "type", "Query", "host.ip", "observer.ip"} {
		_, ok, why := addressField(key)
		require.False(t, ok, key)
		require.NotEmpty(t, why)
	}
}

func TestWildcardHint(t *testing.T) {
	for in, want := range map[string]string{
		"210.120.*":   "e.g. 210.120.0.0/16",
		"10.*.*.*":    "e.g. 10.0.0.0/8",
		"45.9.148.*":  "e.g. 45.9.148.0/24",
		"1.2.*.4":     "write the network as a CIDR",
		"*":           "write the network as a CIDR",
		"*.evil.com":  "write the network as a CIDR",
		"300.1.*":     "write the network as a CIDR",
		"1.2.3.4.*.*": "write the network as a CIDR",
	} {
		_, err := ParsePrefix(in)
		require.ErrorContains(t, err, "wildcards are not supported", in)
		require.ErrorContains(t, err, want, in)
		if !strings.Contains(want, "e.g.") {
			require.NotContains(t, err.Error(), "e.g.", in)
		}
	}
}

func entryTexts(res *LoadResult) []string {
	var out []string
	for _, e := range res.Entries {
		out = append(out, e.Text)
	}
	return out
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
}
