package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/log"
)

// The LIFX light breathes red while any incident is open. Before the first
// alarm (no other incident open, no state saved yet) the notifier reads the
// lights' state (GET /lights/{selector}) and saves it in LightStateFile; when
// the last incident closes it stops the effect (POST
// /lights/{selector}/effects/off) and puts every saved light back (PUT
// /lights/states), then removes the file. The file makes the saved state
// survive a worker restart. One worker owns the file: several workers
// sharing one light would each keep their own copy (see the README).

// lifxLight is one light as GET /lights/{selector} lists it.
type lifxLight struct {
	ID        string `json:"id"`
	Label     string `json:"label"`
	Connected *bool  `json:"connected"`
	Power     string `json:"power"`
	Color     struct {
		Hue        float64 `json:"hue"`
		Saturation float64 `json:"saturation"`
		Kelvin     float64 `json:"kelvin"`
	} `json:"color"`
	Brightness float64 `json:"brightness"`
}

// SavedLight is one light's state from before the alarm.
type SavedLight struct {
	ID         string  `json:"id"`
	Label      string  `json:"label,omitempty"`
	Power      string  `json:"power"` // "on" or "off"
	Hue        float64 `json:"hue"`   // 0-360
	Saturation float64 `json:"saturation"`
	Kelvin     float64 `json:"kelvin"`
	Brightness float64 `json:"brightness"`
}

// SavedLights is the content of the light state file.
type SavedLights struct {
	Version    int          `json:"version"`
	Selector   string       `json:"selector"`
	SavedAt    time.Time    `json:"savedAt"`
	IncidentID string       `json:"incidentID"` // the incident whose alarm saved it
	Lights     []SavedLight `json:"lights"`
}

// restoreDuration is the fade back to the saved state, in seconds.
const restoreDuration = 1.0

func (n *Notifier) lifxBase() string {
	base := strings.TrimRight(n.LIFXBaseURL, "/")
	if base == "" {
		base = "https://api.lifx.com/v1"
	}
	return base
}

func (n *Notifier) lifxSelector() string {
	if n.LIFXSelector == "" {
		return "all"
	}
	return n.LIFXSelector
}

// lockLight serializes the light's read-save-alarm and clear-restore
// sequences of concurrent alerts in this worker.
func (n *Notifier) lockLight(ctx context.Context) (func(), error) {
	n.lightOnce.Do(func() { n.lightSem = make(chan struct{}, 1) })
	select {
	case n.lightSem <- struct{}{}:
		return func() { <-n.lightSem }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for another alert's light change: %w", ctx.Err())
	}
}

// lifx starts ("alarm") or stops ("clear") the red breathing. sent is false
// when nothing was sent because other incidents keep the light red.
func (n *Notifier) lifx(ctx context.Context, lg log.Logger, al Alert) (sent bool, err error) {
	unlock, err := n.lockLight(ctx)
	if err != nil {
		return true, err
	}
	defer unlock()
	switch al.Light {
	case "alarm":
		n.saveLights(ctx, lg, al)
		// 2 s period × 5400 cycles = 3 h of breathing unless cleared first.
		return true, n.lifxEffect(ctx, lg, "breathe",
			map[string]any{"color": "red", "period": 2, "cycles": 5400, "persist": false, "power_on": true, "peak": 0.5})
	case "clear":
		if n.OtherOpenIncidents != nil {
			open, err := n.OtherOpenIncidents(ctx, al.IncidentID)
			if err == nil && open > 0 {
				lg.Debug("other incidents are open: the light stays red", "open", open)
				return false, nil
			}
			if err != nil {
				lg.Warn("counting the other open incidents failed: clearing the light", "error", err)
			}
		}
		var msgs []string
		if err := n.lifxEffect(ctx, lg, "off", map[string]any{"power_off": false}); err != nil {
			msgs = append(msgs, err.Error())
		}
		if err := n.restoreLights(ctx, lg); err != nil {
			msgs = append(msgs, err.Error())
		}
		if len(msgs) > 0 {
			return true, errors.New(strings.Join(msgs, "; "))
		}
		return true, nil
	default:
		return true, fmt.Errorf("unknown light mode %q", al.Light)
	}
}

// lifxEffect posts /lights/{selector}/effects/{effect}.
func (n *Notifier) lifxEffect(ctx context.Context, lg log.Logger, effect string, body map[string]any) error {
	_, err := n.do(ctx, lg, httpCall{what: "effects/" + effect, method: http.MethodPost,
		url:  n.lifxBase() + "/lights/" + url.PathEscape(n.lifxSelector()) + "/effects/" + effect,
		body: body, bearer: n.LIFXToken})
	return err
}

// saveLights saves the lights' state before the first alarm. It never
// overwrites a saved state (a second incident's alarm would save red) and
// saves nothing while other incidents are open or when it cannot tell. Its
// problems are logged: they never stop the alarm.
func (n *Notifier) saveLights(ctx context.Context, lg log.Logger, al Alert) {
	if n.LightStateFile == "" {
		return
	}
	saved, err := n.readSavedLights()
	switch {
	case err == nil:
		lg.Info("light state already saved before an earlier alarm: kept", "savedFor", saved.IncidentID, "savedAt", saved.SavedAt)
		return
	case !errors.Is(err, fs.ErrNotExist):
		lg.Warn("the saved light state is unreadable: saving it anew", "file", n.LightStateFile, "error", err)
	}
	if n.OtherOpenIncidents != nil {
		open, err := n.OtherOpenIncidents(ctx, al.IncidentID)
		if err != nil {
			lg.Warn("cannot tell whether other incidents are open: light state not saved (clearing will only stop the effect)", "error", err)
			return
		}
		if open > 0 {
			lg.Info("other incidents are open, so the light is already red: its state is not saved", "open", open)
			return
		}
	}
	lights, err := n.listLights(ctx, lg)
	if err != nil {
		lg.Warn("reading the lights' state failed: not saved (clearing will only stop the effect)", "error", n.redact(err.Error()))
		return
	}
	if len(lights) == 0 {
		lg.Warn("no connected light to save (clearing will only stop the effect)", "selector", n.lifxSelector())
		return
	}
	s := SavedLights{Version: 1, Selector: n.lifxSelector(), SavedAt: time.Now().UTC(), IncidentID: al.IncidentID, Lights: lights}
	b, err := json.MarshalIndent(s, "", "  ")
	if err == nil {
		err = writeFileAtomic(n.LightStateFile, append(b, '\n'))
	}
	if err != nil {
		lg.Warn("saving the light state failed (clearing will only stop the effect)", "file", n.LightStateFile, "error", err)
		return
	}
	lg.Info("light state saved before the alarm", "file", n.LightStateFile, "lights", len(lights))
}

// listLights reads the state of the selector's connected lights.
func (n *Notifier) listLights(ctx context.Context, lg log.Logger) ([]SavedLight, error) {
	body, err := n.do(ctx, lg, httpCall{what: "list lights", method: http.MethodGet,
		url: n.lifxBase() + "/lights/" + url.PathEscape(n.lifxSelector()), bearer: n.LIFXToken, limit: 1 << 20})
	if err != nil {
		return nil, err
	}
	var ls []lifxLight
	if err := json.Unmarshal(body, &ls); err != nil {
		return nil, fmt.Errorf("list lights: unexpected answer: %v", err)
	}
	var out []SavedLight
	for _, l := range ls {
		if !validLightID(l.ID) {
			lg.Warn("light with an unusable id skipped", "label", l.Label)
			continue
		}
		if l.Connected != nil && !*l.Connected {
			lg.Info("light offline: its state is not saved", "light", l.ID, "label", l.Label)
			continue
		}
		power := "off"
		if l.Power == "on" {
			power = "on"
		}
		out = append(out, SavedLight{ID: l.ID, Label: l.Label, Power: power, Hue: l.Color.Hue,
			Saturation: l.Color.Saturation, Kelvin: l.Color.Kelvin, Brightness: l.Brightness})
	}
	return out, nil
}

// validLightID accepts LIFX light ids (hex serial numbers): the id goes into
// a selector, so nothing else may.
func validLightID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// restoreLights puts the saved lights back and removes the state file. With
// no saved state it does nothing (the effect is only stopped). When the
// request fails the file is kept, for the next clear.
func (n *Notifier) restoreLights(ctx context.Context, lg log.Logger) error {
	if n.LightStateFile == "" {
		return nil
	}
	saved, err := n.readSavedLights()
	if errors.Is(err, fs.ErrNotExist) {
		lg.Debug("no saved light state: the effect is only stopped")
		return nil
	}
	if err != nil {
		lg.Warn("the saved light state is unreadable: removed, the effect is only stopped", "file", n.LightStateFile, "error", err)
		_ = os.Remove(n.LightStateFile)
		return nil
	}
	states := make([]map[string]any, 0, len(saved.Lights))
	for _, l := range saved.Lights {
		if !validLightID(l.ID) {
			continue
		}
		power := "off"
		if l.Power == "on" {
			power = "on"
		}
		states = append(states, map[string]any{
			"selector":   "id:" + l.ID,
			"power":      power,
			"color":      "hue:" + num(l.Hue) + " saturation:" + num(l.Saturation) + " kelvin:" + num(l.Kelvin),
			"brightness": l.Brightness,
			"duration":   restoreDuration,
		})
	}
	if len(states) > 0 {
		body, err := n.do(ctx, lg, httpCall{what: "set states", method: http.MethodPut, url: n.lifxBase() + "/lights/states",
			body: map[string]any{"states": states}, bearer: n.LIFXToken, limit: 1 << 20})
		if err != nil {
			return fmt.Errorf("restoring the saved light state (kept for the next clear): %w", err)
		}
		for _, r := range notOK(body) {
			lg.Warn("a light was not restored", "light", r.ID, "label", r.Label, "status", r.Status)
		}
	}
	if err := os.Remove(n.LightStateFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		lg.Warn("removing the light state file failed", "file", n.LightStateFile, "error", err)
	}
	lg.Info("lights restored to their state before the alarm", "lights", len(states), "savedAt", saved.SavedAt)
	return nil
}

type lifxResult struct {
	ID     string `json:"id"`
	Label  string `json:"label"`
	Status string `json:"status"`
}

// notOK lists the lights a set-states answer reports as not "ok"
// ({"results":[{"operations":[…],"results":[{"id","label","status"}]}]}).
func notOK(body []byte) []lifxResult {
	var resp struct {
		Results []struct {
			Results []lifxResult `json:"results"`
		} `json:"results"`
	}
	if json.Unmarshal(body, &resp) != nil {
		return nil
	}
	var out []lifxResult
	for _, op := range resp.Results {
		for _, r := range op.Results {
			if r.Status != "" && r.Status != "ok" {
				out = append(out, r)
			}
		}
	}
	return out
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// readSavedLights reads the light state file.
func (n *Notifier) readSavedLights() (SavedLights, error) {
	var s SavedLights
	b, err := os.ReadFile(n.LightStateFile)
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("%s: %w", n.LightStateFile, err)
	}
	if s.Version != 1 {
		return s, fmt.Errorf("%s: unknown version %d", n.LightStateFile, s.Version)
	}
	return s, nil
}

// writeFileAtomic replaces path with data: a temporary file in the same
// directory, synced, then renamed over path, so a crash leaves the old file
// or the new one, never a torn one.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if d, err := os.Open(dir); err == nil { // make the rename durable
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
