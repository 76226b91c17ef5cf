package app

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cordonhq/cordon/detector"
	"github.com/cordonhq/cordon/simcloud"
	"github.com/cordonhq/cordon/workflows"
)

// TemporalFlags configure the embedded server (-dev).
func TemporalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "dev", EnvVars: []string{"CORDON_DEV"}, Usage: "embed a Temporal server (SQLite file) and its Web UI"},
		&cli.StringFlag{Name: "db", EnvVars: []string{"CORDON_DEV_DB"}, Value: ".cordon/temporal.db", Usage: "SQLite file of the embedded server (incidents survive restarts)"},
		&cli.IntFlag{Name: "port", EnvVars: []string{"CORDON_DEV_PORT"}, Value: 7233, Usage: "frontend port of the embedded server"},
		&cli.IntFlag{Name: "ui-port", EnvVars: []string{"CORDON_UI_PORT"}, Value: 8233, Usage: "Web UI port of the embedded server (-1: no UI)"},
		&cli.StringFlag{Name: "namespace", EnvVars: []string{"CORDON_DEV_NAMESPACE"}, Value: "default", Usage: "namespace of the embedded server"},
	}
}

// CloudFlags configure the cloud backend and alerts.
func CloudFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "cloud", EnvVars: []string{"CORDON_CLOUD"}, Value: "sim", Usage: "sim (built-in simulated cloud) or aws (default credential chain)"},
		&cli.StringFlag{Name: "sim-env", EnvVars: []string{"CORDON_SIM_ENV"}, Value: "testdata/sim/seed.yaml", Usage: "environment file of the simulated cloud"},
		&cli.StringFlag{Name: "sim-delays", EnvVars: []string{"CORDON_SIM_DELAYS"}, Value: "demo", Usage: "simulated AWS delays: zero, demo (seconds) or realistic (minutes)"},
		&cli.StringFlag{Name: "aws-region", EnvVars: []string{"AWS_REGION"}, Usage: "default AWS region"},
		&cli.StringFlag{Name: "aws-endpoint", EnvVars: []string{"CORDON_AWS_ENDPOINT"}, Usage: "override every AWS endpoint (moto server in tests)"},
		&cli.StringFlag{Name: "roles", EnvVars: []string{"CORDON_ROLES"}, Usage: "per-account roles: 111122223333=arn:aws:iam::111122223333:role/cordon,..."},
		&cli.StringFlag{Name: "sns-topic-arn", EnvVars: []string{"CORDON_SNS_TOPIC_ARN"}, Usage: "SNS topic for operator alerts"},
		&cli.StringFlag{Name: "lifx-token", EnvVars: []string{"LIFX_TOKEN"}, Usage: "LIFX HTTP API token (the light breathes red while an incident is open)"},
		&cli.StringFlag{Name: "lifx-selector", EnvVars: []string{"LIFX_SELECTOR"}, Value: "all", Usage: "LIFX selector"},
		&cli.StringFlag{Name: "lifx-url", EnvVars: []string{"LIFX_URL"}, Value: "https://api.lifx.com/v1", Usage: "LIFX API base URL"},
		&cli.StringFlag{Name: "ifttt-key", EnvVars: []string{"IFTTT_KEY"}, Usage: "IFTTT Webhooks key"},
		&cli.StringFlag{Name: "ifttt-event", EnvVars: []string{"IFTTT_EVENT"}, Value: "cordon", Usage: "IFTTT event prefix; the phase is appended (cordon_opened)"},
		&cli.StringFlag{Name: "ifttt-url", EnvVars: []string{"IFTTT_URL"}, Value: "https://maker.ifttt.com", Usage: "IFTTT base URL"},
		&cli.StringFlag{Name: "light-state-file", EnvVars: []string{"CORDON_LIGHT_STATE_FILE"}, Usage: "where the worker keeps the LIFX lights' state from before an alarm, restored when the last incident closes (default: lifx-state.json next to --db)"},
		&cli.IntFlag{Name: "max-concurrent", EnvVars: []string{"CORDON_MAX_CONCURRENT"}, Value: 2, Usage: "incidents one Auto Scaling group handles at once"},
		&cli.IntFlag{Name: "min-healthy", EnvVars: []string{"CORDON_MIN_HEALTHY"}, Value: 1, Usage: "healthy in-service instances a group always keeps"},
		&cli.IntFlag{Name: "breaker-count", EnvVars: []string{"CORDON_BREAKER_COUNT"}, Value: 5, Usage: "incidents per group within --breaker-window that trip the breaker"},
		&cli.DurationFlag{Name: "breaker-window", EnvVars: []string{"CORDON_BREAKER_WINDOW"}, Value: time.Hour, Usage: "the breakers' window"},
		&cli.IntFlag{Name: "account-max-concurrent", EnvVars: []string{"CORDON_ACCOUNT_MAX_CONCURRENT"}, Value: workflows.DefaultAccountMaxConcurrent, Usage: "incidents one AWS account handles at once, across all its groups and regions (0: no account-wide governor)"},
		&cli.IntFlag{Name: "account-breaker-count", EnvVars: []string{"CORDON_ACCOUNT_BREAKER_COUNT"}, Value: workflows.DefaultAccountBreakerCount, Usage: "incidents per account within --breaker-window that trip the account-wide breaker"},
		&cli.DurationFlag{Name: "poll", EnvVars: []string{"CORDON_POLL_INTERVAL"}, DefaultText: "15s; 250ms on the simulated cloud", Usage: "how often waits describe AWS resources"},
		&cli.StringSliceFlag{Name: "protect-instance", EnvVars: []string{"CORDON_PROTECT_INSTANCES"}, Usage: "instance IDs no incident may touch, whatever their tags (repeat or comma-separate); such incidents end at preflight, protected, with an alert"},
	}
}

// ServeFlags configure `starter serve`.
func ServeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "listen", EnvVars: []string{"CORDON_LISTEN"}, Value: "127.0.0.1:8080", Usage: "address to serve on"},
		&cli.StringFlag{Name: "tls-cert", EnvVars: []string{"CORDON_TLS_CERT"}, Usage: "TLS certificate file (omit behind a TLS-terminating load balancer)"},
		&cli.StringFlag{Name: "tls-key", EnvVars: []string{"CORDON_TLS_KEY"}, Usage: "TLS key file"},
		&cli.StringSliceFlag{Name: "sns-topic", EnvVars: []string{"CORDON_SNS_TOPICS"}, Usage: "serve POST /sns for these topic ARNs (the allowlist: messages from any other topic are refused)"},
		&cli.StringFlag{Name: "sns-raw-secret", EnvVars: []string{"CORDON_SNS_RAW_SECRET"}, Usage: "shared secret that raw (unsigned) deliveries must carry; empty: raw delivery refused"},
		&cli.StringFlag{Name: "sns-default-account", EnvVars: []string{"CORDON_ACCOUNT"}, Usage: "account for alerts that do not name one"},
		&cli.StringSliceFlag{Name: "allow", EnvVars: []string{"CORDON_ALLOW"}, Usage: "addresses or CIDRs never treated as bad actors, on top of private/loopback/link-local"},
		&cli.StringFlag{Name: "alexa-skill-id", EnvVars: []string{"CORDON_ALEXA_SKILL_ID"}, Usage: "serve POST /alexa for this Alexa skill (amzn1.ask.skill.…); requests are verified as the Alexa Skills Kit requires"},
		&cli.StringSliceFlag{Name: "alexa-user", EnvVars: []string{"CORDON_ALEXA_USERS"}, Usage: "Alexa user IDs allowed to steer incidents (default: any user of the skill)"},
	}
}

// BlocklistReloadFlag sets how often the detector's blocklist files are
// checked for changes (WatchBlocklists).
func BlocklistReloadFlag() cli.Flag {
	return &cli.DurationFlag{Name: "blocklist-reload", EnvVars: []string{"CORDON_BLOCKLIST_RELOAD"}, Value: detector.DefaultReloadInterval,
		Usage: "how often the blocklist files (and ElastAlert !file lists) are checked; a change is loaded without a restart, a broken one is logged and the previous lists kept (0: never reload)"}
}

// MetricsFlag serves the worker's Prometheus metrics.
func MetricsFlag() cli.Flag {
	return &cli.StringFlag{Name: "metrics-listen", EnvVars: []string{"CORDON_METRICS_LISTEN"}, Usage: "serve Prometheus metrics (GET /metrics) on this address, e.g. 127.0.0.1:9090"}
}

// LogFlag sets the log level.
func LogFlag() cli.Flag {
	return &cli.StringFlag{Name: "log-level", EnvVars: []string{"CORDON_LOG_LEVEL"}, Value: "info", Usage: "debug, info, warn or error"}
}

// ConfigFrom builds the Config from parsed flags.
func ConfigFrom(c *cli.Context) (Config, error) {
	cfg := Config{
		Dev: c.Bool("dev"), DevDB: c.String("db"), DevPort: c.Int("port"), UIPort: c.Int("ui-port"), Namespace: c.String("namespace"),
		Cloud: c.String("cloud"), SimEnv: c.String("sim-env"),
		AWSRegion: c.String("aws-region"), AWSEndpoint: c.String("aws-endpoint"),
		TopicARN:  c.String("sns-topic-arn"),
		LIFXToken: c.String("lifx-token"), LIFXSelector: c.String("lifx-selector"), LIFXBaseURL: c.String("lifx-url"),
		IFTTTKey: c.String("ifttt-key"), IFTTTEvent: c.String("ifttt-event"), IFTTTBaseURL: c.String("ifttt-url"),
		LightStateFile: c.String("light-state-file"), PollInterval: c.Duration("poll"), MetricsListen: c.String("metrics-listen"),
		Limits: workflows.GovernorLimits{MaxConcurrent: c.Int("max-concurrent"), MinHealthy: c.Int("min-healthy"),
			BreakerCount: c.Int("breaker-count"), BreakerWindow: c.Duration("breaker-window"),
			AccountMaxConcurrent: c.Int("account-max-concurrent"), AccountBreakerCount: c.Int("account-breaker-count")},
	}
	if err := cfg.LogLevel.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return cfg, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.String("log-level"))
	}
	d, err := SimDelays(c.String("sim-delays"))
	if err != nil {
		return cfg, err
	}
	cfg.SimDelays = d
	if cfg.LightStateFile == "" {
		// The worker's data directory: where its SQLite file goes.
		cfg.LightStateFile = filepath.Join(filepath.Dir(cfg.DevDB), "lifx-state.json")
	}
	roles, err := ParseRoles(c.String("roles"))
	if err != nil {
		return cfg, err
	}
	cfg.Roles = roles
	if cfg.PollInterval < 0 {
		return cfg, fmt.Errorf("--poll %s: must be positive", cfg.PollInterval)
	}
	if err := checkLimits(cfg.Limits); err != nil {
		return cfg, err
	}
	for _, id := range c.StringSlice("protect-instance") {
		id = strings.TrimSpace(id)
		if id == "" {
			continue
		}
		if !workflows.ValidInstanceID(id) {
			return cfg, fmt.Errorf("--protect-instance %q: not an EC2 instance ID (i- and 8 or 17 hex digits)", id)
		}
		if cfg.ProtectedInstances == nil {
			cfg.ProtectedInstances = map[string]bool{}
		}
		cfg.ProtectedInstances[id] = true
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 15 * time.Second
		if cfg.Cloud == "sim" {
			cfg.PollInterval = 250 * time.Millisecond
		}
	}
	if cfg.Cloud != "sim" && cfg.Cloud != "aws" {
		return cfg, fmt.Errorf("--cloud %q: want sim or aws", cfg.Cloud)
	}
	return cfg, nil
}

// SimDelays returns a named preset of simulated AWS delays.
func SimDelays(name string) (simcloud.Delays, error) {
	switch name {
	case "zero":
		return simcloud.Delays{}, nil
	case "demo":
		return simcloud.Delays{InstanceStart: 2 * time.Second, InstanceStop: time.Second, ImageAvailable: 3 * time.Second,
			Replace: 2 * time.Second, TargetHealthy: time.Second}, nil
	case "realistic":
		return simcloud.Delays{InstanceStart: 40 * time.Second, InstanceStop: 30 * time.Second, ImageAvailable: 8 * time.Minute,
			Replace: 90 * time.Second, TargetHealthy: 60 * time.Second}, nil
	}
	return simcloud.Delays{}, fmt.Errorf("--sim-delays %q: want zero, demo or realistic", name)
}

// ParseRoles parses "account=roleARN,..." pairs.
func ParseRoles(s string) (map[string]string, error) {
	roles := map[string]string{}
	for _, pair := range strings.Split(s, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		acct, arn, ok := strings.Cut(pair, "=")
		if !ok || len(acct) != 12 || !strings.HasPrefix(arn, "arn:") {
			return nil, fmt.Errorf("--roles: %q is not account=arn:aws:iam::ACCOUNT:role/NAME", pair)
		}
		roles[acct] = arn
	}
	return roles, nil
}

// ParsePrefixes parses comma-separated CIDRs or addresses.
func ParsePrefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range list {
		for _, s := range strings.Split(item, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			if p, err := netip.ParsePrefix(s); err == nil {
				out = append(out, p.Masked())
				continue
			}
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("%q is neither an address nor a CIDR range", s)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out, nil
}

// checkLimits refuses governor limits that would silently fall back to the
// defaults (Normalize treats zero and below as "unset").
func checkLimits(l workflows.GovernorLimits) error {
	switch {
	case l.MaxConcurrent < 1:
		return fmt.Errorf("--max-concurrent %d: must be at least 1 (incidents one group handles at once)", l.MaxConcurrent)
	case l.MinHealthy < 1:
		return fmt.Errorf("--min-healthy %d: must be at least 1: Cordon never takes a group's last healthy instance out of service", l.MinHealthy)
	case l.BreakerCount < 1:
		return fmt.Errorf("--breaker-count %d: must be at least 1 (incidents within --breaker-window that trip the breaker)", l.BreakerCount)
	case l.BreakerWindow <= 0:
		return fmt.Errorf("--breaker-window %s: must be positive, e.g. 1h", l.BreakerWindow)
	case l.AccountMaxConcurrent < 0:
		return fmt.Errorf("--account-max-concurrent %d: must be 0 (no account-wide governor) or more", l.AccountMaxConcurrent)
	case l.AccountMaxConcurrent > 0 && l.AccountBreakerCount < 1:
		return fmt.Errorf("--account-breaker-count %d: must be at least 1 while --account-max-concurrent is set", l.AccountBreakerCount)
	}
	return nil
}
