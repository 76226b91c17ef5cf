package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enums "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cordonhq/cordon/detector"
	"github.com/cordonhq/cordon/internal/app"
	"github.com/cordonhq/cordon/internal/search"
	"github.com/cordonhq/cordon/internal/search/searchtest"
	"github.com/cordonhq/cordon/simcloud"
	"github.com/cordonhq/cordon/workflows"
)

// holdPolicy keeps incidents open (isolated, waiting for approval) for the
// whole test, so that every hit lands on one incident run per instance.
var holdPolicy = workflows.Policy{
	Approval: workflows.ApprovalBeforeDestructive, ApprovalTimeout: time.Hour, OnDeadline: workflows.DeadlineHold,
}

func searchDetector(t testing.TB) *detector.Detector {
	m, err := app.LoadMatcher([]string{filepath.Join(Testdata, "blocklists")}, nil, func(string) {})
	require.NoError(t, err)
	return detector.NewDetector(detector.NewMatcherHolder(m), detector.Options{})
}

// detectWorker replaces the harness's worker with one that also runs the
// detection workflow and its activities (what the worker program does).
func detectWorker(t testing.TB, h *Harness, acts *search.Activities) worker.Worker {
	h.Worker.Stop()
	return startDetectWorker(t, h, acts)
}

func startDetectWorker(t testing.TB, h *Harness, acts *search.Activities) worker.Worker {
	w := app.NewWorker(h.Client, h.Acts, h.Limits, worker.Options{})
	search.Register(w, acts)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	return w
}

func waitDetector(t testing.TB, h *Harness, id string, timeout time.Duration, what string, cond func(workflows.DetectorStatus) bool) workflows.DetectorStatus {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var st workflows.DetectorStatus
	var err error
	for time.Now().Before(deadline) {
		st, err = workflows.GetDetectorStatus(context.Background(), h.Client, id)
		if err == nil && cond(st) {
			return st
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := json.MarshalIndent(st, "", "  ")
	t.Fatalf("detector %s: not %s after %s (last error %v); status:\n%s", id, what, timeout, err, b)
	return st
}

// evidenceRefs returns, per incident of the given instances, the refs of
// its evidence (all of it: each instance has fewer than MaxEvidence hits).
func evidenceRefs(t testing.TB, h *Harness, instances []string) (map[string][]string, int) {
	out := map[string][]string{}
	total := 0
	for _, inst := range instances {
		info, ok := h.Sim.Instance(inst)
		require.True(t, ok)
		st, err := workflows.GetStatus(context.Background(), h.Client, workflows.IncidentID("123456789012", info.Region, inst))
		if err != nil {
			t.Logf("%s: %v", inst, err)
			continue
		}
		require.Less(t, st.EvidenceCount, workflows.MaxEvidence)
		require.Len(t, st.Evidence, st.EvidenceCount)
		for _, ev := range st.Evidence {
			out[inst] = append(out[inst], ev.Ref)
		}
		total += st.EvidenceCount
	}
	return out, total
}

// TestSearchDetectorOpensIncidents: the corpus events indexed in the real
// engine with the ECS mapping; the durable detector finds the planted
// sessions and opens one incident per instance with every hit as evidence —
// the same 18 hits on 5 instances as the file detector.
func TestSearchDetectorOpensIncidents(t *testing.T) {
	sc, _ := searchtest.Client(t, searchtest.Native, search.Config{})
	prefix := searchtest.Prefix(t, sc)
	var docs []search.BulkDoc
	for i, l := range searchtest.ReadNDJSON(t, filepath.Join(Testdata, "packetbeat", "GENERATED_packetbeat_ecs8_ec2_300events.ndjson")) {
		docs = append(docs, search.BulkDoc{Index: prefix + []string{"2024.05.01", "2024.05.02"}[i%2], ID: fmt.Sprintf("corpus-%03d", i+1), Source: l})
	}
	searchtest.Index(t, sc, 2, docs)
	sc, _ = searchtest.Client(t, searchtest.Native, search.Config{Index: prefix + "*", Settle: -1})

	h := New(t, simcloud.Delays{}, "")
	det := searchDetector(t)
	detectWorker(t, h, &search.Activities{Search: sc, Detector: det, Temporal: h.Client, Resolver: &app.Resolver{Cloud: h.Sim}})
	_, started, err := workflows.StartDetector(context.Background(), h.Client, "detector/corpus", workflows.DetectorConfig{
		PollInterval: 200 * time.Millisecond, Policy: holdPolicy,
	})
	require.NoError(t, err)
	require.True(t, started)

	st := waitDetector(t, h, "detector/corpus", time.Minute, "caught up", func(s workflows.DetectorStatus) bool {
		return s.Counts.Considered == 107 && s.Phase == workflows.DetectorWaiting
	})
	require.EqualValues(t, 18, st.Counts.Hits)
	require.EqualValues(t, 18, st.Counts.Evidence)
	require.EqualValues(t, 5, st.Counts.Started)
	require.Zero(t, st.Counts.Unresolved)
	require.Zero(t, st.Counts.FailedPolls)
	require.Equal(t, 0, st.Failures)

	var instances []string
	for _, in := range h.Sim.Instances() {
		instances = append(instances, in.ID)
	}
	refs, total := evidenceRefs(t, h, instances)
	require.Len(t, refs, 5, "one incident per instance")
	require.Equal(t, 18, total)
	for inst, rs := range refs {
		info, _ := h.Sim.Instance(inst)
		inc, err := workflows.GetStatus(context.Background(), h.Client, workflows.IncidentID("123456789012", info.Region, inst))
		require.NoError(t, err)
		require.False(t, inc.Phase.Final(), "incident %s open (%s)", inst, inc.Phase)
		require.Equal(t, "detector", inc.Evidence[0].Source)
		for _, r := range rs {
			require.True(t, strings.HasPrefix(r, prefix), "evidence is the flow document %s", r)
		}
	}
}

// TestSearchDetectorWorkerRestart: thousands of generated flows with planted
// sessions; the worker is stopped in the middle of the run and a new one
// started. Every planted session becomes evidence exactly once.
func TestSearchDetectorWorkerRestart(t *testing.T) {
	sc, _ := searchtest.Client(t, searchtest.Native, search.Config{})
	prefix := searchtest.Prefix(t, sc)
	h := New(t, simcloud.Delays{}, "")

	type host struct{ id, ip, region string }
	var hosts []host
	for _, in := range h.Sim.Instances() {
		hosts = append(hosts, host{in.ID, in.PrivateIP, in.Region})
	}
	require.Len(t, hosts, 5)
	// The first host has no cloud metadata: the detector's default region
	// (us-east-1) must be its own.
	sort.SliceStable(hosts, func(i, j int) bool { return hosts[i].region == "us-east-1" && hosts[j].region != "us-east-1" })
	bad := []string{"1.19.6.4", "101.50.83.146", "2.57.232.61"}
	good := []string{"52.94.76.10", "151.101.1.69", "140.82.112.3"}
	base := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	const n = 3000
	var docs []search.BulkDoc
	want := map[string]map[string]bool{} // instance → planted refs
	for i := range n {
		hst := hosts[i%len(hosts)]
		dst := good[i%len(good)]
		id := fmt.Sprintf("flow-%05d", i)
		planted := i%47 == 7 // 63 sessions, on every host
		if planted {
			dst = bad[i%len(bad)]
			id = fmt.Sprintf("planted-%05d", i)
		}
		index := prefix + []string{"a", "b", "c"}[i%3]
		ts := base.Add(time.Duration(i/3) * 10 * time.Millisecond) // three events per timestamp
		doc := map[string]any{
			"@timestamp":  ts.Format(time.RFC3339Nano),
			"event":       map[string]any{"dataset": "network_traffic.flow"},
			"flow":        map[string]any{"id": id, "final": true},
			"source":      map[string]any{"ip": hst.ip, "port": 40000 + i%20000},
			"destination": map[string]any{"ip": dst, "port": 443},
			"network":     map[string]any{"transport": "tcp"},
			"cloud":       map[string]any{"instance": map[string]any{"id": hst.id}, "account": map[string]any{"id": "123456789012"}, "region": hst.region},
		}
		if hst.id == hosts[0].id {
			// add_cloud_metadata missing on this host: found by its address.
			delete(doc, "cloud")
		}
		b, _ := json.Marshal(doc)
		docs = append(docs, search.BulkDoc{Index: index, ID: id, Source: b})
		if planted {
			if want[hst.id] == nil {
				want[hst.id] = map[string]bool{}
			}
			want[hst.id][index+"/_doc/"+id] = true
		}
	}
	searchtest.Index(t, sc, 2, docs)
	plantedTotal := 0
	for _, w := range want {
		plantedTotal += len(w)
	}
	require.Equal(t, 64, plantedTotal)
	require.Len(t, want, 5)

	// Slow pages make the run long enough to stop the worker inside it.
	sc, _ = searchtest.Client(t, searchtest.Native, search.Config{Index: prefix + "*", Settle: -1, PageSize: 50})
	acts := &search.Activities{Search: sc, Detector: searchDetector(t), Temporal: h.Client, Resolver: &app.Resolver{Cloud: h.Sim}}
	w := detectWorker(t, h, acts)
	_, _, err := workflows.StartDetector(context.Background(), h.Client, "detector/restart", workflows.DetectorConfig{
		PollInterval: 100 * time.Millisecond, MaxEvents: 150, MaxHits: 4, RunPolls: 7, Policy: holdPolicy,
		Account: "123456789012", Region: "us-east-1",
	})
	require.NoError(t, err)

	mid := waitDetector(t, h, "detector/restart", time.Minute, "mid-run", func(s workflows.DetectorStatus) bool {
		return s.Counts.Events >= n/3
	})
	w.Stop()
	t.Logf("worker stopped at %d of %d events, phase %s, %d evidence", mid.Counts.Events, n, mid.Phase, mid.Counts.Evidence)
	require.Less(t, mid.Counts.Events, int64(n), "stopped before the end")
	time.Sleep(500 * time.Millisecond)
	startDetectWorker(t, h, acts)

	st := waitDetector(t, h, "detector/restart", 2*time.Minute, "caught up", func(s workflows.DetectorStatus) bool {
		return s.Counts.Events == n && s.Phase == workflows.DetectorWaiting
	})
	require.Positive(t, st.Runs, "continued as new along the way")
	require.EqualValues(t, n, st.Counts.Considered, "each event read once")
	require.EqualValues(t, plantedTotal, st.Counts.Hits)
	require.EqualValues(t, plantedTotal, st.Counts.Evidence)
	require.Zero(t, st.Counts.Unresolved, "the host without cloud metadata was found by its address")

	var instances []string
	for _, hst := range hosts {
		instances = append(instances, hst.id)
	}
	got, total := evidenceRefs(t, h, instances)
	require.Equal(t, plantedTotal, total, "each planted session is evidence exactly once")
	require.Len(t, got, 5)
	for inst, refs := range got {
		sort.Strings(refs)
		var exp []string
		for r := range want[inst] {
			exp = append(exp, r)
		}
		sort.Strings(exp)
		require.Equal(t, exp, refs, "evidence of %s", inst)
	}
}

// flakyProxy forwards to the engine while up and answers 503 while down.
type flakyProxy struct {
	up    atomic.Bool
	calls atomic.Int64
	srv   *httptest.Server
}

func newFlakyProxy(t testing.TB, target string) *flakyProxy {
	u, err := url.Parse(target)
	require.NoError(t, err)
	rp := httputil.NewSingleHostReverseProxy(u)
	p := &flakyProxy{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.calls.Add(1)
		if !p.up.Load() {
			http.Error(w, `{"error":{"type":"unavailable","reason":"engine down (test)"},"status":503}`, http.StatusServiceUnavailable)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// TestSearchDetectorEngineDown: while the engine does not answer, searches
// fail, are retried with backoff, the checkpoint stays put and the status
// says so; once it answers, the detector catches up with nothing lost.
func TestSearchDetectorEngineDown(t *testing.T) {
	sc, _ := searchtest.Client(t, searchtest.Native, search.Config{})
	prefix := searchtest.Prefix(t, sc)
	var docs []search.BulkDoc
	for i, l := range searchtest.ReadNDJSON(t, filepath.Join(Testdata, "packetbeat", "GENERATED_packetbeat_ecs8_ec2_300events.ndjson")) {
		docs = append(docs, search.BulkDoc{Index: prefix + "x", ID: fmt.Sprintf("corpus-%03d", i+1), Source: l})
	}
	searchtest.Index(t, sc, 1, docs)

	proxy := newFlakyProxy(t, searchtest.URL(t))
	down, err := search.New(search.Config{URLs: []string{proxy.srv.URL}, Index: prefix + "*", Settle: -1, Timeout: 5 * time.Second})
	require.NoError(t, err)
	h := New(t, simcloud.Delays{}, "")
	detectWorker(t, h, &search.Activities{Search: down, Detector: searchDetector(t), Temporal: h.Client})
	_, _, err = workflows.StartDetector(context.Background(), h.Client, "detector/down", workflows.DetectorConfig{
		PollInterval: 100 * time.Millisecond, SearchAttempts: 2, BackoffInitial: 200 * time.Millisecond, BackoffMax: time.Second,
		Policy: holdPolicy,
	})
	require.NoError(t, err)

	st := waitDetector(t, h, "detector/down", time.Minute, "backing off after failures", func(s workflows.DetectorStatus) bool {
		return s.Failures >= 3 && s.Phase == workflows.DetectorBackingOff
	})
	var text strings.Builder
	search.FormatStatus(&text, "detector/down", st)
	t.Logf("while down (next poll in %s):\n%s", time.Until(st.NextPoll).Round(time.Millisecond), text.String())
	require.Contains(t, text.String(), "failing, ")
	require.Contains(t, st.LastError, "503")
	require.True(t, st.Checkpoint.Time.IsZero(), "checkpoint not advanced")
	require.Empty(t, st.Checkpoint.Seen)
	require.Zero(t, st.Counts.Events)
	require.GreaterOrEqual(t, st.Counts.FailedPolls, int64(3))
	require.False(t, st.NextPoll.IsZero())
	calls := proxy.calls.Load()
	time.Sleep(1500 * time.Millisecond)
	require.Less(t, proxy.calls.Load()-calls, int64(12), "backoff: a few calls per second at most, not a busy loop")

	proxy.up.Store(true)
	st = waitDetector(t, h, "detector/down", time.Minute, "recovered and caught up", func(s workflows.DetectorStatus) bool {
		return s.Counts.Considered == 107 && s.Phase == workflows.DetectorWaiting
	})
	require.Equal(t, 0, st.Failures)
	require.NotEmpty(t, st.LastError, "the last failure stays visible")
	require.EqualValues(t, 18, st.Counts.Evidence)
}

// TestRecordDetectorHistory records the first run of a detector (a failed
// search retried after backoff, hits delivered over several polls, then
// continue-as-new) for workflows' replay test:
//
//	eval "$(scripts/search start)"
//	CORDON_RECORD_DETECTOR_HISTORY=$PWD/workflows/testdata/detector_vN.json go test ./internal/e2e -run TestRecordDetectorHistory
func TestRecordDetectorHistory(t *testing.T) {
	out := os.Getenv("CORDON_RECORD_DETECTOR_HISTORY")
	if out == "" {
		t.Skip("set CORDON_RECORD_DETECTOR_HISTORY=FILE to record a detector history for the replay test")
	}
	sc, _ := searchtest.Client(t, searchtest.Native, search.Config{})
	prefix := searchtest.Prefix(t, sc)
	var docs []search.BulkDoc
	for i, l := range searchtest.ReadNDJSON(t, filepath.Join(Testdata, "packetbeat", "GENERATED_packetbeat_ecs8_ec2_300events.ndjson")) {
		docs = append(docs, search.BulkDoc{Index: prefix + "x", ID: fmt.Sprintf("corpus-%03d", i+1), Source: l})
	}
	searchtest.Index(t, sc, 1, docs)
	proxy := newFlakyProxy(t, searchtest.URL(t))
	flaky, err := search.New(search.Config{URLs: []string{proxy.srv.URL}, Index: prefix + "*", Settle: -1})
	require.NoError(t, err)
	h := New(t, simcloud.Delays{}, "")
	detectWorker(t, h, &search.Activities{Search: flaky, Detector: searchDetector(t), Temporal: h.Client})
	ctx := context.Background()
	run, _, err := workflows.StartDetector(ctx, h.Client, "detector/record", workflows.DetectorConfig{
		PollInterval: 100 * time.Millisecond, MaxEvents: 40, RunPolls: 6, SearchAttempts: 1, BackoffInitial: 100 * time.Millisecond,
		Policy: holdPolicy,
	})
	require.NoError(t, err)
	waitDetector(t, h, "detector/record", time.Minute, "failing", func(s workflows.DetectorStatus) bool { return s.Failures > 0 })
	proxy.up.Store(true)
	waitDetector(t, h, "detector/record", time.Minute, "continued as new", func(s workflows.DetectorStatus) bool { return s.Runs > 0 })
	iter := h.Client.GetWorkflowHistory(ctx, "detector/record", run.GetRunID(), false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	hist := &historypb.History{}
	for iter.HasNext() {
		ev, err := iter.Next()
		require.NoError(t, err)
		hist.Events = append(hist.Events, ev)
	}
	b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(hist)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(out, b, 0o644))
	t.Logf("%d events written to %s", len(hist.Events), out)
}
