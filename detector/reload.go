package detector

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultReloadInterval is how often a Reloader looks at its files.
const DefaultReloadInterval = 5 * time.Second

// ReloadConfig configures a Reloader.
type ReloadConfig struct {
	// Paths are the blocklist files and directories (LoadBlocklists).
	Paths []string
	// Matcher configures every matcher built (the allowlist).
	Matcher MatcherConfig
	// Interval between two looks at the files. Default DefaultReloadInterval.
	Interval time.Duration
	// Logger receives reloads and failed reloads. Default slog.Default().
	Logger *slog.Logger
}

// Reloader rebuilds the matcher when the blocklist files change and stores
// it in a MatcherHolder, so a running detector picks up new lists without a
// restart.
//
// It polls: every Interval it stats the configured files, every file of the
// configured directories and every ElastAlert "!file" list (size,
// modification time, mode). Polling sees files that editors and sync tools
// replace by renaming, Kubernetes ConfigMap updates (a symlink swap), network
// file systems that deliver no inotify events, and "!file" lists anywhere on
// disk, at the cost of a few stat calls per interval (fsnotify would miss
// the last three). A rewrite that keeps a file's size within the file
// system's timestamp resolution (milliseconds) of the previous write is not
// seen until the next change. A change is loaded
// once the files have stayed the same for one more interval and while it is
// read, so a list that is being written is not loaded half-written.
//
// A reload that fails keeps the previous matcher, logs the error (once per
// distinct error) and is retried every interval until it succeeds. It fails
// when a file cannot be read, an ElastAlert rule cannot be imported, a list
// that had entries has none left but bad lines (e.g. an HTML error page
// saved over it), or no entry is left at all.
type Reloader struct {
	holder *MatcherHolder
	cfg    ReloadConfig
	log    *slog.Logger

	mu       sync.Mutex
	loaded   stamps   // the files behind the current matcher
	pending  stamps   // the files at the last look, when they differ from loaded
	includes []string // "!file" lists of the loaded rules
	failing  string   // error of the last attempt; "" once one succeeds
	status   ReloadStatus

	beforeLoad func() // test hook: runs between the look and the load of Check
}

// ReloadStatus counts what a Reloader did.
type ReloadStatus struct {
	Reloads    int       `json:"reloads"`
	Failures   int       `json:"failures"`
	LastError  string    `json:"lastError,omitempty"` // empty once a reload succeeds
	LastReload time.Time `json:"lastReload"`
}

// NewReloader returns a reloader storing into h. Call Load once, then Run.
func NewReloader(h *MatcherHolder, cfg ReloadConfig) *Reloader {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultReloadInterval
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Reloader{holder: h, cfg: cfg, log: log}
}

// Load reads the lists, builds the matcher and stores it, whatever the
// holder held. It returns the lists so the caller can report their bad
// lines (also with RequireEntries' error); an error leaves the holder
// unchanged.
func (r *Reloader) Load() ([]*LoadResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.look()
	results, err := LoadBlocklists(r.cfg.Paths)
	if err != nil {
		return nil, err
	}
	if err := RequireEntries(r.cfg.Paths, results); err != nil {
		return results, err // the caller still reports their bad lines
	}
	r.store(now, results)
	return results, nil
}

// RequireEntries refuses a set of blocklists without a single usable entry:
// a detector with nothing to match reports "0 hits" for any traffic, which
// reads as an all-clear.
func RequireEntries(paths []string, results []*LoadResult) error {
	if countEntries(results) > 0 {
		return nil
	}
	return fmt.Errorf("blocklists %s: %d list(s) but not one usable IP or CIDR entry (problems above, if any): check the paths and that the files are blocklists (plain IP/CIDR lines, FireHOL, Spamhaus, Feodo, ET, or ElastAlert blacklist rules)",
		strings.Join(paths, ", "), len(results))
}

// Run checks the files every interval until ctx is done.
func (r *Reloader) Run(ctx context.Context) {
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_, _ = r.Check()
		}
	}
}

// Check looks at the files once: it reloads when they changed and have not
// changed since the previous look (or when the last reload failed), and
// reports whether it stored a new matcher. A failed reload is logged and
// returned; the holder keeps its matcher.
func (r *Reloader) Check() (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.look()
	if r.failing == "" && maps.Equal(now, r.loaded) {
		r.pending = nil
		return false, nil
	}
	if !maps.Equal(now, r.pending) {
		r.pending = now // changed since the last look: let it settle
		return false, nil
	}
	changed := changedFiles(r.loaded, now)
	if r.beforeLoad != nil {
		r.beforeLoad()
	}
	results, err := LoadBlocklists(r.cfg.Paths)
	if after := r.look(); !maps.Equal(after, now) {
		r.pending = after // written to while being read: read it again once it settles
		return false, nil
	}
	if err == nil {
		err = r.validate(results)
	}
	if err != nil {
		r.status.Failures++
		if msg := err.Error(); msg != r.failing {
			kept := 0
			if m := r.holder.Load(); m != nil {
				kept = len(m.Lists())
			}
			r.log.Error("blocklist reload failed: the detector keeps its previous lists until the files are fixed",
				"error", msg, "listsKept", kept, "changed", changed)
			r.failing = msg
		}
		r.status.LastError = r.failing
		return false, err
	}
	m := r.store(now, results)
	v4, v6 := m.Prefixes()
	r.log.Info("blocklists reloaded", "lists", len(results), "entries", countEntries(results),
		"prefixesV4", v4, "prefixesV6", v6, "changed", changed)
	for _, res := range results {
		if res.BadLines > 0 {
			r.log.Warn("blocklist has bad lines", "list", res.Name, "badLines", res.BadLines, "first", res.Errors[0].Error())
		}
	}
	return true, nil
}

// Status returns the counts of reloads and failures.
func (r *Reloader) Status() ReloadStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

// store builds the matcher of results, stores it and records the files
// behind it: now, plus the "!file" lists as they were when read.
func (r *Reloader) store(now stamps, results []*LoadResult) *Matcher {
	m := NewMatcher(ListsOf(results), r.cfg.Matcher)
	r.holder.Store(m)
	loaded := maps.Clone(now)
	r.includes = r.includes[:0]
	for _, res := range results {
		for p, st := range res.includeStamps {
			loaded[p] = st
			r.includes = append(r.includes, p)
		}
	}
	slices.Sort(r.includes)
	r.includes = slices.Compact(r.includes)
	r.loaded, r.pending, r.failing = loaded, nil, ""
	r.status.Reloads++
	r.status.LastError = ""
	r.status.LastReload = time.Now()
	return m
}

// validate refuses lists that would leave the detector with less than it
// had for a reason that is most likely an accident.
func (r *Reloader) validate(results []*LoadResult) error {
	old := r.holder.Load()
	if old == nil {
		return nil
	}
	had := map[string]int{}
	oldTotal := 0
	for _, l := range old.Lists() {
		had[l.Name] += l.Entries
		oldTotal += l.Entries
	}
	for _, res := range results {
		if len(res.Entries) == 0 && res.BadLines > 0 && had[res.Name] > 0 {
			return fmt.Errorf("%s: no line is an address any more (%d bad lines, the first: %v); it had %d entries",
				res.Name, res.BadLines, res.Errors[0], had[res.Name])
		}
	}
	if countEntries(results) == 0 && oldTotal > 0 {
		return fmt.Errorf("the blocklist paths hold no entry any more (they had %d)", oldTotal)
	}
	return nil
}

func countEntries(results []*LoadResult) int {
	n := 0
	for _, res := range results {
		n += len(res.Entries)
	}
	return n
}

// stamp is what a look sees of a file.
type stamp struct {
	size  int64
	mtime int64
	mode  fs.FileMode
	err   string
}

func stampOf(fi fs.FileInfo) stamp {
	return stamp{size: fi.Size(), mtime: fi.ModTime().UnixNano(), mode: fi.Mode()}
}

// stamps are the stamps of the files behind a matcher, by path.
type stamps map[string]stamp

// look stamps the configured files, the files of the configured
// directories, and the "!file" lists of the loaded rules.
func (r *Reloader) look() stamps {
	st := stamps{}
	stat := func(p string) {
		fi, err := os.Stat(p)
		if err != nil {
			st[p] = stamp{err: err.Error()}
			return
		}
		st[p] = stampOf(fi)
	}
	for _, p := range r.cfg.Paths {
		fi, err := os.Stat(p)
		switch {
		case err != nil:
			st[p] = stamp{err: err.Error()}
		case !fi.IsDir():
			st[p] = stampOf(fi)
		default:
			if err := walkListDir(p, func(fp, _ string) error { stat(fp); return nil }); err != nil {
				st[p+string(os.PathSeparator)] = stamp{err: err.Error()}
			}
		}
	}
	for _, p := range r.includes {
		if _, ok := st[p]; !ok {
			stat(p)
		}
	}
	return st
}

// changedFiles names the files that differ between two looks (at most 10).
func changedFiles(before, after stamps) []string {
	var out []string
	for p, st := range after {
		if b, ok := before[p]; !ok || b != st {
			out = append(out, p)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	if len(out) > 10 {
		out = append(out[:10], fmt.Sprintf("… %d more", len(out)-10))
	}
	return out
}
