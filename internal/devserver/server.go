// Package devserver embeds a Temporal dev server (SQLite persistence, all
// services in-process) and, optionally, the Temporal Web UI, the way the
// `temporal server start-dev` command of the Temporal CLI does.
//
// The CLI's implementation (temporalio/cli internal/devserver, MIT) is not
// importable, so this is a re-implementation of the parts Cordon needs, built
// on go.temporal.io/server/temporal, go.temporal.io/server/schema/sqlite and
// github.com/temporalio/ui-server/v2/server.
package devserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uiserveroptions "github.com/temporalio/ui-server/v2/server/server_options"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/membership/static"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
)

const (
	// DefaultNamespace is used when Options.Namespace is empty.
	DefaultNamespace = "default"
	// DefaultIP is used when Options.IP is empty.
	DefaultIP = "127.0.0.1"
	// NoUI as Options.UIPort disables the Web UI.
	NoUI = -1

	clusterName = "active"
	storeName   = "sqlite-default"

	// startTimeout caps Start when ctx has no (earlier) deadline.
	startTimeout = 90 * time.Second
	// uiStopTimeout bounds how long Stop waits for the UI goroutine.
	uiStopTimeout = 10 * time.Second
)

// Options configures Start.
type Options struct {
	// DBFile is the SQLite file path; "" means an in-memory database.
	// An existing file is reused (incidents persist across restarts); a
	// missing file (and its parent directory) is created and the schema set up.
	DBFile string
	// Namespace is registered before start (no-op if present); default "default".
	Namespace string
	// IP the frontend and the UI listen on; default 127.0.0.1. The other
	// services always listen on loopback.
	IP string
	// FrontendPort is the frontend gRPC port; 0 picks a free port (the CLI default is 7233).
	FrontendPort int
	// UIPort is the Web UI port; 0 picks a free port, -1 (NoUI) disables the UI
	// (the CLI default is 8233).
	UIPort int
	// SearchAttributes are custom search attributes registered in the namespace
	// (before start for a new namespace, via the operator API for an existing
	// one). At most a handful per type with SQLite (pre-allocated columns).
	SearchAttributes map[string]enums.IndexedValueType
	// Logger receives server logs at LogLevel and above; default slog.Default().
	Logger *slog.Logger
	// LogLevel filters server logs; nil means slog.LevelWarn (keeps the console quiet).
	LogLevel slog.Leveler
}

// Server is a running embedded Temporal dev server.
type Server struct {
	server    temporal.Server
	ui        *uiserver.Server
	uiDone    chan struct{}
	frontend  string
	uiURL     string
	namespace string
	logger    *slog.Logger
	gate      *levelGate

	stopOnce sync.Once
	stopErr  error
	lock     *dbLock // held while the server runs on its SQLite file
}

// Start starts the server (and the UI unless disabled) and returns once the
// frontend answers for the namespace, the search attributes are registered
// and the UI answers HTTP.
func Start(ctx context.Context, opts Options) (_ *Server, retErr error) {
	if opts.Namespace == "" {
		opts.Namespace = DefaultNamespace
	}
	if opts.IP == "" {
		opts.IP = DefaultIP
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.LogLevel == nil {
		opts.LogLevel = slog.LevelWarn
	}
	if opts.FrontendPort < 0 {
		return nil, fmt.Errorf("devserver: invalid frontend port %d", opts.FrontendPort)
	}
	if opts.UIPort < NoUI {
		return nil, fmt.Errorf("devserver: invalid UI port %d", opts.UIPort)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()

	// Address other services and clients use to reach a listener on opts.IP.
	connectIP := opts.IP
	if ip := net.ParseIP(opts.IP); ip != nil && ip.IsUnspecified() {
		connectIP = DefaultIP
	}

	// Ports given explicitly are checked up front: the server "Fatal"-logs a
	// failed listen and then crashes on the nil listener, and the UI server
	// calls os.Exit (echo Logger.Fatal) when it cannot listen.
	var err error
	if opts.FrontendPort == 0 {
		if opts.FrontendPort, err = freePort(opts.IP); err != nil {
			return nil, err
		}
	} else if err := checkPort(opts.IP, opts.FrontendPort); err != nil {
		return nil, fmt.Errorf("devserver: frontend port: %w", err)
	}
	if opts.UIPort == 0 {
		if opts.UIPort, err = freePort(opts.IP); err != nil {
			return nil, err
		}
	} else if opts.UIPort > 0 {
		if err := checkPort(opts.IP, opts.UIPort); err != nil {
			return nil, fmt.Errorf("devserver: UI port: %w", err)
		}
	}

	// One server per SQLite file: two would both run the history and
	// matching services over the same shards.
	lock, err := lockDB(opts.DBFile)
	if err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			lock.release()
		}
	}()

	sqlConf, err := prepareSQLite(opts)
	if err != nil {
		return nil, err
	}
	conf, err := buildConfig(opts, connectIP, sqlConf)
	if err != nil {
		return nil, err
	}
	gate := newLevelGate(opts.LogLevel)
	logger := slogLogger{log: opts.Logger, min: gate}
	authorizer, err := authorization.GetAuthorizerFromConfig(&conf.Global.Authorization)
	if err != nil {
		return nil, fmt.Errorf("devserver: authorizer: %w", err)
	}
	claimMapper, err := authorization.GetClaimMapperFromConfig(&conf.Global.Authorization, logger)
	if err != nil {
		return nil, fmt.Errorf("devserver: claim mapper: %w", err)
	}
	hostPort := func(svc primitives.ServiceName) string {
		ip := DefaultIP
		if svc == primitives.FrontendService {
			ip = connectIP
		}
		return net.JoinHostPort(ip, strconv.Itoa(conf.Services[string(svc)].RPC.GRPCPort))
	}
	srv, err := temporal.NewServer(
		temporal.WithConfig(conf),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(map[primitives.ServiceName]static.Hosts{
			primitives.FrontendService: static.SingleLocalHost(hostPort(primitives.FrontendService)),
			primitives.HistoryService:  static.SingleLocalHost(hostPort(primitives.HistoryService)),
			primitives.MatchingService: static.SingleLocalHost(hostPort(primitives.MatchingService)),
			primitives.WorkerService:   static.SingleLocalHost(hostPort(primitives.WorkerService)),
		}),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return claimMapper }),
		temporal.WithDynamicConfigClient(dynamicConfig()),
	)
	if err != nil {
		return nil, fmt.Errorf("devserver: new server: %w", err)
	}
	if err := srv.Start(); err != nil {
		_ = srv.Stop()
		gate.raise(gateClosed)
		return nil, fmt.Errorf("devserver: start server: %w", err)
	}

	s := &Server{
		server:    srv,
		frontend:  net.JoinHostPort(connectIP, strconv.Itoa(opts.FrontendPort)),
		namespace: opts.Namespace,
		logger:    opts.Logger,
		gate:      gate,
		lock:      lock,
	}
	defer func() {
		if retErr != nil {
			_ = s.Stop()
		}
	}()

	if err := s.awaitFrontendAndEnsureSearchAttributes(ctx, opts); err != nil {
		return nil, err
	}

	if opts.UIPort != NoUI {
		if err := s.startUI(ctx, opts, connectIP); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// FrontendHostPort is the frontend gRPC address for SDK clients (client.Options.HostPort).
func (s *Server) FrontendHostPort() string { return s.frontend }

// UIURL is the Web UI base URL, e.g. "http://127.0.0.1:8233", or "" without UI.
func (s *Server) UIURL() string { return s.uiURL }

// Namespace is the namespace registered at start.
func (s *Server) Namespace() string { return s.namespace }

// Stop stops the UI and the server. It is safe to call more than once.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		s.gate.raise(gateStopping)
		defer s.gate.raise(gateClosed)
		if s.ui != nil {
			s.ui.Stop()
			select {
			case <-s.uiDone:
			case <-time.After(uiStopTimeout):
				s.logger.Warn("devserver: UI server did not stop in time")
			}
		}
		s.stopErr = s.server.Stop()
		s.lock.release()
	})
	return s.stopErr
}

// prepareSQLite builds the SQLite store config, sets up the schema for a new
// file and registers the namespace (a no-op when it exists).
func prepareSQLite(opts Options) (*config.SQL, error) {
	conf := &config.SQL{PluginName: sqliteplugin.PluginName}
	if opts.DBFile == "" {
		conf.ConnectAttributes = map[string]string{"mode": "memory", "cache": "shared"}
		// Unique per server: in-memory databases are shared per name within
		// the process (and never released by the plugin's connection pool).
		conf.DatabaseName = fmt.Sprintf("devserver-%d-%d", time.Now().UnixNano(), rand.Int64())
	} else {
		// Write-ahead logging with synchronous=normal: a commit is one
		// append to the log, not a rewrite of the rollback journal with
		// two fsyncs, and it is still durable across a crash of the
		// process (SQLite's documented guarantee for WAL). On 2 busy
		// cores the default journal let persistence calls time out.
		conf.ConnectAttributes = map[string]string{"mode": "rwc", "journal_mode": "wal", "synchronous": "normal"}
		conf.DatabaseName = opts.DBFile
		switch _, err := os.Stat(opts.DBFile); {
		case errors.Is(err, os.ErrNotExist):
			if err := os.MkdirAll(filepath.Dir(opts.DBFile), 0o755); err != nil {
				return nil, fmt.Errorf("devserver: database dir: %w", err)
			}
			if err := sqliteschema.SetupSchema(conf); err != nil {
				// Don't leave a half-initialised file that a later Start would reuse.
				_ = os.Remove(opts.DBFile)
				return nil, fmt.Errorf("devserver: setting up SQLite schema: %w", err)
			}
		case err != nil:
			return nil, fmt.Errorf("devserver: database file: %w", err)
		}
	}

	nsConf, err := sqliteschema.NewNamespaceConfig(clusterName, opts.Namespace, false, opts.SearchAttributes)
	if err != nil {
		return nil, fmt.Errorf("devserver: namespace config: %w", err)
	}
	if err := sqliteschema.CreateNamespaces(conf, nsConf); err != nil {
		return nil, fmt.Errorf("devserver: creating namespace: %w", err)
	}
	return conf, nil
}

func buildConfig(opts Options, connectIP string, sqlConf *config.SQL) (*config.Config, error) {
	var conf config.Config
	conf.Global.Membership.MaxJoinDuration = 30 * time.Second
	conf.Global.Membership.BroadcastAddress = connectIP
	// No metrics listener and no pprof (port 0): nothing extra to collide on.

	conf.Persistence.DefaultStore = storeName
	conf.Persistence.VisibilityStore = storeName
	conf.Persistence.NumHistoryShards = 1
	conf.Persistence.DataStores = map[string]config.DataStore{storeName: {SQL: sqlConf}}

	frontend := net.JoinHostPort(connectIP, strconv.Itoa(opts.FrontendPort))
	// The frontend HTTP API (also used by Nexus); without it the server warns
	// on every start.
	httpPort, err := freePort(opts.IP)
	if err != nil {
		return nil, err
	}
	conf.ClusterMetadata = &cluster.Config{
		EnableGlobalNamespace:    false,
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{
			clusterName: {
				Enabled:                true,
				InitialFailoverVersion: 1,
				RPCAddress:             frontend,
				HTTPAddress:            net.JoinHostPort(connectIP, strconv.Itoa(httpPort)),
			},
		},
	}
	conf.DCRedirectionPolicy.Policy = "noop"

	conf.Services = map[string]config.Service{}
	conf.Services["frontend"] = config.Service{RPC: config.RPC{GRPCPort: opts.FrontendPort, HTTPPort: httpPort, BindOnIP: opts.IP}}
	for _, name := range []string{"history", "matching", "worker"} {
		port, err := freePort(DefaultIP)
		if err != nil {
			return nil, err
		}
		conf.Services[name] = config.Service{RPC: config.RPC{GRPCPort: port, BindOnIP: DefaultIP}}
	}

	conf.Archival.History.State = "disabled"
	conf.Archival.Visibility.State = "disabled"
	conf.NamespaceDefaults.Archival.History.State = "disabled"
	conf.NamespaceDefaults.Archival.Visibility.State = "disabled"
	// Required: the worker service's SDK client dials this.
	conf.PublicClient.HostPort = frontend
	return &conf, nil
}

func dynamicConfig() dynamicconfig.StaticClient {
	return dynamicconfig.StaticClient{
		// Newly added search attributes are usable at once.
		dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(): true,
		dynamicconfig.ForceNexusEndpointRefreshOnRead.Key():         true,
		// Same as the CLI dev server: smaller cache, higher limits (the UI and
		// incident queries hit visibility often).
		dynamicconfig.HistoryCacheHostLevelMaxSize.Key():                 8096,
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 100,
		dynamicconfig.FrontendPersistenceMaxQPS.Key():                    10000,
		dynamicconfig.HistoryPersistenceMaxQPS.Key():                     45000,
		// The server (v1.32) starts SDK workers for these system jobs and
		// never stops them: each Start/Stop cycle would leak ~100 goroutines
		// polling a dead frontend. The scanners only garbage-collect task
		// queues and orphaned history branches (irrelevant for a dev DB);
		// without the parent-close-policy worker, history applies parent
		// close policies inline.
		dynamicconfig.TaskQueueScannerEnabled.Key():       false,
		dynamicconfig.HistoryScannerEnabled.Key():         false,
		dynamicconfig.EnableParentClosePolicyWorker.Key(): false,
	}
}

// awaitFrontendAndEnsureSearchAttributes waits until the frontend serves the
// namespace, then adds any search attribute the namespace does not have yet
// (the pre-start registration only applies to a newly created namespace).
func (s *Server) awaitFrontendAndEnsureSearchAttributes(ctx context.Context, opts Options) error {
	var c client.Client
	var lastErr error
	for c == nil {
		dialCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		cl, err := client.DialContext(dialCtx, client.Options{
			HostPort:  s.frontend,
			Namespace: s.namespace,
			Logger:    sdkLogger(opts.Logger, s.gate),
		})
		cancel()
		if err == nil {
			c = cl
			break
		}
		lastErr = err
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("devserver: frontend not reachable: %w (last error: %v)", err, lastErr)
		}
	}
	defer c.Close()

	for {
		_, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: s.namespace})
		if err == nil {
			break
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("devserver: namespace %q not available: %w", s.namespace, err)
		}
	}

	if len(opts.SearchAttributes) == 0 {
		return nil
	}
	missing, err := missingSearchAttributes(ctx, c, s.namespace, opts.SearchAttributes)
	if err != nil || len(missing) == 0 {
		return err
	}
	if _, err := c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace:        s.namespace,
		SearchAttributes: missing,
	}); err != nil {
		return fmt.Errorf("devserver: adding search attributes: %w", err)
	}
	for {
		missing, err := missingSearchAttributes(ctx, c, s.namespace, opts.SearchAttributes)
		if err != nil {
			return err
		}
		if len(missing) == 0 {
			break
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return fmt.Errorf("devserver: search attributes not visible: %w", err)
		}
	}
	// SQL persistence has no namespace watch: every service polls its
	// namespace cache (system.namespaceCacheRefreshInterval, 2 s). Let the
	// history service see the new aliases before workflows upsert them.
	return sleepCtx(ctx, 2500*time.Millisecond)
}

func missingSearchAttributes(ctx context.Context, c client.Client, ns string, want map[string]enums.IndexedValueType) (map[string]enums.IndexedValueType, error) {
	resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: ns})
	if err != nil {
		return nil, fmt.Errorf("devserver: listing search attributes: %w", err)
	}
	missing := map[string]enums.IndexedValueType{}
	for name, typ := range want {
		have, ok := resp.GetCustomAttributes()[name]
		if !ok {
			if sys, isSys := resp.GetSystemAttributes()[name]; isSys {
				return nil, fmt.Errorf("devserver: search attribute %q is a system attribute (%s)", name, sys)
			}
			missing[name] = typ
			continue
		}
		if have != typ {
			return nil, fmt.Errorf("devserver: search attribute %q exists with type %s, want %s", name, have, typ)
		}
	}
	return missing, nil
}

func (s *Server) startUI(ctx context.Context, opts Options, connectIP string) error {
	host := opts.IP
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		host = "[" + host + "]" // the UI server formats "%s:%d"
	}
	// Re-check right before use (the server start took a while): a taken
	// port would make the UI server exit the process.
	if err := checkPort(opts.IP, opts.UIPort); err != nil {
		return fmt.Errorf("devserver: UI port: %w", err)
	}
	s.ui = uiserver.NewServer(uiserveroptions.WithConfigProvider(&uiconfig.Config{
		Host:                host,
		Port:                opts.UIPort,
		TemporalGRPCAddress: s.frontend,
		EnableUI:            true,
		DefaultNamespace:    s.namespace,
		CORS:                uiconfig.CORS{CookieInsecure: true},
		HideLogs:            true,
		DisableNewsFetch:    true, // offline
	}))
	s.uiDone = make(chan struct{})
	go func() {
		defer close(s.uiDone)
		if err := s.ui.Start(); err != nil {
			s.logger.Error("devserver: UI server failed", "error", err)
		}
	}()
	s.uiURL = "http://" + net.JoinHostPort(connectIP, strconv.Itoa(opts.UIPort))

	// Wait until the UI answers so callers (and tests) can use it at once.
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.uiURL+"/healthz", nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.uiDone:
			return errors.New("devserver: UI server exited during start")
		default:
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return fmt.Errorf("devserver: UI not reachable: %w", err)
		}
	}
}

// freePort returns a TCP port that is currently free on ip. Like the server's
// freeport helper, it leaves a connection in TIME_WAIT on Linux so the kernel
// does not hand the same ephemeral port out again right away.
func freePort(ip string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, fmt.Errorf("devserver: no free port on %s: %w", ip, err)
	}
	defer l.Close()
	addr := l.Addr().(*net.TCPAddr)
	dialAddr := &net.TCPAddr{IP: addr.IP, Port: addr.Port}
	if addr.IP.IsUnspecified() {
		dialAddr.IP = net.ParseIP(DefaultIP)
	}
	if r, err := net.DialTCP("tcp", nil, dialAddr); err == nil {
		if c, err := l.Accept(); err == nil {
			_ = c.Close() // close server side first → TIME_WAIT on the listener's port
		}
		defer r.Close()
	}
	return addr.Port, nil
}

func checkPort(ip string, port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return l.Close()
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
