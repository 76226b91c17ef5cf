package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/urfave/cli/v2"
	"go.temporal.io/sdk/worker"

	"github.com/cordonhq/cordon/activities"
	"github.com/cordonhq/cordon/detector"
	"github.com/cordonhq/cordon/internal/app"
	"github.com/cordonhq/cordon/workflows"
)

// demoEvents is the bundled fleet capture the demo scans.
const demoEvents = "packetbeat/GENERATED_packetbeat_ecs8_ec2_300events.ndjson"

// demoTopic is the alert topic of the seed environment.
const demoTopic = "arn:aws:sns:us-east-1:123456789012:cordon-alerts"

func cmdDemo(c *cli.Context, out, errOut io.Writer) error {
	ctx := c.Context
	data := c.String("data")
	for _, p := range []string{"sim/seed.yaml", "blocklists", demoEvents} {
		if _, err := os.Stat(filepath.Join(data, p)); err != nil {
			return fmt.Errorf("demo data missing: %v (run the demo from the repository root, or pass --data)", err)
		}
	}
	delays, err := app.SimDelays(c.String("sim-delays"))
	if err != nil {
		return err
	}
	db := c.String("db")
	if db == "" {
		dir, err := os.MkdirTemp("", "cordon-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		db = filepath.Join(dir, "temporal.db")
	}
	uiPort := c.Int("ui-port")
	if uiPort > 0 && !portFree(uiPort) {
		fmt.Fprintf(out, "port %d is busy: the Web UI takes a free port instead\n", uiPort)
		uiPort = 0
	}
	cfg := app.Config{
		Dev: true, DevDB: db, DevPort: c.Int("port"), UIPort: uiPort, Namespace: "default",
		Cloud: "sim", SimEnv: filepath.Join(data, "sim/seed.yaml"), SimDelays: delays,
		TopicARN: demoTopic, PollInterval: 100 * time.Millisecond,
	}
	// The embedded server logs only what would stop the demo; incidents
	// report their own failures.
	log := app.Logger(slog.LevelError + 4)
	cloud, err := app.NewCloud(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "Cordon demo: embedded Temporal server, simulated AWS cloud (testdata/sim/seed.yaml), bundled Packetbeat capture and real blocklists")
	t, err := app.ConnectTemporal(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer t.Close()
	fmt.Fprintf(out, "Temporal server %s; Web UI %s/namespaces/default/workflows\n", t.Dev.FrontendHostPort(), t.UIURL())

	notifier := cloud.Notifier(cfg)
	notifier.OtherOpenIncidents = app.OtherOpenIncidents(t.Client)
	acts := &activities.Activities{Cloud: cloud.Provider, Notifier: notifier, PollInterval: cfg.PollInterval, ProtectedInstances: cfg.ProtectedInstances}
	limits := workflows.DefaultGovernorLimits
	limits.AccountMaxConcurrent, limits.AccountBreakerCount = workflows.DefaultAccountMaxConcurrent, workflows.DefaultAccountBreakerCount // as the worker runs
	w := app.NewWorker(t.Client, acts, limits, worker.Options{})
	if err := w.Start(); err != nil {
		return fmt.Errorf("starting the worker: %w", err)
	}
	defer w.Stop()

	m, err := app.LoadMatcher([]string{filepath.Join(data, "blocklists")}, nil, func(s string) { fmt.Fprintln(errOut, "blocklist:", s) })
	if err != nil {
		return err
	}
	v4, v6 := m.Prefixes()
	fmt.Fprintf(out, "blocklists: %d lists, %d IPv4 + %d IPv6 prefixes; allowlist: private, loopback, link-local\n", len(m.Lists()), v4, v6)
	det := detector.NewDetector(detector.NewMatcherHolder(m), detector.Options{})
	policy := workflows.Policy{Approval: workflows.ApprovalMode(c.String("approval"))}
	start := time.Now()
	rep, err := app.DetectFiles(ctx, t.Client, det, &app.Resolver{Cloud: cloud.Provider}, []string{filepath.Join(data, demoEvents)},
		app.DetectOptions{Policy: policy, UIBaseURL: t.UIURL()})
	if err != nil {
		return err
	}
	s := rep.Stats
	fmt.Fprintf(out, "detector: %d events, %d final flow records checked, %d sessions to known bad actors on %d instance(s)\n",
		s.Events, s.Considered, s.Hits, len(rep.Incidents))
	for _, u := range rep.Unresolved {
		fmt.Fprintln(errOut, "unresolved:", u)
	}
	if len(rep.Incidents) == 0 {
		return errors.New("the detector found nothing: check the blocklists and events in " + data)
	}

	final, err := watch(ctx, t, rep.Incidents, out)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\n%d incident(s) in %s\n\n", len(final), time.Since(start).Round(100*time.Millisecond))
	printTable(ctx, out, final, cloud, t.UIURL(), c.Bool("keep"))
	if n := len(cloud.Sim.Published()); n > 0 {
		fmt.Fprintf(out, "\n%d alert(s) published to %s\n", n, demoTopic)
	}
	bad := 0
	for _, st := range final {
		if st.Phase != workflows.PhaseResolved {
			bad++
		}
	}
	if c.Bool("keep") {
		fmt.Fprintf(out, "\nWeb UI still up at %s/namespaces/default/workflows — Ctrl-C to stop\n", t.UIURL())
		fmt.Fprintf(out, "To use the CLI on these incidents from another shell:\n  export TEMPORAL_ADDRESS=%s\n  go run ./starter list\n", t.Dev.FrontendHostPort())
		<-ctx.Done()
	}
	if bad > 0 {
		return fmt.Errorf("%d incident(s) did not resolve: see `status` above", bad)
	}
	return nil
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// watch prints one line per phase change until every incident is final.
func watch(ctx context.Context, t *app.Temporal, ids []string, out io.Writer) (map[string]workflows.Status, error) {
	last := map[string]int{}
	final := map[string]workflows.Status{}
	deadline := time.Now().Add(10 * time.Minute)
	type line struct {
		at   time.Time
		text string
	}
	for len(final) < len(ids) {
		var lines []line
		for _, id := range ids {
			if _, done := final[id]; done {
				continue
			}
			st, err := workflows.GetStatus(ctx, t.Client, id)
			if err != nil {
				continue // not started yet on the worker; try again
			}
			for _, p := range st.Phases[min(last[id], len(st.Phases)):] {
				lines = append(lines, line{p.At, fmt.Sprintf("%s  %-20s %-17s %s", p.At.Local().Format("15:04:05.000"), st.InstanceID, p.Phase, phaseNote(st, p.Phase))})
			}
			last[id] = len(st.Phases)
			if st.Phase.Final() {
				final[id] = st
			}
		}
		sort.SliceStable(lines, func(i, j int) bool { return lines[i].at.Before(lines[j].at) })
		for _, l := range lines {
			fmt.Fprintln(out, l.text)
		}
		if time.Now().After(deadline) {
			return final, fmt.Errorf("incidents still open after 10 minutes")
		}
		select {
		case <-ctx.Done():
			return final, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return final, nil
}

func phaseNote(st workflows.Status, p workflows.Phase) string {
	switch p {
	case workflows.PhaseOpened:
		return fmt.Sprintf("session to %s", st.BadIP)
	case workflows.PhasePreflight:
		return "describe the instance, its ENIs, group and target groups"
	case workflows.PhaseQueued:
		return "the governor of " + st.Group + " holds it: at most 2 incidents at once, one healthy instance always kept"
	case workflows.PhaseIsolating:
		return "detach from " + st.Group + ", two-step security-group swap per ENI, termination protection"
	case workflows.PhaseImaging:
		return "CreateImage NoReboot, waiting for available"
	case workflows.PhaseRelaunching:
		return "copy into the quarantine subnet, isolation group, no profile, no public IP"
	case workflows.PhaseTerminating:
		return "evidence and copy exist: terminating the original"
	case workflows.PhaseHealing:
		return "waiting for the group to be back at desired capacity"
	case workflows.PhaseCleaningUp:
		return "deregistering the image, keeping snapshots"
	}
	if p.Final() {
		return string(st.Outcome) + ": " + st.Reason
	}
	return ""
}

func printTable(ctx context.Context, out io.Writer, final map[string]workflows.Status, cloud *app.Cloud, ui string, keep bool) {
	ids := make([]string, 0, len(final))
	for id := range final {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	repl := assignReplacements(ctx, cloud, final)
	tw := tabwriter.NewWriter(out, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "INCIDENT\tINSTANCE\tBAD IP\tOUTCOME\tQUARANTINE COPY\tREPLACEMENT\tIMAGE DELETED\tSNAPSHOTS KEPT")
	for _, id := range ids {
		st := final[id]
		r := st.Resources
		copyDesc := r.QuarantineInstanceID
		if copyDesc != "" {
			copyDesc += " (" + instanceState(ctx, cloud, st, r.QuarantineInstanceID) + ")"
		}
		kept := 0
		if !r.SnapshotsDeleted {
			kept = len(r.SnapshotIDs)
		}
		state := instanceState(ctx, cloud, st, st.InstanceID)
		if r.OriginalTerminated {
			state = "terminated"
		}
		fmt.Fprintf(tw, "%s\t%s (%s)\t%s\t%s\t%s\t%s\t%t\t%d\n", shortID(id), st.InstanceID, state, st.BadIP, st.Outcome,
			copyDesc, repl[id], r.ImageDeregistered, kept)
	}
	_ = tw.Flush()
	fmt.Fprintln(out, "\nPhases and their durations:")
	for _, id := range ids {
		fmt.Fprintf(out, "  %-21s %s\n", shortID(id), phaseDurations(final[id]))
	}
	if g := groupLine(ctx, cloud, final); g != "" {
		fmt.Fprintln(out, "\n"+g)
	}
	if !keep {
		fmt.Fprintln(out, "\nRun `starter demo --keep` to browse these incidents in the Web UI afterwards.")
		return
	}
	fmt.Fprintln(out, "\nWeb UI:")
	for _, id := range ids {
		fmt.Fprintf(out, "  %s\n", uiLink(ui, "default", id))
	}
}

func shortID(id string) string {
	_, _, inst, err := workflows.ParseIncidentID(id)
	if err != nil {
		return id
	}
	return "…/" + inst
}

func instanceState(ctx context.Context, cloud *app.Cloud, st workflows.Status, id string) string {
	c, err := cloud.Provider.Clients(ctx, st.Account, st.Region)
	if err != nil {
		return "?"
	}
	outp, err := c.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil || len(outp.Reservations) == 0 || len(outp.Reservations[0].Instances) == 0 {
		return "?"
	}
	i := outp.Reservations[0].Instances[0]
	s := string(i.State.Name)
	if aws.ToString(i.SubnetId) != "" && i.State.Name == "running" && id != st.InstanceID {
		s += " in " + aws.ToString(i.SubnetId)
	}
	return s
}

// groupLine reports each group's capacity after the incidents.
func groupLine(ctx context.Context, cloud *app.Cloud, final map[string]workflows.Status) string {
	groups := map[string]workflows.Status{}
	for _, st := range final {
		if st.Group != "" {
			groups[st.Group] = st
		}
	}
	var lines []string
	for name, st := range groups {
		c, err := cloud.Provider.Clients(ctx, st.Account, st.Region)
		if err != nil {
			continue
		}
		outp, err := c.AutoScaling.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{name}})
		if err != nil || len(outp.AutoScalingGroups) == 0 {
			continue
		}
		g := outp.AutoScalingGroups[0]
		in := 0
		for _, m := range g.Instances {
			if m.LifecycleState == "InService" {
				in++
			}
		}
		lines = append(lines, fmt.Sprintf("Auto Scaling group %s: %d InService of desired %d", name, in, aws.ToInt32(g.DesiredCapacity)))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// assignReplacements pairs each incident with the group member that replaced
// it. Incidents in one group share the group's new members, so they are
// paired in order: the first instance detached with the first one launched.
func assignReplacements(ctx context.Context, cloud *app.Cloud, final map[string]workflows.Status) map[string]string {
	type inc struct {
		id       string
		detached time.Time
	}
	byGroup := map[string][]inc{}
	pool := map[string]map[string]bool{}
	var any workflows.Status
	for id, st := range final {
		for _, s := range st.Steps {
			if s.Name == "detach" {
				byGroup[st.Group] = append(byGroup[st.Group], inc{id, s.Ended})
			}
		}
		if pool[st.Group] == nil {
			pool[st.Group] = map[string]bool{}
		}
		for _, r := range st.Resources.ReplacementIDs {
			pool[st.Group][r] = true
		}
		any = st
	}
	out := map[string]string{}
	for g, incs := range byGroup {
		sort.Slice(incs, func(i, j int) bool { return incs[i].detached.Before(incs[j].detached) })
		type member struct {
			id       string
			launched time.Time
		}
		var ms []member
		for id := range pool[g] {
			ms = append(ms, member{id, launchTime(ctx, cloud, any, id)})
		}
		sort.Slice(ms, func(i, j int) bool {
			if ms[i].launched.Equal(ms[j].launched) {
				return ms[i].id < ms[j].id
			}
			return ms[i].launched.Before(ms[j].launched)
		})
		for i, in := range incs {
			if i < len(ms) {
				out[in.id] = ms[i].id
			}
		}
	}
	return out
}

func launchTime(ctx context.Context, cloud *app.Cloud, st workflows.Status, id string) time.Time {
	c, err := cloud.Provider.Clients(ctx, st.Account, st.Region)
	if err != nil {
		return time.Time{}
	}
	o, err := c.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil || len(o.Reservations) == 0 || len(o.Reservations[0].Instances) == 0 {
		return time.Time{}
	}
	return aws.ToTime(o.Reservations[0].Instances[0].LaunchTime)
}
