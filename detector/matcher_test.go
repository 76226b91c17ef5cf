package detector

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func loadCorpus(t testing.TB) []*LoadResult {
	t.Helper()
	results, err := LoadBlocklistDir(blocklistDir)
	require.NoError(t, err)
	return results
}

func corpusMatcher(t testing.TB, cfg MatcherConfig) *Matcher {
	t.Helper()
	return NewMatcher(ListsOf(loadCorpus(t)), cfg)
}

func listNames(ms []Match) []string {
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.List
	}
	return names
}

func TestAllowlistWinsOverFireHOLLevel1(t *testing.T) {
	res, err := LoadBlocklistFile(blocklistDir + "/firehol/firehol_level1.netset")
	require.NoError(t, err)
	lists := []*List{&res.List}
	raw := NewMatcher(lists, MatcherConfig{NoDefaultAllow: true})
	m := NewMatcher(lists, MatcherConfig{Allow: []netip.Prefix{netip.MustParsePrefix("1.10.16.0/24")}})

	internal := []string{"10.0.1.10", "172.31.98.49", "192.168.1.1", "127.0.0.1", "0.1.2.3", "224.0.0.251", "::ffff:10.0.0.2"}
	for _, s := range internal {
		ip := netip.MustParseAddr(s)
		matches, allowed := raw.Lookup(ip)
		require.False(t, allowed, s)
		require.NotEmpty(t, matches, "firehol_level1 lists %s (bogon); without the allowlist it matches", s)
		require.True(t, raw.Blocked(ip), s)

		matches, allowed = m.Lookup(ip)
		require.True(t, allowed, s)
		require.Empty(t, matches, s)
		require.False(t, m.Blocked(ip), s)
		require.True(t, m.Allowed(ip), s)
	}

	// User-added allow prefix (a VPC range) beats the more general 1.10.16.0/20.
	matches, allowed := m.Lookup(netip.MustParseAddr("1.10.16.7"))
	require.True(t, allowed)
	require.Empty(t, matches)
	matches, allowed = m.Lookup(netip.MustParseAddr("1.10.17.7"))
	require.False(t, allowed)
	require.Len(t, matches, 1)
	require.Equal(t, "firehol_level1.netset", matches[0].List)
	require.Equal(t, "1.10.16.0/20", matches[0].Text)

	// 240.0.0.0/4 (reserved, not multicast) stays listed via 224.0.0.0/3.
	require.True(t, m.Blocked(netip.MustParseAddr("240.1.2.3")))
	// An unlisted public address.
	require.False(t, m.Blocked(netip.MustParseAddr("9.9.9.9")))
}

func TestIPv6Match(t *testing.T) {
	m := corpusMatcher(t, MatcherConfig{})
	v4, v6 := m.Prefixes()
	require.Equal(t, 78, v6, "the 78 DROPv6 networks are the only IPv6 entries")
	require.Positive(t, v4)

	matches, allowed := m.Lookup(netip.MustParseAddr("2001:678:6c4:1234::1"))
	require.False(t, allowed)
	require.Equal(t, []Match{{List: "spamhaus_dropv6_2025-01-15.txt", Entry: Entry{
		Prefix: netip.MustParsePrefix("2001:678:6c4::/48"), Text: "2001:678:6c4::/48", Label: "SBL626637", Line: 5,
	}}}, matches)
	// Last line of the file, a /28.
	matches, _ = m.Lookup(netip.MustParseAddr("2c0f:6cf:ffff::1"))
	require.Len(t, matches, 1)
	require.Equal(t, "SBL668932", matches[0].Label)
	// Just outside it.
	matches, _ = m.Lookup(netip.MustParseAddr("2c0f:6d0::1"))
	require.Empty(t, matches)
	// IPv6 allowlist: loopback, link-local, unique-local, multicast.
	for _, s := range []string{"::1", "fe80::1", "fd00:ec2::254", "ff02::1"} {
		_, allowed := m.Lookup(netip.MustParseAddr(s))
		require.True(t, allowed, s)
	}
	// IPv4-mapped IPv6 is looked up as IPv4.
	matches, _ = m.Lookup(netip.MustParseAddr("::ffff:1.10.16.1"))
	require.Contains(t, listNames(matches), "spamhaus_drop_2025-01-17.txt")
}

func TestEveryListCoveringAnAddressIsReported(t *testing.T) {
	a := &List{Name: "a", Entries: []Entry{
		{Prefix: netip.MustParsePrefix("1.0.0.0/8"), Text: "1.0.0.0/8", Line: 1},
		{Prefix: netip.MustParsePrefix("1.2.0.0/16"), Text: "1.2.0.0/16", Line: 2},
	}}
	b := &List{Name: "b", Entries: []Entry{
		{Prefix: netip.MustParsePrefix("1.2.3.4/32"), Text: "1.2.3.4", Label: "c2", Line: 7},
		{Prefix: netip.MustParsePrefix("1.2.3.4/32"), Text: "1.2.3.4/32", Line: 8}, // duplicate
	}}
	c := &List{Name: "c", Entries: []Entry{
		{Prefix: netip.MustParsePrefix("1.2.0.0/16"), Text: "1.2.0.0/16", Label: "SBL1", Line: 3},
	}}
	m := NewMatcher([]*List{a, b, c}, MatcherConfig{})
	require.Equal(t, 1, m.Lists()[1].Duplicates)

	matches, _ := m.Lookup(netip.MustParseAddr("1.2.3.4"))
	// One match per list, that list's most specific entry, most specific first;
	// equal prefixes keep the list order.
	require.Equal(t, []Match{
		{List: "b", Entry: b.Entries[0]},
		{List: "a", Entry: a.Entries[1]},
		{List: "c", Entry: c.Entries[0]},
	}, matches)
	matches, _ = m.Lookup(netip.MustParseAddr("1.2.9.9"))
	require.Equal(t, []string{"a", "c"}, listNames(matches))
	require.Equal(t, "1.2.0.0/16", matches[0].Text)
	matches, _ = m.Lookup(netip.MustParseAddr("1.9.9.9"))
	require.Equal(t, []Match{{List: "a", Entry: a.Entries[0]}}, matches)
	matches, allowed := m.Lookup(netip.MustParseAddr("2.0.0.1"))
	require.False(t, allowed)
	require.Nil(t, matches)
}

// naiveMatcher is the linear-scan baseline: every entry of every list.
type naiveMatcher struct {
	allow []netip.Prefix
	lists []*List
}

func (n *naiveMatcher) lookup(ip netip.Addr) (matches []Match, allowed bool) {
	for _, p := range n.allow {
		if p.Contains(ip) {
			return nil, true
		}
	}
	for _, l := range n.lists {
		best := -1
		for i, e := range l.Entries {
			if e.Prefix.Contains(ip) && (best < 0 || e.Prefix.Bits() > l.Entries[best].Prefix.Bits()) {
				best = i
			}
		}
		if best >= 0 {
			matches = append(matches, Match{List: l.Name, Entry: l.Entries[best]})
		}
	}
	slices.SortStableFunc(matches, func(a, b Match) int { return b.Prefix.Bits() - a.Prefix.Bits() })
	return matches, false
}

// probeEntries returns the entries of lists of one address family.
func probeEntries(lists []*List, v6 bool) []Entry {
	var out []Entry
	for _, l := range lists {
		for _, e := range l.Entries {
			if e.Prefix.Addr().Is6() == v6 {
				out = append(out, e)
			}
		}
	}
	return out
}

// randomProbe returns an address near one of entries (same family) half of
// the time, a random one otherwise.
func randomProbe(r *rand.Rand, entries []Entry, v6 bool) netip.Addr {
	if r.IntN(2) == 0 && len(entries) > 0 {
		b := entries[r.IntN(len(entries))].Prefix.Addr().AsSlice()
		b[len(b)-1] ^= byte(r.IntN(256))
		b[len(b)-2] ^= byte(r.IntN(4))
		a, _ := netip.AddrFromSlice(b)
		return a
	}
	if v6 {
		var b [16]byte
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		b[0] = 0x20 | byte(r.IntN(16)) // 2000::/4, where the DROPv6 networks are
		return netip.AddrFrom16(b)
	}
	return netip.AddrFrom4([4]byte{byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
}

func TestMatcherAgreesWithLinearScan(t *testing.T) {
	lists := ListsOf(loadCorpus(t))
	m := NewMatcher(lists, MatcherConfig{})
	naive := &naiveMatcher{allow: DefaultAllowlist(), lists: lists}
	r := rand.New(rand.NewPCG(1, 2))
	hits, probes := 0, 20000
	if raceEnabled {
		probes = 2000 // the linear scan is ~20x slower under -race
	}
	entries4, entries6 := probeEntries(lists, false), probeEntries(lists, true)
	for i := range probes {
		ip := randomProbe(r, entries4, false)
		if i%4 == 0 {
			ip = randomProbe(r, entries6, true)
		}
		got, gotAllowed := m.Lookup(ip)
		want, wantAllowed := naive.lookup(ip)
		require.Equal(t, wantAllowed, gotAllowed, ip.String())
		// Same lists, each with the same most specific entry.
		slices.SortFunc(got, func(a, b Match) int { return strings.Compare(a.List, b.List) })
		slices.SortFunc(want, func(a, b Match) int { return strings.Compare(a.List, b.List) })
		require.Equal(t, want, got, ip.String())
		if len(got) > 0 {
			hits++
		}
	}
	require.Greater(t, hits, probes/20, "the probes exercise matches, not just misses")
}

// Lookups run while the lists are swapped: no data race, and every lookup
// sees one complete matcher.
func TestMatcherHolderSwapUnderLoad(t *testing.T) {
	listA := &List{Name: "a", Entries: []Entry{{Prefix: netip.MustParsePrefix("203.0.113.0/24"), Text: "203.0.113.0/24"}}}
	listB := &List{Name: "b", Entries: []Entry{{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Text: "198.51.100.0/24"}}}
	ma, mb := NewMatcher([]*List{listA}, MatcherConfig{}), NewMatcher([]*List{listB}, MatcherConfig{})
	var h MatcherHolder
	require.Nil(t, h.Load())
	h.Store(ma)

	ipA, ipB := netip.MustParseAddr("203.0.113.9"), netip.MustParseAddr("198.51.100.9")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				m := h.Load()
				a, _ := m.Lookup(ipA)
				b, _ := m.Lookup(ipB)
				if len(a)+len(b) != 1 {
					t.Errorf("matcher mixes lists: %v %v", a, b)
					return
				}
			}
		})
	}
	for i := range 1000 {
		if i%2 == 0 {
			h.Store(mb)
		} else {
			require.Same(t, mb, h.Swap(ma))
		}
	}
	close(stop)
	wg.Wait()
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
