package search

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/valyala/fastjson"

	"github.com/cordonhq/cordon/workflows"
)

// Checkpoint is where a reader is in the event stream (see
// workflows.DetectCheckpoint): the time of the last event processed and
// the references of those processed at exactly that time.
type Checkpoint = workflows.DetectCheckpoint

// Doc is one event document read from the cluster. It is only valid during
// the Read callback.
type Doc struct {
	Index, ID string
	// Time is the document's sort time (TimeField, nanoseconds).
	Time time.Time

	src *fastjson.Value
	raw []byte
}

// Ref is the document's reference in a checkpoint: "<_index>/<_id>".
func (d *Doc) Ref() string { return d.Index + "/" + d.ID }

// Value is the parsed document (_source).
func (d *Doc) Value() *fastjson.Value { return d.src }

// Source is the document's JSON (_source, compact).
func (d *Doc) Source() []byte {
	if d.raw == nil {
		d.raw = d.src.MarshalTo(nil)
	}
	return d.raw
}

// ReadStats counts what one Read did.
type ReadStats struct {
	Pages int
	// Docs counts the documents returned by the cluster, Skipped those
	// already behind the checkpoint (equal time, already seen).
	Docs, Skipped int
	// Bytes is the size of the search responses.
	Bytes int64
}

// ErrStop, returned by Read's callback, ends the read without error.
var ErrStop = errors.New("stop reading")

// Read calls fn, in (time, reference) order, for every flow event after cp
// whose time is at most until, one page at a time through a point in time
// (so the view does not change under the pages). fn returning ErrStop ends
// the read; onPage is called after each page (for heartbeats). An index
// pattern that matches no index reads nothing.
func (c *Client) Read(ctx context.Context, cp Checkpoint, until time.Time, fn func(*Doc) error, onPage func(ReadStats)) (ReadStats, error) {
	var st ReadStats
	if _, err := c.client(ctx); err != nil {
		return st, err
	}
	c.mu.Lock()
	flavor := c.flavor
	c.mu.Unlock()

	pit, err := c.openPIT(ctx, flavor)
	if err != nil {
		// Elasticsearch opens a point in time over nothing when the pattern
		// matches no index; OpenSearch refuses. Either way: nothing to read.
		var ae *APIError
		if errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 {
			if none, xerr := c.noIndex(ctx); xerr == nil && none {
				return st, nil
			}
		}
		return st, err
	}
	defer func() {
		// Best effort, past the caller's cancellation; the keep-alive
		// frees it anyway.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = c.closePIT(cctx, flavor, pit)
	}()

	q := c.query(cp, until, flavor)
	pg := c.pages.Get().(*page)
	defer c.pages.Put(pg)
	var doc Doc
	for {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		q["pit"] = map[string]any{"id": pit, "keep_alive": keepAlive(c.cfg.KeepAlive)}
		raw, err := c.search(ctx, q, &pg.body)
		if err != nil {
			return st, err
		}
		if err := pg.parse(raw); err != nil {
			return st, err
		}
		st.Pages++
		st.Bytes += int64(len(raw))
		if pg.pitID != "" {
			pit = pg.pitID
		}
		for _, h := range pg.hits {
			st.Docs++
			if err := pg.hitDoc(h, &doc); err != nil {
				return st, err
			}
			// The reference is only built for events at the checkpoint's
			// own time (rarely more than a few).
			if !doc.Time.After(cp.Time) && (doc.Time.Before(cp.Time) || !cp.After(doc.Time, doc.Ref())) {
				st.Skipped++
				continue
			}
			if err := fn(&doc); err != nil {
				if errors.Is(err, ErrStop) {
					return st, nil
				}
				return st, err
			}
		}
		if onPage != nil {
			onPage(st)
		}
		if len(pg.hits) < c.cfg.PageSize {
			return st, nil
		}
		q["search_after"] = json.RawMessage(pg.hits[len(pg.hits)-1].Get("sort").MarshalTo(nil))
	}
}

// timeFormat is how times go into range queries: nanosecond precision.
const timeFormat = "2006-01-02T15:04:05.000000000Z"

// query is the search body: flow events with TimeField in [cp.Time, until],
// sorted by time then by a tiebreaker unique inside the point in time.
func (c *Client) query(cp Checkpoint, until time.Time, flavor Flavor) map[string]any {
	tf := c.cfg.TimeField
	rng := map[string]any{"lte": until.UTC().Format(timeFormat), "format": "strict_date_optional_time_nanos"}
	if !cp.Time.IsZero() {
		rng["gte"] = cp.Time.UTC().Format(timeFormat)
	}
	flow := []any{
		term("type", "flow"), term("type.keyword", "flow"),
		terms("event.dataset", "flow", "network_traffic.flow"),
		terms("event.dataset.keyword", "flow", "network_traffic.flow"),
		terms("data_stream.dataset", "flow", "network_traffic.flow"),
		map[string]any{"exists": map[string]any{"field": "flow.id"}},
		map[string]any{"exists": map[string]any{"field": "flow_id"}},
	}
	filter := []any{
		map[string]any{"range": map[string]any{tf: rng}},
		map[string]any{"bool": map[string]any{"should": flow, "minimum_should_match": 1}},
	}
	if !c.cfg.AllEvents {
		// Final flow reports only (Packetbeat repeats a flow every period
		// until it ends); pre-ECS Packetbeat named the field "final".
		filter = append(filter, map[string]any{"bool": map[string]any{"should": []any{
			term("flow.final", true), term("final", true),
		}, "minimum_should_match": 1}})
	}
	tiebreak := map[string]any{"_shard_doc": "asc"}
	if flavor == FlavorOpenSearch {
		tiebreak = map[string]any{"_id": "asc"}
	}
	q := map[string]any{
		"size":             c.cfg.PageSize,
		"track_total_hits": false,
		"query":            map[string]any{"bool": map[string]any{"filter": filter}},
		"sort": []any{
			map[string]any{tf: map[string]any{"order": "asc", "numeric_type": "date_nanos", "unmapped_type": "date"}},
			tiebreak,
		},
	}
	if !(len(c.cfg.SourceFields) == 1 && c.cfg.SourceFields[0] == "*") {
		q["_source"] = map[string]any{"includes": c.cfg.SourceFields}
	}
	return q
}

func term(field string, v any) map[string]any {
	return map[string]any{"term": map[string]any{field: v}}
}

func terms(field string, v ...any) map[string]any {
	return map[string]any{"terms": map[string]any{field: v}}
}

func keepAlive(d time.Duration) string {
	return strconv.FormatInt(max(d.Milliseconds(), 1000), 10) + "ms"
}

// search runs one search request and returns the response body, read
// into buf (reused from page to page).
func (c *Client) search(ctx context.Context, q map[string]any, buf *bytes.Buffer) ([]byte, error) {
	es, err := c.client(ctx)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(q)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	res, err := es.Search(
		es.Search.WithContext(ctx),
		es.Search.WithBody(bytes.NewReader(body)),
		es.Search.WithAllowPartialSearchResults(false),
	)
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	defer res.Body.Close()
	if res.IsError() {
		return nil, apiError("search", res)
	}
	buf.Reset()
	if n, err := strconv.Atoi(res.Header.Get("Content-Length")); err == nil && n > 0 && n < 256<<20 {
		buf.Grow(n)
	}
	if _, err := buf.ReadFrom(res.Body); err != nil {
		return nil, fmt.Errorf("search: reading the response: %w", err)
	}
	return buf.Bytes(), nil
}

func (c *Client) openPIT(ctx context.Context, flavor Flavor) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	ka := keepAlive(c.cfg.KeepAlive)
	if flavor == FlavorOpenSearch {
		res, err := c.do(ctx, http.MethodPost, "/"+url.PathEscape(c.cfg.Index)+"/_search/point_in_time?keep_alive="+ka, nil)
		if err != nil {
			return "", fmt.Errorf("search: opening a point in time: %w", err)
		}
		defer res.Body.Close()
		if res.IsError() {
			return "", apiError("opening a point in time on "+c.cfg.Index, res)
		}
		var out struct {
			PitID string `json:"pit_id"`
		}
		if err := json.NewDecoder(res.Body).Decode(&out); err != nil || out.PitID == "" {
			return "", fmt.Errorf("search: opening a point in time: no pit_id in the answer (%v)", err)
		}
		return out.PitID, nil
	}
	es, err := c.client(ctx)
	if err != nil {
		return "", err
	}
	res, err := es.OpenPointInTime([]string{c.cfg.Index}, ka, es.OpenPointInTime.WithContext(ctx))
	if err != nil {
		return "", fmt.Errorf("search: opening a point in time: %w", err)
	}
	defer res.Body.Close()
	if res.IsError() {
		return "", apiError("opening a point in time on "+c.cfg.Index, res)
	}
	var out struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || out.ID == "" {
		return "", fmt.Errorf("search: opening a point in time: no id in the answer (%v)", err)
	}
	return out.ID, nil
}

func (c *Client) closePIT(ctx context.Context, flavor Flavor, id string) error {
	var res *esapi.Response
	var err error
	if flavor == FlavorOpenSearch {
		res, err = c.do(ctx, http.MethodDelete, "/_search/point_in_time", map[string]any{"pit_id": []string{id}})
	} else {
		cl, cerr := c.client(ctx)
		if cerr != nil {
			return cerr
		}
		b, _ := json.Marshal(map[string]string{"id": id})
		res, err = cl.ClosePointInTime(cl.ClosePointInTime.WithContext(ctx), cl.ClosePointInTime.WithBody(bytes.NewReader(b)))
	}
	if err != nil {
		return err
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	if res.IsError() && res.StatusCode != http.StatusNotFound {
		return fmt.Errorf("search: closing a point in time: HTTP %d", res.StatusCode)
	}
	return nil
}

// noIndex reports whether the index pattern matches no index.
func (c *Client) noIndex(ctx context.Context) (bool, error) {
	es, err := c.client(ctx)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	res, err := es.Indices.Exists([]string{c.cfg.Index}, es.Indices.Exists.WithContext(ctx), es.Indices.Exists.WithAllowNoIndices(false))
	if err != nil {
		return false, err
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	switch res.StatusCode {
	case http.StatusNotFound:
		return true, nil
	case http.StatusOK:
		return false, nil
	}
	return false, fmt.Errorf("HTTP %d", res.StatusCode)
}

// Ping checks that the cluster answers (and detects its flavor).
func (c *Client) Ping(ctx context.Context) error {
	es, err := c.client(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	res, err := es.Info(es.Info.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("search: %w", err)
	}
	defer res.Body.Close()
	if res.IsError() {
		return apiError("GET /", res)
	}
	return nil
}
