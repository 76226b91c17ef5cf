package app

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"
)

func configFromArgs(t *testing.T, args ...string) (Config, error) {
	t.Helper()
	var cfg Config
	var cerr error
	a := &cli.App{Name: "worker", Flags: append(append(TemporalFlags(), CloudFlags()...), LogFlag()),
		Action: func(c *cli.Context) error { cfg, cerr = ConfigFrom(c); return nil }}
	require.NoError(t, a.RunContext(context.Background(), append([]string{"worker"}, args...)))
	return cfg, cerr
}

func TestProtectInstanceFlag(t *testing.T) {
	cfg, err := configFromArgs(t, "--protect-instance", "i-0144394dc883f9fe0,i-085a2fa5fa92cd19c", "--protect-instance", "i-04f2ae54915567738")
	require.NoError(t, err)
	require.Equal(t, map[string]bool{"i-0144394dc883f9fe0": true, "i-085a2fa5fa92cd19c": true, "i-04f2ae54915567738": true}, cfg.ProtectedInstances)

	_, err = configFromArgs(t, "--protect-instance", "web-1")
	require.ErrorContains(t, err, `--protect-instance "web-1": not an EC2 instance ID`)

	cfg, err = configFromArgs(t)
	require.NoError(t, err)
	require.Empty(t, cfg.ProtectedInstances)
}
