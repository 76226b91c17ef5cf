// Package search reads Packetbeat flow events from Elasticsearch or
// OpenSearch for the detector: in time order after a checkpoint, paged with
// a point in time and search_after, so that a durable detector
// (workflows.Detector) never skips nor repeats an event. It also implements
// that workflow's activities (Activities).
//
// One client, github.com/elastic/go-elasticsearch/v8, talks to both
// engines. The engine is chosen by configuration or detected from the
// cluster's root document (version.distribution "opensearch"). The two
// differ in three places, all handled here:
//   - the point-in-time API: Elasticsearch POST /<index>/_pit → {"id"} and
//     DELETE /_pit; OpenSearch POST /<index>/_search/point_in_time →
//     {"pit_id"} and DELETE /_search/point_in_time. The search body
//     ({"pit": {"id", "keep_alive"}}) is the same;
//   - the tiebreaker among equal times inside a point in time:
//     Elasticsearch's _shard_doc, which OpenSearch 2.x lacks (it sorts on
//     _id instead);
//   - the v8 client refuses a server that does not send
//     "X-Elastic-Product: Elasticsearch". For an OpenSearch cluster (such
//     as Amazon OpenSearch Service) the client's transport is wrapped in
//     openSearchTransport, which adds that header to OpenSearch's
//     responses: the v8 client then works unchanged, since the REST calls
//     used here (search, point in time, bulk, index creation) are the same.
package search

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
)

// Flavor is the search engine a cluster runs.
type Flavor string

// Flavors. FlavorAuto detects it from the cluster's root document.
const (
	FlavorAuto          Flavor = ""
	FlavorElasticsearch Flavor = "elasticsearch"
	FlavorOpenSearch    Flavor = "opensearch"
)

// ParseFlavor parses "auto" (or ""), "elasticsearch" or "opensearch".
func ParseFlavor(s string) (Flavor, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return FlavorAuto, nil
	case "elasticsearch", "es":
		return FlavorElasticsearch, nil
	case "opensearch", "os":
		return FlavorOpenSearch, nil
	}
	return "", fmt.Errorf("search engine %q: want auto, elasticsearch or opensearch", s)
}

// Defaults of Config.
const (
	DefaultIndex     = "packetbeat-*"
	DefaultTimeField = "@timestamp"
	DefaultPageSize  = 1000
	DefaultKeepAlive = time.Minute
	DefaultSettle    = 2 * time.Second
	DefaultTimeout   = 30 * time.Second
)

// DefaultSourceFields are the fields fetched by default: the ones the
// detector reads (nested and flattened) and the flow's context.
var DefaultSourceFields = []string{
	"@timestamp", "type", "final", "flow_id",
	"event.dataset", "event.start", "event.end", "event.duration", "event.action", "event.type", "event.ingested",
	"data_stream.dataset", "flow.*", "source.*", "destination.*", "client.*", "server.*", "network.*",
	"cloud.instance.id", "cloud.account.id", "cloud.region", "cloud.availability_zone",
	"host.name", "agent.name", "agent.type", "agent.version", "process.name", "process.pid", "process.executable",
}

// Config says where the events are and how to read them.
type Config struct {
	// URLs of the cluster's HTTP endpoints.
	URLs []string
	// Username and Password (basic auth), or APIKey (Elasticsearch's
	// base64 "id:key"). Never logged.
	Username, Password string
	APIKey             string
	// Flavor of the engine; FlavorAuto detects it.
	Flavor Flavor
	// Index is the index pattern read. Default "packetbeat-*".
	Index string
	// TimeField orders the events and bounds the checkpoint. Default
	// "@timestamp"; "event.ingested" where an ingest pipeline sets it
	// (then a late-shipped event is never behind the checkpoint).
	TimeField string
	// AllEvents reads every event with a flow shape, not only final flow
	// records (set it with detector.Options.AllEvents).
	AllEvents bool
	// SourceFields are the document fields fetched (_source includes): what
	// the detector reads plus the flow's context for the evidence. Default
	// DefaultSourceFields; []string{"*"} fetches whole documents (3–6 times
	// more bytes for Packetbeat 8 flows). Evidence names the document
	// (index and _id), so the whole of it can always be looked up.
	SourceFields []string
	// PageSize is the hits per search request. Default 1000.
	PageSize int
	// KeepAlive of the point in time between pages. Default 1m.
	KeepAlive time.Duration
	// Settle: a search reads events up to now minus Settle, so that events
	// indexed late (shipping delay, refresh interval) are not behind the
	// checkpoint when they become visible. Default 2s; set it above the
	// pipeline's delay plus the index refresh interval. Negative: none.
	Settle time.Duration
	// Timeout of one HTTP request. Default 30s.
	Timeout time.Duration
	// Transport is the HTTP transport (default: a clone of
	// http.DefaultTransport).
	Transport http.RoundTripper
	// Detections is the prefix of the daily indices
	// (<prefix>-YYYY.MM.DD) that SearchFlows writes each hit to, and the
	// name of their index template (detections.go). Empty: no detections
	// are written. The worker sets DefaultDetectionsPrefix unless
	// --search-detections=false.
	Detections string
}

// String describes the configuration without its secrets.
func (c Config) String() string {
	auth := "none"
	switch {
	case c.APIKey != "":
		auth = "api key (redacted)"
	case c.Username != "":
		auth = "user " + c.Username + " (password redacted)"
	}
	return fmt.Sprintf("search %v engine %s index %s time field %s settle %s auth %s detections %s",
		c.URLs, first(string(c.Flavor), "auto"), c.Index, c.TimeField, c.Settle, auth, first(c.Detections, "off"))
}

func (c Config) withDefaults() Config {
	if c.Index == "" {
		c.Index = DefaultIndex
	}
	if c.TimeField == "" {
		c.TimeField = DefaultTimeField
	}
	if len(c.SourceFields) == 0 {
		c.SourceFields = DefaultSourceFields
	}
	if c.PageSize <= 0 {
		c.PageSize = DefaultPageSize
	}
	if c.KeepAlive <= 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	if c.Settle == 0 {
		c.Settle = DefaultSettle
	} else if c.Settle < 0 {
		c.Settle = 0
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Transport == nil {
		c.Transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	return c
}

// Client is a connection to one cluster. It detects the flavor on first
// use (and again after a failed detection), so it can be made while the
// cluster is down.
type Client struct {
	cfg Config

	mu      sync.Mutex
	flavor  Flavor
	version string
	es      *elasticsearch.Client

	// pages are reused from one Read to the next: a parsed page holds
	// about a thousand hits' values and the response's bytes.
	pages sync.Pool
}

// New returns a client; it makes no request.
func New(cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	if len(cfg.URLs) == 0 {
		return nil, errors.New("search: no cluster URL")
	}
	if _, err := ParseFlavor(string(cfg.Flavor)); err != nil {
		return nil, err
	}
	if cfg.Detections != "" {
		if err := ValidDetectionsPrefix(cfg.Detections); err != nil {
			return nil, fmt.Errorf("search: %w", err)
		}
	}
	c := &Client{cfg: cfg}
	c.pages.New = func() any { return new(page) }
	return c, nil
}

// Config returns the client's configuration with defaults filled in.
func (c *Client) Config() Config { return c.cfg }

// Flavor returns the engine, detecting it when needed, and its version.
func (c *Client) Flavor(ctx context.Context) (Flavor, string, error) {
	if _, err := c.client(ctx); err != nil {
		return "", "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flavor, c.version, nil
}

// ES returns the underlying go-elasticsearch client, connected.
func (c *Client) ES(ctx context.Context) (*elasticsearch.Client, error) { return c.client(ctx) }

func (c *Client) client(ctx context.Context) (*elasticsearch.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.es != nil {
		return c.es, nil
	}
	flavor, version := c.cfg.Flavor, ""
	if flavor == FlavorAuto {
		var err error
		if flavor, version, err = c.detect(ctx); err != nil {
			return nil, err
		}
	}
	tr := c.cfg.Transport
	if flavor == FlavorOpenSearch {
		tr = &openSearchTransport{next: tr}
	}
	es, err := elasticsearch.NewClient(elasticsearch.Config{
		Addresses: c.cfg.URLs,
		Username:  c.cfg.Username,
		Password:  c.cfg.Password,
		APIKey:    c.cfg.APIKey,
		Transport: tr,
		// The activity is retried by Temporal with backoff; one quick
		// retry here covers a node restarting behind a balancer.
		MaxRetries:   1,
		RetryBackoff: func(int) time.Duration { return 200 * time.Millisecond },
	})
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	c.es, c.flavor, c.version = es, flavor, version
	return es, nil
}

// detect reads the root document: OpenSearch names itself in
// version.distribution; Elasticsearch (7.14+) sends X-Elastic-Product. A
// server that does neither is treated as OpenSearch (e.g. Amazon OpenSearch
// Service with the compatibility version override).
func (c *Client) detect(ctx context.Context) (Flavor, string, error) {
	var errs []error
	for _, u := range c.cfg.URLs {
		ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(u, "/")+"/", nil)
		if err != nil {
			cancel()
			return "", "", fmt.Errorf("search: %w", err)
		}
		c.auth(req)
		res, err := (&http.Client{Transport: c.cfg.Transport}).Do(req)
		if err != nil {
			cancel()
			errs = append(errs, err)
			continue
		}
		body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		res.Body.Close()
		cancel()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if res.StatusCode != http.StatusOK {
			errs = append(errs, fmt.Errorf("GET %s/: %s: %s", u, res.Status, snippet(body)))
			continue
		}
		var root struct {
			Version struct {
				Number       string `json:"number"`
				Distribution string `json:"distribution"`
			} `json:"version"`
		}
		if err := json.Unmarshal(body, &root); err != nil {
			errs = append(errs, fmt.Errorf("GET %s/: not a search engine's root document: %w", u, err))
			continue
		}
		switch {
		case strings.EqualFold(root.Version.Distribution, "opensearch"):
			return FlavorOpenSearch, root.Version.Number, nil
		case res.Header.Get("X-Elastic-Product") == "Elasticsearch":
			return FlavorElasticsearch, root.Version.Number, nil
		}
		return FlavorOpenSearch, root.Version.Number, nil
	}
	return "", "", fmt.Errorf("search: cannot reach the cluster to tell Elasticsearch from OpenSearch: %w", errors.Join(errs...))
}

func (c *Client) auth(req *http.Request) {
	switch {
	case c.cfg.APIKey != "":
		req.Header.Set("Authorization", "ApiKey "+c.cfg.APIKey)
	case c.cfg.Username != "":
		req.SetBasicAuth(c.cfg.Username, c.cfg.Password)
	}
}

// openSearchTransport lets the go-elasticsearch v8 client talk to
// OpenSearch: the client refuses any response without
// "X-Elastic-Product: Elasticsearch" (its product check), which OpenSearch
// does not send. The REST calls this package makes are the same on both.
type openSearchTransport struct{ next http.RoundTripper }

func (t *openSearchTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := t.next.RoundTrip(req)
	if err == nil && res.Header.Get("X-Elastic-Product") == "" {
		res.Header.Set("X-Elastic-Product", "Elasticsearch")
	}
	return res, err
}

// APIError is an error answer of the cluster.
type APIError struct {
	Op     string
	Status int
	Type   string // error.type
	Reason string // error.reason (root cause first)
}

func (e *APIError) Error() string {
	if e.Type == "" {
		return fmt.Sprintf("search: %s: HTTP %d: %s", e.Op, e.Status, e.Reason)
	}
	return fmt.Sprintf("search: %s: HTTP %d: %s: %s", e.Op, e.Status, e.Type, e.Reason)
}

func apiError(op string, res *esapi.Response) error {
	body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	e := &APIError{Op: op, Status: res.StatusCode}
	var doc struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &doc) == nil && len(doc.Error) > 0 {
		var ee struct {
			Type      string `json:"type"`
			Reason    string `json:"reason"`
			RootCause []struct {
				Type   string `json:"type"`
				Reason string `json:"reason"`
			} `json:"root_cause"`
		}
		if json.Unmarshal(doc.Error, &ee) == nil {
			e.Type, e.Reason = ee.Type, ee.Reason
			if len(ee.RootCause) > 0 && ee.RootCause[0].Reason != "" && ee.RootCause[0].Reason != ee.Reason {
				e.Reason = ee.RootCause[0].Type + ": " + ee.RootCause[0].Reason + " (" + ee.Reason + ")"
			}
		} else {
			e.Reason = snippet(doc.Error)
		}
	} else {
		e.Reason = snippet(body)
	}
	return e
}

func snippet(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

// do performs a request the esapi package has no call for (OpenSearch's
// point-in-time API) through the v8 client.
func (c *Client) do(ctx context.Context, method, path string, body any) (*esapi.Response, error) {
	es, err := c.client(ctx)
	if err != nil {
		return nil, err
	}
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, path, r)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := es.Perform(req)
	if err != nil {
		return nil, err
	}
	return &esapi.Response{StatusCode: res.StatusCode, Header: res.Header, Body: res.Body}, nil
}
