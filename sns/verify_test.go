package sns

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"text/tabwriter"
	"time"
)

// corpusCase is one row of the corpus verification table.
type corpusCase struct {
	file   string // under testdata/sns
	note   string
	clock  string // "msg" (Timestamp + 1 min), "notBefore" (certificate's NotBefore + 1 h), or RFC 3339
	topics []string
	want   Reason // "" = verified
}

// certFor maps each corpus folder to the certificate its messages were
// signed with (served at the messages' own SigningCertURL).
var certFor = map[string]string{
	"aws-php-validator-2022":         "aws-php-validator-2022/SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem",
	"aws-php-validator-2017":         "aws-php-validator-2017/SimpleNotificationService-b95095beb82e8f6a046b3aafc7f4149a.pem",
	"aws-sdk-java-2015":              "aws-sdk-java-2015/SimpleNotificationService-bb750dd426d95ee9390147a5624348ee.pem",
	"GENERATED-e2e-testkey":          "GENERATED-e2e-testkey/GENERATED-test-signing-cert.pem",
	"negative-generated":             "aws-php-validator-2022/SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem",
	"freckle-aws-sns-verify-testkey": "freckle-aws-sns-verify-testkey/test-signing-cert.pem",
}

func corpusFiles(t *testing.T) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(testdata, "sns"), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "cordon-detection" {
			return filepath.SkipDir // not SNS envelopes: parse_test.go
		}
		if strings.HasSuffix(p, ".json") {
			rel, _ := filepath.Rel(filepath.Join(testdata, "sns"), p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func corpusTransport(t *testing.T) (*pemTransport, []string) {
	t.Helper()
	tr := &pemTransport{certs: map[string][]byte{}}
	var topics []string
	for _, f := range corpusFiles(t) {
		m := readMsg(t, "sns/"+f)
		topics = append(topics, m.TopicArn)
		dir := strings.Split(f, "/")[0]
		if c, ok := certFor[dir]; ok && strings.HasPrefix(m.SigningCertURL, "https://sns.") && strings.HasSuffix(m.SigningCertURL, ".pem") {
			tr.certs[m.SigningCertURL] = readFile(t, "sns/"+c)
		}
	}
	return tr, topics
}

func certOf(t *testing.T, rel string) *x509.Certificate {
	t.Helper()
	c, _, err := ParseSigningCert(readFile(t, "sns/"+rel))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCorpusVerificationTable verifies every SNS sample of the corpus and
// prints the table case → expected → result (go test -v -run Table ./sns).
// Certificates are served offline at each message's own SigningCertURL; the
// verifier's clock is set inside each certificate's validity through the
// test-only hook (the AWS certificates expired years ago); the message-age
// rule is off here (TestSelfSignedCases covers it).
func TestCorpusVerificationTable(t *testing.T) {
	tr, allTopics := corpusTransport(t)
	var cases []corpusCase
	for _, f := range corpusFiles(t) {
		c := corpusCase{file: f, clock: "msg", topics: allTopics}
		dir := strings.Split(f, "/")[0]
		switch dir {
		case "aws-php-validator-2022", "aws-php-validator-2017", "aws-sdk-java-2015":
			c.note = "real AWS signature"
		case "GENERATED-e2e-testkey":
			c.note = "GENERATED key, cert served at its sns.us-east-1 URL"
			c.clock = "notBefore"
		case "freckle-aws-sns-verify-testkey":
			c.note = "3rd-party test key, SigningCertURL http://localhost:3000"
			c.want = ReasonCertURL
		case "shape-only":
			c.note = "real 2015 message, account redacted, cert not shipped"
			c.want = ReasonCertUnavailable
		case "negative-generated":
			c.note = "generated negative case"
			c.want = map[string]Reason{
				"signature_bad.json":                      ReasonSignatureMalformed,
				"signature_version_3.json":                ReasonSignatureVersion,
				"signing_cert_url_http.json":              ReasonCertURL,
				"signing_cert_url_not_aws.json":           ReasonCertURL,
				"signing_cert_url_not_pem.json":           ReasonCertURL,
				"tampered_message.json":                   ReasonSignatureMismatch,
				"tampered_topicarn_redacted_account.json": ReasonSignatureMismatch,
			}[filepath.Base(f)]
			if c.want == "" {
				t.Fatalf("no expectation for %s", f)
			}
		default:
			t.Fatalf("no expectation for %s", f)
		}
		cases = append(cases, c)
	}
	real := "aws-php-validator-2022/http_notification_sigv2_subject.json"
	cases = append(cases,
		corpusCase{file: real, note: "real clock (2026): certificate expired 2022-08-17", clock: "now", topics: allTopics, want: ReasonCertExpired},
		corpusCase{file: "aws-php-validator-2017/http_notification_sigv1_subject.json", note: "clock 2016-01-01: before NotBefore", clock: "2016-01-01T00:00:00Z", topics: allTopics, want: ReasonCertNotYetValid},
		corpusCase{file: real, note: "topic not in the allowlist", clock: "msg", topics: []string{"arn:aws:sns:us-east-1:123456789012:security-alerts"}, want: ReasonTopicNotAllowed},
	)

	var out strings.Builder
	tw := tabwriter.NewWriter(&out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CASE\tNOTE\tEXPECTED\tRESULT\tOK")
	failed := 0
	var now time.Time
	clock := func() time.Time { return now }
	verifiers := map[int]*Verifier{}
	for _, c := range cases {
		m := readMsg(t, "sns/"+c.file)
		switch c.clock {
		case "msg":
			now = mustTime(m.Timestamp).Add(time.Minute)
		case "notBefore":
			now = certOf(t, certFor[strings.Split(c.file, "/")[0]]).NotBefore.Add(time.Hour)
		case "now":
			now = time.Now()
		default:
			now = mustTime(c.clock)
		}
		v := verifiers[len(c.topics)]
		if v == nil {
			var err error
			v, err = NewVerifier(Config{Topics: c.topics, HTTPClient: &http.Client{Transport: tr}, MaxMessageAge: -1},
				InsecureTestTrust(t, TestTrust{Now: clock}))
			if err != nil {
				t.Fatal(err)
			}
			verifiers[len(c.topics)] = v
		}
		err := v.Verify(context.Background(), m)
		got := "verified"
		if err != nil {
			got = "refused: " + string(ReasonOf(err))
		}
		want := "verified"
		if c.want != "" {
			want = "refused: " + string(c.want)
		}
		ok := "ok"
		if got != want {
			ok = "FAIL"
			failed++
			t.Errorf("%s: want %s, got %v", c.file, want, err)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.file, c.note, want, got, ok)
	}

	// The freckle set is the only complete set of the three message types
	// signed by a key whose certificate ships: its URL can never pass, so the
	// signature alone is checked against the shipped certificate, proving the
	// canonical strings of SubscriptionConfirmation and UnsubscribeConfirmation.
	freckle := certOf(t, certFor["freckle-aws-sns-verify-testkey"])
	for _, f := range []string{"notification.json", "subscriptionconfirmation.json", "subscriptionconfirmation_localhost.json", "unsubscribeconfirmation.json"} {
		file := "freckle-aws-sns-verify-testkey/" + f
		err := VerifyWithCert(readMsg(t, "sns/"+file), freckle)
		got, ok := "signature verified", "ok"
		if err != nil {
			got, ok = "refused: "+string(ReasonOf(err)), "FAIL"
			failed++
			t.Errorf("%s: signature only: %v", file, err)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", file, "signature only, against the shipped test cert", "signature verified", got, ok)
	}
	tw.Flush()
	t.Logf("corpus verification table (%d cases, %d failed):\n%s", len(cases)+4, failed, out.String())
	if p := os.Getenv("SNS_TABLE_OUT"); p != "" {
		_ = os.WriteFile(p, []byte(out.String()), 0o644)
	}
}

// TestRealAWSCertificates: the three AWS certificates parse, are RSA 2048,
// CN sns.amazonaws.com, and are expired today.
func TestRealAWSCertificates(t *testing.T) {
	for _, dir := range []string{"aws-php-validator-2022", "aws-php-validator-2017", "aws-sdk-java-2015"} {
		c := certOf(t, certFor[dir])
		if c.Subject.CommonName != "sns.amazonaws.com" {
			t.Errorf("%s: CN %q", dir, c.Subject.CommonName)
		}
		if !time.Now().After(c.NotAfter) {
			t.Errorf("%s: expected expired, NotAfter %s", dir, c.NotAfter)
		}
	}
}

// TestEveryRealSampleVerifies is the plain statement: all 15 real
// AWS-signed notifications verify, SignatureVersion 1 and 2.
func TestEveryRealSampleVerifies(t *testing.T) {
	tr, topics := corpusTransport(t)
	n, versions := 0, map[string]int{}
	for _, f := range corpusFiles(t) {
		dir := strings.Split(f, "/")[0]
		if dir != "aws-php-validator-2022" && dir != "aws-php-validator-2017" && dir != "aws-sdk-java-2015" {
			continue
		}
		m := readMsg(t, "sns/"+f)
		v, err := NewVerifier(Config{Topics: topics, HTTPClient: &http.Client{Transport: tr}},
			InsecureTestTrust(t, TestTrust{Now: fixedClock(mustTime(m.Timestamp).Add(30 * time.Second))}))
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Verify(context.Background(), m); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		n++
		versions[m.SignatureVersion]++
	}
	if n != 15 || versions["1"] == 0 || versions["2"] == 0 {
		t.Fatalf("verified %d real samples, versions %v; want 15 with both versions", n, versions)
	}
}
