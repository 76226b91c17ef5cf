package detector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Direction says which side of a connection is on a blocklist.
type Direction string

// Directions of a Hit.
const (
	// Outbound: the destination is listed — the instance talked to a bad address.
	Outbound Direction = "outbound"
	// Inbound: the source is listed — a bad address connected to the instance.
	Inbound Direction = "inbound"
)

// DefaultMaxRawBytes is how much of the document a Hit keeps.
const DefaultMaxRawBytes = 4 << 10

// Hit is one listed address seen in one event.
type Hit struct {
	// InstanceID, AccountID and Region identify the EC2 instance that ran
	// Packetbeat (cloud.*); empty when add_cloud_metadata was off.
	InstanceID string `json:"instanceID,omitempty"`
	AccountID  string `json:"accountID,omitempty"`
	Region     string `json:"region,omitempty"`
	HostName   string `json:"hostName,omitempty"`

	Direction Direction `json:"direction"`
	// BadIP is the listed address: the destination when Outbound, the
	// source when Inbound.
	BadIP           netip.Addr `json:"badIP"`
	SourceIP        netip.Addr `json:"sourceIP"`
	DestinationIP   netip.Addr `json:"destinationIP"`
	SourcePort      uint16     `json:"sourcePort,omitempty"`
	DestinationPort uint16     `json:"destinationPort,omitempty"`
	Transport       string     `json:"transport,omitempty"`

	// Matches are the entries covering BadIP: one per list (its most
	// specific entry), the most specific first.
	Matches []Match `json:"matches"`

	Time        time.Time `json:"time"`
	Type        string    `json:"type,omitempty"`
	Dataset     string    `json:"dataset,omitempty"`
	FlowID      string    `json:"flowID,omitempty"`
	CommunityID string    `json:"communityID,omitempty"`

	// File, Line and Index locate the document; DocID and DocIndex are its
	// Elasticsearch _id and _index when known. Ref is Event.Ref.
	File     string `json:"file,omitempty"`
	Line     int    `json:"line,omitempty"`
	Index    int    `json:"index,omitempty"`
	DocID    string `json:"docID,omitempty"`
	DocIndex string `json:"docIndex,omitempty"`
	Ref      string `json:"ref"`
	// Raw is the document's JSON, cut to Options.MaxRawBytes.
	Raw          string `json:"raw,omitempty"`
	RawTruncated bool   `json:"rawTruncated,omitempty"`
}

// Best returns the most specific match.
func (h *Hit) Best() Match { return h.Matches[0] }

// Lists returns the names of the lists that matched, most specific first.
func (h *Hit) Lists() []string {
	names := make([]string, len(h.Matches))
	for i, m := range h.Matches {
		names[i] = m.List
	}
	return names
}

// Reason describes the hit in one sentence, e.g. "i-0abc (ip-10-0-1-10)
// outbound tcp 10.0.1.10:51544 -> 1.19.6.4:443: 1.19.6.4 is on
// spamhaus_drop.netset (1.19.0.0/16) and 4 more lists".
func (h *Hit) Reason() string {
	var b strings.Builder
	who := first(h.InstanceID, h.HostName, "unknown host")
	if h.InstanceID != "" && h.HostName != "" {
		who += " (" + h.HostName + ")"
	}
	fmt.Fprintf(&b, "%s %s %s %s -> %s: %s is on %s", who, h.Direction, first(h.Transport, "ip"),
		hostPort(h.SourceIP, h.SourcePort), hostPort(h.DestinationIP, h.DestinationPort), h.BadIP, h.Best().List)
	best := h.Best()
	fmt.Fprintf(&b, " (%s", best.Text)
	if best.Label != "" {
		fmt.Fprintf(&b, " %s", best.Label)
	}
	b.WriteString(")")
	if n := len(h.Matches) - 1; n == 1 {
		b.WriteString(" and 1 more list")
	} else if n > 1 {
		fmt.Fprintf(&b, " and %d more lists", n)
	}
	return b.String()
}

func hostPort(a netip.Addr, port uint16) string {
	if !a.IsValid() {
		return "?"
	}
	if port == 0 {
		return a.String()
	}
	return netip.AddrPortFrom(a, port).String()
}

// Stats counts what a scan read and found.
type Stats struct {
	// Lines is the number of input lines read.
	Lines int `json:"lines"`
	// Events is the number of documents read and decoded.
	Events int `json:"events"`
	// Malformed is the number of documents or lines that could not be used.
	Malformed int `json:"malformed"`
	// Considered is the number of events checked against the matcher: final
	// flow records, or every event with Options.AllEvents.
	Considered int `json:"considered"`
	// Matched is the number of considered events with at least one hit.
	Matched int `json:"matched"`
	// Hits is the number of hits.
	Hits int `json:"hits"`
	// Allowlisted counts addresses not looked up because the allowlist
	// covers them.
	Allowlisted int `json:"allowlisted"`
	// Skipped counts documents not considered, by reason (the Reason
	// constants): every malformed document, and events that are not final
	// flow records.
	Skipped map[string]int `json:"skipped,omitempty"`
	// Samples are the first malformed documents, with file:line.
	Samples []Problem `json:"samples,omitempty"`
}

func (s *Stats) skip(reason string) {
	if s.Skipped == nil {
		s.Skipped = make(map[string]int)
	}
	s.Skipped[reason]++
}

// Options tunes a Detector.
type Options struct {
	ReadOptions
	// AllEvents checks every event, not only final flow records:
	// intermediate flow reports and transactions (dns, http, tls, …) too.
	// A flow then hits once per report.
	AllEvents bool
	// MaxRawBytes bounds Hit.Raw. Default DefaultMaxRawBytes.
	MaxRawBytes int
}

// Detector checks Packetbeat events against the current matcher.
type Detector struct {
	matchers *MatcherHolder
	opts     Options
}

// NewDetector returns a detector that uses whatever matcher matchers holds
// when it looks at an event, so lists can be reloaded during a scan.
func NewDetector(matchers *MatcherHolder, opts Options) *Detector {
	opts.ReadOptions = opts.withDefaults()
	if opts.MaxRawBytes <= 0 {
		opts.MaxRawBytes = DefaultMaxRawBytes
	}
	return &Detector{matchers: matchers, opts: opts}
}

// ErrNoMatcher is returned when the detector's holder has no matcher yet.
var ErrNoMatcher = errors.New("detector: no matcher loaded")

// Scan reads the Packetbeat documents of r (named name in references; see
// ReadEvents for the accepted shapes) and returns the hits in input order.
// For each final flow record (every event with Options.AllEvents) it looks
// up destination.ip (Outbound) and source.ip (Inbound); allowlisted
// addresses are skipped.
func (d *Detector) Scan(ctx context.Context, r io.Reader, name string) ([]Hit, Stats, error) {
	var hits []Hit
	st, err := d.ScanFunc(ctx, r, name, func(h Hit) error {
		hits = append(hits, h)
		return nil
	})
	return hits, st, err
}

// ScanFunc is Scan calling fn for each hit as it is found. An error from
// fn stops the scan and is returned.
func (d *Detector) ScanFunc(ctx context.Context, r io.Reader, name string, fn func(Hit) error) (Stats, error) {
	if d.matchers == nil || d.matchers.Load() == nil {
		return Stats{}, ErrNoMatcher
	}
	var checked Stats
	st, err := ReadEvents(ctx, r, name, d.opts.ReadOptions, func(ev *Event) error {
		m := d.matchers.Load() // once per event: a reload applies from the next event on
		if m == nil {
			return ErrNoMatcher
		}
		return d.check(m, ev, &checked, fn)
	})
	st.Considered, st.Matched, st.Hits, st.Allowlisted = checked.Considered, checked.Matched, checked.Hits, checked.Allowlisted
	for reason, n := range checked.Skipped {
		if st.Skipped == nil {
			st.Skipped = make(map[string]int)
		}
		st.Skipped[reason] += n
	}
	return st, err
}

// Check returns the hits of one event (read elsewhere, e.g. from an
// Elasticsearch query), applying the same rules as Scan.
func (d *Detector) Check(ev *Event) ([]Hit, error) {
	m := d.matchers.Load()
	if m == nil {
		return nil, ErrNoMatcher
	}
	var hits []Hit
	var st Stats
	err := d.check(m, ev, &st, func(h Hit) error {
		hits = append(hits, h)
		return nil
	})
	return hits, err
}

func (d *Detector) check(m *Matcher, ev *Event, st *Stats, fn func(Hit) error) error {
	if !d.opts.AllEvents && !ev.IsFinalFlow() {
		if ev.IsFlow() {
			st.skip(ReasonNotFinal)
		} else {
			st.skip(ReasonNotFlow)
		}
		return nil
	}
	st.Considered++
	matched := false
	var buf [4]Match // lookups append here: no allocation unless a hit is kept
	for _, side := range [...]struct {
		addrs []netip.Addr
		dir   Direction
	}{{ev.DestinationIPs, Outbound}, {ev.SourceIPs, Inbound}} {
		for i, a := range side.addrs {
			if slices.Contains(side.addrs[:i], a) {
				continue
			}
			matches, allowed := m.AppendMatches(buf[:0], a)
			if allowed {
				st.Allowlisted++
				continue
			}
			if len(matches) == 0 {
				continue
			}
			matched = true
			st.Hits++
			if err := fn(d.hit(ev, a, side.dir, slices.Clone(matches))); err != nil {
				return err
			}
		}
	}
	if matched {
		st.Matched++
	}
	return nil
}

func (d *Detector) hit(ev *Event, bad netip.Addr, dir Direction, matches []Match) Hit {
	h := Hit{
		InstanceID: ev.InstanceID, AccountID: ev.AccountID, Region: ev.Region, HostName: ev.HostName,
		Direction: dir, BadIP: bad,
		SourcePort: ev.SourcePort, DestinationPort: ev.DestinationPort, Transport: ev.Transport,
		Matches: matches,
		Time:    ev.Timestamp, Type: ev.Type, Dataset: ev.Dataset, FlowID: ev.FlowID, CommunityID: ev.CommunityID,
		File: ev.File, Line: ev.Line, Index: ev.Index, DocID: ev.DocID, DocIndex: ev.DocIndex, Ref: ev.Ref(),
	}
	if dir == Outbound {
		h.DestinationIP = bad
		if len(ev.SourceIPs) > 0 {
			h.SourceIP = ev.SourceIPs[0]
		}
	} else {
		h.SourceIP = bad
		if len(ev.DestinationIPs) > 0 {
			h.DestinationIP = ev.DestinationIPs[0]
		}
	}
	raw := ev.Raw
	if len(raw) > d.opts.MaxRawBytes {
		n := d.opts.MaxRawBytes
		for n > 0 && !utf8.RuneStart(raw[n]) {
			n--
		}
		raw, h.RawTruncated = raw[:n], true
	}
	h.Raw = string(raw)
	return h
}
