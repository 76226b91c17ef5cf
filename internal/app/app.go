// Package app wires Cordon's processes: configuration, logging, the cloud
// backend (simulated or AWS), the notifier, the Temporal connection (embedded
// dev server or a cluster) and the worker. The mains in worker/ and starter/
// stay thin and share this.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/smithy-go/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/cordonhq/cordon/activities"
	"github.com/cordonhq/cordon/internal/devserver"
	"github.com/cordonhq/cordon/internal/metrics"
	"github.com/cordonhq/cordon/simcloud"
	"github.com/cordonhq/cordon/workflows"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
)

// Config is every setting of a Cordon process. main builds it from flags
// and environment variables (see the README's configuration table).
type Config struct {
	// Temporal
	Dev       bool   // embed a Temporal server with the Web UI
	DevDB     string // SQLite file of the embedded server
	DevPort   int    // frontend port of the embedded server (0 = free port)
	UIPort    int    // Web UI port of the embedded server (0 = free port, -1 = none)
	Namespace string // namespace when embedded

	// Cloud
	Cloud       string // "sim" or "aws"
	SimEnv      string // environment file of the simulated cloud
	SimDelays   simcloud.Delays
	AWSRegion   string            // default region for AWS clients
	AWSEndpoint string            // endpoint override (moto)
	Roles       map[string]string // account → role ARN

	// Alerts
	TopicARN     string
	LIFXToken    string
	LIFXSelector string
	LIFXBaseURL  string
	IFTTTKey     string
	IFTTTEvent   string
	IFTTTBaseURL string
	// LightStateFile keeps the LIFX lights' state from before an alarm
	// (--light-state-file); empty: clearing only stops the effect.
	LightStateFile string

	PollInterval time.Duration
	LogLevel     slog.Level
	// ProtectedInstances no incident may touch (--protect-instance).
	ProtectedInstances map[string]bool

	// MetricsListen, when set, serves Prometheus metrics (SDK and Cordon's).
	MetricsListen string
	// Metrics receives the Temporal client's metrics (SDK and workflow).
	Metrics client.MetricsHandler
	// MetricsRegistry, when set, receives cordon_aws_calls_total from the
	// AWS clients NewCloud builds.
	MetricsRegistry prometheus.Registerer

	// Governor limits per Auto Scaling group.
	Limits workflows.GovernorLimits
}

// Logger returns the process's JSON logger on stderr.
func Logger(level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// Temporal is a connection to a Temporal server, embedded or not.
type Temporal struct {
	Client client.Client
	Dev    *devserver.Server // nil when connected to a cluster
}

// Close closes the client and stops the embedded server.
func (t *Temporal) Close() {
	if t.Client != nil {
		t.Client.Close()
	}
	if t.Dev != nil {
		_ = t.Dev.Stop()
	}
}

// UIURL is the Web UI's base URL, or "" when unknown.
func (t *Temporal) UIURL() string {
	if t.Dev != nil {
		return t.Dev.UIURL()
	}
	return os.Getenv("CORDON_UI_URL")
}

// searchAttributes are registered on the embedded server.
func searchAttributes() map[string]enumspb.IndexedValueType {
	m := map[string]enumspb.IndexedValueType{}
	for _, n := range workflows.SearchAttributeNames {
		m[n] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
	}
	return m
}

// ConnectTemporal starts the embedded server (cfg.Dev) or dials the cluster
// named by the SDK's environment configuration (TEMPORAL_ADDRESS,
// TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TLS settings, profiles).
func ConnectTemporal(ctx context.Context, cfg Config, log *slog.Logger) (*Temporal, error) {
	t := &Temporal{}
	var opts client.Options
	if cfg.Dev {
		if cfg.DevDB != "" {
			if err := os.MkdirAll(filepath.Dir(cfg.DevDB), 0o755); err != nil {
				return nil, fmt.Errorf("creating the directory of %s: %w", cfg.DevDB, err)
			}
		}
		srv, err := devserver.Start(ctx, devserver.Options{
			DBFile: cfg.DevDB, Namespace: cfg.Namespace, FrontendPort: cfg.DevPort, UIPort: cfg.UIPort,
			SearchAttributes: searchAttributes(), Logger: log,
		})
		if err != nil {
			return nil, fmt.Errorf("starting the embedded Temporal server: %w", err)
		}
		t.Dev = srv
		opts = client.Options{HostPort: srv.FrontendHostPort(), Namespace: srv.Namespace()}
	} else {
		o, err := envconfig.LoadDefaultClientOptions()
		if err != nil {
			return nil, fmt.Errorf("reading the Temporal client configuration (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, ...): %w", err)
		}
		opts = o
	}
	opts.Logger = tlog.NewStructuredLogger(log)
	if cfg.Metrics != nil {
		opts.MetricsHandler = cfg.Metrics
	}
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		t.Close()
		addr := opts.HostPort
		if addr == "" {
			addr = client.DefaultHostPort
		}
		return nil, fmt.Errorf("connecting to Temporal at %s: %w (start one with `worker -dev`, or set TEMPORAL_ADDRESS)", addr, err)
	}
	t.Client = c
	return t, nil
}

// Cloud is the backend the activities act on.
type Cloud struct {
	Provider activities.CloudProvider
	Sim      *simcloud.Cloud // set for the simulated cloud
	AWS      *AWSProvider    // set for AWS
}

// NewCloud builds the simulated cloud or the AWS provider.
func NewCloud(ctx context.Context, cfg Config) (*Cloud, error) {
	switch cfg.Cloud {
	case "", "sim":
		env, err := simcloud.LoadEnvironment(cfg.SimEnv)
		if err != nil {
			return nil, fmt.Errorf("loading the simulated environment: %w", err)
		}
		sim, err := simcloud.New(env, simcloud.Options{Delays: cfg.SimDelays})
		if err != nil {
			return nil, fmt.Errorf("building the simulated cloud from %s: %w", cfg.SimEnv, err)
		}
		return &Cloud{Provider: sim, Sim: sim}, nil
	case "aws":
		var apiOptions []func(*middleware.Stack) error
		if cfg.MetricsRegistry != nil {
			calls, err := metrics.NewAWSCalls(cfg.MetricsRegistry)
			if err != nil {
				return nil, fmt.Errorf("registering %s: %w", metrics.AWSCallsName, err)
			}
			apiOptions = append(apiOptions, calls.Option())
		}
		base, err := NewAWSConfig(ctx, cfg.AWSRegion, apiOptions...)
		if err != nil {
			return nil, err
		}
		p := NewAWSProvider(base, cfg.AWSEndpoint, cfg.Roles)
		if _, err := p.CallerAccount(ctx); err != nil {
			return nil, err
		}
		return &Cloud{Provider: p, AWS: p}, nil
	default:
		return nil, fmt.Errorf("cloud %q is not one of sim, aws", cfg.Cloud)
	}
}

// Notifier builds the alert notifier from cfg.
func (c *Cloud) Notifier(cfg Config) *activities.Notifier {
	n := &activities.Notifier{
		TopicARN:  cfg.TopicARN,
		LIFXToken: cfg.LIFXToken, LIFXSelector: cfg.LIFXSelector, LIFXBaseURL: cfg.LIFXBaseURL,
		IFTTTKey: cfg.IFTTTKey, IFTTTEvent: cfg.IFTTTEvent, IFTTTBaseURL: cfg.IFTTTBaseURL,
		LightStateFile: cfg.LightStateFile,
		HTTP:           &http.Client{Timeout: 10 * time.Second},
	}
	if cfg.TopicARN != "" {
		switch {
		case c.Sim != nil:
			n.SNS = c.Sim
		case c.AWS != nil:
			n.SNS = c.AWS.SNS(regionOfARN(cfg.TopicARN))
		}
	}
	return n
}

func regionOfARN(arn string) string {
	parts := strings.Split(arn, ":")
	if len(parts) > 3 {
		return parts[3]
	}
	return ""
}

// OtherOpenIncidents counts, through visibility, the incidents other than id
// that are still being handled (running and not yet in a final phase), so
// the alert light stays red until the last one closes. The phase matters:
// an incident sends its "resolved" alert while its workflow still runs.
func OtherOpenIncidents(c client.Client) func(ctx context.Context, id string) (int, error) {
	return func(ctx context.Context, id string) (int, error) {
		resp, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
			Query: fmt.Sprintf("WorkflowType = %q AND ExecutionStatus = 'Running' AND WorkflowId != %q AND CordonPhase NOT IN ('resolved', 'released', 'skipped', 'needs-attention')",
				workflows.WorkflowName, id),
		})
		if err != nil {
			return 0, err
		}
		return int(resp.GetCount()), nil
	}
}

// NewWorker registers the incident and governor workflows and their
// activities on the task queue. limits are the governors' safety limits
// (zero fields: safe defaults).
func NewWorker(c client.Client, acts *activities.Activities, limits workflows.GovernorLimits, opts worker.Options) worker.Worker {
	w := worker.New(c, workflows.TaskQueue, opts)
	w.RegisterWorkflowWithOptions(workflows.Quarantine, workflow.RegisterOptions{Name: workflows.WorkflowName})
	w.RegisterWorkflowWithOptions(workflows.Governor, workflow.RegisterOptions{Name: workflows.GovernorWorkflowName})
	w.RegisterActivity(acts)
	w.RegisterActivity(&SlotActivities{Client: c, Limits: limits.Normalize()})
	return w
}
