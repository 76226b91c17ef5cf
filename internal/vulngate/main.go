// Command vulngate judges govulncheck's JSON output (read on stdin) for
// scripts/vulncheck: it prints every vulnerability Cordon's code reaches
// and exits 1 when one of them is not accepted.
//
// A reachable vulnerability (govulncheck found a call path to an affected
// symbol) is accepted when:
//   - it is in the Go standard library and the Dockerfile's pinned Go
//     (the toolchain that builds the shipped binaries) is at or past the
//     fixed version, or
//   - the allow file lists its ID and module with an expiry date not yet
//     passed and a reason.
//
// The allow file has one entry per line (# starts a comment):
//
//	GO-2026-6875 github.com/labstack/echo/v4 2027-03-01 reason...
//
// Entries that match nothing are reported so the list does not rot.
// Vulnerabilities in imported code that is never called are listed but
// never fail the check (govulncheck's own default).
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"golang.org/x/mod/semver"
)

func main() {
	allow := flag.String("allow", "", "allow file (ID module expiry reason)")
	dockerfile := flag.String("dockerfile", "", "Dockerfile whose golang base image pins the release toolchain")
	flag.Parse()
	ok, err := run(os.Stdin, os.Stdout, *allow, *dockerfile, time.Now())
	if err != nil {
		fmt.Fprintln(os.Stderr, "vulngate:", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

type frame struct {
	Module   string `json:"module"`
	Version  string `json:"version"`
	Package  string `json:"package"`
	Function string `json:"function"`
	Receiver string `json:"receiver"`
	Position *struct {
		Filename string `json:"filename"`
		Line     int    `json:"line"`
	} `json:"position"`
}

type message struct {
	OSV *struct {
		ID      string `json:"id"`
		Summary string `json:"summary"`
	} `json:"osv"`
	Finding *struct {
		OSV          string  `json:"osv"`
		FixedVersion string  `json:"fixed_version"`
		Trace        []frame `json:"trace"`
	} `json:"finding"`
}

// finding is one reachable vulnerability in one module.
type finding struct {
	ID, Module, Found, Fixed, Summary string
	Example                           string // a call site in Cordon's code
}

type allowEntry struct {
	ID, Module string
	Until      time.Time
	Reason     string
	Line       int
	used       bool
}

func run(in io.Reader, out io.Writer, allowPath, dockerfile string, now time.Time) (bool, error) {
	found, err := readFindings(in)
	if err != nil {
		return false, err
	}
	var allow []*allowEntry
	if allowPath != "" {
		if allow, err = readAllow(allowPath); err != nil {
			return false, err
		}
	}
	goVersion := ""
	if dockerfile != "" {
		if goVersion, err = dockerGo(dockerfile); err != nil {
			return false, err
		}
	}
	ok := true
	fmt.Fprintf(out, "%d vulnerabilit(ies) reachable from Cordon's code\n", len(found))
	for _, f := range found {
		verdict := ""
		switch a := match(allow, f); {
		case f.Module == "stdlib" && goVersion != "" && f.Fixed != "" && semver.Compare("v"+goVersion, f.Fixed) >= 0:
			verdict = fmt.Sprintf("accepted: the release build's Go %s has the fix (Dockerfile); upgrade the local Go to %s too", goVersion, strings.TrimPrefix(f.Fixed, "v"))
		case a != nil && !now.Before(a.Until.Add(24*time.Hour)): // the whole last day counts
			verdict = fmt.Sprintf("FAIL: allowed until %s (allow file line %d), expired", a.Until.Format("2006-01-02"), a.Line)
			ok = false
		case a != nil:
			verdict = fmt.Sprintf("accepted until %s: %s", a.Until.Format("2006-01-02"), a.Reason)
		case f.Module == "stdlib":
			verdict = fmt.Sprintf("FAIL: fixed in Go %s; pin the Dockerfile's golang image at or past it", strings.TrimPrefix(f.Fixed, "v"))
			ok = false
		case f.Fixed != "":
			verdict = fmt.Sprintf("FAIL: upgrade %s to %s (go get %s@%s)", f.Module, f.Fixed, f.Module, f.Fixed)
			ok = false
		default:
			verdict = "FAIL: no fixed version; remove the dependency or add it to the allow file with a reason"
			ok = false
		}
		fixed := f.Fixed
		if fixed == "" {
			fixed = "none"
		}
		fmt.Fprintf(out, "  %s %s@%s (fixed: %s) %s\n      e.g. %s\n      %s\n", f.ID, f.Module, f.Found, fixed, f.Summary, f.Example, verdict)
	}
	for _, a := range allow {
		if !a.used {
			fmt.Fprintf(out, "note: allow file line %d (%s %s) matches no finding any more; remove it\n", a.Line, a.ID, a.Module)
		}
	}
	if ok {
		fmt.Fprintln(out, "vulncheck: passed")
	} else {
		fmt.Fprintln(out, "vulncheck: FAILED (see FAIL above)")
	}
	return ok, nil
}

func match(allow []*allowEntry, f finding) *allowEntry {
	for _, a := range allow {
		if a.ID == f.ID && a.Module == f.Module {
			a.used = true
			return a
		}
	}
	return nil
}

// readFindings keeps the findings with a call path (trace[0] names a
// function), one per vulnerability and module.
func readFindings(in io.Reader) ([]finding, error) {
	dec := json.NewDecoder(in)
	summaries := map[string]string{}
	byKey := map[string]*finding{}
	var keys []string
	for {
		var m message
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("reading govulncheck -format json output: %w", err)
		}
		if m.OSV != nil {
			summaries[m.OSV.ID] = m.OSV.Summary
		}
		f := m.Finding
		if f == nil || len(f.Trace) == 0 || f.Trace[0].Function == "" {
			continue
		}
		top := f.Trace[0]
		key := f.OSV + " " + top.Module
		if byKey[key] != nil {
			continue
		}
		ex := ""
		if last := f.Trace[len(f.Trace)-1]; last.Position != nil {
			ex = fmt.Sprintf("%s:%d calls ", last.Position.Filename, last.Position.Line)
		}
		sym := top.Function
		if top.Receiver != "" {
			sym = strings.TrimPrefix(top.Receiver, "*") + "." + sym
		}
		ex += top.Package + "." + sym
		byKey[key] = &finding{ID: f.OSV, Module: top.Module, Found: top.Version, Fixed: f.FixedVersion, Example: ex}
		keys = append(keys, key)
	}
	sort.Strings(keys)
	out := make([]finding, 0, len(keys))
	for _, k := range keys {
		f := *byKey[k]
		f.Summary = summaries[f.ID]
		out = append(out, f)
	}
	return out, nil
}

func readAllow(path string) ([]*allowEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []*allowEntry
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if i := strings.Index(line, "#"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line == "" {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 4 {
			return nil, fmt.Errorf("%s:%d: want: ID module YYYY-MM-DD reason", path, n)
		}
		until, err := time.Parse("2006-01-02", fields[2])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: expiry %q is not a date (YYYY-MM-DD)", path, n, fields[2])
		}
		out = append(out, &allowEntry{ID: fields[0], Module: fields[1], Until: until, Reason: strings.Join(fields[3:], " "), Line: n})
	}
	return out, sc.Err()
}

var goImage = regexp.MustCompile(`(?m)^FROM\s+(?:docker\.io/(?:library/)?)?golang:(\d+\.\d+\.\d+)\b`)

// dockerGo returns the Go version of the Dockerfile's golang build image,
// which must be pinned to a patch release.
func dockerGo(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	m := goImage.FindSubmatch(b)
	if m == nil {
		return "", fmt.Errorf("%s: no FROM golang:X.Y.Z line; pin the build image to a Go patch release", path)
	}
	return string(m[1]), nil
}
