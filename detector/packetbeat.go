package detector

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"strconv"
	"time"
)

// Event is the part of a Packetbeat document the detector uses.
type Event struct {
	// File and Line locate the document in the input (the line it starts on).
	File string `json:"file"`
	Line int    `json:"line"`
	// Index is the document's 1-based position in the JSON array or
	// _search response it came from, 0 when it stood alone.
	Index int `json:"index,omitempty"`
	// DocID and DocIndex are the Elasticsearch _id and _index of a search hit.
	DocID    string `json:"docID,omitempty"`
	DocIndex string `json:"docIndex,omitempty"`

	Timestamp time.Time `json:"timestamp"`
	// Type is the top-level "type": flow, dns, http, tls, … (Packetbeat 7 and 8).
	Type string `json:"type,omitempty"`
	// Dataset is event.dataset, else data_stream.dataset: "flow" (standalone
	// Packetbeat), "network_traffic.flow" (Elastic Agent), "dns", …
	Dataset string `json:"dataset,omitempty"`
	// FlowID and FlowFinal are flow.id and flow.final. Intermediate flow
	// reports (final false) repeat every period until the flow ends.
	FlowID    string `json:"flowID,omitempty"`
	FlowFinal bool   `json:"flowFinal,omitempty"`

	// SourceIPs and DestinationIPs hold source.ip and destination.ip (an
	// array when Packetbeat saw tunnel/outer addresses), falling back to
	// client.ip and server.ip for transactions that lack them.
	SourceIPs       []netip.Addr `json:"sourceIPs"`
	DestinationIPs  []netip.Addr `json:"destinationIPs"`
	SourcePort      uint16       `json:"sourcePort,omitempty"`
	DestinationPort uint16       `json:"destinationPort,omitempty"`
	// Transport is network.transport: tcp, udp, icmp, ipv6-icmp.
	Transport   string `json:"transport,omitempty"`
	CommunityID string `json:"communityID,omitempty"`

	// InstanceID, AccountID and Region come from add_cloud_metadata
	// (cloud.instance.id, cloud.account.id, cloud.region): the host that runs
	// Packetbeat. HostName is host.name.
	InstanceID string `json:"instanceID,omitempty"`
	AccountID  string `json:"accountID,omitempty"`
	Region     string `json:"region,omitempty"`
	HostName   string `json:"hostName,omitempty"`

	// Raw is the document's JSON. It is only valid during the callback.
	Raw []byte `json:"-"`
}

// IsFlow reports whether the event is a flow record rather than a
// transaction (dns, http, tls, …).
func (e *Event) IsFlow() bool {
	switch {
	case e.Type == "flow", e.Dataset == "flow", e.Dataset == "network_traffic.flow":
		return true
	case e.Type == "" && e.Dataset == "":
		return e.FlowID != ""
	}
	return false
}

// IsFinalFlow reports whether the event is the final report of a flow.
func (e *Event) IsFinalFlow() bool { return e.FlowFinal && e.IsFlow() }

// Ref names the document: "<_index>/_doc/<_id>" for a search hit, else
// "file:line" (with "#n" for the n-th document of an array or response).
func (e *Event) Ref() string {
	switch {
	case e.DocID != "" && e.DocIndex != "":
		return e.DocIndex + "/_doc/" + e.DocID
	case e.DocID != "":
		return e.DocID
	case e.Index > 0:
		return fmt.Sprintf("%s:%d#%d", e.File, e.Line, e.Index)
	}
	return fmt.Sprintf("%s:%d", e.File, e.Line)
}

// Reasons a document is skipped; they key Stats.Skipped.
const (
	ReasonMalformedJSON = "malformed JSON"
	ReasonTooLong       = "line too long"
	ReasonNotObject     = "not a JSON object"
	ReasonWrongType     = "wrong type"
	ReasonBadIP         = "unparsable IP"
	ReasonBadPort       = "bad port"
	ReasonBadTimestamp  = "bad @timestamp"
	ReasonNoAddress     = "no source.ip or destination.ip"
	ReasonNotFlow       = "not a flow record"
	ReasonNotFinal      = "flow not final"
)

// Problem is a document or line that could not be used.
type Problem struct {
	File  string `json:"file"`
	Line  int    `json:"line"`
	Index int    `json:"index,omitempty"`
	// Reason is one of the Reason constants; Detail says what exactly.
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
}

// String formats the problem as "file:line: reason: detail".
func (p Problem) String() string {
	loc := fmt.Sprintf("%s:%d", p.File, p.Line)
	if p.Index > 0 {
		loc += fmt.Sprintf("#%d", p.Index)
	}
	if p.Detail == "" {
		return loc + ": " + p.Reason
	}
	return loc + ": " + p.Reason + ": " + p.Detail
}

// ReadOptions tunes ReadEvents.
type ReadOptions struct {
	// MaxLineBytes is the longest NDJSON line, and the largest multi-line
	// JSON document, accepted. Default 64 MiB.
	MaxLineBytes int
	// MaxSamples bounds Stats.Samples. Default 20.
	MaxSamples int
}

func (o ReadOptions) withDefaults() ReadOptions {
	if o.MaxLineBytes <= 0 {
		o.MaxLineBytes = 64 << 20
	}
	if o.MaxSamples <= 0 {
		o.MaxSamples = 20
	}
	return o
}

// ReadEvents streams the Packetbeat documents of r (named name in line
// references) to fn. It reads:
//   - NDJSON: what Packetbeat's file output writes, or Elasticsearch
//     _source documents or whole hits ({"_id","_index","_source"}), one per
//     line; a line may also hold a JSON array of documents or a whole
//     _search response;
//   - multi-line JSON, when the input starts with '[' or a line holding only
//     '{': a pretty-printed document, a JSON array of documents (Beats golden
//     files), or a _search response (hits.hits[]._source with _id/_index).
//
// Nested objects and flattened dotted keys ("destination.ip") are both
// understood. Documents that cannot be used are counted in the returned
// Stats (Skipped by reason, Samples with file:line) and skipped. The Event
// passed to fn is reused: it is only valid during the call. ReadEvents stops
// at the first error from fn or ctx; other errors are read errors.
func ReadEvents(ctx context.Context, r io.Reader, name string, opts ReadOptions, fn func(*Event) error) (Stats, error) {
	er := &eventReader{ctx: ctx, name: name, opts: opts.withDefaults(), fn: fn}
	err := er.run(r)
	return er.stats, err
}

type eventReader struct {
	ctx   context.Context
	name  string
	opts  ReadOptions
	fn    func(*Event) error
	stats Stats

	line int    // NDJSON: the current line
	data []byte // multi-line mode: the whole input, for line numbers
	// incremental line counting over data
	lastOff, lastLine int

	doc rawDoc
	dec EventDecoder // the fast path for plain documents
	ev  Event
	n   int // documents seen, for context checks
}

func (er *eventReader) run(r io.Reader) error {
	if err := er.ctx.Err(); err != nil {
		return err
	}
	br := bufio.NewReaderSize(r, 256<<10)
	if b, _ := br.Peek(3); bytes.Equal(b, []byte("\xef\xbb\xbf")) {
		_, _ = br.Discard(3)
	}
	head, err := br.Peek(4096)
	if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
		return err
	}
	if multiLine(head) {
		return er.runDocument(br)
	}
	return er.runNDJSON(br)
}

// multiLine reports whether the input is one pretty-printed JSON value
// rather than NDJSON: it starts with '[' or with a line holding only '{'.
func multiLine(head []byte) bool {
	head = bytes.TrimLeft(head, " \t\r\n")
	if len(head) == 0 {
		return false
	}
	if head[0] == '[' {
		return true
	}
	first, _, found := bytes.Cut(head, []byte{'\n'})
	return found && string(bytes.TrimSpace(first)) == "{"
}

func (er *eventReader) runNDJSON(br *bufio.Reader) error {
	lr := newLineReader(br, 256<<10, er.opts.MaxLineBytes)
	for {
		raw, tooLong, err := lr.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		er.stats.Lines++
		er.line = lr.line
		if er.stats.Lines%1024 == 0 {
			if err := er.ctx.Err(); err != nil {
				return err
			}
		}
		if tooLong {
			er.problem(0, ReasonTooLong, fmt.Sprintf("longer than %d bytes", er.opts.MaxLineBytes))
			continue
		}
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 {
			continue
		}
		if err := er.value(raw, 0, 0); err != nil {
			return err
		}
	}
}

func (er *eventReader) runDocument(br *bufio.Reader) error {
	data, err := io.ReadAll(io.LimitReader(br, int64(er.opts.MaxLineBytes)+1))
	if err != nil {
		return err
	}
	er.data = data
	er.stats.Lines = bytes.Count(data, []byte{'\n'})
	if len(data) > 0 && data[len(data)-1] != '\n' {
		er.stats.Lines++
	}
	if len(data) > er.opts.MaxLineBytes {
		er.line = 1
		er.problem(0, ReasonTooLong, fmt.Sprintf("JSON document larger than %d bytes", er.opts.MaxLineBytes))
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		start := skipSpace(data, int(dec.InputOffset()))
		if start >= len(data) {
			return nil
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			er.line = er.lineAt(start)
			er.problem(0, ReasonMalformedJSON, err.Error())
			return nil // cannot resynchronise inside one JSON value
		}
		if err := er.value(v, start, 0); err != nil {
			return err
		}
	}
}

// lineAt returns the line of byte offset off: the current line for NDJSON,
// the line inside the whole input in multi-line mode.
func (er *eventReader) lineAt(off int) int {
	if er.data == nil {
		return er.line
	}
	if off < er.lastOff {
		er.lastOff, er.lastLine = 0, 0
	}
	off = min(off, len(er.data))
	er.lastLine += bytes.Count(er.data[er.lastOff:off], []byte{'\n'})
	er.lastOff = off
	return er.lastLine + 1
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n' || b[i] == ',') {
		i++
	}
	return i
}

// value handles one JSON value at byte offset base of the input: an array of
// documents, or an object (document, search hit, or _search response).
func (er *eventReader) value(raw []byte, base, index int) error {
	er.line = er.lineAt(base)
	switch raw[0] {
	case '{':
		return er.object(raw, index, "", "")
	case '[':
		dec := json.NewDecoder(bytes.NewReader(raw))
		if _, err := dec.Token(); err != nil {
			er.problem(index, ReasonMalformedJSON, err.Error())
			return nil
		}
		for i := 1; dec.More(); i++ {
			start := skipSpace(raw, int(dec.InputOffset()))
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				er.line = er.lineAt(base + start)
				er.problem(i, ReasonMalformedJSON, err.Error())
				return nil
			}
			er.line = er.lineAt(base + start)
			if len(v) == 0 || v[0] != '{' {
				er.problem(i, ReasonNotObject, "array element is "+jsonKind(v))
				continue
			}
			if err := er.object(v, i, "", ""); err != nil {
				return err
			}
		}
		return nil
	}
	if !json.Valid(raw) {
		er.problem(index, ReasonMalformedJSON, "invalid JSON")
		return nil
	}
	er.problem(index, ReasonNotObject, "got "+jsonKind(raw))
	return nil
}

// object decodes a JSON object: a _search response (its hits are
// expanded), a search hit (its _source is decoded), or a document.
func (er *eventReader) object(raw []byte, index int, docID, docIndex string) error {
	// The common case, a plain document, takes one fastjson pass
	// (EventDecoder: same results, skip reasons and wording). Search
	// responses, hits and whatever fastjson refuses take the encoding/json
	// path below, so their handling and error messages stay as they are.
	if v, err := er.dec.p.ParseBytes(raw); err == nil {
		if o, err := v.Object(); err == nil && o.Get("hits") == nil && o.Get("_source") == nil {
			ev := &er.ev
			if reason, detail := er.dec.DecodeValue(v, ev); reason != "" {
				er.problem(index, reason, detail)
				return nil
			}
			return er.emit(ev, raw, index, docID, docIndex)
		}
	}
	d := &er.doc
	*d = rawDoc{}
	err := json.Unmarshal(raw, d)
	wrongType := ""
	if err != nil {
		var ute *json.UnmarshalTypeError
		if !errors.As(err, &ute) {
			er.problem(index, ReasonMalformedJSON, err.Error())
			return nil
		}
		// Decoding went on past the wrong-typed field; report it below.
		wrongType = fmt.Sprintf("%s is a JSON %s, want %s", ute.Field, ute.Value, jsonTypeName(ute.Type))
	}
	if d.Hits != nil && d.DocSource == nil {
		hits := d.Hits.Hits // er.doc is reused below
		for i, h := range hits {
			if len(h) == 0 || h[0] != '{' {
				er.problem(i+1, ReasonNotObject, "hit is "+jsonKind(h))
				continue
			}
			if err := er.object(h, i+1, "", ""); err != nil {
				return err
			}
		}
		return nil
	}
	if d.DocSource != nil {
		src, id, idx := d.DocSource, d.ID, d.Index
		if len(src) == 0 || src[0] != '{' {
			er.problem(index, ReasonNotObject, "_source is "+jsonKind(src))
			return nil
		}
		return er.object(src, index, id, idx)
	}
	if wrongType != "" {
		er.problem(index, ReasonWrongType, wrongType)
		return nil
	}
	ev := &er.ev
	if reason, detail := d.event(ev); reason != "" {
		er.problem(index, reason, detail)
		return nil
	}
	return er.emit(ev, raw, index, docID, docIndex)
}

// emit hands a decoded document to the callback.
func (er *eventReader) emit(ev *Event, raw []byte, index int, docID, docIndex string) error {
	ev.File, ev.Line, ev.Index, ev.DocID, ev.DocIndex, ev.Raw = er.name, er.line, index, docID, docIndex, raw
	er.stats.Events++
	if er.n++; er.n%256 == 0 {
		if err := er.ctx.Err(); err != nil {
			return err
		}
	}
	return er.fn(ev)
}

func (er *eventReader) problem(index int, reason, detail string) {
	er.stats.Malformed++
	er.stats.skip(reason)
	if len(er.stats.Samples) < er.opts.MaxSamples {
		er.stats.Samples = append(er.stats.Samples, Problem{File: er.name, Line: er.line, Index: index, Reason: reason, Detail: detail})
	}
}

// jsonTypeName names the JSON type a Go type decodes from, for messages.
func jsonTypeName(t reflect.Type) string {
	if t == nil {
		return "?"
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Bool:
		return "bool"
	case reflect.String:
		return "string"
	case reflect.Pointer:
		return jsonTypeName(t.Elem())
	}
	return "number"
}

// jsonKind names the JSON type of a value, for messages.
func jsonKind(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return "nothing"
	}
	switch b[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
}

// rawDoc is the decoding target of a document: the few fields the detector
// uses, both nested and as flattened dotted keys, plus the wrappers of an
// Elasticsearch hit and _search response. Everything else is skipped by the
// decoder without being stored.
type rawDoc struct {
	Timestamp timeField `json:"@timestamp"`
	Type      string    `json:"type"`
	Event     struct {
		Dataset string `json:"dataset"`
	} `json:"event"`
	DataStream struct {
		Dataset string `json:"dataset"`
	} `json:"data_stream"`
	Flow struct {
		ID    string    `json:"id"`
		Final boolField `json:"final"`
	} `json:"flow"`
	Source      endpoint `json:"source"`
	Destination endpoint `json:"destination"`
	Client      endpoint `json:"client"`
	Server      endpoint `json:"server"`
	Network     struct {
		Transport   string `json:"transport"`
		CommunityID string `json:"community_id"`
	} `json:"network"`
	Cloud struct {
		Instance struct {
			ID string `json:"id"`
		} `json:"instance"`
		Account struct {
			ID string `json:"id"`
		} `json:"account"`
		Region string `json:"region"`
	} `json:"cloud"`
	Host struct {
		Name string `json:"name"`
	} `json:"host"`

	// Flattened dotted keys (Beats golden files, some exporters).
	FEventDataset      string    `json:"event.dataset"`
	FDataStreamDataset string    `json:"data_stream.dataset"`
	FFlowID            string    `json:"flow.id"`
	FFlowFinal         boolField `json:"flow.final"`
	FSourceIP          ipField   `json:"source.ip"`
	FSourcePort        portField `json:"source.port"`
	FDestinationIP     ipField   `json:"destination.ip"`
	FDestinationPort   portField `json:"destination.port"`
	FClientIP          ipField   `json:"client.ip"`
	FClientPort        portField `json:"client.port"`
	FServerIP          ipField   `json:"server.ip"`
	FServerPort        portField `json:"server.port"`
	FTransport         string    `json:"network.transport"`
	FCommunityID       string    `json:"network.community_id"`
	FInstanceID        string    `json:"cloud.instance.id"`
	FAccountID         string    `json:"cloud.account.id"`
	FRegion            string    `json:"cloud.region"`
	FHostName          string    `json:"host.name"`
	// Pre-ECS Packetbeat aliases.
	AFlowID string    `json:"flow_id"`
	AFinal  boolField `json:"final"`

	// Elasticsearch hit and _search response.
	ID        string          `json:"_id"`
	Index     string          `json:"_index"`
	DocSource json.RawMessage `json:"_source"`
	Hits      *struct {
		Hits []json.RawMessage `json:"hits"`
	} `json:"hits"`
}

type endpoint struct {
	IP   ipField   `json:"ip"`
	Port portField `json:"port"`
}

// event fills ev from the decoded document. It returns a skip reason and
// detail when a field the detector needs is unusable.
func (d *rawDoc) event(ev *Event) (reason, detail string) {
	src, srcName := pickIP(&d.Source.IP, "source.ip", &d.FSourceIP, &d.Client.IP, "client.ip", &d.FClientIP)
	dst, dstName := pickIP(&d.Destination.IP, "destination.ip", &d.FDestinationIP, &d.Server.IP, "server.ip", &d.FServerIP)
	for _, f := range []struct {
		f    *ipField
		name string
	}{{src, srcName}, {dst, dstName}} {
		if f.f.bad != "" {
			return f.f.reason, f.name + ": " + f.f.bad
		}
	}
	if len(src.addrs) == 0 && len(dst.addrs) == 0 {
		return ReasonNoAddress, ""
	}
	sport := pickPort(&d.Source.Port, &d.FSourcePort, &d.Client.Port, &d.FClientPort)
	dport := pickPort(&d.Destination.Port, &d.FDestinationPort, &d.Server.Port, &d.FServerPort)
	if sport.bad != "" {
		return ReasonBadPort, "source.port: " + sport.bad
	}
	if dport.bad != "" {
		return ReasonBadPort, "destination.port: " + dport.bad
	}
	if d.Timestamp.bad != "" {
		return ReasonBadTimestamp, d.Timestamp.bad
	}
	final := pickBool(&d.Flow.Final, &d.FFlowFinal, &d.AFinal)
	if final.bad != "" {
		return ReasonWrongType, "flow.final: " + final.bad
	}
	*ev = Event{
		Timestamp:       d.Timestamp.t,
		Type:            d.Type,
		Dataset:         first(d.Event.Dataset, d.FEventDataset, d.DataStream.Dataset, d.FDataStreamDataset),
		FlowID:          first(d.Flow.ID, d.FFlowID, d.AFlowID),
		FlowFinal:       final.v,
		SourceIPs:       append(ev.SourceIPs[:0], src.addrs...),
		DestinationIPs:  append(ev.DestinationIPs[:0], dst.addrs...),
		SourcePort:      sport.v,
		DestinationPort: dport.v,
		Transport:       first(d.Network.Transport, d.FTransport),
		CommunityID:     first(d.Network.CommunityID, d.FCommunityID),
		InstanceID:      first(d.Cloud.Instance.ID, d.FInstanceID),
		AccountID:       first(d.Cloud.Account.ID, d.FAccountID),
		Region:          first(d.Cloud.Region, d.FRegion),
		HostName:        first(d.Host.Name, d.FHostName),
	}
	return "", ""
}

func first(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// pickIP returns the first present field of nested, flattened, then the
// client/server fallbacks, with its name.
func pickIP(nested *ipField, name string, flat, altNested *ipField, altName string, altFlat *ipField) (*ipField, string) {
	switch {
	case nested.set:
		return nested, name
	case flat.set:
		return flat, name
	case altNested.set:
		return altNested, altName
	case altFlat.set:
		return altFlat, altName
	}
	return nested, name
}

func pickPort(fs ...*portField) *portField {
	for _, f := range fs {
		if f.set {
			return f
		}
	}
	return fs[0]
}

func pickBool(fs ...*boolField) *boolField {
	for _, f := range fs {
		if f.set {
			return f
		}
	}
	return fs[0]
}

// The field types below never fail decoding (an error from UnmarshalJSON
// would abort the whole document); they record what was wrong instead.

// ipField is an IP address field: a string, an array of strings, or null.
type ipField struct {
	set    bool
	addrs  []netip.Addr
	bad    string
	reason string
}

func (f *ipField) UnmarshalJSON(b []byte) error {
	switch b[0] {
	case 'n':
		return nil
	case '"':
		f.set = true
		f.add(b)
	case '[':
		f.set = true
		dec := json.NewDecoder(bytes.NewReader(b))
		_, _ = dec.Token()
		for dec.More() && f.bad == "" {
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil || len(v) == 0 {
				f.bad, f.reason = "bad array", ReasonWrongType
				break
			}
			if v[0] == 'n' {
				continue
			}
			f.add(v)
		}
	default:
		f.set = true
		f.bad, f.reason = "got a JSON "+jsonKind(b)+", want string or array", ReasonWrongType
	}
	return nil
}

func (f *ipField) add(b []byte) {
	s, ok := jsonString(b)
	if !ok {
		f.bad, f.reason = "got a JSON "+jsonKind(b)+", want string", ReasonWrongType
		return
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		f.bad, f.reason = strconv.Quote(s), ReasonBadIP
		return
	}
	f.addrs = append(f.addrs, a.WithZone("").Unmap())
}

// jsonString decodes a JSON string literal, fast when it has no escapes.
func jsonString(b []byte) (string, bool) {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return "", false
	}
	if bytes.IndexByte(b, '\\') < 0 {
		return string(b[1 : len(b)-1]), true
	}
	var s string
	if json.Unmarshal(b, &s) != nil {
		return "", false
	}
	return s, true
}

// portField is a port: a number or a numeric string.
type portField struct {
	set bool
	v   uint16
	bad string
}

func (f *portField) UnmarshalJSON(b []byte) error {
	if b[0] == 'n' {
		return nil
	}
	f.set = true
	s := string(b)
	if b[0] == '"' {
		var ok bool
		if s, ok = jsonString(b); !ok {
			f.bad = "bad string"
			return nil
		}
	}
	v, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		f.bad = fmt.Sprintf("%.40s is not a port number", string(b))
		return nil
	}
	f.v = uint16(v)
	return nil
}

// boolField is a boolean: true/false or "true"/"false".
type boolField struct {
	set bool
	v   bool
	bad string
}

func (f *boolField) UnmarshalJSON(b []byte) error {
	f.set = true
	switch string(b) {
	case "true", `"true"`:
		f.v = true
	case "false", `"false"`:
	case "null":
		f.set = false
	default:
		f.bad = "got a JSON " + jsonKind(b) + ", want bool"
	}
	return nil
}

// timeField is @timestamp: an RFC 3339 string or epoch milliseconds.
type timeField struct {
	t   time.Time
	bad string
}

func (f *timeField) UnmarshalJSON(b []byte) error {
	switch {
	case b[0] == 'n':
	case b[0] == '"':
		s, ok := jsonString(b)
		if !ok {
			f.bad = "bad string"
			return nil
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			f.bad = fmt.Sprintf("%.60q is not RFC 3339", s)
			return nil
		}
		f.t = t
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		ms, err := strconv.ParseFloat(string(b), 64)
		if err != nil {
			f.bad = "bad number"
			return nil
		}
		f.t = time.UnixMilli(int64(ms)).UTC()
	default:
		f.bad = "got a JSON " + jsonKind(b) + ", want string"
	}
	return nil
}
