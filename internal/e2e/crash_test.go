package e2e

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/stretchr/testify/require"
	enums "go.temporal.io/api/enums/v1"

	"github.com/cordonhq/cordon/activities"
	"github.com/cordonhq/cordon/simcloud"
	"github.com/cordonhq/cordon/workflows"
)

// The crash matrix: for each step of the runbook in turn, one incident on the
// seed environment is driven into that step, the worker is stopped while the
// step's AWS call (or wait) is in flight, and a new worker is started. The
// embedded Temporal server is also restarted once, on its SQLite file, while
// an image is pending. Every incident must resolve with exactly one image,
// one quarantine copy, no leaked security groups and snapshots as the policy
// says.
//
// How the crash is placed: the worker's activities talk to the simulated
// cloud through a crashGate, which holds one chosen AWS call — before it
// reaches the cloud, or after (the call took effect and its response is
// lost) — until the worker's stop cancels the activity. The test waits for
// the hold, checks the incident's phase, stops the worker and starts a new
// one. So the crash lands inside the step every time, with no sleeps to tune.
//
// The stop is Worker.Stop, which cancels the running activities' contexts:
// the SDK then reports the attempt failed and Temporal retries it after its
// backoff. A hard kill (the process gone) is the same to the workflow except
// that the attempt is retried only after its timeout (1 min start-to-close
// for one AWS call, 2 min heartbeat for the waits), which is too long for CI.

// crashStep is one row of the matrix.
type crashStep struct {
	name   string
	insts  []string // seed web servers (us-east-1) to open incidents for
	delays simcloud.Delays
	policy workflows.Policy
	// crash drives the incidents into the step and crashes the worker.
	crash func(t *testing.T, r *crashRig)
}

const (
	seedA = "i-0144394dc883f9fe0" // one ENI, one volume
	seedB = "i-04f2ae54915567738" // two ENIs, two volumes
	seedC = "i-085a2fa5fa92cd19c" // one ENI, one volume
)

func crashMatrix() []crashStep {
	return []crashStep{
		{name: "preflight", insts: []string{seedA},
			crash: func(t *testing.T, r *crashRig) {
				// Preflight's first call describes the instance.
				held := r.gate.Hold("DescribeInstances", false, nil)
				r.open(t)
				r.crashAt(t, held, workflows.PhasePreflight)
			}},
		{name: "governor-queued", insts: []string{seedA, seedB, seedC}, delays: simcloud.Delays{ImageAvailable: 5 * time.Second},
			crash: func(t *testing.T, r *crashRig) {
				// Two slots per group: the third incident waits for the
				// governor (phase queued) while the others image. The
				// worker stops once the two are waiting for their images
				// (no task is then on its way to the worker).
				r.open(t)
				queued := r.waitAnyPhase(t, workflows.PhaseQueued, time.Minute)
				for _, id := range r.ids {
					if id != queued {
						r.waitActivityStarted(t, id, "WaitImageAvailable")
					}
				}
				t.Logf("%s is queued; stopping the worker", queued)
				r.restartWorker(t)
				// Still queued after the restart (read from the server:
				// a status query would wait for the restarted worker).
				require.Equal(t, workflows.PhaseQueued, r.h.ServerPhase(queued))
			}},
		{name: "isolating-between-swaps", insts: []string{seedB},
			crash: func(t *testing.T, r *crashRig) {
				// The first ENI's second swap (to the no-rule group): the
				// ENI is in the allow-all transition group when the worker dies.
				iso := r.groupID(t, "cordon-isolation")
				held := r.gate.Hold("ModifyNetworkInterfaceAttribute", false, func(in any) bool {
					m := in.(*ec2.ModifyNetworkInterfaceAttributeInput)
					return slices.Equal(m.Groups, []string{iso})
				})
				r.open(t)
				r.waitHeld(t, held)
				inst, ok := r.h.Sim.Instance(seedB)
				require.True(t, ok)
				trans := r.groupID(t, "cordon-isolation-transition")
				require.Equal(t, []string{trans}, inst.ENIs[0].GroupIDs, "crash between the swaps: the ENI is in the transition group")
				r.crashAt(t, nil, workflows.PhaseIsolating)
			}},
		{name: "imaging-create-lost", insts: []string{seedC},
			crash: func(t *testing.T, r *crashRig) {
				// CreateImage reached the cloud; its response is lost. The
				// retry must find the image by its deterministic name.
				held := r.gate.Hold("CreateImage", true, nil)
				r.open(t)
				r.crashAt(t, held, workflows.PhaseImaging)
			}},
		{name: "imaging-wait-server-restart", insts: []string{seedA}, delays: simcloud.Delays{ImageAvailable: 4 * time.Second},
			crash: func(t *testing.T, r *crashRig) {
				// While the image is pending: stop the worker, then the
				// Temporal server; start both again on the same SQLite file.
				held := r.gate.Hold("DescribeImages", false, func(in any) bool {
					return len(in.(*ec2.DescribeImagesInput).ImageIds) > 0 // the wait, not the lookup by name
				})
				r.open(t)
				r.waitHeld(t, held)
				r.requirePhase(t, workflows.PhaseImaging)
				r.h.Worker.Stop()
				// Let the stopped attempt's failure reach the server (a
				// lost report would cost the 2-minute heartbeat timeout).
				r.waitActivityNotStarted(t, r.ids[0], "WaitImageAvailable")
				run := r.runID(t)
				r.h.StopServer()
				time.Sleep(500 * time.Millisecond)
				r.h.StartServer()
				require.Equal(t, run, r.runID(t), "the same run goes on after the restart")
				r.crashes++
			}},
		{name: "relaunching", insts: []string{seedB}, delays: simcloud.Delays{InstanceStart: 2 * time.Second},
			crash: func(t *testing.T, r *crashRig) {
				// RunInstances took effect, response lost: the retry must
				// find the copy by its client token. Then a second crash
				// while waiting for the copy to run.
				held := r.gate.Hold("RunInstances", true, nil)
				r.open(t)
				r.crashAt(t, held, workflows.PhaseRelaunching)
				held = r.gate.Hold("DescribeInstances", false, func(in any) bool {
					ids := in.(*ec2.DescribeInstancesInput).InstanceIds
					return len(ids) == 1 && ids[0] != seedB
				})
				r.crashAt(t, held, workflows.PhaseRelaunching)
			}},
		{name: "terminating", insts: []string{seedC}, delays: simcloud.Delays{InstanceStop: 2 * time.Second},
			crash: func(t *testing.T, r *crashRig) {
				// TerminateInstances took effect, response lost.
				held := r.gate.Hold("TerminateInstances", true, nil)
				r.open(t)
				r.crashAt(t, held, workflows.PhaseTerminating)
			}},
		{name: "healing", insts: []string{seedA}, delays: simcloud.Delays{Replace: 2 * time.Second},
			crash: func(t *testing.T, r *crashRig) {
				// While waiting for the group's replacement: the first
				// group lookup after the original is gone is the heal
				// check's (armed before the incident opens, so a slow
				// machine on which the group heals first cannot miss it).
				held := r.gate.Hold("DescribeAutoScalingGroups", false, func(any) bool {
					inst, ok := r.h.Sim.Instance(seedA)
					return ok && (inst.State == "shutting-down" || inst.State == "terminated")
				})
				r.open(t)
				r.crashAt(t, held, workflows.PhaseHealing)
			}},
		{name: "cleaning-up", insts: []string{seedB},
			crash: func(t *testing.T, r *crashRig) {
				// DeregisterImage took effect, response lost.
				held := r.gate.Hold("DeregisterImage", true, nil)
				r.open(t)
				r.crashAt(t, held, workflows.PhaseCleaningUp)
			}},
		{name: "cleaning-up-delete-snapshots", insts: []string{seedB}, policy: workflows.Policy{Snapshots: workflows.SnapshotsDelete},
			crash: func(t *testing.T, r *crashRig) {
				// The first of two DeleteSnapshot calls took effect, response lost.
				held := r.gate.Hold("DeleteSnapshot", true, nil)
				r.open(t)
				r.crashAt(t, held, workflows.PhaseCleaningUp)
			}},
	}
}

// TestCrashMatrix kills the worker during each runbook step in turn, one
// subtest per step (each on a fresh seed environment and SQLite file):
//
//   - preflight: while describing the instance.
//   - governor-queued: three incidents in one group; the third waits in the
//     governor's queue, the other two hold the slots and wait for images.
//   - isolating-between-swaps: an ENI is in the allow-all transition group,
//     its swap to the no-rule group not yet made.
//   - imaging-create-lost: CreateImage took effect, its response is lost
//     (the deterministic image name must find it).
//   - imaging-wait-server-restart: the image is pending; the worker and then
//     the Temporal server stop, and both start again on the SQLite file.
//   - relaunching: RunInstances took effect, its response is lost (the client
//     token must find the copy); then again while the copy starts.
//   - terminating: TerminateInstances took effect, its response is lost.
//   - healing: while waiting for the group's replacement.
//   - cleaning-up: DeregisterImage took effect, its response is lost.
//   - cleaning-up-delete-snapshots: policy snapshots=delete; the first
//     DeleteSnapshot took effect, its response is lost.
//
// After each: every incident resolved, the original terminated, exactly one
// image (named by the incident's kept snapshots; none left registered) and
// one running quarantine copy per incident, one CreateImage and one
// RunInstances call per incident, the snapshots kept (or, by policy, all
// deleted), no security group created or leaked and no ENI left in the
// transition group, the group healed at its old desired capacity, and every
// governor slot returned.
func TestCrashMatrix(t *testing.T) {
	for _, step := range crashMatrix() {
		t.Run(step.name, func(t *testing.T) {
			start := time.Now()
			r := newCrashRig(t, step)
			step.crash(t, r)
			require.Positive(t, r.crashes, "the worker was stopped in %s", step.name)
			final := r.h.WaitFinal(r.ids, 2*time.Minute)
			for _, id := range r.ids {
				logSlowSteps(t, final[id], 5*time.Second)
			}
			r.requireContained(t, final)
			t.Logf("%s: %d crash(es), %d incident(s) resolved in %s", step.name, r.crashes, len(r.ids), time.Since(start).Round(time.Millisecond))
		})
	}
}

// logSlowSteps logs the steps of an incident that took longer than d: where
// a crash cost time (a lost task waits for its timeout).
func logSlowSteps(t *testing.T, st workflows.Status, d time.Duration) {
	for _, s := range st.Steps {
		if s.Ended.Sub(s.Started) > d {
			t.Logf("%s: step %s took %s (%s: %s)", st.InstanceID, s.Name, s.Ended.Sub(s.Started).Round(time.Millisecond), s.Outcome, s.Detail)
		}
	}
}

// ---------------------------------------------------------------------------
// The rig

type crashRig struct {
	h        *Harness
	gate     *crashGate
	step     crashStep
	ids      []string
	groupIDs map[string]bool // security groups before any incident
	volumes  map[string]int  // volumes per instance before any incident
	desired  int32
	crashes  int
}

func newCrashRig(t *testing.T, step crashStep) *crashRig {
	h := New(t, step.delays, filepath.Join(t.TempDir(), "temporal.db"))
	gate := &crashGate{inner: h.Sim}
	h.Worker.Stop()
	h.Acts.Cloud = gate
	h.StartWorker()
	r := &crashRig{h: h, gate: gate, step: step, groupIDs: map[string]bool{}, volumes: map[string]int{}}
	for _, id := range securityGroupIDs(t, h.Sim) {
		r.groupIDs[id] = true
	}
	for _, inst := range step.insts {
		info, ok := h.Sim.Instance(inst)
		require.True(t, ok, inst)
		r.volumes[inst] = len(info.Volumes)
	}
	g, ok := h.Sim.Group("web-asg")
	require.True(t, ok)
	r.desired = g.Desired
	h.Sim.ResetCalls()
	t.Cleanup(func() {
		if t.Failed() {
			r.dump(t)
		}
	})
	return r
}

// dump logs where each incident is: its steps and pending activities.
func (r *crashRig) dump(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, id := range r.ids {
		st, err := workflows.GetStatus(ctx, r.h.Client, id)
		if err != nil {
			t.Logf("%s: status: %v", id, err)
			continue
		}
		t.Logf("%s: phase %s, %s", id, st.Phase, st.Reason)
		for _, s := range st.Steps {
			t.Logf("  %s %s +%s %s %s", s.Started.Format("15:04:05.000"), s.Name, s.Ended.Sub(s.Started).Round(time.Millisecond), s.Outcome, s.Detail)
		}
		if d, err := r.h.Client.DescribeWorkflowExecution(ctx, id, ""); err == nil {
			for _, pa := range d.GetPendingActivities() {
				t.Logf("  pending %s: %s attempt %d, last failure %v", pa.GetActivityType().GetName(), pa.GetState(), pa.GetAttempt(), pa.GetLastFailure().GetMessage())
			}
		}
	}
}

// open opens the step's incidents.
func (r *crashRig) open(t *testing.T) {
	t.Helper()
	for _, inst := range r.step.insts {
		in := workflows.QuarantineInput{Account: "123456789012", Region: "us-east-1", InstanceID: inst,
			Evidence: workflows.Evidence{Source: "crash-test", BadIP: "1.19.6.4"}, Policy: r.step.policy}
		_, err := workflows.Open(context.Background(), r.h.Client, in)
		require.NoError(t, err)
		r.ids = append(r.ids, workflows.IncidentID(in.Account, in.Region, inst))
	}
}

func (r *crashRig) waitHeld(t *testing.T, held <-chan struct{}) {
	t.Helper()
	select {
	case <-held:
	case <-time.After(time.Minute):
		t.Fatalf("the call to crash in never came")
	}
}

// crashAt waits for the held call (nil: already held), checks the first
// incident is in phase, and stops and restarts the worker.
func (r *crashRig) crashAt(t *testing.T, held <-chan struct{}, phase workflows.Phase) {
	t.Helper()
	if held != nil {
		r.waitHeld(t, held)
	}
	r.requirePhase(t, phase)
	r.restartWorker(t)
}

func (r *crashRig) restartWorker(t *testing.T) {
	r.h.Worker.Stop()
	r.crashes++
	r.h.StartWorker()
}

func (r *crashRig) requirePhase(t *testing.T, phase workflows.Phase) {
	t.Helper()
	st, err := workflows.GetStatus(context.Background(), r.h.Client, r.ids[0])
	require.NoError(t, err)
	require.Equal(t, phase, st.Phase, "the crash lands in %s", phase)
}

// waitAnyPhase waits until one of the incidents is in phase and returns it.
func (r *crashRig) waitAnyPhase(t *testing.T, phase workflows.Phase, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, id := range r.ids {
			if st, err := workflows.GetStatus(context.Background(), r.h.Client, id); err == nil && st.Phase == phase {
				return id
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no incident reached %s", phase)
	return ""
}

// waitActivityStarted waits until an attempt of activity runs for the incident.
func (r *crashRig) waitActivityStarted(t *testing.T, id, activity string) {
	t.Helper()
	r.h.WaitActivityRunning(id, activity, true, time.Minute)
}

// waitActivityNotStarted waits until the server no longer counts an attempt
// of activity as running for the incident (the stopped worker reported it).
func (r *crashRig) waitActivityNotStarted(t *testing.T, id, activity string) {
	t.Helper()
	r.h.WaitActivityRunning(id, activity, false, 30*time.Second)
}

func (r *crashRig) runID(t *testing.T) string {
	t.Helper()
	d, err := r.h.Client.DescribeWorkflowExecution(context.Background(), r.ids[0], "")
	require.NoError(t, err)
	require.Equal(t, enums.WORKFLOW_EXECUTION_STATUS_RUNNING, d.GetWorkflowExecutionInfo().GetStatus())
	return d.GetWorkflowExecutionInfo().GetExecution().GetRunId()
}

func (r *crashRig) groupID(t *testing.T, name string) string {
	sg, ok := r.h.Sim.SecurityGroup(name)
	require.True(t, ok, name)
	return sg.ID
}

// requireContained checks the end state of every incident and of the cloud.
func (r *crashRig) requireContained(t *testing.T, final map[string]workflows.Status) {
	t.Helper()
	h := r.h
	deleteSnaps := r.step.policy.Snapshots == workflows.SnapshotsDelete
	trans := r.groupID(t, "cordon-isolation-transition")
	insts := h.Sim.Instances()
	snaps := h.Sim.Snapshots()
	for _, id := range r.ids {
		st := final[id]
		require.Equal(t, workflows.PhaseResolved, st.Phase, "%s: %s", id, st.Reason)
		require.Equal(t, workflows.OutcomeResolved, st.Outcome, "%s: %s", id, st.Reason)
		require.Eventually(t, func() bool {
			orig, ok := h.Sim.Instance(st.InstanceID)
			return ok && orig.State == "terminated"
		}, 30*time.Second, 50*time.Millisecond, "original %s terminated", st.InstanceID)

		// Exactly one image: the snapshots (kept) name the images they
		// were made for; no image of the incident is still registered.
		images := map[string]bool{}
		var incidentSnaps []string
		for _, s := range snaps {
			if s.Tags["cordon:incident"] != id {
				continue
			}
			incidentSnaps = append(incidentSnaps, s.ID)
			if _, img, ok := strings.Cut(s.Description, " for "); ok {
				images[img] = true
			}
		}
		for _, im := range h.Sim.Images() {
			require.NotEqual(t, id, im.Tags["cordon:incident"], "image %s of %s still registered", im.ID, id)
		}
		require.True(t, st.Resources.ImageDeregistered, "%s: image deregistered", id)
		if deleteSnaps {
			require.Empty(t, incidentSnaps, "%s: policy delete: no snapshot left", id)
			require.True(t, st.Resources.SnapshotsDeleted)
		} else {
			require.Len(t, images, 1, "%s: exactly one image: %v", id, images)
			require.Contains(t, images, st.Resources.ImageID)
			sort.Strings(incidentSnaps)
			want := append([]string(nil), st.Resources.SnapshotIDs...)
			sort.Strings(want)
			require.Equal(t, want, incidentSnaps, "%s: the image's snapshots are kept, and no others", id)
			require.Len(t, incidentSnaps, r.volumes[st.InstanceID], "%s: one snapshot per volume", id)
		}

		var copies []string
		for _, in := range insts {
			if in.Tags["cordon:incident"] == id && in.Tags["cordon:state"] == "quarantine-copy" {
				copies = append(copies, in.ID)
			}
		}
		require.Len(t, copies, 1, "%s: exactly one quarantine copy: %v", id, copies)
		require.Equal(t, st.Resources.QuarantineInstanceID, copies[0])
		cp, _ := h.Sim.Instance(copies[0])
		require.Equal(t, "running", cp.State)
	}
	// Every create happened once per incident (no fault is injected, so
	// every call in the log took effect).
	calls := map[string]int{}
	for _, c := range h.Sim.Calls() {
		calls[c]++
	}
	require.Equal(t, len(r.ids), calls["CreateImage"], "CreateImage calls")
	require.Equal(t, len(r.ids), calls["RunInstances"], "RunInstances calls")
	require.Zero(t, calls["CreateSecurityGroup"], "the seed's isolation groups are reused")

	// No leaked security groups; nothing left in the transition group.
	now := map[string]bool{}
	for _, id := range securityGroupIDs(t, h.Sim) {
		now[id] = true
	}
	require.Equal(t, r.groupIDs, now, "security groups")
	for _, in := range insts {
		for _, eni := range in.ENIs {
			require.NotContains(t, eni.GroupIDs, trans, "%s %s left in the transition group", in.ID, eni.ID)
		}
	}

	// The group healed, at its old capacity.
	g, _ := h.Sim.Group("web-asg")
	require.Equal(t, r.desired, g.Desired, "desired capacity unchanged")
	require.Len(t, g.InService(), int(r.desired), "the group healed")

	// Every governor slot came back.
	requireGovernorIdle(t, h, "web-asg")
}

func securityGroupIDs(t testing.TB, sim *simcloud.Cloud) []string {
	out, err := sim.DescribeSecurityGroups(context.Background(), &ec2.DescribeSecurityGroupsInput{})
	require.NoError(t, err)
	var ids []string
	for _, g := range out.SecurityGroups {
		ids = append(ids, *g.GroupId)
	}
	sort.Strings(ids)
	return ids
}

// ---------------------------------------------------------------------------
// crashGate

// crashGate is the simulated cloud as the worker's activities see it, with
// one AWS call that can be held until the worker stops.
type crashGate struct {
	inner activities.CloudProvider
	mu    sync.Mutex
	armed *heldCall
}

type heldCall struct {
	op    string
	after bool
	match func(in any) bool
	held  chan struct{}
}

// Hold arms the gate: the next call of op whose input matches (nil: any) is
// held — after it took effect if after, so its response is lost — until the
// calling activity's context ends (the worker stops), then fails. The
// returned channel is closed once the call is held.
func (g *crashGate) Hold(op string, after bool, match func(in any) bool) <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.armed = &heldCall{op: op, after: after, match: match, held: make(chan struct{})}
	return g.armed.held
}

func (g *crashGate) take(op string, in any) *heldCall {
	g.mu.Lock()
	defer g.mu.Unlock()
	hc := g.armed
	if hc == nil || hc.op != op || (hc.match != nil && !hc.match(in)) {
		return nil
	}
	g.armed = nil
	return hc
}

var errCrashed = errors.New("the worker stopped while the call was in flight")

func gated[I, O any](g *crashGate, ctx context.Context, op string, in *I, call func() (*O, error)) (*O, error) {
	hc := g.take(op, in)
	if hc == nil {
		return call()
	}
	if hc.after {
		if _, err := call(); err != nil {
			close(hc.held)
			return nil, err
		}
	}
	close(hc.held)
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: %w: %w", op, errCrashed, ctx.Err())
	case <-time.After(time.Minute):
		return nil, fmt.Errorf("%s: held for a minute and the worker never stopped", op)
	}
}

func (g *crashGate) Clients(ctx context.Context, account, region string) (activities.Clients, error) {
	c, err := g.inner.Clients(ctx, account, region)
	if err != nil {
		return c, err
	}
	c.EC2 = gateEC2{EC2API: c.EC2, g: g}
	c.AutoScaling = gateAS{AutoScalingAPI: c.AutoScaling, g: g}
	return c, nil
}

type gateEC2 struct {
	activities.EC2API
	g *crashGate
}

func (e gateEC2) DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, o ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	return gated(e.g, ctx, "DescribeInstances", in, func() (*ec2.DescribeInstancesOutput, error) { return e.EC2API.DescribeInstances(ctx, in, o...) })
}

func (e gateEC2) ModifyNetworkInterfaceAttribute(ctx context.Context, in *ec2.ModifyNetworkInterfaceAttributeInput, o ...func(*ec2.Options)) (*ec2.ModifyNetworkInterfaceAttributeOutput, error) {
	return gated(e.g, ctx, "ModifyNetworkInterfaceAttribute", in, func() (*ec2.ModifyNetworkInterfaceAttributeOutput, error) {
		return e.EC2API.ModifyNetworkInterfaceAttribute(ctx, in, o...)
	})
}

func (e gateEC2) CreateImage(ctx context.Context, in *ec2.CreateImageInput, o ...func(*ec2.Options)) (*ec2.CreateImageOutput, error) {
	return gated(e.g, ctx, "CreateImage", in, func() (*ec2.CreateImageOutput, error) { return e.EC2API.CreateImage(ctx, in, o...) })
}

func (e gateEC2) DescribeImages(ctx context.Context, in *ec2.DescribeImagesInput, o ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	return gated(e.g, ctx, "DescribeImages", in, func() (*ec2.DescribeImagesOutput, error) { return e.EC2API.DescribeImages(ctx, in, o...) })
}

func (e gateEC2) RunInstances(ctx context.Context, in *ec2.RunInstancesInput, o ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error) {
	return gated(e.g, ctx, "RunInstances", in, func() (*ec2.RunInstancesOutput, error) { return e.EC2API.RunInstances(ctx, in, o...) })
}

func (e gateEC2) TerminateInstances(ctx context.Context, in *ec2.TerminateInstancesInput, o ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error) {
	return gated(e.g, ctx, "TerminateInstances", in, func() (*ec2.TerminateInstancesOutput, error) { return e.EC2API.TerminateInstances(ctx, in, o...) })
}

func (e gateEC2) DeregisterImage(ctx context.Context, in *ec2.DeregisterImageInput, o ...func(*ec2.Options)) (*ec2.DeregisterImageOutput, error) {
	return gated(e.g, ctx, "DeregisterImage", in, func() (*ec2.DeregisterImageOutput, error) { return e.EC2API.DeregisterImage(ctx, in, o...) })
}

func (e gateEC2) DeleteSnapshot(ctx context.Context, in *ec2.DeleteSnapshotInput, o ...func(*ec2.Options)) (*ec2.DeleteSnapshotOutput, error) {
	return gated(e.g, ctx, "DeleteSnapshot", in, func() (*ec2.DeleteSnapshotOutput, error) { return e.EC2API.DeleteSnapshot(ctx, in, o...) })
}

type gateAS struct {
	activities.AutoScalingAPI
	g *crashGate
}

func (a gateAS) DescribeAutoScalingGroups(ctx context.Context, in *autoscaling.DescribeAutoScalingGroupsInput, o ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingGroupsOutput, error) {
	return gated(a.g, ctx, "DescribeAutoScalingGroups", in, func() (*autoscaling.DescribeAutoScalingGroupsOutput, error) {
		return a.AutoScalingAPI.DescribeAutoScalingGroups(ctx, in, o...)
	})
}
