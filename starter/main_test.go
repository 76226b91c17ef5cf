package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/e2e"
	"github.com/cordonhq/cordon/simcloud"
	"github.com/cordonhq/cordon/workflows"
)

// cli runs the starter as a user would and returns its exit code and output.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := run(ctx, append([]string{"starter"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func withServer(t *testing.T, delays simcloud.Delays) *e2e.Harness {
	h := e2e.New(t, delays, "")
	t.Setenv("TEMPORAL_ADDRESS", h.Srv.FrontendHostPort())
	t.Setenv("TEMPORAL_NAMESPACE", h.Srv.Namespace())
	return h
}

func TestCLI(t *testing.T) {
	h := withServer(t, simcloud.Delays{ImageAvailable: time.Second})
	const inst = "i-0144394dc883f9fe0"
	id := workflows.IncidentID("123456789012", "us-east-1", inst)

	t.Run("missing incident is a one-line error naming the ID", func(t *testing.T) {
		code, out, errOut := runCLI(t, "status", "quarantine/123456789012/us-east-1/i-0123456789abcdef0")
		require.Equal(t, 1, code)
		require.Empty(t, out)
		require.Equal(t, 1, strings.Count(errOut, "\n"), errOut)
		require.Contains(t, errOut, "quarantine/123456789012/us-east-1/i-0123456789abcdef0")
		code, _, errOut = runCLI(t, "approve", "i-0123456789abcdef0")
		require.Equal(t, 1, code)
		require.Contains(t, errOut, "no such incident for instance i-0123456789abcdef0 (`starter list` shows the incidents)")
	})

	t.Run("bad instance ID is refused at start", func(t *testing.T) {
		code, _, errOut := runCLI(t, "quarantine", "--instance", "web-1", "--account", "123456789012", "--region", "us-east-1")
		require.Equal(t, 1, code)
		require.Contains(t, errOut, `"web-1" is not an EC2 instance ID`)
		code, _, errOut = runCLI(t, "quarantine", "--instance", inst, "--account", "12345", "--region", "us-east-1")
		require.Equal(t, 1, code)
		require.Contains(t, errOut, "12-digit")
	})

	t.Run("quarantine, approve, status", func(t *testing.T) {
		code, out, errOut := runCLI(t, "quarantine", "--instance", inst, "--bad-ip", "1.19.6.4", "--reason", "test",
			"--account", "123456789012", "--region", "us-east-1", "--approval", "before-destructive")
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, id)
		h.WaitPhase(id, workflows.PhaseAwaitingApproval, time.Minute)

		code, out, _ = runCLI(t, "list")
		require.Equal(t, 0, code)
		require.Contains(t, out, id)
		require.Contains(t, out, "open")

		code, out, errOut = runCLI(t, "approve", inst, "--by", "alice")
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, "approve accepted (it was awaiting-approval); follow it with: starter status "+id)

		code, _, errOut = runCLI(t, "approve", id)
		require.Equal(t, 1, code)
		require.Contains(t, errOut, "not waiting for approval")

		st := h.WaitFinal([]string{id}, time.Minute)[id]
		require.Equal(t, workflows.OutcomeResolved, st.Outcome, st.Reason)
		code, out, _ = runCLI(t, "status", id)
		require.Equal(t, 0, code)
		require.Contains(t, out, "phase      resolved")
		require.Contains(t, out, "approved by alice")
	})

	t.Run("detect reports bad lines with file:line and opens the rest", func(t *testing.T) {
		src, err := os.ReadFile(filepath.Join(e2e.Testdata, "packetbeat/GENERATED_packetbeat_ecs8_ec2_300events.ndjson"))
		require.NoError(t, err)
		lines := strings.SplitAfter(string(src), "\n")
		events := filepath.Join(t.TempDir(), "events.ndjson")
		broken := lines[0] + "{not json\n" + strings.Join(lines[1:], "")
		require.NoError(t, os.WriteFile(events, []byte(broken), 0o644))
		blk := filepath.Join(t.TempDir(), "list.txt")
		require.NoError(t, os.WriteFile(blk, []byte("# demo list\n85.239.243.155\nnot-an-address\n"), 0o644))

		code, out, errOut := runCLI(t, "detect", "--events", events, "--blocklist", blk, "--sim-env", filepath.Join(e2e.Testdata, "sim/seed.yaml"))
		require.Equal(t, 0, code, errOut)
		require.Contains(t, errOut, "list.txt:3")
		require.Contains(t, errOut, "events.ndjson:2")
		require.Contains(t, out, "1 malformed")
		require.Contains(t, out, "incident quarantine/123456789012/us-east-1/i-0144394dc883f9fe0")

		// Nothing usable at all is an error, not "0 hits".
		junk := filepath.Join(t.TempDir(), "junk.ndjson")
		require.NoError(t, os.WriteFile(junk, []byte("{not json\n[1,2]\n"), 0o644))
		code, out, errOut = runCLI(t, "detect", "--events", junk, "--blocklist", blk, "--report-only")
		require.Equal(t, 1, code, out)
		require.Contains(t, errOut, "no usable Packetbeat event in "+junk+": all 3 record(s) were skipped")
		empty := filepath.Join(t.TempDir(), "empty.txt")
		require.NoError(t, os.WriteFile(empty, nil, 0o644))
		code, _, errOut = runCLI(t, "detect", "--events", events, "--blocklist", empty, "--report-only")
		require.Equal(t, 1, code)
		require.Contains(t, errOut, "not one usable IP or CIDR entry")
	})
}

func TestQuarantineUnknownInstanceSaysSo(t *testing.T) {
	withServer(t, simcloud.Delays{})
	code, out, errOut := runCLI(t, "quarantine", "--instance", "i-0123456789abcdef0", "--account", "123456789012", "--region", "us-east-1")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "outcome instance-gone")
	require.Contains(t, out, "i-0123456789abcdef0 is unknown")
}

func TestDecideOnClosedIncidentSaysItIsClosed(t *testing.T) {
	h := withServer(t, simcloud.Delays{})
	code, _, errOut := runCLI(t, "quarantine", "--instance", "i-085a2fa5fa92cd19c", "--account", "123456789012", "--region", "us-east-1")
	require.Equal(t, 0, code, errOut)
	id := workflows.IncidentID("123456789012", "us-east-1", "i-085a2fa5fa92cd19c")
	h.WaitFinal([]string{id}, time.Minute)
	code, _, errOut = runCLI(t, "release", id)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "is closed (resolved): nothing to release")
}

func TestPlanChangesNothing(t *testing.T) {
	h := withServer(t, simcloud.Delays{})
	code, out, errOut := runCLI(t, "plan", "--instance", "i-04f2ae54915567738", "--account", "123456789012", "--region", "us-east-1")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "plan for i-04f2ae54915567738: dry-run")
	require.Contains(t, out, "ec2:CreateImage")
	require.Contains(t, out, "autoscaling:DetachInstances")
	require.Empty(t, h.Sim.Mutations())
}

// TestFlagsCheckedBeforeAnythingStarts: values that could only fail later
// are refused at once, naming the flag (no Temporal server is running here).
func TestFlagsCheckedBeforeAnythingStarts(t *testing.T) {
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"quarantine", "--instance", "i-0144394dc883f9fe0", "--account", "123456789012", "--region", "us-east-1", "--quarantine-subnet", "bogus"}, `--quarantine-subnet "bogus" is not a subnet ID`},
		{[]string{"plan", "--instance", "i-0144394dc883f9fe0", "--account", "123456789012", "--region", "us-east-1", "--quarantine-subnet", "subnet-12"}, `--quarantine-subnet "subnet-12" is not a subnet ID`},
		{[]string{"serve", "--sns-default-account", "abc"}, `--sns-default-account "abc" is not a 12-digit AWS account ID`},
		{[]string{"serve", "--alexa-skill-id", "garbage"}, `--alexa-skill-id "garbage": want the skill's ID`},
		{[]string{"serve", "--allow", "1.2.3"}, `--allow: "1.2.3" is neither an address nor a CIDR range`},
		{[]string{"serve", "--max-concurrent", "0"}, `--max-concurrent 0: must be at least 1`},
		{[]string{"list", "--limit", "-5"}, `--limit -5: must be at least 1`},
	} {
		code, _, errOut := runCLI(t, tc.args...)
		require.Equal(t, 1, code, "%v", tc.args)
		require.Contains(t, errOut, tc.says, "%v", tc.args)
	}
}
