package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/urfave/cli/v2"

	"github.com/cordonhq/cordon/alexa"
	"github.com/cordonhq/cordon/detector"
	"github.com/cordonhq/cordon/internal/app"
	"github.com/cordonhq/cordon/sns"
	"github.com/cordonhq/cordon/workflows"
)

// endpoint is one HTTP route that `starter serve` mounts.
type endpoint struct {
	pattern string
	handler http.Handler
}

// server is the HTTP front door: health, metrics and the mounted endpoints.
type server struct {
	log      *slog.Logger
	registry *prometheus.Registry
	mux      *http.ServeMux
	ready    func(context.Context) error
}

func newServer(log *slog.Logger, ready func(context.Context) error, eps ...endpoint) *server {
	s := &server{log: log, registry: prometheus.NewRegistry(), mux: http.NewServeMux(), ready: ready}
	s.registry.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	for _, ep := range eps {
		s.mux.Handle(ep.pattern, ep.handler)
	}
	return s
}

// healthz answers 200 when Temporal answers, 503 otherwise.
func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	if s.ready != nil {
		if err := s.ready(ctx); err != nil {
			http.Error(w, "temporal unreachable: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
	}
	_, _ = io.WriteString(w, "ok\n")
}

// run serves until ctx is done, then shuts down gracefully: in-flight
// requests (an SNS delivery being handed to Temporal) get 20 s to finish.
func (s *server) run(ctx context.Context, listen, certFile, keyFile string, announce func(string)) error {
	hs := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w (set --listen)", listen, err)
	}
	scheme := "http"
	if certFile != "" || keyFile != "" {
		if certFile == "" || keyFile == "" {
			l.Close()
			return errors.New("TLS needs both --tls-cert and --tls-key")
		}
		scheme = "https"
	}
	announce(scheme + "://" + l.Addr().String())
	errc := make(chan error, 1)
	go func() {
		if scheme == "https" {
			errc <- hs.ServeTLS(l, certFile, keyFile)
		} else {
			errc <- hs.Serve(l)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "grace", "20s")
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return hs.Shutdown(sctx)
}

func cmdServe(c *cli.Context, out io.Writer) error {
	cfg, err := app.ConfigFrom(c)
	if err != nil {
		return err
	}
	// Flags checked before anything starts.
	if id := c.String("alexa-skill-id"); id != "" && !strings.HasPrefix(id, "amzn1.ask.skill.") {
		return fmt.Errorf("--alexa-skill-id %q: want the skill's ID from the developer console, amzn1.ask.skill.<uuid>", id)
	}
	if a := c.String("sns-default-account"); a != "" && !workflows.ValidAccountID(a) {
		return fmt.Errorf("--sns-default-account %q is not a 12-digit AWS account ID", a)
	}
	allow, err := app.ParsePrefixes(c.StringSlice("allow"))
	if err != nil {
		return fmt.Errorf("--allow: %w", err)
	}
	log := app.Logger(cfg.LogLevel)
	t, err := app.ConnectTemporal(c.Context, app.Config{}, log)
	if err != nil {
		return err
	}
	defer t.Close()
	ready := func(ctx context.Context) error {
		_, err := t.Client.CheckHealth(ctx, nil)
		return err
	}
	var eps []endpoint
	routes := []string{"GET /healthz", "GET /metrics"}
	if id := c.String("alexa-skill-id"); id != "" {
		eps = append(eps, endpoint{"POST /alexa", alexa.NewHTTPHandler(alexa.Config{
			SkillID: id,
			Users:   c.StringSlice("alexa-user"),
			Logger:  log,
		}, alexa.NewSkill(t.Client, log))})
		routes = append(routes, "POST /alexa")
	}
	var snsH *sns.Handler
	if topics := c.StringSlice("sns-topic"); len(topics) > 0 {
		cloud, err := app.NewCloud(c.Context, cfg) // finds instances for alerts that name only a host or an address
		if err != nil {
			return err
		}
		allowed := detector.NewMatcher(nil, detector.MatcherConfig{Allow: allow})
		snsH, err = sns.NewHandler(sns.Config{
			Topics:         topics,
			RawSecret:      c.String("sns-raw-secret"),
			DefaultAccount: c.String("sns-default-account"),
			DefaultRegion:  cfg.AWSRegion,
			Resolver:       &app.Resolver{Cloud: cloud.Provider},
			IPAllowed:      allowed.Allowed,
			UIBaseURL:      t.UIURL(),
			Logger:         log,
		}, sns.TemporalOpener{Client: t.Client})
		if err != nil {
			return err
		}
		eps = append(eps, endpoint{pattern: "POST /sns", handler: snsH})
		routes = append(routes, "POST /sns")
	}
	s := newServer(log, ready, eps...)
	if snsH != nil {
		s.registry.MustRegister(snsH.Stats())
	}
	return s.run(c.Context, c.String("listen"), c.String("tls-cert"), c.String("tls-key"), func(u string) {
		fmt.Fprintf(out, "serving on %s (%s)\n", u, strings.Join(routes, ", "))
	})
}
