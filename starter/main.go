// Command starter is Cordon's operator CLI: it opens incidents (by hand or
// from Packetbeat files matched against blocklists), lists them, shows their
// status, approves, rejects and releases them, and runs the demo.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"go.temporal.io/sdk/client"

	"github.com/cordonhq/cordon/detector"
	"github.com/cordonhq/cordon/internal/app"
	"github.com/cordonhq/cordon/internal/search"
	"github.com/cordonhq/cordon/workflows"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: tests call it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := newApp(stdout, stderr)
	if err := cmd.RunContext(ctx, positionalLast(args)); err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			fmt.Fprintln(stderr, "starter: interrupted")
			return 130
		}
		fmt.Fprintln(stderr, "starter:", err)
		return 1
	}
	return 0
}

func newApp(stdout, stderr io.Writer) *cli.App {
	policyFlags := []cli.Flag{
		&cli.StringFlag{Name: "approval", Value: "none", Usage: "none or before-destructive"},
		&cli.DurationFlag{Name: "approval-timeout", Value: workflows.DefaultApprovalTimeout, Usage: "how long to wait for approve/reject"},
		&cli.StringFlag{Name: "on-deadline", Value: "hold", Usage: "approve, reject or hold when nobody decides in time"},
		&cli.BoolFlag{Name: "no-relaunch", Usage: "do not launch a quarantine copy"},
		&cli.StringFlag{Name: "snapshots", Value: "keep", Usage: "keep or delete the image's snapshots at the end"},
		&cli.BoolFlag{Name: "dry-run", Usage: "plan only: no AWS change at all"},
		&cli.StringFlag{Name: "quarantine-subnet", Usage: "subnet for the quarantine copy (default: the subnet tagged cordon:quarantine=true)"},
	}
	return &cli.App{
		Name:           "starter",
		Usage:          "open, follow and steer Cordon incidents",
		Writer:         stdout,
		ErrWriter:      stderr,
		Flags:          []cli.Flag{app.LogFlag()},
		ExitErrHandler: func(*cli.Context, error) {},
		Commands: []*cli.Command{
			{
				Name:      "quarantine",
				Usage:     "open an incident for an instance by hand",
				ArgsUsage: " ",
				Flags: append([]cli.Flag{
					&cli.StringFlag{Name: "instance", Required: true, Usage: "EC2 instance ID (i-...)"},
					&cli.StringFlag{Name: "bad-ip", Usage: "the remote address it talked to"},
					&cli.StringFlag{Name: "reason", Usage: "why"},
					&cli.StringFlag{Name: "account", EnvVars: []string{"CORDON_ACCOUNT"}, Required: true, Usage: "AWS account ID"},
					&cli.StringFlag{Name: "region", EnvVars: []string{"AWS_REGION"}, Required: true, Usage: "AWS region"},
					&cli.StringFlag{Name: "by", Value: currentUser(), Usage: "who opens it"},
				}, policyFlags...),
				Action: func(c *cli.Context) error { return cmdQuarantine(c, stdout) },
			},
			{
				Name:  "plan",
				Usage: "dry run: the steps and AWS calls an incident would make for an instance, changing nothing",
				Flags: append([]cli.Flag{
					&cli.StringFlag{Name: "instance", Required: true, Usage: "EC2 instance ID (i-...)"},
					&cli.StringFlag{Name: "account", EnvVars: []string{"CORDON_ACCOUNT"}, Required: true, Usage: "AWS account ID"},
					&cli.StringFlag{Name: "region", EnvVars: []string{"AWS_REGION"}, Required: true, Usage: "AWS region"},
				}, policyFlags...),
				Action: func(c *cli.Context) error { return cmdPlan(c, stdout) },
			},
			{
				Name:   "list",
				Usage:  "list incidents (open first, then recent)",
				Flags:  []cli.Flag{&cli.IntFlag{Name: "limit", Value: 50}, &cli.StringFlag{Name: "query", Usage: "extra visibility query, e.g. CordonPhase=\"needs-attention\""}},
				Action: func(c *cli.Context) error { return cmdList(c, stdout) },
			},
			{
				Name:      "status",
				Usage:     "show an incident: phase, steps, resources, evidence",
				ArgsUsage: "INCIDENT-ID|INSTANCE-ID",
				Flags:     []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print the status as JSON"}},
				Action:    func(c *cli.Context) error { return cmdStatus(c, stdout) },
			},
			decideCommand(workflows.UpdateApprove, "approve the destructive steps of an incident waiting for approval", stdout),
			decideCommand(workflows.UpdateReject, "reject an incident waiting for approval (false positive: restores the instance)", stdout),
			decideCommand(workflows.UpdateRelease, "release an isolated incident: restore the recorded pre-incident state", stdout),
			{
				Name:  "detect",
				Usage: "match Packetbeat NDJSON files against blocklists and open an incident per instance",
				Flags: append(append([]cli.Flag{
					&cli.StringSliceFlag{Name: "events", Required: true, Usage: "Packetbeat NDJSON or Elasticsearch _search JSON file (repeatable)"},
					&cli.StringSliceFlag{Name: "blocklist", Required: true, Usage: "blocklist file or directory (repeatable)"},
					&cli.StringSliceFlag{Name: "allow", Usage: "addresses or CIDRs that never match, on top of private/loopback/link-local (repeatable)"},
					&cli.BoolFlag{Name: "all-events", Usage: "check every event, not only final flow records"},
					&cli.StringFlag{Name: "account", EnvVars: []string{"CORDON_ACCOUNT"}, Usage: "account for events without cloud.account.id"},
					&cli.StringFlag{Name: "region", EnvVars: []string{"AWS_REGION"}, Usage: "region for events without cloud.region"},
					&cli.BoolFlag{Name: "report-only", Usage: "print the hits, open no incident"},
				}, policyFlags...), app.CloudFlags()...),
				Action: func(c *cli.Context) error { return cmdDetect(c, stdout, stderr) },
			},
			{
				Name:  "detector",
				Usage: "the durable detector over Elasticsearch/OpenSearch (start, status, stop); the worker needs --search-url",
				Subcommands: []*cli.Command{
					{
						Name:  "start",
						Usage: "start the durable detector over Elasticsearch/OpenSearch (the worker needs --search-url)",
						Flags: append([]cli.Flag{
							&cli.StringFlag{Name: "id", Value: workflows.DefaultDetectorID, Usage: "detector workflow ID"},
							&cli.DurationFlag{Name: "poll", Value: time.Second, Usage: "pause after a search that caught up"},
							&cli.StringFlag{Name: "account", EnvVars: []string{"CORDON_ACCOUNT"}, Usage: "account for events without cloud.account.id"},
							&cli.StringFlag{Name: "region", EnvVars: []string{"AWS_REGION"}, Usage: "region for events without cloud.region"},
						}, policyFlags...),
						Action: func(c *cli.Context) error {
							t, err := dial(c)
							if err != nil {
								return err
							}
							defer t.Close()
							p := policyFrom(c)
							if err := checkPolicy(p); err != nil {
								return err
							}
							run, started, err := workflows.StartDetector(c.Context, t.Client, c.String("id"), workflows.DetectorConfig{
								PollInterval: c.Duration("poll"), Account: c.String("account"), Region: c.String("region"), Policy: p, UIBaseURL: t.UIURL()})
							if err != nil {
								return err
							}
							if started {
								fmt.Fprintf(stdout, "detector %s started (run %s)\n", run.GetID(), run.GetRunID())
							} else {
								fmt.Fprintf(stdout, "detector %s already running\n", run.GetID())
							}
							return nil
						},
					},
					{
						Name:  "status",
						Usage: "checkpoint, counts, last error of the durable detector",
						Flags: []cli.Flag{&cli.StringFlag{Name: "id", Value: workflows.DefaultDetectorID}},
						Action: func(c *cli.Context) error {
							t, err := dial(c)
							if err != nil {
								return err
							}
							defer t.Close()
							st, err := workflows.GetDetectorStatus(c.Context, t.Client, c.String("id"))
							if err != nil {
								return err
							}
							search.FormatStatus(stdout, c.String("id"), st)
							return nil
						},
					},
					{
						Name:  "stop",
						Usage: "stop the durable detector (its checkpoint is in its history; start resumes from it)",
						Flags: []cli.Flag{&cli.StringFlag{Name: "id", Value: workflows.DefaultDetectorID}},
						Action: func(c *cli.Context) error {
							t, err := dial(c)
							if err != nil {
								return err
							}
							defer t.Close()
							if err := t.Client.CancelWorkflow(c.Context, c.String("id"), ""); err != nil {
								return fmt.Errorf("stopping %s: %w", c.String("id"), err)
							}
							fmt.Fprintf(stdout, "detector %s stopping\n", c.String("id"))
							return nil
						},
					},
				},
			},
			{
				Name:  "governor",
				Usage: "show or reset the blast-radius governor of an Auto Scaling group",
				Subcommands: []*cli.Command{
					governorCommand("status", "slots in flight, waiting incidents, breaker state", stdout),
					governorCommand("reset", "close a tripped breaker", stdout),
				},
			},
			{
				Name:   "serve",
				Usage:  "serve the HTTP endpoints: GET /healthz, GET /metrics, POST /sns (with --sns-topic), POST /alexa (with --alexa-skill-id)",
				Flags:  append(app.ServeFlags(), app.CloudFlags()...),
				Action: func(c *cli.Context) error { return cmdServe(c, stdout) },
			},
			{
				Name:  "demo",
				Usage: "run the whole job on the embedded default: Temporal + Web UI, simulated cloud, bundled sample data",
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "keep", Usage: "keep the Temporal server and Web UI up after the demo (Ctrl-C to stop)"},
					&cli.IntFlag{Name: "ui-port", Value: 8233, Usage: "Web UI port (0: any free port)"},
					&cli.IntFlag{Name: "port", Value: 0, Usage: "Temporal frontend port (0: any free port)"},
					&cli.StringFlag{Name: "db", Usage: "SQLite file (default: a fresh temporary file)"},
					&cli.StringFlag{Name: "data", Value: "testdata", Usage: "directory with sim/, blocklists/ and packetbeat/"},
					&cli.StringFlag{Name: "sim-delays", Value: "demo", Usage: "zero, demo or realistic"},
					&cli.StringFlag{Name: "approval", Value: "none", Usage: "none or before-destructive"},
				},
				Action: func(c *cli.Context) error { return cmdDemo(c, stdout, stderr) },
			},
		},
	}
}

// positionalLast lets flags follow the incident argument
// ("approve i-0abc --by alice"): the flag parser stops at the first
// positional argument, so it is moved to the end.
func positionalLast(args []string) []string {
	out := slices.Clone(args)
	for i := 1; i+2 < len(out); i++ {
		switch out[i] {
		case "status", workflows.UpdateApprove, workflows.UpdateReject, workflows.UpdateRelease:
			if !strings.HasPrefix(out[i+1], "-") {
				arg := out[i+1]
				out = append(append(out[:i+1:i+1], out[i+2:]...), arg)
			}
			return out
		}
	}
	return out
}

func currentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return "cli:" + u
	}
	return "cli"
}

var subnetIDPattern = regexp.MustCompile(`^subnet-([0-9a-f]{8}|[0-9a-f]{17})$`)

// checkPolicy refuses a policy the incident could only fail on.
func checkPolicy(p workflows.Policy) error {
	if _, err := p.Normalize(); err != nil {
		return err
	}
	if p.QuarantineSubnet != "" && !subnetIDPattern.MatchString(p.QuarantineSubnet) {
		return fmt.Errorf("--quarantine-subnet %q is not a subnet ID: want subnet- followed by 8 or 17 hex digits (or leave it out to use the subnet tagged cordon:quarantine=true)", p.QuarantineSubnet)
	}
	return nil
}

func policyFrom(c *cli.Context) workflows.Policy {
	p := workflows.Policy{
		Approval:         workflows.ApprovalMode(c.String("approval")),
		ApprovalTimeout:  c.Duration("approval-timeout"),
		OnDeadline:       workflows.DeadlineAction(c.String("on-deadline")),
		Snapshots:        workflows.SnapshotRetention(c.String("snapshots")),
		DryRun:           c.Bool("dry-run"),
		QuarantineSubnet: c.String("quarantine-subnet"),
	}
	if c.Bool("no-relaunch") {
		off := false
		p.Relaunch = &off
	}
	return p
}

// dial connects to the Temporal server named by the environment
// (TEMPORAL_ADDRESS, default localhost:7233, where `worker -dev` listens).
func dial(c *cli.Context) (*app.Temporal, error) {
	return app.ConnectTemporal(c.Context, app.Config{}, app.Logger(levelOf(c)))
}

func levelOf(c *cli.Context) (l slogLevel) {
	_ = l.UnmarshalText([]byte(c.String("log-level")))
	if c.String("log-level") == "info" || c.String("log-level") == "" {
		return slogLevel(8) // the CLI prints its own lines; keep the SDK quiet
	}
	return l
}

func cmdQuarantine(c *cli.Context, out io.Writer) error {
	p := policyFrom(c)
	if err := checkPolicy(p); err != nil {
		return err
	}
	inst := c.String("instance")
	if !workflows.ValidInstanceID(inst) {
		return fmt.Errorf("--instance %q is not an EC2 instance ID: want i- followed by 8 or 17 hex digits", inst)
	}
	if !workflows.ValidAccountID(c.String("account")) {
		return fmt.Errorf("--account %q is not a 12-digit AWS account ID", c.String("account"))
	}
	t, err := dial(c)
	if err != nil {
		return err
	}
	defer t.Close()
	in := workflows.QuarantineInput{
		Account: c.String("account"), Region: c.String("region"), InstanceID: inst,
		Evidence: workflows.Evidence{Source: c.String("by"), BadIP: c.String("bad-ip"), Reason: c.String("reason"), Time: time.Now().UTC()},
		Policy:   p, UIBaseURL: t.UIURL(),
	}
	id := workflows.IncidentID(in.Account, in.Region, in.InstanceID)
	wasOpen := false
	if d, err := t.Client.DescribeWorkflowExecution(c.Context, id, ""); err == nil && d.GetWorkflowExecutionInfo().GetCloseTime() == nil {
		wasOpen = true
	}
	run, err := workflows.Open(c.Context, t.Client, in)
	if err != nil {
		return err
	}
	if wasOpen {
		fmt.Fprintf(out, "incident %s was already open: this alert was added to it as evidence; it keeps its own policy (the policy flags of this call are not applied)\n", run.GetID())
		return nil
	}
	fmt.Fprintf(out, "incident %s open (run %s)\n", run.GetID(), run.GetRunID())
	return reportPreflight(c.Context, t, run.GetID(), out)
}

// reportPreflight waits briefly for the incident to get past preflight and
// says where it is, so an unknown or protected instance is answered at once.
func reportPreflight(ctx context.Context, t *app.Temporal, id string, out io.Writer) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		st, err := workflows.GetStatus(ctx, t.Client, id)
		if err == nil && st.Phase != workflows.PhaseOpened && st.Phase != workflows.PhasePreflight {
			if st.Phase.Final() {
				fmt.Fprintf(out, "phase %s, outcome %s: %s\n", st.Phase, st.Outcome, st.Reason)
			} else {
				fmt.Fprintf(out, "phase %s (follow it: starter status %s)\n", st.Phase, id)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	fmt.Fprintln(out, "no worker has picked the incident up yet: is `worker` running on this Temporal server?")
	return nil
}

// resolveID accepts an incident ID, or an instance ID whose newest incident is meant.
func resolveID(c *cli.Context, t *app.Temporal, arg string) (string, error) {
	if arg == "" {
		return "", errors.New("name the incident: starter " + c.Command.Name + " INCIDENT-ID (or INSTANCE-ID)")
	}
	if strings.HasPrefix(arg, workflows.WorkflowIDPrefix) {
		return arg, nil
	}
	if !workflows.ValidInstanceID(arg) {
		return "", fmt.Errorf("%q is neither an incident ID (quarantine/<account>/<region>/<instance>) nor an instance ID", arg)
	}
	resp, err := t.Client.ListWorkflow(c.Context, listRequest(fmt.Sprintf("CordonInstanceID = %q", arg), 1))
	if err != nil {
		return "", fmt.Errorf("looking up the incident of %s: %w", arg, err)
	}
	if len(resp.Executions) == 0 {
		return "", fmt.Errorf("%w for instance %s (`starter list` shows the incidents)", workflows.ErrNoIncident, arg)
	}
	return resp.Executions[0].Execution.WorkflowId, nil
}

func cmdStatus(c *cli.Context, out io.Writer) error {
	t, err := dial(c)
	if err != nil {
		return err
	}
	defer t.Close()
	id, err := resolveID(c, t, c.Args().First())
	if err != nil {
		return err
	}
	st, err := workflows.GetStatus(c.Context, t.Client, id)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return printJSON(out, st)
	}
	printStatus(out, st, t.UIURL())
	return nil
}

func decideCommand(update, usage string, out io.Writer) *cli.Command {
	return &cli.Command{
		Name:      update,
		Usage:     usage,
		ArgsUsage: "INCIDENT-ID|INSTANCE-ID",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "by", Value: currentUser(), Usage: "who decides"},
			&cli.StringFlag{Name: "comment", Usage: "free text kept in the incident"},
		},
		Action: func(c *cli.Context) error {
			t, err := dial(c)
			if err != nil {
				return err
			}
			defer t.Close()
			id, err := resolveID(c, t, c.Args().First())
			if err != nil {
				return err
			}
			st, err := workflows.Decide(c.Context, t.Client, id, update, workflows.Decision{By: c.String("by"), Comment: c.String("comment")})
			if err != nil {
				return fmt.Errorf("%s %s: %w", update, id, err)
			}
			fmt.Fprintf(out, "%s: %s accepted (it was %s); follow it with: starter status %s\n", id, update, st.Phase, id)
			return nil
		},
	}
}

func cmdList(c *cli.Context, out io.Writer) error {
	if n := c.Int("limit"); n < 1 {
		return fmt.Errorf("--limit %d: must be at least 1", n)
	}
	t, err := dial(c)
	if err != nil {
		return err
	}
	defer t.Close()
	q := fmt.Sprintf("WorkflowType = %q", workflows.WorkflowName)
	if extra := c.String("query"); extra != "" {
		q += " AND (" + extra + ")"
	}
	resp, err := t.Client.ListWorkflow(c.Context, listRequest(q, c.Int("limit")))
	if err != nil {
		return fmt.Errorf("listing incidents: %w", err)
	}
	type row struct {
		open                           bool
		id, phase, instance, ip, start string
	}
	var rows []row
	for _, e := range resp.Executions {
		r := row{id: e.Execution.WorkflowId, open: e.CloseTime == nil, start: e.StartTime.AsTime().UTC().Format(time.RFC3339)}
		r.phase = keyword(e.SearchAttributes, "CordonPhase")
		r.instance = keyword(e.SearchAttributes, "CordonInstanceID")
		r.ip = keyword(e.SearchAttributes, "CordonBadIP")
		rows = append(rows, r)
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].open && !rows[j].open })
	if len(rows) == 0 {
		fmt.Fprintln(out, "no incidents")
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "INCIDENT\tSTATE\tPHASE\tINSTANCE\tBAD IP\tOPENED")
	for _, r := range rows {
		state := "closed"
		if r.open {
			state = "open"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.id, state, r.phase, r.instance, r.ip, r.start)
	}
	return tw.Flush()
}

func cmdDetect(c *cli.Context, out, errOut io.Writer) error {
	allow, err := app.ParsePrefixes(c.StringSlice("allow"))
	if err != nil {
		return fmt.Errorf("--allow: %w", err)
	}
	m, err := app.LoadMatcher(c.StringSlice("blocklist"), allow, func(s string) { fmt.Fprintln(errOut, "blocklist:", s) })
	if err != nil {
		return err
	}
	v4, v6 := m.Prefixes()
	fmt.Fprintf(out, "blocklists: %d list(s), %d IPv4 and %d IPv6 prefixes\n", len(m.Lists()), v4, v6)
	det := detector.NewDetector(detector.NewMatcherHolder(m), detector.Options{AllEvents: c.Bool("all-events")})
	p := policyFrom(c)
	if err := checkPolicy(p); err != nil {
		return err
	}
	opts := app.DetectOptions{Account: c.String("account"), Region: c.String("region"), Policy: p, DryRun: c.Bool("report-only")}
	var t *app.Temporal
	res := &app.Resolver{}
	if !opts.DryRun {
		t, err = dial(c)
		if err != nil {
			return err
		}
		defer t.Close()
		opts.UIBaseURL = t.UIURL()
		cfg, err := app.ConfigFrom(c)
		if err != nil {
			return err
		}
		cloud, err := app.NewCloud(c.Context, cfg)
		if err != nil {
			fmt.Fprintln(errOut, "detect: no cloud to resolve hosts without cloud.instance.id:", err)
		} else {
			res.Cloud = cloud.Provider
		}
	}
	var cl client.Client
	if t != nil {
		cl = t.Client
	}
	rep, err := app.DetectFiles(c.Context, cl, det, res, c.StringSlice("events"), opts)
	printDetect(out, errOut, rep)
	if err == nil && rep.Stats.Events == 0 && rep.Stats.Malformed > 0 {
		// Nothing was checked: "0 hits" would read as an all-clear.
		return fmt.Errorf("no usable Packetbeat event in %s: all %d record(s) were skipped (reasons above); is this Packetbeat or Elasticsearch _source output?",
			strings.Join(c.StringSlice("events"), ", "), rep.Stats.Malformed)
	}
	return err
}

func printDetect(out, errOut io.Writer, rep app.DetectReport) {
	s := rep.Stats
	fmt.Fprintf(out, "events: %d read, %d malformed, %d final flows checked, %d allowlisted addresses, %d hit(s)\n",
		s.Events, s.Malformed, s.Considered, s.Allowlisted, s.Hits)
	for _, p := range s.Samples {
		fmt.Fprintln(errOut, "events:", p.String())
	}
	for _, h := range rep.Hits {
		fmt.Fprintf(out, "  hit %s\n", h.Reason())
	}
	for _, u := range rep.Unresolved {
		fmt.Fprintln(errOut, "unresolved:", u)
	}
	for _, id := range rep.Incidents {
		fmt.Fprintf(out, "incident %s\n", id)
	}
}

func governorCommand(name, usage string, out io.Writer) *cli.Command {
	return &cli.Command{
		Name:  name,
		Usage: usage,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "group", Required: true, Usage: "Auto Scaling group name"},
			&cli.StringFlag{Name: "account", EnvVars: []string{"CORDON_ACCOUNT"}, Required: true},
			&cli.StringFlag{Name: "region", EnvVars: []string{"AWS_REGION"}, Required: true},
			&cli.StringFlag{Name: "by", Value: currentUser()},
		},
		Action: func(c *cli.Context) error {
			t, err := dial(c)
			if err != nil {
				return err
			}
			defer t.Close()
			id := workflows.GovernorID(c.String("account"), c.String("region"), c.String("group"))
			var st workflows.GovernorStatus
			if name == "reset" {
				h, err := t.Client.UpdateWorkflow(c.Context, client.UpdateWorkflowOptions{WorkflowID: id, UpdateName: workflows.UpdateResetBreaker,
					Args: []any{workflows.Decision{By: c.String("by")}}, WaitForStage: client.WorkflowUpdateStageCompleted})
				if err != nil {
					return fmt.Errorf("governor %s: %w (no incident has asked it yet, or it ended after a quiet day)", id, err)
				}
				if err := h.Get(c.Context, &st); err != nil {
					return err
				}
				fmt.Fprintf(out, "%s: breaker reset\n", id)
				return nil
			}
			v, err := t.Client.QueryWorkflow(c.Context, id, "", workflows.QueryGovernor)
			if err != nil {
				return fmt.Errorf("governor %s: %w (no incident has asked it yet, or it ended after a quiet day)", id, err)
			}
			if err := v.Get(&st); err != nil {
				return err
			}
			return printJSON(out, st)
		},
	}
}

// cmdPlan runs the incident workflow in dry-run mode under its own ID (it
// never touches an open incident) and prints the plan.
func cmdPlan(c *cli.Context, out io.Writer) error {
	p := policyFrom(c)
	p.DryRun = true
	if err := checkPolicy(p); err != nil {
		return err
	}
	inst := c.String("instance")
	if !workflows.ValidInstanceID(inst) {
		return fmt.Errorf("--instance %q is not an EC2 instance ID: want i- followed by 8 or 17 hex digits", inst)
	}
	t, err := dial(c)
	if err != nil {
		return err
	}
	defer t.Close()
	id := fmt.Sprintf("plan/%s/%s/%s/%d", c.String("account"), c.String("region"), inst, time.Now().UnixNano())
	run, err := t.Client.ExecuteWorkflow(c.Context, client.StartWorkflowOptions{ID: id, TaskQueue: workflows.TaskQueue}, workflows.WorkflowName,
		workflows.QuarantineInput{Account: c.String("account"), Region: c.String("region"), InstanceID: inst, Policy: p})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Context, 2*time.Minute)
	defer cancel()
	var res workflows.QuarantineResult
	if err := run.Get(ctx, &res); err != nil {
		return fmt.Errorf("plan for %s: %w (is a worker running?)", inst, err)
	}
	fmt.Fprintf(out, "plan for %s: %s — %s\n", inst, res.Outcome, res.Reason)
	tw := tabwriter.NewWriter(out, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tAWS CALLS")
	for _, s := range res.Status.Steps {
		fmt.Fprintf(tw, "%s\t%s\n", s.Name, s.Detail)
	}
	return tw.Flush()
}
