package search

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/cordonhq/cordon/workflows"
)

// FormatStatus writes a detector's status as a few lines of text (for
// `starter detect status`): phase, checkpoint, counts, the last error and
// the latest problems.
func FormatStatus(w io.Writer, id string, st workflows.DetectorStatus) {
	ts := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02T15:04:05.000Z")
	}
	fmt.Fprintf(w, "%s: %s", id, st.Phase)
	if !st.NextPoll.IsZero() {
		fmt.Fprintf(w, " (next poll %s)", ts(st.NextPoll))
	}
	fmt.Fprintln(w)
	if st.Checkpoint.Time.IsZero() {
		fmt.Fprintf(w, "checkpoint: start of the index")
	} else {
		fmt.Fprintf(w, "checkpoint: %s (%d document(s) read at that time)", ts(st.Checkpoint.Time), len(st.Checkpoint.Seen))
	}
	fmt.Fprintf(w, "; searched up to %s; last poll %s\n", ts(st.Until), ts(st.LastPoll))
	c := st.Counts
	fmt.Fprintf(w, "polls %d (%d failed), events %d, considered %d, malformed %d, hits %d: %d incident(s) started, %d evidence, %d unresolved\n",
		c.Polls, c.FailedPolls, c.Events, c.Considered, c.Malformed, c.Hits, c.Started, c.Evidence, c.Unresolved)
	if len(c.Skipped) > 0 {
		var parts []string
		for k, v := range c.Skipped {
			parts = append(parts, fmt.Sprintf("%s %d", k, v))
		}
		sort.Strings(parts)
		fmt.Fprintf(w, "skipped: %s\n", strings.Join(parts, ", "))
	}
	if st.LastError != "" {
		state := "recovered since"
		if st.Failures > 0 {
			state = fmt.Sprintf("failing, %d in a row", st.Failures)
		}
		fmt.Fprintf(w, "last error (%s, %s): %s\n", ts(st.LastErrorAt), state, st.LastError)
	}
	for _, p := range st.Problems {
		fmt.Fprintf(w, "problem: %s\n", p)
	}
	fmt.Fprintf(w, "run %d (continued as new %d time(s)), %d poll(s) in this run\n", st.Runs+1, st.Runs, st.RunPollsDone)
}
