package sns

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cordonhq/cordon/workflows"
)

// fakeSNS serves the signing certificate and the SubscribeURL on loopback.
type fakeSNS struct {
	*httptest.Server
	ca            *testCA
	certHits      atomic.Int64
	confirmHits   atomic.Int64
	certStatus    atomic.Int64
	confirmStatus atomic.Int64
}

func newFakeSNS(t *testing.T, ca *testCA) *fakeSNS {
	f := &fakeSNS{ca: ca}
	f.certStatus.Store(200)
	f.confirmStatus.Store(200)
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("Action") == "ConfirmSubscription" {
			f.confirmHits.Add(1)
			w.WriteHeader(int(f.confirmStatus.Load()))
			_, _ = w.Write([]byte("<ConfirmSubscriptionResponse/>"))
			return
		}
		f.certHits.Add(1)
		w.WriteHeader(int(f.certStatus.Load()))
		_, _ = w.Write(ca.pemData)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeSNS) certURL() string { return f.URL + "/SimpleNotificationService/test.pem" }

// recorder is a fake Opener.
type recorder struct {
	mu    sync.Mutex
	ins   []workflows.QuarantineInput
	fail  func(workflows.QuarantineInput) error
	delay time.Duration
}

func (r *recorder) Open(_ context.Context, in workflows.QuarantineInput) error {
	if r.delay > 0 {
		time.Sleep(r.delay)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		if err := r.fail(in); err != nil {
			return err
		}
	}
	r.ins = append(r.ins, in)
	return nil
}

func (r *recorder) opened() []workflows.QuarantineInput {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]workflows.QuarantineInput(nil), r.ins...)
}

type resolverFunc func(ctx context.Context, account, region, host string, ip netip.Addr) (string, error)

func (f resolverFunc) Resolve(ctx context.Context, account, region, host string, ip netip.Addr) (string, error) {
	return f(ctx, account, region, host, ip)
}

type env struct {
	t    *testing.T
	h    *Handler
	srv  *httptest.Server
	sns  *fakeSNS
	rec  *recorder
	logs *syncBuffer
	now  time.Time
	seq  atomic.Int64
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const testSecret = "s3cr3t-raw-delivery-token"

func newEnv(t *testing.T, mod func(*Config)) *env {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Millisecond)
	ca := newCA(t, now.Add(-time.Hour), now.Add(time.Hour))
	e := &env{t: t, sns: newFakeSNS(t, ca), rec: &recorder{}, logs: &syncBuffer{}, now: now}
	cfg := Config{
		Topics: []string{testTopic}, MaxBodyBytes: 64 << 10, RawSecret: testSecret,
		DefaultAccount: "123456789012", DefaultRegion: "us-east-1",
		Logger: slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&cfg)
	}
	h, err := NewHandler(cfg, e.rec, InsecureTestTrust(t, TestTrust{URLPrefixes: []string{e.sns.URL}, Now: fixedClock(now)}))
	if err != nil {
		t.Fatal(err)
	}
	e.h = h
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	t.Cleanup(func() {
		st := h.Stats().Snapshot()
		if st.Received != st.Accepted+st.Duplicate+st.Refused+st.Failed {
			t.Errorf("stats do not add up: %+v", st)
		}
		if strings.Contains(e.logs.String(), testSecret) {
			t.Errorf("the shared secret was logged")
		}
	})
	return e
}

// notify signs a Notification carrying message.
func (e *env) notify(subject, message string, mod ...func(*Message)) *Message {
	m := &Message{Type: TypeNotification, MessageId: fmt.Sprintf("5b6e5d3c-0000-5000-8000-%012d", e.seq.Add(1)), TopicArn: testTopic,
		Subject: subject, Message: message, Timestamp: e.now.Format("2006-01-02T15:04:05.000Z"), SigningCertURL: e.sns.certURL()}
	for _, f := range mod {
		f(m)
	}
	return e.sns.ca.sign(e.t, m, "2")
}

func (e *env) post(b []byte, hdr ...string) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/sns", bytes.NewReader(b))
	req.Header.Set("Content-Type", "text/plain; charset=UTF-8")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	_, _ = out.ReadFrom(resp.Body)
	return resp.StatusCode, out.String()
}

func (e *env) postMsg(m *Message) int {
	e.t.Helper()
	code, _ := e.post(body(e.t, m), "x-amz-sns-message-type", m.Type, "x-amz-sns-message-id", m.MessageId, "x-amz-sns-topic-arn", m.TopicArn)
	return code
}

func expect(t *testing.T, what string, got, want int) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: HTTP %d, want %d", what, got, want)
	}
}

func TestHandlerRefusals(t *testing.T) {
	e := newEnv(t, nil)
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/sns", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	expect(t, "GET", resp.StatusCode, http.StatusMethodNotAllowed)
	if resp.Header.Get("Allow") != "POST" {
		t.Error("no Allow header")
	}

	code, _ := e.post(bytes.Repeat([]byte("x"), 70<<10))
	expect(t, "oversize", code, http.StatusRequestEntityTooLarge)
	// Without Content-Length (chunked), the cap still holds.
	pr, pw := io.Pipe()
	go func() { _, _ = pw.Write(bytes.Repeat([]byte("{"), 70<<10)); pw.Close() }()
	req, _ = http.NewRequest(http.MethodPost, e.srv.URL+"/sns", pr)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	expect(t, "oversize chunked", resp.StatusCode, http.StatusRequestEntityTooLarge)

	code, _ = e.post([]byte("this is not json"))
	expect(t, "not JSON", code, http.StatusBadRequest)
	code, _ = e.post([]byte(`{"Type": 5, "Signature": "x"}`))
	expect(t, "envelope with wrong types", code, http.StatusBadRequest)
	code, _ = e.post([]byte(`{"Type":"Notification","Signature":"x"} trailing`))
	expect(t, "data after the envelope", code, http.StatusBadRequest)
	code, _ = e.post([]byte(`{"badIP":"203.0.113.1","instanceID":"i-0144394dc883f9fe0"}`))
	expect(t, "unsigned JSON", code, http.StatusForbidden)
	code, _ = e.post([]byte(`{"badIP":"203.0.113.1","instanceID":"i-0144394dc883f9fe0"}`), "x-amz-sns-rawdelivery", "true")
	expect(t, "raw without secret", code, http.StatusForbidden)
	code, _ = e.post([]byte(`{"badIP":"203.0.113.1","instanceID":"i-0144394dc883f9fe0"}`), "x-amz-sns-rawdelivery", "true", DefaultRawSecretHeader, "wrong")
	expect(t, "raw with a wrong secret", code, http.StatusForbidden)

	m := e.notify("ElastAlert: r", "x")
	m.Message = "tampered"
	expect(t, "tampered", e.postMsg(m), http.StatusForbidden)
	before := e.sns.certHits.Load()
	expect(t, "other topic", e.postMsg(e.notify("", "x", func(m *Message) { m.TopicArn = "arn:aws:sns:us-east-1:123456789012:other" })), http.StatusForbidden)
	expect(t, "http cert URL on a foreign host", e.postMsg(e.notify("", "x", func(m *Message) { m.SigningCertURL = "http://example.com/cert.pem" })), http.StatusForbidden)
	if e.sns.certHits.Load() != before {
		t.Error("certificate fetched for a message refused by topic or URL")
	}
	if n := len(e.rec.opened()); n != 0 {
		t.Fatalf("%d incidents opened by refused messages", n)
	}
	st := e.h.Stats().Snapshot()
	if st.Refused != 12 || st.ByReason["signature-mismatch"] != 1 || st.ByReason[string(ReasonTopicNotAllowed)] != 1 {
		t.Fatalf("stats %+v", st)
	}
	for _, s := range []string{`"reason":"signature-mismatch"`, `"reason":"raw-delivery-unsigned"`, `"status":403`, `"level":"WARN"`} {
		if !strings.Contains(e.logs.String(), s) {
			t.Errorf("logs lack %s", s)
		}
	}
}

func TestHandlerNotificationToIncident(t *testing.T) {
	e := newEnv(t, nil)
	body := string(readFile(t, "elastalert/GENERATED_blacklist-packetbeat_sns_message_1match.txt"))
	m := e.notify(subjectOf(t), body)
	expect(t, "ElastAlert notification", e.postMsg(m), http.StatusOK)
	ins := e.rec.opened()
	if len(ins) != 1 {
		t.Fatalf("%d incidents", len(ins))
	}
	in := ins[0]
	if in.Account != "123456789012" || in.Region != "us-east-1" || in.InstanceID != "i-04f2ae54915567738" ||
		in.Evidence.BadIP != "2.57.232.61" || in.Evidence.Source != "elastalert" || in.Evidence.Rule != ruleName ||
		!strings.HasPrefix(in.Evidence.Ref, "sns:"+m.MessageId) || in.Evidence.Raw == "" ||
		!in.Evidence.Time.Equal(mustTime("2024-05-01T12:00:08.507Z")) {
		t.Fatalf("input %+v", in)
	}
	// SNS retries with the same MessageId: a duplicate, nothing opened.
	expect(t, "duplicate", e.postMsg(m), http.StatusOK)
	if len(e.rec.opened()) != 1 || e.h.Stats().Snapshot().Duplicate != 1 {
		t.Fatalf("duplicate opened an incident: %+v", e.h.Stats().Snapshot())
	}
	if !strings.Contains(e.logs.String(), `"msg":"incident opened or evidence added"`) {
		t.Error("no log line for the incident")
	}
}

// TestHandlerTemporalDown: verified but not handed to Temporal → 503, the
// MessageId is not remembered, SNS's retry opens the incident.
func TestHandlerTemporalDown(t *testing.T) {
	e := newEnv(t, nil)
	e.rec.fail = func(workflows.QuarantineInput) error { return errors.New("connection refused") }
	m := e.notify(subjectOf(t), string(readFile(t, "elastalert/GENERATED_blacklist-packetbeat_sns_message_1match.txt")))
	expect(t, "Temporal down", e.postMsg(m), http.StatusServiceUnavailable)
	e.rec.fail = nil
	expect(t, "retry", e.postMsg(m), http.StatusOK)
	if len(e.rec.opened()) != 1 {
		t.Fatal("the retry did not open the incident")
	}
	st := e.h.Stats().Snapshot()
	if st.Failed != 1 || st.Accepted != 1 || st.Duplicate != 0 || st.ByReason["open-failed"] != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestHandlerAggregatedPartialFailure: of two matches the second fails; the
// retry opens only the second.
func TestHandlerAggregatedPartialFailure(t *testing.T) {
	e := newEnv(t, nil)
	e.rec.fail = func(in workflows.QuarantineInput) error {
		if in.InstanceID == "i-06e354b41b6b927eb" {
			return errors.New("deadline exceeded")
		}
		return nil
	}
	m := e.notify(subjectOf(t), string(readFile(t, "elastalert/GENERATED_blacklist-packetbeat_sns_message_2matches-aggregated.txt")))
	expect(t, "second match fails", e.postMsg(m), http.StatusServiceUnavailable)
	e.rec.fail = nil
	expect(t, "retry", e.postMsg(m), http.StatusOK)
	var ids []string
	for _, in := range e.rec.opened() {
		ids = append(ids, in.InstanceID+" "+in.Evidence.Ref[:len("sns:")+len(m.MessageId)+2])
	}
	if strings.Join(ids, ",") != "i-034136011c134a2d9 sns:"+m.MessageId+"#1,i-06e354b41b6b927eb sns:"+m.MessageId+"#2" {
		t.Fatalf("opened %v", ids)
	}
}

func TestHandlerConcurrentDuplicates(t *testing.T) {
	e := newEnv(t, nil)
	e.rec.delay = 50 * time.Millisecond
	m := e.notify(subjectOf(t), string(readFile(t, "elastalert/GENERATED_blacklist-packetbeat_sns_message_1match.txt")))
	var wg sync.WaitGroup
	var codes sync.Map
	for i := range 20 {
		wg.Go(func() { codes.Store(i, e.postMsg(m)) })
	}
	wg.Wait()
	codes.Range(func(_, v any) bool {
		if v.(int) != http.StatusOK {
			t.Errorf("HTTP %d", v)
		}
		return true
	})
	st := e.h.Stats().Snapshot()
	if len(e.rec.opened()) != 1 || st.Duplicate != 19 || st.Accepted != 1 {
		t.Fatalf("%d opened, stats %+v", len(e.rec.opened()), st)
	}
}

func TestHandlerNotUnderstoodAndNotActionable(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.IPAllowed = func(a netip.Addr) bool { return a == netip.MustParseAddr("2.57.232.61") }
	})
	for _, c := range []struct{ name, subject, msg, log string }{
		{"free text", "hello", "The quick brown fox", "no instance ID"},
		{"CloudTrail event", "", string(readFile(t, "guardduty/eventbridge_cloudtrail-CreateSampleFindings_redacted.event.json")), "AWS API Call via CloudTrail"},
		{"low severity", "", string(readFile(t, "guardduty/aws-samples_waf-acl_gd2acl_test_event_SSHBruteForce.json")), "severity 2 is below 4"},
		{"allowlisted address", subjectOf(t), string(readFile(t, "elastalert/GENERATED_blacklist-packetbeat_sns_message_1match.txt")), "2.57.232.61 is allowlisted"},
		{"no resolver", "", string(readFile(t, "sns/cordon-detection/GENERATED_detection_sourceip-only.json")), "no resolver configured"},
	} {
		m := e.notify(c.subject, c.msg)
		expect(t, c.name, e.postMsg(m), http.StatusOK)
		if !strings.Contains(e.logs.String(), c.log) || !strings.Contains(e.logs.String(), m.MessageId) {
			t.Errorf("%s: no log line with %q and the MessageId", c.name, c.log)
		}
	}
	if n := len(e.rec.opened()); n != 0 {
		t.Fatalf("%d incidents", n)
	}
	if st := e.h.Stats().Snapshot(); st.Ignored != 5 || st.Accepted != 5 {
		t.Fatalf("stats %+v", st)
	}
}

func TestHandlerGuardDutyAndDetections(t *testing.T) {
	var resolved atomic.Int64
	e := newEnv(t, func(c *Config) {
		c.Resolver = resolverFunc(func(_ context.Context, account, region, host string, ip netip.Addr) (string, error) {
			resolved.Add(1)
			switch ip.String() {
			case "10.0.2.17":
				return "i-085a2fa5fa92cd19c", nil
			case "10.9.9.9":
				return "", fmt.Errorf("%w: nobody at %s", ErrNotFound, ip)
			}
			return "", errors.New("throttled")
		})
	})
	expect(t, "GuardDuty", e.postMsg(e.notify("", string(readFile(t, "guardduty/GENERATED_eventbridge_guardduty-finding_MaliciousIPCaller-Custom_seed-instance.event.json")))), http.StatusOK)
	expect(t, "detection", e.postMsg(e.notify("", string(readFile(t, "sns/cordon-detection/GENERATED_detection_instance.json")))), http.StatusOK)
	expect(t, "detection to resolve", e.postMsg(e.notify("", string(readFile(t, "sns/cordon-detection/GENERATED_detection_sourceip-only.json")))), http.StatusOK)
	expect(t, "unresolvable", e.postMsg(e.notify("", `{"badIP":"203.0.113.66","sourceIP":"10.9.9.9"}`)), http.StatusOK)
	expect(t, "resolver throttled", e.postMsg(e.notify("", `{"badIP":"203.0.113.66","sourceIP":"10.8.8.8"}`)), http.StatusServiceUnavailable)
	got := map[string]string{}
	for _, in := range e.rec.opened() {
		got[in.InstanceID] = in.Evidence.Source + " " + in.Evidence.BadIP + " " + in.Account + "/" + in.Region + " " + in.Evidence.Rule
	}
	want := map[string]string{
		"i-04f2ae54915567738": "guardduty 2.57.232.61 123456789012/us-east-1 UnauthorizedAccess:EC2/MaliciousIPCaller.Custom",
		"i-0144394dc883f9fe0": "detector 1.19.6.4 123456789012/us-east-1 spamhaus-drop",
		"i-085a2fa5fa92cd19c": "cordon 203.0.113.66 123456789012/us-east-1 custom-siem-rule",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("opened %v", got)
	}
	if resolved.Load() != 3 {
		t.Fatalf("resolver called %d times", resolved.Load())
	}
}

func TestHandlerRawDelivery(t *testing.T) {
	e := newEnv(t, nil)
	detection := readFile(t, "sns/cordon-detection/GENERATED_detection_instance.json")
	code, _ := e.post(detection, "x-amz-sns-rawdelivery", "true", DefaultRawSecretHeader, testSecret, "x-amz-sns-message-id", "raw-1", "x-amz-sns-topic-arn", testTopic)
	expect(t, "raw with the secret header", code, http.StatusOK)
	code, _ = e.post(detection, "x-amz-sns-rawdelivery", "true", DefaultRawSecretHeader, testSecret, "x-amz-sns-message-id", "raw-1", "x-amz-sns-topic-arn", testTopic)
	expect(t, "raw duplicate", code, http.StatusOK)
	code, _ = e.post(detection, "x-amz-sns-rawdelivery", "true", DefaultRawSecretHeader, testSecret, "x-amz-sns-topic-arn", "arn:aws:sns:us-east-1:1:other")
	expect(t, "raw from another topic", code, http.StatusForbidden)
	// SNS sends https://user:secret@host/ credentials as Basic auth.
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/sns", bytes.NewReader(readFile(t, "elastalert/GENERATED_http_post2_all_values_1match.json")))
	req.SetBasicAuth("sns", testSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	expect(t, "direct http_post2 with Basic auth", resp.StatusCode, http.StatusOK)
	// goaws's raw delivery quotes the message.
	quoted, _ := json.Marshal(string(readFile(t, "elastalert/GENERATED_blacklist-packetbeat_sns_message_alert_text_only.txt")))
	code, _ = e.post(quoted, "x-amz-sns-rawdelivery", "true", DefaultRawSecretHeader, testSecret, "x-amz-sns-message-id", "raw-2")
	expect(t, "quoted raw text", code, http.StatusOK)
	if n := len(e.rec.opened()); n != 3 {
		t.Fatalf("%d incidents, want 3", n)
	}
	if st := e.h.Stats().Snapshot(); st.Duplicate != 1 || st.Refused != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestHandlerSubscription(t *testing.T) {
	e := newEnv(t, nil)
	confirm := func(topic, subscribeTopic string) *Message {
		m := confirmation(TypeSubscriptionConfirmation, e.sns.certURL(), e.sns.URL, e.now)
		m.TopicArn = topic
		m.SubscribeURL = e.sns.URL + "/?Action=ConfirmSubscription&TopicArn=" + subscribeTopic + "&Token=2336412f37fb687f5d51"
		return e.sns.ca.sign(t, m, "1")
	}
	expect(t, "allowlisted topic", e.postMsg(confirm(testTopic, testTopic)), http.StatusOK)
	if e.sns.confirmHits.Load() != 1 {
		t.Fatalf("SubscribeURL visited %d times", e.sns.confirmHits.Load())
	}
	certs := e.sns.certHits.Load()
	other := "arn:aws:sns:us-east-1:123456789012:someone-elses"
	expect(t, "other topic", e.postMsg(confirm(other, other)), http.StatusForbidden)
	expect(t, "SubscribeURL for another topic", e.postMsg(confirm(testTopic, other)), http.StatusForbidden)
	if e.sns.confirmHits.Load() != 1 || e.sns.certHits.Load() != certs {
		t.Fatalf("refused confirmations caused %d visits, %d fetches", e.sns.confirmHits.Load()-1, e.sns.certHits.Load()-certs)
	}
	e.sns.confirmStatus.Store(500)
	expect(t, "SubscribeURL fails", e.postMsg(confirm(testTopic, testTopic)), http.StatusServiceUnavailable)

	un := e.sns.ca.sign(t, confirmation(TypeUnsubscribeConfirmation, e.sns.certURL(), e.sns.URL, e.now), "2")
	expect(t, "unsubscribe", e.postMsg(un), http.StatusOK)
	logs := e.logs.String()
	if !strings.Contains(logs, "SNS SUBSCRIPTION CANCELLED") || !strings.Contains(logs, `"level":"ERROR"`) {
		t.Error("unsubscribe not logged loudly")
	}
	if strings.Contains(logs, "2336412f37fb687f5d51") {
		t.Error("a confirmation token was logged")
	}
	st := e.h.Stats().Snapshot()
	if st.Confirmed != 1 || st.Unsubscribed != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestHandlerManualConfirmation(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.DisableAutoConfirm = true })
	m := e.sns.ca.sign(t, confirmation(TypeSubscriptionConfirmation, e.sns.certURL(), e.sns.URL, e.now), "1")
	expect(t, "confirmation", e.postMsg(m), http.StatusOK)
	if e.sns.confirmHits.Load() != 0 {
		t.Fatal("visited the SubscribeURL although automatic confirmation is off")
	}
}

// TestHandlerCertHostDown: the certificate cannot be fetched (SNS's host
// answers 503): 503, so SNS retries and the alert is not lost.
func TestHandlerCertHostDown(t *testing.T) {
	e := newEnv(t, nil)
	e.sns.certStatus.Store(503)
	m := e.notify(subjectOf(t), string(readFile(t, "elastalert/GENERATED_blacklist-packetbeat_sns_message_1match.txt")))
	expect(t, "cert host down", e.postMsg(m), http.StatusServiceUnavailable)
	e.sns.certStatus.Store(200)
	expect(t, "retry", e.postMsg(m), http.StatusOK)
	if len(e.rec.opened()) != 1 {
		t.Fatal("not opened after the retry")
	}
}

func TestNewHandlerErrors(t *testing.T) {
	if _, err := NewHandler(Config{Topics: []string{testTopic}}, nil); err == nil {
		t.Error("nil opener accepted")
	}
	if _, err := NewHandler(Config{}, &recorder{}); err == nil {
		t.Error("no topics accepted")
	}
	if _, err := NewHandler(Config{Topics: []string{testTopic}, Policy: workflows.Policy{Approval: "sometimes"}}, &recorder{}); err == nil {
		t.Error("invalid policy accepted")
	}
	h, err := NewHandler(Config{Topics: []string{testTopic}}, OpenerFunc(func(context.Context, workflows.QuarantineInput) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	if s := h.Stats().String(); !strings.Contains(s, `"received":0`) {
		t.Errorf("expvar string %s", s)
	}
}
