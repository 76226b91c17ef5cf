package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/log"
)

// Notifier alerts operators: an SNS topic, a LIFX light (breathing red while
// an incident is open) and IFTTT webhooks. Every channel is optional and
// best effort: alerting never blocks containment.
type Notifier struct {
	SNS      SNSAPI
	TopicARN string

	LIFXToken    string // secret: never logged
	LIFXSelector string // e.g. "all", "label:Office"; default "all"
	LIFXBaseURL  string // default https://api.lifx.com/v1

	IFTTTKey     string // secret: never logged
	IFTTTEvent   string // event name prefix; the phase is appended: cordon_opened
	IFTTTBaseURL string // default https://maker.ifttt.com

	HTTP *http.Client

	// OtherOpenIncidents, when set, counts the open incidents other than the
	// given one, so the light is only restored when the last one closes.
	OtherOpenIncidents func(ctx context.Context, incidentID string) (int, error)

	// LightStateFile, when set, keeps the lights' state from before the
	// first alarm, restored when the last incident closes (notify_lifx.go).
	// Empty: clearing only stops the effect.
	LightStateFile string

	// RateLimitWait bounds how long a channel waits out one HTTP 429
	// (default DefaultRateLimitWait); the activity's deadline bounds it too.
	RateLimitWait time.Duration

	lightOnce sync.Once
	lightSem  chan struct{} // one light change at a time
}

// Alert is one notification about an incident.
type Alert struct {
	IncidentID string `json:"incidentID"`
	InstanceID string `json:"instanceID"`
	Account    string `json:"account"`
	Region     string `json:"region"`
	BadIP      string `json:"badIP,omitempty"`
	Group      string `json:"group,omitempty"`
	Phase      string `json:"phase"`
	Outcome    string `json:"outcome,omitempty"`
	// Severity is "critical" (open, needs attention), "warning" or "info".
	Severity string `json:"severity"`
	Summary  string `json:"summary"`
	URL      string `json:"url,omitempty"`
	// Light: "alarm" starts the red breathing, "clear" stops it, "" leaves it.
	Light string `json:"light,omitempty"`
}

// NotifyResult reports each channel's outcome.
type NotifyResult struct {
	Delivered []string `json:"delivered"`
	Failed    []string `json:"failed"`
}

// Notify sends an alert on every configured channel. A channel that fails is
// reported in the result, not as an error, so the workflow goes on.
func (a *Activities) Notify(ctx context.Context, al Alert) (NotifyResult, error) {
	if a.Notifier == nil {
		return NotifyResult{}, nil
	}
	res := a.Notifier.Send(ctx, al)
	if len(res.Failed) > 0 {
		activity.GetLogger(ctx).Warn("alert channel failed", "incidentID", al.IncidentID, "failed", strings.Join(res.Failed, "; "))
	}
	return res, nil
}

// Send delivers al on every configured channel, all at once, within a
// budget that ends before ctx's deadline (the activity's start-to-close
// timeout), so a slow or rate-limited channel cannot time the activity out
// and have Temporal send every alert again. Results keep the channel order.
func (n *Notifier) Send(ctx context.Context, al Alert) NotifyResult {
	ctx, cancel := alertBudget(ctx)
	defer cancel()
	lg := alertLogger(ctx, al.IncidentID)
	type outcome struct {
		channel string
		sent    bool
		err     error
	}
	var jobs []func() outcome
	if n.SNS != nil && n.TopicARN != "" {
		jobs = append(jobs, func() outcome { return outcome{"sns", true, n.publish(ctx, al)} })
	}
	if n.LIFXToken != "" && al.Light != "" {
		jobs = append(jobs, func() outcome {
			sent, err := n.lifx(ctx, lg, al)
			return outcome{"lifx", sent, err}
		})
	}
	if n.IFTTTKey != "" {
		jobs = append(jobs, func() outcome { return outcome{"ifttt", true, n.ifttt(ctx, lg, al)} })
	}
	outs := make([]outcome, len(jobs))
	var wg sync.WaitGroup
	for i, job := range jobs {
		wg.Go(func() { outs[i] = job() })
	}
	wg.Wait()
	var res NotifyResult
	for _, o := range outs {
		switch {
		case !o.sent:
		case o.err != nil:
			res.Failed = append(res.Failed, o.channel+": "+n.redact(o.err.Error()))
		default:
			res.Delivered = append(res.Delivered, o.channel)
		}
	}
	return res
}

// alertBudget ends ctx a little before its deadline: the time to report
// the result before the activity times out.
func alertBudget(ctx context.Context) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok {
		return context.WithTimeout(ctx, 30*time.Second)
	}
	reserve := min(time.Until(dl)/10, 2*time.Second)
	return context.WithDeadline(ctx, dl.Add(-reserve))
}

// alertLogger is the activity's logger (it adds WorkflowID, ActivityID,
// attempt, …), or slog's default outside an activity, with the incident ID
// on every line.
func alertLogger(ctx context.Context, incidentID string) log.Logger {
	var l log.Logger = slog.Default()
	if activity.IsActivity(ctx) {
		l = activity.GetLogger(ctx)
	}
	return log.With(l, "incidentID", incidentID)
}

// redact hides the secrets from an error message: a server may echo the
// request (its URL holds the IFTTT key) in its error response.
func (n *Notifier) redact(msg string) string {
	for _, secret := range []string{n.IFTTTKey, url.PathEscape(n.IFTTTKey), n.LIFXToken} {
		if secret != "" {
			msg = strings.ReplaceAll(msg, secret, "[redacted]")
		}
	}
	return msg
}

// Subject is the SNS subject: short (SNS allows < 100 characters), one line.
func (al Alert) Subject() string {
	s := fmt.Sprintf("Cordon %s: %s", al.Phase, al.InstanceID)
	if al.BadIP != "" {
		s += " -> " + al.BadIP
	}
	// Fields come from operators and detectors: no line breaks or control
	// characters, which SNS rejects.
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if len(s) > 99 {
		cut := 99
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

func (n *Notifier) publish(ctx context.Context, al Alert) error {
	body, err := json.Marshal(al)
	if err != nil {
		return err
	}
	_, err = n.SNS.Publish(ctx, &sns.PublishInput{
		TopicArn: aws.String(n.TopicARN),
		Subject:  aws.String(al.Subject()),
		Message:  aws.String(string(body)),
		MessageAttributes: map[string]snstypes.MessageAttributeValue{
			"phase":    {DataType: aws.String("String"), StringValue: aws.String(al.Phase)},
			"severity": {DataType: aws.String("String"), StringValue: aws.String(al.Severity)},
			"instance": {DataType: aws.String("String"), StringValue: aws.String(al.InstanceID)},
		},
	})
	return err
}

func (n *Notifier) ifttt(ctx context.Context, lg log.Logger, al Alert) error {
	base := strings.TrimRight(n.IFTTTBaseURL, "/")
	if base == "" {
		base = "https://maker.ifttt.com"
	}
	event := n.IFTTTEvent
	if event == "" {
		event = "cordon"
	}
	event += "_" + strings.ReplaceAll(al.Phase, "-", "_")
	u := base + "/trigger/" + url.PathEscape(event) + "/with/key/" + url.PathEscape(n.IFTTTKey)
	_, err := n.do(ctx, lg, httpCall{method: http.MethodPost, url: u,
		body: map[string]string{"value1": al.IncidentID, "value2": al.InstanceID, "value3": al.BadIP}})
	return err
}
