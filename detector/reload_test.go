package detector

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// syncBuffer is a log sink the reloader's goroutine and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newTestReloader loads paths into a new holder with a reloader checking
// every 10ms and logging into the returned buffer.
func newTestReloader(t *testing.T, paths ...string) (*MatcherHolder, *Reloader, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	h := &MatcherHolder{}
	r := NewReloader(h, ReloadConfig{Paths: paths, Interval: 10 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	_, err := r.Load()
	require.NoError(t, err)
	require.NotNil(t, h.Load())
	return h, r, logs
}

// runReloader runs r until the test ends.
func runReloader(t *testing.T, r *Reloader) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func blocked(h *MatcherHolder, ip string) bool {
	return h.Load().Blocked(netip.MustParseAddr(ip))
}

const waitFor, tick = 5 * time.Second, 5 * time.Millisecond

// TestReloaderPicksUpChangedList changes a list file under a running
// reloader: the new entry matches within the wait, while a reader keeps
// looking addresses up.
func TestReloaderPicksUpChangedList(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "bad.txt")
	writeFile(t, list, "1.2.3.4\n")
	h, r, logs := newTestReloader(t, list)
	require.True(t, blocked(h, "1.2.3.4"))
	require.False(t, blocked(h, "5.6.7.8"))

	runReloader(t, r)
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Add(1)
	go func() { // a detector's reads, concurrent with the swap (go test -race)
		defer readers.Done()
		for {
			select {
			case <-stop:
				return
			default:
				assert.True(t, blocked(h, "1.2.3.4"))
			}
		}
	}()
	writeFile(t, list, "1.2.3.4\n5.6.7.8 # added\n")
	require.Eventually(t, func() bool { return blocked(h, "5.6.7.8") }, waitFor, tick)
	close(stop)
	readers.Wait()

	matches, _ := h.Load().Lookup(netip.MustParseAddr("5.6.7.8"))
	require.Equal(t, []Match{{List: "bad.txt", Entry: Entry{Prefix: netip.MustParsePrefix("5.6.7.8/32"), Text: "5.6.7.8", Label: "added", Line: 2}}}, matches)
	require.Eventually(t, func() bool { return r.Status().Reloads == 2 }, waitFor, tick) // Load, then the reload
	require.Contains(t, logs.String(), "blocklists reloaded")
	require.Contains(t, logs.String(), list)
}

// TestReloaderKeepsListsWhenReloadFails breaks the lists in three ways: each
// failed reload keeps the matcher, is logged once, and the fixed files load.
func TestReloaderKeepsListsWhenReloadFails(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "lists", "drop.txt")
	rule := filepath.Join(dir, "rules", "c2.yaml")
	writeFile(t, list, "1.2.3.4\n")
	writeFile(t, rule, "type: blacklist\ncompare_key: destination.ip\nblacklist: [198.51.100.1]\n")
	h, r, logs := newTestReloader(t, filepath.Join(dir, "lists"), rule)
	before := h.Load()

	for _, tc := range []struct {
		name, file, content, logged string
	}{
		{"list replaced by an error page", list, "<html><body>503 Service Unavailable</body></html>\n",
			"drop.txt: no line is an address any more (1 bad lines, the first: drop.txt:1: unexpected text after the address"},
		{"rule of another type", rule, "# now a frequency rule\ntype: frequency\ncompare_key: destination.ip\nblacklist: [198.51.100.1]\n",
			`type \"frequency\" is not supported`},
		{"rule no longer YAML", rule, "# an unclosed quote\ntype: blacklist\ncompare_key: \"destination.ip\nblacklist: [198.51.100.1]\n",
			"not valid YAML"},
		{"rule file removed", rule, "", "no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			good, err := os.ReadFile(tc.file)
			require.NoError(t, err)
			if tc.content == "" {
				require.NoError(t, os.Remove(tc.file))
			} else {
				writeFile(t, tc.file, tc.content)
			}
			failures := r.Status().Failures
			reloaded, err := r.Check() // sees the change
			require.False(t, reloaded)
			require.NoError(t, err)
			reloaded, err = r.Check() // unchanged since: loads, and fails
			require.False(t, reloaded)
			require.Error(t, err)
			require.Same(t, before, h.Load(), "the previous matcher stays")
			require.True(t, blocked(h, "1.2.3.4"))
			require.True(t, blocked(h, "198.51.100.1"))
			require.Contains(t, logs.String(), "blocklist reload failed")
			require.Contains(t, logs.String(), tc.logged)
			_, err = r.Check() // retried, logged once
			require.Error(t, err)
			require.Equal(t, failures+2, r.Status().Failures)
			require.NotEmpty(t, r.Status().LastError)

			// Fixed. Each content here differs in size from the one before,
			// so the test does not depend on the file system's timestamp
			// resolution.
			writeFile(t, tc.file, string(good)+"\n")
			require.Eventually(t, func() bool { ok, _ := r.Check(); return ok }, waitFor, tick)
			require.Empty(t, r.Status().LastError)
			before = h.Load()
		})
	}
	require.Equal(t, 1, countLines(logs.String(), `type \"frequency\" is not supported`), "one log line per distinct failure")
}

// TestReloaderKeepsListsWhenEverythingIsGone: an emptied directory does not
// leave the detector without lists.
func TestReloaderKeepsListsWhenEverythingIsGone(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.txt"), "1.2.3.4\n")
	h, r, _ := newTestReloader(t, dir)
	require.NoError(t, os.Remove(filepath.Join(dir, "a.txt")))
	_, _ = r.Check()
	_, err := r.Check()
	require.ErrorContains(t, err, "the blocklist paths hold no entry any more (they had 1)")
	require.True(t, blocked(h, "1.2.3.4"))
}

// TestReloaderWaitsForFilesToSettle: a change is loaded on the look after
// the one that saw it, and a file still changing is not loaded.
func TestReloaderWaitsForFilesToSettle(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "a.txt")
	writeFile(t, list, "1.2.3.4\n")
	h, r, _ := newTestReloader(t, dir)

	reloaded, err := r.Check()
	require.NoError(t, err)
	require.False(t, reloaded, "nothing changed")
	writeFile(t, list, "1.2.3.4\n5.6.") // half written
	reloaded, _ = r.Check()
	require.False(t, reloaded)
	writeFile(t, list, "1.2.3.4\n5.6.7.8\n") // finished before the next look
	reloaded, _ = r.Check()
	require.False(t, reloaded, "still changing")
	require.False(t, blocked(h, "5.6.7.8"))
	reloaded, err = r.Check()
	require.NoError(t, err)
	require.True(t, reloaded)
	require.True(t, blocked(h, "5.6.7.8"))
	reloaded, _ = r.Check()
	require.False(t, reloaded, "loaded once")
}

// TestReloaderRereadsAFileWrittenWhileRead: a file that changes between
// the look and the read is not stored (it may be half-written) and is read
// again once it settles, without a failure.
func TestReloaderRereadsAFileWrittenWhileRead(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "a.txt")
	writeFile(t, list, "1.2.3.4\n")
	h, r, logs := newTestReloader(t, list)
	before := h.Load()
	writeFile(t, list, "1.2.3.4\n5.6.7.8\n")
	reloaded, _ := r.Check() // sees the change
	require.False(t, reloaded)
	r.beforeLoad = func() {
		r.beforeLoad = nil
		writeFile(t, list, "") // a writer truncates it just as Check reads it
	}
	reloaded, err := r.Check()
	require.NoError(t, err, "not a failure: the file was written while read")
	require.False(t, reloaded)
	require.Same(t, before, h.Load())
	writeFile(t, list, "1.2.3.4\n5.6.7.8\n9.9.9.9\n") // the writer finishes
	require.Eventually(t, func() bool { ok, _ := r.Check(); return ok }, waitFor, tick)
	require.True(t, blocked(h, "9.9.9.9"))
	require.Zero(t, r.Status().Failures)
	require.NotContains(t, logs.String(), "reload failed")
}

// TestReloaderWatchesDirectoriesAndElastAlertIncludes: a list added to a
// directory, a rule's !file list outside the configured paths, and a
// Kubernetes-style ConfigMap update (symlinks swapped) are picked up.
func TestReloaderWatchesDirectoriesAndElastAlertIncludes(t *testing.T) {
	dir := t.TempDir()
	lists := filepath.Join(dir, "lists")
	rule := filepath.Join(dir, "rules", "c2.yml")
	include := filepath.Join(dir, "shared", "c2.txt")
	writeFile(t, filepath.Join(lists, "a.txt"), "1.2.3.4\n")
	writeFile(t, include, "198.51.100.1\n")
	writeFile(t, rule, "name: C2\ntype: blacklist\ncompare_key: dst_ip\nblacklist:\n  - '!file ../shared/c2.txt'\n")

	// A ConfigMap volume: key -> ..data/key, ..data -> ..<timestamp>.
	cm := filepath.Join(dir, "configmap")
	writeFile(t, filepath.Join(cm, "..2024_01", "cm.txt"), "203.0.113.1\n")
	require.NoError(t, os.Symlink("..2024_01", filepath.Join(cm, "..data")))
	require.NoError(t, os.Symlink(filepath.Join("..data", "cm.txt"), filepath.Join(cm, "cm.txt")))

	h, r, _ := newTestReloader(t, lists, rule, cm)
	require.True(t, blocked(h, "198.51.100.1"))
	require.True(t, blocked(h, "203.0.113.1"), "a symlinked list file loads")
	runReloader(t, r)

	writeFile(t, filepath.Join(lists, "sub", "b.txt"), "5.6.7.8\n")
	require.Eventually(t, func() bool { return blocked(h, "5.6.7.8") }, waitFor, tick, "new file in a directory")

	writeFile(t, include, "198.51.100.1\n198.51.100.2\n")
	require.Eventually(t, func() bool { return blocked(h, "198.51.100.2") }, waitFor, tick, "!file list changed")
	m, _ := h.Load().Lookup(netip.MustParseAddr("198.51.100.2"))
	require.Equal(t, "c2.yml", m[0].List)
	require.Equal(t, `ElastAlert rule "C2" (dst_ip), !file ../shared/c2.txt`, m[0].Label)

	writeFile(t, filepath.Join(cm, "..2024_02", "cm.txt"), "203.0.113.22\n")
	require.NoError(t, os.Symlink("..2024_02", filepath.Join(cm, "..data_tmp")))
	require.NoError(t, os.Rename(filepath.Join(cm, "..data_tmp"), filepath.Join(cm, "..data"))) // the kubelet's atomic swap
	require.Eventually(t, func() bool { return blocked(h, "203.0.113.22") }, waitFor, tick, "ConfigMap update")
	require.False(t, blocked(h, "203.0.113.1"))

	require.NoError(t, os.Remove(filepath.Join(lists, "sub", "b.txt")))
	require.Eventually(t, func() bool { return !blocked(h, "5.6.7.8") }, waitFor, tick, "removed file")
	require.True(t, blocked(h, "1.2.3.4"))
}

// TestReloaderStopsWithContext: Run returns when its context ends.
func TestReloaderStopsWithContext(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.txt"), "1.2.3.4\n")
	_, r, _ := newTestReloader(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	cancel()
	require.Eventually(t, func() bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	}, waitFor, tick)
}

func countLines(s, sub string) int {
	n := 0
	for _, l := range bytes.Split([]byte(s), []byte{'\n'}) {
		if bytes.Contains(l, []byte(sub)) {
			n++
		}
	}
	return n
}
