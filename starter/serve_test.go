package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestServeHealthAndMetrics(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var healthy atomic.Bool
	healthy.Store(true)
	s := newServer(slog.New(slog.DiscardHandler), func(context.Context) error {
		if !healthy.Load() {
			return errors.New("connection refused")
		}
		return nil
	})
	urls := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- s.run(ctx, "127.0.0.1:0", "", "", func(u string) { urls <- u }) }()
	base := <-urls

	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("/healthz")
	require.Equal(t, 200, code)
	require.Equal(t, "ok\n", body)
	healthy.Store(false)
	code, body = get("/healthz")
	require.Equal(t, 503, code)
	require.Contains(t, body, "temporal unreachable")
	code, body = get("/metrics")
	require.Equal(t, 200, code)
	require.True(t, strings.Contains(body, "go_goroutines"), body[:min(200, len(body))])
	resp, err := http.Post(base+"/healthz", "text/plain", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not shut down")
	}
}
