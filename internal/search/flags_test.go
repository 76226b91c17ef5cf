package search_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"

	"github.com/cordonhq/cordon/internal/search"
)

func TestConfigFromFlags(t *testing.T) {
	run := func(args ...string) (search.Config, []string, bool, error) {
		var cfg search.Config
		var lists []string
		var on bool
		var ferr error
		app := &cli.App{Flags: search.Flags(), Action: func(c *cli.Context) error {
			cfg, lists, on, ferr = search.ConfigFromFlags(c)
			return nil
		}}
		require.NoError(t, app.Run(append([]string{"worker"}, args...)))
		return cfg, lists, on, ferr
	}
	_, lists, on, err := run()
	require.NoError(t, err)
	require.False(t, on, "off without --search-url")
	require.Equal(t, []string{"testdata/blocklists"}, lists)

	cfg, _, on, err := run("--search-url", "http://a:9200,http://b:9200", "--search-engine", "opensearch",
		"--search-settle", "0s", "--search-username", "cordon", "--search-password", "s3cret")
	require.NoError(t, err)
	require.True(t, on)
	require.Equal(t, []string{"http://a:9200", "http://b:9200"}, cfg.URLs)
	require.Equal(t, search.FlavorOpenSearch, cfg.Flavor)
	require.Equal(t, time.Duration(-1), cfg.Settle, "0 means no settle delay")
	require.NotContains(t, fmt.Sprint(cfg), "s3cret", "the password never shows")
	require.Contains(t, cfg.String(), "user cordon (password redacted)")

	_, _, _, err = run("--search-url", "http://a:9200", "--search-engine", "solr")
	require.ErrorContains(t, err, "want auto, elasticsearch or opensearch")
	_, _, _, err = run("--search-url", "http://a:9200", "--search-api-key", "k", "--search-username", "u")
	require.Error(t, err)
}
