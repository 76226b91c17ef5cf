package search

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

// Flags are the worker's flags for the search detector (each with an
// environment variable). Without --search-url the detector's activities
// report that no cluster is configured: a detector workflow started anyway
// shows it in its status and retries.
func Flags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "search-url", EnvVars: []string{"CORDON_SEARCH_URL"}, Usage: "Elasticsearch or OpenSearch URL(s) the detector reads flows from, e.g. https://es.internal:9200"},
		&cli.StringFlag{Name: "search-engine", EnvVars: []string{"CORDON_SEARCH_ENGINE"}, Value: "auto", Usage: "auto (from the cluster's root document), elasticsearch or opensearch"},
		&cli.StringFlag{Name: "search-index", EnvVars: []string{"CORDON_SEARCH_INDEX"}, Value: DefaultIndex, Usage: "index pattern of the Packetbeat flows"},
		&cli.StringFlag{Name: "search-time-field", EnvVars: []string{"CORDON_SEARCH_TIME_FIELD"}, Value: DefaultTimeField, Usage: "time field that orders events (event.ingested where an ingest pipeline sets it)"},
		&cli.DurationFlag{Name: "search-settle", EnvVars: []string{"CORDON_SEARCH_SETTLE"}, Value: DefaultSettle, Usage: "read events up to now minus this: more than the shipping delay plus the refresh interval"},
		&cli.IntFlag{Name: "search-page-size", EnvVars: []string{"CORDON_SEARCH_PAGE_SIZE"}, Value: DefaultPageSize, Usage: "hits per search request"},
		&cli.StringFlag{Name: "search-username", EnvVars: []string{"CORDON_SEARCH_USERNAME"}, Usage: "basic-auth user of the cluster"},
		&cli.StringFlag{Name: "search-password", EnvVars: []string{"CORDON_SEARCH_PASSWORD"}, Usage: "basic-auth password (secret; never logged)"},
		&cli.StringFlag{Name: "search-api-key", EnvVars: []string{"CORDON_SEARCH_API_KEY"}, Usage: "Elasticsearch API key, base64 id:key (secret; never logged)"},
		&cli.BoolFlag{Name: "search-detections", EnvVars: []string{"CORDON_SEARCH_DETECTIONS"}, Value: true, Usage: "write each hit to the daily detections index <prefix>-YYYY.MM.DD (--search-detections=false: off)"},
		&cli.StringFlag{Name: "search-detections-prefix", EnvVars: []string{"CORDON_SEARCH_DETECTIONS_PREFIX"}, Value: DefaultDetectionsPrefix, Usage: "prefix of the detections indices and name of their index template"},
		&cli.StringSliceFlag{Name: "search-blocklist", EnvVars: []string{"CORDON_SEARCH_BLOCKLISTS"}, Value: cli.NewStringSlice("testdata/blocklists"), Usage: "blocklist files or directories the detector matches flows against"},
	}
}

// ConfigFromFlags reads Flags. enabled is false without --search-url.
func ConfigFromFlags(c *cli.Context) (cfg Config, blocklists []string, enabled bool, err error) {
	flavor, err := ParseFlavor(c.String("search-engine"))
	if err != nil {
		return cfg, nil, false, err
	}
	var urls []string
	for _, u := range c.StringSlice("search-url") {
		for _, p := range strings.Split(u, ",") {
			if p = strings.TrimSpace(p); p != "" {
				urls = append(urls, p)
			}
		}
	}
	cfg = Config{
		URLs: urls, Flavor: flavor, Index: c.String("search-index"), TimeField: c.String("search-time-field"),
		Settle: c.Duration("search-settle"), PageSize: c.Int("search-page-size"),
		Username: c.String("search-username"), Password: c.String("search-password"), APIKey: c.String("search-api-key"),
	}
	if cfg.Settle == 0 {
		cfg.Settle = -1 // --search-settle 0 means none, not the default
	}
	if cfg.APIKey != "" && cfg.Username != "" {
		return cfg, nil, false, fmt.Errorf("--search-api-key and --search-username: give one")
	}
	if c.Bool("search-detections") {
		cfg.Detections = strings.TrimSpace(c.String("search-detections-prefix"))
		if err := ValidDetectionsPrefix(cfg.Detections); err != nil {
			return cfg, nil, false, fmt.Errorf("--search-detections-prefix: %w", err)
		}
	}
	return cfg, c.StringSlice("search-blocklist"), len(urls) > 0, nil
}
