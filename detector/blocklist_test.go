package detector

import (
	"bytes"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const blocklistDir = "../testdata/blocklists"

// corpusLists is every list under testdata/blocklists with the entry count
// and first/last entries counted WITHOUT this package's parser:
//
//	tr -d '\r' < FILE | grep -v -E '^\s*[#;]' | grep -c -v -E '^\s*$'
//
// (the Feodo CSV: grep -v '^#' FILE | grep -c -v '^"first_seen_utc"', i.e.
// data rows minus the header row), and first/last entry line numbers with
// grep -n. Cross-checked against the counts in the corpus SOURCES.md, which
// agree except spamhaus_drop_2025-01-17.txt: SOURCES.md says 1386, the file
// has 1390 lines = 4 ';' header lines + 1385 CIDRs + '; EOF'.
var corpusLists = []struct {
	name             string
	format           Format
	entries          int
	firstLine        int
	firstText, label string // first entry and its label
	lastLine         int
	lastText         string
}{
	{"emergingthreats_compromised-ips.txt", FormatPlain, 539, 1, "101.100.216.61", "", 539, "97.74.93.167"},
	{"feodotracker_ipblocklist_2024-04-04.csv", FormatFeodoCSV, 28, 10, "192.9.135.73", "Pikabot", 37, "172.233.221.61"},
	{"feodotracker_ipblocklist_recommended_2022-07-08.txt", FormatPlain, 244, 10, "8.8.8.8", "", 253, "97.107.134.115"},
	{"firehol/blocklist_de.ipset.first3000", FormatFireHOL, 3000, 31, "1.20.150.200", "", 3030, "20.63.219.114"},
	{"firehol/bruteforceblocker.ipset", FormatFireHOL, 547, 35, "1.27.251.252", "", 581, "223.123.92.56"},
	{"firehol/dshield.netset", FormatFireHOL, 20, 31, "45.198.224.0/24", "", 50, "199.45.154.0/24"},
	{"firehol/et_block.netset", FormatFireHOL, 1624, 34, "1.10.16.0/20", "", 1657, "223.254.0.0/16"},
	{"firehol/et_compromised.ipset", FormatFireHOL, 539, 32, "1.27.251.252", "", 570, "222.108.250.153"},
	{"firehol/feodo.ipset", FormatFireHOL, 1, 32, "50.16.16.211", "", 32, "50.16.16.211"},
	{"firehol/feodo_badips.ipset", FormatFireHOL, 5, 43, "27.133.154.218", "", 47, "178.62.3.223"},
	{"firehol/firehol_level1.netset", FormatFireHOL, 4631, 34, "0.0.0.0/8", "", 4664, "224.0.0.0/3"},
	{"firehol/firehol_level2.netset.first3000", FormatFireHOL, 3000, 32, "1.9.211.178", "", 3031, "46.100.12.125"},
	{"firehol/spamhaus_drop.netset", FormatFireHOL, 1599, 32, "1.10.16.0/20", "", 1630, "223.254.0.0/16"},
	{"firehol/spamhaus_edrop.netset", FormatFireHOL, 336, 31, "2.57.122.0/24", "", 366, "221.227.188.0/22"},
	{"spamhaus_drop_2023-02-20.txt", FormatSpamhaus, 936, 5, "1.10.16.0/20", "SBL256894", 940, "223.254.0.0/16"},
	{"spamhaus_drop_2025-01-17.txt", FormatSpamhaus, 1385, 5, "1.10.16.0/20", "SBL256894", 1389, "223.254.0.0/16"},
	{"spamhaus_dropv6_2025-01-15.txt", FormatSpamhaus, 78, 5, "2001:678:6c4::/48", "SBL626637", 82, "2c0f:6c0::/28"},
	{"spamhaus_edrop_2023-12-01.txt", FormatSpamhaus, 289, 5, "2.56.247.0/24", "SBL620754", 293, "221.227.188.0/22"},
	{"spamhaus_edrop_2024-10-18_merged_notice.txt", FormatSpamhaus, 0, 0, "", "", 0, ""},
}

// corpusTotal is the sum of corpusLists' entries.
const corpusTotal = 18801

func TestCorpusListsParse(t *testing.T) {
	results, err := LoadBlocklistDir(blocklistDir)
	require.NoError(t, err)
	require.Len(t, results, len(corpusLists), "SOURCES.md and .gitattributes are not lists")
	total := 0
	for i, want := range corpusLists {
		res := results[i]
		t.Run(want.name, func(t *testing.T) {
			require.Equal(t, want.name, res.Name)
			require.Equal(t, want.format, res.Format)
			require.Empty(t, res.Errors)
			require.Zero(t, res.BadLines)
			require.Len(t, res.Entries, want.entries)
			if want.entries == 0 {
				return
			}
			first, last := res.Entries[0], res.Entries[len(res.Entries)-1]
			require.Equal(t, want.firstText, first.Text)
			require.Equal(t, want.firstLine, first.Line)
			require.Equal(t, want.label, first.Label)
			require.Equal(t, netip.MustParsePrefix(canonical(want.firstText)), first.Prefix)
			require.Equal(t, want.lastText, last.Text)
			require.Equal(t, want.lastLine, last.Line)
		})
		total += len(res.Entries)
	}
	require.Equal(t, corpusTotal, total)
}

// canonical turns "1.2.3.4" into "1.2.3.4/32".
func canonical(s string) string {
	if strings.Contains(s, "/") {
		return s
	}
	if strings.Contains(s, ":") {
		return s + "/128"
	}
	return s + "/32"
}

func TestLoadBlocklistFileNamesByBaseName(t *testing.T) {
	res, err := LoadBlocklistFile(filepath.Join(blocklistDir, "feodotracker_ipblocklist_recommended_2022-07-08.txt"))
	require.NoError(t, err)
	require.Equal(t, "feodotracker_ipblocklist_recommended_2022-07-08.txt", res.Name)
	require.Equal(t, FormatPlain, res.Format)
	require.Len(t, res.Entries, 244)
	// CRLF file: no '\r' survives in the entry text.
	for _, e := range res.Entries {
		require.NotContains(t, e.Text, "\r")
	}
}

func TestFeodoCSVLabelsAndColumns(t *testing.T) {
	res, err := LoadBlocklistFile(filepath.Join(blocklistDir, "feodotracker_ipblocklist_2024-04-04.csv"))
	require.NoError(t, err)
	require.Len(t, res.Entries, 28)
	for _, e := range res.Entries {
		require.Equal(t, "Pikabot", e.Label, "line %d", e.Line)
		require.Equal(t, 32, e.Prefix.Bits())
	}
	// abuse.ch sometimes comments the header out: the Feodo layout is assumed.
	in := "# \"first_seen_utc\",\"dst_ip\",\"dst_port\",\"c2_status\",\"last_online\",\"malware\"\r\n" +
		"\"2024-02-08 19:20:49\",\"85.239.243.155\",\"5000\",\"offline\",\"2024-03-11\",\"Pikabot\"\r\n" +
		"\"2024-02-08 19:20:49\",\"not-an-ip\",\"5000\",\"offline\",\"2024-03-11\",\"Pikabot\"\r\n" +
		"\"broken\n" // unterminated quote: reported, not fatal
	res, err = ParseBlocklist(strings.NewReader(in), "feodo.csv", FormatFeodoCSV)
	require.NoError(t, err)
	require.Len(t, res.Entries, 1)
	require.Equal(t, Entry{Prefix: netip.MustParsePrefix("85.239.243.155/32"), Text: "85.239.243.155", Label: "Pikabot", Line: 2}, res.Entries[0])
	require.Equal(t, 2, res.BadLines)
	require.Equal(t, `feodo.csv:3: not an IP address or CIDR: "2024-02-08 19:20:49,not-an-ip,5000,offline,2024-03-11,Pikabot"`, res.Errors[0].Error())
	require.Equal(t, 4, res.Errors[1].Line)
	require.Contains(t, res.Errors[1].Reason, "bad CSV")
}

func TestBadLinesReportedRestLoaded(t *testing.T) {
	in := "# header\r\n" + // 1
		"\r\n" + // 2 blank
		"1.2.3.4   \r\n" + // 3 trailing spaces, CRLF
		"   \t\n" + // 4 blank
		"10.0.0.0/33\n" + // 5 bad bits
		"999.1.1.1\n" + // 6 bad address
		"2001:db8::/32 # docs range\n" + // 7 trailing comment becomes the label
		"1.2.3.4-1.2.3.9\n" + // 8 range
		"fe80::1%eth0\n" + // 9 zone
		"5.6.7.8 junk\n" + // 10 extra text
		"::ffff:9.9.9.9\n" + // 11 IPv4-mapped: stored as IPv4
		"1.2.3.77/24\n" + // 12 host bits: masked
		"8.8.4.4" // 13 no final newline
	res, err := ParseBlocklist(strings.NewReader(in), "mixed.txt", "")
	require.NoError(t, err)
	require.Equal(t, FormatPlain, res.Format)
	got := make([]string, len(res.Entries))
	for i, e := range res.Entries {
		got[i] = fmt.Sprintf("%d %s %s %q", e.Line, e.Prefix, e.Text, e.Label)
	}
	require.Equal(t, []string{
		`3 1.2.3.4/32 1.2.3.4 ""`,
		`7 2001:db8::/32 2001:db8::/32 "docs range"`,
		`11 9.9.9.9/32 ::ffff:9.9.9.9 ""`,
		`12 1.2.3.0/24 1.2.3.77/24 ""`,
		`13 8.8.4.4/32 8.8.4.4 ""`,
	}, got)
	require.Equal(t, 5, res.BadLines)
	var msgs []string
	for _, e := range res.Errors {
		msgs = append(msgs, e.Error())
	}
	require.Equal(t, []string{
		`mixed.txt:5: not an IP address or CIDR: "10.0.0.0/33"`,
		`mixed.txt:6: not an IP address or CIDR: "999.1.1.1"`,
		`mixed.txt:8: address ranges are not supported: "1.2.3.4-1.2.3.9"`,
		`mixed.txt:9: zoned IPv6 address: "fe80::1%eth0"`,
		`mixed.txt:10: unexpected text after the address: "5.6.7.8 junk"`,
	}, msgs)
}

func TestSpamhausLinesAndErrors(t *testing.T) {
	in := "; Spamhaus DROP List\n" +
		"1.10.16.0/20 ; SBL256894\n" +
		"2001:678:6c4::/48 ; SBL626637\n" +
		"1.19.0.0/16;SBL434604\n" +
		"bogus ; SBL1\n" +
		"; EOF\n"
	res, err := ParseBlocklist(strings.NewReader(in), "drop.txt", "")
	require.NoError(t, err)
	require.Equal(t, FormatSpamhaus, res.Format)
	require.Len(t, res.Entries, 3)
	require.Equal(t, "SBL256894", res.Entries[0].Label)
	require.Equal(t, "SBL626637", res.Entries[1].Label)
	require.Equal(t, "SBL434604", res.Entries[2].Label)
	require.Equal(t, []LineError{{File: "drop.txt", Line: 5, Text: "bogus ; SBL1", Reason: "not an IP address or CIDR"}}, res.Errors)
}

// The Spamhaus JSON-lines flavour is not in the corpus; this sample is
// hand-written in the shape of drop_v4.json ({"cidr","sblid","rir"} lines and
// a trailing metadata line), as parsed by public Spamhaus clients.
func TestSpamhausJSONLines(t *testing.T) {
	in := `{"cidr":"1.10.16.0/20","sblid":"SBL256894","rir":"apnic"}
{"cidr":"2001:678:6c4::/48","sblid":"SBL626637","rir":"ripencc"}
{"cidr":"nope","sblid":"SBL1"}
{"sblid":"SBL2"}
{not json
{"type":"metadata","timestamp":1737133427,"size":51234,"records":2,"copyright":"(c) 2025 The Spamhaus Project SLU"}
`
	res, err := ParseBlocklist(strings.NewReader(in), "drop_v4.json", "")
	require.NoError(t, err)
	require.Equal(t, FormatSpamhausJSON, res.Format)
	require.Len(t, res.Entries, 2)
	require.Equal(t, Entry{Prefix: netip.MustParsePrefix("1.10.16.0/20"), Text: "1.10.16.0/20", Label: "SBL256894", Line: 1}, res.Entries[0])
	require.Equal(t, 3, res.BadLines)
	require.Equal(t, []int{3, 4, 5}, []int{res.Errors[0].Line, res.Errors[1].Line, res.Errors[2].Line})
	require.Equal(t, "no cidr", res.Errors[1].Reason)
}

func TestDetectFormat(t *testing.T) {
	for _, tc := range []struct {
		name, head string
		want       Format
	}{
		{"x.netset", "#\n# ipv4 hash:net ipset\n#\n1.2.3.0/24\n", FormatFireHOL},
		{"x.ipset.first3000", "1.2.3.4\n", FormatFireHOL},
		{"list.txt", "#\n# firehol_level1\n#\n# ipv4 hash:net ipset\n0.0.0.0/8\n", FormatFireHOL},
		{"drop.txt", "; Spamhaus DROP List\n1.10.16.0/20 ; SBL256894\n", FormatSpamhaus},
		{"edrop.txt", "; This list has been merged\n; EOF\n", FormatSpamhaus},
		{"drop_v4.json", `{"cidr":"1.10.16.0/20","sblid":"SBL256894","rir":"apnic"}` + "\n", FormatSpamhausJSON},
		{"feed", `{"cidr":"1.10.16.0/20"}`, FormatSpamhausJSON},
		{"ipblocklist.csv", "#\n\"first_seen_utc\",\"dst_ip\"\n", FormatFeodoCSV},
		{"export", "# x\n\"first_seen_utc\",\"dst_ip\",\"dst_port\"\n", FormatFeodoCSV},
		{"compromised-ips.txt", "1.2.3.4\n5.6.7.8\n", FormatPlain},
		{"ipblocklist.txt", "#####\r\n# DstIP\r\n8.8.8.8\r\n", FormatPlain},
		{"empty", "", FormatPlain},
	} {
		require.Equal(t, tc.want, DetectFormat(tc.name, []byte(tc.head)), tc.name)
	}
}

func TestLongLineReportedNotFatal(t *testing.T) {
	in := "1.1.1.1\n" + strings.Repeat("9", 200<<10) + "\n2.2.2.2\n"
	res, err := ParseBlocklist(strings.NewReader(in), "long.txt", FormatPlain)
	require.NoError(t, err)
	require.Len(t, res.Entries, 2)
	require.Equal(t, 3, res.Entries[1].Line)
	require.Equal(t, 1, res.BadLines)
	require.Equal(t, 2, res.Errors[0].Line)
	require.Contains(t, res.Errors[0].Reason, "line longer than")
}

func TestErrorsCappedButCounted(t *testing.T) {
	var b strings.Builder
	for range MaxLineErrors + 50 {
		b.WriteString("bad\n")
	}
	b.WriteString("1.2.3.4\n")
	res, err := ParseBlocklist(strings.NewReader(b.String()), "bad.txt", FormatPlain)
	require.NoError(t, err)
	require.Len(t, res.Entries, 1)
	require.Len(t, res.Errors, MaxLineErrors)
	require.Equal(t, MaxLineErrors+50, res.BadLines)
}

// millionLines writes n blocklist lines: IPv4 /32s, IPv4 CIDRs and IPv6
// CIDRs, all distinct.
func millionLines(n int) []byte {
	var b bytes.Buffer
	b.Grow(n * 20)
	b.WriteString("# synthetic list\n")
	for i := range n {
		switch i % 4 {
		case 0, 1:
			fmt.Fprintf(&b, "%d.%d.%d.%d\n", 1+i>>24&0x7f, i>>16&0xff, i>>8&0xff, i&0xff)
		case 2:
			fmt.Fprintf(&b, "%d.%d.%d.0/24\n", 128+i>>16&0x3f, i>>8&0xff, i&0xff)
		default:
			fmt.Fprintf(&b, "2a0%x:%x:%x::/48\n", i>>24&0xf, i>>12&0xfff, i&0xfff)
		}
	}
	return b.Bytes()
}

// A list of a million entries loads and builds a matcher. No wall-clock
// assertion here: BenchmarkLoadMillion measures the time.
func TestLoadMillionEntries(t *testing.T) {
	if testing.Short() {
		t.Skip("1M-entry list: skipped with -short")
	}
	const n = 1_000_000
	res, err := ParseBlocklist(bytes.NewReader(millionLines(n)), "million.txt", "")
	require.NoError(t, err)
	require.Zero(t, res.BadLines)
	require.Len(t, res.Entries, n)
	m := NewMatcher([]*List{&res.List}, MatcherConfig{})
	v4, v6 := m.Prefixes()
	require.Equal(t, n, v4+v6)
	for _, i := range []int{0, 1, 2, 3, n / 2, n - 1} {
		e := res.Entries[i]
		matches, allowed := m.Lookup(e.Prefix.Addr())
		require.False(t, allowed)
		require.Len(t, matches, 1)
		require.Equal(t, e, matches[0].Entry)
	}
}

// A file that is not a blocklist at all (an AWS profile) is reported line by
// line, but its credentials never reach the report (and so the logs).
func TestBadLinesNeverRepeatSecrets(t *testing.T) {
	in := "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\nregion: us-east-1\nPASSWORD=hunter2\n"
	res, err := ParseBlocklist(strings.NewReader(in), "profile", FormatPlain)
	require.NoError(t, err)
	require.Equal(t, 5, res.BadLines)
	var all []string
	for _, e := range res.Errors {
		all = append(all, e.Error())
	}
	joined := strings.Join(all, "\n")
	require.NotContains(t, joined, "wJalrXUtnFEMI")
	require.NotContains(t, joined, "AKIAIOSFODNN7EXAMPLE")
	require.NotContains(t, joined, "hunter2")
	require.Contains(t, joined, "aws_secret_access_key = REDACTED")
	require.Contains(t, joined, "us-east-1", "other lines are kept for the report")
}
