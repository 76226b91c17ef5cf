package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stream is govulncheck -format json output in the shape v1.9.0 prints:
// an osv message per report, then findings (module-, package- and
// symbol-level; only symbol-level ones have a function in trace[0]).
const stream = `{"config":{"protocol_version":"v1.0.0","scanner_name":"govulncheck","scanner_version":"v1.9.0","db":"file:///db","go_version":"go1.26.8","scan_level":"symbol","scan_mode":"source"}}
{"osv":{"id":"GO-2026-6875","summary":"Reverse Proxy Forwards Attacker-Supplied X-Real-IP"}}
{"osv":{"id":"GO-2026-6883","summary":"echo thing fixed in 4.16.0"}}
{"osv":{"id":"GO-2026-6809","summary":"crypto/x509 thing"}}
{"osv":{"id":"GO-2026-7000","summary":"imported, never called"}}
{"finding":{"osv":"GO-2026-6875","trace":[{"module":"github.com/labstack/echo/v4","version":"v4.15.4"}]}}
{"finding":{"osv":"GO-2026-6875","trace":[{"module":"github.com/labstack/echo/v4","version":"v4.15.4","package":"github.com/labstack/echo/v4","function":"New"},{"module":"github.com/cordonhq/cordon","package":"github.com/cordonhq/cordon/internal/devserver","function":"startUI","receiver":"*Server","position":{"filename":"internal/devserver/server.go","line":472}}]}}
{"finding":{"osv":"GO-2026-6883","fixed_version":"v4.16.0","trace":[{"module":"github.com/labstack/echo/v4","version":"v4.15.4","package":"github.com/labstack/echo/v4","function":"ServeHTTP","receiver":"*Echo"}]}}
{"finding":{"osv":"GO-2026-6809","fixed_version":"v1.26.10","trace":[{"module":"stdlib","version":"v1.26.8","package":"crypto/x509","function":"Verify","receiver":"*Certificate"}]}}
{"finding":{"osv":"GO-2026-7000","fixed_version":"v1.2.3","trace":[{"module":"example.com/m","version":"v1.0.0","package":"example.com/m"}]}}
`

func write(t *testing.T, name, body string) string {
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	return p
}

func TestGate(t *testing.T) {
	now := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	patched := write(t, "Dockerfile", "FROM golang:1.26.11 AS build\n")
	old := write(t, "Dockerfile", "FROM golang:1.26.8 AS build\n")
	allowEcho := write(t, "allow", "# comment\nGO-2026-6875 github.com/labstack/echo/v4 2027-03-01 loopback only\n")
	allowAll := write(t, "allow", "GO-2026-6875 github.com/labstack/echo/v4 2027-03-01 loopback only\nGO-2026-6883 github.com/labstack/echo/v4 2027-03-01 reason\nGO-2020-0001 example.com/gone 2027-01-01 stale\n")

	t.Run("an upgradable module fails and says what to run", func(t *testing.T) {
		var out strings.Builder
		ok, err := run(strings.NewReader(stream), &out, allowEcho, patched, now)
		require.NoError(t, err)
		assert.False(t, ok)
		assert.Contains(t, out.String(), "3 vulnerabilit(ies) reachable")
		assert.Contains(t, out.String(), "FAIL: upgrade github.com/labstack/echo/v4 to v4.16.0")
		assert.Contains(t, out.String(), "accepted until 2027-03-01: loopback only")
		assert.Contains(t, out.String(), "internal/devserver/server.go:472 calls github.com/labstack/echo/v4.New")
		assert.NotContains(t, out.String(), "GO-2026-7000", "imported but never called is not reported")
	})
	t.Run("everything accepted passes, stale entries are named", func(t *testing.T) {
		var out strings.Builder
		ok, err := run(strings.NewReader(stream), &out, allowAll, patched, now)
		require.NoError(t, err)
		assert.True(t, ok, out.String())
		assert.Contains(t, out.String(), "the release build's Go 1.26.11 has the fix")
		assert.Contains(t, out.String(), "line 3 (GO-2020-0001 example.com/gone) matches no finding")
	})
	t.Run("a standard-library fix the release Go lacks fails", func(t *testing.T) {
		var out strings.Builder
		ok, err := run(strings.NewReader(stream), &out, allowAll, old, now)
		require.NoError(t, err)
		assert.False(t, ok)
		assert.Contains(t, out.String(), "FAIL: fixed in Go 1.26.10; pin the Dockerfile's golang image")
	})
	t.Run("an expired acceptance fails", func(t *testing.T) {
		var out strings.Builder
		ok, err := run(strings.NewReader(stream), &out, allowAll, patched, time.Date(2027, 3, 2, 0, 0, 0, 0, time.UTC))
		require.NoError(t, err)
		assert.False(t, ok)
		assert.Contains(t, out.String(), "FAIL: allowed until 2027-03-01 (allow file line 1), expired")
	})
	t.Run("bad inputs are errors naming the problem", func(t *testing.T) {
		_, err := run(strings.NewReader("{not json"), &strings.Builder{}, "", "", now)
		assert.ErrorContains(t, err, "reading govulncheck -format json output")
		_, err = run(strings.NewReader(stream), &strings.Builder{}, write(t, "allow", "GO-1 m soon reason\n"), "", now)
		assert.ErrorContains(t, err, `allow:1: expiry "soon" is not a date`)
		_, err = run(strings.NewReader(stream), &strings.Builder{}, "", write(t, "Dockerfile", "FROM golang:1.26 AS build\n"), now)
		assert.ErrorContains(t, err, "pin the build image to a Go patch release")
	})
}

// TestRepositoryFiles keeps the shipped allow file and Dockerfile readable
// by the gate.
func TestRepositoryFiles(t *testing.T) {
	_, err := readAllow("../../.ci/vulncheck-allow")
	require.NoError(t, err)
	v, err := dockerGo("../../Dockerfile")
	require.NoError(t, err)
	assert.Regexp(t, `^1\.26\.\d+$`, v)
}
