package e2e

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"

	"github.com/cordonhq/cordon/activities"
	"github.com/cordonhq/cordon/internal/app"
	"github.com/cordonhq/cordon/internal/devserver"
	"github.com/cordonhq/cordon/simcloud"
	"github.com/cordonhq/cordon/workflows"
)

// syncBuffer collects every log line of the run.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSecretsNeverLogged runs whole incidents with the LIFX token and the
// IFTTT key configured, against alert endpoints that fail and echo the
// request (path with the key, Authorization header) in their error bodies,
// with every log at debug level — then greps all of it for the secrets.
func TestSecretsNeverLogged(t *testing.T) {
	const token = "c0ffee-lifx-token-5ecret"
	const key = "ifttt-key-5ecret-d00d"
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, "Cannot %s %s (auth %s)", r.Method, r.URL.Path, r.Header.Get("Authorization"))
	}))
	defer echo.Close()

	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx := context.Background()
	srv, err := devserver.Start(ctx, devserver.Options{UIPort: devserver.NoUI, SearchAttributes: searchAttributes(), Logger: log, LogLevel: slog.LevelDebug})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Stop() })
	c, err := client.Dial(client.Options{HostPort: srv.FrontendHostPort(), Namespace: srv.Namespace(), Logger: tlog.NewStructuredLogger(log)})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	env, err := simcloud.LoadEnvironment(filepath.Join(Testdata, "sim/seed.yaml"))
	require.NoError(t, err)
	sim, err := simcloud.New(env, simcloud.Options{})
	require.NoError(t, err)
	notifier := &activities.Notifier{SNS: sim, TopicARN: "arn:aws:sns:us-east-1:123456789012:cordon-alerts",
		LIFXToken: token, LIFXBaseURL: echo.URL + "/v1", IFTTTKey: key, IFTTTBaseURL: echo.URL, HTTP: &http.Client{Timeout: 5 * time.Second}}
	w := app.NewWorker(c, &activities.Activities{Cloud: sim, Notifier: notifier, PollInterval: 20 * time.Millisecond}, workflows.DefaultGovernorLimits, worker.Options{})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	var ids []string
	for _, inst := range []string{"i-0144394dc883f9fe0", "i-085a2fa5fa92cd19c"} {
		in := workflows.QuarantineInput{Account: "123456789012", Region: "us-east-1", InstanceID: inst,
			Evidence: workflows.Evidence{Source: "test", BadIP: "1.19.6.4"}}
		_, err := workflows.Open(ctx, c, in)
		require.NoError(t, err)
		ids = append(ids, workflows.IncidentID(in.Account, in.Region, inst))
	}
	deadline := time.Now().Add(time.Minute)
	for _, id := range ids {
		for {
			st, err := workflows.GetStatus(ctx, c, id)
			if err == nil && st.Phase.Final() {
				require.Equal(t, workflows.OutcomeResolved, st.Outcome, st.Reason)
				break
			}
			require.True(t, time.Now().Before(deadline), "incident %s still open", id)
			time.Sleep(50 * time.Millisecond)
		}
	}
	out := logs.String()
	require.Contains(t, out, "alert channel failed", "the failing channels were logged")
	require.Contains(t, out, "[redacted]", "with the secrets redacted")
	require.NotContains(t, out, token)
	require.NotContains(t, out, key)
	for _, p := range sim.Published() {
		require.False(t, strings.Contains(p.Message, token) || strings.Contains(p.Message, key), "alert body leaks a secret")
	}
}
