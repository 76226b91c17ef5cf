package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFailuresAreRepeatedAtTheEnd(t *testing.T) {
	in := strings.Join([]string{
		`{"Action":"run","Package":"p","Test":"TestA"}`,
		`{"Action":"output","Package":"p","Test":"TestA","Output":"=== RUN   TestA\n"}`,
		`{"Action":"output","Package":"p","Test":"TestA","Output":"    a_test.go:9: why it failed\n"}`,
		`{"Action":"output","Package":"p","Test":"TestA","Output":"{\"time\":\"x\",\"msg\":\"json log\"}\n"}`,
		`{"Action":"output","Package":"p","Test":"TestA","Output":"--- FAIL: TestA (0.00s)\n"}`,
		`{"Action":"fail","Package":"p","Test":"TestA"}`,
		`{"Action":"output","Package":"p","Test":"TestB","Output":"--- PASS: TestB (0.00s)\n"}`,
		`{"Action":"pass","Package":"p","Test":"TestB"}`,
		`{"Action":"fail","Package":"p"}`,
	}, "\n")
	var out bytes.Buffer
	require.Equal(t, 1, run(strings.NewReader(in), &out))
	got := out.String()
	live, failures, ok := strings.Cut(got, "== failures")
	require.True(t, ok, got)
	require.NotContains(t, live, "=== RUN", "noise left out of the live output")
	require.NotContains(t, live, "json log")
	require.Contains(t, live, "--- PASS: TestB")
	require.Contains(t, failures, "---- p TestA\n")
	require.Contains(t, failures, "why it failed", "the reason is repeated at the end")
	require.NotContains(t, failures, "TestB")
}

func TestPassingRunAndBuildErrors(t *testing.T) {
	var out bytes.Buffer
	require.Equal(t, 0, run(strings.NewReader(`{"Action":"pass","Package":"p","Test":"TestB"}`+"\n"), &out))
	out.Reset()
	require.Equal(t, 1, run(strings.NewReader("# p\n./x.go:1: syntax error\n"), &out), "a build error fails the run")
	require.Contains(t, out.String(), "syntax error")
}
