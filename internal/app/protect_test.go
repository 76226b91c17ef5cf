package app

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
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

func TestGovernorLimitFlagsAreChecked(t *testing.T) {
	cfg, err := configFromArgs(t)
	require.NoError(t, err)
	require.Equal(t, 2, cfg.Limits.MaxConcurrent)
	acct, on := cfg.Limits.Account()
	require.True(t, on, "the account-wide governor is on by default")
	require.Equal(t, 10, acct.MaxConcurrent)
	require.Equal(t, 20, acct.BreakerCount)
	cfg, err = configFromArgs(t, "--account-max-concurrent", "0")
	require.NoError(t, err)
	_, on = cfg.Limits.Account()
	require.False(t, on, "0 turns it off")
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"--max-concurrent", "-3"}, "--max-concurrent -3: must be at least 1"},
		{[]string{"--max-concurrent", "0"}, "--max-concurrent 0: must be at least 1"},
		{[]string{"--min-healthy", "0"}, "--min-healthy 0: must be at least 1: Cordon never takes a group's last healthy instance"},
		{[]string{"--breaker-count", "-1"}, "--breaker-count -1: must be at least 1"},
		{[]string{"--breaker-window", "-1h"}, "--breaker-window -1h0m0s: must be positive"},
		{[]string{"--account-max-concurrent", "-1"}, "--account-max-concurrent -1: must be 0 (no account-wide governor) or more"},
		{[]string{"--account-breaker-count", "0"}, "--account-breaker-count 0: must be at least 1 while --account-max-concurrent is set"},
	} {
		_, err := configFromArgs(t, tc.args...)
		require.ErrorContains(t, err, tc.says, "%v", tc.args)
	}
}

func TestBlocklistsWithoutEntriesAreRefused(t *testing.T) {
	dir := t.TempDir()
	page := filepath.Join(dir, "feed.txt")
	require.NoError(t, os.WriteFile(page, []byte("<html><body>502 Bad Gateway</body></html>\n"), 0o644))
	var warned []string
	_, err := LoadMatcher([]string{page}, nil, func(s string) { warned = append(warned, s) })
	require.ErrorContains(t, err, "1 list(s) but not one usable IP or CIDR entry")
	require.NotEmpty(t, warned, "the bad line is reported too")
	empty := t.TempDir()
	_, err = LoadMatcher([]string{empty}, nil, func(string) {})
	require.ErrorContains(t, err, "0 list(s) but not one usable IP or CIDR entry")
	_, err = WatchBlocklists(context.Background(), []string{page}, nil, 0, slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "not one usable IP or CIDR entry")
	good := filepath.Join(dir, "good.txt")
	require.NoError(t, os.WriteFile(good, []byte("198.51.100.7\n"), 0o644))
	m, err := LoadMatcher([]string{page, good}, nil, func(string) {})
	require.NoError(t, err, "one usable list is enough")
	v4, _ := m.Prefixes()
	require.Equal(t, 1, v4)
}
