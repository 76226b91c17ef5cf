package detector

import (
	"bytes"
	"context"
	"os"
	"testing"
)

// FuzzReadEvents: any input is read without panicking, and every line is
// either an event or counted as malformed or blank.
func FuzzReadEvents(f *testing.F) {
	for _, file := range []string{goldenHTTP, packetbeatDir + "beats_sample_outputs_flow.json"} {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"type":"flow","flow":{"final":true},"source":{"ip":["10.0.0.1",null]},"destination.ip":"1.2.3.4","destination.port":"443"}`))
	f.Add([]byte(`{"hits":{"hits":[{"_id":"a","_source":{"destination":{"ip":"::1"}}},3]}}` + "\n[{},[]]\n"))
	f.Add([]byte("{\n\"@timestamp\":12,\"flow\":{\"final\":\"true\"}}\n{"))
	m := NewMatcher([]*List{{Name: "all", Entries: []Entry{{Prefix: mustPrefix("0.0.0.0/0")}, {Prefix: mustPrefix("::/0")}}}}, MatcherConfig{})
	d := NewDetector(NewMatcherHolder(m), Options{AllEvents: true, MaxRawBytes: 64})
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := d.ScanFunc(context.Background(), bytes.NewReader(data), "fuzz", func(h Hit) error {
			if len(h.Matches) == 0 || len(h.Raw) > 64 {
				t.Fatalf("bad hit %+v", h)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if st.Considered != st.Events {
			t.Fatalf("AllEvents considers every event: %+v", st)
		}
	})
}

// FuzzParseBlocklist: any input parses without panicking; every entry has a
// valid, masked prefix.
func FuzzParseBlocklist(f *testing.F) {
	f.Add([]byte("# c\n1.2.3.4\r\n10.0.0.0/8 ; SBL1\n"), "x.txt")
	f.Add([]byte("\"first_seen_utc\",\"dst_ip\",\"malware\"\n\"a\",\"1.2.3.4\",\"m\"\n\"x"), "f.csv")
	f.Add([]byte(`{"cidr":"2001:db8::/32","sblid":"SBL1"}`+"\n{"), "d.json")
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		res, err := ParseBlocklist(bytes.NewReader(data), name, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range res.Entries {
			if !e.Prefix.IsValid() || e.Prefix != e.Prefix.Masked() || e.Line < 1 {
				t.Fatalf("bad entry %+v", e)
			}
		}
		NewMatcher([]*List{&res.List}, MatcherConfig{})
	})
}
