// Package e2e runs Cordon end to end: the embedded Temporal server, a real
// worker, the simulated cloud and the detector over the bundled testdata.
package e2e

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enums "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cordonhq/cordon/detector"
	"github.com/cordonhq/cordon/internal/app"
	"github.com/cordonhq/cordon/simcloud"
	"github.com/cordonhq/cordon/workflows"
)

func detectTestdata(t *testing.T, h *Harness) app.DetectReport {
	m, err := app.LoadMatcher([]string{filepath.Join(Testdata, "blocklists")}, nil, func(s string) { t.Log("blocklist:", s) })
	require.NoError(t, err)
	det := detector.NewDetector(detector.NewMatcherHolder(m), detector.Options{})
	rep, err := app.DetectFiles(context.Background(), h.Client, det, &app.Resolver{Cloud: h.Sim},
		[]string{filepath.Join(Testdata, "packetbeat/GENERATED_packetbeat_ecs8_ec2_300events.ndjson")}, app.DetectOptions{})
	require.NoError(t, err)
	return rep
}

// TestDetectToResolved is the whole job: detector over the bundled capture →
// one incident per instance → each contained, imaged, copied, terminated,
// the group healed, the image deregistered with its snapshots kept.
func TestDetectToResolved(t *testing.T) {
	h := New(t, simcloud.Delays{}, "")
	g0, ok := h.Sim.Group("web-asg")
	require.True(t, ok)
	rep := detectTestdata(t, h)
	require.Empty(t, rep.Unresolved)
	require.Len(t, rep.Incidents, 5, "five web servers talked to listed addresses")
	require.Greater(t, rep.Stats.Hits, len(rep.Incidents), "several hits per instance became evidence on one incident")

	final := h.WaitFinal(rep.Incidents, 2*time.Minute)
	evidence := 0
	quarantineSubnet, ok := h.Sim.SubnetID("quarantine")
	require.True(t, ok)
	iso, ok := h.Sim.SecurityGroup("cordon-isolation")
	require.True(t, ok)
	for id, st := range final {
		require.Equal(t, workflows.PhaseResolved, st.Phase, "%s: %s", id, st.Reason)
		require.Equal(t, workflows.OutcomeResolved, st.Outcome, st.Reason)
		evidence += st.EvidenceCount

		orig, ok := h.Sim.Instance(st.InstanceID)
		require.True(t, ok)
		require.Equal(t, "terminated", orig.State, "original %s", st.InstanceID)

		cp, ok := h.Sim.Instance(st.Resources.QuarantineInstanceID)
		require.True(t, ok, "quarantine copy of %s", st.InstanceID)
		require.Equal(t, "running", cp.State)
		require.Equal(t, quarantineSubnet, cp.SubnetID)
		require.Empty(t, cp.IAMInstanceProfile, "no instance profile")
		require.Empty(t, cp.PublicIP, "no public address")
		require.NotEmpty(t, cp.ENIs)
		for _, eni := range cp.ENIs {
			require.Equal(t, []string{iso.ID}, eni.GroupIDs, "only the isolation group")
		}
		require.Zero(t, orig.Reboots, "imaged with NoReboot")

		if img, ok := h.Sim.Image(st.Resources.ImageID); ok {
			require.EqualValues(t, "deregistered", img.State, "image %s deregistered", st.Resources.ImageID)
			require.True(t, img.NoReboot)
		}
		require.True(t, st.Resources.ImageDeregistered)
		require.NotEmpty(t, st.Resources.SnapshotIDs)
		for _, snap := range st.Resources.SnapshotIDs {
			_, kept := h.Sim.Snapshot(snap)
			require.True(t, kept, "snapshot %s kept as evidence", snap)
		}
	}
	require.Equal(t, rep.Stats.Hits, evidence, "every hit is evidence on its incident")
	g, _ := h.Sim.Group("web-asg")
	require.Equal(t, g0.Desired, g.Desired, "desired capacity unchanged")
	inService := 0
	for _, m := range g.Members {
		if m.LifecycleState == "InService" {
			inService++
		}
	}
	require.Equal(t, int(g.Desired), inService, "the group healed")
}

// TestAlertStormOneIncident: many alerts for one instance while its
// incident is open become evidence on that one incident.
func TestAlertStormOneIncident(t *testing.T) {
	h := New(t, simcloud.Delays{ImageAvailable: 2 * time.Second}, "")
	in := workflows.QuarantineInput{Account: "123456789012", Region: "us-east-1", InstanceID: "i-0144394dc883f9fe0",
		Evidence: workflows.Evidence{Source: "test", BadIP: "1.19.6.4"}}
	ctx := context.Background()
	var runs = map[string]bool{}
	for i := 0; i < 20; i++ {
		r, err := workflows.Open(ctx, h.Client, in)
		require.NoError(t, err)
		runs[r.GetRunID()] = true
	}
	require.Len(t, runs, 1, "one workflow run for the instance")
	id := workflows.IncidentID(in.Account, in.Region, in.InstanceID)
	st := h.WaitFinal([]string{id}, time.Minute)[id]
	require.Equal(t, workflows.OutcomeResolved, st.Outcome)
	require.Equal(t, 20, st.EvidenceCount, "20 alerts, 20 pieces of evidence")
}

// TestWorkerCrashWhileImaging stops the worker while the image is pending
// and starts a new one; the incident completes with exactly one image and
// one quarantine copy.
func TestWorkerCrashWhileImaging(t *testing.T) {
	db := filepath.Join(t.TempDir(), "temporal.db")
	h := New(t, simcloud.Delays{ImageAvailable: 3 * time.Second}, db)
	in := workflows.QuarantineInput{Account: "123456789012", Region: "us-east-1", InstanceID: "i-0144394dc883f9fe0",
		Evidence: workflows.Evidence{Source: "test", BadIP: "1.19.6.4"}}
	_, err := workflows.Open(context.Background(), h.Client, in)
	require.NoError(t, err)
	id := workflows.IncidentID(in.Account, in.Region, in.InstanceID)
	// Stop the worker while the wait for the image runs, and start it once
	// the server knows that attempt ended (a lost report would cost the
	// wait's heartbeat timeout).
	h.WaitActivityRunning(id, "WaitImageAvailable", true, time.Minute)
	h.Worker.Stop()
	h.WaitActivityRunning(id, "WaitImageAvailable", false, 30*time.Second)
	h.StartWorker()
	st := h.WaitFinal([]string{id}, 5*time.Minute)[id]
	require.Equal(t, workflows.OutcomeResolved, st.Outcome, st.Reason)

	// Images are deregistered at the end; their snapshots (kept) name them.
	imageSet := map[string]bool{}
	for _, snap := range h.Sim.Snapshots() {
		if snap.Tags["cordon:incident"] == id {
			imageSet[snap.Description] = true
		}
	}
	var images, copies []string
	for d := range imageSet {
		images = append(images, d)
	}
	for _, inst := range h.Sim.Instances() {
		if inst.Tags["cordon:incident"] == id && inst.Tags["cordon:state"] == "quarantine-copy" {
			copies = append(copies, inst.ID)
		}
	}
	sort.Strings(images)
	require.Len(t, images, 1, "exactly one image: %v", images)
	require.Len(t, copies, 1, "exactly one quarantine copy: %v", copies)
	require.Equal(t, st.Resources.QuarantineInstanceID, copies[0])
}

// TestRecordHistory writes the history of one complete incident for the
// replay test in workflows/. Run it when the workflow changes (behind
// workflow.GetVersion), keeping the old file:
//
//	CORDON_RECORD_HISTORY=$PWD/workflows/testdata/quarantine_vN.json go test ./internal/e2e -run TestRecordHistory
func TestRecordHistory(t *testing.T) {
	out := os.Getenv("CORDON_RECORD_HISTORY")
	if out == "" {
		t.Skip("set CORDON_RECORD_HISTORY=FILE to record a history for the replay test")
	}
	h := New(t, simcloud.Delays{}, "")
	h.Worker.Stop() // with the account-wide governor, as the worker runs by default
	h.Limits.AccountMaxConcurrent, h.Limits.AccountBreakerCount = 10, 20
	h.StartWorker()
	in := workflows.QuarantineInput{Account: "123456789012", Region: "us-east-1", InstanceID: "i-0144394dc883f9fe0",
		Evidence: workflows.Evidence{Source: "detector", BadIP: "85.239.243.155", Rule: "feodotracker_ipblocklist_2024-04-04.csv"},
		Policy:   workflows.Policy{Approval: workflows.ApprovalBeforeDestructive}}
	ctx := context.Background()
	_, err := workflows.Open(ctx, h.Client, in)
	require.NoError(t, err)
	id := workflows.IncidentID(in.Account, in.Region, in.InstanceID)
	_, err = workflows.Open(ctx, h.Client, workflows.QuarantineInput{Account: in.Account, Region: in.Region, InstanceID: in.InstanceID,
		Evidence: workflows.Evidence{Source: "elastalert", BadIP: "1.19.6.4"}})
	require.NoError(t, err)
	h.WaitPhase(id, workflows.PhaseAwaitingApproval, time.Minute)
	_, err = workflows.Decide(ctx, h.Client, id, workflows.UpdateApprove, workflows.Decision{By: "recorder"})
	require.NoError(t, err)
	st := h.WaitFinal([]string{id}, time.Minute)[id]
	require.Equal(t, workflows.OutcomeResolved, st.Outcome)
	iter := h.Client.GetWorkflowHistory(ctx, id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	hist := &historypb.History{}
	for iter.HasNext() {
		ev, err := iter.Next()
		require.NoError(t, err)
		hist.Events = append(hist.Events, ev)
	}
	b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(hist)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(out, b, 0o644))
}
