package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/alexa"
	"github.com/cordonhq/cordon/sns"
	"github.com/cordonhq/cordon/workflows"
)

// TestEveryEndpointRefusesBadInput sends what the internet sends to every
// route of `starter serve`: bodies over the cap, bodies that are not JSON,
// JSON of the wrong shape, empty bodies, the wrong method, unknown paths.
// Each gets a 4xx that names the problem (SNS: 403 for anything that cannot
// be verified, with the reason token that is also logged; never a 5xx, which would make SNS
// retry a message that can never succeed, and never a panic), nothing
// reaches Temporal, and the server stays healthy.
func TestEveryEndpointRefusesBadInput(t *testing.T) {
	var opened atomic.Int32
	log := slog.New(slog.DiscardHandler)
	snsH, err := sns.NewHandler(sns.Config{
		Topics: []string{"arn:aws:sns:us-east-1:123456789012:cordon-alerts"}, Logger: log, MaxBodyBytes: 64 << 10,
	}, sns.OpenerFunc(func(context.Context, workflows.QuarantineInput) error { opened.Add(1); return nil }))
	require.NoError(t, err)
	alexaH := alexa.NewHTTPHandler(alexa.Config{SkillID: "amzn1.ask.skill.00000000-0000-0000-0000-000000000000", Logger: log, MaxBodyBytes: 64 << 10},
		&alexa.Skill{Incidents: nil, Logger: log})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := newServer(log, func(context.Context) error { return nil },
		endpoint{pattern: "POST /sns", handler: snsH}, endpoint{pattern: "POST /alexa", handler: alexaH})
	urls := make(chan string, 1)
	go func() { _ = s.run(ctx, "127.0.0.1:0", "", "", func(u string) { urls <- u }) }()
	base := <-urls

	huge := bytes.Repeat([]byte("A"), 200<<10)
	hugeJSON := append(append([]byte(`{"Type":"Notification","Message":"`), huge...), []byte(`"}`)...)
	cases := []struct {
		name, method, path, ctype string
		body                      []byte
		want                      int
		says                      string
	}{
		{"sns oversize", "POST", "/sns", "text/plain", hugeJSON, http.StatusRequestEntityTooLarge, "too large"},
		{"sns not JSON", "POST", "/sns", "text/plain", []byte("<xml>hello</xml>"), http.StatusBadRequest, "JSON"},
		{"sns empty", "POST", "/sns", "text/plain", nil, http.StatusBadRequest, "malformed-json"},
		{"sns wrong shape", "POST", "/sns", "text/plain", []byte(`{"Type":["Notification"]}`), http.StatusForbidden, "forbidden: "},
		{"sns unknown type, unsigned", "POST", "/sns", "text/plain", []byte(`{"Type":"Bogus","TopicArn":"arn:aws:sns:us-east-1:123456789012:cordon-alerts"}`), http.StatusForbidden, "forbidden: "},
		{"sns binary", "POST", "/sns", "application/octet-stream", []byte{0xff, 0xfe, 0x00, 0x01}, http.StatusBadRequest, ""},
		{"sns GET", "GET", "/sns", "", nil, http.StatusMethodNotAllowed, ""},
		{"alexa oversize", "POST", "/alexa", "application/json", hugeJSON, http.StatusRequestEntityTooLarge, "too large"},
		{"alexa not JSON", "POST", "/alexa", "application/json", []byte("not json"), http.StatusBadRequest, ""},
		{"alexa unsigned", "POST", "/alexa", "application/json", []byte(`{"version":"1.0","request":{"type":"LaunchRequest"}}`), http.StatusBadRequest, "Signature"},
		{"alexa empty", "POST", "/alexa", "application/json", nil, http.StatusBadRequest, ""},
		{"alexa GET", "GET", "/alexa", "", nil, http.StatusMethodNotAllowed, ""},
		{"healthz POST", "POST", "/healthz", "text/plain", []byte("x"), http.StatusMethodNotAllowed, ""},
		{"metrics POST", "POST", "/metrics", "text/plain", huge, http.StatusMethodNotAllowed, ""},
		{"unknown path", "POST", "/admin", "text/plain", []byte("x"), http.StatusNotFound, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, base+tc.path, bytes.NewReader(tc.body))
			require.NoError(t, err)
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Equal(t, tc.want, resp.StatusCode, "%s %s: %s", tc.method, tc.path, b)
			if tc.says != "" {
				require.Contains(t, strings.ToLower(string(b)), strings.ToLower(tc.says), "the answer names the problem")
			}
			if tc.want >= 400 && tc.want != http.StatusMethodNotAllowed && tc.want != http.StatusNotFound {
				require.NotEmpty(t, strings.TrimSpace(string(b)), "a refusal says why")
			}
		})
	}
	require.Zero(t, opened.Load(), "no bad request reached Temporal")
	resp, err := http.Get(base + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "still healthy after the abuse")
}
