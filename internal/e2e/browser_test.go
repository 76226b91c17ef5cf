package e2e

import (
	"context"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/activities"
	"github.com/cordonhq/cordon/internal/devserver"
	"github.com/cordonhq/cordon/simcloud"
	"github.com/cordonhq/cordon/workflows"
)

// chromium finds Debian's Chromium. Locally a missing browser skips the
// test; in CI (CI=true) it is a failure, because .ci/run installs it.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed: .ci/run installs Debian's chromium package")
	}
	t.Skip("chromium not installed (apt-get install chromium); skipping the browser test")
	return ""
}

// TestWebUIListsIncident drives headless Chromium against the embedded Web
// UI after an incident and checks that the rendered page lists the
// incident's workflow ID, filtered by a Cordon search attribute.
func TestWebUIListsIncident(t *testing.T) {
	browser := chromium(t)
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	srv, err := devserver.Start(ctx, devserver.Options{SearchAttributes: searchAttributes(), Logger: log})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Stop() })
	env, err := simcloud.LoadEnvironment(Testdata + "/sim/seed.yaml")
	require.NoError(t, err)
	sim, err := simcloud.New(env, simcloud.Options{})
	require.NoError(t, err)
	h := &Harness{t: t, Srv: srv, Sim: sim, Limits: workflows.DefaultGovernorLimits}
	h.Client = h.Dial()
	h.Acts = &activities.Activities{Cloud: sim, PollInterval: 50 * time.Millisecond}
	h.StartWorker()

	in := workflows.QuarantineInput{Account: "123456789012", Region: "us-east-1", InstanceID: "i-0144394dc883f9fe0",
		Evidence: workflows.Evidence{Source: "test", BadIP: "1.19.6.4"}, UIBaseURL: srv.UIURL()}
	_, err = workflows.Open(ctx, h.Client, in)
	require.NoError(t, err)
	id := workflows.IncidentID(in.Account, in.Region, in.InstanceID)
	h.WaitFinal([]string{id}, time.Minute)

	page := srv.UIURL() + "/namespaces/" + srv.Namespace() + "/workflows?query=" + url.QueryEscape(`CordonInstanceID = "i-0144394dc883f9fe0"`)
	var dom string
	// The list is rendered by JavaScript after the page loads; give the
	// browser a virtual-time budget, and retry once in case visibility lags.
	for attempt := 0; attempt < 3 && !strings.Contains(dom, id); attempt++ {
		cctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		cmd := exec.CommandContext(cctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
			"--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir="+t.TempDir(),
			"--virtual-time-budget=15000", "--dump-dom", page)
		out, err := cmd.Output()
		cancel()
		require.NoError(t, err, "chromium: %s", out)
		dom = string(out)
	}
	require.Contains(t, dom, id, "the rendered Web UI lists the incident")
	require.Contains(t, dom, "QuarantineWorkflow")
}
