package sns

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cordonhq/cordon/workflows"
)

// Fuzz targets, seeded from the corpus. Run one briefly with e.g.
//
//	go test -run '^$' -fuzz '^FuzzVerify$' -fuzztime 30s ./sns

func seedFiles(f *testing.F, globs ...string) [][]byte {
	var out [][]byte
	for _, g := range globs {
		files, err := filepath.Glob(filepath.Join(testdata, g))
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			out = append(out, b)
		}
	}
	if len(out) == 0 {
		f.Fatalf("no seeds for %v", globs)
	}
	return out
}

// checkAlerts is the contract of every parser: an error or at least one
// alert, each naming an instance (or a way to find it), with bounded evidence.
func checkAlerts(t *testing.T, as []Alert, err error) {
	if err != nil {
		if len(as) != 0 {
			t.Fatalf("alerts with an error: %v", err)
		}
		return
	}
	if len(as) == 0 {
		t.Fatal("no alert and no error")
	}
	for _, a := range as {
		if len(a.Raw) > MaxRawBytes || len(a.Rule) > 200 {
			t.Fatalf("unbounded alert: raw %d, rule %d", len(a.Raw), len(a.Rule))
		}
		if a.InstanceID == "" && a.Host == "" && !a.SourceIP.IsValid() {
			t.Fatalf("alert without instance: %+v", a)
		}
		if a.Format != FormatGuardDuty && !a.BadIP.IsValid() {
			t.Fatalf("%s alert without remote address: %+v", a.Format, a)
		}
		_ = a.Reason()
	}
}

func FuzzParse(f *testing.F) {
	subject := "ElastAlert: " + ruleName
	for _, b := range seedFiles(f, "elastalert/*.txt", "elastalert/*.json", "guardduty/*.json", "sns/cordon-detection/*.json") {
		f.Add(subject, string(b))
	}
	f.Add("", `"{\"badIP\":\"203.0.113.1\",\"host\":\"ip-10-0-1-2\"}"`)
	f.Add("", `{"Records":[{"Sns":{"Subject":null,"Message":"{\"detail\":{}}"}}]}`)
	f.Fuzz(func(t *testing.T, subject, message string) {
		as, err := Parse(subject, message)
		checkAlerts(t, as, err)
	})
}

func FuzzParseElastAlert(f *testing.F) {
	for _, b := range seedFiles(f, "elastalert/*.txt") {
		f.Add("ElastAlert: r", string(b))
	}
	f.Add("", "R\n\nsource: {\n    \"ip\": [\n        \"10.0.0.1\"\n    ]\n}\ndestination.ip: 203.0.113.9\n"+ElastAlertSeparator+"\n")
	f.Fuzz(func(t *testing.T, subject, body string) {
		as, err := ParseElastAlert(subject, body)
		checkAlerts(t, as, err)
	})
}

func FuzzParseHTTPPost2(f *testing.F) {
	for _, b := range seedFiles(f, "elastalert/*.json") {
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, body string) {
		as, err := ParseHTTPPost2(body)
		checkAlerts(t, as, err)
	})
}

func FuzzParseGuardDuty(f *testing.F) {
	for _, b := range seedFiles(f, "guardduty/*.json") {
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, body string) {
		as, err := ParseGuardDuty(body)
		checkAlerts(t, as, err)
	})
}

func FuzzParseDetection(f *testing.F) {
	for _, b := range seedFiles(f, "sns/cordon-detection/*.json") {
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, body string) {
		as, err := ParseDetection(body)
		checkAlerts(t, as, err)
	})
}

// FuzzVerify: any body is parsed and verified without panicking, and a body
// that verifies has the canonical string of a message AWS really signed
// (signatures cannot be forged by mutation).
func FuzzVerify(f *testing.F) {
	tr := &pemTransport{certs: map[string][]byte{}}
	signed := map[string]bool{}
	var topics []string
	now := mustTime("2022-07-28T23:00:00Z") // inside the 2022 AWS certificate's validity
	for _, dir := range []string{"aws-php-validator-2022", "negative-generated", "GENERATED-e2e-testkey", "freckle-aws-sns-verify-testkey", "shape-only"} {
		for _, b := range seedFiles(f, "sns/"+dir+"/*.json") {
			f.Add(b)
			m, err := ParseMessage(b)
			if err != nil {
				f.Fatal(err)
			}
			topics = append(topics, m.TopicArn)
			if dir == "aws-php-validator-2022" {
				tr.certs[m.SigningCertURL] = seedFiles(f, "sns/"+certFor[dir])[0]
				s, _ := StringToSign(m)
				signed[s] = true
			}
		}
	}
	f.Add([]byte(`{"Type":"SubscriptionConfirmation","SigningCertURL":"https://sns.us-east-2.amazonaws.com/x.pem","Signature":"AAAA"}`))
	v, err := NewVerifier(Config{Topics: topics, HTTPClient: &http.Client{Transport: tr}, MaxMessageAge: -1},
		InsecureTestTrust(f, TestTrust{Now: fixedClock(now)}))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := ParseMessage(body)
		if err != nil {
			return
		}
		if err := v.Verify(context.Background(), m); err == nil {
			s, _ := StringToSign(m)
			if !signed[s] {
				t.Fatalf("a message AWS never signed verified: %q", s)
			}
		} else if ReasonOf(err) == "" {
			t.Fatalf("refusal without a reason: %v", err)
		}
	})
}

// FuzzHandler: nothing unsigned or unverifiable opens an incident, and every
// answer is one of the documented status codes.
func FuzzHandler(f *testing.F) {
	for _, b := range seedFiles(f, "sns/aws-php-validator-2022/*.json", "sns/negative-generated/*.json", "elastalert/*.json", "sns/cordon-detection/*.json") {
		f.Add(b, false)
	}
	f.Add([]byte("plain text"), true)
	opened := 0
	h, err := NewHandler(Config{Topics: []string{"arn:aws:sns:us-east-2:295079676684:publish-and-verify-6e11fed2-fcdf-4c52-9dc4-36ef43f37f84"},
		HTTPClient: &http.Client{Transport: &pemTransport{}}, MaxBodyBytes: 32 << 10, Logger: slog.New(slog.DiscardHandler)},
		OpenerFunc(func(context.Context, workflows.QuarantineInput) error { opened++; return nil }))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte, raw bool) {
		req := httptest.NewRequest(http.MethodPost, "/sns", bytes.NewReader(body))
		if raw {
			req.Header.Set("x-amz-sns-rawdelivery", "true")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 400, 403, 413, 503:
		default:
			t.Fatalf("HTTP %d", rec.Code)
		}
		if opened != 0 {
			t.Fatalf("an unverified body opened an incident: %q", body)
		}
		if rec.Code == 200 && !strings.Contains(string(body), "Signature") {
			t.Fatalf("HTTP 200 for an unsigned body: %q", body)
		}
	})
}
