package activities_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/cordonhq/cordon/activities"
)

// lifxLight is one light of the fake LIFX cloud.
type lifxLight struct {
	ID, Label                           string
	Connected                           bool
	Power                               string
	Hue, Saturation, Kelvin, Brightness float64
	effect                              string // "" or "BREATHE"
	effectHue, effectSat, effectBright  float64
}

// lifxCall is one request the fake LIFX cloud received.
type lifxCall struct {
	At                  time.Time
	Method, Path, Auth  string
	ContentType, Status string
	Body                map[string]any
	RawBody             string
}

// fakeLIFX is a stateful LIFX HTTP API (https://api.developer.lifx.com):
// GET /v1/lights/{selector}, POST /v1/lights/{selector}/effects/breathe and
// /effects/off, PUT /v1/lights/states. It checks the bearer token and the
// documented body shapes, and answers 429 when limit says so.
type fakeLIFX struct {
	*httptest.Server
	t      *testing.T
	mu     sync.Mutex
	lights []*lifxLight
	calls  []lifxCall
	// limit, when set, decides per request whether to answer 429 and with
	// which headers.
	limit func(r *http.Request, n int) (http.Header, bool)
}

var colorString = regexp.MustCompile(`^hue:([0-9.]+) saturation:([0-9.]+) kelvin:([0-9]+)$`)

func newFakeLIFX(t *testing.T, lights ...*lifxLight) *fakeLIFX {
	t.Helper()
	f := &fakeLIFX{t: t, lights: lights}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeLIFX) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	c := lifxCall{At: time.Now(), Method: r.Method, Path: r.URL.Path, Auth: r.Header.Get("Authorization"),
		ContentType: r.Header.Get("Content-Type"), RawBody: string(raw)}
	_ = json.Unmarshal(raw, &c.Body)
	reply := func(status int, body any) {
		c.Status = strconv.Itoa(status)
		f.calls = append(f.calls, c)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(body)
	}
	if c.Auth != "Bearer "+lifxToken {
		reply(http.StatusUnauthorized, map[string]string{"error": "Invalid bearer token"})
		return
	}
	if f.limit != nil {
		if h, limited := f.limit(r, len(f.calls)); limited {
			for k, v := range h {
				w.Header()[k] = v
			}
			// Echo the token, as a careless proxy would.
			reply(http.StatusTooManyRequests, map[string]string{"error": "Rate limit exceeded (" + c.Auth + ")"})
			return
		}
	}
	path := strings.TrimPrefix(r.URL.Path, "/v1")
	switch {
	case r.Method == http.MethodGet && strings.HasPrefix(path, "/lights/"):
		out := []map[string]any{}
		for _, l := range f.lights {
			hue, sat, br := l.Hue, l.Saturation, l.Brightness
			if l.effect != "" { // the lights report what they show
				hue, sat, br = l.effectHue, l.effectSat, l.effectBright
			}
			out = append(out, map[string]any{
				"id": l.ID, "uuid": "02a5b510-2d3d-46ea-92ac-" + l.ID, "label": l.Label, "connected": l.Connected,
				"power": l.Power, "color": map[string]any{"hue": hue, "saturation": sat, "kelvin": l.Kelvin},
				"brightness": br, "effect": map[bool]string{true: l.effect, false: "OFF"}[l.effect != ""],
				"group":    map[string]string{"id": "06e3ec50395511e9a0757200055bf1c0", "name": "Office"},
				"location": map[string]string{"id": "f2c1aa82395411e9a0757200055bf1c0", "name": "HQ"},
				"product": map[string]any{"name": "Color 1000", "identifier": "lifx_color_a19",
					"capabilities": map[string]any{"has_color": true, "min_kelvin": 2500, "max_kelvin": 9000}},
				"last_seen": "2026-05-01T10:00:00Z", "seconds_since_seen": 0,
			})
		}
		reply(http.StatusOK, out)
	case r.Method == http.MethodPost && strings.HasSuffix(path, "/effects/breathe"):
		if c.ContentType != "application/json" || c.Body["color"] != "red" {
			reply(http.StatusUnprocessableEntity, map[string]string{"error": "bad breathe body: " + c.RawBody})
			return
		}
		for _, l := range f.lights {
			if !l.Connected {
				continue
			}
			l.effect, l.effectHue, l.effectSat, l.effectBright = "BREATHE", 0, 1, 0.5
			if c.Body["power_on"] == true {
				l.Power = "on"
			}
		}
		reply(http.StatusMultiStatus, f.results("ok"))
	case r.Method == http.MethodPost && strings.HasSuffix(path, "/effects/off"):
		for _, l := range f.lights {
			l.stopEffect()
			if c.Body["power_off"] == true {
				l.Power = "off"
			}
		}
		reply(http.StatusMultiStatus, f.results("ok"))
	case r.Method == http.MethodPut && path == "/lights/states":
		states, ok := c.Body["states"].([]any)
		if c.ContentType != "application/json" || !ok || len(states) == 0 {
			reply(http.StatusUnprocessableEntity, map[string]string{"error": "states required: " + c.RawBody})
			return
		}
		var results []map[string]any
		for _, s := range states {
			st, _ := s.(map[string]any)
			sel, _ := st["selector"].(string)
			l := f.light(strings.TrimPrefix(sel, "id:"))
			if !strings.HasPrefix(sel, "id:") || l == nil {
				reply(http.StatusUnprocessableEntity, map[string]string{"error": "unknown selector " + sel})
				return
			}
			m := colorString.FindStringSubmatch(fmt.Sprint(st["color"]))
			power, _ := st["power"].(string)
			br, brOK := st["brightness"].(float64)
			dur, durOK := st["duration"].(float64)
			if m == nil || (power != "on" && power != "off") || !brOK || br < 0 || br > 1 || !durOK || dur < 0 {
				reply(http.StatusUnprocessableEntity, map[string]string{"error": "bad state: " + c.RawBody})
				return
			}
			l.Hue, _ = strconv.ParseFloat(m[1], 64)
			l.Saturation, _ = strconv.ParseFloat(m[2], 64)
			l.Kelvin, _ = strconv.ParseFloat(m[3], 64)
			l.Brightness, l.Power = br, power
			l.stopEffect()
			results = append(results, map[string]any{"operations": []any{st},
				"results": []map[string]string{{"id": l.ID, "label": l.Label, "status": "ok"}}})
		}
		reply(http.StatusMultiStatus, map[string]any{"results": results})
	default:
		reply(http.StatusNotFound, map[string]string{"error": "no route " + r.Method + " " + r.URL.Path})
	}
}

func (l *lifxLight) stopEffect() {
	l.effect, l.effectHue, l.effectSat, l.effectBright = "", 0, 0, 0
}

func (f *fakeLIFX) light(id string) *lifxLight {
	for _, l := range f.lights {
		if l.ID == id {
			return l
		}
	}
	return nil
}

func (f *fakeLIFX) results(status string) map[string]any {
	var rs []map[string]string
	for _, l := range f.lights {
		rs = append(rs, map[string]string{"id": l.ID, "label": l.Label, "status": status})
	}
	return map[string]any{"results": rs}
}

func (f *fakeLIFX) Calls() []lifxCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]lifxCall(nil), f.calls...)
}

// Snapshot copies the lights' visible state.
func (f *fakeLIFX) Snapshot() []lifxLight {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []lifxLight
	for _, l := range f.lights {
		out = append(out, *l)
	}
	return out
}

func officeLights() []*lifxLight {
	return []*lifxLight{
		{ID: "d073d5000001", Label: "Desk", Connected: true, Power: "on", Hue: 120, Saturation: 0.5, Kelvin: 3500, Brightness: 0.3},
		{ID: "d073d5000002", Label: "Lamp", Connected: true, Power: "off", Hue: 59.997253376058595, Saturation: 0, Kelvin: 2700, Brightness: 1},
		{ID: "d073d5000003", Label: "Porch", Connected: false, Power: "off", Hue: 200, Saturation: 1, Kelvin: 3500, Brightness: 0.8},
	}
}

// openIncidents is what OtherOpenIncidents answers, set by the test.
type openIncidents struct{ n atomic.Int64 }

func (o *openIncidents) Count(context.Context, string) (int, error) { return int(o.n.Load()), nil }

// lifxNotifier is the worker's notifier for the fake LIFX cloud; calling it
// again with the same state file is a worker restart.
func lifxNotifier(f *fakeLIFX, stateFile string, open *openIncidents) *activities.Notifier {
	return &activities.Notifier{LIFXToken: lifxToken, LIFXSelector: "label:Office", LIFXBaseURL: f.URL + "/v1",
		LightStateFile: stateFile, OtherOpenIncidents: open.Count, HTTP: &http.Client{Timeout: 5 * time.Second}}
}

func incidentAlert(instance, phase, light string) activities.Alert {
	al := alert(phase, light)
	al.InstanceID = instance
	al.IncidentID = "quarantine/123456789012/us-east-1/" + instance
	return al
}

func requireCall(t *testing.T, c lifxCall, method, path string) {
	t.Helper()
	require.Equal(t, method, c.Method, "%s %s", c.Method, c.Path)
	require.Equal(t, path, c.Path)
	require.Equal(t, "Bearer "+lifxToken, c.Auth)
	if method != http.MethodGet {
		require.Equal(t, "application/json", c.ContentType)
	}
}

// The lights' state is saved before the first alarm, survives a worker
// restart (a new notifier over the same file) and is put back, light by
// light, when the last incident closes.
func TestLIFXStateSavedBeforeAlarmAndRestoredAfterRestart(t *testing.T) {
	f := newFakeLIFX(t, officeLights()...)
	before := f.Snapshot()
	stateFile := filepath.Join(t.TempDir(), "data", "lifx-state.json") // the directory does not exist yet
	open := &openIncidents{}

	res := notify(t, lifxNotifier(f, stateFile, open), incidentAlert(twoENI, "opened", "alarm"))
	require.Equal(t, []string{"lifx"}, res.Delivered, "%v", res.Failed)

	calls := f.Calls()
	require.Len(t, calls, 2)
	requireCall(t, calls[0], http.MethodGet, "/v1/lights/label:Office") // read before the first red
	require.Empty(t, calls[0].RawBody)
	requireCall(t, calls[1], http.MethodPost, "/v1/lights/label:Office/effects/breathe")
	for _, l := range f.Snapshot()[:2] {
		require.Equal(t, "BREATHE", l.effect)
		require.Equal(t, "on", l.Power)
	}

	raw, err := os.ReadFile(stateFile)
	require.NoError(t, err)
	require.NotContains(t, string(raw), lifxToken)
	var saved activities.SavedLights
	require.NoError(t, json.Unmarshal(raw, &saved), string(raw))
	require.Equal(t, 1, saved.Version)
	require.Equal(t, "label:Office", saved.Selector)
	require.Equal(t, "quarantine/123456789012/us-east-1/"+twoENI, saved.IncidentID)
	require.Equal(t, []activities.SavedLight{
		{ID: "d073d5000001", Label: "Desk", Power: "on", Hue: 120, Saturation: 0.5, Kelvin: 3500, Brightness: 0.3},
		{ID: "d073d5000002", Label: "Lamp", Power: "off", Hue: 59.997253376058595, Saturation: 0, Kelvin: 2700, Brightness: 1},
	}, saved.Lights, "the offline light is left out")
	entries, err := os.ReadDir(filepath.Dir(stateFile))
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file left behind")

	// The worker restarts: a new notifier, the same file.
	res = notify(t, lifxNotifier(f, stateFile, open), incidentAlert(twoENI, "resolved", "clear"))
	require.Equal(t, []string{"lifx"}, res.Delivered, "%v", res.Failed)

	calls = f.Calls()[2:]
	require.Len(t, calls, 2)
	requireCall(t, calls[0], http.MethodPost, "/v1/lights/label:Office/effects/off")
	require.Equal(t, false, calls[0].Body["power_off"])
	requireCall(t, calls[1], http.MethodPut, "/v1/lights/states")
	states, ok := calls[1].Body["states"].([]any)
	require.True(t, ok, calls[1].RawBody)
	require.Len(t, states, 2)
	for i, want := range []struct {
		selector, power, color string
		brightness             float64
	}{
		{"id:d073d5000001", "on", "hue:120 saturation:0.5 kelvin:3500", 0.3},
		{"id:d073d5000002", "off", "hue:59.997253376058595 saturation:0 kelvin:2700", 1},
	} {
		st := states[i].(map[string]any)
		require.Equal(t, want.selector, st["selector"])
		require.Equal(t, want.power, st["power"])
		require.Equal(t, want.color, st["color"])
		require.Equal(t, want.brightness, st["brightness"])
		require.IsType(t, float64(0), st["duration"])
	}
	require.Equal(t, before, f.Snapshot(), "every light is back as it was")
	_, err = os.Stat(stateFile)
	require.ErrorIs(t, err, os.ErrNotExist, "the saved state is used once")

	// The next clear (nothing saved any more) only stops the effect.
	res = notify(t, lifxNotifier(f, stateFile, open), incidentAlert(twoENI, "released", "clear"))
	require.Equal(t, []string{"lifx"}, res.Delivered)
	calls = f.Calls()[4:]
	require.Len(t, calls, 1)
	requireCall(t, calls[0], http.MethodPost, "/v1/lights/label:Office/effects/off")
}

// A second incident's alarm finds the light red: it must not save that as
// the state to come back to, even when visibility does not show the first
// incident yet. Only the last close restores, and to the pre-alert state.
func TestLIFXSecondIncidentDoesNotOverwriteSavedState(t *testing.T) {
	f := newFakeLIFX(t, officeLights()...)
	before := f.Snapshot()
	stateFile := filepath.Join(t.TempDir(), "lifx-state.json")
	open := &openIncidents{}
	n := lifxNotifier(f, stateFile, open)
	a, b, c := "i-0144394dc883f9fe0", "i-085a2fa5fa92cd19c", "i-04f2ae54915567738"

	require.Equal(t, []string{"lifx"}, notify(t, n, incidentAlert(a, "opened", "alarm")).Delivered)
	saved, err := os.ReadFile(stateFile)
	require.NoError(t, err)

	open.n.Store(1) // a is open
	require.Equal(t, []string{"lifx"}, notify(t, n, incidentAlert(b, "opened", "alarm")).Delivered)
	open.n.Store(0) // visibility lags: c sees no other incident, but the file is there
	require.Equal(t, []string{"lifx"}, notify(t, lifxNotifier(f, stateFile, open), incidentAlert(c, "opened", "alarm")).Delivered)

	gets := 0
	for _, call := range f.Calls() {
		if call.Method == http.MethodGet {
			gets++
		}
	}
	require.Equal(t, 1, gets, "the state is read once, before the first red")
	now, err := os.ReadFile(stateFile)
	require.NoError(t, err)
	require.Equal(t, string(saved), string(now), "the pre-alert state is kept")

	n0 := len(f.Calls())
	open.n.Store(2)
	require.Empty(t, notify(t, n, incidentAlert(b, "resolved", "clear")).Delivered, "others still open: the light stays red")
	open.n.Store(1)
	require.Empty(t, notify(t, n, incidentAlert(c, "resolved", "clear")).Delivered)
	require.Len(t, f.Calls(), n0, "nothing sent while other incidents are open")
	require.FileExists(t, stateFile)

	open.n.Store(0)
	require.Equal(t, []string{"lifx"}, notify(t, n, incidentAlert(a, "resolved", "clear")).Delivered)
	calls := f.Calls()[n0:]
	require.Len(t, calls, 2)
	requireCall(t, calls[1], http.MethodPut, "/v1/lights/states")
	require.Contains(t, calls[1].RawBody, `"hue:120 saturation:0.5 kelvin:3500"`, "restored to the pre-alert state, not red")
	require.Equal(t, before, f.Snapshot())
	require.NoFileExists(t, stateFile)
}

// When the light is already red (another incident open) and nothing is
// saved, nothing is saved now either, and clearing only stops the effect.
func TestLIFXNoSavedStateFallsBackToEffectsOff(t *testing.T) {
	f := newFakeLIFX(t, officeLights()...)
	stateFile := filepath.Join(t.TempDir(), "lifx-state.json")
	open := &openIncidents{}
	open.n.Store(1)
	n := lifxNotifier(f, stateFile, open)

	require.Equal(t, []string{"lifx"}, notify(t, n, incidentAlert(twoENI, "opened", "alarm")).Delivered)
	require.NoFileExists(t, stateFile)
	open.n.Store(0)
	require.Equal(t, []string{"lifx"}, notify(t, n, incidentAlert(twoENI, "resolved", "clear")).Delivered)

	calls := f.Calls()
	require.Len(t, calls, 2)
	requireCall(t, calls[0], http.MethodPost, "/v1/lights/label:Office/effects/breathe")
	requireCall(t, calls[1], http.MethodPost, "/v1/lights/label:Office/effects/off")
}

// A 429 whose X-RateLimit-Reset is a second ahead is waited out, and the
// request is sent again after the reset.
func TestLIFXRateLimitIsWaitedOut(t *testing.T) {
	f := newFakeLIFX(t, officeLights()...)
	var reset atomic.Int64
	f.limit = func(r *http.Request, n int) (http.Header, bool) {
		if n > 0 {
			return nil, false
		}
		reset.Store(time.Now().Add(time.Second).Unix())
		return http.Header{"X-Ratelimit-Limit": {"120"}, "X-Ratelimit-Remaining": {"0"},
			"X-Ratelimit-Reset": {strconv.FormatInt(reset.Load(), 10)}}, true
	}
	n := lifxNotifier(f, "", &openIncidents{})
	start := time.Now()
	res := notify(t, n, incidentAlert(twoENI, "opened", "alarm"))
	require.Equal(t, []string{"lifx"}, res.Delivered, "%v", res.Failed)
	require.Less(t, time.Since(start), 5*time.Second)

	calls := f.Calls()
	require.Len(t, calls, 2)
	require.Equal(t, "429", calls[0].Status)
	require.Equal(t, "207", calls[1].Status)
	requireCall(t, calls[1], http.MethodPost, "/v1/lights/label:Office/effects/breathe")
	require.Equal(t, calls[0].RawBody, calls[1].RawBody, "the same request again")
	require.False(t, calls[1].At.Before(time.Unix(reset.Load(), 0)), "sent again only after the reset: %s vs %d", calls[1].At, reset.Load())
}

// IFTTT's 429 with Retry-After is waited out too.
func TestIFTTTRetryAfterIsWaitedOut(t *testing.T) {
	var mu sync.Mutex
	var at []time.Time
	ifttt := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		at = append(at, time.Now())
		first := len(at) == 1
		mu.Unlock()
		if first {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		_, _ = io.WriteString(w, "Congratulations! You've fired the event")
	}))
	defer ifttt.Close()
	n := &activities.Notifier{IFTTTKey: iftttKey, IFTTTBaseURL: ifttt.URL}
	res := notify(t, n, alert("opened", ""))
	require.Equal(t, []string{"ifttt"}, res.Delivered, "%v", res.Failed)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, at, 2)
	require.GreaterOrEqual(t, at[1].Sub(at[0]), 900*time.Millisecond)
}

// A 429 that asks for a longer wait than an alert may take gives up at
// once, with a failure that says so and holds no secret; a failed restore
// keeps the saved state for the next clear.
func TestLIFXLongRateLimitGivesUp(t *testing.T) {
	f := newFakeLIFX(t, officeLights()...)
	stateFile := filepath.Join(t.TempDir(), "lifx-state.json")
	open := &openIncidents{}
	n := lifxNotifier(f, stateFile, open)
	require.Equal(t, []string{"lifx"}, notify(t, n, incidentAlert(twoENI, "opened", "alarm")).Delivered)

	f.mu.Lock()
	f.limit = func(*http.Request, int) (http.Header, bool) {
		return http.Header{"X-Ratelimit-Reset": {strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)}}, true
	}
	f.mu.Unlock()
	n0 := len(f.Calls())
	start := time.Now()
	res := notify(t, n, incidentAlert(twoENI, "resolved", "clear"))
	require.Less(t, time.Since(start), 2*time.Second, "no waiting for an hour")
	require.Empty(t, res.Delivered)
	require.Len(t, res.Failed, 1)
	msg := res.Failed[0]
	t.Log(msg)
	require.True(t, strings.HasPrefix(msg, "lifx: effects/off: POST "), msg)
	require.Contains(t, msg, "HTTP 429")
	require.Contains(t, msg, "rate limited for 1h0m0s more per X-RateLimit-Reset, beyond the 10s an alert may wait: gave up")
	require.Contains(t, msg, "restoring the saved light state (kept for the next clear): set states: PUT ")
	requireNoSecrets(t, res)
	require.Len(t, f.Calls(), n0+2, "each request sent once")
	require.FileExists(t, stateFile, "kept for the next clear")
}

// The wait is bounded by the activity's deadline as well: a Retry-After
// that fits RateLimitWait but not the time left gives up at once, and a
// server that keeps answering 429 is given up on after a few attempts.
func TestRateLimitBoundedByDeadlineAndAttempts(t *testing.T) {
	f := newFakeLIFX(t, officeLights()...)
	f.limit = func(*http.Request, int) (http.Header, bool) { return http.Header{"Retry-After": {"5"}}, true }
	n := lifxNotifier(f, "", &openIncidents{})
	n.RateLimitWait = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	res := n.Send(ctx, incidentAlert(twoENI, "opened", "alarm"))
	require.Less(t, time.Since(start), time.Second)
	require.Len(t, res.Failed, 1)
	require.Contains(t, res.Failed[0], "rate limited for 5s more per Retry-After")
	require.Contains(t, res.Failed[0], "gave up")
	requireNoSecrets(t, res)

	f.mu.Lock()
	f.limit = func(*http.Request, int) (http.Header, bool) { return http.Header{"Retry-After": {"0"}}, true }
	f.mu.Unlock()
	n0 := len(f.Calls())
	res = notify(t, n, incidentAlert(twoENI, "opened", "alarm"))
	require.Len(t, res.Failed, 1)
	require.Contains(t, res.Failed[0], "HTTP 429 (still rate limited after 3 attempts, gave up)")
	require.Len(t, f.Calls(), n0+3)
	requireNoSecrets(t, res)
}

// Every line the notifier logs carries the incident ID (the activity
// logger adds WorkflowID too), and none carries the token.
func TestNotifyLogLinesCarryIncidentID(t *testing.T) {
	f := newFakeLIFX(t, officeLights()...)
	reset := time.Now().Add(time.Second).Unix()
	f.limit = func(r *http.Request, n int) (http.Header, bool) {
		return http.Header{"X-Ratelimit-Reset": {strconv.FormatInt(reset, 10)}}, n == 1 // the breathe after the read
	}
	var buf bytes.Buffer
	var mu sync.Mutex
	s := &testsuite.WorkflowTestSuite{}
	s.SetLogger(log.NewStructuredLogger(slog.New(slog.NewJSONHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	n := lifxNotifier(f, filepath.Join(t.TempDir(), "lifx-state.json"), &openIncidents{})
	acts := &activities.Activities{Notifier: n}
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	al := incidentAlert(twoENI, "opened", "alarm")
	_, err := env.ExecuteActivity(acts.Notify, al)
	require.NoError(t, err)

	mu.Lock()
	defer mu.Unlock()
	var ours []string
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		require.NotContains(t, line, lifxToken)
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), line)
		msg, _ := rec["msg"].(string)
		if strings.Contains(msg, "light") || strings.Contains(msg, "rate limited") || strings.Contains(msg, "alert") {
			require.Equal(t, al.IncidentID, rec["incidentID"], line)
			require.NotEmpty(t, rec["WorkflowID"], line)
			ours = append(ours, msg)
			t.Log(line)
		}
	}
	require.Contains(t, ours, "light state saved before the alarm")
	require.Contains(t, ours, "alert channel rate limited: waiting before sending again")
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
