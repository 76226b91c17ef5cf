package search

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/cordonhq/cordon/detector"
	"github.com/cordonhq/cordon/workflows"
)

// Resolver finds the EC2 instance of a host that Packetbeat saw without
// cloud.instance.id (internal/app.Resolver is one).
type Resolver interface {
	Resolve(ctx context.Context, account, region, host string, ip netip.Addr) (string, error)
}

// Activities are the detection workflow's activities (workflows.Detector):
// SearchFlows over a cluster and EnsureIncident through a Temporal client.
type Activities struct {
	Search   *Client
	Detector *detector.Detector
	// Temporal starts incidents.
	Temporal client.Client
	// Resolver finds instances for events without cloud.instance.id; nil:
	// such hits are reported as unresolved.
	Resolver Resolver
	// ResolveAttempts: a failing lookup is retried this many activity
	// attempts (the cloud API may be throttling) before the hit is
	// reported as unresolved. Default 3.
	ResolveAttempts int32
	// Now is the clock (tests). Default time.Now.
	Now func() time.Time
	// Log receives the warnings of a SearchFlows call made outside an
	// activity (tests, tools); inside one, the activity's logger does.
	// Default slog.Default().
	Log *slog.Logger

	// templates are the detections indices whose index template this
	// worker has checked (once per daily index).
	templatesMu sync.Mutex
	templates   map[string]bool
}

// Register registers the detection workflow and its activities on w, next
// to the incident workflow (same task queue).
func Register(w worker.Registry, a *Activities) {
	w.RegisterWorkflowWithOptions(workflows.Detector, workflow.RegisterOptions{Name: workflows.DetectorWorkflowName})
	w.RegisterActivityWithOptions(a.SearchFlows, activity.RegisterOptions{Name: workflows.ActivitySearchFlows})
	w.RegisterActivityWithOptions(a.EnsureIncident, activity.RegisterOptions{Name: workflows.ActivityEnsureIncident})
}

// maxProblemSamples bounds SearchFlowsResult.Problems.
const maxProblemSamples = 10

// SearchFlows reads the flow events after in.Checkpoint (up to now minus the
// client's Settle), checks each against the blocklists and returns the hits
// and the checkpoint after the last event read. It stops early, with More
// set, after in.MaxEvents events or once in.MaxHits hits are found. It
// heartbeats after each page. Its only write is the detections index (when
// the client's Config.Detections is set): each hit once, under an _id
// derived from its flow document, so a retry from the same checkpoint
// writes nothing twice. A failed write is logged and counted
// (DetectionsFailed, and a problem line), never an error of the call.
func (a *Activities) SearchFlows(ctx context.Context, in workflows.SearchFlowsInput) (workflows.SearchFlowsResult, error) {
	if a.Search == nil || a.Detector == nil {
		return workflows.SearchFlowsResult{}, temporal.NewNonRetryableApplicationError("the worker has no search cluster or no detector configured", "NotConfigured", nil)
	}
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	cfg := a.Search.Config()
	if a.Detector.AllEvents() != cfg.AllEvents {
		return workflows.SearchFlowsResult{}, temporal.NewNonRetryableApplicationError(
			"the detector's AllEvents and the search client's AllEvents differ: set both", "NotConfigured", nil)
	}
	until := now().Add(-cfg.Settle).UTC()
	cp := in.Checkpoint
	if cp.Time.IsZero() && len(cp.Seen) == 0 && !in.StartAt.IsZero() {
		cp.Time = in.StartAt
	}
	res := workflows.SearchFlowsResult{Until: until}
	// The checkpoint is built in place (Advance would copy per event): the
	// time of the last event and the documents read at that time, kept as
	// index and _id until the end.
	next := cp.Time
	type docKey struct{ index, id string }
	var seen []docKey
	seenRefs := slices.Clone(cp.Seen) // from the input checkpoint, at its time
	var st detector.Stats
	var ev detector.Event
	var dec detector.EventDecoder
	var dets []Detection
	created := now().UTC()
	heartbeat := func(rs ReadStats) {
		if activity.IsActivity(ctx) {
			activity.RecordHeartbeat(ctx, rs)
		}
	}
	_, err := a.Search.Read(ctx, cp, until, func(d *Doc) error {
		if in.MaxEvents > 0 && res.Events >= in.MaxEvents {
			res.More = true
			return ErrStop
		}
		res.Events++
		if reason, detail := dec.DecodeValue(d.Value(), &ev); reason != "" {
			st.SkipReason(detector.Problem{File: d.Index, Reason: reason, Detail: d.ID + ": " + detail}, 0)
			if len(res.Problems) < maxProblemSamples {
				p := fmt.Sprintf("%s/_doc/%s: %s", d.Index, d.ID, reason)
				if detail != "" {
					p += ": " + detail
				}
				res.Problems = append(res.Problems, p)
			}
		} else {
			ev.DocID, ev.DocIndex, ev.File, ev.Line, ev.Index = d.ID, d.Index, "", 0, 0
			err := a.Detector.CheckFunc(&ev, &st, func(h detector.Hit) error {
				if h.Raw == "" { // the document's JSON is made for hits only
					h.Raw, h.RawTruncated = truncate(d.Source(), detector.DefaultMaxRawBytes)
				}
				res.Hits = append(res.Hits, hitOf(h))
				if cfg.Detections != "" {
					dets = append(dets, NewDetection(cfg.Detections, &h, d.Time, created))
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		if !d.Time.Equal(next) {
			next, seen, seenRefs = d.Time, seen[:0], nil
		}
		seen = append(seen, docKey{d.Index, d.ID})
		if in.MaxHits > 0 && len(res.Hits) >= in.MaxHits {
			res.More = true
			return ErrStop
		}
		return nil
	}, heartbeat)
	if err != nil {
		return workflows.SearchFlowsResult{}, err
	}
	res.Next = Checkpoint{Time: next, Seen: seenRefs}
	for _, k := range seen {
		res.Next.Seen = append(res.Next.Seen, k.index+"/"+k.id)
	}
	res.Malformed, res.Considered = st.Malformed, st.Considered
	if len(st.Skipped) > 0 {
		res.Skipped = st.Skipped
	}
	if len(dets) > 0 {
		a.writeDetections(ctx, cfg, dets, &res)
	}
	return res, nil
}

// writeDetections records dets in the detections index and counts the
// outcome into res. A failure is logged, counted and named in
// res.Problems: detection and incidents go on without it.
func (a *Activities) writeDetections(ctx context.Context, cfg Config, dets []Detection, res *workflows.SearchFlowsResult) {
	if activity.IsActivity(ctx) {
		activity.RecordHeartbeat(ctx, "writing detections")
	}
	// Bounded on its own, so that a slow cluster cannot make the search's
	// work time out with it.
	ctx, cancel := context.WithTimeout(ctx, 2*cfg.Timeout)
	defer cancel()
	var out WriteDetectionsResult
	if err := a.ensureDetectionsTemplates(ctx, cfg.Detections, dets); err != nil {
		out.Failed, out.FirstErr = len(dets), err.Error()
	} else {
		out, _ = a.Search.WriteDetections(ctx, dets, "") // out counts and names any failure
	}
	res.Detections += out.Created + out.Existing
	res.DetectionsFailed += out.Failed
	if out.Failed == 0 {
		return
	}
	msg := fmt.Sprintf("detections: %d of %d not written to %s: %s", out.Failed, len(dets), DetectionsPattern(cfg.Detections), out.FirstErr)
	res.Problems = append(res.Problems, msg)
	kv := []any{"failed", out.Failed, "hits", len(dets), "index", DetectionsPattern(cfg.Detections), "error", out.FirstErr}
	switch {
	case activity.IsActivity(ctx):
		activity.GetLogger(ctx).Warn("detector: detections not written; detection goes on", kv...)
	case a.Log != nil:
		a.Log.Warn("detector: detections not written; detection goes on", kv...)
	default:
		slog.Warn("detector: detections not written; detection goes on", kv...)
	}
}

// ensureDetectionsTemplates makes sure the index template of prefix is in
// the cluster before the first write to each daily index of dets (an index
// created without it would map addresses as text).
func (a *Activities) ensureDetectionsTemplates(ctx context.Context, prefix string, dets []Detection) error {
	a.templatesMu.Lock()
	defer a.templatesMu.Unlock()
	var missing []string
	for _, d := range dets {
		if !a.templates[d.Index] && !slices.Contains(missing, d.Index) {
			missing = append(missing, d.Index)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if _, err := a.Search.EnsureDetectionsTemplate(ctx, prefix); err != nil {
		return err
	}
	if a.templates == nil || len(a.templates) > 1000 {
		a.templates = map[string]bool{}
	}
	for _, idx := range missing {
		a.templates[idx] = true
	}
	return nil
}

// truncate cuts raw to at most n bytes, on a UTF-8 boundary.
func truncate(raw []byte, n int) (string, bool) {
	if len(raw) <= n {
		return string(raw), false
	}
	for n > 0 && !utf8.RuneStart(raw[n]) {
		n--
	}
	return string(raw[:n]), true
}

// hitOf turns a detector hit into the evidence it becomes.
func hitOf(h detector.Hit) workflows.DetectHit {
	best := h.Best()
	out := workflows.DetectHit{
		Account: h.AccountID, Region: h.Region, InstanceID: h.InstanceID, HostName: h.HostName,
		Evidence: workflows.Evidence{
			Source: "detector", BadIP: h.BadIP.String(), Rule: best.List, Reason: h.Reason(),
			Time: h.Time, Ref: h.Ref, Raw: h.Raw,
		},
	}
	if h.SourceIP.IsValid() {
		out.SourceIP = h.SourceIP.String()
	}
	return out
}

// EnsureIncident resolves the hit's instance when the event did not name
// it and starts its incident with the hit as the first evidence, unless it
// is already open. A hit whose instance cannot be found, or whose input is
// not a valid incident, is reported (Unresolved), not failed: the detector
// goes on.
func (a *Activities) EnsureIncident(ctx context.Context, in workflows.EnsureIncidentInput) (workflows.EnsureIncidentResult, error) {
	h := in.Hit
	q := workflows.QuarantineInput{
		Account: first(h.Account, in.Account), Region: first(h.Region, in.Region), InstanceID: h.InstanceID,
		Evidence: h.Evidence, Policy: in.Policy, UIBaseURL: in.UIBaseURL,
	}
	if q.InstanceID == "" {
		if a.Resolver == nil {
			return workflows.EnsureIncidentResult{Unresolved: fmt.Sprintf("event has no cloud.instance.id and the worker has no cloud to look up host %q / %s", h.HostName, h.SourceIP)}, nil
		}
		ip, _ := netip.ParseAddr(h.SourceIP)
		id, err := a.Resolver.Resolve(ctx, q.Account, q.Region, h.HostName, ip)
		if err != nil {
			attempts := a.ResolveAttempts
			if attempts <= 0 {
				attempts = 3
			}
			if activity.IsActivity(ctx) && activity.GetInfo(ctx).Attempt < attempts {
				return workflows.EnsureIncidentResult{}, err
			}
			return workflows.EnsureIncidentResult{Unresolved: err.Error()}, nil
		}
		q.InstanceID = id
	}
	if a.Temporal == nil {
		return workflows.EnsureIncidentResult{}, temporal.NewNonRetryableApplicationError("the worker has no Temporal client for the detector", "NotConfigured", nil)
	}
	switch {
	case !workflows.ValidInstanceID(q.InstanceID):
		return workflows.EnsureIncidentResult{InstanceID: q.InstanceID, Unresolved: fmt.Sprintf("%q is not an EC2 instance ID", q.InstanceID)}, nil
	case q.Account == "" || q.Region == "":
		return workflows.EnsureIncidentResult{InstanceID: q.InstanceID, Unresolved: "no cloud.account.id / cloud.region in the event and no default account and region configured"}, nil
	}
	if _, err := q.Policy.Normalize(); err != nil {
		return workflows.EnsureIncidentResult{}, temporal.NewNonRetryableApplicationError(err.Error(), "BadPolicy", err)
	}
	id, started, err := workflows.EnsureIncident(ctx, a.Temporal, q)
	if err != nil {
		return workflows.EnsureIncidentResult{}, err
	}
	return workflows.EnsureIncidentResult{IncidentID: id, InstanceID: q.InstanceID, Started: started}, nil
}

func first(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
