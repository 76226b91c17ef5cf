package detector

import (
	"net/netip"
	"slices"
	"sync/atomic"

	"github.com/gaissmai/bart"
)

// DefaultAllowlist returns the networks that never match a blocklist: RFC 1918,
// loopback, link-local, IPv6 unique-local, "this network" 0.0.0.0/8 and
// multicast. FireHOL level1 lists the RFC 1918 ranges and 0.0.0.0/8 as bogons,
// so without this every internal EC2 address would match.
func DefaultAllowlist() []netip.Prefix {
	return []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),     // RFC 1918
		netip.MustParsePrefix("172.16.0.0/12"),  // RFC 1918
		netip.MustParsePrefix("192.168.0.0/16"), // RFC 1918
		netip.MustParsePrefix("127.0.0.0/8"),    // loopback
		netip.MustParsePrefix("::1/128"),        // loopback
		netip.MustParsePrefix("169.254.0.0/16"), // link-local (and the EC2 metadata service)
		netip.MustParsePrefix("fe80::/10"),      // link-local
		netip.MustParsePrefix("fc00::/7"),       // unique-local
		netip.MustParsePrefix("0.0.0.0/8"),      // "this network"
		netip.MustParsePrefix("224.0.0.0/4"),    // multicast
		netip.MustParsePrefix("ff00::/8"),       // multicast
	}
}

// MatcherConfig configures NewMatcher.
type MatcherConfig struct {
	// Allow adds networks that never match, e.g. your VPC CIDRs, on top of
	// DefaultAllowlist.
	Allow []netip.Prefix
	// NoDefaultAllow leaves DefaultAllowlist out (Allow still applies).
	NoDefaultAllow bool
}

// Match is a blocklist entry that covers an address.
type Match struct {
	// List is the name of the list (its file name).
	List string `json:"list"`
	Entry
}

// ListInfo describes a list loaded into a Matcher.
type ListInfo struct {
	Name    string `json:"name"`
	Format  Format `json:"format"`
	Entries int    `json:"entries"`
	// Duplicates counts entries whose prefix the list already had.
	Duplicates int `json:"duplicates"`
}

// ref points at one entry of one list of a Matcher.
type ref struct{ list, entry int32 }

// Matcher answers "which blocklists cover this address?" with a
// longest-prefix-match table (github.com/gaissmai/bart) over IPv4 and IPv6.
// It is immutable once built and safe for concurrent use; to reload lists,
// build a new one and Store it in a MatcherHolder.
type Matcher struct {
	lists []*List
	info  []ListInfo
	// table maps every listed prefix to the entries covering it: one per
	// list, that list's most specific entry, most specific first. The
	// prefixes covering an address form a chain, so the value at the
	// longest match already names every list that covers the address.
	table bart.Table[[]ref]
	allow bart.Lite
}

// NewMatcher builds a Matcher from lists. The lists must not be changed
// afterwards: matches refer to their entries.
func NewMatcher(lists []*List, cfg MatcherConfig) *Matcher {
	m := &Matcher{lists: lists, info: make([]ListInfo, len(lists))}
	if !cfg.NoDefaultAllow {
		for _, p := range DefaultAllowlist() {
			m.allow.Insert(p)
		}
	}
	for _, p := range cfg.Allow {
		m.allow.Insert(unmapPrefix(p))
	}

	// own: the entries listed at exactly each prefix, at most one per list.
	var own bart.Table[[]ref]
	for li, l := range lists {
		m.info[li] = ListInfo{Name: l.Name, Format: l.Format, Entries: len(l.Entries)}
		r := ref{list: int32(li)}
		for ei := range l.Entries {
			r.entry = int32(ei)
			pfx := l.Entries[ei].Prefix
			refs, _ := own.Get(pfx)
			if n := len(refs); n > 0 && refs[n-1].list == r.list {
				m.info[li].Duplicates++ // lists are added in order: a duplicate is the last ref
				continue
			}
			own.Insert(pfx, append(refs, r))
		}
	}

	// Resolve each prefix to every list covering it: walk its supernets
	// (most specific first) and keep the first entry of each list.
	seen := make([]bool, len(lists))
	for pfx, refs := range own.All() {
		all, cloned := refs, false // share own's slice while no supernet adds a list
		for spfx, srefs := range own.Supernets(pfx) {
			if spfx == pfx {
				continue
			}
			if !cloned {
				cloned = true
				all = slices.Clone(refs)
				for _, r := range refs {
					seen[r.list] = true
				}
			}
			for _, r := range srefs {
				if !seen[r.list] {
					seen[r.list] = true
					all = append(all, r)
				}
			}
		}
		if cloned {
			for _, r := range all {
				seen[r.list] = false
			}
			all = slices.Clip(all)
		}
		m.table.Insert(pfx, all)
	}
	return m
}

// unmapPrefix turns an IPv4-mapped IPv6 prefix (::ffff:10.0.0.0/104) into IPv4.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96).Masked()
	}
	return p.Masked()
}

// Allowed reports whether ip is covered by the allowlist.
func (m *Matcher) Allowed(ip netip.Addr) bool {
	return m.allow.Contains(ip.Unmap())
}

// Blocked reports whether ip is on a blocklist and not allowlisted. It does
// not allocate.
func (m *Matcher) Blocked(ip netip.Addr) bool {
	ip = ip.Unmap()
	return !m.allow.Contains(ip) && m.table.Contains(ip)
}

// Lookup returns the blocklist entries covering ip: one per list (that
// list's most specific entry), the most specific first, lists in the order
// given to NewMatcher on ties. An allowlisted address returns (nil, true)
// whatever the lists say: the allowlist always wins. Lookup allocates only
// when there is a match; AppendMatches does not allocate at all.
func (m *Matcher) Lookup(ip netip.Addr) (matches []Match, allowed bool) {
	return m.AppendMatches(nil, ip)
}

// AppendMatches is Lookup appending to dst: with a dst reused across calls
// (dst[:0]) a lookup allocates nothing, hit or miss. The detector looks up
// every address this way and copies the matches only for a hit.
func (m *Matcher) AppendMatches(dst []Match, ip netip.Addr) (matches []Match, allowed bool) {
	ip = ip.Unmap()
	if m.allow.Contains(ip) {
		return dst, true
	}
	refs, ok := m.table.Lookup(ip)
	if !ok {
		return dst, false
	}
	dst = slices.Grow(dst, len(refs))
	for _, r := range refs {
		l := m.lists[r.list]
		dst = append(dst, Match{List: l.Name, Entry: l.Entries[r.entry]})
	}
	return dst, false
}

// Lists describes the lists the matcher was built from, in order.
func (m *Matcher) Lists() []ListInfo { return slices.Clone(m.info) }

// Prefixes returns the number of distinct IPv4 and IPv6 prefixes in the matcher.
func (m *Matcher) Prefixes() (v4, v6 int) { return m.table.Size4(), m.table.Size6() }

// MatcherHolder holds the current Matcher. Readers Load it once per event;
// a reload Stores a new one. The zero value holds nil.
type MatcherHolder struct {
	p atomic.Pointer[Matcher]
}

// NewMatcherHolder returns a holder holding m.
func NewMatcherHolder(m *Matcher) *MatcherHolder {
	h := &MatcherHolder{}
	h.p.Store(m)
	return h
}

// Load returns the current matcher, or nil before the first Store.
func (h *MatcherHolder) Load() *Matcher { return h.p.Load() }

// Store replaces the current matcher; readers see it on their next Load.
func (h *MatcherHolder) Store(m *Matcher) { h.p.Store(m) }

// Swap replaces the current matcher and returns the previous one.
func (h *MatcherHolder) Swap(m *Matcher) *Matcher { return h.p.Swap(m) }
