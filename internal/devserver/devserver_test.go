package devserver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

var (
	phaseKey    = temporal.NewSearchAttributeKeyKeyword("CordonPhase")
	incidentKey = temporal.NewSearchAttributeKeyKeyword("CordonIncident")
)

// setPhaseWorkflow upserts CordonPhase (and CordonIncident when incident is
// not empty) and completes.
func setPhaseWorkflow(ctx workflow.Context, phase, incident string) (string, error) {
	updates := []temporal.SearchAttributeUpdate{phaseKey.ValueSet(phase)}
	if incident != "" {
		updates = append(updates, incidentKey.ValueSet(incident))
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, updates...); err != nil {
		return "", err
	}
	return phase, nil
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func startServer(t *testing.T, opts Options) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	begin := time.Now()
	s, err := Start(ctx, opts)
	require.NoError(t, err)
	t.Logf("Start took %s (frontend %s, ui %q, namespace %s)", time.Since(begin), s.FrontendHostPort(), s.UIURL(), s.Namespace())
	return s
}

func dial(t *testing.T, s *Server) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{
		HostPort:  s.FrontendHostPort(),
		Namespace: s.Namespace(),
		Logger:    sdklog.NewStructuredLogger(testLogger(t)),
	})
	require.NoError(t, err)
	return c
}

// runPhaseWorkflow runs setPhaseWorkflow to completion with a temporary worker.
func runPhaseWorkflow(t *testing.T, c client.Client, id, phase, incident string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tq := "tq-" + id
	w := worker.New(c, tq, worker.Options{})
	w.RegisterWorkflow(setPhaseWorkflow)
	require.NoError(t, w.Start())
	defer w.Stop()

	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: tq}, setPhaseWorkflow, phase, incident)
	require.NoError(t, err)
	var got string
	require.NoError(t, run.Get(ctx, &got))
	require.Equal(t, phase, got)
}

// listIDs runs a visibility query.
func listIDs(t *testing.T, c client.Client, query string) []string {
	t.Helper()
	resp, err := c.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{Query: query})
	require.NoError(t, err)
	var ids []string
	for _, e := range resp.GetExecutions() {
		ids = append(ids, e.GetExecution().GetWorkflowId())
	}
	return ids
}

func requireListed(t *testing.T, c client.Client, query, id string) {
	t.Helper()
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		resp, err := c.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{Query: query})
		require.NoError(ct, err)
		var ids []string
		for _, e := range resp.GetExecutions() {
			ids = append(ids, e.GetExecution().GetWorkflowId())
		}
		require.Contains(ct, ids, id)
	}, 10*time.Second, 200*time.Millisecond, "workflow %s not listed by %q", id, query)
}

func httpGet(t *testing.T, url string) (int, string, string) {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
}

func TestDevServerPersistentWithUI(t *testing.T) {
	dbFile := filepath.Join(t.TempDir(), "sub", "cordon.db")
	const ns = "cordon-test"
	opts := Options{
		DBFile:           dbFile,
		Namespace:        ns,
		SearchAttributes: map[string]enums.IndexedValueType{"CordonPhase": enums.INDEXED_VALUE_TYPE_KEYWORD},
		Logger:           testLogger(t),
	}

	// 1. Fresh DB: run a workflow that upserts CordonPhase and find it by query.
	s := startServer(t, opts)
	t.Cleanup(func() { _ = s.Stop() })
	require.Equal(t, ns, s.Namespace())
	require.True(t, strings.HasPrefix(s.UIURL(), "http://127.0.0.1:"), s.UIURL())

	c := dial(t, s)
	const wfID = "incident-1"
	runPhaseWorkflow(t, c, wfID, "x", "")
	requireListed(t, c, `CordonPhase = "x"`, wfID)
	require.NotContains(t, listIDs(t, c, `CordonPhase = "resolved"`), wfID)

	// 2. The UI serves HTML and proxies the API to the frontend.
	code, ctype, body := httpGet(t, s.UIURL()+"/")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, ctype, "text/html")
	require.Contains(t, strings.ToLower(body), "<html")

	code, ctype, body = httpGet(t, s.UIURL()+"/api/v1/namespaces/"+ns+"/workflows")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, ctype, "application/json")
	require.True(t, json.Valid([]byte(body)), body)
	require.Contains(t, body, wfID)

	c.Close()
	require.NoError(t, s.Stop())
	require.NoError(t, s.Stop(), "Stop is idempotent")

	// 3. Restart on the same file (different ports): the workflow is still
	// there, CordonPhase still works, and a newly configured search attribute
	// is added to the existing namespace.
	opts.SearchAttributes = map[string]enums.IndexedValueType{
		"CordonPhase":    enums.INDEXED_VALUE_TYPE_KEYWORD,
		"CordonIncident": enums.INDEXED_VALUE_TYPE_KEYWORD,
	}
	s2 := startServer(t, opts)
	t.Cleanup(func() { _ = s2.Stop() })
	c2 := dial(t, s2)
	defer c2.Close()

	requireListed(t, c2, `CordonPhase = "x"`, wfID)
	sa, err := c2.OperatorService().ListSearchAttributes(context.Background(),
		&operatorservice.ListSearchAttributesRequest{Namespace: ns})
	require.NoError(t, err)
	require.Equal(t, enums.INDEXED_VALUE_TYPE_KEYWORD, sa.GetCustomAttributes()["CordonPhase"])
	require.Equal(t, enums.INDEXED_VALUE_TYPE_KEYWORD, sa.GetCustomAttributes()["CordonIncident"])

	runPhaseWorkflow(t, c2, "incident-2", "resolved", "inc-42")
	requireListed(t, c2, `CordonPhase = "resolved"`, "incident-2")
	requireListed(t, c2, `CordonIncident = "inc-42" AND CordonPhase = "resolved"`, "incident-2")
	requireListed(t, c2, `CordonPhase = "x"`, wfID)

	code, _, body = httpGet(t, s2.UIURL()+"/api/v1/namespaces/"+ns+"/workflows")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, wfID)
	require.Contains(t, body, "incident-2")
	require.NoError(t, s2.Stop())
}

func TestDevServerInMemoryNoUI(t *testing.T) {
	before := runtime.NumGoroutine()
	for i := range 2 {
		s := startServer(t, Options{
			Namespace:        fmt.Sprintf("mem-%d", i),
			UIPort:           NoUI,
			SearchAttributes: map[string]enums.IndexedValueType{"CordonPhase": enums.INDEXED_VALUE_TYPE_KEYWORD},
			Logger:           testLogger(t),
		})
		require.Empty(t, s.UIURL())
		c := dial(t, s)
		id := fmt.Sprintf("mem-wf-%d", i)
		runPhaseWorkflow(t, c, id, "open", "")
		requireListed(t, c, `CordonPhase = "open"`, id)
		c.Close()
		require.NoError(t, s.Stop())
	}
	// Let stopped goroutines wind down, then report what is left.
	time.Sleep(2 * time.Second)
	after := runtime.NumGoroutine()
	t.Logf("goroutines: before %d, after two start/stop cycles %d", before, after)
	// The server leaks ~30 idle goroutines per instance (gRPC client conns it
	// never closes); anything much larger means workers were left running.
	require.Less(t, after-before, 2*50, "goroutine leak")
}

func TestStartPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port

	_, err = Start(context.Background(), Options{FrontendPort: busy, UIPort: NoUI, Logger: testLogger(t)})
	require.ErrorContains(t, err, "frontend port")
	_, err = Start(context.Background(), Options{UIPort: busy, Logger: testLogger(t)})
	require.ErrorContains(t, err, "UI port")
}
