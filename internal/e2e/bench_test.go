package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/simcloud"
	"github.com/cordonhq/cordon/workflows"
)

// BenchmarkIncidentSequential measures the orchestration overhead of one
// whole incident (preflight to cleanup, 21 activities) on the embedded
// server with zero simulated delays, one incident at a time:
//
//	go test ./internal/e2e -run '^$' -bench IncidentSequential -benchtime 100x
func BenchmarkIncidentSequential(b *testing.B) {
	h := New(b, simcloud.Delays{}, "")
	unlimited(h)
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		inst := inService(b, h)
		start := time.Now()
		run, err := workflows.Open(ctx, h.Client, workflows.QuarantineInput{Account: "123456789012", Region: "us-east-1", InstanceID: inst,
			Evidence: workflows.Evidence{Source: "bench", BadIP: "1.19.6.4"}})
		require.NoError(b, err)
		var res workflows.QuarantineResult
		require.NoError(b, run.Get(ctx, &res))
		lat = append(lat, time.Since(start))
		require.Equal(b, workflows.OutcomeResolved, res.Outcome, res.Reason)
	}
	b.StopTimer()
	report(b, lat)
}

// BenchmarkIncidentsConcurrent200 opens 200 incidents at once (one group of
// 200 web servers) and measures the time until all are resolved, and the
// process's peak RSS (embedded server + worker + simulated cloud):
//
//	go test ./internal/e2e -run '^$' -bench IncidentsConcurrent200 -benchtime 1x
func BenchmarkIncidentsConcurrent200(b *testing.B) {
	const n = 200
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		h := bigFleet(b, n+5)
		insts := members(b, h)[:n]
		ctx := context.Background()
		b.StartTimer()
		start := time.Now()
		var wg sync.WaitGroup
		lat := make([]time.Duration, n)
		errs := make(chan error, n)
		for j, inst := range insts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				t0 := time.Now()
				run, err := workflows.Open(ctx, h.Client, workflows.QuarantineInput{Account: "123456789012", Region: "us-east-1", InstanceID: inst,
					Evidence: workflows.Evidence{Source: "bench", BadIP: "1.19.6.4"}})
				if err != nil {
					errs <- err
					return
				}
				var res workflows.QuarantineResult
				if err := run.Get(ctx, &res); err != nil {
					errs <- err
					return
				}
				if res.Outcome != workflows.OutcomeResolved {
					errs <- fmt.Errorf("%s: %s %s", inst, res.Outcome, res.Reason)
				}
				lat[j] = time.Since(t0)
			}()
		}
		wg.Wait()
		total := time.Since(start)
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		b.ReportMetric(total.Seconds(), "s-total")
		report(b, lat)
	}
	if rss, ok := peakRSS(); ok {
		b.ReportMetric(float64(rss)/1024, "MiB-peak-rss")
	}
}

func report(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	b.ReportMetric(float64(p(0.50).Milliseconds()), "ms-p50")
	b.ReportMetric(float64(p(0.99).Milliseconds()), "ms-p99")
}

func inService(b *testing.B, h *Harness) string {
	ms := members(b, h)
	require.NotEmpty(b, ms, "the group has no InService member")
	return ms[0]
}

func members(b testing.TB, h *Harness) []string {
	g, ok := h.Sim.Group("web-asg")
	require.True(b, ok)
	var ids []string
	for _, m := range g.Members {
		if m.LifecycleState == "InService" {
			ids = append(ids, m.InstanceID)
		}
	}
	sort.Strings(ids)
	return ids
}

// bigFleet is the seed scenario with web-asg scaled out to n servers.
func bigFleet(b testing.TB, n int) *Harness {
	env, err := simcloud.LoadEnvironment(filepath.Join(Testdata, "sim/seed.yaml"))
	require.NoError(b, err)
	for i := range env.AutoScalingGroups {
		env.AutoScalingGroups[i].Max = int32(2 * n)
	}
	h := NewWithEnv(b, env, simcloud.Delays{}, "")
	unlimited(h)
	_, err = h.Sim.SetDesiredCapacity(context.Background(), &autoscaling.SetDesiredCapacityInput{
		AutoScalingGroupName: aws.String("web-asg"), DesiredCapacity: aws.Int32(int32(n)),
	})
	require.NoError(b, err)
	require.Eventually(b, func() bool { return len(members(b, h)) >= n }, time.Minute, 10*time.Millisecond)
	return h
}

// peakRSS reads the process's peak resident set size (VmHWM) in KiB.
func peakRSS() (int, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return kb, err == nil
		}
	}
	return 0, false
}

// unlimited restarts the harness's worker with governor limits that never
// bind, to measure orchestration alone.
func unlimited(h *Harness) {
	h.Worker.Stop()
	h.Limits = workflows.GovernorLimits{MaxConcurrent: 100000, MinHealthy: 1, BreakerCount: 1000000, BreakerWindow: time.Minute}
	h.StartWorker()
}
