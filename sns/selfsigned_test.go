package sns

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const testTopic = "arn:aws:sns:us-east-1:123456789012:security-alerts"

// certServer serves a certificate over http on loopback, counting fetches,
// like goaws does.
type certServer struct {
	*httptest.Server
	hits    atomic.Int64
	mu      sync.Mutex
	pemData []byte
	status  int
	delay   time.Duration
}

func newCertServer(t *testing.T, pemData []byte) *certServer {
	t.Helper()
	cs := &certServer{pemData: pemData, status: http.StatusOK}
	cs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cs.hits.Add(1)
		cs.mu.Lock()
		data, status, delay := cs.pemData, cs.status, cs.delay
		cs.mu.Unlock()
		if delay > 0 {
			time.Sleep(delay)
		}
		if r.URL.Path == "/redirect.pem" {
			http.Redirect(w, r, "/cert.pem", http.StatusFound)
			return
		}
		w.WriteHeader(status)
		_, _ = w.Write(data)
	}))
	t.Cleanup(cs.Close)
	return cs
}

func (cs *certServer) certURL() string { return cs.URL + "/SimpleNotificationService/cert.pem" }

func notification(certURL, subject string, ts time.Time) *Message {
	return &Message{Type: TypeNotification, MessageId: "0b7e6c1e-7f36-5a0c-9d1a-6f1b2c3d4e5f", TopicArn: testTopic,
		Subject: subject, Message: "Zeile 1 – café ☕\nline \"2\" \\ 🍌", Timestamp: ts.UTC().Format("2006-01-02T15:04:05.000Z"),
		SigningCertURL: certURL, UnsubscribeURL: "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=" + testTopic + ":x"}
}

func confirmation(typ, certURL, subscribeBase string, ts time.Time) *Message {
	return &Message{Type: typ, MessageId: "165545c9-2a5c-472c-8df2-7ff2be2b3b1b", TopicArn: testTopic, Token: "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92",
		Message:      "You have chosen to subscribe to the topic " + testTopic + ".\nTo confirm the subscription, visit the SubscribeURL included in this message.",
		SubscribeURL: subscribeBase + "/?Action=ConfirmSubscription&TopicArn=" + testTopic + "&Token=2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92",
		Timestamp:    ts.UTC().Format(time.RFC3339), SigningCertURL: certURL}
}

// TestSelfSignedCases: a self-made key and certificate sign every message
// type with both signature versions and the refusals the corpus cannot show
// (wrong topic, stale, future, expired or not-yet-valid certificate, tampered
// type or subject, weak or non-RSA key, redirects, 5xx, oversize, slow
// certificate host), through the test-only trust hook.
func TestSelfSignedCases(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	ca := newCA(t, now.Add(-time.Hour), now.Add(time.Hour))
	cs := newCertServer(t, ca.pemData)
	trust := InsecureTestTrust(t, TestTrust{URLPrefixes: []string{cs.URL + "/"}, Now: fixedClock(now)})
	newV := func(cfg Config) *Verifier {
		if cfg.Topics == nil {
			cfg.Topics = []string{testTopic}
		}
		v, err := NewVerifier(cfg, trust)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	type tc struct {
		name    string
		msg     func() *Message
		cfg     Config
		want    Reason
		fetches bool // whether the certificate may be fetched
	}
	signed := func(m *Message, v string) func() *Message { return func() *Message { return ca.sign(t, m, v) } }
	cases := []tc{
		{name: "notification with subject v1", msg: signed(notification(cs.certURL(), "ElastAlert: rule", now), "1"), fetches: true},
		{name: "notification with subject v2", msg: signed(notification(cs.certURL(), "ElastAlert: rule", now), "2"), fetches: true},
		{name: "notification without subject v1", msg: signed(notification(cs.certURL(), "", now), "1"), fetches: true},
		{name: "notification without subject v2", msg: signed(notification(cs.certURL(), "", now), "2"), fetches: true},
		{name: "subscription confirmation v1", msg: signed(confirmation(TypeSubscriptionConfirmation, cs.certURL(), cs.URL, now), "1"), fetches: true},
		{name: "subscription confirmation v2", msg: signed(confirmation(TypeSubscriptionConfirmation, cs.certURL(), cs.URL, now), "2"), fetches: true},
		{name: "unsubscribe confirmation v1", msg: signed(confirmation(TypeUnsubscribeConfirmation, cs.certURL(), cs.URL, now), "1"), fetches: true},
		{name: "unsubscribe confirmation v2", msg: signed(confirmation(TypeUnsubscribeConfirmation, cs.certURL(), cs.URL, now), "2"), fetches: true},
		{name: "wrong topic", msg: func() *Message {
			m := notification(cs.certURL(), "", now)
			m.TopicArn = "arn:aws:sns:us-east-1:123456789012:someone-elses"
			return ca.sign(t, m, "2")
		}, want: ReasonTopicNotAllowed},
		{name: "stale timestamp", msg: signed(notification(cs.certURL(), "", now.Add(-3*time.Hour)), "1"), cfg: Config{MaxMessageAge: time.Hour}, want: ReasonStale, fetches: true},
		{name: "old timestamp, age rule off", msg: signed(notification(cs.certURL(), "", now.Add(-300*24*time.Hour)), "1"), cfg: Config{MaxMessageAge: -1}, fetches: true},
		{name: "future timestamp", msg: signed(notification(cs.certURL(), "", now.Add(time.Hour)), "1"), want: ReasonFuture, fetches: true},
		{name: "unparseable timestamp", msg: func() *Message {
			m := notification(cs.certURL(), "", now)
			m.Timestamp = "yesterday"
			return ca.sign(t, m, "1")
		}, want: ReasonTimestampInvalid},
		{name: "type swapped after signing", msg: func() *Message {
			m := ca.sign(t, notification(cs.certURL(), "", now), "1")
			m.Type, m.SubscribeURL, m.Token = TypeSubscriptionConfirmation, cs.URL+"/?Action=ConfirmSubscription&TopicArn="+testTopic+"&Token=x", "x"
			return m
		}, want: ReasonSignatureMismatch, fetches: true},
		{name: "subject removed after signing", msg: func() *Message {
			m := ca.sign(t, notification(cs.certURL(), "ElastAlert: rule", now), "2")
			m.Subject = ""
			return m
		}, want: ReasonSignatureMismatch, fetches: true},
		{name: "v1 signature labelled v2", msg: func() *Message {
			m := ca.sign(t, notification(cs.certURL(), "", now), "1")
			m.SignatureVersion = "2"
			return m
		}, want: ReasonSignatureMismatch, fetches: true},
		{name: "missing MessageId", msg: func() *Message {
			m := ca.sign(t, notification(cs.certURL(), "", now), "1")
			m.MessageId = ""
			return m
		}, want: ReasonMissingField},
		{name: "cert URL not .pem on the trusted host", msg: signed(notification(cs.URL+"/cert.txt", "", now), "1"), want: ReasonCertURL},
		{name: "cert URL on a loopback port that is not trusted", msg: signed(notification("http://127.0.0.1:1/cert.pem", "", now), "1"), want: ReasonCertURL},
		{name: "redirect is not followed", msg: signed(notification(cs.URL+"/redirect.pem", "", now), "1"), want: ReasonCertUnavailable, fetches: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := newV(c.cfg)
			before := cs.hits.Load()
			err := v.Verify(context.Background(), c.msg())
			if ReasonOf(err) != c.want || (c.want == "" && err != nil) {
				t.Fatalf("want %q, got %v", c.want, err)
			}
			if fetched := cs.hits.Load() > before; fetched && !c.fetches {
				t.Fatalf("certificate fetched although the message is refused before any fetch")
			}
			t.Logf("%-45s → %v", c.name, map[bool]string{true: "verified", false: "refused: " + string(ReasonOf(err))}[err == nil])
		})
	}
}

func TestCertificateValidityAndKeys(t *testing.T) {
	now := time.Now().UTC()
	check := func(t *testing.T, pemData []byte, want Reason, cfg Config) {
		t.Helper()
		cs := newCertServer(t, pemData)
		cfg.Topics = []string{testTopic}
		v, err := NewVerifier(cfg, InsecureTestTrust(t, TestTrust{URLPrefixes: []string{cs.URL}, Now: fixedClock(now)}))
		if err != nil {
			t.Fatal(err)
		}
		ca := newCA(t, now.Add(-time.Hour), now.Add(time.Hour))
		err = v.Verify(context.Background(), ca.sign(t, notification(cs.certURL(), "", now), "1"))
		if ReasonOf(err) != want {
			t.Fatalf("want %s, got %v", want, err)
		}
	}
	t.Run("expired", func(t *testing.T) {
		check(t, newCA(t, now.Add(-2*time.Hour), now.Add(-time.Hour)).pemData, ReasonCertExpired, Config{})
	})
	t.Run("not yet valid", func(t *testing.T) {
		check(t, newCA(t, now.Add(time.Hour), now.Add(2*time.Hour)).pemData, ReasonCertNotYetValid, Config{})
	})
	t.Run("RSA 1024", func(t *testing.T) {
		k, err := rsa.GenerateKey(rand.Reader, 1024)
		if err != nil {
			t.Fatal(err)
		}
		check(t, newCAWithKey(t, k, now.Add(-time.Hour), now.Add(time.Hour)).pemData, ReasonCertInvalid, Config{})
	})
	t.Run("ECDSA", func(t *testing.T) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
		der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
		check(t, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), ReasonCertInvalid, Config{})
	})
	t.Run("not PEM", func(t *testing.T) { check(t, []byte("<html>hello</html>"), ReasonCertInvalid, Config{}) })
	t.Run("over the size cap", func(t *testing.T) {
		big := append(newCA(t, now.Add(-time.Hour), now.Add(time.Hour)).pemData, []byte(strings.Repeat("#", 5000))...)
		check(t, big, ReasonCertInvalid, Config{MaxCertBytes: 4096})
	})
}

func TestCertificateFetchFailures(t *testing.T) {
	now := time.Now().UTC()
	ca := newCA(t, now.Add(-time.Hour), now.Add(time.Hour))
	for _, c := range []struct {
		name      string
		status    int
		delay     time.Duration
		temporary bool
	}{
		{"404 is permanent", http.StatusNotFound, 0, false},
		{"503 is temporary", http.StatusServiceUnavailable, 0, true},
		{"timeout is temporary", http.StatusOK, 2 * time.Second, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			cs := newCertServer(t, ca.pemData)
			cs.status, cs.delay = c.status, c.delay
			v, err := NewVerifier(Config{Topics: []string{testTopic}, CertTimeout: 200 * time.Millisecond},
				InsecureTestTrust(t, TestTrust{URLPrefixes: []string{cs.URL}, Now: fixedClock(now)}))
			if err != nil {
				t.Fatal(err)
			}
			err = v.Verify(context.Background(), ca.sign(t, notification(cs.certURL(), "", now), "1"))
			ve, ok := err.(*VerifyError)
			if !ok || ve.Reason != ReasonCertUnavailable || ve.Temporary != c.temporary {
				t.Fatalf("want cert-unavailable temporary=%v, got %#v", c.temporary, err)
			}
		})
	}
}

// TestCertificateCache: one fetch for many messages, also concurrently.
func TestCertificateCache(t *testing.T) {
	now := time.Now().UTC()
	ca := newCA(t, now.Add(-time.Hour), now.Add(time.Hour))
	cs := newCertServer(t, ca.pemData)
	cs.delay = 50 * time.Millisecond
	v, err := NewVerifier(Config{Topics: []string{testTopic}}, InsecureTestTrust(t, TestTrust{URLPrefixes: []string{cs.URL}, Now: fixedClock(now)}))
	if err != nil {
		t.Fatal(err)
	}
	m := ca.sign(t, notification(cs.certURL(), "", now), "2")
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			if err := v.Verify(context.Background(), m); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := v.Verify(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if n := cs.hits.Load(); n != 1 {
		t.Fatalf("%d fetches, want 1", n)
	}
}

// TestCertURLRules: the SigningCertURL rules of AWS's validators, plus no
// user info, port, query or fragment.
func TestCertURLRules(t *testing.T) {
	v, err := NewVerifier(Config{Topics: []string{testTopic}})
	if err != nil {
		t.Fatal(err)
	}
	for u, ok := range map[string]bool{
		"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem": true,
		"https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-x.pem":                            true,
		"https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-x.pem":                            true,
		"https://sns.us-east-1.amazonaws.com:443/x.pem":                                                      true,
		"http://sns.us-east-1.amazonaws.com/x.pem":                                                           false,
		"https://sns.us-east-1.amazonaws.com/x.key":                                                          false,
		"https://sns.us-east-1.amazonaws.com/x.pem?a=b":                                                      false,
		"https://sns.us-east-1.amazonaws.com/x.pem#f":                                                        false,
		"https://sns.us-east-1.amazonaws.com:8443/x.pem":                                                     false,
		"https://user:pw@sns.us-east-1.amazonaws.com/x.pem":                                                  false,
		"https://sns.us-east-1.amazonaws.com.evil.example/x.pem":                                             false,
		"https://evil.example/sns.us-east-1.amazonaws.com/x.pem":                                             false,
		"https://sns.amazonaws.com/x.pem":                                                                    false,
		"https://s3.us-east-1.amazonaws.com/x.pem":                                                           false,
		"https://sns.us-east-1.amazonaws.com./x.pem":                                                         false,
		"https://xsns.us-east-1.amazonaws.com/x.pem":                                                         false,
		"https:sns.us-east-1.amazonaws.com/x.pem":                                                            false,
		"//sns.us-east-1.amazonaws.com/x.pem":                                                                false,
		"http://127.0.0.1:4100/SimpleNotificationService/x.pem":                                              false,
		"": false,
	} {
		_, err := v.checkCertURL(u)
		if (err == nil) != ok {
			t.Errorf("%q: accepted=%v, want %v (%v)", u, err == nil, ok, err)
		}
	}
}

func TestSubscribeURLRules(t *testing.T) {
	v, err := NewVerifier(Config{Topics: []string{testTopic}})
	if err != nil {
		t.Fatal(err)
	}
	good := "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=" + testTopic + "&Token=abc"
	for u, ok := range map[string]bool{
		good: true,
		"http://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=" + testTopic + "&Token=abc":      false,
		"https://evil.example/?Action=ConfirmSubscription&TopicArn=" + testTopic + "&Token=abc":                    false,
		"https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&TopicArn=" + testTopic + "&Token=abc":             false,
		"https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:x:1:other&Token=abc": false,
		"https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=" + testTopic:                    false,
		"https://u:p@sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=" + testTopic + "&Token=a":   false,
	} {
		_, err := v.CheckSubscribeURL(&Message{TopicArn: testTopic, SubscribeURL: u})
		if (err == nil) != ok {
			t.Errorf("%q: accepted=%v, want %v (%v)", u, err == nil, ok, err)
		}
	}
}

func TestTestTrustGuards(t *testing.T) {
	for _, p := range []string{"http://10.0.0.1:4100/", "http://example.com/", "ftp://127.0.0.1/", "http://u@127.0.0.1/"} {
		if _, err := NewVerifier(Config{Topics: []string{testTopic}}, InsecureTestTrust(t, TestTrust{URLPrefixes: []string{p}})); err == nil {
			t.Errorf("prefix %q accepted", p)
		}
	}
	if _, err := NewVerifier(Config{}); err == nil {
		t.Error("a verifier without topics was built")
	}
	if _, err := NewVerifier(Config{Topics: []string{"security-alerts"}}); err == nil {
		t.Error("a topic that is not an ARN was accepted")
	}
}

// TestStringToSign pins the canonical strings.
func TestStringToSign(t *testing.T) {
	n := &Message{Type: TypeNotification, Message: "m", MessageId: "id", Subject: "s", Timestamp: "ts", TopicArn: "arn", Token: "ignored", SubscribeURL: "ignored"}
	got, _ := StringToSign(n)
	if want := "Message\nm\nMessageId\nid\nSubject\ns\nTimestamp\nts\nTopicArn\narn\nType\nNotification\n"; got != want {
		t.Errorf("notification: %q", got)
	}
	n.Subject = ""
	got, _ = StringToSign(n)
	if want := "Message\nm\nMessageId\nid\nTimestamp\nts\nTopicArn\narn\nType\nNotification\n"; got != want {
		t.Errorf("notification without subject: %q", got)
	}
	c := &Message{Type: TypeUnsubscribeConfirmation, Message: "m", MessageId: "id", Subject: "ignored", SubscribeURL: "u", Timestamp: "ts", Token: "tok", TopicArn: "arn"}
	got, _ = StringToSign(c)
	if want := "Message\nm\nMessageId\nid\nSubscribeURL\nu\nTimestamp\nts\nToken\ntok\nTopicArn\narn\nType\nUnsubscribeConfirmation\n"; got != want {
		t.Errorf("unsubscribe: %q", got)
	}
	if _, err := StringToSign(&Message{Type: "Bogus"}); err == nil {
		t.Error("unknown type accepted")
	}
}
