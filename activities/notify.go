package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"go.temporal.io/sdk/activity"
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

// Send delivers al on every configured channel.
func (n *Notifier) Send(ctx context.Context, al Alert) NotifyResult {
	var res NotifyResult
	add := func(channel string, err error) {
		if err != nil {
			res.Failed = append(res.Failed, channel+": "+n.redact(err.Error()))
		} else {
			res.Delivered = append(res.Delivered, channel)
		}
	}
	if n.SNS != nil && n.TopicARN != "" {
		add("sns", n.publish(ctx, al))
	}
	if n.LIFXToken != "" && al.Light != "" {
		if al.Light == "clear" && n.OtherOpenIncidents != nil {
			if open, err := n.OtherOpenIncidents(ctx, al.IncidentID); err == nil && open > 0 {
				// Other incidents are still open: keep the light red.
				al.Light = ""
			}
		}
		if al.Light != "" {
			add("lifx", n.lifx(ctx, al.Light))
		}
	}
	if n.IFTTTKey != "" {
		add("ifttt", n.ifttt(ctx, al))
	}
	return res
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

func (n *Notifier) client() *http.Client {
	if n.HTTP != nil {
		return n.HTTP
	}
	return &http.Client{Timeout: 10 * time.Second}
}

// lifx starts ("alarm") or stops ("clear") a red breathe effect. The effect
// is not persistent, so stopping it returns the light to its previous state.
func (n *Notifier) lifx(ctx context.Context, mode string) error {
	base := strings.TrimRight(n.LIFXBaseURL, "/")
	if base == "" {
		base = "https://api.lifx.com/v1"
	}
	sel := n.LIFXSelector
	if sel == "" {
		sel = "all"
	}
	var path string
	var body map[string]any
	switch mode {
	case "alarm":
		path = "/lights/" + url.PathEscape(sel) + "/effects/breathe"
		// 2 s period × 5400 cycles = 3 h of breathing unless cleared first.
		body = map[string]any{"color": "red", "period": 2, "cycles": 5400, "persist": false, "power_on": true, "peak": 0.5}
	case "clear":
		path = "/lights/" + url.PathEscape(sel) + "/effects/off"
		body = map[string]any{"power_off": false}
	default:
		return fmt.Errorf("unknown light mode %q", mode)
	}
	return n.post(ctx, base+path, body, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+n.LIFXToken) })
}

func (n *Notifier) ifttt(ctx context.Context, al Alert) error {
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
	return n.post(ctx, u, map[string]string{"value1": al.IncidentID, "value2": al.InstanceID, "value3": al.BadIP}, nil)
}

// errRedacted hides URLs (they carry the IFTTT key) from error messages.
var errRedacted = errors.New("request failed")

func (n *Notifier) post(ctx context.Context, u string, body any, decorate func(*http.Request)) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	method := http.MethodPost
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(b))
	if err != nil {
		return errRedacted
	}
	req.Header.Set("Content-Type", "application/json")
	if decorate != nil {
		decorate(req)
	}
	resp, err := n.client().Do(req)
	if err != nil {
		// *url.Error prints the URL, which may hold a key: keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			return fmt.Errorf("%s %s: %w", method, req.URL.Host, ue.Err)
		}
		return errRedacted
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: HTTP %d: %s", method, req.URL.Host, resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	return nil
}
