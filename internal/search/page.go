package search

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/valyala/fastjson"
)

// page is one parsed _search response. Parsing is one pass with fastjson
// (no reflection); the hits' _source values are handed to the detector's
// EventDecoder as they are, not parsed again. A page is reused: its values
// are valid until the next parse.
type page struct {
	body  bytes.Buffer // the response; the parsed values point into it
	p     fastjson.Parser
	pitID string
	hits  []*fastjson.Value
	// indices interns index names: a pattern matches a few indices.
	indices map[string]string
}

// index returns the hit's _index, interned.
func (pg *page) index(h *fastjson.Value) string {
	b := h.GetStringBytes("_index")
	if s, ok := pg.indices[string(b)]; ok {
		return s
	}
	s := string(b)
	if pg.indices == nil {
		pg.indices = map[string]string{}
	}
	if len(pg.indices) < 1024 {
		pg.indices[s] = s
	}
	return s
}

func (pg *page) parse(raw []byte) error {
	v, err := pg.p.ParseBytes(raw)
	if err != nil {
		return fmt.Errorf("search: decoding the response: %w", err)
	}
	pg.pitID = string(v.GetStringBytes("pit_id"))
	// A page that misses shards would let the checkpoint pass events it
	// never saw: fail instead, and retry later.
	if v.GetBool("timed_out") {
		return errors.New("search: timed out (partial results refused)")
	}
	if failed := v.GetInt("_shards", "failed"); failed > 0 {
		reason := ""
		if f := v.Get("_shards", "failures", "0"); f != nil {
			reason = ": " + snippet(f.MarshalTo(nil))
		}
		return fmt.Errorf("search: %d of %d shards failed%s", failed, v.GetInt("_shards", "total"), reason)
	}
	hits := v.Get("hits", "hits")
	if hits == nil {
		return errors.New("search: the response has no hits.hits")
	}
	if pg.hits, err = hits.Array(); err != nil {
		return fmt.Errorf("search: hits.hits: %w", err)
	}
	return nil
}

// hitDoc fills d from a hit: _index, _id, the first sort value (the time in
// nanoseconds) and _source.
func (pg *page) hitDoc(h *fastjson.Value, d *Doc) error {
	*d = Doc{Index: pg.index(h), ID: string(h.GetStringBytes("_id")), src: h.Get("_source")}
	if d.src == nil || d.src.Type() != fastjson.TypeObject {
		return fmt.Errorf("search: hit %s/%s has no _source object (is _source disabled in the mapping?)", d.Index, d.ID)
	}
	t := h.Get("sort", "0")
	if t == nil {
		return fmt.Errorf("search: hit %s/%s has no sort values", d.Index, d.ID)
	}
	var buf [32]byte
	ns, err := strconv.ParseInt(string(t.MarshalTo(buf[:0])), 10, 64)
	if err != nil {
		return fmt.Errorf("search: hit %s/%s: time sort value %s is not an integer", d.Index, d.ID, t)
	}
	d.Time = time.Unix(0, ns).UTC()
	return nil
}
