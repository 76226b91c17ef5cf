package activities_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/activities"
	"github.com/cordonhq/cordon/simcloud"
)

const (
	lifxToken = "c87c73a896b554367fac61f71dd3656af8d93a525a4e87df5952c6078a89d192"
	iftttKey  = "dG9wLXNlY3JldC1pZnR0dC1rZXk"
	topicARN  = "arn:aws:sns:us-east-1:123456789012:cordon-alerts"
)

// request is what a fake HTTP API received.
type request struct {
	Method, Path, RawPath, Auth, ContentType string
	Body                                     map[string]any
	RawBody                                  string
}

// fakeAPI records every request and answers with status and body.
type fakeAPI struct {
	*httptest.Server
	mu       sync.Mutex
	requests []request
}

func newFakeAPI(t *testing.T, status int, body func(r *http.Request) string) *fakeAPI {
	t.Helper()
	f := &fakeAPI{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		rec := request{Method: r.Method, Path: r.URL.Path, RawPath: r.URL.EscapedPath(), Auth: r.Header.Get("Authorization"),
			ContentType: r.Header.Get("Content-Type"), RawBody: string(raw)}
		_ = json.Unmarshal(raw, &rec.Body)
		f.mu.Lock()
		f.requests = append(f.requests, rec)
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body(r))
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAPI) Requests() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.requests...)
}

func okBody(*http.Request) string { return `{"results":[]}` }

// notify runs Notify through the activity test environment.
func notify(t *testing.T, n *activities.Notifier, al activities.Alert) activities.NotifyResult {
	t.Helper()
	acts := &activities.Activities{Notifier: n}
	env := quietSuite().NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	v, err := env.ExecuteActivity(acts.Notify, al)
	require.NoError(t, err, "a failing channel never fails Notify")
	var res activities.NotifyResult
	require.NoError(t, v.Get(&res))
	return res
}

func alert(phase, light string) activities.Alert {
	return activities.Alert{
		IncidentID: "quarantine/123456789012/us-east-1/" + twoENI, InstanceID: twoENI, Account: account, Region: region,
		BadIP: "101.50.83.146", Group: asg, Phase: phase, Severity: "critical",
		Summary: "session to a known bad actor", Light: light,
	}
}

func TestNotifyLIFXBreathesRedThenClears(t *testing.T) {
	lifx := newFakeAPI(t, http.StatusMultiStatus, okBody) // LIFX answers 207 to effects
	n := &activities.Notifier{LIFXToken: lifxToken, LIFXSelector: "label:Office", LIFXBaseURL: lifx.URL + "/v1"}

	res := notify(t, n, alert("opened", "alarm"))
	require.Equal(t, []string{"lifx"}, res.Delivered)
	require.Empty(t, res.Failed)
	res = notify(t, n, alert("isolating", "")) // no light change
	require.Empty(t, res.Delivered)
	res = notify(t, n, alert("resolved", "clear"))
	require.Equal(t, []string{"lifx"}, res.Delivered)

	reqs := lifx.Requests()
	require.Len(t, reqs, 2, "an alert without a light mode leaves the light alone")

	on := reqs[0]
	require.Equal(t, http.MethodPost, on.Method)
	require.Equal(t, "/v1/lights/label:Office/effects/breathe", on.Path)
	require.Equal(t, "Bearer "+lifxToken, on.Auth)
	require.Equal(t, "application/json", on.ContentType)
	require.Equal(t, "red", on.Body["color"])
	require.Equal(t, false, on.Body["persist"], "not persistent: clearing restores the previous state")
	require.Equal(t, true, on.Body["power_on"])
	period, ok := on.Body["period"].(float64)
	require.True(t, ok, "period is a number: %s", on.RawBody)
	require.Greater(t, period, 0.0)
	cycles, ok := on.Body["cycles"].(float64)
	require.True(t, ok, "cycles is a number: %s", on.RawBody)
	require.GreaterOrEqual(t, period*cycles, float64(time.Hour/time.Second), "breathes long enough for an operator to notice")
	if peak, ok := on.Body["peak"]; ok {
		require.GreaterOrEqual(t, peak.(float64), 0.0)
		require.LessOrEqual(t, peak.(float64), 1.0)
	}

	off := reqs[1]
	require.Equal(t, http.MethodPost, off.Method)
	require.Equal(t, "/v1/lights/label:Office/effects/off", off.Path)
	require.Equal(t, "Bearer "+lifxToken, off.Auth)
	if po, ok := off.Body["power_off"]; ok {
		require.Equal(t, false, po, "clearing the alarm does not switch the light off")
	}
}

func TestNotifyLIFXSelectorIsEscaped(t *testing.T) {
	lifx := newFakeAPI(t, http.StatusOK, okBody)
	n := &activities.Notifier{LIFXToken: lifxToken, LIFXSelector: "group:Security Desk", LIFXBaseURL: lifx.URL + "/v1/"}
	res := notify(t, n, alert("opened", "alarm"))
	require.Equal(t, []string{"lifx"}, res.Delivered)
	reqs := lifx.Requests()
	require.Len(t, reqs, 1)
	require.Equal(t, "/v1/lights/group:Security Desk/effects/breathe", reqs[0].Path)
	require.Equal(t, "/v1/lights/group:Security%20Desk/effects/breathe", reqs[0].RawPath)
}

func TestNotifyIFTTTWebhook(t *testing.T) {
	ifttt := newFakeAPI(t, http.StatusOK, func(*http.Request) string { return "Congratulations! You've fired the event" })
	n := &activities.Notifier{IFTTTKey: iftttKey, IFTTTEvent: "cordon", IFTTTBaseURL: ifttt.URL}

	res := notify(t, n, alert("needs-attention", ""))
	require.Equal(t, []string{"ifttt"}, res.Delivered)
	require.Empty(t, res.Failed)

	reqs := ifttt.Requests()
	require.Len(t, reqs, 1)
	r := reqs[0]
	require.Equal(t, http.MethodPost, r.Method)
	require.Equal(t, "/trigger/cordon_needs_attention/with/key/"+iftttKey, r.Path, "event = prefix_phase, dashes as underscores")
	require.Equal(t, "application/json", r.ContentType)
	require.Equal(t, map[string]any{
		"value1": "quarantine/123456789012/us-east-1/" + twoENI,
		"value2": twoENI,
		"value3": "101.50.83.146",
	}, r.Body)
}

func TestNotifySNSPublish(t *testing.T) {
	cloud, err := simcloud.New(seedEnv(t), simcloud.Options{})
	require.NoError(t, err)
	n := &activities.Notifier{SNS: cloud, TopicARN: topicARN}

	al := alert("needs-attention", "alarm") // no LIFX token: the light mode is ignored
	res := notify(t, n, al)
	require.Equal(t, []string{"sns"}, res.Delivered)
	require.Empty(t, res.Failed)

	pub := cloud.Published()
	require.Len(t, pub, 1)
	m := pub[0]
	require.Equal(t, topicARN, m.TopicArn)
	require.Less(t, len(m.Subject), 100)
	require.NotContains(t, m.Subject, "\n")
	require.Contains(t, m.Subject, twoENI)
	require.Contains(t, m.Subject, "needs-attention")

	var body map[string]any
	require.NoError(t, json.Unmarshal([]byte(m.Message), &body), m.Message)
	require.Equal(t, al.IncidentID, body["incidentID"])
	require.Equal(t, twoENI, body["instanceID"])
	require.Equal(t, "101.50.83.146", body["badIP"])
	require.Equal(t, "needs-attention", body["phase"])
	require.Equal(t, "critical", body["severity"])

	require.Equal(t, "String", *m.MessageAttributes["phase"].DataType)
	require.Equal(t, "needs-attention", *m.MessageAttributes["phase"].StringValue)
	require.Equal(t, "String", *m.MessageAttributes["severity"].DataType)
	require.Equal(t, "critical", *m.MessageAttributes["severity"].StringValue)
}

// The subject stays a valid SNS subject whatever the alert holds: the
// instance ID comes from operators and detectors, and SNS rejects a subject
// of 100 characters or more, or with a line break.
func TestNotifySNSSubjectStaysValid(t *testing.T) {
	cloud, err := simcloud.New(seedEnv(t), simcloud.Options{})
	require.NoError(t, err)
	n := &activities.Notifier{SNS: cloud, TopicARN: topicARN}

	long := alert("needs-attention", "")
	long.InstanceID = "i-" + strings.Repeat("0123456789abcdef", 8)
	long.BadIP = "2001:0db8:85a3:0000:0000:8a2e:0370:7334"
	pasted := alert("instance-gone", "")
	pasted.InstanceID = "i-04f2ae54915567738\r\n"
	for _, al := range []activities.Alert{long, pasted} {
		s := al.Subject()
		require.Less(t, len(s), 100, "%q", s)
		require.NotContains(t, s, "\n")
		require.NotContains(t, s, "\r")
		res := notify(t, n, al)
		require.Equal(t, []string{"sns"}, res.Delivered, "subject %q: %v", s, res.Failed)
	}
	require.Len(t, cloud.Published(), 2)

	// Shortening never cuts a character in half.
	wide := alert("opened", "")
	wide.InstanceID = strings.Repeat("é", 60) // 120 bytes of two-byte runes
	s := wide.Subject()
	require.Less(t, len(s), 100)
	require.True(t, utf8.ValidString(s), "%q", s)
}

func TestNotifyFailingChannelsAreReportedNotReturned(t *testing.T) {
	lifx := newFakeAPI(t, http.StatusInternalServerError, func(*http.Request) string { return `{"error":"internal error"}` })
	// Echoes the request line, as a default 404/429 page of many proxies and
	// frameworks does: the URL holds the IFTTT key.
	ifttt := newFakeAPI(t, http.StatusTooManyRequests, func(r *http.Request) string {
		return "Too many requests: POST " + r.URL.Path + " (auth " + r.Header.Get("Authorization") + ")"
	})
	cloud, err := simcloud.New(seedEnv(t), simcloud.Options{})
	require.NoError(t, err)
	n := &activities.Notifier{
		SNS: cloud, TopicARN: "arn:aws:sns:us-east-1:123456789012:no-such-topic",
		LIFXToken: lifxToken, LIFXBaseURL: lifx.URL + "/v1",
		IFTTTKey: iftttKey, IFTTTBaseURL: ifttt.URL,
	}

	res := notify(t, n, alert("opened", "alarm"))
	require.Empty(t, res.Delivered)
	require.Len(t, res.Failed, 3, "%v", res.Failed)
	require.True(t, strings.HasPrefix(res.Failed[0], "sns: "), res.Failed[0])
	require.True(t, strings.HasPrefix(res.Failed[1], "lifx: "), res.Failed[1])
	require.Contains(t, res.Failed[1], "500")
	require.True(t, strings.HasPrefix(res.Failed[2], "ifttt: "), res.Failed[2])
	require.Contains(t, res.Failed[2], "429")
	requireNoSecrets(t, res)
	require.Len(t, lifx.Requests(), 1)
	require.Len(t, ifttt.Requests(), 1)
}

func TestNotifyConnectionRefused(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	base := down.URL
	down.Close() // nothing listens there any more

	n := &activities.Notifier{
		LIFXToken: lifxToken, LIFXBaseURL: base + "/v1",
		IFTTTKey: iftttKey, IFTTTBaseURL: base,
		HTTP: &http.Client{Timeout: 5 * time.Second},
	}
	res := notify(t, n, alert("opened", "alarm"))
	require.Empty(t, res.Delivered)
	require.Len(t, res.Failed, 2, "%v", res.Failed)
	require.True(t, strings.HasPrefix(res.Failed[0], "lifx: "), res.Failed[0])
	require.True(t, strings.HasPrefix(res.Failed[1], "ifttt: "), res.Failed[1])
	for _, f := range res.Failed {
		require.Contains(t, f, "refused")
	}
	requireNoSecrets(t, res)
}

func TestNotifyWithoutChannels(t *testing.T) {
	res := notify(t, &activities.Notifier{}, alert("opened", "alarm"))
	require.Empty(t, res.Delivered)
	require.Empty(t, res.Failed)
}

func requireNoSecrets(t *testing.T, res activities.NotifyResult) {
	t.Helper()
	for _, f := range res.Failed {
		require.NotContains(t, f, lifxToken, "LIFX token leaked")
		require.NotContains(t, f, iftttKey, "IFTTT key leaked")
	}
}
