// Package e2e runs Cordon end to end: the embedded Temporal server, a real
// worker, the simulated cloud and the detector over the bundled testdata.
// Harness is shared by the end-to-end tests, the CLI tests and benchmarks.
package e2e

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enums "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"

	"github.com/cordonhq/cordon/activities"
	"github.com/cordonhq/cordon/internal/app"
	"github.com/cordonhq/cordon/internal/devserver"
	"github.com/cordonhq/cordon/simcloud"
	"github.com/cordonhq/cordon/workflows"
)

// Testdata is the repository's testdata directory.
var Testdata = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata")
}()

// Harness is one Temporal server + simulated cloud + worker.
type Harness struct {
	t      testing.TB
	Srv    *devserver.Server
	Client client.Client
	Sim    *simcloud.Cloud
	Acts   *activities.Activities
	Worker worker.Worker
	// Limits are the governors' limits for the next StartWorker.
	Limits workflows.GovernorLimits

	srvOpts devserver.Options // how Srv was started, for StartServer
}

func New(t testing.TB, delays simcloud.Delays, dbFile string) *Harness {
	t.Helper()
	env, err := simcloud.LoadEnvironment(filepath.Join(Testdata, "sim/seed.yaml"))
	require.NoError(t, err)
	return NewWithEnv(t, env, delays, dbFile)
}

// NewWithEnv is New over a given simulated environment.
func NewWithEnv(t testing.TB, env *simcloud.Environment, delays simcloud.Delays, dbFile string) *Harness {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	opts := devserver.Options{DBFile: dbFile, UIPort: devserver.NoUI, SearchAttributes: searchAttributes(), Logger: log}
	srv, err := devserver.Start(ctx, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Stop() })
	sim, err := simcloud.New(env, simcloud.Options{Delays: delays})
	require.NoError(t, err)
	h := &Harness{t: t, Srv: srv, Sim: sim, Limits: workflows.DefaultGovernorLimits, srvOpts: opts}
	h.Client = h.Dial()
	h.Acts = &activities.Activities{Cloud: sim, Notifier: &activities.Notifier{SNS: sim, TopicARN: "arn:aws:sns:us-east-1:123456789012:cordon-alerts"}, PollInterval: 50 * time.Millisecond}
	h.StartWorker()
	return h
}

// NewWithCloud is a harness over any cloud provider (the AWS provider on
// moto in moto_e2e_test.go) and notifier; Sim is nil.
func NewWithCloud(t testing.TB, cloud activities.CloudProvider, notifier *activities.Notifier, dbFile string) *Harness {
	t.Helper()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	opts := devserver.Options{DBFile: dbFile, UIPort: devserver.NoUI, SearchAttributes: searchAttributes(), Logger: log}
	srv, err := devserver.Start(context.Background(), opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Stop() })
	h := &Harness{t: t, Srv: srv, srvOpts: opts}
	h.Client = h.Dial()
	h.Acts = &activities.Activities{Cloud: cloud, Notifier: notifier, PollInterval: 50 * time.Millisecond}
	h.StartWorker()
	return h
}

func (h *Harness) Dial() client.Client {
	c, err := client.Dial(client.Options{HostPort: h.Srv.FrontendHostPort(), Namespace: h.Srv.Namespace(), Logger: quiet{}})
	require.NoError(h.t, err)
	h.t.Cleanup(c.Close)
	return c
}

func (h *Harness) StartWorker() {
	h.Worker = app.NewWorker(h.Client, h.Acts, h.Limits, worker.Options{})
	require.NoError(h.t, h.Worker.Start())
	h.t.Cleanup(h.Worker.Stop)
}

// StopServer stops the worker, closes the client and stops the embedded
// Temporal server, as a crash of the whole worker host would (the SQLite file
// stays). StartServer brings them back.
func (h *Harness) StopServer() {
	h.t.Helper()
	h.Worker.Stop()
	h.Client.Close()
	require.NoError(h.t, h.Srv.Stop())
}

// StartServer starts the embedded Temporal server again on the SQLite file it
// was first started on (a new frontend port), dials a new Client and starts
// a new Worker. The harness must have been made with a dbFile: an in-memory
// server does not keep its workflows.
func (h *Harness) StartServer() {
	h.t.Helper()
	require.NotEmpty(h.t, h.srvOpts.DBFile, "StartServer needs a harness on a SQLite file (dbFile)")
	srv, err := devserver.Start(context.Background(), h.srvOpts)
	require.NoError(h.t, err)
	h.t.Cleanup(func() { _ = srv.Stop() })
	h.Srv = srv
	h.Client = h.Dial()
	h.StartWorker()
}

// RestartServer is StopServer then StartServer.
func (h *Harness) RestartServer() {
	h.t.Helper()
	h.StopServer()
	h.StartServer()
}

// WaitFinal polls the incidents until each is in a final phase.
func (h *Harness) WaitFinal(ids []string, timeout time.Duration) map[string]workflows.Status {
	h.t.Helper()
	out := map[string]workflows.Status{}
	deadline := time.Now().Add(timeout)
	for len(out) < len(ids) && time.Now().Before(deadline) {
		for _, id := range ids {
			if _, ok := out[id]; ok {
				continue
			}
			st, err := workflows.GetStatus(context.Background(), h.Client, id)
			if err == nil && st.Phase.Final() {
				out[id] = st
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	require.Len(h.t, out, len(ids), "incidents still open after %s", timeout)
	return out
}

func (h *Harness) WaitPhase(id string, phase workflows.Phase, timeout time.Duration) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		st, err := workflows.GetStatus(context.Background(), h.Client, id)
		if err == nil && st.Phase == phase {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.t.Fatalf("incident %s never reached %s", id, phase)
}

// ServerPhase is the incident's phase as the server records it (the
// CordonPhase search attribute): no worker needed, unlike the status query.
func (h *Harness) ServerPhase(id string) workflows.Phase {
	h.t.Helper()
	d, err := h.Client.DescribeWorkflowExecution(context.Background(), id, "")
	require.NoError(h.t, err)
	p := d.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields()["CordonPhase"]
	var phase string
	if p != nil {
		require.NoError(h.t, converter.GetDefaultDataConverter().FromPayload(p, &phase))
	}
	return workflows.Phase(phase)
}

// WaitActivityRunning waits until the server counts an attempt of activity
// as running for the incident (running) or no longer does (!running: the
// stopped worker reported its attempt ended).
func (h *Harness) WaitActivityRunning(id, activity string, running bool, timeout time.Duration) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		d, err := h.Client.DescribeWorkflowExecution(context.Background(), id, "")
		if err == nil {
			started := false
			for _, pa := range d.GetPendingActivities() {
				if pa.GetActivityType().GetName() == activity && pa.GetState() == enums.PENDING_ACTIVITY_STATE_STARTED {
					started = true
				}
			}
			if started == running {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if running {
		h.t.Fatalf("%s never ran for %s", activity, id)
	}
	h.t.Fatalf("the stopped attempt of %s for %s was never reported", activity, id)
}

func searchAttributes() map[string]enums.IndexedValueType {
	m := map[string]enums.IndexedValueType{}
	for _, n := range workflows.SearchAttributeNames {
		m[n] = enums.INDEXED_VALUE_TYPE_KEYWORD
	}
	return m
}

type quiet struct{}

func (quiet) Debug(string, ...any) {}
func (quiet) Info(string, ...any)  {}
func (quiet) Warn(string, ...any)  {}
func (quiet) Error(string, ...any) {}
