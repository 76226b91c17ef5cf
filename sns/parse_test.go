package sns

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// want is the exact expectation for one alert (Raw is checked separately).
type want struct {
	Format, Source, InstanceID, SourceIP, Host, Account, Region, BadIP string
	Port                                                               int
	Domain, Direction, Rule                                            string
	Severity                                                           float64
	Sample                                                             bool
	Time, Ref                                                          string
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func checkAlert(t *testing.T, name string, a Alert, w want) {
	t.Helper()
	got := want{a.Format, a.Source, a.InstanceID, addrString(a.SourceIP), a.Host, a.Account, a.Region, addrString(a.BadIP),
		a.Port, a.Domain, a.Direction, a.Rule, a.Severity, a.Sample, "", a.Ref}
	if !a.Time.IsZero() {
		got.Time = a.Time.UTC().Format(time.RFC3339Nano)
	}
	if got != w {
		t.Errorf("%s:\n got  %+v\n want %+v", name, got, w)
	}
	if a.Raw == "" || len(a.Raw) > MaxRawBytes {
		t.Errorf("%s: raw evidence of %d bytes", name, len(a.Raw))
	}
	t.Logf("%s → %s", name, a.Reason())
}

const ruleName = "Packetbeat destination.ip on threat blocklist"

func subjectOf(t *testing.T) string {
	return strings.TrimSpace(string(readFile(t, "elastalert/GENERATED_blacklist-packetbeat_sns_subject.txt")))
}

func TestParseElastAlertCorpus(t *testing.T) {
	subject := subjectOf(t)
	if subject != "ElastAlert: "+ruleName {
		t.Fatalf("subject %q", subject)
	}
	one := want{Format: FormatElastAlert, Source: "elastalert", InstanceID: "i-04f2ae54915567738", SourceIP: "10.0.1.10", Host: "ip-10-0-1-10",
		Account: "123456789012", Region: "us-east-1", BadIP: "2.57.232.61", Port: 443, Domain: "example.org", Rule: ruleName,
		Time: "2024-05-01T12:00:08.507Z", Ref: ".ds-logs-network_traffic.tls-default-2024.05.01-000001/bbd9342e7270825122ff"}
	for _, c := range []struct {
		file    string
		subject string
		want    []want
	}{
		{"GENERATED_blacklist-packetbeat_sns_message_1match.txt", subject, []want{one}},
		{"GENERATED_blacklist-packetbeat_sns_message_1match.txt", "", []want{one}}, // rule name from the body's first line
		{"GENERATED_blacklist-packetbeat_sns_message_2matches-aggregated.txt", subject, []want{
			{Format: FormatElastAlert, Source: "elastalert", InstanceID: "i-034136011c134a2d9", SourceIP: "10.0.5.38", Host: "ip-10-0-5-38",
				Account: "123456789012", Region: "eu-west-1", BadIP: "1.10.16.1", Port: 443, Domain: "example.net", Rule: ruleName,
				Time: "2024-05-01T12:01:47.78Z", Ref: ".ds-logs-network_traffic.tls-default-2024.05.01-000001/889f1cf65898a68608d7"},
			{Format: FormatElastAlert, Source: "elastalert", InstanceID: "i-06e354b41b6b927eb", SourceIP: "10.0.4.31", Host: "ip-10-0-4-31",
				Account: "123456789012", Region: "eu-west-1", BadIP: "101.50.83.146", Port: 22, Rule: ruleName,
				Time: "2024-05-01T12:03:02.045Z", Ref: ".ds-logs-network_traffic.flow-default-2024.05.01-000001/0885f5d27b30f6afda49"},
		}},
		{"GENERATED_blacklist-packetbeat_sns_message_alert_text_only.txt", subject, []want{
			{Format: FormatElastAlert, Source: "elastalert", InstanceID: "i-04f2ae54915567738", SourceIP: "10.0.1.10", Host: "ip-10-0-1-10",
				BadIP: "2.57.232.61", Rule: ruleName},
		}},
	} {
		body := string(readFile(t, "elastalert/"+c.file))
		for _, parse := range []struct {
			name string
			fn   func(string, string) ([]Alert, error)
		}{{"ParseElastAlert", ParseElastAlert}, {"Parse", Parse}} {
			as, err := parse.fn(c.subject, body)
			if err != nil {
				t.Fatalf("%s %s: %v", parse.name, c.file, err)
			}
			if len(as) != len(c.want) {
				t.Fatalf("%s %s: %d alerts, want %d", parse.name, c.file, len(as), len(c.want))
			}
			for i := range as {
				checkAlert(t, c.file, as[i], c.want[i])
			}
		}
	}
}

// TestParseElastAlertRefused: bodies without an instance or remote address
// are refused with a reason (the handler answers 200 and logs it).
func TestParseElastAlertRefused(t *testing.T) {
	for file, reason := range map[string]string{
		"elastalert2-190_email-body_match-fields-only.txt": "no cloud.instance.id, host name or source address",
		"yelp-1843_frequency_email-body.txt":               "no cloud.instance.id, host name or source address",
	} {
		_, err := Parse("", string(readFile(t, "elastalert/"+file)))
		if !IsNotUnderstood(err) || !strings.Contains(err.Error(), reason) {
			t.Errorf("%s: want not understood (%s), got %v", file, reason, err)
		}
		t.Logf("%s → %v", file, err)
	}
	for body, reason := range map[string]string{
		"":                                  "empty message",
		"hello world":                       "no instance ID, host name or source address",
		"i-0123456789abcdef0 did something": "no remote address",
		"[1,2,3]":                           "JSON array",
		"AWS 123456789012 has a severity 5 GuardDuty finding type Backdoor:EC2/Spambot in the us-east-1 region.": "input transformer",
	} {
		_, err := Parse("ElastAlert: r", body)
		if !IsNotUnderstood(err) || !strings.Contains(err.Error(), reason) {
			t.Errorf("%q: want not understood (%s), got %v", body, reason, err)
		}
	}
}

// TestParseElastAlertShapes: flattened keys, tunnelled ip arrays, nested
// blocks that never close, separators with no match, CRLF.
func TestParseElastAlertShapes(t *testing.T) {
	body := "Rule X\r\n\r\n@timestamp: 2026-12-03T16:12:09.123Z\r\ncloud.instance.id: i-0a1b2c3d4e5f67890\r\n" +
		"cloud.region: us-east-1\r\ndestination.ip: 203.0.113.66\r\nsource: {\r\n    \"ip\": [\r\n        \"10.0.1.23\",\r\n        \"198.51.100.1\"\r\n    ]\r\n}\r\n"
	as, err := ParseElastAlert("", body)
	if err != nil {
		t.Fatal(err)
	}
	checkAlert(t, "flattened", as[0], want{Format: FormatElastAlert, Source: "elastalert", InstanceID: "i-0a1b2c3d4e5f67890", SourceIP: "10.0.1.23",
		Region: "us-east-1", BadIP: "203.0.113.66", Rule: "Rule X", Time: "2026-12-03T16:12:09.123Z"})

	unclosed := "R\n\ncloud: {\n    \"instance\": {\n        \"id\": \"i-0a1b2c3d4e5f67890\"\n"
	if _, err := ParseElastAlert("", unclosed); !IsNotUnderstood(err) {
		t.Errorf("unclosed block: %v", err)
	}
	sepOnly := "\n" + ElastAlertSeparator + "\n" + ElastAlertSeparator + "\n"
	if _, err := ParseElastAlert("", sepOnly); !IsNotUnderstood(err) {
		t.Errorf("separators only: %v", err)
	}
	many := strings.Repeat("R\n\ncloud.instance.id: i-0a1b2c3d4e5f67890\ndestination.ip: 203.0.113.66\n"+ElastAlertSeparator+"\n", MaxAlertsPerMessage+5)
	if as, err := ParseElastAlert("", many); err != nil || len(as) != MaxAlertsPerMessage {
		t.Errorf("aggregation cap: %d alerts, %v", len(as), err)
	}
	// One good and one useless match: the good one is kept.
	mixed := string(readFile(t, "elastalert/GENERATED_blacklist-packetbeat_sns_message_1match.txt")) + "\n" + ElastAlertSeparator + "\nR\n\nnum_hits: 3\n\n" + ElastAlertSeparator + "\n"
	as, err = ParseElastAlert("", mixed)
	if err != nil || len(as) != 1 {
		t.Fatalf("mixed: %d alerts, %v", len(as), err)
	}
}

func TestParseHTTPPost2(t *testing.T) {
	all := want{Format: FormatHTTPPost2, Source: "elastalert", InstanceID: "i-04f2ae54915567738", SourceIP: "10.0.1.10", Host: "ip-10-0-1-10",
		Account: "123456789012", Region: "us-east-1", BadIP: "2.57.232.61", Port: 443, Domain: "example.org", Rule: "ElastAlert http_post2",
		Time: "2024-05-01T12:00:08.507Z", Ref: ".ds-logs-network_traffic.tls-default-2024.05.01-000001/bbd9342e7270825122ff"}
	flat := want{Format: FormatHTTPPost2, Source: "elastalert", InstanceID: "i-04f2ae54915567738", SourceIP: "10.0.1.10", Host: "ip-10-0-1-10",
		Account: "123456789012", Region: "us-east-1", BadIP: "2.57.232.61", Port: 443, Rule: ruleName, Time: "2024-05-01T12:00:08.507Z"}
	for file, w := range map[string]want{
		"GENERATED_http_post2_all_values_1match.json": all,
		"GENERATED_http_post2_payload_flattened.json": flat,
	} {
		b := string(readFile(t, "elastalert/"+file))
		for name, fn := range map[string]func() ([]Alert, error){
			"ParseHTTPPost2": func() ([]Alert, error) { return ParseHTTPPost2(b) },
			"Parse":          func() ([]Alert, error) { return Parse("", b) },
		} {
			as, err := fn()
			if err != nil || len(as) != 1 {
				t.Fatalf("%s %s: %v", name, file, err)
			}
			checkAlert(t, file, as[0], w)
		}
	}
	for body, reason := range map[string]string{
		`{"message":"hello","num_hits":1}`:                       "none of cloud.instance.id",
		`{"destination":{"ip":"203.0.113.5"}}`:                   "no instance ID, host name or source address",
		`{"cloud":{"instance":{"id":"i-0a1b2c3d4e5f67890"}}}`:    "no remote address",
		`{"cloud":{"instance":{"id":"i-0a1b2c3d4e5f67890"}},"x"`: "",
	} {
		_, err := ParseHTTPPost2(body)
		if !IsNotUnderstood(err) || !strings.Contains(err.Error(), reason) {
			t.Errorf("%s: want not understood (%s), got %v", body, reason, err)
		}
	}
}

func TestParseGuardDutyCorpus(t *testing.T) {
	spambot := want{Format: FormatGuardDuty, Source: "guardduty", InstanceID: "i-99999999", SourceIP: "10.0.0.23", Account: "123456789012", Region: "ca-central-1",
		BadIP: "198.51.100.0", Port: 25, Direction: "outbound", Rule: "Backdoor:EC2/Spambot", Severity: 5, Sample: true, Time: "2021-03-07T00:29:35.498Z",
		Ref: "arn:aws:guardduty:ca-central-1:123456789012:detector/0123456789abcdef0123456789abcdef/finding/7ebc050b71c556086b524045c9067feb"}
	for file, w := range map[string]want{
		"eventbridge_guardduty-finding_Backdoor-EC2-Spambot_sample_redacted.event.json": spambot,
		"sns-lambda-record_guardduty-finding_Backdoor-EC2-Spambot_sample_redacted.json": spambot,
		"aws-samples_waf-acl_gd2acl_test_event_SSHBruteForce.json": {Format: FormatGuardDuty, Source: "guardduty", InstanceID: "i-99999999", SourceIP: "10.0.0.1",
			Region: "us-east-1", BadIP: "198.51.100.0", Port: 32794, Direction: "inbound", Rule: "UnauthorizedAccess:EC2/SSHBruteForce", Severity: 2, Sample: true,
			Time: "2018-05-11T14:56:39.976Z", Ref: "02be5693b63eea1d67e6f321c6aee4f3"},
		"elastic-integrations_test-guardduty_Trojan-EC2-BlackholeTraffic-DNS.json": {Format: FormatGuardDuty, Source: "guardduty", InstanceID: "i-99999999", SourceIP: "175.16.199.1",
			Account: "123412341234", Region: "us-east-1", Domain: "GeneratedFindingDomainName", Rule: "Trojan:EC2/BlackholeTraffic!DNS", Severity: 5, Sample: true,
			Time: "2022-11-22T12:22:20Z", Ref: "arn:aws:guardduty:us-east-1:123412341234:detector/d60123456789e5461eabcd1234abcd1234/finding/d6012345678912345678912349f831b8f"},
		"aws-samples_automated-response_guardduty_ec2_event.detail.json": {Format: FormatGuardDuty, Source: "guardduty", InstanceID: "i-05746eb48123455e0",
			Account: "123456789012", Region: "us-east-1", Port: 22, Direction: "outbound", Rule: "Canary:EC2/Stateless.IntegTest", Severity: 5,
			Time: "2017-10-31T23:16:23Z", Ref: "arn:aws:guardduty:us-east-1:123456789012:detector/123456789012/finding/16afba5c5c43e07c9e3e5e2e544e95df"},
		"GENERATED_eventbridge_guardduty-finding_Recon-EC2-PortProbeUnprotectedPort_sample.event.json": {Format: FormatGuardDuty, Source: "guardduty", InstanceID: "i-99999999",
			SourceIP: "10.0.0.23", Account: "123456789012", Region: "ca-central-1", BadIP: "198.51.100.7", Port: 22, Direction: "port-probe", Rule: "Recon:EC2/PortProbeUnprotectedPort",
			Severity: 2, Sample: true, Time: "2021-03-07T00:29:35.498Z", Ref: spambot.Ref},
		"GENERATED_eventbridge_guardduty-finding_MaliciousIPCaller-Custom_seed-instance.event.json": {Format: FormatGuardDuty, Source: "guardduty", InstanceID: "i-04f2ae54915567738",
			SourceIP: "10.0.1.10", Account: "123456789012", Region: "us-east-1", BadIP: "2.57.232.61", Port: 443, Direction: "outbound",
			Rule: "UnauthorizedAccess:EC2/MaliciousIPCaller.Custom", Severity: 5, Time: "2026-12-03T16:19:00Z",
			Ref: "arn:aws:guardduty:us-east-1:123456789012:detector/0123456789abcdef0123456789abcdef/finding/a2c5e3f1b7d94e6f8a0b1c2d3e4f5a6b"},
	} {
		as, err := Parse("", string(readFile(t, "guardduty/"+file)))
		if err != nil || len(as) != 1 {
			t.Fatalf("%s: %v", file, err)
		}
		checkAlert(t, file, as[0], w)
	}
	// The SNS-signed GENERATED notification carries the EventBridge event as a string.
	m := readMsg(t, "sns/GENERATED-e2e-testkey/notification_eventbridge-guardduty-finding_sigv2_nosubject.json")
	as, err := Parse(m.Subject, m.Message)
	if err != nil || as[0].Rule != "Backdoor:EC2/Spambot" || as[0].Region != "ca-central-1" {
		t.Fatalf("SNS GuardDuty notification: %+v %v", as, err)
	}
}

func TestParseGuardDutyRefused(t *testing.T) {
	for file, reason := range map[string]string{
		"eventbridge_cloudtrail-CreateSampleFindings_redacted.event.json": "AWS API Call via CloudTrail",
		"sns-lambda-record_cloudtrail-CreateSampleFindings_redacted.json": "AWS API Call via CloudTrail",
	} {
		_, err := Parse("", string(readFile(t, "guardduty/"+file)))
		if !IsNotUnderstood(err) || !strings.Contains(err.Error(), reason) {
			t.Errorf("%s: want not understood (%s), got %v", file, reason, err)
		}
		t.Logf("%s → %v", file, err)
	}
	for body, reason := range map[string]string{
		`{"detail-type":"GuardDuty Finding","source":"aws.guardduty","detail":{"type":"Policy:S3/BucketPublicAccessGranted","service":{},"resource":{"resourceType":"S3Bucket"}}}`: "not an EC2 instance",
		`{"detail-type":"GuardDuty Finding","source":"aws.other","detail":{}}`:                                                                                                     "not aws.guardduty",
		`{"detail":{"service":{}}}`: "no finding type",
		`{"detail":"x"}`:            "does not decode",
	} {
		_, err := Parse("", body)
		if !IsNotUnderstood(err) || !strings.Contains(err.Error(), reason) {
			t.Errorf("%s: want not understood (%s), got %v", body, reason, err)
		}
	}
	// PascalCase (boto3 get-findings) decodes too.
	as, err := ParseGuardDuty(`{"SchemaVersion":"2.0","AccountId":"123456789012","Region":"us-east-1","Type":"Backdoor:EC2/C&CActivity.B","Severity":8,
		"Resource":{"ResourceType":"Instance","InstanceDetails":{"InstanceId":"i-0a1b2c3d4e5f67890"}},
		"Service":{"Action":{"ActionType":"NETWORK_CONNECTION","NetworkConnectionAction":{"ConnectionDirection":"OUTBOUND","RemoteIpDetails":{"IpAddressV6":"2001:db8::7"}}}}}`)
	if err != nil || as[0].InstanceID != "i-0a1b2c3d4e5f67890" || as[0].BadIP.String() != "2001:db8::7" || as[0].Severity != 8 {
		t.Fatalf("PascalCase: %+v %v", as, err)
	}
}

func TestParseDetection(t *testing.T) {
	for file, w := range map[string]want{
		"GENERATED_detection_instance.json": {Format: FormatDetection, Source: "detector", InstanceID: "i-0144394dc883f9fe0", Account: "123456789012", Region: "us-east-1",
			BadIP: "1.19.6.4", Port: 443, Rule: "spamhaus-drop", Time: "2026-12-03T16:12:09Z", Ref: "packetbeat:GENERATED_packetbeat_ecs8_ec2_300events.ndjson:17"},
		"GENERATED_detection_sourceip-only.json": {Format: FormatDetection, Source: "cordon", SourceIP: "10.0.2.17", Host: "ip-10-0-2-17", BadIP: "203.0.113.66",
			Rule: "custom-siem-rule", Time: "2026-12-03T16:13:00Z"},
	} {
		b := string(readFile(t, "sns/cordon-detection/"+file))
		for _, as := range [][]Alert{must(ParseDetection(b)), must(Parse("", b))} {
			checkAlert(t, file, as[0], w)
		}
	}
	for file, reason := range map[string]string{
		"GENERATED_detection_INVALID_badip.json":       "badIP",
		"GENERATED_detection_INVALID_no-instance.json": "no instance ID",
		"GENERATED_detection_INVALID_kind.json":        "kind",
	} {
		_, err := Parse("", string(readFile(t, "sns/cordon-detection/"+file)))
		if !IsNotUnderstood(err) || !strings.Contains(err.Error(), reason) {
			t.Errorf("%s: want not understood (%s), got %v", file, reason, err)
		}
		t.Logf("%s → %v", file, err)
	}
	// goaws's raw delivery quotes the message: unquoted and parsed.
	as, err := Parse("", `"{\"badIP\":\"203.0.113.66\",\"instanceID\":\"i-0144394dc883f9fe0\"}"`)
	if err != nil || as[0].InstanceID != "i-0144394dc883f9fe0" {
		t.Fatalf("quoted: %+v %v", as, err)
	}
}

func must(as []Alert, err error) []Alert {
	if err != nil {
		panic(err)
	}
	return as
}

func TestTruncRaw(t *testing.T) {
	s := strings.Repeat("é", MaxRawBytes)
	r := truncRaw(s)
	if len(r) > MaxRawBytes || !strings.Contains(r, "more bytes") || !strings.HasPrefix(r, "é") {
		t.Fatalf("%d bytes: %q", len(r), r[len(r)-30:])
	}
}

// TestParseLinearTime: adversarial bodies of about a megabyte (the body cap)
// parse in bounded time: unclosed nested blocks, thousands of separators,
// addresses, deep JSON.
func TestParseLinearTime(t *testing.T) {
	sep := ElastAlertSeparator + "\n"
	for name, body := range map[string]string{
		"unclosed blocks":       strings.Repeat("k: {\n", 200000),
		"unclosed indented":     strings.Repeat("k: [\n    1,\n", 80000),
		"one closer at the end": strings.Repeat("k: {\n", 100000) + "}\n",
		"separators":            strings.Repeat("R\n\nk: v\n"+sep, 100000),
		"addresses":             strings.Repeat("1.2.3.4 10.0.0.1 ip-10-0-0-1 i-0123456789abcdef0 ", 20000),
		"long line":             "k: " + strings.Repeat("x", 1<<20),
		"deep JSON":             `{"a":` + strings.Repeat(`{"b":`, 10000) + "1" + strings.Repeat("}", 10001),
		"many keys":             "{" + strings.Repeat(`"cloud.instance.id.x.y.z":1,`, 40000) + `"z":1}`,
		"GuardDuty many probes": `{"detail":{"type":"t","resource":{"resourceType":"Instance","instanceDetails":{"instanceId":"i-0123456789abcdef0"}},"service":{"action":{"portProbeAction":{"portProbeDetails":[` + strings.Repeat(`{"remoteIpDetails":{"ipAddressV4":"203.0.113.1"}},`, 20000) + `{}]}}}}}`,
	} {
		start := time.Now()
		_, _ = Parse("", body)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s (%d bytes): %v", name, len(body), d)
		} else {
			t.Logf("%-22s %8d bytes  %v", name, len(body), d)
		}
	}
}
