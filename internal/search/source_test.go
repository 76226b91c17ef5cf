package search_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/detector"
	"github.com/cordonhq/cordon/internal/app"
	"github.com/cordonhq/cordon/internal/search"
	"github.com/cordonhq/cordon/internal/search/searchtest"
	"github.com/cordonhq/cordon/workflows"
)

var testdata = filepath.Join("..", "..", "testdata")

const corpusFile = "GENERATED_packetbeat_ecs8_ec2_300events.ndjson"

var flavors = []string{searchtest.Native, searchtest.ElasticsearchEmulated}

func newDetector(t testing.TB) *detector.Detector {
	t.Helper()
	m, err := app.LoadMatcher([]string{filepath.Join(testdata, "blocklists")}, nil, func(string) {})
	require.NoError(t, err)
	return detector.NewDetector(detector.NewMatcherHolder(m), detector.Options{})
}

func acts(c *search.Client, det *detector.Detector) *search.Activities {
	return &search.Activities{Search: c, Detector: det}
}

// drain runs SearchFlows from cp until it has caught up, as the workflow
// does, and returns every hit and the summed counts.
func drain(t testing.TB, a *search.Activities, cp search.Checkpoint, maxEvents, maxHits int) ([]workflows.DetectHit, workflows.SearchFlowsResult, int) {
	t.Helper()
	var all []workflows.DetectHit
	var sum workflows.SearchFlowsResult
	calls := 0
	for {
		calls++
		require.Less(t, calls, 10000, "SearchFlows never caught up")
		res, err := a.SearchFlows(context.Background(), workflows.SearchFlowsInput{Checkpoint: cp, MaxEvents: maxEvents, MaxHits: maxHits})
		require.NoError(t, err)
		all = append(all, res.Hits...)
		sum.Events += res.Events
		sum.Considered += res.Considered
		sum.Malformed += res.Malformed
		sum.Problems = append(sum.Problems, res.Problems...)
		for k, v := range res.Skipped {
			if sum.Skipped == nil {
				sum.Skipped = map[string]int{}
			}
			sum.Skipped[k] += v
		}
		require.False(t, res.Next.Time.Before(cp.Time), "checkpoint went back")
		cp = res.Next
		sum.Next = cp
		if !res.More {
			return all, sum, calls
		}
	}
}

// corpusDocs spreads the 300 corpus events over two indices.
func corpusDocs(t testing.TB, prefix string) []search.BulkDoc {
	var docs []search.BulkDoc
	for i, l := range searchtest.ReadNDJSON(t, filepath.Join(testdata, "packetbeat", corpusFile)) {
		docs = append(docs, search.BulkDoc{Index: prefix + []string{"a", "b"}[i%2], Source: l})
	}
	return docs
}

// hitKey identifies a hit independently of where the event was read from.
func hitKey(instance, badIP string, tm time.Time) string {
	return instance + " " + badIP + " " + tm.UTC().Format(time.RFC3339Nano)
}

func TestDetectFlavor(t *testing.T) {
	c, _ := searchtest.Client(t, searchtest.Native, search.Config{})
	f, v, err := c.Flavor(context.Background())
	require.NoError(t, err)
	t.Logf("test engine: %s %s", f, v)
	require.NoError(t, c.Ping(context.Background()), "the v8 client talks to the engine")

	e, ad := searchtest.Client(t, searchtest.ElasticsearchEmulated, search.Config{})
	f, _, err = e.Flavor(context.Background())
	require.NoError(t, err)
	require.Equal(t, search.FlavorElasticsearch, f, "through the test-only adapter the engine looks like Elasticsearch")
	require.NoError(t, e.Ping(context.Background()))
	require.NotNil(t, ad)
}

// TestCorpusThroughEngine indexes the 300 labelled corpus events with the
// ECS mapping and checks that reading them back from the engine finds
// exactly what the file detector finds — through both code paths, with big
// and tiny pages.
func TestCorpusThroughEngine(t *testing.T) {
	det := newDetector(t)
	f, err := os.Open(filepath.Join(testdata, "packetbeat", corpusFile))
	require.NoError(t, err)
	want, wantStats, err := det.Scan(context.Background(), f, corpusFile)
	f.Close()
	require.NoError(t, err)
	wantKeys := map[string]int{}
	for _, h := range want {
		wantKeys[hitKey(h.InstanceID, h.BadIP.String(), h.Time)]++
	}
	require.Len(t, want, 18)

	for _, flavor := range flavors {
		t.Run(flavor, func(t *testing.T) {
			for _, pageSize := range []int{1000, 7} {
				t.Run(fmt.Sprintf("page%d", pageSize), func(t *testing.T) {
					c, _ := searchtest.Client(t, flavor, search.Config{PageSize: pageSize, Settle: -1})
					prefix := searchtest.Prefix(t, c)
					c, ad := searchtest.Client(t, flavor, search.Config{PageSize: pageSize, Settle: -1, Index: prefix + "*"})
					searchtest.Index(t, c, 2, corpusDocs(t, prefix))

					hits, sum, calls := drain(t, acts(c, det), search.Checkpoint{}, 25, 0)
					require.Equal(t, wantStats.Considered, sum.Considered, "final flow records considered")
					require.Equal(t, wantStats.Considered, sum.Events, "only final flow records are read from the engine")
					require.Zero(t, sum.Malformed)
					got := map[string]int{}
					for _, h := range hits {
						got[hitKey(h.InstanceID, h.Evidence.BadIP, h.Evidence.Time)]++
						require.True(t, strings.HasPrefix(h.Evidence.Ref, prefix), "evidence names the document: %s", h.Evidence.Ref)
						require.Contains(t, h.Evidence.Raw, `"flow"`)
						require.NotEmpty(t, h.Evidence.Rule)
					}
					require.Equal(t, wantKeys, got, "the engine path finds exactly the file detector's hits")
					require.GreaterOrEqual(t, calls, 107/25, "read in several calls from checkpoints")
					if ad != nil {
						require.Positive(t, ad.PITOpened.Load(), "Elasticsearch _pit API used")
						require.Positive(t, ad.PITClosed.Load())
						require.Positive(t, ad.ShardDoc.Load(), "_shard_doc tiebreaker used")
					}

					// Caught up: nothing more from the final checkpoint.
					again, sum2, _ := drain(t, acts(c, det), sum.Next, 25, 0)
					require.Empty(t, again)
					require.Zero(t, sum2.Events)
				})
			}
		})
	}
}

// TestCheckpointTies pages through documents that share few timestamps
// (ties across pages, calls, shards and indices) in small steps and checks
// that every document is read exactly once, in time order.
func TestCheckpointTies(t *testing.T) {
	det := newDetector(t)
	for _, flavor := range flavors {
		t.Run(flavor, func(t *testing.T) {
			c, _ := searchtest.Client(t, flavor, search.Config{})
			prefix := searchtest.Prefix(t, c)
			c, _ = searchtest.Client(t, flavor, search.Config{PageSize: 50, Settle: -1, Index: prefix + "*"})
			base := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
			var docs []search.BulkDoc
			const n = 1500
			for i := range n {
				ts := base.Add(time.Duration(i%4) * time.Millisecond) // 4 distinct times
				docs = append(docs, search.BulkDoc{Index: prefix + []string{"x", "y", "z"}[i%3], Source: flowDoc(ts, "i-0123456789abcdef0", "10.0.1.10", "1.19.6.4", i)})
			}
			searchtest.Index(t, c, 2, docs)

			hits, sum, calls := drain(t, acts(c, det), search.Checkpoint{}, 97, 40)
			require.Equal(t, n, sum.Events)
			require.Len(t, hits, n, "each document once")
			seen := map[string]bool{}
			for i, h := range hits {
				require.False(t, seen[h.Evidence.Ref], "repeated: %s", h.Evidence.Ref)
				seen[h.Evidence.Ref] = true
				if i > 0 {
					require.False(t, h.Evidence.Time.Before(hits[i-1].Evidence.Time), "time order")
				}
			}
			require.Greater(t, calls, n/40-1)
			require.Equal(t, base.Add(3*time.Millisecond), sum.Next.Time)
			require.Len(t, sum.Next.Seen, n/4, "the checkpoint remembers the documents at its time")
		})
	}
}

func flowDoc(ts time.Time, instance, src, dst string, i int) []byte {
	b, _ := json.Marshal(map[string]any{
		"@timestamp":  ts.Format(time.RFC3339Nano),
		"event":       map[string]any{"dataset": "network_traffic.flow", "kind": "event"},
		"data_stream": map[string]any{"dataset": "network_traffic.flow"},
		"flow":        map[string]any{"id": fmt.Sprintf("flow-%d", i), "final": true},
		"source":      map[string]any{"ip": src, "port": 40000 + i%20000},
		"destination": map[string]any{"ip": dst, "port": 443},
		"network":     map[string]any{"transport": "tcp"},
		"cloud":       map[string]any{"instance": map[string]any{"id": instance}, "account": map[string]any{"id": "123456789012"}, "region": "us-east-1"},
		"host":        map[string]any{"name": "ip-" + strings.ReplaceAll(src, ".", "-")},
	})
	return b
}

// TestShapesAndBadDocuments: a Packetbeat 7 flow (type/event.dataset
// "flow"), documents with unusable fields (counted with a reason, not
// fatal), and non-flow events (not read).
func TestShapesAndBadDocuments(t *testing.T) {
	det := newDetector(t)
	c, _ := searchtest.Client(t, searchtest.Native, search.Config{})
	prefix := searchtest.Prefix(t, c)
	c, _ = searchtest.Client(t, searchtest.Native, search.Config{Settle: -1, Index: prefix + "*"})

	var pb7 map[string]any
	raw, err := os.ReadFile(filepath.Join(testdata, "packetbeat", "beats_sample_outputs_flow.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &pb7))
	pb7["flow"].(map[string]any)["final"] = true
	pb7["destination"].(map[string]any)["ip"] = "1.19.6.4"
	pb7["type"] = "flow"
	delete(pb7, "@metadata")
	pb7doc, _ := json.Marshal(pb7)

	ts := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	bad := func(mut func(m map[string]any)) []byte {
		var m map[string]any
		require.NoError(t, json.Unmarshal(flowDoc(ts, "i-0123456789abcdef0", "10.0.1.10", "1.19.6.4", 1), &m))
		mut(m)
		b, _ := json.Marshal(m)
		return b
	}
	docs := []search.BulkDoc{
		{Index: prefix + "7", ID: "pb7", Source: pb7doc},
		{Index: prefix + "8", ID: "bad-ip", Source: bad(func(m map[string]any) { m["destination"].(map[string]any)["ip"] = "999.1.1.1" })},
		{Index: prefix + "8", ID: "no-address", Source: bad(func(m map[string]any) { delete(m, "source"); delete(m, "destination") })},
		{Index: prefix + "8", ID: "bad-port", Source: bad(func(m map[string]any) { m["source"].(map[string]any)["port"] = "http" })},
		{Index: prefix + "8", ID: "ipv6", Source: bad(func(m map[string]any) {
			m["source"].(map[string]any)["ip"] = "2600:1f18::10"
			m["destination"].(map[string]any)["ip"] = "2001:678:6c4::1" // Spamhaus DROPv6 2001:678:6c4::/48
		})},
		{Index: prefix + "8", ID: "dns", Source: bad(func(m map[string]any) {
			m["event"].(map[string]any)["dataset"] = "network_traffic.dns"
			m["data_stream"].(map[string]any)["dataset"] = "network_traffic.dns"
			delete(m, "flow")
		})},
		{Index: prefix + "8", ID: "not-final", Source: bad(func(m map[string]any) { m["flow"].(map[string]any)["final"] = false })},
		{Index: prefix + "8", ID: "good", Source: flowDoc(ts.Add(time.Second), "i-0123456789abcdef0", "10.0.1.10", "1.19.6.4", 2)},
	}
	searchtest.Index(t, c, 1, docs)
	hits, sum, _ := drain(t, acts(c, det), search.Checkpoint{}, 0, 0)
	refs := map[string]string{}
	for _, h := range hits {
		refs[h.Evidence.Ref[strings.LastIndex(h.Evidence.Ref, "/")+1:]] = h.Evidence.BadIP
	}
	t.Logf("hits: %v; problems: %v; skipped: %v", refs, sum.Problems, sum.Skipped)
	require.Equal(t, "1.19.6.4", refs["pb7"], "Packetbeat 7 flow")
	require.Equal(t, "1.19.6.4", refs["good"])
	require.Contains(t, refs, "ipv6")
	require.NotContains(t, refs, "dns")
	require.NotContains(t, refs, "not-final")
	require.Equal(t, 6, sum.Events, "dns and non-final flows are not read")
	require.Equal(t, 3, sum.Malformed)
	require.Equal(t, 1, sum.Skipped[detector.ReasonBadIP])
	require.Equal(t, 1, sum.Skipped[detector.ReasonNoAddress])
	require.Equal(t, 1, sum.Skipped[detector.ReasonBadPort])
	require.Len(t, sum.Problems, 3)
	require.True(t, strings.Contains(strings.Join(sum.Problems, "\n"), "/_doc/bad-ip: "+detector.ReasonBadIP))
}

// TestSettle: events newer than now minus Settle are left for a later poll.
func TestSettle(t *testing.T) {
	det := newDetector(t)
	c, _ := searchtest.Client(t, searchtest.Native, search.Config{})
	prefix := searchtest.Prefix(t, c)
	c, _ = searchtest.Client(t, searchtest.Native, search.Config{Settle: time.Hour, Index: prefix + "*"})
	now := time.Now().UTC()
	searchtest.Index(t, c, 1, []search.BulkDoc{
		{Index: prefix + "s", ID: "old", Source: flowDoc(now.Add(-2*time.Hour), "i-0123456789abcdef0", "10.0.1.10", "1.19.6.4", 1)},
		{Index: prefix + "s", ID: "new", Source: flowDoc(now.Add(-time.Minute), "i-0123456789abcdef0", "10.0.1.10", "1.19.6.4", 2)},
	})
	a := acts(c, det)
	hits, sum, _ := drain(t, a, search.Checkpoint{}, 0, 0)
	require.Len(t, hits, 1)
	require.True(t, strings.HasSuffix(hits[0].Evidence.Ref, "/old"))
	// An hour later (the clock moves), the newer one is read, once.
	a.Now = func() time.Time { return now.Add(time.Hour) }
	hits, _, _ = drain(t, a, sum.Next, 0, 0)
	require.Len(t, hits, 1)
	require.True(t, strings.HasSuffix(hits[0].Evidence.Ref, "/new"))
}

// TestEngineDown: a cluster that does not answer fails the activity (which
// Temporal retries) without a result, so the checkpoint cannot move.
func TestEngineDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	det := newDetector(t)
	for _, f := range []search.Flavor{search.FlavorAuto, search.FlavorOpenSearch, search.FlavorElasticsearch} {
		c, err := search.New(search.Config{URLs: []string{"http://" + addr}, Flavor: f, Timeout: 2 * time.Second})
		require.NoError(t, err)
		_, err = acts(c, det).SearchFlows(context.Background(), workflows.SearchFlowsInput{})
		require.Error(t, err)
		t.Logf("%s: %v", f, err)
		require.Contains(t, err.Error(), "connect")
	}
}

// TestMissingIndex: a pattern that matches nothing reads nothing.
func TestMissingIndex(t *testing.T) {
	det := newDetector(t)
	for _, flavor := range flavors {
		c, _ := searchtest.Client(t, flavor, search.Config{Index: "packetbeat-cordontest-none-*", Settle: -1})
		hits, sum, _ := drain(t, acts(c, det), search.Checkpoint{}, 0, 0)
		require.Empty(t, hits)
		require.Zero(t, sum.Events)
	}
}

// BenchmarkSearchFlowsEngine: SearchFlows over 20,000 flow documents in the
// real engine (3 indices, 2 shards each), pages of 1000 and 5000, from the start:
// events read, matched and checkpointed per second, engine included.
//
//	eval "$(scripts/search start)"; go test ./internal/search -run '^$' -bench SearchFlowsEngine -benchtime 5x
func BenchmarkSearchFlowsEngine(b *testing.B) {
	c, _ := searchtest.Client(b, searchtest.Native, search.Config{})
	prefix := searchtest.Prefix(b, c)
	const n = 20000
	base := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	docs := make([]search.BulkDoc, 0, n)
	bad := []string{"1.19.6.4", "52.94.76.10", "151.101.1.69", "140.82.112.3", "185.199.108.153"}
	for i := range n {
		docs = append(docs, search.BulkDoc{Index: prefix + []string{"a", "b", "c"}[i%3],
			Source: flowDoc(base.Add(time.Duration(i)*time.Millisecond), "i-0123456789abcdef0", "10.0.1.10", bad[i%len(bad)], i)})
	}
	searchtest.Index(b, c, 2, docs)
	det := newDetector(b)
	for _, size := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("page%d", size), func(b *testing.B) {
			c, _ := searchtest.Client(b, searchtest.Native, search.Config{Index: prefix + "*", Settle: -1, PageSize: size})
			a := acts(c, det)
			for range b.N {
				res, err := a.SearchFlows(context.Background(), workflows.SearchFlowsInput{})
				if err != nil {
					b.Fatal(err)
				}
				if res.Events != n {
					b.Fatalf("%d events", res.Events)
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
