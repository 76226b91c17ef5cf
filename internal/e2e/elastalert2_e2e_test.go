package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/simcloud"
	"github.com/cordonhq/cordon/workflows"
)

// ElastAlert2Version is the pinned ElastAlert 2 release the test installs
// from PyPI (it needs Python >= 3.12).
const ElastAlert2Version = "2.31.0"

// elastalertDriver runs ElastAlert 2's own code: the blacklist rule type
// (BlacklistRule.add_data → matches) over the Packetbeat capture, then the
// SNS alerter (SnsAlerter.alert → create_alert_body → boto3 sns.publish).
// boto3 reaches goaws through AWS_ENDPOINT_URL_SNS. No Elasticsearch: the
// documents are what ElastAlert's query would return (process_hits turns
// @timestamp into a datetime and adds _id/_index; run_rule adds num_hits and
// num_matches before alerting).
const elastalertDriver = `
import json, sys
from elastalert.loaders import FileRulesLoader
from elastalert.alerters.sns import SnsAlerter
from elastalert.util import ts_to_dt

topic, events_file, blacklist = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
rule = {
    "name": "Packetbeat destination.ip on threat blocklist",
    "type": "blacklist",
    "compare_key": "destination.ip",
    "blacklist": blacklist,
    "index": "packetbeat-*",
    "timestamp_field": "@timestamp",
    "alert": [],
    "sns_topic_arn": topic,
    "sns_aws_access_key_id": "test",
    "sns_aws_secret_access_key": "test",
    "sns_aws_region": "us-east-1",
}
FileRulesLoader({}).load_modules(rule)
docs = []
with open(events_file) as f:
    for n, line in enumerate(f, 1):
        doc = json.loads(line)
        doc["@timestamp"] = ts_to_dt(doc["@timestamp"])
        doc["_id"] = "line-%d" % n
        doc["_index"] = ".ds-logs-network_traffic-default"
        docs.append(doc)
rule["type"].add_data(docs)
matches = rule["type"].matches
for m in matches:
    m["num_hits"] = len(docs)
    m["num_matches"] = len(matches)
SnsAlerter(rule).alert(matches)
print("published %d matches" % len(matches))
`

// elastalert2Python returns a Python with elastalert2 installed: the one in
// CORDON_ELASTALERT2_PYTHON, or a venv in the user cache made (once) with
// pip install elastalert2==ElastAlert2Version. It skips the test when no
// Python >= 3.12 or no PyPI access is available, saying why.
func elastalert2Python(t *testing.T) string {
	if p := os.Getenv("CORDON_ELASTALERT2_PYTHON"); p != "" {
		return p
	}
	if os.Getenv("CORDON_SKIP_ELASTALERT2") != "" {
		t.Skip("CORDON_SKIP_ELASTALERT2 is set")
	}
	cache, err := os.UserCacheDir()
	require.NoError(t, err)
	venv := filepath.Join(cache, "cordon", "elastalert2-"+ElastAlert2Version)
	py := filepath.Join(venv, "bin", "python")
	if out, err := exec.Command(py, "-c", "import elastalert.alerters.sns").CombinedOutput(); err == nil {
		return py
	} else if _, statErr := os.Stat(py); statErr == nil {
		t.Logf("existing venv %s is unusable (%v: %s); recreating it", venv, err, out)
	}
	var candidates []string
	for _, name := range []string{"python3.13", "python3.12", "python3"} {
		if p, err := exec.LookPath(name); err == nil {
			candidates = append(candidates, p)
		}
	}
	// pyenv installs versions its shims do not expose unless selected.
	pyenvRoot := os.Getenv("PYENV_ROOT")
	if home, err := os.UserHomeDir(); pyenvRoot == "" && err == nil {
		pyenvRoot = filepath.Join(home, ".pyenv")
	}
	if found, _ := filepath.Glob(filepath.Join(pyenvRoot, "versions", "3.*", "bin", "python3")); len(found) > 0 {
		slices.Reverse(found)
		candidates = append(candidates, found...)
	}
	var base string
	for _, p := range candidates {
		if exec.Command(p, "-c", "import sys; sys.exit(sys.version_info < (3, 12))").Run() == nil {
			base = p
			break
		}
	}
	if base == "" {
		t.Skipf("ElastAlert 2 %s needs Python >= 3.12; none found on PATH", ElastAlert2Version)
	}
	require.NoError(t, os.RemoveAll(venv))
	if out, err := exec.Command(base, "-m", "venv", venv).CombinedOutput(); err != nil {
		t.Skipf("cannot create a venv with %s: %v\n%s", base, err, out)
	}
	t.Logf("installing elastalert2==%s from PyPI into %s (once; about 2 minutes)", ElastAlert2Version, venv)
	cmd := exec.Command(filepath.Join(venv, "bin", "pip"), "install", "--quiet", "elastalert2=="+ElastAlert2Version)
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.RemoveAll(venv)
		t.Skipf("pip install elastalert2==%s failed (PyPI unreachable?): %v\n%s", ElastAlert2Version, err, out)
	}
	return py
}

// TestElastAlert2ToIncident: the real ElastAlert 2 (PyPI, pinned) runs its
// blacklist rule over the bundled Packetbeat capture and publishes the
// matches with its SNS alerter to goaws; goaws signs and delivers them to
// Cordon's endpoint → one incident per instance, with the right bad IPs.
func TestElastAlert2ToIncident(t *testing.T) {
	py := elastalert2Python(t)
	h := New(t, simcloud.Delays{}, "")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r := newSNSRig(ctx, t, h, "elastalert2-blacklist")

	script := filepath.Join(t.TempDir(), "elastalert_driver.py")
	require.NoError(t, os.WriteFile(script, []byte(elastalertDriver), 0o600))
	// Three flows in the capture go to these addresses: two from
	// i-04f2ae54915567738 to 23.226.138.143, one from i-0144394dc883f9fe0 to
	// 85.239.243.155 (testdata/packetbeat/*.labels.ndjson).
	cmd := exec.CommandContext(ctx, py, script, r.topicARN,
		filepath.Join(Testdata, "packetbeat/GENERATED_packetbeat_ecs8_ec2_300events.ndjson"), "23.226.138.143,85.239.243.155")
	cmd.Env = append(os.Environ(), "AWS_ENDPOINT_URL_SNS="+r.emuURL, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
		"AWS_DEFAULT_REGION=us-east-1", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "ElastAlert 2:\n%s", out)
	t.Logf("ElastAlert 2 %s: %s", ElastAlert2Version, strings.TrimSpace(string(out)))
	require.Contains(t, string(out), "published 3 matches")

	web1 := workflows.IncidentID("123456789012", "us-east-1", "i-04f2ae54915567738")
	web3 := workflows.IncidentID("123456789012", "us-east-1", "i-0144394dc883f9fe0")
	final := h.WaitFinal([]string{web1, web3}, 2*time.Minute)
	require.Equal(t, "23.226.138.143", final[web1].BadIP)
	require.Equal(t, 2, final[web1].EvidenceCount, "two matches, one incident")
	require.Equal(t, "85.239.243.155", final[web3].BadIP)
	for id, st := range final {
		require.Equal(t, workflows.PhaseResolved, st.Phase, "%s: %s", id, st.Reason)
		require.Equal(t, "elastalert", st.Evidence[0].Source)
		require.Equal(t, "Packetbeat destination.ip on threat blocklist", st.Evidence[0].Rule)
	}
	snap := r.handler.Stats().Snapshot()
	t.Logf("endpoint counters: %s", r.handler.Stats())
	require.EqualValues(t, 3, snap.Incidents)
	require.EqualValues(t, 0, snap.Refused+snap.Failed)
}
