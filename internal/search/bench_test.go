package search

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cordonhq/cordon/detector"
	"github.com/cordonhq/cordon/internal/app"
	"github.com/cordonhq/cordon/workflows"
)

// benchPages builds pages of a _search response (size hits each) from the
// corpus' final flow records, with distinct IDs and increasing sort times.
func benchPages(b *testing.B, pages, size int, fields []string) [][]byte {
	b.Helper()
	f, err := os.Open(filepath.Join("..", "..", "testdata", "packetbeat", "GENERATED_packetbeat_ecs8_ec2_300events.ndjson"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var flows [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if bytes.Contains(sc.Bytes(), []byte(`"final": true`)) {
			flows = append(flows, filterSource(b, sc.Bytes(), fields))
		}
	}
	if len(flows) != 107 {
		b.Fatalf("%d final flows in the corpus, want 107", len(flows))
	}
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC).UnixNano()
	out := make([][]byte, pages)
	n := 0
	for p := range out {
		var buf bytes.Buffer
		buf.WriteString(`{"pit_id":"p","took":3,"timed_out":false,"_shards":{"total":2,"successful":2,"skipped":0,"failed":0},"hits":{"total":{"value":10000,"relation":"gte"},"max_score":null,"hits":[`)
		for i := range size {
			if i > 0 {
				buf.WriteByte(',')
			}
			fmt.Fprintf(&buf, `{"_index":"packetbeat-8.13.4-2024.05.01","_id":"doc-%07d","_score":null,"_source":%s,"sort":[%d,"doc-%07d"]}`,
				n, flows[n%len(flows)], t0+int64(n)*int64(time.Millisecond), n)
			n++
		}
		buf.WriteString(`]}}`)
		out[p] = buf.Bytes()
	}
	return out
}

// filterSource keeps the fields of doc that _source includes would (plain
// paths and "prefix.*"); nil fields keeps all.
func filterSource(b *testing.B, doc []byte, fields []string) []byte {
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		b.Fatal(err)
	}
	if fields == nil {
		out, _ := json.Marshal(m)
		return out
	}
	out := map[string]any{}
	for _, f := range fields {
		path := strings.Split(strings.TrimSuffix(f, ".*"), ".")
		src, dst := m, out
		for i, k := range path {
			v, ok := src[k]
			if !ok {
				break
			}
			if i == len(path)-1 {
				dst[k] = v
				break
			}
			sub, ok := v.(map[string]any)
			if !ok {
				break
			}
			if dst[k] == nil {
				dst[k] = map[string]any{}
			}
			src, dst = sub, dst[k].(map[string]any)
		}
	}
	b2, _ := json.Marshal(out)
	return b2
}

func benchDetector(b *testing.B) *detector.Detector {
	m, err := app.LoadMatcher([]string{filepath.Join("..", "..", "testdata", "blocklists")}, nil, func(string) {})
	if err != nil {
		b.Fatal(err)
	}
	return detector.NewDetector(detector.NewMatcherHolder(m), detector.Options{})
}

// benchPageParseMatch: events parsed and matched per second from a
// search page (1000 hits of the corpus' flow records, ~3 KB each), with
// what SearchFlows does per hit: page decoding, checkpoint, event
// decoding, blocklist lookup, evidence. No HTTP.
func benchPageParseMatch(b *testing.B, fields []string) {
	pageJSON := benchPages(b, 1, 1000, fields)[0]
	det := benchDetector(b)
	b.SetBytes(int64(len(pageJSON)))
	b.ReportAllocs()
	b.ResetTimer()
	var ev detector.Event
	var st detector.Stats
	var dec detector.EventDecoder
	var pg page
	var d Doc
	hits := 0
	for range b.N {
		if err := pg.parse(pageJSON); err != nil {
			b.Fatal(err)
		}
		var last time.Time
		var seen []string
		for _, h := range pg.hits {
			if err := pg.hitDoc(h, &d); err != nil {
				b.Fatal(err)
			}
			if d.Time.Before(last) {
				b.Fatal("behind")
			}
			if reason, _ := dec.DecodeValue(d.Value(), &ev); reason != "" {
				b.Fatal(reason)
			}
			ev.DocID, ev.DocIndex = d.ID, d.Index
			_ = det.CheckFunc(&ev, &st, func(h detector.Hit) error {
				h.Raw, _ = truncate(d.Source(), detector.DefaultMaxRawBytes)
				_ = hitOf(h)
				hits++
				return nil
			})
			if !d.Time.Equal(last) {
				last, seen = d.Time, seen[:0]
			}
			seen = append(seen, d.ID)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkPageParseMatch/{default-fields,whole-documents}: see
// benchPageParseMatch.
func BenchmarkPageParseMatch(b *testing.B) {
	b.Run("default-fields", func(b *testing.B) { benchPageParseMatch(b, DefaultSourceFields) })
	b.Run("whole-documents", func(b *testing.B) { benchPageParseMatch(b, nil) })
}

// BenchmarkSearchFlowsHTTP: SearchFlows end to end through the v8 client
// over loopback HTTP against a stub that serves canned pages (10 pages of
// 1000 hits per call): the Go side's throughput, engine time excluded.
func BenchmarkSearchFlowsHTTP(b *testing.B) {
	const pages, size = 10, 1000
	canned := benchPages(b, pages, size, DefaultSourceFields)
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/":
			_, _ = w.Write([]byte(`{"version":{"distribution":"opensearch","number":"2.19.6"}}`))
		case strings.HasSuffix(r.URL.Path, "/_search/point_in_time") && r.Method == http.MethodPost:
			served.Store(0)
			_, _ = w.Write([]byte(`{"pit_id":"p"}`))
		case r.URL.Path == "/_search/point_in_time":
			_, _ = w.Write([]byte(`{"pits":[]}`))
		case r.URL.Path == "/_search":
			i := served.Add(1) - 1
			if i >= pages {
				_, _ = w.Write([]byte(`{"pit_id":"p","timed_out":false,"_shards":{"total":1,"failed":0},"hits":{"hits":[]}}`))
				return
			}
			_, _ = w.Write(canned[i])
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	c, err := New(Config{URLs: []string{srv.URL}, PageSize: size, Settle: -1})
	if err != nil {
		b.Fatal(err)
	}
	a := &Activities{Search: c, Detector: benchDetector(b)}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		res, err := a.SearchFlows(context.Background(), workflows.SearchFlowsInput{})
		if err != nil {
			b.Fatal(err)
		}
		if res.Events != pages*size {
			b.Fatalf("%d events", res.Events)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*pages*size)/b.Elapsed().Seconds(), "events/s")
}
