package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// maxDetectProblems bounds DetectorState.Problems.
const maxDetectProblems = 20

// Detector is the durable detection loop (DetectorWorkflowName): its state
// is the checkpoint in the event stream. Each poll
//
//  1. runs SearchFlows from the checkpoint (an activity that heartbeats per
//     page and changes nothing, so Temporal may retry it from the same
//     checkpoint),
//  2. for each instance with hits, runs EnsureIncident (starts the incident
//     with the first hit as its evidence unless it is open) and sends every
//     other hit as an evidence signal from the workflow itself — recorded
//     in the history, so never sent twice, even when the worker dies
//     between two signals,
//  3. only then moves the checkpoint past the events read.
//
// A worker restart therefore neither skips nor repeats an event. A failed
// search (engine down, errors) leaves the checkpoint where it is, is
// recorded in the status (query detector-status) and retried with a
// doubling backoff. After RunPolls polls (or when Temporal suggests it) the
// workflow continues as new with its state.
func Detector(ctx workflow.Context, in DetectorInput) error {
	cfg := in.Config.WithDefaults()
	d := &detectLoop{cfg: cfg, st: in.State, phase: DetectorSearching}
	if d.st.Checkpoint.Time.IsZero() && len(d.st.Checkpoint.Seen) == 0 && !cfg.StartAt.IsZero() {
		d.st.Checkpoint.Time = cfg.StartAt
	}
	if err := workflow.SetQueryHandler(ctx, QueryDetectorStatus, func() (DetectorStatus, error) {
		return DetectorStatus{DetectorState: d.st, Phase: d.phase, NextPoll: d.next, RunPollsDone: d.polls}, nil
	}); err != nil {
		return err
	}
	searchCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: cfg.SearchTimeout,
		HeartbeatTimeout:    30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    10 * time.Second,
			MaximumAttempts:    int32(cfg.SearchAttempts),
		},
	})
	// Opening an incident is retried until it works: the hits are in the
	// history and the checkpoint does not move until they are delivered.
	// It takes milliseconds (one start call, maybe one EC2 lookup); the
	// short timeout bounds the wait when a worker dies while running it.
	ensureCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 15 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    30 * time.Second,
		},
	})

	for d.polls < cfg.RunPolls {
		d.polls++
		d.phase, d.next = DetectorSearching, time.Time{}
		var res SearchFlowsResult
		err := workflow.ExecuteActivity(searchCtx, ActivitySearchFlows, SearchFlowsInput{
			Checkpoint: d.st.Checkpoint, StartAt: cfg.StartAt, MaxEvents: cfg.MaxEvents, MaxHits: cfg.MaxHits,
		}).Get(ctx, &res)
		d.st.Counts.Polls++
		d.st.LastPoll = workflow.Now(ctx)
		if err != nil {
			if errors.Is(ctx.Err(), workflow.ErrCanceled) {
				return ctx.Err()
			}
			d.st.Failures++
			d.st.Counts.FailedPolls++
			d.st.LastError, d.st.LastErrorAt = detectRootMessage(err), workflow.Now(ctx)
			wait := cfg.BackoffInitial
			for i := 1; i < d.st.Failures && wait < cfg.BackoffMax; i++ {
				wait *= 2
			}
			wait = min(wait, cfg.BackoffMax)
			d.phase, d.next = DetectorBackingOff, workflow.Now(ctx).Add(wait)
			workflow.GetLogger(ctx).Warn("detector: search failed; checkpoint kept", "error", d.st.LastError, "retryIn", wait)
			if err := workflow.Sleep(ctx, wait); err != nil {
				return err
			}
			continue
		}
		d.st.Failures = 0
		d.st.Until = res.Until
		d.count(res)
		if len(res.Hits) > 0 && !cfg.DryRun {
			d.phase = DetectorOpening
			if err := d.deliver(ctx, ensureCtx, res.Hits); err != nil {
				return err
			}
		}
		d.st.Checkpoint = res.Next
		if res.More {
			if workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
				break
			}
			continue
		}
		d.phase, d.next = DetectorWaiting, workflow.Now(ctx).Add(cfg.PollInterval)
		if err := workflow.Sleep(ctx, cfg.PollInterval); err != nil {
			return err
		}
		if workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			break
		}
	}
	d.st.Runs++
	return workflow.NewContinueAsNewError(ctx, DetectorWorkflowName, DetectorInput{Config: in.Config, State: d.st})
}

type detectLoop struct {
	cfg   DetectorConfig
	st    DetectorState
	phase string
	next  time.Time
	polls int
}

func (d *detectLoop) count(res SearchFlowsResult) {
	c := &d.st.Counts
	c.Events += int64(res.Events)
	c.Malformed += int64(res.Malformed)
	c.Considered += int64(res.Considered)
	c.Hits += int64(len(res.Hits))
	c.Detections += int64(res.Detections)
	c.DetectionsFailed += int64(res.DetectionsFailed)
	for k, v := range res.Skipped {
		if c.Skipped == nil {
			c.Skipped = map[string]int64{}
		}
		c.Skipped[k] += int64(v)
	}
	d.problems(res.Problems...)
}

func (d *detectLoop) problems(p ...string) {
	d.st.Problems = append(d.st.Problems, p...)
	if n := len(d.st.Problems) - maxDetectProblems; n > 0 {
		d.st.Problems = append([]string(nil), d.st.Problems[n:]...)
	}
}

// detectHitGroup is the hits of one instance (or one unresolved host) in a batch.
type detectHitGroup struct {
	key  string
	hits []DetectHit
	res  EnsureIncidentResult
}

func detectHitKey(h DetectHit, cfg DetectorConfig) string {
	account, region := detectFirst(h.Account, cfg.Account), detectFirst(h.Region, cfg.Region)
	if h.InstanceID != "" {
		return account + "/" + region + "/" + h.InstanceID
	}
	return account + "/" + region + "/host:" + h.HostName + "/" + h.SourceIP
}

func detectFirst(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// deliver turns a batch of hits into incidents and evidence, each hit once.
func (d *detectLoop) deliver(ctx, ensureCtx workflow.Context, hits []DetectHit) error {
	var groups []*detectHitGroup
	byKey := map[string]*detectHitGroup{}
	for _, h := range hits {
		k := detectHitKey(h, d.cfg)
		g := byKey[k]
		if g == nil {
			g = &detectHitGroup{key: k}
			byKey[k] = g
			groups = append(groups, g)
		}
		g.hits = append(g.hits, h)
	}
	ensure := func(h DetectHit) workflow.Future {
		return workflow.ExecuteActivity(ensureCtx, ActivityEnsureIncident, EnsureIncidentInput{
			Hit: h, Account: d.cfg.Account, Region: d.cfg.Region, Policy: d.cfg.Policy, UIBaseURL: d.cfg.UIBaseURL,
		})
	}
	futures := make([]workflow.Future, len(groups))
	for i, g := range groups {
		futures[i] = ensure(g.hits[0])
	}
	type sent struct {
		g *detectHitGroup
		h DetectHit
		f workflow.Future
	}
	var signals []sent
	for i, g := range groups {
		if err := futures[i].Get(ctx, &g.res); err != nil {
			return err // only when the workflow is cancelled: the activity retries forever
		}
		if g.res.Unresolved != "" {
			d.st.Counts.Unresolved += int64(len(g.hits))
			d.problems(fmt.Sprintf("%s: %s", g.hits[0].Evidence.Ref, g.res.Unresolved))
			continue
		}
		rest := g.hits
		if g.res.Started {
			d.st.Counts.Started++
			d.st.Counts.Evidence++
			rest = rest[1:]
		}
		for _, h := range rest {
			signals = append(signals, sent{g, h, workflow.SignalExternalWorkflow(ctx, g.res.IncidentID, "", SignalEvidence, h.Evidence)})
		}
	}
	// A signal fails when the incident closed in the meantime: the hit then
	// opens a new one (a closed incident's ID may be reused).
	for _, s := range signals {
		if err := s.f.Get(ctx, nil); err == nil {
			d.st.Counts.Evidence++
			continue
		} else if errors.Is(ctx.Err(), workflow.ErrCanceled) {
			return ctx.Err()
		}
		var res EnsureIncidentResult
		if err := ensure(s.h).Get(ctx, &res); err != nil {
			return err
		}
		switch {
		case res.Unresolved != "":
			d.st.Counts.Unresolved++
			d.problems(fmt.Sprintf("%s: %s", s.h.Evidence.Ref, res.Unresolved))
		case res.Started:
			d.st.Counts.Started++
			d.st.Counts.Evidence++
		default:
			if err := workflow.SignalExternalWorkflow(ctx, res.IncidentID, "", SignalEvidence, s.h.Evidence).Get(ctx, nil); err != nil {
				d.problems(fmt.Sprintf("%s: evidence not delivered to %s: %s", s.h.Evidence.Ref, res.IncidentID, detectRootMessage(err)))
				continue
			}
			d.st.Counts.Evidence++
		}
	}
	return nil
}

// detectRootMessage is the message of an activity failure's cause, without
// Temporal's wrapping.
func detectRootMessage(err error) string {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return ae.Message()
	}
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		err = u
	}
}
