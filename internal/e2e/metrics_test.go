package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/cordonhq/cordon/internal/metrics"
	"github.com/cordonhq/cordon/simcloud"
	"github.com/cordonhq/cordon/workflows"
)

// TestIncidentMetrics: the worker's Prometheus registry counts incidents
// opened and closed by outcome and times each phase, next to the SDK's own
// metrics.
func TestIncidentMetrics(t *testing.T) {
	h := New(t, simcloud.Delays{}, "")
	reg := prometheus.NewRegistry()
	c, err := client.Dial(client.Options{HostPort: h.Srv.FrontendHostPort(), Namespace: h.Srv.Namespace(), Logger: quiet{}, MetricsHandler: metrics.New(reg)})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	h.Worker.Stop()
	h.Client = c
	h.StartWorker()

	in := workflows.QuarantineInput{Account: "123456789012", Region: "us-east-1", InstanceID: "i-0144394dc883f9fe0",
		Evidence: workflows.Evidence{Source: "detector", BadIP: "1.19.6.4"}}
	_, err = workflows.Open(context.Background(), c, in)
	require.NoError(t, err)
	id := workflows.IncidentID(in.Account, in.Region, in.InstanceID)
	require.Equal(t, workflows.OutcomeResolved, h.WaitFinal([]string{id}, time.Minute)[id].Outcome)

	require.Eventually(t, func() bool {
		n, err := testutil.GatherAndCount(reg, "cordon_incidents_closed")
		return err == nil && n == 1
	}, 10*time.Second, 50*time.Millisecond)
	opened, err := testutil.GatherAndCount(reg, "cordon_incidents_opened")
	require.NoError(t, err)
	require.Equal(t, 1, opened)
	phases, err := testutil.GatherAndCount(reg, "cordon_phase_duration_seconds")
	require.NoError(t, err)
	require.GreaterOrEqual(t, phases, 6, "one series per phase the incident went through")
	mfs, err := reg.Gather()
	require.NoError(t, err)
	sdk := 0
	for _, mf := range mfs {
		if len(mf.GetName()) > 9 && mf.GetName()[:9] == "temporal_" {
			sdk++
		}
	}
	require.Positive(t, sdk, "the SDK's own metrics are exported too")
}
