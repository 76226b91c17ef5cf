package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"go.temporal.io/sdk/client"

	"github.com/cordonhq/cordon/activities"
	"github.com/cordonhq/cordon/detector"
	"github.com/cordonhq/cordon/workflows"
)

// Resolver maps a Packetbeat host (host name or source address) to its EC2
// instance when the event carries no cloud.instance.id. Answers are cached.
type Resolver struct {
	Cloud activities.CloudProvider

	mu    sync.Mutex
	cache map[string]string
}

// Resolve returns the instance ID running at ip (or named host) in the
// account and region, or an error saying what was looked for.
func (r *Resolver) Resolve(ctx context.Context, account, region, host string, ip netip.Addr) (string, error) {
	key := account + "/" + region + "/" + host + "/" + ip.String()
	r.mu.Lock()
	if id, ok := r.cache[key]; ok {
		r.mu.Unlock()
		return id, nil
	}
	r.mu.Unlock()
	if r.Cloud == nil {
		return "", fmt.Errorf("event has no cloud.instance.id and no cloud is configured to look up %s/%s", host, ip)
	}
	c, err := r.Cloud.Clients(ctx, account, region)
	if err != nil {
		return "", err
	}
	var filters [][]ec2types.Filter
	if ip.IsValid() {
		filters = append(filters, []ec2types.Filter{{Name: aws.String("private-ip-address"), Values: []string{ip.String()}}})
	}
	if host != "" {
		filters = append(filters, []ec2types.Filter{{Name: aws.String("tag:Name"), Values: []string{host}}})
		filters = append(filters, []ec2types.Filter{{Name: aws.String("private-dns-name"), Values: []string{host, host + "." + region + ".compute.internal", host + ".ec2.internal"}}})
	}
	for _, f := range filters {
		f = append(f, ec2types.Filter{Name: aws.String("instance-state-name"), Values: []string{"pending", "running", "stopping", "stopped"}})
		out, err := c.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: f})
		if err != nil {
			return "", fmt.Errorf("looking up %s/%s: %w", host, ip, err)
		}
		for _, res := range out.Reservations {
			for _, inst := range res.Instances {
				id := aws.ToString(inst.InstanceId)
				r.mu.Lock()
				if r.cache == nil {
					r.cache = map[string]string{}
				}
				r.cache[key] = id
				r.mu.Unlock()
				return id, nil
			}
		}
	}
	return "", fmt.Errorf("no instance in %s/%s has host name %q or address %s", account, region, host, ip)
}

// DetectOptions configure a detection run over files.
type DetectOptions struct {
	Account, Region string // used when an event carries no cloud.account.id / cloud.region
	Policy          workflows.Policy
	UIBaseURL       string
	DryRun          bool // report hits, start nothing
}

// DetectReport is the outcome of a detection run.
type DetectReport struct {
	Stats      detector.Stats
	Hits       []detector.Hit
	Incidents  []string // incident IDs started or signalled, sorted
	Unresolved []string // hits whose instance could not be found, with the reason
}

// DetectFiles scans Packetbeat files and opens (or adds evidence to) the
// incident of each matching instance.
func DetectFiles(ctx context.Context, c client.Client, det *detector.Detector, res *Resolver, files []string, o DetectOptions) (DetectReport, error) {
	var rep DetectReport
	seen := map[string]bool{}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return rep, fmt.Errorf("opening events file: %w", err)
		}
		st, err := det.ScanFunc(ctx, f, name, func(h detector.Hit) error {
			rep.Hits = append(rep.Hits, h)
			if o.DryRun {
				return nil
			}
			in := HitInput(h, o)
			if in.InstanceID == "" {
				id, err := res.Resolve(ctx, in.Account, in.Region, h.HostName, h.SourceIP)
				if err != nil {
					rep.Unresolved = append(rep.Unresolved, fmt.Sprintf("%s: %v", h.Ref, err))
					return nil
				}
				in.InstanceID = id
			}
			if _, err := workflows.Open(ctx, c, in); err != nil {
				return fmt.Errorf("opening the incident of %s (%s): %w", in.InstanceID, h.Ref, err)
			}
			id := workflows.IncidentID(in.Account, in.Region, in.InstanceID)
			if !seen[id] {
				seen[id] = true
				rep.Incidents = append(rep.Incidents, id)
			}
			return nil
		})
		f.Close()
		mergeStats(&rep.Stats, st)
		if err != nil {
			return rep, err
		}
	}
	sort.Strings(rep.Incidents)
	return rep, nil
}

// HitInput turns a detector hit into the input of its incident.
func HitInput(h detector.Hit, o DetectOptions) workflows.QuarantineInput {
	account, region := h.AccountID, h.Region
	if account == "" {
		account = o.Account
	}
	if region == "" {
		region = o.Region
	}
	best := h.Best()
	return workflows.QuarantineInput{
		Account: account, Region: region, InstanceID: h.InstanceID,
		Evidence: workflows.Evidence{
			Source: "detector", BadIP: h.BadIP.String(), Rule: best.List, Reason: h.Reason(),
			Time: h.Time, Ref: h.Ref, Raw: h.Raw,
		},
		Policy: o.Policy, UIBaseURL: o.UIBaseURL,
	}
}

func mergeStats(dst *detector.Stats, s detector.Stats) {
	dst.Lines += s.Lines
	dst.Events += s.Events
	dst.Malformed += s.Malformed
	dst.Considered += s.Considered
	dst.Matched += s.Matched
	dst.Hits += s.Hits
	dst.Allowlisted += s.Allowlisted
	for k, v := range s.Skipped {
		if dst.Skipped == nil {
			dst.Skipped = map[string]int{}
		}
		dst.Skipped[k] += v
	}
	dst.Samples = append(dst.Samples, s.Samples...)
}

// LoadMatcher loads blocklist files or directories and builds the matcher,
// reporting bad lines and imported ElastAlert rules through warn.
func LoadMatcher(paths []string, allow []netip.Prefix, warn func(string)) (*detector.Matcher, error) {
	results, err := detector.LoadBlocklists(paths)
	if err != nil {
		return nil, err
	}
	reportLists(results, warn, warn)
	if err := detector.RequireEntries(paths, results); err != nil {
		return nil, err
	}
	return detector.NewMatcher(detector.ListsOf(results), detector.MatcherConfig{Allow: allow}), nil
}

// WatchBlocklists loads blocklist files or directories into a new holder
// and, with reload > 0, checks them every reload interval until ctx is done:
// a change is loaded into the holder without a restart; a change that
// cannot be loaded is logged and the holder keeps the previous lists (see
// detector.Reloader). reload 0 loads once.
func WatchBlocklists(ctx context.Context, paths []string, allow []netip.Prefix, reload time.Duration, log *slog.Logger) (*detector.MatcherHolder, error) {
	if reload < 0 {
		return nil, fmt.Errorf("--blocklist-reload %s: must not be negative (0 turns reloading off)", reload)
	}
	h := &detector.MatcherHolder{}
	r := detector.NewReloader(h, detector.ReloadConfig{
		Paths: paths, Matcher: detector.MatcherConfig{Allow: allow}, Interval: reload, Logger: log,
	})
	results, err := r.Load()
	reportLists(results,
		func(s string) { log.Info("blocklist", "note", s) },
		func(s string) { log.Warn("blocklist", "problem", s) })
	if err != nil {
		return nil, err
	}
	m := h.Load()
	v4, v6 := m.Prefixes()
	log.Info("blocklists loaded", "lists", len(results), "prefixesV4", v4, "prefixesV6", v6, "reload", reload)
	if reload > 0 {
		go r.Run(ctx)
	}
	return h, nil
}

// reportLists describes the imported ElastAlert rules through note and the
// bad lines through warn.
func reportLists(results []*detector.LoadResult, note, warn func(string)) {
	for _, r := range results {
		if ea := r.ElastAlert; ea != nil {
			note(fmt.Sprintf("%s: ElastAlert rule %q on %s, %s: %d entries (looked up on both sides of every flow)",
				r.Name, ea.Name, ea.CompareKey, ea.Side(), len(r.Entries)))
		}
		for _, e := range r.Errors {
			warn(e.Error())
		}
		if r.BadLines > len(r.Errors) {
			warn(fmt.Sprintf("%s: %d more bad lines not shown", r.Name, r.BadLines-len(r.Errors)))
		}
	}
}
