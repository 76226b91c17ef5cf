package app

import (
	"fmt"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"

	"github.com/cordonhq/cordon/internal/search"
)

// sdkVariables are read by the Temporal SDK's environment configuration and
// the AWS SDK's default chain, not by Cordon's flags.
var sdkVariables = []string{"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_API_KEY", "AWS_REGION",
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "CORDON_UI_URL"}

// programFlags are the flags of each program the image runs, as its main
// assembles them: keep in step with worker/main.go and starter/main.go.
func programFlags(program string) []cli.Flag {
	switch program {
	case "worker":
		return append(append(append(TemporalFlags(), CloudFlags()...), search.Flags()...), BlocklistReloadFlag(), LogFlag(), MetricsFlag())
	case "starter serve":
		return append(append(ServeFlags(), CloudFlags()...), LogFlag())
	case "starter":
		// Any subcommand: the global --log-level, detect's cloud flags, serve's
		// flags; quarantine/detect/detector read CORDON_ACCOUNT and AWS_REGION
		// (in ServeFlags and sdkVariables).
		return append(append(ServeFlags(), CloudFlags()...), LogFlag())
	}
	return nil
}

// codeVariables are the environment variables program reads.
func codeVariables(program string) []string {
	vars := slices.Clone(sdkVariables)
	for _, f := range programFlags(program) {
		if ev, ok := f.(interface{ GetEnvVars() []string }); ok {
			vars = append(vars, ev.GetEnvVars()...)
		}
	}
	return vars
}

// composeFile is the part of docker-compose.yml the tests read.
type composeFile struct {
	Services map[string]*composeService `yaml:"services"`
	Volumes  map[string]any             `yaml:"volumes"`
}

type composeService struct {
	Image       string             `yaml:"image"`
	Build       any                `yaml:"build"`
	Entrypoint  stringOrList       `yaml:"entrypoint"`
	Command     stringOrList       `yaml:"command"`
	Environment map[string]*string `yaml:"environment"` // nil: passed through from the environment
	Ports       []composePort      `yaml:"ports"`
	DependsOn   dependsOn          `yaml:"depends_on"`
	Healthcheck *struct {
		Test    stringOrList `yaml:"test"`
		Disable bool         `yaml:"disable"`
	} `yaml:"healthcheck"`
	Volumes  []composeVolume `yaml:"volumes"`
	Profiles []string        `yaml:"profiles"`
	Restart  string          `yaml:"restart"`
	MemLimit string          `yaml:"mem_limit"`
}

// env returns the value the compose file gives variable v ("" when it is
// passed through or not set).
func (s *composeService) env(v string) string {
	if p := s.Environment[v]; p != nil {
		return *p
	}
	return ""
}

// healthcheck returns the check's test (nil without one), e.g.
// ["CMD", "pg_isready"]; a plain string is a CMD-SHELL.
func (s *composeService) healthcheck() []string {
	if s.Healthcheck == nil || s.Healthcheck.Disable || len(s.Healthcheck.Test.List) == 0 || s.Healthcheck.Test.List[0] == "NONE" {
		return nil
	}
	if s.Healthcheck.Test.Scalar {
		return []string{"CMD-SHELL", s.Healthcheck.Test.List[0]}
	}
	return s.Healthcheck.Test.List
}

// oneShot: a service that runs to completion (no restart policy).
func (s *composeService) oneShot() bool { return s.Restart == "" || s.Restart == "no" }

// stringOrList is a compose field given as a string or a list of strings.
type stringOrList struct {
	List   []string
	Scalar bool // given as one string
}

func (s *stringOrList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		s.List, s.Scalar = []string{n.Value}, true
		return nil
	}
	return n.Decode(&s.List)
}

// dependsOn is depends_on in either form: a list (condition
// service_started) or a map of service → condition.
type dependsOn map[string]string

func (d *dependsOn) UnmarshalYAML(n *yaml.Node) error {
	*d = dependsOn{}
	if n.Kind == yaml.SequenceNode {
		var names []string
		if err := n.Decode(&names); err != nil {
			return err
		}
		for _, name := range names {
			(*d)[name] = "service_started"
		}
		return nil
	}
	var m map[string]struct {
		Condition string `yaml:"condition"`
	}
	if err := n.Decode(&m); err != nil {
		return err
	}
	for name, c := range m {
		if c.Condition == "" {
			c.Condition = "service_started"
		}
		(*d)[name] = c.Condition
	}
	return nil
}

// composePort is one published port in the short ("127.0.0.1:8080:80/tcp")
// or the long syntax.
type composePort struct {
	Spec      string
	HostIP    string
	Published string // empty: an ephemeral host port
	Target    string
}

var shortPort = regexp.MustCompile(`^(?:(?:(\[[^\]]+\]|[0-9.]+):)?(\d*):)?(\d+)(?:/(?:tcp|udp))?$`)

func (p *composePort) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		m := shortPort.FindStringSubmatch(n.Value)
		if m == nil {
			return fmt.Errorf("port %q: not host_ip:published:target (ranges are not used here)", n.Value)
		}
		*p = composePort{Spec: n.Value, HostIP: m[1], Published: m[2], Target: m[3]}
		return nil
	}
	var long struct {
		HostIP    string `yaml:"host_ip"`
		Published string `yaml:"published"`
		Target    string `yaml:"target"`
	}
	if err := n.Decode(&long); err != nil {
		return err
	}
	*p = composePort{Spec: fmt.Sprintf("%+v", long), HostIP: long.HostIP, Published: long.Published, Target: long.Target}
	return nil
}

// composeVolume is one mount: "source:target[:mode]" or the long syntax.
type composeVolume struct {
	Source, Target string
}

func (v *composeVolume) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		parts := strings.Split(n.Value, ":")
		if len(parts) == 1 {
			v.Target = parts[0] // an anonymous volume
			return nil
		}
		v.Source, v.Target = parts[0], parts[1]
		return nil
	}
	var long struct {
		Source string `yaml:"source"`
		Target string `yaml:"target"`
	}
	if err := n.Decode(&long); err != nil {
		return err
	}
	v.Source, v.Target = long.Source, long.Target
	return nil
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile("../../docker-compose.yml")
	require.NoError(t, err)
	var compose composeFile
	require.NoError(t, yaml.Unmarshal(b, &compose), "docker-compose.yml (environment must be a map)")
	require.NotEmpty(t, compose.Services)
	return compose
}

// dockerfileEntrypoint is the ENTRYPOINT of the Dockerfile's image.
func dockerfileEntrypoint(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../Dockerfile")
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^ENTRYPOINT (\[.*\])\s*$`).FindSubmatch(b)
	require.NotNil(t, m, "the Dockerfile has no exec-form ENTRYPOINT")
	var ep []string
	require.NoError(t, yaml.Unmarshal(m[1], &ep))
	return ep
}

// program names what a service built from the Dockerfile runs: "worker",
// "starter serve" or "starter" (any other subcommand).
func (s *composeService) program(t *testing.T) (name string, args []string) {
	t.Helper()
	ep := s.Entrypoint.List
	if len(ep) == 0 {
		ep = dockerfileEntrypoint(t)
	}
	require.False(t, s.Entrypoint.Scalar || s.Command.Scalar, "entrypoint and command of Cordon's services are exec-form lists (the image has no shell)")
	args = append(slices.Clone(ep[1:]), s.Command.List...)
	name = path.Base(ep[0])
	if name == "starter" && len(args) > 0 && args[0] == "serve" {
		return "starter serve", args[1:]
	}
	return name, args
}

// TestComposeSetsOnlyVariablesTheCodeReads: every environment variable the
// compose file gives Cordon's services is one the program that service runs
// reads (or the SDKs do), so a typo — or a variable meant for the worker given
// to `starter serve` — cannot silently fall back to a default.
func TestComposeSetsOnlyVariablesTheCodeReads(t *testing.T) {
	compose := loadCompose(t)
	checked := 0
	for name, svc := range compose.Services {
		if svc.Build == nil {
			continue // not one of Cordon's images
		}
		program, _ := svc.program(t)
		known := codeVariables(program)
		require.NotNil(t, programFlags(program), "service %s runs %q: which flags does it read?", name, program)
		for v := range svc.Environment {
			require.Contains(t, known, v, "service %s (%s) sets %s, which it does not read", name, program, v)
			checked++
		}
	}
	require.Positive(t, checked, "the compose file sets no variable on Cordon's services")
}

// TestComposeListVariablesAreNeverEmpty: a list flag (--sns-topic,
// --allow, ...) given an empty environment variable holds one empty entry,
// which switches its feature on; an optional list is passed through
// (`NAME:` without a value: unset unless the environment or .env sets it).
func TestComposeListVariablesAreNeverEmpty(t *testing.T) {
	compose := loadCompose(t)
	for name, svc := range compose.Services {
		if svc.Build == nil {
			continue
		}
		program, _ := svc.program(t)
		for _, f := range programFlags(program) {
			if _, ok := f.(*cli.StringSliceFlag); !ok {
				continue
			}
			for _, v := range f.(*cli.StringSliceFlag).EnvVars {
				val, set := svc.Environment[v]
				if !set || val == nil {
					continue // unset, or passed through from the environment
				}
				require.NotEmpty(t, *val, "service %s: %s is set to an empty list entry", name, v)
				require.NotRegexp(t, `^\$\{[A-Z0-9_]+(:?-)?\}$`, *val, "service %s: %s may interpolate to an empty string", name, v)
			}
		}
	}
}
