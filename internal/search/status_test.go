package search_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/search"
	"github.com/cordonhq/cordon/workflows"
)

func TestFormatStatus(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	var b strings.Builder
	search.FormatStatus(&b, "detector/packetbeat", workflows.DetectorStatus{
		Phase: workflows.DetectorBackingOff, NextPoll: t0.Add(4 * time.Second),
		DetectorState: workflows.DetectorState{
			Checkpoint: workflows.DetectCheckpoint{Time: t0, Seen: []string{"a/1", "a/2"}},
			Counts:     workflows.DetectorCounts{Polls: 9, FailedPolls: 3, Events: 300, Considered: 107, Hits: 18, Started: 5, Evidence: 18, Skipped: map[string]int64{"unparsable IP": 1}},
			Failures:   3, LastError: "connection refused", LastErrorAt: t0,
			Problems: []string{"p/_doc/1: unparsable IP"},
		},
	})
	out := b.String()
	for _, want := range []string{
		"detector/packetbeat: backing-off (next poll 2024-05-01T12:00:04.000Z)",
		"checkpoint: 2024-05-01T12:00:00.000Z (2 document(s) read at that time)",
		"polls 9 (3 failed), events 300, considered 107, malformed 0, hits 18: 5 incident(s) started, 18 evidence, 0 unresolved",
		"skipped: unparsable IP 1",
		"last error (2024-05-01T12:00:00.000Z, failing, 3 in a row): connection refused",
		"problem: p/_doc/1: unparsable IP",
	} {
		require.Contains(t, out, want)
	}
}
