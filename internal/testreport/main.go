// Command testreport reads `go test -json` events on stdin and prints them
// as `go test -v` would, minus the noise (RUN/PAUSE/CONT lines and the JSON
// logs the programs under test write). When stdin ends it repeats, under
// "== failures", the complete output of every test that failed, so the
// reason for a red run is at the end of a long log, where CI shows it.
//
// It exits 1 if a test or package failed, or if a line was not a test
// event (a build error), which it prints as it is.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// noise is what the live output leaves out.
var noise = regexp.MustCompile(`^(=== (RUN|PAUSE|CONT|NAME)|\{"time"|time=)`)

// maxLines caps the output repeated for one failed test.
const maxLines = 400

func main() {
	os.Exit(run(os.Stdin, os.Stdout))
}

func run(in io.Reader, out io.Writer) int {
	type key struct{ pkg, test string }
	logs := map[key][]string{}
	var failed []key
	bad := false
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var ev event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &ev) != nil || ev.Action == "" {
			fmt.Fprintln(out, string(line)) // a build error or other tool output
			if len(line) > 0 {
				bad = true
			}
			continue
		}
		k := key{ev.Package, ev.Test}
		switch ev.Action {
		case "output":
			if !noise.MatchString(ev.Output) {
				fmt.Fprint(out, ev.Output)
			}
			logs[k] = append(logs[k], ev.Output)
		case "build-output":
			fmt.Fprint(out, ev.Output)
			logs[k] = append(logs[k], ev.Output)
		case "fail":
			failed = append(failed, k)
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(out, "testreport: reading go test -json: %v\n", err)
		return 1
	}
	if len(failed) == 0 {
		if bad {
			return 1
		}
		return 0
	}
	fmt.Fprintln(out, "== failures (the complete output of each failed test)")
	for _, k := range failed {
		name := k.pkg
		if k.test != "" {
			name += " " + k.test
		}
		lines := logs[k]
		fmt.Fprintf(out, "---- %s\n", name)
		if len(lines) > maxLines {
			fmt.Fprintf(out, "(%d earlier lines left out)\n", len(lines)-maxLines)
			lines = lines[len(lines)-maxLines:]
		}
		for _, l := range lines {
			fmt.Fprint(out, strings.TrimSuffix(l, "\n")+"\n")
		}
	}
	return 1
}
