package detector

import (
	"encoding/json"
	"errors"
	"fmt"
)

// DecodeEvent decodes one Packetbeat document — the _source of a search hit,
// nested or with flattened dotted keys — into ev, with the rules of
// ReadEvents. It returns a skip reason (one of the Reason constants) and
// its detail when the document cannot be used; ev is then unspecified.
// ev.Raw is set to raw; the caller fills File/Line/DocID/DocIndex. ev's
// address slices are reused, so decoding a page into one Event allocates
// little.
func DecodeEvent(raw []byte, ev *Event) (reason, detail string) {
	if len(raw) == 0 || raw[0] != '{' {
		return ReasonNotObject, "document is " + jsonKind(raw)
	}
	var d rawDoc
	if err := json.Unmarshal(raw, &d); err != nil {
		var ute *json.UnmarshalTypeError
		if !errors.As(err, &ute) {
			return ReasonMalformedJSON, err.Error()
		}
		return ReasonWrongType, fmt.Sprintf("%s is a JSON %s, want %s", ute.Field, ute.Value, jsonTypeName(ute.Type))
	}
	if reason, detail := d.event(ev); reason != "" {
		return reason, detail
	}
	ev.Raw = raw
	return "", ""
}

// SkipReason records a document that could not be used in st (Malformed,
// Skipped by reason, and a sample up to max), as ReadEvents does.
func (s *Stats) SkipReason(p Problem, max int) {
	s.Malformed++
	s.skip(p.Reason)
	if len(s.Samples) < max {
		s.Samples = append(s.Samples, p)
	}
}

// CheckFunc is Check calling fn for each hit and adding to st what Scan
// counts for the event: Considered, Matched, Hits, Allowlisted, and Skipped
// for an event that is not a final flow record (every event with
// Options.AllEvents is considered). It uses the matcher the holder has now.
func (d *Detector) CheckFunc(ev *Event, st *Stats, fn func(Hit) error) error {
	m := d.matchers.Load()
	if m == nil {
		return ErrNoMatcher
	}
	return d.check(m, ev, st, fn)
}

// AllEvents reports whether the detector checks every event rather than
// only final flow records.
func (d *Detector) AllEvents() bool { return d.opts.AllEvents }
