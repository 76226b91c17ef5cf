package detector

import (
	"net/netip"
	"strconv"

	"github.com/valyala/fastjson"
)

// EventDecoder decodes Packetbeat documents like DecodeEvent, with the same
// results, skip reasons and details, but in one pass over a document
// parsed with github.com/valyala/fastjson instead of encoding/json's
// validate-then-reflect two passes: the search path (internal/search) reads
// whole pages of hits this way. One difference: keys match exactly, where
// encoding/json also accepts other letter cases ("Source" for "source").
// An EventDecoder is not safe for concurrent use; reuse one per goroutine.
type EventDecoder struct {
	p   fastjson.Parser
	doc fastDoc
}

// Decode parses raw and decodes it into ev; ev.Raw is set to raw.
func (d *EventDecoder) Decode(raw []byte, ev *Event) (reason, detail string) {
	if len(raw) == 0 || raw[0] != '{' {
		return ReasonNotObject, "document is " + jsonKind(raw)
	}
	v, err := d.p.ParseBytes(raw)
	if err != nil {
		return ReasonMalformedJSON, err.Error()
	}
	if reason, detail = d.DecodeValue(v, ev); reason == "" {
		ev.Raw = raw
	}
	return reason, detail
}

// DecodeValue decodes a document already parsed with fastjson (for example
// the _source of a hit in a parsed search response) into ev. ev.Raw is set
// to nil: v.MarshalTo gives the document's JSON when it is needed.
func (d *EventDecoder) DecodeValue(v *fastjson.Value, ev *Event) (reason, detail string) {
	if v.Type() != fastjson.TypeObject {
		return ReasonNotObject, "document is " + fastKind(v)
	}
	f := &d.doc
	f.reset()
	o, _ := v.Object()
	o.Visit(f.visitTop)
	if f.wrongType != "" {
		return ReasonWrongType, f.wrongType
	}
	reason, detail = f.d.event(ev)
	ev.Raw = nil
	return reason, detail
}

// fastDoc fills a rawDoc from a fastjson value, so that the rules of
// rawDoc.event apply unchanged. Leaf values (addresses, ports, booleans,
// times) go through the same UnmarshalJSON methods as with encoding/json.
type fastDoc struct {
	d         rawDoc
	wrongType string // the first wrong-typed field, as DecodeEvent words it
	buf       []byte
	ep        *endpoint // the endpoint visitEndpoint fills
	// intern holds the few distinct values of low-cardinality fields
	// (dataset, type, transport, region, account, instance, host), so that
	// decoding them allocates nothing after the first time.
	intern map[string]string
	// ips holds parsed addresses: a fleet's own addresses and the services
	// it talks to repeat.
	ips map[string]netip.Addr

	// Method values, made once: a closure or method value made per call
	// would be allocated per document.
	visitTop, visitEvent, visitDataStream, visitFlow, visitEndpoint, visitNetwork, visitCloud,
	visitInstance, visitAccount, visitHost func(key []byte, v *fastjson.Value)
}

// maxInterned bounds fastDoc.intern.
const maxInterned = 4096

func (f *fastDoc) ipFields() [8]*ipField {
	d := &f.d
	return [8]*ipField{&d.Source.IP, &d.Destination.IP, &d.Client.IP, &d.Server.IP, &d.FSourceIP, &d.FDestinationIP, &d.FClientIP, &d.FServerIP}
}

func (f *fastDoc) reset() {
	// Keep the address slices' arrays from one document to the next.
	var keep [8][]netip.Addr
	for i, p := range f.ipFields() {
		keep[i] = p.addrs[:0]
	}
	f.d = rawDoc{}
	for i, p := range f.ipFields() {
		p.addrs = keep[i]
	}
	f.wrongType = ""
	if f.visitTop == nil {
		f.visitTop, f.visitEvent, f.visitDataStream, f.visitFlow = f.top, f.event, f.dataStream, f.flow
		f.visitEndpoint, f.visitNetwork, f.visitCloud = f.endpointKey, f.network, f.cloud
		f.visitInstance, f.visitAccount, f.visitHost = f.instance, f.account, f.host
		f.intern = map[string]string{}
		f.ips = map[string]netip.Addr{}
	}
}

// maxIPs bounds fastDoc.ips.
const maxIPs = 1 << 16

// ip decodes an address field: a string is looked up in (or added to) the
// parsed addresses, with ipField.add's rules; other kinds go through
// ipField.UnmarshalJSON.
func (f *fastDoc) ip(field *ipField, v *fastjson.Value) {
	if v.Type() != fastjson.TypeString {
		f.leaf(field, v)
		return
	}
	field.set = true
	b := v.GetStringBytes()
	if a, ok := f.ips[string(b)]; ok {
		field.addrs = append(field.addrs, a)
		return
	}
	s := string(b)
	a, err := netip.ParseAddr(s)
	if err != nil {
		field.bad, field.reason = strconv.Quote(s), ReasonBadIP
		return
	}
	a = a.WithZone("").Unmap()
	if len(f.ips) < maxIPs {
		f.ips[s] = a
	}
	field.addrs = append(field.addrs, a)
}

func fastKind(v *fastjson.Value) string {
	switch v.Type() {
	case fastjson.TypeObject:
		return "object"
	case fastjson.TypeArray:
		return "array"
	case fastjson.TypeString:
		return "string"
	case fastjson.TypeNumber:
		return "number"
	case fastjson.TypeTrue, fastjson.TypeFalse:
		return "bool"
	}
	return "null"
}

func (f *fastDoc) typeError(path string, v *fastjson.Value, want string) {
	if f.wrongType == "" {
		f.wrongType = path + " is a JSON " + fastKind(v) + ", want " + want
	}
}

// str stores a string field; null leaves it empty.
func (f *fastDoc) str(dst *string, path string, v *fastjson.Value) {
	switch v.Type() {
	case fastjson.TypeString:
		*dst = string(v.GetStringBytes())
	case fastjson.TypeNull:
	default:
		f.typeError(path, v, "string")
	}
}

// istr is str for a field with few distinct values: they are interned.
func (f *fastDoc) istr(dst *string, path string, v *fastjson.Value) {
	if v.Type() != fastjson.TypeString {
		f.str(dst, path, v)
		return
	}
	b := v.GetStringBytes()
	if s, ok := f.intern[string(b)]; ok {
		*dst = s
		return
	}
	*dst = string(b)
	if len(f.intern) < maxInterned {
		f.intern[*dst] = *dst
	}
}

// object visits an object field; null is skipped.
func (f *fastDoc) object(path string, v *fastjson.Value, visit func(key []byte, v *fastjson.Value)) {
	switch v.Type() {
	case fastjson.TypeObject:
		o, _ := v.Object()
		o.Visit(visit)
	case fastjson.TypeNull:
	default:
		f.typeError(path, v, "object")
	}
}

// leaf hands the value's JSON text to a field's UnmarshalJSON.
func (f *fastDoc) leaf(u interface{ UnmarshalJSON([]byte) error }, v *fastjson.Value) {
	f.buf = v.MarshalTo(f.buf[:0])
	_ = u.UnmarshalJSON(f.buf)
}

func (f *fastDoc) endpointKey(k []byte, v *fastjson.Value) {
	switch string(k) {
	case "ip":
		f.ip(&f.ep.IP, v)
	case "port":
		f.leaf(&f.ep.Port, v)
	}
}

func (f *fastDoc) endpoint(e *endpoint, path string, v *fastjson.Value) {
	f.ep = e
	f.object(path, v, f.visitEndpoint)
}

func (f *fastDoc) event(k []byte, v *fastjson.Value) {
	if string(k) == "dataset" {
		f.istr(&f.d.Event.Dataset, "event.dataset", v)
	}
}

func (f *fastDoc) dataStream(k []byte, v *fastjson.Value) {
	if string(k) == "dataset" {
		f.istr(&f.d.DataStream.Dataset, "data_stream.dataset", v)
	}
}

func (f *fastDoc) flow(k []byte, v *fastjson.Value) {
	switch string(k) {
	case "id":
		f.str(&f.d.Flow.ID, "flow.id", v)
	case "final":
		f.leaf(&f.d.Flow.Final, v)
	}
}

func (f *fastDoc) network(k []byte, v *fastjson.Value) {
	switch string(k) {
	case "transport":
		f.istr(&f.d.Network.Transport, "network.transport", v)
	case "community_id":
		f.str(&f.d.Network.CommunityID, "network.community_id", v)
	}
}

func (f *fastDoc) cloud(k []byte, v *fastjson.Value) {
	switch string(k) {
	case "instance":
		f.object("cloud.instance", v, f.visitInstance)
	case "account":
		f.object("cloud.account", v, f.visitAccount)
	case "region":
		f.istr(&f.d.Cloud.Region, "cloud.region", v)
	}
}

func (f *fastDoc) instance(k []byte, v *fastjson.Value) {
	if string(k) == "id" {
		f.istr(&f.d.Cloud.Instance.ID, "cloud.instance.id", v)
	}
}

func (f *fastDoc) account(k []byte, v *fastjson.Value) {
	if string(k) == "id" {
		f.istr(&f.d.Cloud.Account.ID, "cloud.account.id", v)
	}
}

func (f *fastDoc) host(k []byte, v *fastjson.Value) {
	if string(k) == "name" {
		f.istr(&f.d.Host.Name, "host.name", v)
	}
}

func (f *fastDoc) top(k []byte, v *fastjson.Value) {
	d := &f.d
	switch string(k) {
	case "@timestamp":
		f.leaf(&d.Timestamp, v)
	case "type":
		f.istr(&d.Type, "type", v)
	case "event":
		f.object("event", v, f.visitEvent)
	case "data_stream":
		f.object("data_stream", v, f.visitDataStream)
	case "flow":
		f.object("flow", v, f.visitFlow)
	case "source":
		f.endpoint(&d.Source, "source", v)
	case "destination":
		f.endpoint(&d.Destination, "destination", v)
	case "client":
		f.endpoint(&d.Client, "client", v)
	case "server":
		f.endpoint(&d.Server, "server", v)
	case "network":
		f.object("network", v, f.visitNetwork)
	case "cloud":
		f.object("cloud", v, f.visitCloud)
	case "host":
		f.object("host", v, f.visitHost)

	// Flattened dotted keys and pre-ECS aliases.
	case "event.dataset":
		f.istr(&d.FEventDataset, "event.dataset", v)
	case "data_stream.dataset":
		f.istr(&d.FDataStreamDataset, "data_stream.dataset", v)
	case "flow.id":
		f.str(&d.FFlowID, "flow.id", v)
	case "flow.final":
		f.leaf(&d.FFlowFinal, v)
	case "source.ip":
		f.ip(&d.FSourceIP, v)
	case "source.port":
		f.leaf(&d.FSourcePort, v)
	case "destination.ip":
		f.ip(&d.FDestinationIP, v)
	case "destination.port":
		f.leaf(&d.FDestinationPort, v)
	case "client.ip":
		f.ip(&d.FClientIP, v)
	case "client.port":
		f.leaf(&d.FClientPort, v)
	case "server.ip":
		f.ip(&d.FServerIP, v)
	case "server.port":
		f.leaf(&d.FServerPort, v)
	case "network.transport":
		f.istr(&d.FTransport, "network.transport", v)
	case "network.community_id":
		f.str(&d.FCommunityID, "network.community_id", v)
	case "cloud.instance.id":
		f.istr(&d.FInstanceID, "cloud.instance.id", v)
	case "cloud.account.id":
		f.istr(&d.FAccountID, "cloud.account.id", v)
	case "cloud.region":
		f.istr(&d.FRegion, "cloud.region", v)
	case "host.name":
		f.istr(&d.FHostName, "host.name", v)
	case "flow_id":
		f.str(&d.AFlowID, "flow_id", v)
	case "final":
		f.leaf(&d.AFinal, v)
	}
}
