package app

import (
	"os"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// sdkVariables are read by the Temporal SDK's environment configuration and
// the AWS SDK's default chain, not by Cordon's flags.
var sdkVariables = []string{"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_API_KEY", "AWS_REGION",
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "CORDON_UI_URL"}

func codeVariables() []string {
	vars := slices.Clone(sdkVariables)
	flags := append(append(append(TemporalFlags(), CloudFlags()...), ServeFlags()...), LogFlag(), MetricsFlag())
	for _, f := range flags {
		if ev, ok := f.(interface{ GetEnvVars() []string }); ok {
			vars = append(vars, ev.GetEnvVars()...)
		}
	}
	return vars
}

// TestComposeSetsOnlyVariablesTheCodeReads: every environment variable the
// compose file gives Cordon's services is one Cordon (or the SDKs) reads, so
// a typo there cannot silently fall back to a default.
func TestComposeSetsOnlyVariablesTheCodeReads(t *testing.T) {
	b, err := os.ReadFile("../../docker-compose.yml")
	require.NoError(t, err)
	var compose struct {
		Services map[string]struct {
			Build       any               `yaml:"build"`
			Environment map[string]string `yaml:"environment"`
		} `yaml:"services"`
	}
	require.NoError(t, yaml.Unmarshal(b, &compose))
	known := codeVariables()
	checked := 0
	for name, svc := range compose.Services {
		if svc.Build == nil {
			continue // not one of Cordon's images
		}
		for v := range svc.Environment {
			require.Contains(t, known, v, "service %s sets %s, which nothing reads", name, v)
			checked++
		}
	}
	require.Positive(t, checked, "the compose file sets no variable on Cordon's services")
}
