package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/search"
	"github.com/cordonhq/cordon/internal/search/searchtest"
	"github.com/cordonhq/cordon/simcloud"
	"github.com/cordonhq/cordon/workflows"
)

// BenchmarkSearchDetectionLatency measures detection latency on the real
// engine: a flow document to a listed address is indexed (index refresh
// interval 1 s, no forced refresh) and the clock runs until its incident
// exists in Temporal. The detector runs with its default poll interval
// (1 s); settle-0s reads up to now, settle-2s is the default settle delay
// (safe for events shipped up to ~1 s late):
//
//	go test ./internal/e2e -run '^$' -bench SearchDetectionLatency -benchtime 20x
func BenchmarkSearchDetectionLatency(b *testing.B) {
	for _, settle := range []time.Duration{-1, search.DefaultSettle} {
		name := fmt.Sprintf("settle-%s", max(settle, 0))
		b.Run(name, func(b *testing.B) {
			sc, _ := searchtest.Client(b, searchtest.Native, search.Config{})
			prefix := searchtest.Prefix(b, sc)
			ctx := context.Background()
			require.NoError(b, sc.CreateIndex(ctx, prefix+"live", ""))
			sc, _ = searchtest.Client(b, searchtest.Native, search.Config{Index: prefix + "*", Settle: settle})

			h := New(b, simcloud.Delays{}, "")
			detectWorker(b, h, &search.Activities{Search: sc, Detector: searchDetector(b), Temporal: h.Client})
			_, _, err := workflows.StartDetector(ctx, h.Client, "detector/latency", workflows.DetectorConfig{
				StartAt: time.Now().Add(-time.Minute),
			})
			require.NoError(b, err)
			waitDetector(b, h, "detector/latency", time.Minute, "running", func(s workflows.DetectorStatus) bool { return s.Counts.Polls > 0 })

			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				inst := fmt.Sprintf("i-%017x", 0xbe0000+i)
				doc, _ := json.Marshal(map[string]any{
					"@timestamp":  time.Now().UTC().Format(time.RFC3339Nano),
					"event":       map[string]any{"dataset": "network_traffic.flow"},
					"flow":        map[string]any{"id": inst, "final": true},
					"source":      map[string]any{"ip": "10.0.1.10", "port": 40000 + i},
					"destination": map[string]any{"ip": "1.19.6.4", "port": 443},
					"cloud":       map[string]any{"instance": map[string]any{"id": inst}, "account": map[string]any{"id": "123456789012"}, "region": "us-east-1"},
				})
				res, err := sc.Bulk(ctx, []search.BulkDoc{{Index: prefix + "live", Source: doc}}, "")
				require.NoError(b, err)
				require.Zero(b, res.Errors, res.FirstErr)
				indexed := time.Now()
				id := workflows.IncidentID("123456789012", "us-east-1", inst)
				for {
					if _, err := h.Client.DescribeWorkflowExecution(ctx, id, ""); err == nil {
						break
					}
					require.Less(b, time.Since(indexed), 30*time.Second, "no incident for %s", inst)
					time.Sleep(5 * time.Millisecond)
				}
				lat = append(lat, time.Since(indexed))
				// The next document lands at a random point of the poll cycle.
				time.Sleep(time.Duration(137*(i%7)) * time.Millisecond)
			}
			b.StopTimer()
			report(b, lat)
		})
	}
}
