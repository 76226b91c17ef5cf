// Package searchtest is for tests only: it finds the test search engine
// (CORDON_TEST_SEARCH, started by scripts/search), makes throw-away indices
// in it, and holds ElasticsearchOverOpenSearch, the TEST-ONLY adapter that
// runs the client's Elasticsearch code path against the OpenSearch node that
// CI has (no Elasticsearch distribution is reachable from CI's machines).
package searchtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cordonhq/cordon/internal/search"
)

// EnvURL names the environment variable with the engine's URL.
const EnvURL = "CORDON_TEST_SEARCH"

// URL returns the test engine's URL. Without one the test is skipped,
// except in CI (CI=true), where a missing engine is a failure: .ci/run
// starts it.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvURL)
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set in CI: .ci/run must start the search engine (eval \"$(scripts/search start)\")", EnvURL)
		}
		t.Skipf("%s is not set: start a search engine with eval \"$(scripts/search start)\" to run this test", EnvURL)
	}
	return strings.TrimRight(u, "/")
}

// Flavors under test: the engine as it is (OpenSearch in CI, through the
// production openSearchTransport) and the Elasticsearch code path through
// the test-only adapter.
const (
	Native                = "native"
	ElasticsearchEmulated = "elasticsearch-emulated"
)

// Client returns a client of the test engine for the flavor under test,
// with cfg's other settings (URLs and Transport are set here). For
// ElasticsearchEmulated the returned adapter counts the translated calls.
func Client(t testing.TB, flavor string, cfg search.Config) (*search.Client, *ElasticsearchOverOpenSearch) {
	t.Helper()
	cfg.URLs = []string{URL(t)}
	var ad *ElasticsearchOverOpenSearch
	if flavor == ElasticsearchEmulated {
		ad = &ElasticsearchOverOpenSearch{Next: http.DefaultTransport}
		cfg.Transport = ad
	}
	c, err := search.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, ad
}

// Prefix returns a fresh index-name prefix ("packetbeat-cordontest-<hex>-")
// whose indices are deleted when the test ends.
func Prefix(t testing.TB, c *search.Client) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	p := "packetbeat-cordontest-" + hex.EncodeToString(b) + "-"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = c.DeleteIndex(ctx, p+"*")
	})
	return p
}

// Index creates the indices of docs with search.PacketbeatMapping (and
// shards shards each) and indexes docs in bulk requests of 1000, then
// refreshes. It returns the documents' IDs in order.
func Index(t testing.TB, c *search.Client, shards int, docs []search.BulkDoc) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	created := map[string]bool{}
	body := search.PacketbeatMapping
	if shards > 0 {
		body = strings.Replace(body, `"number_of_replicas": 0`, `"number_of_replicas": 0, "number_of_shards": `+itoa(shards), 1)
	}
	for _, d := range docs {
		if !created[d.Index] {
			created[d.Index] = true
			if err := c.CreateIndex(ctx, d.Index, body); err != nil {
				t.Fatal(err)
			}
		}
	}
	var ids []string
	for len(docs) > 0 {
		n := min(1000, len(docs))
		res, err := c.Bulk(ctx, docs[:n], "")
		if err != nil {
			t.Fatal(err)
		}
		if res.Errors > 0 {
			t.Fatalf("bulk: %d documents refused, first: %s", res.Errors, res.FirstErr)
		}
		ids = append(ids, res.IDs...)
		docs = docs[n:]
	}
	for idx := range created {
		if err := c.Refresh(ctx, idx); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// ReadNDJSON returns the non-empty lines of an NDJSON file.
func ReadNDJSON(t testing.TB, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		if l := bytes.TrimSpace(sc.Bytes()); len(l) > 0 {
			out = append(out, append([]byte(nil), l...))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// ElasticsearchOverOpenSearch is a TEST-ONLY http.RoundTripper that makes
// an OpenSearch node look like Elasticsearch 8 to the go-elasticsearch v8
// client, so that the client's Elasticsearch code path runs against a real
// engine in CI. It is not for production: a real Elasticsearch cluster
// needs none of it, and OpenSearch in production goes through the
// package's own OpenSearch path. It translates exactly what differs:
//   - GET /: drops version.distribution (so auto-detection sees
//     Elasticsearch);
//   - POST /<index>/_pit → POST /<index>/_search/point_in_time, answer
//     {"pit_id"} → {"id"};
//   - DELETE /_pit {"id"} → DELETE /_search/point_in_time {"pit_id": [id]};
//   - the _shard_doc tiebreaker (which OpenSearch 2.x lacks) → _id;
//   - every answer gets "X-Elastic-Product: Elasticsearch".
type ElasticsearchOverOpenSearch struct {
	Next http.RoundTripper
	// PITOpened, PITClosed and ShardDoc count the translated calls.
	PITOpened, PITClosed, ShardDoc atomic.Int64
}

// RoundTrip implements http.RoundTripper.
func (a *ElasticsearchOverOpenSearch) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	path := req.URL.Path
	var rewrite func([]byte) []byte
	switch {
	case req.Method == http.MethodGet && (path == "/" || path == ""):
		rewrite = func(b []byte) []byte {
			var root map[string]any
			if json.Unmarshal(b, &root) != nil {
				return b
			}
			if v, ok := root["version"].(map[string]any); ok {
				delete(v, "distribution")
			}
			root["tagline"] = "You Know, for Search"
			out, _ := json.Marshal(root)
			return out
		}
	case req.Method == http.MethodPost && strings.HasSuffix(path, "/_pit"):
		a.PITOpened.Add(1)
		req.URL.Path = strings.TrimSuffix(path, "/_pit") + "/_search/point_in_time"
		req.URL.RawPath = ""
		rewrite = func(b []byte) []byte {
			var out struct {
				PitID string `json:"pit_id"`
			}
			if json.Unmarshal(b, &out) != nil || out.PitID == "" {
				return b
			}
			r, _ := json.Marshal(map[string]string{"id": out.PitID})
			return r
		}
	case req.Method == http.MethodDelete && path == "/_pit":
		a.PITClosed.Add(1)
		var in struct {
			ID string `json:"id"`
		}
		if err := readJSON(req, &in); err != nil {
			return nil, err
		}
		setBody(req, mustJSON(map[string]any{"pit_id": []string{in.ID}}))
		req.URL.Path = "/_search/point_in_time"
	case strings.HasSuffix(path, "/_search") && req.Body != nil:
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		if bytes.Contains(b, []byte(`"_shard_doc"`)) {
			a.ShardDoc.Add(1)
			b = bytes.ReplaceAll(b, []byte(`"_shard_doc"`), []byte(`"_id"`))
		}
		setBody(req, b)
	}
	res, err := a.Next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	res.Header.Set("X-Elastic-Product", "Elasticsearch")
	if rewrite != nil && res.StatusCode == http.StatusOK {
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			return nil, err
		}
		b = rewrite(b)
		res.Body = io.NopCloser(bytes.NewReader(b))
		res.ContentLength = int64(len(b))
		res.Header.Del("Content-Length")
	}
	return res, nil
}

func readJSON(req *http.Request, v any) error {
	if req.Body == nil {
		return nil
	}
	b, err := io.ReadAll(req.Body)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func setBody(req *http.Request, b []byte) {
	req.Body = io.NopCloser(bytes.NewReader(b))
	req.ContentLength = int64(len(b))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
