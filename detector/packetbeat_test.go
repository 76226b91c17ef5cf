package detector

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	packetbeatDir = "../testdata/packetbeat/"
	events300     = packetbeatDir + "GENERATED_packetbeat_ecs8_ec2_300events.ndjson"
	labels300     = packetbeatDir + "GENERATED_packetbeat_ecs8_ec2_300events.labels.ndjson"
	searchFirst25 = packetbeatDir + "GENERATED_es_search_response_first25.json"
	goldenHTTP    = packetbeatDir + "beats_golden_http_basic_auth-expected.json"
)

// readAll collects copies of the events of a file or string.
func readAll(t *testing.T, name string, data []byte, opts ReadOptions) ([]Event, Stats) {
	t.Helper()
	var evs []Event
	st, err := ReadEvents(context.Background(), bytes.NewReader(data), name, opts, func(ev *Event) error {
		c := *ev
		c.SourceIPs, c.DestinationIPs = slices.Clone(ev.SourceIPs), slices.Clone(ev.DestinationIPs)
		c.Raw = bytes.Clone(ev.Raw)
		evs = append(evs, c)
		return nil
	})
	require.NoError(t, err)
	return evs, st
}

func readFile(t *testing.T, file string) ([]Event, Stats) {
	t.Helper()
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	name := file[strings.LastIndexByte(file, '/')+1:]
	return readAll(t, name, data, ReadOptions{})
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

func TestRead300GeneratedEvents(t *testing.T) {
	evs, st := readFile(t, events300)
	require.Equal(t, Stats{Lines: 300, Events: 300}, st)
	require.Len(t, evs, 300)

	// Counts from the corpus SOURCES.md (160 flow, 53 dns, 52 tls, 35 http)
	// and `grep -c '"final": true'` = 107.
	types := map[string]int{}
	final := 0
	for _, e := range evs {
		types[e.Type]++
		require.Equal(t, "network_traffic."+e.Type, e.Dataset)
		if e.IsFinalFlow() {
			final++
		}
	}
	require.Equal(t, map[string]int{"flow": 160, "dns": 53, "tls": 52, "http": 35}, types)
	require.Equal(t, 107, final)

	// Line 1, checked by eye against the file.
	e := evs[0]
	require.Equal(t, Event{
		File: "GENERATED_packetbeat_ecs8_ec2_300events.ndjson", Line: 1,
		Timestamp: time.Date(2024, 5, 1, 12, 0, 1, 479e6, time.UTC),
		Type:      "dns", Dataset: "network_traffic.dns",
		SourceIPs: addrs("10.0.2.17"), DestinationIPs: addrs("1.1.1.1"),
		SourcePort: 50768, DestinationPort: 53, Transport: "udp",
		CommunityID: "1:PZAPmqzWcMu8dncOmd9J4i8eyKk=",
		InstanceID:  "i-085a2fa5fa92cd19c", AccountID: "123456789012", Region: "us-east-1", HostName: "ip-10-0-2-17",
		Raw: e.Raw,
	}, e)
	require.Equal(t, "GENERATED_packetbeat_ecs8_ec2_300events.ndjson:1", e.Ref())
	require.True(t, bytes.HasPrefix(e.Raw, []byte(`{"@timestamp": "2024-05-01T12:00:01.479Z"`)))
}

func TestMalformedNDJSONCountedWithLineNumbers(t *testing.T) {
	good := `{"type":"flow","flow":{"final":true,"id":"x"},"source":{"ip":"10.0.0.1","port":1},"destination":{"ip":"1.2.3.4","port":443}}`
	in := strings.Join([]string{
		good,              // 1
		`{"type":"flow",`, // 2 truncated
		``,                // 3 blank: ignored
		`not json at all`, // 4
		`42`,              // 5
		`{"type":"flow","destination":{"ip":"1.2.3.999"}}`,                        // 6
		`{"type":"flow","destination":{"ip":12345}}`,                              // 7
		`{"type":"flow","destination":"1.2.3.4"}`,                                 // 8 wrong type (object expected)
		`{"type":"flow","flow":{"final":"maybe"},"destination":{"ip":"1.2.3.4"}}`, // 9
		`{"type":"flow","source":{"port":1}}`,                                     // 10 no addresses
		`{"type":"flow","destination":{"ip":"1.2.3.4","port":70000}}`,             // 11
		`{"@timestamp":"yesterday","destination":{"ip":"1.2.3.4"}}`,               // 12
		`{"type":["flow"],"destination":{"ip":"1.2.3.4"}}`,                        // 13 wrong type
		"\x00\x01garbage",                   // 14
		`[{"destination.ip":"5.6.7.8"}, 7]`, // 15: one event, one bad element
		good + "\r",                         // 16 CRLF
	}, "\n")
	evs, st := readAll(t, "bad.ndjson", []byte(in), ReadOptions{MaxSamples: 100})
	require.Len(t, evs, 3)
	require.Equal(t, []int{1, 15, 16}, []int{evs[0].Line, evs[1].Line, evs[2].Line})
	require.Equal(t, 1, evs[1].Index)
	require.Equal(t, 16, st.Lines)
	require.Equal(t, 3, st.Events)
	require.Equal(t, 13, st.Malformed)

	var got []string
	for _, p := range st.Samples {
		got = append(got, p.String())
	}
	require.Equal(t, []string{
		"bad.ndjson:2: malformed JSON: unexpected end of JSON input",
		"bad.ndjson:4: malformed JSON: invalid JSON",
		"bad.ndjson:5: not a JSON object: got number",
		`bad.ndjson:6: unparsable IP: destination.ip: "1.2.3.999"`,
		"bad.ndjson:7: wrong type: destination.ip: got a JSON number, want string or array",
		"bad.ndjson:8: wrong type: destination is a JSON string, want object",
		"bad.ndjson:9: wrong type: flow.final: got a JSON string, want bool",
		"bad.ndjson:10: no source.ip or destination.ip",
		"bad.ndjson:11: bad port: destination.port: 70000 is not a port number",
		`bad.ndjson:12: bad @timestamp: "yesterday" is not RFC 3339`,
		"bad.ndjson:13: wrong type: type is a JSON array, want string",
		"bad.ndjson:14: malformed JSON: invalid JSON",
		"bad.ndjson:15#2: not a JSON object: array element is number",
	}, got)
	require.Equal(t, map[string]int{
		ReasonMalformedJSON: 3, ReasonNotObject: 2, ReasonBadIP: 1, ReasonWrongType: 4,
		ReasonNoAddress: 1, ReasonBadPort: 1, ReasonBadTimestamp: 1,
	}, st.Skipped)
}

func TestFlattenedGoldenFileParses(t *testing.T) {
	// A JSON array of two flattened-key documents (dns, http); elements
	// start on lines 2 and 79 (grep -n '^    {').
	evs, st := readFile(t, goldenHTTP)
	require.Zero(t, st.Malformed)
	require.Len(t, evs, 2)

	dns, http := evs[0], evs[1]
	require.Equal(t, []int{2, 79}, []int{dns.Line, http.Line})
	require.Equal(t, "beats_golden_http_basic_auth-expected.json:2#1", dns.Ref())
	require.Equal(t, "dns", dns.Type)
	require.Equal(t, "dns", dns.Dataset)
	require.Equal(t, addrs("172.31.98.49"), dns.SourceIPs)
	require.Equal(t, addrs("8.8.8.8"), dns.DestinationIPs)
	require.Equal(t, []uint16{51958, 53}, []uint16{dns.SourcePort, dns.DestinationPort})
	require.Equal(t, "udp", dns.Transport)
	require.Equal(t, "1:/Zwm1tJot2cAhFAO0OxKQHuXs3Y=", dns.CommunityID)
	require.False(t, dns.IsFlow())

	require.Equal(t, "http", http.Dataset)
	require.Equal(t, addrs("93.184.216.34"), http.DestinationIPs)
	require.Equal(t, uint16(80), http.DestinationPort)
	require.Equal(t, "tcp", http.Transport)
	require.True(t, bytes.HasPrefix(http.Raw, []byte("{")) && bytes.HasSuffix(http.Raw, []byte("}")))
	require.True(t, http.Timestamp.IsZero(), "golden files carry no @timestamp")
}

func TestSearchResponseParses(t *testing.T) {
	evs, st := readFile(t, searchFirst25)
	require.Zero(t, st.Malformed)
	require.Len(t, evs, 25)
	require.Equal(t, "d690c2582d20c27fd213", evs[0].DocID)
	require.Equal(t, ".ds-logs-network_traffic.dns-default-2024.05.01-000001", evs[0].DocIndex)
	require.Equal(t, ".ds-logs-network_traffic.dns-default-2024.05.01-000001/_doc/d690c2582d20c27fd213", evs[0].Ref())
	require.Equal(t, 1, evs[0].Line)
	require.Equal(t, 25, evs[24].Index)

	// The hits are the first 25 NDJSON documents.
	nd, _ := readFile(t, events300)
	for i, e := range evs {
		require.NotEmpty(t, e.DocID)
		n := nd[i]
		e.File, e.Line, e.Index, e.DocID, e.DocIndex, e.Raw, n.File, n.Line, n.Raw = "", 0, 0, "", "", nil, "", 0, nil
		require.Equal(t, n, e, "hit %d", i+1)
	}

	// The same response compacted onto one NDJSON line, and as bare hits.
	data, err := os.ReadFile(searchFirst25)
	require.NoError(t, err)
	var compact bytes.Buffer
	require.NoError(t, json.Compact(&compact, data))
	evs2, st2 := readAll(t, "compact.ndjson", append(compact.Bytes(), '\n'), ReadOptions{})
	require.Zero(t, st2.Malformed)
	require.Len(t, evs2, 25)
	require.Equal(t, "compact.ndjson:1#3", (&Event{File: "compact.ndjson", Line: 1, Index: 3}).Ref())
	require.Equal(t, evs[3].DocID, evs2[3].DocID)

	hit := `{"_index":"packetbeat-7.17.0","_id":"abc","_source":{"type":"flow","flow":{"final":true},"destination":{"ip":"1.19.6.4"}}}`
	evs3, st3 := readAll(t, "hits.ndjson", []byte(hit+"\n"+hit+"\n"), ReadOptions{})
	require.Zero(t, st3.Malformed)
	require.Len(t, evs3, 2)
	require.Equal(t, "packetbeat-7.17.0/_doc/abc", evs3[1].Ref())
	require.Equal(t, 2, evs3[1].Line)
	require.True(t, evs3[1].IsFinalFlow())
}

func TestPrettyPrintedSamples(t *testing.T) {
	// Packetbeat 7.0: type flow, event.dataset flow, intermediate report.
	evs, st := readFile(t, packetbeatDir+"beats_sample_outputs_flow.json")
	require.Zero(t, st.Malformed)
	require.Len(t, evs, 1)
	require.True(t, evs[0].IsFlow())
	require.False(t, evs[0].IsFinalFlow())
	require.Equal(t, "EQwA////DP//////FBgBAAEIACfVnVpSVAASNQIKAAIPgtMmkVFbuwG7AAAAAAAAAA", evs[0].FlowID)
	require.Equal(t, addrs("130.211.38.145"), evs[0].DestinationIPs)
	require.Equal(t, "vagrant-2012-r2", evs[0].HostName)

	// Elastic Agent 8.6: IPv6 loopback flow, final.
	evs, _ = readFile(t, packetbeatDir+"integrations_network_traffic_flow_sample_event.json")
	require.Len(t, evs, 1)
	require.True(t, evs[0].IsFinalFlow())
	require.Equal(t, addrs("::1"), evs[0].DestinationIPs)
	require.Equal(t, uint16(8000), evs[0].DestinationPort)

	// Packetbeat 7.0 HTTP: no source/destination, only client/server.
	evs, _ = readFile(t, packetbeatDir+"beats_sample_outputs_http.json")
	require.Len(t, evs, 1)
	require.Equal(t, addrs("10.0.2.15"), evs[0].SourceIPs)
	require.Equal(t, addrs("192.16.31.23"), evs[0].DestinationIPs)
	require.Equal(t, uint16(80), evs[0].DestinationPort)
}

func TestIPArraysAndVariants(t *testing.T) {
	in := `{"type":"flow","flow":{"final":true},"source":{"ip":["10.0.0.1","192.0.2.1"]},"destination":{"ip":["1.19.6.4", null, "2001:678:6c4::9"]}}
{"event.dataset":"flow","flow.final":"true","flow.id":"f","destination.ip":"::ffff:1.2.3.4","destination.port":"443","@timestamp":1714564801479}
{"flow_id":"old","final":true,"source":{"ip":"fe80::1%eth0"}}
`
	evs, st := readAll(t, "v.ndjson", []byte(in), ReadOptions{})
	require.Zero(t, st.Malformed)
	require.Len(t, evs, 3)
	require.Equal(t, addrs("10.0.0.1", "192.0.2.1"), evs[0].SourceIPs)
	require.Equal(t, addrs("1.19.6.4", "2001:678:6c4::9"), evs[0].DestinationIPs)
	require.True(t, evs[1].IsFinalFlow())
	require.Equal(t, addrs("1.2.3.4"), evs[1].DestinationIPs, "IPv4-mapped addresses are unmapped")
	require.Equal(t, uint16(443), evs[1].DestinationPort)
	require.Equal(t, time.Date(2024, 5, 1, 12, 0, 1, 479e6, time.UTC), evs[1].Timestamp)
	require.True(t, evs[2].IsFinalFlow(), "pre-ECS flow_id/final aliases")
	require.Equal(t, addrs("fe80::1"), evs[2].SourceIPs, "zones are dropped")
}

func TestLargeLines(t *testing.T) {
	// A 3 MiB document (bigger than the read buffer) is read; a line over
	// MaxLineBytes is reported and the next line still parsed.
	pad := strings.Repeat("x", 3<<20)
	big := `{"type":"flow","pad":"` + pad + `","destination":{"ip":"1.2.3.4"}}`
	small := `{"type":"flow","destination":{"ip":"5.6.7.8"}}`
	evs, st := readAll(t, "big.ndjson", []byte(big+"\n"+small+"\n"), ReadOptions{})
	require.Zero(t, st.Malformed)
	require.Len(t, evs, 2)
	require.Equal(t, addrs("1.2.3.4"), evs[0].DestinationIPs)

	evs, st = readAll(t, "big.ndjson", []byte(big+"\n"+small+"\n"), ReadOptions{MaxLineBytes: 1 << 20})
	require.Len(t, evs, 1)
	require.Equal(t, 2, evs[0].Line)
	require.Equal(t, 1, st.Malformed)
	require.Equal(t, "big.ndjson:1: line too long: longer than 1048576 bytes", st.Samples[0].String())
}

func TestReadEventsStopsOnCallbackErrorAndContext(t *testing.T) {
	data, err := os.ReadFile(events300)
	require.NoError(t, err)
	stop := context.Canceled
	n := 0
	_, err = ReadEvents(context.Background(), bytes.NewReader(data), "x", ReadOptions{}, func(*Event) error {
		if n++; n == 10 {
			return stop
		}
		return nil
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, 10, n)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = ReadEvents(ctx, bytes.NewReader(data), "x", ReadOptions{}, func(*Event) error { return nil })
	require.ErrorIs(t, err, context.Canceled)
}
