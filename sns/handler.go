package sns

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/cordonhq/cordon/workflows"
)

// Opener hands an alert to Temporal: workflows.Open (SignalWithStart) in
// production, a fake in tests.
type Opener interface {
	Open(ctx context.Context, in workflows.QuarantineInput) error
}

// OpenerFunc adapts a function to Opener.
type OpenerFunc func(ctx context.Context, in workflows.QuarantineInput) error

// Open calls f.
func (f OpenerFunc) Open(ctx context.Context, in workflows.QuarantineInput) error { return f(ctx, in) }

// TemporalOpener opens incidents with workflows.Open on a Temporal client.
type TemporalOpener struct{ Client client.Client }

// Open signals-with-start the incident of in.InstanceID.
func (o TemporalOpener) Open(ctx context.Context, in workflows.QuarantineInput) error {
	_, err := workflows.Open(ctx, o.Client, in)
	return err
}

// Resolver finds the instance behind a host name or private address when an
// alert names no instance ID; *app.Resolver implements it. An error wrapping
// ErrNotFound is permanent (the alert is logged and dropped with a 200); any
// other error is answered 503, so SNS retries.
type Resolver interface {
	Resolve(ctx context.Context, account, region, host string, ip netip.Addr) (string, error)
}

// ErrNotFound is wrapped by Resolver errors that a retry would not fix.
var ErrNotFound = errors.New("no such instance")

// Config configures the endpoint. Only Topics is required. Nothing in it can
// weaken verification: the test-only trust hook is an Option, not a field.
type Config struct {
	// Topics is the allowlist of topic ARNs; messages and subscription
	// confirmations of any other topic are refused before any network access.
	Topics []string

	// MaxBodyBytes caps a request body (default 1 MiB; SNS messages are at
	// most 256 KiB, JSON escaping can double that).
	MaxBodyBytes int64

	// HTTPClient fetches signing certificates and visits SubscribeURLs
	// (default: a client with CertTimeout). Redirects are never followed.
	HTTPClient *http.Client
	// CertTimeout bounds one certificate fetch or SubscribeURL visit (default 5 s).
	CertTimeout time.Duration
	// MaxCertBytes caps a certificate download (default 64 KiB).
	MaxCertBytes int64
	// CertCacheSize bounds the certificate cache (default 64 URLs).
	CertCacheSize int
	// MaxMessageAge refuses messages whose signed Timestamp is older (replay
	// protection beyond the MessageId memory; default 2 h, negative: off).
	MaxMessageAge time.Duration

	// DedupSize bounds how many MessageIds are remembered (default 100 000).
	DedupSize int
	// DedupTTL is how long a MessageId is remembered (default 6 h; keep it
	// above MaxMessageAge so a replay is either a duplicate or stale).
	DedupTTL time.Duration

	// DisableAutoConfirm leaves SubscriptionConfirmations to a human (they
	// are logged; the default visits the SubscribeURL of allowlisted topics).
	DisableAutoConfirm bool

	// RawSecret enables unsigned deliveries (SNS raw message delivery, or a
	// direct POST such as ElastAlert 2's http_post2): they are accepted only
	// when the request carries this secret in RawSecretHeader, or as the
	// password of HTTP Basic auth (SNS sends https://user:secret@host/…
	// credentials that way). Empty: every unsigned delivery is refused.
	RawSecret string
	// RawSecretHeader names the header carrying RawSecret (default X-Cordon-Token).
	RawSecretHeader string

	// DefaultAccount and DefaultRegion complete alerts that do not say
	// (ElastAlert free text, detections without account/region).
	DefaultAccount, DefaultRegion string
	// Policy and UIBaseURL are copied into every QuarantineInput.
	Policy    workflows.Policy
	UIBaseURL string
	// Resolver finds the instance of alerts naming only a host or address.
	Resolver Resolver
	// IPAllowed reports addresses that must never open an incident (e.g.
	// detector.Matcher.Allowed); alerts about them are logged and dropped.
	IPAllowed func(netip.Addr) bool
	// GuardDutyMinSeverity drops findings below it (default 4, GuardDuty's
	// medium, as AWS's documented EventBridge pattern; negative: all).
	GuardDutyMinSeverity float64
	// OpenTimeout bounds one hand-off to Temporal (default 10 s; SNS waits
	// 15 s for an answer).
	OpenTimeout time.Duration

	// Logger receives JSON logs (default: slog JSON on stderr).
	Logger *slog.Logger
}

// Defaults of Config.
const (
	DefaultMaxBodyBytes         = 1 << 20
	DefaultDedupSize            = 100_000
	DefaultDedupTTL             = 6 * time.Hour
	DefaultRawSecretHeader      = "X-Cordon-Token"
	DefaultGuardDutyMinSeverity = 4.0
	DefaultOpenTimeout          = 10 * time.Second
)

// Handler is the SNS endpoint (mount it on POST /sns).
type Handler struct {
	cfg    Config
	v      *Verifier
	opener Opener
	dedup  *dedup
	stats  *Stats
	log    *slog.Logger
	secret [32]byte
}

// NewHandler builds the endpoint. opener receives one QuarantineInput per
// actionable alert.
func NewHandler(cfg Config, opener Opener, opts ...Option) (*Handler, error) {
	if opener == nil {
		return nil, errors.New("sns: nil Opener")
	}
	v, err := NewVerifier(cfg, opts...)
	if err != nil {
		return nil, err
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.DedupSize <= 0 {
		cfg.DedupSize = DefaultDedupSize
	}
	if cfg.DedupTTL <= 0 {
		cfg.DedupTTL = DefaultDedupTTL
	}
	if cfg.RawSecretHeader == "" {
		cfg.RawSecretHeader = DefaultRawSecretHeader
	}
	if cfg.GuardDutyMinSeverity == 0 {
		cfg.GuardDutyMinSeverity = DefaultGuardDutyMinSeverity
	}
	if cfg.OpenTimeout <= 0 {
		cfg.OpenTimeout = DefaultOpenTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	if _, err := cfg.Policy.Normalize(); err != nil {
		return nil, fmt.Errorf("sns: %w", err)
	}
	h := &Handler{cfg: cfg, v: v, opener: opener, dedup: newDedup(cfg.DedupSize, cfg.DedupTTL), stats: newStats(), log: cfg.Logger.With("component", "sns")}
	if cfg.RawSecret != "" {
		h.secret = sha256.Sum256([]byte(cfg.RawSecret))
	}
	if v.testOnlyLog != "" {
		h.log.Warn("TEST-ONLY trust hook enabled", "detail", v.testOnlyLog)
	}
	return h, nil
}

// Stats returns the live counters (an expvar.Var: expvar.Publish("sns", h.Stats())).
func (h *Handler) Stats() *Stats { return h.stats }

// Verifier returns the handler's verifier.
func (h *Handler) Verifier() *Verifier { return h.v }

type outcome int

const (
	outAccepted outcome = iota
	outDuplicate
	outRefused
	outFailed
)

// ServeHTTP handles one delivery.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.stats.Received.Add(1)
	log := h.log.With("remote", r.RemoteAddr, "header_message_id", trunc(r.Header.Get("x-amz-sns-message-id"), 80))
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.finish(w, log, http.StatusMethodNotAllowed, outRefused, "method-not-allowed", "method "+r.Method)
		return
	}
	if r.ContentLength > h.cfg.MaxBodyBytes {
		h.finish(w, log, http.StatusRequestEntityTooLarge, outRefused, "body-too-large", fmt.Sprintf("Content-Length %d over %d", r.ContentLength, h.cfg.MaxBodyBytes))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			h.finish(w, log, http.StatusRequestEntityTooLarge, outRefused, "body-too-large", fmt.Sprintf("body over %d bytes", h.cfg.MaxBodyBytes))
			return
		}
		h.finish(w, log, http.StatusBadRequest, outRefused, "body-unreadable", err.Error())
		return
	}
	if !LooksLikeEnvelope(body) {
		h.unsigned(w, r, log, body)
		return
	}
	m, err := ParseMessage(body)
	if err != nil {
		h.finish(w, log, http.StatusBadRequest, outRefused, "malformed-json", err.Error())
		return
	}
	log = log.With("message_id", trunc(m.MessageId, 80), "type", trunc(m.Type, 40), "topic", trunc(m.TopicArn, 256))
	if err := h.v.Verify(r.Context(), m); err != nil {
		var ve *VerifyError
		if errors.As(err, &ve) && ve.Temporary {
			h.finish(w, log, http.StatusServiceUnavailable, outFailed, string(ve.Reason), ve.Detail)
			return
		}
		reason, detail := "unverified", err.Error()
		if ve != nil {
			reason, detail = string(ve.Reason), ve.Detail
		}
		h.finish(w, log, http.StatusForbidden, outRefused, reason, detail)
		return
	}
	switch m.Type {
	case TypeSubscriptionConfirmation:
		h.confirm(w, r.Context(), log, m)
	case TypeUnsubscribeConfirmation:
		h.stats.Unsubscribed.Add(1)
		log.Error("SNS SUBSCRIPTION CANCELLED: this endpoint no longer receives alerts from the topic; re-subscribe it",
			"reason", "unsubscribe-confirmation", "message", trunc(m.Message, 300), "subscribe_url", redactURL(m.SubscribeURL))
		h.finish(w, log, http.StatusOK, outAccepted, "", "")
	default:
		key := "sns|" + m.TopicArn + "|" + m.MessageId
		h.deliver(w, r.Context(), log, key, m.Subject, m.Message, parseTime(m.Timestamp), "sns:"+m.MessageId)
	}
}

// unsigned handles a body that is no SNS envelope: raw message delivery or a
// direct post, accepted only with the shared secret.
func (h *Handler) unsigned(w http.ResponseWriter, r *http.Request, log *slog.Logger, body []byte) {
	raw := strings.EqualFold(r.Header.Get("x-amz-sns-rawdelivery"), "true")
	if !h.secretOK(r) {
		switch {
		case raw:
			h.finish(w, log, http.StatusForbidden, outRefused, "raw-delivery-unsigned", "raw message delivery carries no signature and the request has no valid shared secret")
		case !json.Valid(body):
			h.finish(w, log, http.StatusBadRequest, outRefused, "malformed-json", "body is neither an SNS message nor JSON")
		default:
			h.finish(w, log, http.StatusForbidden, outRefused, "unsigned", "JSON without SNS signature fields and no valid shared secret")
		}
		return
	}
	topic := r.Header.Get("x-amz-sns-topic-arn")
	if topic != "" && !h.v.TopicAllowed(topic) {
		h.finish(w, log, http.StatusForbidden, outRefused, string(ReasonTopicNotAllowed), "raw delivery from topic "+trunc(topic, 256))
		return
	}
	id := r.Header.Get("x-amz-sns-message-id")
	if id == "" {
		sum := sha256.Sum256(body)
		id = "sha256:" + hex.EncodeToString(sum[:12])
	}
	log = log.With("message_id", trunc(id, 80), "type", "raw", "topic", trunc(topic, 256))
	h.deliver(w, r.Context(), log, "raw|"+topic+"|"+id, "", string(body), time.Time{}, "raw:"+trunc(id, 80))
}

func (h *Handler) secretOK(r *http.Request) bool {
	if h.cfg.RawSecret == "" {
		return false
	}
	match := func(s string) bool {
		if s == "" {
			return false
		}
		sum := sha256.Sum256([]byte(s))
		return subtle.ConstantTimeCompare(sum[:], h.secret[:]) == 1
	}
	if match(r.Header.Get(h.cfg.RawSecretHeader)) {
		return true
	}
	if _, pw, ok := r.BasicAuth(); ok && match(pw) {
		return true
	}
	return false
}

// deliver parses a verified (or secret-authenticated) message and opens the
// incidents of its alerts.
func (h *Handler) deliver(w http.ResponseWriter, ctx context.Context, log *slog.Logger, key, subject, message string, ts time.Time, ref string) {
	dup, err := h.dedup.begin(ctx, key)
	if err != nil {
		h.finish(w, log, http.StatusServiceUnavailable, outFailed, "dedup-wait", err.Error())
		return
	}
	if dup {
		h.finish(w, log, http.StatusOK, outDuplicate, "duplicate", "")
		return
	}
	ok := false
	defer func() { h.dedup.end(key, ok) }()

	alerts, err := Parse(subject, message)
	if err != nil {
		var nu *NotUnderstoodError
		format := ""
		if errors.As(err, &nu) {
			format = nu.Format
		}
		h.stats.Ignored.Add(1)
		ok = true
		log.Warn("verified message not understood", "reason", err.Error(), "format", format, "status", http.StatusOK)
		h.finish(w, nil, http.StatusOK, outAccepted, "", "")
		return
	}
	opened := 0
	for i, a := range alerts {
		subKey := fmt.Sprintf("%s#%d", key, i)
		if len(alerts) > 1 && h.dedup.seen(subKey) {
			continue
		}
		aref := ref
		if len(alerts) > 1 {
			aref = fmt.Sprintf("%s#%d", ref, i+1)
		}
		in, skip, err := h.input(ctx, a, ts, aref)
		if err != nil {
			h.finish(w, log, http.StatusServiceUnavailable, outFailed, "resolve-failed", err.Error())
			return
		}
		alog := log.With("format", a.Format, "rule", a.Rule, "instance", in.InstanceID, "bad_ip", in.Evidence.BadIP)
		if skip != "" {
			h.stats.Ignored.Add(1)
			alog.Warn("verified alert not actionable", "reason", skip)
			continue
		}
		octx, cancel := context.WithTimeout(ctx, h.cfg.OpenTimeout)
		err = h.opener.Open(octx, in)
		cancel()
		if err != nil {
			alog.Error("handing the alert to Temporal failed; SNS will retry", "reason", "open-failed", "error", err.Error())
			h.finish(w, nil, http.StatusServiceUnavailable, outFailed, "open-failed", "")
			return
		}
		if len(alerts) > 1 {
			h.dedup.mark(subKey)
		}
		opened++
		h.stats.Incidents.Add(1)
		alog.Info("incident opened or evidence added", "incident", workflows.IncidentID(in.Account, in.Region, in.InstanceID), "source", in.Evidence.Source)
	}
	ok = true
	h.finish(w, nil, http.StatusOK, outAccepted, "", "")
}

// input turns an alert into the input of its incident. skip says why an
// alert is not actionable (logged, 200); err is worth a retry (503).
func (h *Handler) input(ctx context.Context, a Alert, ts time.Time, ref string) (in workflows.QuarantineInput, skip string, err error) {
	ev := workflows.Evidence{Source: a.Source, Rule: a.Rule, Reason: a.Reason(), Time: a.Time, Ref: ref, Raw: a.Raw}
	if a.Ref != "" {
		ev.Ref += " " + a.Ref
	}
	if ev.Time.IsZero() {
		ev.Time = ts
	}
	if ev.Time.IsZero() {
		ev.Time = h.v.Now().UTC()
	}
	if a.BadIP.IsValid() {
		ev.BadIP = a.BadIP.String()
	}
	in = workflows.QuarantineInput{Account: a.Account, Region: a.Region, InstanceID: a.InstanceID, Evidence: ev, Policy: h.cfg.Policy, UIBaseURL: h.cfg.UIBaseURL}
	if in.Account == "" {
		in.Account = h.cfg.DefaultAccount
	}
	if in.Region == "" {
		in.Region = h.cfg.DefaultRegion
	}
	if a.Format == FormatGuardDuty && h.cfg.GuardDutyMinSeverity > 0 && a.Severity < h.cfg.GuardDutyMinSeverity {
		return in, fmt.Sprintf("GuardDuty severity %g is below %g", a.Severity, h.cfg.GuardDutyMinSeverity), nil
	}
	if a.BadIP.IsValid() && h.cfg.IPAllowed != nil && h.cfg.IPAllowed(a.BadIP) {
		return in, fmt.Sprintf("%s is allowlisted", a.BadIP), nil
	}
	if in.Account == "" || in.Region == "" {
		return in, "the alert names no account or region and no default is configured", nil
	}
	if in.InstanceID == "" {
		if h.cfg.Resolver == nil {
			return in, fmt.Sprintf("no instance ID (host %q, address %s) and no resolver configured", a.Host, a.SourceIP), nil
		}
		id, err := h.cfg.Resolver.Resolve(ctx, in.Account, in.Region, a.Host, a.SourceIP)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				return in, err.Error(), nil
			}
			return in, "", fmt.Errorf("resolving host %q / %s: %w", a.Host, a.SourceIP, err)
		}
		in.InstanceID = id
	}
	if !workflows.ValidInstanceID(in.InstanceID) {
		return in, fmt.Sprintf("%q is not an EC2 instance ID", trunc(in.InstanceID, 40)), nil
	}
	return in, "", nil
}

// confirm visits the SubscribeURL of a verified SubscriptionConfirmation
// (its topic is allowlisted: Verify checked it).
func (h *Handler) confirm(w http.ResponseWriter, ctx context.Context, log *slog.Logger, m *Message) {
	if h.cfg.DisableAutoConfirm {
		log.Warn("subscription confirmation received; automatic confirmation is off: confirm it in the SNS console", "subscribe_url", redactURL(m.SubscribeURL))
		h.finish(w, nil, http.StatusOK, outAccepted, "", "")
		return
	}
	u, err := h.v.CheckSubscribeURL(m)
	if err != nil {
		h.finish(w, log, http.StatusForbidden, outRefused, string(ReasonOf(err)), err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(ctx, h.v.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		h.finish(w, log, http.StatusForbidden, outRefused, string(ReasonSubscribeURL), err.Error())
		return
	}
	resp, err := h.v.client.Do(req)
	if err != nil {
		h.finish(w, log, http.StatusServiceUnavailable, outFailed, "confirm-failed", redactErr(err))
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		h.finish(w, log, http.StatusServiceUnavailable, outFailed, "confirm-failed", fmt.Sprintf("SubscribeURL answered HTTP %d", resp.StatusCode))
		return
	}
	h.stats.Confirmed.Add(1)
	log.Info("subscription confirmed", "subscribe_url", redactURL(m.SubscribeURL))
	h.finish(w, nil, http.StatusOK, outAccepted, "", "")
}

// finish counts the outcome, logs refusals and failures, and answers.
func (h *Handler) finish(w http.ResponseWriter, log *slog.Logger, status int, o outcome, reason, detail string) {
	switch o {
	case outAccepted:
		h.stats.Accepted.Add(1)
	case outDuplicate:
		h.stats.Duplicate.Add(1)
		if log != nil {
			log.Info("duplicate message", "reason", reason, "status", status)
			log = nil
		}
	case outRefused:
		h.stats.Refused.Add(1)
		h.stats.refusedBy(reason)
	case outFailed:
		h.stats.Failed.Add(1)
		h.stats.refusedBy(reason)
	}
	if log != nil {
		level := slog.LevelWarn
		msg := "message refused"
		if o == outFailed {
			level, msg = slog.LevelError, "message not handled; SNS will retry"
		}
		log.Log(context.Background(), level, msg, "reason", reason, "detail", detail, "status", status)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	// The reason is one of a fixed set of tokens (the same as in the log and
	// the refused-by metric), never an echo of the request.
	text := http.StatusText(status)
	if reason != "" {
		text += ": " + reason
	}
	_, _ = io.WriteString(w, text+"\n")
}

// redactURL drops query values that grant something (the confirmation Token).
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable)"
	}
	q := u.Query()
	for k := range q {
		if strings.EqualFold(k, "Token") {
			q.Set(k, "REDACTED")
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func redactErr(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Op + " " + redactURL(ue.URL) + ": " + ue.Err.Error()
	}
	return err.Error()
}

// Stats counts deliveries. Every request is counted once in Received and
// once in exactly one of Accepted (2xx, handled), Duplicate (2xx, a MessageId
// already handled), Refused (4xx) or Failed (5xx, SNS retries). Incidents,
// Ignored, Confirmed and Unsubscribed detail the accepted ones.
type Stats struct {
	Received, Accepted, Duplicate, Refused, Failed atomic.Int64
	Incidents, Ignored, Confirmed, Unsubscribed    atomic.Int64

	mu     sync.Mutex
	reason map[string]int64
}

func newStats() *Stats { return &Stats{reason: map[string]int64{}} }

func (s *Stats) refusedBy(reason string) {
	if reason == "" {
		reason = "unknown"
	}
	s.mu.Lock()
	s.reason[reason]++
	s.mu.Unlock()
}

// StatsSnapshot is a copy of the counters.
type StatsSnapshot struct {
	Received     int64            `json:"received"`
	Accepted     int64            `json:"accepted"`
	Duplicate    int64            `json:"duplicate"`
	Refused      int64            `json:"refused"`
	Failed       int64            `json:"failed"`
	Incidents    int64            `json:"incidents"`
	Ignored      int64            `json:"ignored"`
	Confirmed    int64            `json:"confirmed"`
	Unsubscribed int64            `json:"unsubscribed"`
	ByReason     map[string]int64 `json:"byReason"`
}

// Snapshot copies the counters.
func (s *Stats) Snapshot() StatsSnapshot {
	out := StatsSnapshot{
		Received: s.Received.Load(), Accepted: s.Accepted.Load(), Duplicate: s.Duplicate.Load(),
		Refused: s.Refused.Load(), Failed: s.Failed.Load(), Incidents: s.Incidents.Load(),
		Ignored: s.Ignored.Load(), Confirmed: s.Confirmed.Load(), Unsubscribed: s.Unsubscribed.Load(),
		ByReason: map[string]int64{},
	}
	s.mu.Lock()
	for k, v := range s.reason {
		out.ByReason[k] = v
	}
	s.mu.Unlock()
	return out
}

// String renders the counters as JSON (expvar.Var).
func (s *Stats) String() string {
	b, _ := json.Marshal(s.Snapshot())
	return string(b)
}
