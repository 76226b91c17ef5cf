package app

import (
	"context"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"
)

// The stack in docker-compose.yml: its ports, health checks, dependencies,
// images and the wiring between Cordon, Temporal, Elasticsearch and Kibana.
// No Docker engine runs in CI, so these tests read the file (and the
// Dockerfile) and check what `docker compose up` relies on.

// imagePorts: the port each third-party image serves on, and the variable
// that moves it. A service that overrides the image's entrypoint (a one-shot
// job) serves nothing.
var imagePorts = map[string]struct {
	port int
	env  string
}{
	"postgres":               {5432, "PGPORT"},
	"temporalio/auto-setup":  {7233, "FRONTEND_GRPC_PORT"},
	"temporalio/admin-tools": {},
	"temporalio/ui":          {8080, "TEMPORAL_UI_PORT"},
	"docker.elastic.co/elasticsearch/elasticsearch": {9200, "http.port"},
	"docker.elastic.co/kibana/kibana":               {5601, "SERVER_PORT"},
}

// listenFlags: the address flags of Cordon's programs.
var listenFlags = map[string][]string{
	"worker":        {"metrics-listen"},
	"starter serve": {"listen"},
	"starter":       nil,
}

// splitImage splits "registry/repo:tag@digest".
func splitImage(image string) (repo, tag, digest string) {
	repo, digest, _ = strings.Cut(image, "@")
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo, tag = repo[:i], repo[i+1:]
	}
	return repo, tag, digest
}

// flagValue resolves a flag of a service's program as the program would:
// the command line, then its environment variable, then the default.
func flagValue(t *testing.T, svc *composeService, program string, args []string, name string) string {
	t.Helper()
	i := slices.IndexFunc(programFlags(program), func(f cli.Flag) bool { return slices.Contains(f.Names(), name) })
	require.GreaterOrEqual(t, i, 0, "%s has no flag --%s", program, name)
	f := programFlags(program)[i]
	for j, a := range args {
		for _, n := range f.Names() {
			for _, p := range []string{"-" + n, "--" + n} {
				if a == p && j+1 < len(args) {
					return args[j+1]
				}
				if v, ok := strings.CutPrefix(a, p+"="); ok {
					return v
				}
			}
		}
	}
	for _, v := range f.(interface{ GetEnvVars() []string }).GetEnvVars() {
		if _, ok := svc.Environment[v]; ok {
			return svc.env(v)
		}
	}
	sf, ok := f.(*cli.StringFlag)
	require.True(t, ok, "--%s is not a string flag", name)
	return sf.Value
}

// listens returns the ports a service serves on, each with the address it
// binds ("" for all interfaces of the container).
func listens(t *testing.T, name string, svc *composeService) map[string]string {
	t.Helper()
	out := map[string]string{}
	if svc.Build != nil {
		program, args := svc.program(t)
		for _, fl := range listenFlags[program] {
			addr := flagValue(t, svc, program, args, fl)
			if addr == "" {
				continue
			}
			host, port, err := net.SplitHostPort(addr)
			require.NoError(t, err, "service %s: --%s %q", name, fl, addr)
			out[port] = host
		}
		return out
	}
	repo, _, _ := splitImage(svc.Image)
	ip, ok := imagePorts[repo]
	require.True(t, ok, "service %s: image %s is not in imagePorts (which port does it serve on?)", name, repo)
	if ip.port == 0 || len(svc.Entrypoint.List) > 0 {
		return out
	}
	port := strconv.Itoa(ip.port)
	if v := svc.env(ip.env); v != "" {
		port = v
	}
	out[port] = ""
	return out
}

// TestComposePublishedPortsAreUniqueAndListenedOn: every published host port
// is fixed, on loopback and unique, and the service publishing it serves on
// that container port on an address Docker can forward to.
func TestComposePublishedPortsAreUniqueAndListenedOn(t *testing.T) {
	compose := loadCompose(t)
	hostPorts := map[string]string{}
	for name, svc := range compose.Services {
		for _, p := range svc.Ports {
			require.NotEmpty(t, p.Published, "service %s publishes %s on a random host port: give it a fixed one (README lists them)", name, p.Spec)
			require.Equal(t, "127.0.0.1", p.HostIP, "service %s publishes %s beyond loopback: nothing in the stack authenticates", name, p.Spec)
			other, dup := hostPorts[p.Published]
			require.False(t, dup, "host port %s is published by %s and %s", p.Published, other, name)
			hostPorts[p.Published] = name
			ls := listens(t, name, svc)
			host, ok := ls[p.Target]
			require.True(t, ok, "service %s publishes container port %s but serves on %v", name, p.Target, ls)
			require.Contains(t, []string{"", "0.0.0.0", "::"}, host,
				"service %s binds %s:%s inside its container: the published port cannot reach it", name, host, p.Target)
		}
	}
	for _, want := range []string{"7233", "8233", "9200", "5601", "8080", "9090"} {
		require.Contains(t, hostPorts, want, "README promises host port %s", want)
	}
}

var healthAddr = regexp.MustCompile(`(localhost|127\.0\.0\.1|\[::1\]|[a-z][a-z0-9_-]*):(\d{2,5})\b`)

// TestComposeHealthChecksProbeWhatTheServiceServes: each health check probes
// its own service on a port it serves on; Cordon's run a binary the image
// has (distroless: no shell); the checks are the ones the README names.
func TestComposeHealthChecksProbeWhatTheServiceServes(t *testing.T) {
	compose := loadCompose(t)
	bins := dockerfileBinaries(t)
	probes := map[string]string{}
	for name, svc := range compose.Services {
		check := svc.healthcheck()
		if check == nil {
			// Long-running services have a check; the UI is the one nothing waits for.
			require.True(t, svc.oneShot() || name == "temporal-ui", "service %s runs for good but has no health check", name)
			continue
		}
		require.Contains(t, []string{"CMD", "CMD-SHELL"}, check[0], "service %s", name)
		probe := strings.Join(check[1:], " ")
		probes[name] = probe
		ls := listens(t, name, svc)
		for _, m := range healthAddr.FindAllStringSubmatch(probe, -1) {
			require.Contains(t, []string{"localhost", "127.0.0.1", "[::1]", name}, m[1], "the health check of %s probes %s", name, m[0])
			require.Contains(t, ls, m[2], "the health check of %s probes port %s; it serves on %v", name, m[2], ls)
		}
		if svc.Build != nil {
			require.Equal(t, "CMD", check[0], "service %s: the image has no shell for CMD-SHELL", name)
			require.Contains(t, bins, check[1], "service %s: the health check runs %s, which the Dockerfile does not put in the image", name, check[1])
			require.Regexp(t, healthAddr, probe, "service %s: the health check probes no port", name)
		}
	}
	es, kibana, _ := elasticServices(t, compose)
	for svc, want := range map[string]string{
		es:                       "/_cluster/health",
		kibana:                   "/api/status",
		serveService(t, compose): "/healthz",
		"temporal":               "cluster health",
		"postgresql":             "pg_isready",
	} {
		require.Contains(t, probes[svc], want, "the health check of %s", svc)
	}
}

// TestComposeDependenciesWaitForHealth: every depends_on target exists; a
// target with a health check is waited on until healthy (a one-shot job
// until it completed); service_healthy needs a check; a service always
// started does not depend on one behind a profile.
func TestComposeDependenciesWaitForHealth(t *testing.T) {
	compose := loadCompose(t)
	edges := 0
	for name, svc := range compose.Services {
		for dep, cond := range svc.DependsOn {
			edges++
			target, ok := compose.Services[dep]
			require.True(t, ok, "service %s depends on %s, which does not exist", name, dep)
			switch cond {
			case "service_healthy":
				require.NotNil(t, target.healthcheck(), "service %s waits for %s to be healthy, which has no health check", name, dep)
			case "service_completed_successfully":
				require.True(t, target.oneShot(), "service %s waits for %s to complete, which restarts (restart: %s)", name, dep, target.Restart)
			case "service_started":
				require.Nil(t, target.healthcheck(), "service %s depends on %s, which has a health check: use condition service_healthy", name, dep)
			default:
				t.Fatalf("service %s: depends_on %s with condition %q", name, dep, cond)
			}
			if len(svc.Profiles) == 0 {
				require.Empty(t, target.Profiles, "service %s always starts but %s is behind a profile", name, dep)
			}
		}
	}
	require.Positive(t, edges)
}

// TestComposeImagesArePinned: every image names a version (at least
// major.minor) or a digest; none is :latest or untagged.
func TestComposeImagesArePinned(t *testing.T) {
	compose := loadCompose(t)
	for name, svc := range compose.Services {
		if svc.Image == "" {
			require.NotNil(t, svc.Build, "service %s has neither image nor build", name)
			continue
		}
		_, tag, digest := splitImage(svc.Image)
		if digest != "" {
			continue
		}
		require.NotEmpty(t, tag, "service %s: image %s has no tag (that is :latest)", name, svc.Image)
		require.Regexp(t, `^v?\d+\.\d+`, tag, "service %s: image %s is not pinned to a version", name, svc.Image)
	}
}

// dockerfileBinaries are the programs the Dockerfile's image holds.
func dockerfileBinaries(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../Dockerfile")
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^COPY --from=build ((?:/out/\S+ )+)/usr/local/bin/\s*$`).FindSubmatch(b)
	require.NotNil(t, m, "the Dockerfile copies no binaries to /usr/local/bin/")
	var bins []string
	for _, f := range strings.Fields(string(m[1])) {
		name := filepath.Base(f)
		require.Regexp(t, `(?m)-o /out/`+regexp.QuoteMeta(name)+`\b`, string(b), "the Dockerfile copies %s but does not build it", f)
		bins = append(bins, "/usr/local/bin/"+name)
	}
	return bins
}

// TestComposeCordonServicesBuildFromTheDockerfile: Cordon's services build
// the repository's Dockerfile, run programs it builds, and read paths it
// puts in the image; the volumes they mount are directories the image makes
// writable for its non-root user.
func TestComposeCordonServicesBuildFromTheDockerfile(t *testing.T) {
	compose := loadCompose(t)
	df, err := os.ReadFile("../../Dockerfile")
	require.NoError(t, err)
	require.Regexp(t, `-o /out/worker \./worker\b`, string(df))
	require.Regexp(t, `-o /out/starter \./starter\b`, string(df))
	require.Contains(t, string(df), "COPY testdata /opt/cordon/testdata")
	bins := dockerfileBinaries(t)
	writable := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^COPY --from=build --chown=65532:65532 \S+ (\S+)\s*$`).FindAllStringSubmatch(string(df), -1) {
		writable[m[1]] = true
	}
	programs := map[string]bool{}
	for name, svc := range compose.Services {
		runsCordon := len(svc.Entrypoint.List) > 0 && slices.Contains(bins, svc.Entrypoint.List[0])
		if svc.Build == nil {
			require.False(t, runsCordon, "service %s runs Cordon from image %q instead of building the Dockerfile", name, svc.Image)
			continue
		}
		switch b := svc.Build.(type) {
		case string:
			require.Equal(t, ".", b, "service %s", name)
		case map[string]any:
			require.Equal(t, ".", b["context"], "service %s", name)
			if d, ok := b["dockerfile"]; ok {
				require.Equal(t, "Dockerfile", d, "service %s", name)
			}
		default:
			t.Fatalf("service %s: build %v", name, b)
		}
		ep := svc.Entrypoint.List
		if len(ep) == 0 {
			ep = dockerfileEntrypoint(t)
		}
		require.Contains(t, bins, ep[0], "service %s runs %s, which the Dockerfile does not build", name, ep[0])
		program, _ := svc.program(t)
		programs[program] = true
		for v, val := range svc.Environment {
			if val == nil {
				continue
			}
			if rel, ok := strings.CutPrefix(*val, "/opt/cordon/testdata/"); ok {
				_, err := os.Stat(filepath.Join("../../testdata", rel))
				require.NoError(t, err, "service %s: %s=%s is not in testdata/ (copied to /opt/cordon/testdata)", name, v, *val)
			}
		}
		for _, vol := range svc.Volumes {
			require.True(t, writable[vol.Target], "service %s mounts %s, which the image does not create for nonroot (COPY --chown=65532:65532)", name, vol.Target)
		}
	}
	for _, p := range []string{"worker", "starter serve"} {
		require.True(t, programs[p], "no service runs %s", p)
	}
}

// elasticServices finds the Elasticsearch node, the Kibana server and the
// job that imports Cordon's saved objects into Kibana.
func elasticServices(t *testing.T, compose composeFile) (es, kibana, kibanaImport string) {
	t.Helper()
	for name, svc := range compose.Services {
		repo, _, _ := splitImage(svc.Image)
		switch {
		case repo == "docker.elastic.co/elasticsearch/elasticsearch" && len(svc.Entrypoint.List) == 0:
			require.Empty(t, es, "two Elasticsearch nodes: %s and %s", es, name)
			es = name
		case repo == "docker.elastic.co/kibana/kibana" && len(svc.Entrypoint.List) == 0:
			require.Empty(t, kibana, "two Kibana servers: %s and %s", kibana, name)
			kibana = name
		}
		for _, v := range svc.Volumes {
			if filepath.Clean(v.Source) == "kibana/cordon-detections.ndjson" {
				kibanaImport = name
			}
		}
	}
	require.NotEmpty(t, es, "no Elasticsearch service")
	require.NotEmpty(t, kibana, "no Kibana service")
	return es, kibana, kibanaImport
}

func serveService(t *testing.T, compose composeFile) string {
	t.Helper()
	for name, svc := range compose.Services {
		if svc.Build != nil && len(svc.Profiles) == 0 {
			if p, _ := svc.program(t); p == "starter serve" {
				return name
			}
		}
	}
	t.Fatal("no service runs `starter serve`")
	return ""
}

// memBytes parses a size such as 2g, 512m or -Xmx1g's 1g.
func memBytes(t *testing.T, s string) int64 {
	t.Helper()
	m := regexp.MustCompile(`^(\d+)([kmgKMG]?)[bB]?$`).FindStringSubmatch(strings.TrimSpace(s))
	require.NotNil(t, m, "size %q", s)
	n, err := strconv.ParseInt(m[1], 10, 64)
	require.NoError(t, err)
	return n << map[string]int{"": 0, "k": 10, "m": 20, "g": 30}[strings.ToLower(m[2])]
}

// TestComposeWiresTheStack: Kibana matches and points at Elasticsearch; the
// worker's search detector reads that Elasticsearch and waits for it; the
// Elasticsearch heap fits its memory limit; security is a stated choice;
// data lives in named volumes; Cordon's saved objects are imported.
func TestComposeWiresTheStack(t *testing.T) {
	compose := loadCompose(t)
	esName, kibanaName, importName := elasticServices(t, compose)
	es, kibana := compose.Services[esName], compose.Services[kibanaName]
	esPort := strconv.Itoa(imagePorts["docker.elastic.co/elasticsearch/elasticsearch"].port)
	esURL := "http://" + esName + ":" + esPort

	_, esVersion, _ := splitImage(es.Image)
	_, kibanaVersion, _ := splitImage(kibana.Image)
	require.Regexp(t, `^8\.`, esVersion, "Elasticsearch 8")
	require.Equal(t, esVersion, kibanaVersion, "Kibana must run the version of its Elasticsearch")
	require.Contains(t, kibana.env("ELASTICSEARCH_HOSTS"), esURL)
	require.Equal(t, "service_healthy", kibana.DependsOn[esName])

	// The heap is pinned (Xms = Xmx) and at most half the container's memory.
	opts := es.env("ES_JAVA_OPTS")
	xms := regexp.MustCompile(`-Xms(\S+)`).FindStringSubmatch(opts)
	xmx := regexp.MustCompile(`-Xmx(\S+)`).FindStringSubmatch(opts)
	require.True(t, xms != nil && xmx != nil, "ES_JAVA_OPTS %q sets no heap", opts)
	require.Equal(t, xms[1], xmx[1], "ES_JAVA_OPTS %q", opts)
	require.NotEmpty(t, es.MemLimit, "Elasticsearch has no mem_limit")
	require.GreaterOrEqual(t, memBytes(t, es.MemLimit), 2*memBytes(t, xmx[1]), "heap %s in mem_limit %s", xmx[1], es.MemLimit)
	require.NotEmpty(t, kibana.MemLimit, "Kibana has no mem_limit")
	require.Equal(t, "single-node", es.env("discovery.type"))

	// Security is set explicitly either way: on with the elastic password
	// and credentials for the worker, or off on a loopback-only stack (the
	// ports test keeps every port on 127.0.0.1).
	worker := compose.Services["worker"]
	require.NotNil(t, worker)
	switch sec := es.env("xpack.security.enabled"); sec {
	case "true":
		require.NotEmpty(t, es.env("ELASTIC_PASSWORD"))
		require.True(t, worker.env("CORDON_SEARCH_PASSWORD") != "" || worker.env("CORDON_SEARCH_API_KEY") != "", "the worker has no credentials")
	case "false":
	default:
		t.Fatalf("xpack.security.enabled is %q: choose true or false", sec)
	}

	// The worker's search detector reads this Elasticsearch, once healthy.
	require.Equal(t, esURL, worker.env("CORDON_SEARCH_URL"))
	require.Contains(t, []string{"elasticsearch", "auto"}, worker.env("CORDON_SEARCH_ENGINE"))
	require.NotEmpty(t, worker.env("CORDON_SEARCH_INDEX"), "the index pattern of the Packetbeat flows")
	require.Equal(t, "service_healthy", worker.DependsOn[esName])

	// Data in named volumes, each declared.
	named := func(svc *composeService, target string) bool {
		return slices.ContainsFunc(svc.Volumes, func(v composeVolume) bool {
			_, declared := compose.Volumes[v.Source]
			return v.Target == target && declared
		})
	}
	require.True(t, named(es, "/usr/share/elasticsearch/data"), "Elasticsearch data in a named volume")
	require.True(t, named(compose.Services["postgresql"], "/var/lib/postgresql/data"), "PostgreSQL data in a named volume")
	for name, svc := range compose.Services {
		for _, v := range svc.Volumes {
			if v.Source != "" && !strings.HasPrefix(v.Source, ".") && !strings.HasPrefix(v.Source, "/") {
				require.Contains(t, compose.Volumes, v.Source, "service %s mounts the undeclared volume %s", name, v.Source)
			}
		}
	}

	// Cordon's saved objects (kibana/cordon-detections.ndjson) go into Kibana once it
	// is healthy.
	require.NotEmpty(t, importName, "no service mounts ./kibana/cordon-detections.ndjson")
	require.Equal(t, "service_healthy", compose.Services[importName].DependsOn[kibanaName])
}

// TestComposeConfigValidates runs docker-compose's own validation, with no
// .env file: the stack needs no configuration to start.
func TestComposeConfigValidates(t *testing.T) {
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Skip("docker-compose not installed (apt-get install docker-compose; scripts/test installs it)")
	}
	empty := filepath.Join(t.TempDir(), "empty.env")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--env-file", empty, "-f", "../../docker-compose.yml", "config", "-q").CombinedOutput()
	require.NoError(t, err, "docker-compose config: %s", out)
}

// dockerignored reports whether .dockerignore's patterns leave rel (a
// slash-separated path) out of the build context.
func dockerignored(patterns []string, rel string) bool {
	out := false
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(strings.TrimPrefix(p, "!"), "/")
		re := "^" + strings.NewReplacer(`\*\*/`, `(.*/)?`, `\*\*`, `.*`, `\*`, `[^/]*`, `\?`, `[^/]`).Replace(regexp.QuoteMeta(p)) + "(/.*)?$"
		if regexp.MustCompile(re).MatchString(rel) {
			out = !neg
		}
	}
	return out
}

// TestDockerignoreKeepsWhatTheBuildNeeds: the build context holds every Go
// source and testdata/, and leaves out secrets (.env), .git and test
// binaries (hundreds of MB).
func TestDockerignoreKeepsWhatTheBuildNeeds(t *testing.T) {
	b, err := os.ReadFile("../../.dockerignore")
	require.NoError(t, err)
	var patterns []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, l)
		}
	}
	kept := 0
	require.NoError(t, filepath.WalkDir("../..", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("../..", p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() && (rel == ".git" || rel == ".cordon") {
			return filepath.SkipDir
		}
		needed := rel == "go.mod" || rel == "go.sum" || rel == "Dockerfile" ||
			strings.HasPrefix(rel, "testdata/") || (strings.HasSuffix(rel, ".go") && !strings.HasSuffix(rel, "_test.go"))
		if needed && !d.IsDir() {
			require.False(t, dockerignored(patterns, rel), ".dockerignore leaves out %s, which the build needs", rel)
			kept++
		}
		return nil
	}))
	require.Positive(t, kept)
	for _, rel := range []string{".env", ".git/HEAD", "search.test", "internal/search/search.test", ".cordon/temporal.db"} {
		require.True(t, dockerignored(patterns, rel), ".dockerignore keeps %s in the build context", rel)
	}
}
