package detector

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// corpusDocuments returns every document of the corpus files, as JSON.
func corpusDocuments(t *testing.T) [][]byte {
	var docs [][]byte
	for _, f := range []string{events300, searchFirst25, goldenHTTP,
		packetbeatDir + "beats_sample_outputs_flow.json", packetbeatDir + "beats_sample_outputs_http.json",
		packetbeatDir + "integrations_network_traffic_flow_sample_event.json"} {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		_, err = ReadEvents(context.Background(), bytes.NewReader(data), f, ReadOptions{}, func(ev *Event) error {
			docs = append(docs, bytes.Clone(ev.Raw))
			return nil
		})
		require.NoError(t, err)
	}
	require.Greater(t, len(docs), 300)
	return docs
}

// mutations of a document: each field the decoder reads set to values of
// every JSON kind, good and bad, nested and flattened.
func mutations(t *testing.T, doc []byte) [][]byte {
	var m map[string]any
	require.NoError(t, json.Unmarshal(doc, &m))
	values := []any{nil, 5, 443.5, -1, "x", "", true, false, []any{}, map[string]any{}, "999.1.1.1", "1.19.6.4", "2001:678:6c4::1",
		[]any{"1.19.6.4", nil, "10.0.0.1"}, []any{"1.2.3.4", 7}, []any{"bad"}, "443", "65536", "2024-05-01T12:00:00.123456789Z",
		"2024-13-01", 1714564800123, "true", "false", "fe80::1%eth0", "::ffff:1.2.3.4"}
	paths := []string{"@timestamp", "type", "event", "event.dataset", "data_stream", "data_stream.dataset", "flow", "flow.id", "flow.final",
		"source", "source.ip", "source.port", "destination", "destination.ip", "destination.port", "client.ip", "client.port",
		"server.ip", "server.port", "network", "network.transport", "network.community_id", "cloud", "cloud.instance", "cloud.instance.id",
		"cloud.account.id", "cloud.region", "host", "host.name", "final", "flow_id"}
	var out [][]byte
	for _, p := range paths {
		for _, v := range values {
			for _, flat := range []bool{false, true} {
				c := deepCopy(m).(map[string]any)
				if flat {
					c[p] = v
				} else {
					setPath(c, strings.Split(p, "."), v)
				}
				b, err := json.Marshal(c)
				require.NoError(t, err)
				out = append(out, b)
			}
		}
		// and removed
		c := deepCopy(m).(map[string]any)
		delPath(c, strings.Split(p, "."))
		b, _ := json.Marshal(c)
		out = append(out, b)
	}
	return out
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		c := make(map[string]any, len(x))
		for k, e := range x {
			c[k] = deepCopy(e)
		}
		return c
	case []any:
		c := make([]any, len(x))
		for i, e := range x {
			c[i] = deepCopy(e)
		}
		return c
	}
	return v
}

func setPath(m map[string]any, path []string, v any) {
	for _, k := range path[:len(path)-1] {
		sub, ok := m[k].(map[string]any)
		if !ok {
			sub = map[string]any{}
			m[k] = sub
		}
		m = sub
	}
	m[path[len(path)-1]] = v
}

func delPath(m map[string]any, path []string) {
	for _, k := range path[:len(path)-1] {
		sub, ok := m[k].(map[string]any)
		if !ok {
			return
		}
		m = sub
	}
	delete(m, path[len(path)-1])
}

func sameDecoding(t *testing.T, fd *EventDecoder, doc []byte) {
	t.Helper()
	var a, b Event
	ra, da := DecodeEvent(doc, &a)
	rb, db := fd.Decode(doc, &b)
	require.Equal(t, ra, rb, "reason for %s", doc)
	require.Equal(t, da, db, "detail for %s", doc)
	if ra == "" {
		require.Equal(t, a, b, "event of %s", doc)
	}
}

// TestEventDecoderMatchesDecodeEvent: the fast decoder gives exactly what
// DecodeEvent gives — event, skip reason and detail — on every corpus
// document and on thousands of mutations of them.
func TestEventDecoderMatchesDecodeEvent(t *testing.T) {
	var fd EventDecoder
	docs := corpusDocuments(t)
	for _, d := range docs {
		sameDecoding(t, &fd, d)
	}
	n := 0
	for i, d := range docs {
		if i%10 != 0 { // a sample of each shape is enough for the mutations
			continue
		}
		for _, m := range mutations(t, d) {
			sameDecoding(t, &fd, m)
			n++
		}
	}
	t.Logf("%d documents, %d mutations decoded the same", len(docs), n)
	for _, bad := range []string{``, `[]`, `"x"`, `{`, `{"a":}`, `{"source":{"ip":"1.2.3.4"}} trailing`} {
		var ev Event
		r, _ := fd.Decode([]byte(bad), &ev)
		require.NotEmpty(t, r, "%q", bad)
	}
}

func FuzzEventDecoder(f *testing.F) {
	data, err := os.ReadFile(events300)
	require.NoError(f, err)
	for l := range bytes.Lines(data) {
		f.Add(bytes.TrimSpace(l))
	}
	f.Add([]byte(`{"source.ip":["1.2.3.4",null],"destination":{"ip":"::1","port":"80"},"flow":{"final":"true"}}`))
	var fd EventDecoder
	f.Fuzz(func(t *testing.T, doc []byte) {
		if !json.Valid(doc) || !slices.Contains([]byte{'{'}, firstByte(doc)) {
			return
		}
		if bytes.Contains(bytes.ToLower(doc), []byte(`"hits"`)) || bytes.Contains(doc, []byte(`"_`)) {
			return // search-response wrappers: DecodeEvent's input is a _source
		}
		if !bytes.Equal(bytes.ToLower(doc), doc) || bytes.Contains(doc, []byte(`\u`)) {
			return // encoding/json also matches keys in other letter cases (documented difference)
		}
		var a, b Event
		ra, da := DecodeEvent(doc, &a)
		rb, db := fd.Decode(doc, &b)
		if ra == ReasonWrongType && rb == ReasonWrongType {
			return // case-insensitive keys and duplicates may pick another field first
		}
		if ra != rb {
			t.Fatalf("reason %q vs %q for %s", ra, rb, doc)
		}
		_ = da
		_ = db
	})
}

func firstByte(b []byte) byte {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return 0
	}
	return b[0]
}
