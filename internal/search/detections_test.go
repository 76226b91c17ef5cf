package search_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/cordonhq/cordon/detector"
	"github.com/cordonhq/cordon/internal/search"
	"github.com/cordonhq/cordon/internal/search/searchtest"
	"github.com/cordonhq/cordon/workflows"
)

// detectionsPrefix returns a fresh detections prefix whose indices and
// index template are deleted when the test ends. It is outside
// "cordon-detections-*" so that its template never overlaps the default one.
func detectionsPrefix(t testing.TB, c *search.Client) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	p := "cordontest-detections-" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = c.DeleteIndex(ctx, search.DetectionsPattern(p))
		_ = c.DeleteDetectionsTemplate(ctx, p)
	})
	return p
}

// searchFlowsAll runs SearchFlows from the start until it has caught up
// and returns every hit and the summed detection counts and problems.
func searchFlowsAll(t testing.TB, a *search.Activities, maxHits int) (hits []workflows.DetectHit, written, failed int, problems []string) {
	t.Helper()
	var cp search.Checkpoint
	for calls := 0; ; calls++ {
		require.Less(t, calls, 1000, "SearchFlows never caught up")
		res, err := a.SearchFlows(context.Background(), workflows.SearchFlowsInput{Checkpoint: cp, MaxHits: maxHits})
		require.NoError(t, err, "a detections problem is never an error of the search")
		hits = append(hits, res.Hits...)
		written += res.Detections
		failed += res.DetectionsFailed
		problems = append(problems, res.Problems...)
		cp = res.Next
		if !res.More {
			return hits, written, failed, problems
		}
	}
}

type storedDoc struct {
	Index  string         `json:"_index"`
	ID     string         `json:"_id"`
	Source map[string]any `json:"_source"`
}

// engineSearch runs a search body against pattern and returns the hits and
// the total.
func engineSearch(t testing.TB, c *search.Client, pattern string, body map[string]any) ([]storedDoc, int) {
	t.Helper()
	ctx := context.Background()
	es, err := c.ES(ctx)
	require.NoError(t, err)
	b, _ := json.Marshal(body)
	res, err := es.Search(es.Search.WithContext(ctx), es.Search.WithIndex(pattern), es.Search.WithBody(bytes.NewReader(b)),
		es.Search.WithTrackTotalHits(true))
	require.NoError(t, err)
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	require.False(t, res.IsError(), "search %s: %s", pattern, raw)
	var out struct {
		Hits struct {
			Total struct {
				Value int `json:"value"`
			} `json:"total"`
			Hits []storedDoc `json:"hits"`
		} `json:"hits"`
	}
	require.NoError(t, json.Unmarshal(raw, &out))
	return out.Hits.Hits, out.Hits.Total.Value
}

// field returns the value at a dotted path of a document's source.
func field(src map[string]any, path string) any {
	var v any = src
	for _, p := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

// extraFlows are flows beyond the corpus: an inbound session (the listed
// address is the source), an IPv6 one, and one on another day just before
// midnight UTC (its own daily index).
func extraFlows(prefix string) []search.BulkDoc {
	late := time.Date(2025, 12, 3, 23, 59, 59, 500e6, time.UTC)
	in := flowDoc(late.Add(-time.Hour), "i-0123456789abcdef0", "1.19.6.4", "10.0.1.10", 7)
	var v6 map[string]any
	_ = json.Unmarshal(flowDoc(late.Add(-2*time.Hour), "i-0123456789abcdef0", "10.0.1.10", "1.19.6.4", 8), &v6)
	v6["source"].(map[string]any)["ip"] = "2600:1f18::10"
	v6["destination"].(map[string]any)["ip"] = "2001:678:6c4::1" // Spamhaus DROPv6 2001:678:6c4::/48
	v6doc, _ := json.Marshal(v6)
	return []search.BulkDoc{
		{Index: prefix + "x", ID: "inbound", Source: in},
		{Index: prefix + "x", ID: "ipv6", Source: v6doc},
		{Index: prefix + "x", ID: "late", Source: flowDoc(late, "i-0123456789abcdef0", "10.0.1.10", "1.19.6.4", 9)},
	}
}

// TestDetectionsIndex runs the detector's activity over the corpus (and a
// few more flows) with the detections index on, through both code paths,
// then reads the detections back from the engine: one document per hit
// with the ECS fields, the list and entry, the incident and the flow
// document; addresses mapped as ip (a CIDR term query finds them); and a
// second run over the same flows (a retried activity) adds nothing.
func TestDetectionsIndex(t *testing.T) {
	det := newDetector(t)
	for _, flavor := range flavors {
		t.Run(flavor, func(t *testing.T) {
			base, _ := searchtest.Client(t, flavor, search.Config{})
			prefix := searchtest.Prefix(t, base)
			dprefix := detectionsPrefix(t, base)
			c, _ := searchtest.Client(t, flavor, search.Config{Index: prefix + "*", Settle: -1, PageSize: 50, Detections: dprefix})
			searchtest.Index(t, c, 2, append(corpusDocs(t, prefix), extraFlows(prefix)...))

			hits, written, failed, problems := searchFlowsAll(t, acts(c, det), 7)
			require.Equal(t, 18+3, len(hits), "the corpus's 18 and the three extra flows")
			require.Equal(t, len(hits), written, "every hit recorded")
			require.Zero(t, failed, "problems: %v", problems)
			require.Empty(t, problems)
			require.NoError(t, c.Refresh(context.Background(), search.DetectionsPattern(dprefix)))

			docs, total := engineSearch(t, c, search.DetectionsPattern(dprefix), map[string]any{"size": 1000})
			require.Equal(t, len(hits), total, "one detection per hit")
			byRef := map[string]storedDoc{}
			for _, d := range docs {
				byRef[field(d.Source, "cordon.flow.ref").(string)+" "+field(d.Source, "threat.indicator.ip").(string)] = d
			}
			require.Len(t, byRef, len(hits))
			indices := map[string]int{}
			for _, h := range hits {
				d, ok := byRef[h.Evidence.Ref+" "+h.Evidence.BadIP]
				require.True(t, ok, "no detection of %s %s", h.Evidence.Ref, h.Evidence.BadIP)
				s := d.Source
				indices[d.Index]++
				require.Equal(t, search.DetectionsIndex(dprefix, h.Evidence.Time), d.Index, "daily index of the event time")
				ts, err := time.Parse(time.RFC3339Nano, field(s, "@timestamp").(string))
				require.NoError(t, err)
				require.True(t, ts.Equal(h.Evidence.Time), "@timestamp is the event's time")
				require.Equal(t, "alert", field(s, "event.kind"))
				require.Equal(t, []any{"network"}, field(s, "event.category"))
				require.Equal(t, search.DetectionDataset, field(s, "event.dataset"))
				require.Equal(t, d.ID, field(s, "event.id"))
				require.NotEmpty(t, field(s, "ecs.version"))
				require.Equal(t, h.InstanceID, field(s, "cloud.instance.id"))
				require.Equal(t, h.Account, field(s, "cloud.account.id"))
				require.Equal(t, h.Region, field(s, "cloud.region"))
				require.Equal(t, h.HostName, field(s, "host.name"))
				require.Equal(t, h.SourceIP, field(s, "source.ip"))
				require.NotNil(t, field(s, "destination.ip"))
				require.NotEmpty(t, field(s, "network.transport"))
				require.Equal(t, h.Evidence.BadIP, field(s, "threat.indicator.ip"))
				require.Equal(t, h.Evidence.Rule, field(s, "cordon.list"), "the most specific list")
				require.Equal(t, h.Evidence.Rule, field(s, "threat.indicator.provider"))
				require.Equal(t, h.Evidence.Rule, field(s, "rule.name"))
				entry, err := netip.ParsePrefix(field(s, "cordon.entry").(string))
				if err != nil { // a single address
					a, aerr := netip.ParseAddr(field(s, "cordon.entry").(string))
					require.NoError(t, aerr, "cordon.entry %v", field(s, "cordon.entry"))
					entry = netip.PrefixFrom(a, a.BitLen())
				}
				require.True(t, entry.Contains(netip.MustParseAddr(h.Evidence.BadIP)), "the entry %s covers %s", entry, h.Evidence.BadIP)
				require.Contains(t, field(s, "cordon.lists"), h.Evidence.Rule)
				require.Equal(t, workflows.IncidentID(h.Account, h.Region, h.InstanceID), field(s, "cordon.incident.id"))
				require.Equal(t, h.Evidence.Ref, field(s, "cordon.flow.index").(string)+"/_doc/"+field(s, "cordon.flow.doc_id").(string), "the flow document")
				require.Contains(t, field(s, "message"), h.Evidence.BadIP)
				dir := detector.Outbound
				if h.Evidence.BadIP == field(s, "source.ip") {
					dir = detector.Inbound
				}
				require.Equal(t, string(dir), field(s, "network.direction"))
				require.Equal(t, search.DetectionID(field(s, "cordon.flow.index").(string), field(s, "cordon.flow.doc_id").(string), dir, h.Evidence.BadIP), d.ID)
				switch {
				case strings.HasSuffix(h.Evidence.Ref, "/inbound"):
					require.Equal(t, "inbound", field(s, "network.direction"))
					require.Equal(t, "1.19.6.4", field(s, "source.ip"))
					require.EqualValues(t, 40007, field(s, "source.port"))
					require.EqualValues(t, 443, field(s, "destination.port"))
				case strings.HasSuffix(h.Evidence.Ref, "/ipv6"):
					require.Equal(t, "ipv6-addr", field(s, "threat.indicator.type"))
				default:
					require.Equal(t, "ipv4-addr", field(s, "threat.indicator.type"))
				}
			}
			require.Equal(t, map[string]int{dprefix + "-2024.05.01": 18, dprefix + "-2025.12.03": 3}, indices)

			// The mapping: addresses are ip, names keyword, times date,
			// ports long — the index template applied.
			es, err := c.ES(context.Background())
			require.NoError(t, err)
			mres, err := es.Indices.GetMapping(es.Indices.GetMapping.WithIndex(search.DetectionsPattern(dprefix)))
			require.NoError(t, err)
			raw, _ := io.ReadAll(mres.Body)
			mres.Body.Close()
			var mappings map[string]struct {
				Mappings map[string]any `json:"mappings"`
			}
			require.NoError(t, json.Unmarshal(raw, &mappings), "%s", raw)
			require.Len(t, mappings, 2)
			for idx, m := range mappings {
				types := mappingTypes(m.Mappings)
				for f, want := range map[string]string{
					"threat.indicator.ip": "ip", "source.ip": "ip", "destination.ip": "ip", "related.ip": "ip",
					"cloud.instance.id": "keyword", "cordon.list": "keyword", "cordon.entry": "keyword",
					"cordon.incident.id": "keyword", "host.name": "keyword", "event.kind": "keyword",
					"@timestamp": "date", "source.port": "long", "destination.port": "long",
				} {
					require.Equal(t, want, types[f], "%s: %s", idx, f)
				}
			}
			// A CIDR term query works on an ip field only (a keyword
			// field would match nothing).
			in119 := 0
			for _, h := range hits {
				if netip.MustParsePrefix("1.19.0.0/16").Contains(netip.MustParseAddr(h.Evidence.BadIP)) {
					in119++
				}
			}
			require.GreaterOrEqual(t, in119, 2, "the extra flows' 1.19.6.4")
			_, n := engineSearch(t, c, search.DetectionsPattern(dprefix), map[string]any{"size": 0,
				"query": map[string]any{"term": map[string]any{"threat.indicator.ip": "1.19.0.0/16"}}})
			require.Equal(t, in119, n, "a CIDR finds the addresses in it")
			_, n = engineSearch(t, c, search.DetectionsPattern(dprefix), map[string]any{"size": 0,
				"query": map[string]any{"term": map[string]any{"threat.indicator.ip": "2001:678:6c4::/48"}}})
			require.Equal(t, 1, n)

			// A retried activity (same flows, from the same checkpoint,
			// on a fresh worker) writes nothing twice.
			again, written2, failed2, problems2 := searchFlowsAll(t, acts(c, det), 0)
			require.Equal(t, len(hits), len(again))
			require.Equal(t, len(hits), written2, "found there")
			require.Zero(t, failed2, "%v", problems2)
			require.NoError(t, c.Refresh(context.Background(), search.DetectionsPattern(dprefix)))
			_, total2 := engineSearch(t, c, search.DetectionsPattern(dprefix), map[string]any{"size": 0})
			require.Equal(t, total, total2, "count unchanged")

			// The writer itself: a second identical write creates nothing.
			var dets []search.Detection
			for _, d := range docs[:5] {
				var doc search.DetectionDoc
				b, _ := json.Marshal(d.Source)
				require.NoError(t, json.Unmarshal(b, &doc))
				dets = append(dets, search.Detection{Index: d.Index, ID: d.ID, Doc: doc})
			}
			wr, err := c.WriteDetections(context.Background(), dets, "true")
			require.NoError(t, err)
			require.Equal(t, search.WriteDetectionsResult{Existing: 5}, wr)
		})
	}
}

// mappingTypes flattens a mapping's properties into dotted names → types.
func mappingTypes(m map[string]any) map[string]string {
	out := map[string]string{}
	var walk func(prefix string, props map[string]any)
	walk = func(prefix string, props map[string]any) {
		for name, v := range props {
			f, _ := v.(map[string]any)
			if sub, ok := f["properties"].(map[string]any); ok {
				walk(prefix+name+".", sub)
				continue
			}
			if t, ok := f["type"].(string); ok {
				out[prefix+name] = t
			}
		}
	}
	props, _ := m["properties"].(map[string]any)
	walk("", props)
	return out
}

// refusingWrites is a transport that answers 503 to the detections' bulk
// requests (and, unless bulkOnly, to their index template) and passes
// everything else on.
type refusingWrites struct {
	next     http.RoundTripper
	bulkOnly bool
	refused  atomic.Int64
}

func (r *refusingWrites) RoundTrip(req *http.Request) (*http.Response, error) {
	if !r.bulkOnly && strings.Contains(req.URL.Path, "_index_template") || strings.HasSuffix(req.URL.Path, "/_bulk") {
		r.refused.Add(1)
		return &http.Response{StatusCode: http.StatusServiceUnavailable, Status: "503 Service Unavailable",
			Header:  http.Header{"Content-Type": {"application/json"}, "X-Elastic-Product": {"Elasticsearch"}},
			Body:    io.NopCloser(strings.NewReader(`{"error":{"type":"unavailable","reason":"refused by the test"},"status":503}`)),
			Request: req}, nil
	}
	return r.next.RoundTrip(req)
}

// logged returns activities whose warnings go to the returned buffer.
func logged(c *search.Client, det *detector.Detector) (*search.Activities, *bytes.Buffer) {
	var buf bytes.Buffer
	a := acts(c, det)
	a.Log = slog.New(slog.NewTextHandler(&buf, nil))
	return a, &buf
}

// TestDetectionsFailureDoesNotStopDetection: a cluster that refuses the
// detections (its template, the bulk request, or each document) still
// yields every hit, the call succeeds, and the failure is logged, counted
// and named in the problems.
func TestDetectionsFailureDoesNotStopDetection(t *testing.T) {
	det := newDetector(t)
	base, _ := searchtest.Client(t, searchtest.Native, search.Config{})
	prefix := searchtest.Prefix(t, base)
	searchtest.Index(t, base, 1, corpusDocs(t, prefix))

	t.Run("template and bulk refused", func(t *testing.T) {
		dprefix := detectionsPrefix(t, base)
		tr := &refusingWrites{next: http.DefaultTransport}
		c, err := search.New(search.Config{URLs: []string{searchtest.URL(t)}, Transport: tr, Index: prefix + "*", Settle: -1, Detections: dprefix})
		require.NoError(t, err)
		a, log := logged(c, det)
		hits, written, failed, problems := searchFlowsAll(t, a, 0)
		require.Equal(t, 18, len(hits), "detection goes on")
		require.Contains(t, log.String(), "detections not written")
		require.Contains(t, log.String(), "failed=18")
		require.Zero(t, written)
		require.Equal(t, 18, failed)
		require.Len(t, problems, 1)
		require.Contains(t, problems[0], "detections: 18 of 18 not written to "+dprefix+"-*")
		require.Contains(t, problems[0], "refused by the test")
		require.Positive(t, tr.refused.Load())
	})

	t.Run("bulk refused", func(t *testing.T) {
		dprefix := detectionsPrefix(t, base)
		tr := &refusingWrites{next: http.DefaultTransport, bulkOnly: true}
		c, err := search.New(search.Config{URLs: []string{searchtest.URL(t)}, Transport: tr, Index: prefix + "*", Settle: -1, Detections: dprefix})
		require.NoError(t, err)
		a, log := logged(c, det)
		hits, written, failed, problems := searchFlowsAll(t, a, 0)
		require.Equal(t, 18, len(hits))
		require.Zero(t, written)
		require.Equal(t, 18, failed)
		require.Len(t, problems, 1)
		require.Contains(t, problems[0], "HTTP 503")
		require.Contains(t, log.String(), "detections not written")
		require.GreaterOrEqual(t, tr.refused.Load(), int64(2), "a passing refusal is tried again")
	})

	t.Run("documents refused", func(t *testing.T) {
		dprefix := detectionsPrefix(t, base)
		// The day's index exists already and takes no writes.
		require.NoError(t, base.CreateIndex(context.Background(), dprefix+"-2024.05.01",
			`{"settings": {"index": {"number_of_replicas": 0, "blocks.write": true}}}`))
		c, _ := searchtest.Client(t, searchtest.Native, search.Config{Index: prefix + "*", Settle: -1, Detections: dprefix})
		a, log := logged(c, det)
		hits, written, failed, problems := searchFlowsAll(t, a, 0)
		require.Equal(t, 18, len(hits))
		require.Zero(t, written)
		require.Equal(t, 18, failed)
		require.Len(t, problems, 1)
		require.Contains(t, log.String(), "cluster_block_exception")
		require.Contains(t, problems[0], "detections: 18 of 18 not written")
		require.Contains(t, problems[0], dprefix+"-2024.05.01: 403")
	})

	t.Run("off", func(t *testing.T) {
		c, _ := searchtest.Client(t, searchtest.Native, search.Config{Index: prefix + "*", Settle: -1})
		hits, written, failed, problems := searchFlowsAll(t, acts(c, det), 0)
		require.Equal(t, 18, len(hits))
		require.Zero(t, written+failed)
		require.Empty(t, problems)
	})
}

// TestDetectionsTemplateIdempotent: the template is put once and then
// found; a newer version in the cluster (an operator's) is left alone.
func TestDetectionsTemplateIdempotent(t *testing.T) {
	for _, flavor := range flavors {
		t.Run(flavor, func(t *testing.T) {
			c, _ := searchtest.Client(t, flavor, search.Config{})
			dprefix := detectionsPrefix(t, c)
			ctx := context.Background()
			put, err := c.EnsureDetectionsTemplate(ctx, dprefix)
			require.NoError(t, err)
			require.True(t, put)
			put, err = c.EnsureDetectionsTemplate(ctx, dprefix)
			require.NoError(t, err)
			require.False(t, put, "found, not written again")

			var tmpl map[string]any
			require.NoError(t, json.Unmarshal([]byte(search.DetectionsTemplate(dprefix)), &tmpl))
			tmpl["version"] = search.DetectionsTemplateVersion + 1
			b, _ := json.Marshal(tmpl)
			es, err := c.ES(ctx)
			require.NoError(t, err)
			res, err := es.Indices.PutIndexTemplate(dprefix, bytes.NewReader(b))
			require.NoError(t, err)
			res.Body.Close()
			require.False(t, res.IsError())
			put, err = c.EnsureDetectionsTemplate(ctx, dprefix)
			require.NoError(t, err)
			require.False(t, put, "a newer template is the operator's")
		})
	}
}

// TestNewDetection checks the document of one hit without an engine.
func TestNewDetection(t *testing.T) {
	h := detector.Hit{
		InstanceID: "i-0123456789abcdef0", AccountID: "123456789012", Region: "eu-west-1", HostName: "ip-10-0-1-10",
		Direction: detector.Outbound, BadIP: netip.MustParseAddr("1.19.6.4"),
		SourceIP: netip.MustParseAddr("10.0.1.10"), DestinationIP: netip.MustParseAddr("1.19.6.4"),
		SourcePort: 51544, DestinationPort: 443, Transport: "tcp", CommunityID: "1:abc=",
		Matches: []detector.Match{
			{List: "spamhaus_drop.netset", Entry: detector.Entry{Prefix: netip.MustParsePrefix("1.19.0.0/16"), Text: "1.19.0.0/16", Label: "SBL123"}},
			{List: "firehol_level1.netset", Entry: detector.Entry{Prefix: netip.MustParsePrefix("1.16.0.0/12")}},
		},
		Time:     time.Date(2026, 12, 3, 23, 30, 0, 0, time.FixedZone("x", 2*3600)), // 21:30 UTC
		DocIndex: "packetbeat-8.13.4-2026.12.03", DocID: "abc", Ref: "packetbeat-8.13.4-2026.12.03/_doc/abc",
	}
	created := time.Date(2026, 12, 4, 0, 0, 1, 0, time.UTC)
	d := search.NewDetection("cordon-detections", &h, time.Time{}, created)
	require.Equal(t, "cordon-detections-2026.12.03", d.Index)
	require.Equal(t, search.DetectionID(h.DocIndex, h.DocID, detector.Outbound, "1.19.6.4"), d.ID)
	require.Equal(t, d, search.NewDetection("cordon-detections", &h, time.Time{}, created), "deterministic")
	require.NotEqual(t, d.ID, search.DetectionID(h.DocIndex, h.DocID, detector.Inbound, "1.19.6.4"), "the direction tells two hits of one flow apart")
	require.NotEqual(t, d.ID, search.DetectionID(h.DocIndex, "abd", detector.Outbound, "1.19.6.4"))

	var got map[string]any
	b, err := json.Marshal(d.Doc)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &got))
	want := map[string]any{
		"@timestamp": "2026-12-03T21:30:00Z", "event.kind": "alert", "event.dataset": "cordon.detection",
		"event.created": "2026-12-04T00:00:01Z", "event.id": d.ID, "ecs.version": "8.11.0",
		"source.ip": "10.0.1.10", "source.port": 51544.0, "destination.ip": "1.19.6.4", "destination.port": 443.0,
		"network.transport": "tcp", "network.direction": "outbound", "network.community_id": "1:abc=",
		"cloud.instance.id": "i-0123456789abcdef0", "cloud.account.id": "123456789012", "cloud.region": "eu-west-1",
		"host.name": "ip-10-0-1-10", "threat.indicator.ip": "1.19.6.4", "threat.indicator.type": "ipv4-addr",
		"threat.indicator.provider": "spamhaus_drop.netset", "threat.indicator.description": "SBL123",
		"threat.feed.name": "spamhaus_drop.netset", "rule.name": "spamhaus_drop.netset",
		"cordon.list": "spamhaus_drop.netset", "cordon.entry": "1.19.0.0/16", "cordon.label": "SBL123",
		"cordon.incident.id": "quarantine/123456789012/eu-west-1/i-0123456789abcdef0",
		"cordon.flow.index":  "packetbeat-8.13.4-2026.12.03", "cordon.flow.doc_id": "abc", "cordon.flow.ref": h.Ref,
	}
	for k, v := range want {
		require.Equal(t, v, field(got, k), k)
	}
	require.Equal(t, []any{"spamhaus_drop.netset", "firehol_level1.netset"}, field(got, "cordon.lists"))
	require.Equal(t, []any{"1.19.0.0/16", "1.16.0.0/12"}, field(got, "cordon.entries"))
	require.Equal(t, []any{"10.0.1.10", "1.19.6.4"}, field(got, "related.ip"))

	// Without cloud metadata: no cloud, no incident; the sort time stands
	// in for a missing event time.
	h.InstanceID, h.AccountID, h.Region, h.Time = "", "", "", time.Time{}
	d = search.NewDetection("p", &h, time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), created)
	require.Nil(t, d.Doc.Cloud)
	require.Nil(t, d.Doc.Cordon.Incident)
	require.Equal(t, "p-2025.01.02", d.Index)
}

func TestValidDetectionsPrefix(t *testing.T) {
	for _, p := range []string{"cordon-detections", "a", "sec.cordon_detections-2"} {
		require.NoError(t, search.ValidDetectionsPrefix(p), p)
	}
	for _, p := range []string{"", "Cordon", "-x", "_x", ".x", "a*", "a,b", "a/b", "a b", strings.Repeat("a", 201)} {
		require.Error(t, search.ValidDetectionsPrefix(p), p)
	}
	_, err := search.New(search.Config{URLs: []string{"http://x"}, Detections: "Bad*"})
	require.Error(t, err)
}

func TestDetectionsFlags(t *testing.T) {
	run := func(t *testing.T, env map[string]string, args ...string) (search.Config, error) {
		for k, v := range env {
			t.Setenv(k, v)
		}
		var cfg search.Config
		var ferr error
		app := &cli.App{Flags: search.Flags(), Action: func(c *cli.Context) error {
			cfg, _, _, ferr = search.ConfigFromFlags(c)
			return nil
		}}
		require.NoError(t, app.Run(append([]string{"worker", "--search-url", "http://a:9200"}, args...)))
		return cfg, ferr
	}
	t.Run("default on", func(t *testing.T) {
		cfg, err := run(t, nil)
		require.NoError(t, err)
		require.Equal(t, search.DefaultDetectionsPrefix, cfg.Detections)
		require.Contains(t, cfg.String(), "detections cordon-detections")
	})
	t.Run("off", func(t *testing.T) {
		cfg, err := run(t, nil, "--search-detections=false")
		require.NoError(t, err)
		require.Empty(t, cfg.Detections)
		require.Contains(t, cfg.String(), "detections off")
		cfg, err = run(t, map[string]string{"CORDON_SEARCH_DETECTIONS": "false"})
		require.NoError(t, err)
		require.Empty(t, cfg.Detections)
	})
	t.Run("prefix", func(t *testing.T) {
		cfg, err := run(t, nil, "--search-detections-prefix", "sec-cordon")
		require.NoError(t, err)
		require.Equal(t, "sec-cordon", cfg.Detections)
		cfg, err = run(t, map[string]string{"CORDON_SEARCH_DETECTIONS_PREFIX": "env-cordon"})
		require.NoError(t, err)
		require.Equal(t, "env-cordon", cfg.Detections)
	})
	t.Run("bad prefix", func(t *testing.T) {
		_, err := run(t, nil, "--search-detections-prefix", "Bad*")
		require.ErrorContains(t, err, "--search-detections-prefix")
	})
}

// TestDetectorCountsDetections runs the detection workflow in Temporal's
// test environment with the real SearchFlows activity over the engine (dry
// run: no incidents) and checks that the detections written, and those a
// refusing cluster made fail, are counted in the state the run hands on.
func TestDetectorCountsDetections(t *testing.T) {
	det := newDetector(t)
	base, _ := searchtest.Client(t, searchtest.Native, search.Config{})
	prefix := searchtest.Prefix(t, base)
	searchtest.Index(t, base, 1, corpusDocs(t, prefix))

	run := func(t *testing.T, c *search.Client) workflows.DetectorCounts {
		var s testsuite.WorkflowTestSuite
		env := s.NewTestWorkflowEnvironment()
		a, _ := logged(c, det)
		search.Register(env, a)
		env.ExecuteWorkflow(workflows.DetectorWorkflowName, workflows.DetectorInput{Config: workflows.DetectorConfig{
			DryRun: true, RunPolls: 4, MaxHits: 7}})
		require.True(t, env.IsWorkflowCompleted())
		var can *workflow.ContinueAsNewError
		require.True(t, errors.As(env.GetWorkflowError(), &can), "continued as new: %v", env.GetWorkflowError())
		var in workflows.DetectorInput
		require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &in))
		require.Equal(t, int64(18), in.State.Counts.Hits)
		return in.State.Counts
	}
	t.Run("written", func(t *testing.T) {
		dprefix := detectionsPrefix(t, base)
		c, _ := searchtest.Client(t, searchtest.Native, search.Config{Index: prefix + "*", Settle: -1, Detections: dprefix})
		counts := run(t, c)
		require.Equal(t, int64(18), counts.Detections)
		require.Zero(t, counts.DetectionsFailed)
	})
	t.Run("refused", func(t *testing.T) {
		dprefix := detectionsPrefix(t, base)
		c, err := search.New(search.Config{URLs: []string{searchtest.URL(t)}, Transport: &refusingWrites{next: http.DefaultTransport},
			Index: prefix + "*", Settle: -1, Detections: dprefix})
		require.NoError(t, err)
		counts := run(t, c)
		require.Zero(t, counts.Detections)
		require.Equal(t, int64(18), counts.DetectionsFailed)
	})
}
