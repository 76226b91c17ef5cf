package detector

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// label is one line of the corpus label file: which corpus lists contain
// destination.ip, computed by the corpus author with Python's ipaddress over
// every list, without an allowlist.
type label struct {
	Line        int      `json:"line"`
	Dataset     string   `json:"dataset"`
	SourceIP    string   `json:"source.ip"`
	Destination string   `json:"destination.ip"`
	Lists       []string `json:"destination_in_lists"`
}

func readLabels(t *testing.T) []label {
	t.Helper()
	f, err := os.Open(labels300)
	require.NoError(t, err)
	defer f.Close()
	var out []label
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l label
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l))
		out = append(out, l)
	}
	require.NoError(t, sc.Err())
	require.Len(t, out, 300)
	return out
}

// finalFlowLines returns the lines of the 300-event file that are final flow
// records, decoded independently of the package (generic maps).
func finalFlowLines(t *testing.T) map[int]bool {
	t.Helper()
	f, err := os.Open(events300)
	require.NoError(t, err)
	defer f.Close()
	out := map[int]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		var doc map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &doc))
		flow, _ := doc["flow"].(map[string]any)
		if doc["type"] == "flow" && flow["final"] == true {
			out[n] = true
		}
	}
	return out
}

// stdlibAllowed is the default allowlist written with net/netip's own
// predicates, independent of DefaultAllowlist.
func stdlibAllowed(a netip.Addr) bool {
	return a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsMulticast() || a.IsUnspecified() || (a.Is4() && a.As4()[0] == 0)
}

// expectedFromLabels derives the expected hits from the label file:
// destinations with a non-empty list set that the allowlist does not cover,
// each with exactly the labelled lists (paths made relative to
// testdata/blocklists, as LoadBlocklistDir names them). Sources are all VPC
// addresses (asserted), so no inbound hit is expected.
func expectedFromLabels(t *testing.T, labels []label, keep func(line int) bool) map[int][]string {
	t.Helper()
	want := map[int][]string{}
	for _, l := range labels {
		require.True(t, netip.MustParseAddr(l.SourceIP).IsPrivate(), "line %d: source %s", l.Line, l.SourceIP)
		if !keep(l.Line) || len(l.Lists) == 0 || stdlibAllowed(netip.MustParseAddr(l.Destination)) {
			continue
		}
		var lists []string
		for _, p := range l.Lists {
			lists = append(lists, strings.TrimPrefix(p, "blocklists/"))
		}
		slices.Sort(lists)
		want[l.Line] = lists
	}
	return want
}

func gotByLine(t *testing.T, hits []Hit) map[int][]string {
	t.Helper()
	got := map[int][]string{}
	for _, h := range hits {
		require.Equal(t, Outbound, h.Direction, h.Ref)
		require.NotContains(t, got, h.Line, "one hit per event")
		lists := h.Lists()
		slices.Sort(lists)
		got[h.Line] = lists
	}
	return got
}

func scanFile(t *testing.T, d *Detector, file string) ([]Hit, Stats) {
	t.Helper()
	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	hits, st, err := d.Scan(context.Background(), f, file[strings.LastIndexByte(file, '/')+1:])
	require.NoError(t, err)
	return hits, st
}

func TestLabelledEventsFinalFlows(t *testing.T) {
	labels := readLabels(t)
	final := finalFlowLines(t)
	require.Len(t, final, 107)
	want := expectedFromLabels(t, labels, func(line int) bool { return final[line] })
	// The same set written out (python over the two files: final flows with a
	// non-empty destination_in_lists; none of them has a private destination).
	require.Equal(t, []int{27, 67, 80, 85, 135, 137, 144, 162, 185, 196, 218, 222, 226, 245, 270, 274, 276, 295},
		slices.Sorted(maps.Keys(want)))

	d := NewDetector(NewMatcherHolder(corpusMatcher(t, MatcherConfig{})), Options{})
	hits, st := scanFile(t, d, events300)
	require.Equal(t, want, gotByLine(t, hits))
	require.Equal(t, Stats{
		Lines: 300, Events: 300, Considered: 107, Matched: 18, Hits: 18,
		Allowlisted: 107, // every final flow's 10.x source
		Skipped:     map[string]int{ReasonNotFlow: 140, ReasonNotFinal: 53},
	}, st)

	// Line 85, checked by eye: 10.0.4.31 -> 1.19.6.4:443, listed by five lists;
	// the most specific entry is a /16 (spamhaus DROP, FireHOL, ET).
	var h Hit
	for _, x := range hits {
		if x.Line == 85 {
			h = x
		}
	}
	require.Equal(t, netip.MustParseAddr("1.19.6.4"), h.BadIP)
	require.Equal(t, netip.MustParseAddr("10.0.4.31"), h.SourceIP)
	require.Equal(t, h.BadIP, h.DestinationIP)
	require.Equal(t, uint16(443), h.DestinationPort)
	require.Equal(t, "tcp", h.Transport)
	require.Equal(t, "1.19.0.0/16", h.Best().Text)
	require.Equal(t, "i-06e354b41b6b927eb", h.InstanceID)
	require.Equal(t, "123456789012", h.AccountID)
	require.Equal(t, "eu-west-1", h.Region)
	require.Equal(t, "ip-10-0-4-31", h.HostName)
	require.Equal(t, "GENERATED_packetbeat_ecs8_ec2_300events.ndjson:85", h.Ref)
	require.Equal(t, time.Date(2024, 5, 1, 12, 9, 48, 215e6, time.UTC), h.Time)
	require.Equal(t, "E3i9kM3jUOAJlRSVoAmVmqVgtKITeL2QzeNQ4AmVFJWgCZWapWC0og", h.FlowID)
	require.False(t, h.RawTruncated, "the line is 1802 bytes")
	require.Len(t, h.Raw, 1802)
	require.True(t, strings.HasPrefix(h.Raw, `{"@timestamp": "2024-05-01T12:09:48.215Z"`))
	for _, m := range h.Matches {
		if strings.HasPrefix(m.List, "spamhaus_drop_") {
			require.Equal(t, "SBL434604", m.Label)
		}
	}
	require.Contains(t, h.Reason(), "outbound tcp 10.0.4.31:")
	require.Contains(t, h.Reason(), "-> 1.19.6.4:443: 1.19.6.4 is on ")
	require.Contains(t, h.Reason(), "and 4 more lists")
}

func TestLabelledEventsAllEvents(t *testing.T) {
	labels := readLabels(t)
	want := expectedFromLabels(t, labels, func(int) bool { return true })
	// 70 labelled destinations, minus 18 DNS queries to the VPC resolver
	// 10.0.0.2 that only firehol_level1 (10.0.0.0/8) covers.
	require.Len(t, want, 52)
	resolver := 0
	for _, l := range labels {
		if l.Destination == "10.0.0.2" {
			require.Equal(t, []string{"blocklists/firehol/firehol_level1.netset"}, l.Lists)
			resolver++
		}
	}
	require.Equal(t, 18, resolver)

	d := NewDetector(NewMatcherHolder(corpusMatcher(t, MatcherConfig{})), Options{AllEvents: true})
	hits, st := scanFile(t, d, events300)
	require.Equal(t, want, gotByLine(t, hits))
	require.Equal(t, 300, st.Considered)
	require.Equal(t, 52, st.Matched)
	require.Equal(t, 300+18, st.Allowlisted) // 300 sources + 18 resolver destinations
	require.Empty(t, st.Skipped)
}

func TestInboundFromListedSource(t *testing.T) {
	in := `{"@timestamp":"2024-05-01T12:00:00Z","type":"flow","flow":{"final":true,"id":"in"},"source":{"ip":"1.19.6.4","port":40000},"destination":{"ip":"10.0.1.10","port":22},"network":{"transport":"tcp"},"cloud":{"instance":{"id":"i-0123456789abcdef0"}}}
{"type":"flow","flow":{"final":true},"source":{"ip":"10.0.1.10"},"destination":{"ip":"9.9.9.9"}}
{"type":"flow","flow":{"final":false},"source":{"ip":"10.0.1.10"},"destination":{"ip":"1.19.6.4"}}
`
	m := NewMatcher([]*List{{Name: "drop", Entries: []Entry{{Prefix: netip.MustParsePrefix("1.19.0.0/16"), Text: "1.19.0.0/16", Label: "SBL434604", Line: 6}}}}, MatcherConfig{})
	d := NewDetector(NewMatcherHolder(m), Options{})
	hits, st, err := d.Scan(context.Background(), strings.NewReader(in), "in.ndjson")
	require.NoError(t, err)
	require.Len(t, hits, 1)
	h := hits[0]
	require.Equal(t, Inbound, h.Direction)
	require.Equal(t, netip.MustParseAddr("1.19.6.4"), h.BadIP)
	require.Equal(t, h.BadIP, h.SourceIP)
	require.Equal(t, netip.MustParseAddr("10.0.1.10"), h.DestinationIP)
	require.Equal(t, uint16(22), h.DestinationPort)
	require.Equal(t, "i-0123456789abcdef0", h.InstanceID)
	require.Equal(t, []Match{{List: "drop", Entry: Entry{Prefix: netip.MustParsePrefix("1.19.0.0/16"), Text: "1.19.0.0/16", Label: "SBL434604", Line: 6}}}, h.Matches)
	require.False(t, h.RawTruncated)
	require.Equal(t, "in.ndjson:1", h.Ref)
	require.Equal(t, "i-0123456789abcdef0 inbound tcp 1.19.6.4:40000 -> 10.0.1.10:22: 1.19.6.4 is on drop (1.19.0.0/16 SBL434604)", h.Reason())
	require.Equal(t, Stats{Lines: 3, Events: 3, Considered: 2, Matched: 1, Hits: 1, Allowlisted: 2,
		Skipped: map[string]int{ReasonNotFinal: 1}}, st)
}

func TestGoldenDNSHitsFeodoWithAllEvents(t *testing.T) {
	// The Beats golden DNS query goes to 8.8.8.8, which the Capitaplc copy of
	// the Feodo recommended list contains (corpus gotcha 3). It is a
	// transaction, so only AllEvents looks at it.
	m := corpusMatcher(t, MatcherConfig{})
	hits, st := scanFile(t, NewDetector(NewMatcherHolder(m), Options{}), goldenHTTP)
	require.Empty(t, hits)
	require.Equal(t, map[string]int{ReasonNotFlow: 2}, st.Skipped)

	hits, _ = scanFile(t, NewDetector(NewMatcherHolder(m), Options{AllEvents: true}), goldenHTTP)
	require.Len(t, hits, 1)
	require.Equal(t, netip.MustParseAddr("8.8.8.8"), hits[0].BadIP)
	require.Equal(t, []string{"feodotracker_ipblocklist_recommended_2022-07-08.txt"}, hits[0].Lists())
	require.Equal(t, 2, hits[0].Line)
	require.Equal(t, uint16(53), hits[0].DestinationPort)
}

func TestSearchResponseHitsCarryDocumentID(t *testing.T) {
	m := corpusMatcher(t, MatcherConfig{})
	hits, _ := scanFile(t, NewDetector(NewMatcherHolder(m), Options{AllEvents: true}), searchFirst25)
	// Labels of NDJSON lines 1-25 with a non-empty, non-allowlisted list set.
	want := expectedFromLabels(t, readLabels(t), func(line int) bool { return line <= 25 })
	require.Len(t, hits, len(want))
	for _, h := range hits {
		require.NotEmpty(t, h.DocID)
		require.Equal(t, h.DocIndex+"/_doc/"+h.DocID, h.Ref)
		require.Contains(t, want, h.Index, "hit n of the response is NDJSON line n")
	}
}

func TestRawTruncatedOnRuneBoundary(t *testing.T) {
	m := NewMatcher([]*List{{Name: "x", Entries: []Entry{{Prefix: netip.MustParsePrefix("1.2.3.4/32"), Text: "1.2.3.4"}}}}, MatcherConfig{})
	doc := `{"type":"flow","flow":{"final":true},"destination":{"ip":"1.2.3.4"},"note":"` + strings.Repeat("é", 40) + `"}`
	d := NewDetector(NewMatcherHolder(m), Options{MaxRawBytes: 80})
	hits, _, err := d.Scan(context.Background(), strings.NewReader(doc), "r")
	require.NoError(t, err)
	require.Len(t, hits, 1)
	require.True(t, hits[0].RawTruncated)
	require.LessOrEqual(t, len(hits[0].Raw), 80)
	require.True(t, utf8.ValidString(hits[0].Raw))
}

func TestDetectorErrors(t *testing.T) {
	_, _, err := NewDetector(&MatcherHolder{}, Options{}).Scan(context.Background(), strings.NewReader("{}"), "x")
	require.ErrorIs(t, err, ErrNoMatcher)

	boom := errors.New("boom")
	in := `{"type":"flow","flow":{"final":true},"destination":{"ip":"1.2.3.4"}}`
	m := NewMatcher([]*List{{Name: "x", Entries: []Entry{{Prefix: netip.MustParsePrefix("1.2.3.4/32")}}}}, MatcherConfig{})
	d := NewDetector(NewMatcherHolder(m), Options{})
	_, err = d.ScanFunc(context.Background(), strings.NewReader(in+"\n"+in), "x", func(Hit) error { return boom })
	require.ErrorIs(t, err, boom)

	ev := &Event{Type: "flow", FlowFinal: true, DestinationIPs: addrs("1.2.3.4")}
	hits, err := d.Check(ev)
	require.NoError(t, err)
	require.Len(t, hits, 1)
	ev.FlowFinal = false
	hits, err = d.Check(ev)
	require.NoError(t, err)
	require.Empty(t, hits)
}
