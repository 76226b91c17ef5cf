package search

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// PacketbeatMapping is an index body with the ECS types of the fields the
// detector reads (date, keyword, ip, long, boolean), as Packetbeat's and
// the network_traffic integration's templates map them; other fields are
// mapped dynamically. Address fields ignore malformed values, so a document
// with an unparsable address is stored and the detector counts it (an
// index without that setting refuses the document instead).
const PacketbeatMapping = `{
  "settings": {"index": {"number_of_replicas": 0, "refresh_interval": "1s"}},
  "mappings": {
    "properties": {
      "@timestamp": {"type": "date"},
      "type": {"type": "keyword"},
      "event": {"properties": {
        "dataset": {"type": "keyword"}, "ingested": {"type": "date"},
        "kind": {"type": "keyword"}, "category": {"type": "keyword"}, "type": {"type": "keyword"}}},
      "data_stream": {"properties": {
        "dataset": {"type": "keyword"}, "namespace": {"type": "keyword"}, "type": {"type": "keyword"}}},
      "flow": {"properties": {"id": {"type": "keyword"}, "final": {"type": "boolean"}}},
      "source": {"properties": {"ip": {"type": "ip", "ignore_malformed": true}, "port": {"type": "long", "ignore_malformed": true}}},
      "destination": {"properties": {"ip": {"type": "ip", "ignore_malformed": true}, "port": {"type": "long", "ignore_malformed": true}}},
      "client": {"properties": {"ip": {"type": "ip", "ignore_malformed": true}, "port": {"type": "long", "ignore_malformed": true}}},
      "server": {"properties": {"ip": {"type": "ip", "ignore_malformed": true}, "port": {"type": "long", "ignore_malformed": true}}},
      "network": {"properties": {"transport": {"type": "keyword"}, "community_id": {"type": "keyword"}, "type": {"type": "keyword"}}},
      "cloud": {"properties": {
        "instance": {"properties": {"id": {"type": "keyword"}}},
        "account": {"properties": {"id": {"type": "keyword"}}},
        "region": {"type": "keyword"}, "provider": {"type": "keyword"}}},
      "host": {"properties": {"name": {"type": "keyword"}}}
    }
  }
}`

// CreateIndex creates index with body (PacketbeatMapping when empty). An
// existing index is left as it is.
func (c *Client) CreateIndex(ctx context.Context, index, body string) error {
	es, err := c.client(ctx)
	if err != nil {
		return err
	}
	if body == "" {
		body = PacketbeatMapping
	}
	res, err := es.Indices.Create(index, es.Indices.Create.WithContext(ctx), es.Indices.Create.WithBody(strings.NewReader(body)))
	if err != nil {
		return fmt.Errorf("search: creating index %s: %w", index, err)
	}
	defer res.Body.Close()
	if res.IsError() {
		e := apiError("creating index "+index, res)
		if ae, ok := e.(*APIError); ok && ae.Type == "resource_already_exists_exception" {
			return nil
		}
		return e
	}
	return nil
}

// DeleteIndex deletes the indices matching pattern (none: no error).
func (c *Client) DeleteIndex(ctx context.Context, pattern string) error {
	es, err := c.client(ctx)
	if err != nil {
		return err
	}
	res, err := es.Indices.Delete([]string{pattern}, es.Indices.Delete.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("search: deleting %s: %w", pattern, err)
	}
	defer res.Body.Close()
	if res.IsError() && res.StatusCode != http.StatusNotFound {
		return apiError("deleting "+pattern, res)
	}
	return nil
}

// BulkDoc is one document to index; ID may be empty (the cluster picks one).
type BulkDoc struct {
	Index, ID string
	Source    []byte
}

// BulkResult says what a Bulk call did: the IDs given to the documents, in
// order, and the first error of any document that was refused.
type BulkResult struct {
	IDs      []string
	Errors   int
	FirstErr string
}

// Bulk indexes docs in one request. refresh is "", "true" or "wait_for".
func (c *Client) Bulk(ctx context.Context, docs []BulkDoc, refresh string) (BulkResult, error) {
	var out BulkResult
	es, err := c.client(ctx)
	if err != nil {
		return out, err
	}
	var buf bytes.Buffer
	for _, d := range docs {
		meta := map[string]any{"_index": d.Index}
		if d.ID != "" {
			meta["_id"] = d.ID
		}
		b, _ := json.Marshal(map[string]any{"index": meta})
		buf.Write(b)
		buf.WriteByte('\n')
		buf.Write(bytes.TrimSpace(d.Source))
		buf.WriteByte('\n')
	}
	call := es.Bulk
	res, err := call(bytes.NewReader(buf.Bytes()), call.WithContext(ctx), call.WithRefresh(refresh))
	if err != nil {
		return out, fmt.Errorf("search: bulk: %w", err)
	}
	defer res.Body.Close()
	if res.IsError() {
		return out, apiError("bulk", res)
	}
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return out, err
	}
	var br struct {
		Items []map[string]struct {
			ID     string          `json:"_id"`
			Status int             `json:"status"`
			Error  json.RawMessage `json:"error"`
		} `json:"items"`
	}
	if err := json.Unmarshal(raw, &br); err != nil {
		return out, fmt.Errorf("search: bulk: decoding the answer: %w", err)
	}
	for _, it := range br.Items {
		for _, r := range it {
			out.IDs = append(out.IDs, r.ID)
			if len(r.Error) > 0 {
				out.Errors++
				if out.FirstErr == "" {
					out.FirstErr = snippet(r.Error)
				}
			}
		}
	}
	return out, nil
}

// Refresh makes what was indexed into pattern searchable now.
func (c *Client) Refresh(ctx context.Context, pattern string) error {
	es, err := c.client(ctx)
	if err != nil {
		return err
	}
	res, err := es.Indices.Refresh(es.Indices.Refresh.WithContext(ctx), es.Indices.Refresh.WithIndex(pattern))
	if err != nil {
		return fmt.Errorf("search: refresh: %w", err)
	}
	defer res.Body.Close()
	if res.IsError() {
		return apiError("refresh "+pattern, res)
	}
	return nil
}
