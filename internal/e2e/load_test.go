package e2e

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/simcloud"
	"github.com/cordonhq/cordon/workflows"
)

// BenchmarkLoad opens 1,000 incidents at once across 50 Auto Scaling groups
// of 24 web servers (20 incidents per group) on one worker, one embedded
// Temporal server (SQLite in memory) and the simulated cloud, with the
// default governor limits (2 incidents at a time per group, at least 1
// healthy instance left) except the breaker. Not run in CI:
//
//	go test ./internal/e2e -run '^$' -bench Load -benchtime 1x -timeout 60m
//
// CORDON_LOAD_INCIDENTS=200,500,1000 runs several sizes (always 50 groups),
// one sub-benchmark each, in that order.
//
// The breaker count is raised to 10,000: the breaker exists to stop a storm
// from emptying a fleet, and 20 incidents in one group within minutes is
// exactly such a storm — with the default (5 per hour) every group would
// trip after its fifth incident and hold the other 15 for a human's
// approval, so the run would measure a queue of held incidents, not
// containment. The slot cap and the min-healthy floor stay at their
// defaults and bind.
//
// While the incidents run, a goroutine samples every ~100 ms each group's
// healthy capacity (members InService and Healthy whose target is healthy
// in the group's target group) and records the minimum per group, and, every
// second, the number of each group's original instances that are out of
// service for an incident at once (tagged by Cordon, not yet terminated). The run
// fails if a group ever had no healthy instance or more incidents out at
// once than the governor allows.
//
// Reported: total time, p50/p99 from open to resolved per incident (most of
// it is waiting in the governor's queue: 20 incidents per group, 2 at a
// time), p50/p99 from the governor's grant to resolved, incidents/s, and the process's peak RSS (VmHWM, reset at the start of each
// size): it includes the embedded Temporal server and the simulated cloud,
// not only the worker.
func BenchmarkLoad(b *testing.B) {
	sizes := []int{1000}
	if s := os.Getenv("CORDON_LOAD_INCIDENTS"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			require.NoError(b, err, "CORDON_LOAD_INCIDENTS")
			sizes = append(sizes, n)
		}
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("incidents=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				runLoad(b, n, loadGroups, loadGroupSize)
			}
		})
	}
}

const (
	loadGroups    = 50
	loadGroupSize = 24
	loadAccount   = "123456789012"
	loadRegion    = "us-east-1"
)

// loadDelays are short AWS-like delays: the replacement and the target's
// health take time, so the governor's capacity count is tested against a
// group that is really short of an instance for a while.
var loadDelays = simcloud.Delays{
	InstanceStart:  500 * time.Millisecond,
	InstanceStop:   500 * time.Millisecond,
	ImageAvailable: 2 * time.Second,
	Replace:        time.Second,
	TargetHealthy:  500 * time.Millisecond,
	TargetDraining: 500 * time.Millisecond,
}

func loadGroupName(i int) string { return fmt.Sprintf("web-%02d", i) }
func loadTGName(i int) string    { return fmt.Sprintf("web-%02d-tg", i) }

// loadEnvironment is one VPC with three web subnets and a quarantine subnet,
// and groups Auto Scaling groups of size web servers, each behind its own
// target group. The isolation groups are not declared: the first incidents
// create them, concurrently.
func loadEnvironment(groups, size int) *simcloud.Environment {
	env := &simcloud.Environment{
		Account: loadAccount,
		Region:  loadRegion,
		VPCs:    []simcloud.VPCSpec{{Name: "load-vpc", CIDR: "10.0.0.0/16"}},
		Subnets: []simcloud.SubnetSpec{
			{Name: "web-a", VPC: "load-vpc", CIDR: "10.0.0.0/19", AZ: "us-east-1a"},
			{Name: "web-b", VPC: "load-vpc", CIDR: "10.0.32.0/19", AZ: "us-east-1b"},
			{Name: "web-c", VPC: "load-vpc", CIDR: "10.0.64.0/19", AZ: "us-east-1c"},
			{Name: "quarantine", VPC: "load-vpc", CIDR: "10.0.128.0/19", AZ: "us-east-1a", Tags: map[string]string{workflows.QuarantineSubnetTag: "true"}},
		},
		SecurityGroups: []simcloud.SecurityGroupSpec{
			{Name: "web", VPC: "load-vpc", Description: "web servers",
				Ingress: []simcloud.RuleSpec{{Protocol: "tcp", Ports: "80", CIDR: "10.0.0.0/16"}},
				Egress:  []simcloud.RuleSpec{{Protocol: "all", CIDR: "0.0.0.0/0"}}},
		},
		Images: []simcloud.ImageSpec{{ID: "ami-0a1b2c3d4e5f60718", Name: "web-golden", Description: "web server"}},
		Topics: []string{"arn:aws:sns:us-east-1:123456789012:cordon-alerts"},
	}
	for i := 0; i < groups; i++ {
		env.TargetGroups = append(env.TargetGroups, simcloud.TargetGroupSpec{Name: loadTGName(i), VPC: "load-vpc", Port: 80})
		env.AutoScalingGroups = append(env.AutoScalingGroups, simcloud.AutoScalingGroupSpec{
			Name: loadGroupName(i), Min: 1, Max: int32(2 * size), Desired: int32(size),
			Subnets: []string{"web-a", "web-b", "web-c"}, SecurityGroups: []string{"web"},
			InstanceType: "t3.medium", Image: "ami-0a1b2c3d4e5f60718", TargetGroups: []string{loadTGName(i)},
			HealthCheckType: "ELB", Tags: map[string]string{"app": "web"},
		})
	}
	return env
}

// groupHealthy counts a group's members that are InService, Healthy and
// healthy in the group's target group.
func groupHealthy(sim *simcloud.Cloud, i int) int {
	g, ok := sim.Group(loadGroupName(i))
	if !ok {
		return 0
	}
	healthy := map[string]bool{}
	for _, tr := range sim.Targets(loadTGName(i)) {
		if tr.State == "healthy" {
			healthy[tr.ID] = true
		}
	}
	n := 0
	for _, m := range g.Members {
		if m.LifecycleState == "InService" && m.HealthStatus == "Healthy" && healthy[m.InstanceID] {
			n++
		}
	}
	return n
}

type loadSample struct {
	minHealthy []int // per group
	maxOut     []int // per group: originals out of service for an incident at once
	samples    int
	worstGap   time.Duration
	busy       time.Duration // time spent sampling
}

func runLoad(b *testing.B, n, groups, size int) {
	b.StopTimer()
	require.Zero(b, n%groups, "incidents must spread evenly over %d groups", groups)
	perGroup := n / groups
	require.Less(b, perGroup, size, "each group keeps at least one instance without an incident")
	runtime.GC()
	debug.FreeOSMemory()
	resetPeakRSS()

	h := NewWithEnv(b, loadEnvironment(groups, size), loadDelays, "")
	h.Worker.Stop()
	l := workflows.DefaultGovernorLimits
	l.BreakerCount = 10_000 // see BenchmarkLoad
	h.Limits = l
	h.Acts.PollInterval = 250 * time.Millisecond // the worker's default on the simulated cloud
	h.StartWorker()

	// Every group at full, healthy capacity first.
	require.Eventually(b, func() bool {
		for i := 0; i < groups; i++ {
			if groupHealthy(h.Sim, i) < size {
				return false
			}
		}
		return true
	}, 2*time.Minute, 100*time.Millisecond, "groups at capacity")
	var insts []string
	for i := 0; i < groups; i++ {
		g, _ := h.Sim.Group(loadGroupName(i))
		in := g.InService()
		sort.Strings(in)
		insts = append(insts, in[:perGroup]...)
	}
	groupOf := map[string]int{}
	for i, inst := range insts {
		groupOf[inst] = i / perGroup
	}

	// The sampler.
	ctx, cancel := context.WithCancel(context.Background())
	s := &loadSample{minHealthy: make([]int, groups), maxOut: make([]int, groups)}
	for i := range s.minHealthy {
		s.minHealthy[i] = size
	}
	var sampled sync.WaitGroup
	sampled.Add(1)
	go func() {
		defer sampled.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		last := time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			t0 := time.Now()
			for i := 0; i < groups; i++ {
				s.minHealthy[i] = min(s.minHealthy[i], groupHealthy(h.Sim, i))
			}
			// Listing every instance costs more (thousands of them, under
			// the simulated cloud's lock): once a second.
			if s.samples%10 == 0 {
				out := make([]int, groups)
				for _, in := range h.Sim.Instances() {
					if gi, ok := groupOf[in.ID]; ok && in.Tags["cordon:incident"] != "" && in.State != "terminated" && in.State != "shutting-down" {
						out[gi]++
					}
				}
				for i := range out {
					s.maxOut[i] = max(s.maxOut[i], out[i])
				}
			}
			s.busy += time.Since(t0)
			s.samples++
			now := time.Now()
			s.worstGap = max(s.worstGap, now.Sub(last))
			last = now
		}
	}()

	b.StartTimer()
	start := time.Now()
	lat := make([]time.Duration, n)
	svc := make([]time.Duration, n) // from the governor's grant to resolved
	errs := make(chan error, n)
	var wg sync.WaitGroup
	runCtx, runCancel := context.WithTimeout(context.Background(), 50*time.Minute)
	defer runCancel()
	for j, inst := range insts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			run, err := workflows.Open(runCtx, h.Client, workflows.QuarantineInput{Account: loadAccount, Region: loadRegion, InstanceID: inst,
				Evidence: workflows.Evidence{Source: "load", BadIP: "1.19.6.4"}})
			if err != nil {
				errs <- fmt.Errorf("open %s: %w", inst, err)
				return
			}
			var res workflows.QuarantineResult
			if err := run.Get(runCtx, &res); err != nil {
				errs <- fmt.Errorf("%s: %w", inst, err)
				return
			}
			lat[j] = time.Since(t0)
			for _, st := range res.Status.Steps {
				if st.Name == "governor" {
					svc[j] = res.Status.Closed.Sub(st.Ended)
				}
			}
			if res.Outcome != workflows.OutcomeResolved {
				errs <- fmt.Errorf("%s: %s: %s", inst, res.Outcome, res.Reason)
			}
		}()
	}
	wg.Wait()
	total := time.Since(start)
	b.StopTimer()
	cancel()
	sampled.Wait()
	close(errs)
	var failed []string
	for err := range errs {
		failed = append(failed, err.Error())
	}
	require.Empty(b, failed, "%d of %d incidents did not resolve", len(failed), n)

	// Safety under load.
	minAll, maxOutAll := size, 0
	for i := 0; i < groups; i++ {
		require.GreaterOrEqual(b, s.minHealthy[i], l.MinHealthy, "group %s dropped below %d healthy", loadGroupName(i), l.MinHealthy)
		require.LessOrEqual(b, s.maxOut[i], l.MaxConcurrent, "group %s had %d incidents out at once", loadGroupName(i), s.maxOut[i])
		minAll, maxOutAll = min(minAll, s.minHealthy[i]), max(maxOutAll, s.maxOut[i])
	}
	// Exactly one image (its snapshot kept) and one copy per incident;
	// the isolation groups created once.
	snaps, copies := map[string]int{}, map[string]int{}
	for _, sn := range h.Sim.Snapshots() {
		snaps[sn.Tags["cordon:incident"]]++
	}
	for _, in := range h.Sim.Instances() {
		if in.Tags["cordon:state"] == "quarantine-copy" {
			copies[in.Tags["cordon:incident"]]++
		}
	}
	for _, inst := range insts {
		id := workflows.IncidentID(loadAccount, loadRegion, inst)
		require.Equal(b, 1, snaps[id], "%s: one image", id)
		require.Equal(b, 1, copies[id], "%s: one copy", id)
	}
	names := map[string]int{}
	for _, id := range securityGroupIDs(b, h.Sim) {
		sg, _ := h.Sim.SecurityGroup(id)
		names[sg.Name]++
	}
	require.Equal(b, 1, names["cordon-isolation"], "one isolation group")
	require.Equal(b, 1, names["cordon-isolation-transition"], "one transition group")

	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	sort.Slice(svc, func(i, j int) bool { return svc[i] < svc[j] })
	pct := func(d []time.Duration, q float64) time.Duration { return d[min(len(d)-1, int(q*float64(len(d))))] }
	p := func(q float64) time.Duration { return pct(lat, q) }
	rss, _ := peakRSS()
	b.ReportMetric(total.Seconds(), "s-total")
	b.ReportMetric(float64(p(0.50).Milliseconds()), "ms-p50")
	b.ReportMetric(float64(p(0.99).Milliseconds()), "ms-p99")
	b.ReportMetric(float64(n)/total.Seconds(), "incidents/s")
	b.ReportMetric(float64(pct(svc, 0.50).Milliseconds()), "ms-p50-granted")
	b.ReportMetric(float64(pct(svc, 0.99).Milliseconds()), "ms-p99-granted")
	b.ReportMetric(float64(rss)/1024, "MiB-peak-rss")
	b.ReportMetric(float64(minAll), "min-healthy")
	b.Logf("%d incidents, %d groups of %d: all resolved in %s (%.1f incidents/s); per incident p50 %s, p99 %s, max %s; peak RSS %d MiB (server + worker + simulated cloud)",
		n, groups, size, total.Round(time.Millisecond), float64(n)/total.Seconds(), p(0.50).Round(time.Millisecond), p(0.99).Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond), rss/1024)
	b.Logf("after the governor's grant (queueing excluded): p50 %s, p99 %s", pct(svc, 0.50).Round(time.Millisecond), pct(svc, 0.99).Round(time.Millisecond))
	b.Logf("safety: lowest healthy count of any group %d (floor %d); most incidents out of service at once in a group %d (cap %d); %d samples, longest gap between samples %s, sampler busy %.1f%% of the run",
		minAll, l.MinHealthy, maxOutAll, l.MaxConcurrent, s.samples, s.worstGap.Round(time.Millisecond), 100*s.busy.Seconds()/total.Seconds())
}

// resetPeakRSS resets the process's VmHWM to its current RSS (Linux
// clear_refs 5), so each size reports its own peak.
func resetPeakRSS() {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}
