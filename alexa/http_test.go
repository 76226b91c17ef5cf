package alexa

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cordonhq/cordon/alexa/alexatest"
	"github.com/cordonhq/cordon/workflows"
)

func post(t *testing.T, h http.Handler, header http.Header, body []byte) (*http.Response, []byte) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/alexa", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestHTTPHandler(t *testing.T) {
	s := newTestSigner(t, alexatest.Options{})
	chains := alexatest.NewChainServer(map[string][]byte{s.CertURL: s.ChainPEM})
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	now := time.Now()
	cfg := Config{SkillID: testSkillID, Roots: s.Roots, HTTPClient: chains.Client(), Logger: log, Now: func() time.Time { return now }}
	skill := newTestSkill(newFake(now, workflows.PhaseAwaitingApproval))
	h := NewHTTPHandler(cfg, skill)

	body := alexatest.Call{AppID: testSkillID, UserID: "amzn1.ask.account.TEST", Type: TypeLaunch, New: true, SessionID: "s", Time: now}.JSON()
	resp, b := post(t, h, s.Headers(body), body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json;charset=UTF-8" {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	var out ResponseEnvelope
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	wantSaid(t, &out, "Cordon here. 1 incident is open")

	refused := []struct {
		name   string
		header http.Header
		body   []byte
		reason string
	}{
		{"tampered body", s.Headers(body), bytes.Replace(body, []byte("LaunchRequest"), []byte("LaunchRequesT"), 1), "invalid request signature"},
		{"no signature headers", http.Header{"SignatureCertchainurl": {s.CertURL}}, body, "missing signature header"},
		{"stale timestamp", nil, alexatest.Call{AppID: testSkillID, Type: TypeLaunch, Time: now.Add(-10 * time.Minute)}.JSON(), "request timestamp out of tolerance"},
		{"wrong skill", nil, alexatest.Call{AppID: "amzn1.ask.skill.other", Type: TypeLaunch, Time: now}.JSON(), "wrong application ID"},
		{"bad cert URL", http.Header{"Signaturecertchainurl": {"https://s3.amazonaws.com/EcHo.aPi/x.pem"}, "Signature-256": {"AA=="}}, body, "invalid SignatureCertChainUrl"},
		{"not JSON", nil, []byte("hello"), "malformed Alexa request"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			logs.Reset()
			hh := tc.header
			if hh == nil {
				hh = s.Headers(tc.body)
			}
			resp, b := post(t, h, hh, tc.body)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), tc.reason) {
				t.Fatalf("%d %s", resp.StatusCode, b)
			}
			var line map[string]any
			if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
				t.Fatalf("want one JSON log line, got %q", logs.String())
			}
			if line["msg"] != "alexa: request refused" || !strings.Contains(line["reason"].(string), tc.reason) || line["level"] != "WARN" {
				t.Fatalf("log line %v", line)
			}
		})
	}

	t.Run("body too large", func(t *testing.T) {
		h := NewHTTPHandler(Config{SkillID: testSkillID, MaxBodyBytes: 100, Logger: log}, skill)
		resp, _ := post(t, h, s.Headers(body), body)
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatal(resp.StatusCode, "want 413 for a body over the cap")
		}
	})
	t.Run("GET", func(t *testing.T) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/alexa", nil))
		if rec.Code != http.StatusMethodNotAllowed {
			t.Fatal(rec.Code)
		}
	})
	t.Run("user not allowed", func(t *testing.T) {
		cfg := cfg
		cfg.Users = []string{"amzn1.ask.account.OPERATOR"}
		resp, b := post(t, NewHTTPHandler(cfg, skill), s.Headers(body), body)
		var out ResponseEnvelope
		_ = json.Unmarshal(b, &out)
		if resp.StatusCode != http.StatusOK {
			t.Fatal(resp.StatusCode)
		}
		wantSaid(t, &out, "This Alexa account may not steer Cordon.")
	})
}

// TestHTTPHandlerCorpusRequest posts the real signed request (legacy SHA-1)
// through the handler: it verifies, and the skill answers its unknown intent.
func TestHTTPHandlerCorpusRequest(t *testing.T) {
	body, header := corpusSigned(t)
	chains := alexatest.NewChainServer(map[string][]byte{corpusCertURL: readCorpus(t, "signed-sidoh-alexa_verifier/echo-api-cert-5.pem")})
	h := NewHTTPHandler(Config{SkillID: corpusSkillID, Roots: g5Pool(t), HTTPClient: chains.Client(),
		Now: func() time.Time { return corpusTime }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		newTestSkill(newFake(testNow)))
	resp, b := post(t, h, header, body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	var out ResponseEnvelope
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	wantSaid(t, &out, `Sorry, Cordon does not know the request "PlayAudio".`)
}

func TestLambdaHandler(t *testing.T) {
	var logs bytes.Buffer
	cfg := Config{SkillID: testSkillID, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	h := NewLambdaHandler(cfg, newTestSkill(newFake(testNow, workflows.PhaseImaging)))

	ev := alexatest.Call{AppID: testSkillID, Intent: IntentStatus, SessionID: "s", New: true}.JSON()
	r, err := h(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	wantSaid(t, r, "1 incident is open, newest first. 1: instance ending 0001, being imaged.")

	// The Lambda path does not check signatures or timestamps, but the skill ID.
	old := alexatest.Call{AppID: testSkillID, Intent: IntentStatus, Time: time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC)}.JSON()
	if _, err := h(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	for name, ev := range map[string][]byte{
		"wrong skill": alexatest.Call{AppID: "amzn1.ask.skill.other", Intent: IntentStatus}.JSON(),
		"no skill":    []byte(`{"version":"1.0","request":{"type":"LaunchRequest"}}`),
		"malformed":   []byte(`{"request":`),
	} {
		logs.Reset()
		if r, err := h(context.Background(), ev); err == nil || r != nil {
			t.Errorf("%s: accepted", name)
		}
		if !strings.Contains(logs.String(), "request refused") {
			t.Errorf("%s: no log line: %s", name, logs.String())
		}
	}
	if _, err := NewLambdaHandler(Config{Logger: cfg.Logger}, nil)(context.Background(), ev); err == nil {
		t.Fatal("no skill ID configured: accepted")
	}
}
