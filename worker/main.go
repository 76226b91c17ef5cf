// Command worker runs Cordon's incident workflows and activities. With -dev
// it embeds a Temporal server (SQLite file) and serves the Web UI; otherwise
// it connects to the cluster named by the Temporal environment configuration.
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/urfave/cli/v2"
	"go.temporal.io/sdk/worker"

	"github.com/cordonhq/cordon/activities"
	"github.com/cordonhq/cordon/detector"
	"github.com/cordonhq/cordon/internal/app"
	"github.com/cordonhq/cordon/internal/metrics"
	"github.com/cordonhq/cordon/internal/search"
)

func main() {
	cmd := &cli.App{
		Name:  "worker",
		Usage: "run Cordon's incident workflows and activities",
		Flags: append(append(append(app.TemporalFlags(), app.CloudFlags()...), search.Flags()...), app.BlocklistReloadFlag(), app.LogFlag(), app.MetricsFlag()),
		Action: func(c *cli.Context) error {
			cfg, err := app.ConfigFrom(c)
			if err != nil {
				return err
			}
			scfg, lists, on, err := search.ConfigFromFlags(c)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			return run(ctx, cfg, searchSetup{cfg: scfg, lists: lists, on: on, reload: c.Duration("blocklist-reload")})
		},
	}
	if err := cmd.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

// searchSetup configures the Elasticsearch/OpenSearch detector (--search-url).
type searchSetup struct {
	cfg    search.Config
	lists  []string
	on     bool
	reload time.Duration // --blocklist-reload: how often the lists are checked for changes (0: never)
}

func run(ctx context.Context, cfg app.Config, ss searchSetup) error {
	log := app.Logger(cfg.LogLevel)
	if cfg.MetricsListen != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		cfg.Metrics = metrics.New(reg)
		cfg.MetricsRegistry = reg // cordon_aws_calls_total from the AWS clients
		l, err := net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			return fmt.Errorf("--metrics-listen %s: %w", cfg.MetricsListen, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(l) }()
		defer srv.Close()
		fmt.Printf("Prometheus metrics: http://%s/metrics\n", l.Addr())
	}
	cloud, err := app.NewCloud(ctx, cfg) // after the registry: its AWS clients count their calls there
	if err != nil {
		return err
	}
	t, err := app.ConnectTemporal(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer t.Close()
	if t.Dev != nil {
		fmt.Printf("Temporal server: %s (namespace %s, database %s)\n", t.Dev.FrontendHostPort(), t.Dev.Namespace(), cfg.DevDB)
		if u := t.Dev.UIURL(); u != "" {
			fmt.Printf("Temporal Web UI: %s/namespaces/%s/workflows\n", u, t.Dev.Namespace())
		}
	}
	notifier := cloud.Notifier(cfg)
	notifier.OtherOpenIncidents = app.OtherOpenIncidents(t.Client)
	acts := &activities.Activities{Cloud: cloud.Provider, Notifier: notifier, PollInterval: cfg.PollInterval, ProtectedInstances: cfg.ProtectedInstances}
	w := app.NewWorker(t.Client, acts, cfg.Limits, worker.Options{})
	// The search detector's workflow and activities are always registered:
	// without --search-url its status says so.
	sacts := &search.Activities{Temporal: t.Client, Resolver: &app.Resolver{Cloud: cloud.Provider}}
	if ss.on {
		lists, err := app.WatchBlocklists(ctx, ss.lists, nil, ss.reload, log) // reloaded when the files change
		if err != nil {
			return err
		}
		sacts.Detector = detector.NewDetector(lists, detector.Options{})
		if sacts.Search, err = search.New(ss.cfg); err != nil {
			return err
		}
		log.Info("search detector", "config", ss.cfg.String())
	}
	search.Register(w, sacts)
	log.Info("worker started", "cloud", cfg.Cloud)
	return w.Run(workerInterrupt(ctx))
}

// workerInterrupt turns ctx's cancellation into the worker's stop signal.
func workerInterrupt(ctx context.Context) <-chan any {
	ch := make(chan any)
	go func() { <-ctx.Done(); close(ch) }()
	return ch
}
