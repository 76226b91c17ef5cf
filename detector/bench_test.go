package detector

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"testing"
)

// syntheticList returns a list of n random entries: 85% IPv4 (/32 and
// /24), 15% IPv6 (/48, /64, /128 in 2000::/4), to bring the corpus (18,801
// entries) up to the ~100k prefixes of a realistic set of feeds.
func syntheticList(n int) *List {
	r := rand.New(rand.NewPCG(7, 7))
	l := &List{Name: "synthetic", Format: FormatPlain, Entries: make([]Entry, 0, n)}
	for i := range n {
		var p netip.Prefix
		if i%100 < 85 {
			a := netip.AddrFrom4([4]byte{byte(1 + r.IntN(222)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
			p = netip.PrefixFrom(a, []int{32, 32, 24}[r.IntN(3)]).Masked()
		} else {
			var b [16]byte
			for j := range b {
				b[j] = byte(r.IntN(256))
			}
			b[0] = 0x20 | byte(r.IntN(16))
			p = netip.PrefixFrom(netip.AddrFrom16(b), []int{48, 64, 128}[r.IntN(3)]).Masked()
		}
		l.Entries = append(l.Entries, Entry{Prefix: p, Text: p.String(), Line: i + 1})
	}
	return l
}

type benchSet struct {
	lists  []*List
	m      *Matcher
	naive  *naiveMatcher
	v4, v6 []netip.Addr
}

func newBenchSet(b *testing.B, extra int) *benchSet {
	b.Helper()
	lists := ListsOf(loadCorpus(b))
	if extra > 0 {
		lists = append(lists, syntheticList(extra))
	}
	s := &benchSet{lists: lists, m: NewMatcher(lists, MatcherConfig{}), naive: &naiveMatcher{allow: DefaultAllowlist(), lists: lists}}
	r := rand.New(rand.NewPCG(3, 4))
	entries4, entries6 := probeEntries(lists, false), probeEntries(lists, true)
	for range 4096 {
		s.v4 = append(s.v4, randomProbe(r, entries4, false))
		s.v6 = append(s.v6, randomProbe(r, entries6, true))
	}
	v4, v6 := s.m.Prefixes()
	b.Logf("%d lists, %d IPv4 + %d IPv6 distinct prefixes", len(lists), v4, v6)
	return s
}

// BenchmarkLookup measures Matcher.Lookup next to a linear scan of every
// entry (the baseline), with the corpus lists alone and with a synthetic
// list that brings them to ~100k prefixes. Half the probes are near listed
// entries, half random.
func BenchmarkLookup(b *testing.B) {
	for _, size := range []struct {
		name  string
		extra int
	}{{"corpus", 0}, {"100k", 81_199}} {
		var s *benchSet
		for _, fam := range []string{"v4", "v6"} {
			for _, impl := range []string{"bart", "bart-append", "linear"} {
				b.Run(size.name+"/"+fam+"/"+impl, func(b *testing.B) {
					if s == nil {
						s = newBenchSet(b, size.extra)
					}
					probes := s.v4
					if fam == "v6" {
						probes = s.v6
					}
					matched := 0
					var buf []Match
					for i := 0; b.Loop(); i++ {
						var ms []Match
						switch impl {
						case "bart":
							ms, _ = s.m.Lookup(probes[i%len(probes)])
						case "bart-append": // the detector's way: one buffer reused
							buf, _ = s.m.AppendMatches(buf[:0], probes[i%len(probes)])
							ms = buf
						default:
							ms, _ = s.naive.lookup(probes[i%len(probes)])
						}
						matched += min(len(ms), 1)
					}
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
					b.ReportMetric(float64(matched)/float64(b.N), "hit-ratio")
				})
			}
		}
	}
}

// BenchmarkBlocked measures the allocation-free yes/no check.
func BenchmarkBlocked(b *testing.B) {
	s := newBenchSet(b, 81_199)
	for i := 0; b.Loop(); i++ {
		s.m.Blocked(s.v4[i%len(s.v4)])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
}

// ndjson300x returns the 300 generated events repeated n times.
func ndjson300x(b *testing.B, n int) []byte {
	b.Helper()
	data, err := os.ReadFile(events300)
	if err != nil {
		b.Fatal(err)
	}
	return bytes.Repeat(data, n)
}

// BenchmarkReadEvents measures NDJSON decoding alone (events/s).
func BenchmarkReadEvents(b *testing.B) {
	data := ndjson300x(b, 10)
	b.SetBytes(int64(len(data)))
	events := 0
	for b.Loop() {
		st, err := ReadEvents(context.Background(), bytes.NewReader(data), "bench", ReadOptions{}, func(*Event) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		events += st.Events
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkScan measures NDJSON events parsed and matched per second with
// every corpus list loaded: final flows only (the default) and AllEvents.
func BenchmarkScan(b *testing.B) {
	data := ndjson300x(b, 10)
	h := NewMatcherHolder(NewMatcher(ListsOf(loadCorpus(b)), MatcherConfig{}))
	for _, all := range []bool{false, true} {
		b.Run(fmt.Sprintf("allEvents=%v", all), func(b *testing.B) {
			d := NewDetector(h, Options{AllEvents: all})
			b.SetBytes(int64(len(data)))
			events := 0
			for b.Loop() {
				st, err := d.ScanFunc(context.Background(), bytes.NewReader(data), "bench", func(Hit) error { return nil })
				if err != nil {
					b.Fatal(err)
				}
				events += st.Events
			}
			b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkLoadMillion parses a 1M-entry list and builds its matcher.
func BenchmarkLoadMillion(b *testing.B) {
	data := millionLines(1_000_000)
	b.SetBytes(int64(len(data)))
	b.Run("parse", func(b *testing.B) {
		for b.Loop() {
			res, err := ParseBlocklist(bytes.NewReader(data), "million.txt", "")
			if err != nil || len(res.Entries) != 1_000_000 {
				b.Fatal(err, len(res.Entries))
			}
		}
	})
	res, err := ParseBlocklist(bytes.NewReader(data), "million.txt", "")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("build", func(b *testing.B) {
		for b.Loop() {
			NewMatcher([]*List{&res.List}, MatcherConfig{})
		}
	})
}

// BenchmarkBuildCorpusMatcher loads every corpus list and builds the matcher.
func BenchmarkBuildCorpusMatcher(b *testing.B) {
	for b.Loop() {
		NewMatcher(ListsOf(loadCorpus(b)), MatcherConfig{})
	}
}
