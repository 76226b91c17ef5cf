package workflows

import "time"

// The contract of the detection workflow (detect.go): names, the
// checkpoint, its input and status, and the payloads of its two activities,
// which the worker implements over a search engine (internal/search).

// DetectorWorkflowName is the registered name of the detection workflow.
const DetectorWorkflowName = "DetectorWorkflow"

// DefaultDetectorID is the workflow ID of the detector when none is given:
// one detector per index pattern and cluster is the usual deployment.
const DefaultDetectorID = "detector/packetbeat"

// QueryDetectorStatus returns a detector's DetectorStatus.
const QueryDetectorStatus = "detector-status"

// Activity names of the detection workflow.
const (
	// ActivitySearchFlows reads the flow events after a checkpoint from the
	// search engine, matches them and returns the hits and the next
	// checkpoint (SearchFlowsInput → SearchFlowsResult). It heartbeats per
	// page and changes nothing, so a retry from the same checkpoint is safe.
	ActivitySearchFlows = "SearchFlows"
	// ActivityEnsureIncident makes sure the incident of a hit's instance is
	// open, starting it with the hit as its first evidence when it is not
	// (EnsureIncidentInput → EnsureIncidentResult). The workflow then sends
	// every other hit as an evidence signal itself, so that each hit becomes
	// evidence exactly once even when the worker dies mid-way.
	ActivityEnsureIncident = "EnsureIncident"
)

// Detector phases, as reported by the status query.
const (
	DetectorSearching  = "searching"         // SearchFlows is running
	DetectorOpening    = "opening-incidents" // hits are becoming incidents and evidence
	DetectorWaiting    = "waiting"           // caught up; the next poll is at NextPoll
	DetectorBackingOff = "backing-off"       // the last search failed; retried at NextPoll
)

// DetectCheckpoint is where a detector is in the event stream: every event
// sorted before it has been processed, none after it. Events are sorted by
// their time field (nanoseconds) and, among equal times, told apart by their
// document reference, so a checkpoint never skips nor repeats an event
// however the search engine pages.
type DetectCheckpoint struct {
	// Time is the time of the last processed event. Zero: from the
	// beginning of the index (or from DetectorConfig.StartAt).
	Time time.Time `json:"time"`
	// Seen are the references ("<_index>/<_id>") of the processed events
	// whose time is exactly Time: the next search starts at Time inclusive
	// and skips them.
	Seen []string `json:"seen,omitempty"`
}

// After reports whether an event at t with reference ref comes after the
// checkpoint, i.e. has not been processed.
func (c DetectCheckpoint) After(t time.Time, ref string) bool {
	switch {
	case t.After(c.Time):
		return true
	case t.Before(c.Time):
		return false
	}
	for _, s := range c.Seen {
		if s == ref {
			return false
		}
	}
	return true
}

// Advance returns the checkpoint past an event at t with reference ref.
// Events must be advanced over in their sort order.
func (c DetectCheckpoint) Advance(t time.Time, ref string) DetectCheckpoint {
	if t.Equal(c.Time) {
		seen := make([]string, len(c.Seen), len(c.Seen)+1)
		copy(seen, c.Seen)
		return DetectCheckpoint{Time: c.Time, Seen: append(seen, ref)}
	}
	return DetectCheckpoint{Time: t, Seen: []string{ref}}
}

// DetectorConfig tunes a detector. Zero values take the defaults below.
// Where the events are (cluster, credentials, index pattern) and the
// blocklists are the worker's configuration, not the workflow's: secrets
// stay out of the history.
type DetectorConfig struct {
	// PollInterval is the pause after a search that caught up. Default 1s.
	PollInterval time.Duration `json:"pollInterval,omitempty"`
	// MaxEvents bounds the documents one SearchFlows call reads; a call
	// that stops there is followed by the next at once. Default 10000.
	MaxEvents int `json:"maxEvents,omitempty"`
	// MaxHits bounds the hits one SearchFlows call returns (they travel in
	// the history). Default 200.
	MaxHits int `json:"maxHits,omitempty"`
	// RunPolls is how many polls one run makes before it continues as new
	// (earlier when Temporal suggests it). Default 500.
	RunPolls int `json:"runPolls,omitempty"`
	// SearchTimeout is SearchFlows' start-to-close timeout. Default 2m.
	SearchTimeout time.Duration `json:"searchTimeout,omitempty"`
	// SearchAttempts is how many times Temporal tries one SearchFlows call
	// (1 s, 2 s, … apart) before the workflow records the failure in its
	// status and backs off itself. Default 3.
	SearchAttempts int `json:"searchAttempts,omitempty"`
	// BackoffInitial and BackoffMax bound the workflow's own backoff after
	// failed searches: doubled at each consecutive failure. Defaults 2s, 1m.
	BackoffInitial time.Duration `json:"backoffInitial,omitempty"`
	BackoffMax     time.Duration `json:"backoffMax,omitempty"`
	// StartAt, when set and the checkpoint is zero, skips events before it.
	StartAt time.Time `json:"startAt,omitempty"`

	// Account and Region are used for events without cloud.account.id or
	// cloud.region.
	Account string `json:"account,omitempty"`
	Region  string `json:"region,omitempty"`
	// Policy and UIBaseURL go into the incidents the detector opens.
	Policy    Policy `json:"policy"`
	UIBaseURL string `json:"uiBaseURL,omitempty"`
	// DryRun counts hits but opens no incident.
	DryRun bool `json:"dryRun,omitempty"`
}

// Detector defaults.
const (
	DefaultDetectPollInterval   = time.Second
	DefaultDetectMaxEvents      = 10000
	DefaultDetectMaxHits        = 200
	DefaultDetectRunPolls       = 500
	DefaultDetectSearchTimeout  = 2 * time.Minute
	DefaultDetectSearchAttempts = 3
	DefaultDetectBackoffInitial = 2 * time.Second
	DefaultDetectBackoffMax     = time.Minute
)

// WithDefaults fills the zero fields of c.
func (c DetectorConfig) WithDefaults() DetectorConfig {
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultDetectPollInterval
	}
	if c.MaxEvents <= 0 {
		c.MaxEvents = DefaultDetectMaxEvents
	}
	if c.MaxHits <= 0 {
		c.MaxHits = DefaultDetectMaxHits
	}
	if c.RunPolls <= 0 {
		c.RunPolls = DefaultDetectRunPolls
	}
	if c.SearchTimeout <= 0 {
		c.SearchTimeout = DefaultDetectSearchTimeout
	}
	if c.SearchAttempts <= 0 {
		c.SearchAttempts = DefaultDetectSearchAttempts
	}
	if c.BackoffInitial <= 0 {
		c.BackoffInitial = DefaultDetectBackoffInitial
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = DefaultDetectBackoffMax
	}
	return c
}

// DetectorInput starts (or continues) a detector.
type DetectorInput struct {
	Config DetectorConfig `json:"config"`
	// State is carried over continue-as-new; zero for a new detector.
	State DetectorState `json:"state"`
}

// DetectorCounts are a detector's running totals since it was first started.
type DetectorCounts struct {
	Polls       int64 `json:"polls"`
	FailedPolls int64 `json:"failedPolls"`
	// Events are documents read; Malformed the ones that could not be used.
	Events    int64 `json:"events"`
	Malformed int64 `json:"malformed"`
	// Considered are events checked against the lists (final flow records).
	Considered int64 `json:"considered"`
	Hits       int64 `json:"hits"`
	// Started counts incidents the detector started; Evidence the hits it
	// added to incidents (as their first evidence or as a signal).
	Started  int64 `json:"started"`
	Evidence int64 `json:"evidence"`
	// Unresolved counts hits whose instance could not be found.
	Unresolved int64 `json:"unresolved"`
	// Detections counts hits recorded in the detections index;
	// DetectionsFailed the ones that could not be written there (the
	// detector goes on without them).
	Detections       int64 `json:"detections,omitempty"`
	DetectionsFailed int64 `json:"detectionsFailed,omitempty"`
	// Skipped counts documents not considered, by reason.
	Skipped map[string]int64 `json:"skipped,omitempty"`
}

// DetectorState is what a detector carries from poll to poll and across
// continue-as-new.
type DetectorState struct {
	Checkpoint DetectCheckpoint `json:"checkpoint"`
	Counts     DetectorCounts   `json:"counts"`
	// LastPoll is when the last search ended; Until the upper time bound
	// it searched to.
	LastPoll time.Time `json:"lastPoll,omitempty"`
	Until    time.Time `json:"until,omitempty"`
	// Failures counts consecutive failed searches (0 once one succeeds);
	// LastError is the latest failure, kept after recovery.
	Failures    int       `json:"failures"`
	LastError   string    `json:"lastError,omitempty"`
	LastErrorAt time.Time `json:"lastErrorAt,omitempty"`
	// Problems are the latest malformed documents and unresolved hits
	// (bounded), "<ref>: <reason>".
	Problems []string `json:"problems,omitempty"`
	// Runs counts continue-as-new generations.
	Runs int `json:"runs"`
}

// DetectorStatus is the answer of the detector-status query.
type DetectorStatus struct {
	DetectorState
	Phase    string    `json:"phase"`
	NextPoll time.Time `json:"nextPoll,omitempty"`
	// Polls counts the polls of this run (it continues as new at RunPolls).
	RunPollsDone int `json:"runPollsDone"`
}

// DetectHit is one hit of SearchFlows, ready to become evidence.
type DetectHit struct {
	// Account, Region and InstanceID come from the event's cloud metadata
	// (empty when it had none); HostName and SourceIP let EnsureIncident
	// find the instance otherwise.
	Account    string   `json:"account,omitempty"`
	Region     string   `json:"region,omitempty"`
	InstanceID string   `json:"instanceID,omitempty"`
	HostName   string   `json:"hostName,omitempty"`
	SourceIP   string   `json:"sourceIP,omitempty"`
	Evidence   Evidence `json:"evidence"`
}

// SearchFlowsInput is the input of ActivitySearchFlows.
type SearchFlowsInput struct {
	Checkpoint DetectCheckpoint `json:"checkpoint"`
	StartAt    time.Time        `json:"startAt,omitempty"`
	MaxEvents  int              `json:"maxEvents"`
	MaxHits    int              `json:"maxHits"`
}

// SearchFlowsResult is the result of ActivitySearchFlows.
type SearchFlowsResult struct {
	// Next is the checkpoint after the events read.
	Next DetectCheckpoint `json:"next"`
	// More is set when the call stopped at MaxEvents or MaxHits.
	More bool `json:"more,omitempty"`
	// Until is the upper time bound searched to (now minus the settle
	// delay, when the call started).
	Until time.Time `json:"until"`
	// Counts of this call, as in DetectorCounts.
	Events     int            `json:"events"`
	Malformed  int            `json:"malformed"`
	Considered int            `json:"considered"`
	Skipped    map[string]int `json:"skipped,omitempty"`
	Problems   []string       `json:"problems,omitempty"`
	Hits       []DetectHit    `json:"hits,omitempty"`
	// Detections are the hits recorded in the detections index (written
	// now or found there from an earlier attempt); DetectionsFailed the
	// ones that could not be written (logged, and named in Problems).
	Detections       int `json:"detections,omitempty"`
	DetectionsFailed int `json:"detectionsFailed,omitempty"`
}

// EnsureIncidentInput is the input of ActivityEnsureIncident.
type EnsureIncidentInput struct {
	Hit DetectHit `json:"hit"`
	// Account and Region are the defaults for a hit without them.
	Account   string `json:"account,omitempty"`
	Region    string `json:"region,omitempty"`
	Policy    Policy `json:"policy"`
	UIBaseURL string `json:"uiBaseURL,omitempty"`
}

// EnsureIncidentResult is the result of ActivityEnsureIncident.
type EnsureIncidentResult struct {
	// IncidentID is the incident's workflow ID; empty when Unresolved.
	IncidentID string `json:"incidentID,omitempty"`
	InstanceID string `json:"instanceID,omitempty"`
	// Started is set when this call started the incident with the hit's
	// evidence as its input.
	Started bool `json:"started,omitempty"`
	// Unresolved says why the hit's instance could not be found.
	Unresolved string `json:"unresolved,omitempty"`
}
