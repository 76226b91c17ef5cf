package alexa

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cordonhq/cordon/alexa/alexatest"
)

// The corpus's real signed request (sidoh/alexa_verifier): legacy SHA-1
// Signature header, chain echo-api-cert-5.pem, timestamp 2017-11-20T08:45:02Z.
const (
	corpusDir     = "../testdata/alexa"
	corpusSkillID = "amzn1.ask.skill.f5e6173c-8f7a-4c51-85e8-275e52d9443b"
	corpusCertURL = "https://s3.amazonaws.com/echo.api/echo-api-cert-5.pem"
)

var corpusTime = time.Date(2017, 11, 20, 8, 45, 2, 0, time.UTC)

func readCorpus(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(corpusDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// corpusSigned returns the raw signed body and its two headers.
func corpusSigned(t testing.TB) ([]byte, http.Header) {
	t.Helper()
	body := readCorpus(t, "signed-sidoh-alexa_verifier/request_body.raw.json")
	h := http.Header{}
	sc := bufio.NewScanner(bytes.NewReader(readCorpus(t, "signed-sidoh-alexa_verifier/request_headers.txt")))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ": ")
		if ok {
			h.Set(k, v)
		}
	}
	if h.Get(HeaderCertChainURL) != corpusCertURL || h.Get(HeaderSignature) == "" {
		t.Fatalf("corpus headers: %v", h)
	}
	return body, h
}

// g5Pool trusts "VeriSign Class 3 Public Primary Certification Authority -
// G5", the root of echo-api-cert-5.pem. It is not in the system pool and the
// chain file does not carry it; the corpus's expired chain carries the same
// G5 (same subject and key, cross-signed, valid 2006..2021), which is used as
// the trust anchor.
func g5Pool(t testing.TB) *x509.CertPool {
	t.Helper()
	certs, err := parsePEMChain(readCorpus(t, "cert-chains/alexa-verifier_cert-expired.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		if c.Subject.CommonName == "VeriSign Class 3 Public Primary Certification Authority - G5" {
			pool.AddCert(c)
			return pool
		}
	}
	t.Fatal("no G5 certificate in the corpus")
	return nil
}

func corpusVerifier(t testing.TB, mod func(*Config)) (*Verifier, *alexatest.ChainServer) {
	t.Helper()
	chains := alexatest.NewChainServer(map[string][]byte{corpusCertURL: readCorpus(t, "signed-sidoh-alexa_verifier/echo-api-cert-5.pem")})
	cfg := Config{SkillID: corpusSkillID, Roots: g5Pool(t), Now: func() time.Time { return corpusTime }, HTTPClient: chains.Client()}
	if mod != nil {
		mod(&cfg)
	}
	return NewVerifier(cfg), chains
}

func TestVerifyCorpusSignedRequest(t *testing.T) {
	body, h := corpusSigned(t)
	v, chains := corpusVerifier(t, nil)
	env, err := v.Verify(context.Background(), h, body)
	if err != nil {
		t.Fatalf("the real signed request does not verify: %v", err)
	}
	if env.Request.Type != TypeIntent || env.IntentName() != "PlayAudio" || env.Request.Locale != "en-GB" {
		t.Fatalf("parsed %+v", env.Request)
	}
	if !env.Request.Timestamp.Equal(corpusTime) {
		t.Fatalf("timestamp %v", env.Request.Timestamp)
	}
	// Cached: the second request does not fetch the chain again.
	if _, err := v.Verify(context.Background(), h, body); err != nil {
		t.Fatal(err)
	}
	if n := chains.Fetches(corpusCertURL); n != 1 {
		t.Fatalf("chain fetched %d times, want 1 (cached per URL)", n)
	}
	// The clock may be up to 150 s either side.
	for _, d := range []time.Duration{150 * time.Second, -150 * time.Second} {
		v, _ := corpusVerifier(t, func(c *Config) { c.Now = func() time.Time { return corpusTime.Add(d) } })
		if _, err := v.Verify(context.Background(), h, body); err != nil {
			t.Errorf("clock %v from the request: %v", d, err)
		}
	}
}

func TestVerifyCorpusSystemRootsDoNotTrustG5(t *testing.T) {
	body, h := corpusSigned(t)
	v, _ := corpusVerifier(t, func(c *Config) { c.Roots = nil })
	_, err := v.Verify(context.Background(), h, body)
	if !errors.Is(err, ErrCertificate) || !strings.Contains(err.Error(), "unknown authority") {
		t.Fatalf("with system roots: %v, want an unknown-authority certificate error (VeriSign G5 is not in the system pool)", err)
	}
}

func TestVerifyCorpusTampered(t *testing.T) {
	body, h := corpusSigned(t)
	flip := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		c[i] ^= 0x01
		return c
	}
	sig, _ := base64.StdEncoding.DecodeString(h.Get(HeaderSignature))
	expired := readCorpus(t, "cert-chains/alexa-verifier_cert-expired.pem")
	cases := []struct {
		name   string
		body   []byte
		header func(http.Header)
		config func(*Config)
		want   error
		reason string
	}{
		{name: "body byte changed", body: flip(body, bytes.Index(body, []byte("PlayAudio"))), want: ErrSignature},
		{name: "body gained a trailing newline", body: append(bytes.Clone(body), '\n'), want: ErrSignature},
		{name: "body re-serialised", body: bytes.TrimSpace(body), want: ErrSignature},
		{name: "signature changed", header: func(h http.Header) { h.Set(HeaderSignature, base64.StdEncoding.EncodeToString(flip(sig, 10))) }, want: ErrSignature},
		{name: "signature not base64", header: func(h http.Header) { h.Set(HeaderSignature, "not base64!") }, want: ErrSignature},
		{name: "signature missing", header: func(h http.Header) { h.Del(HeaderSignature) }, want: ErrMissingHeader},
		{name: "Signature-256 present but wrong: no fallback to SHA-1", header: func(h http.Header) { h.Set(HeaderSignature256, h.Get(HeaderSignature)) }, want: ErrSignature, reason: "Signature-256"},
		{name: "SHA-1 refused when SHA-256 is required", config: func(c *Config) { c.RequireSHA256 = true }, want: ErrMissingHeader, reason: "Signature-256"},
		{name: "cert URL missing", header: func(h http.Header) { h.Del(HeaderCertChainURL) }, want: ErrMissingHeader},
		{name: "cert URL http", header: func(h http.Header) { h.Set(HeaderCertChainURL, "http://s3.amazonaws.com/echo.api/echo-api-cert-5.pem") }, want: ErrCertURL, reason: "scheme"},
		{name: "cert URL other host", header: func(h http.Header) { h.Set(HeaderCertChainURL, "https://notamazon.com/echo.api/echo-api-cert-5.pem") }, want: ErrCertURL, reason: "host"},
		{name: "cert URL path case", header: func(h http.Header) {
			h.Set(HeaderCertChainURL, "https://s3.amazonaws.com/EcHo.aPi/echo-api-cert-5.pem")
		}, want: ErrCertURL, reason: "path"},
		{name: "cert URL other path", header: func(h http.Header) {
			h.Set(HeaderCertChainURL, "https://s3.amazonaws.com/invalid.path/echo-api-cert-5.pem")
		}, want: ErrCertURL, reason: "path"},
		{name: "cert URL port 563", header: func(h http.Header) {
			h.Set(HeaderCertChainURL, "https://s3.amazonaws.com:563/echo.api/echo-api-cert-5.pem")
		}, want: ErrCertURL, reason: "port"},
		{name: "cert URL escapes the prefix", header: func(h http.Header) {
			h.Set(HeaderCertChainURL, "https://s3.amazonaws.com/echo.api/../echo-api-cert-5.pem")
		}, want: ErrCertURL, reason: "path"},
		{name: "cert URL valid but not served", header: func(h http.Header) { h.Set(HeaderCertChainURL, "https://s3.amazonaws.com/echo.api/missing.pem") }, want: ErrCertFetch, reason: "404"},
		{name: "stale timestamp (clock 151 s later)", config: func(c *Config) { c.Now = func() time.Time { return corpusTime.Add(151 * time.Second) } }, want: ErrTimestamp},
		{name: "timestamp from the future (clock 151 s earlier)", config: func(c *Config) { c.Now = func() time.Time { return corpusTime.Add(-151 * time.Second) } }, want: ErrTimestamp},
		{name: "wrong skill ID", config: func(c *Config) { c.SkillID = "amzn1.ask.skill.00000000-0000-0000-0000-000000000000" }, want: ErrApplicationID, reason: corpusSkillID},
		{name: "no skill ID configured", config: func(c *Config) { c.SkillID = "" }, want: ErrApplicationID, reason: "configured"},
		{name: "expired certificate chain", config: func(c *Config) {
			c.HTTPClient = alexatest.NewChainServer(map[string][]byte{corpusCertURL: expired}).Client()
		}, want: ErrCertificate, reason: "expired"},
		{name: "signing certificate expired at today's date", config: func(c *Config) { c.Now = time.Now }, want: ErrCertificate, reason: "expired"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := body
			if tc.body != nil {
				b = tc.body
			}
			hh := h.Clone()
			if tc.header != nil {
				tc.header(hh)
			}
			v, chains := corpusVerifier(t, tc.config)
			_, err := v.Verify(context.Background(), hh, b)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if tc.reason != "" && !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("reason %q does not mention %q", err, tc.reason)
			}
			if errors.Is(err, ErrCertURL) && chains.Fetches(hh.Get(HeaderCertChainURL)) != 0 {
				t.Fatal("a refused URL was fetched")
			}
			t.Logf("refused: %v", err)
		})
	}
}

// TestVerifyCorpusCertURLVariants: URLs that the rules accept fetch the chain
// (served here at that exact URL) and verify.
func TestVerifyCorpusCertURLVariants(t *testing.T) {
	body, h := corpusSigned(t)
	chain := readCorpus(t, "signed-sidoh-alexa_verifier/echo-api-cert-5.pem")
	for _, u := range []string{
		"https://s3.amazonaws.com/echo.api/echo-api-cert-5.pem",
		"https://s3.amazonaws.com:443/echo.api/echo-api-cert-5.pem",
		"https://s3.amazonaws.com/echo.api/../echo.api/echo-api-cert-5.pem",
		"HTTPS://S3.AMAZONAWS.COM/echo.api/echo-api-cert-5.pem",
		"https://s3.amazonaws.com/echo.api/./echo-api-cert-5.pem",
	} {
		hh := h.Clone()
		hh.Set(HeaderCertChainURL, u)
		cs := alexatest.NewChainServer(nil)
		v, _ := corpusVerifier(t, func(c *Config) { c.HTTPClient = cs.Client() })
		// Go's URL parser lower-cases the scheme when the request is made.
		cs.Add(strings.Replace(u, "HTTPS://", "https://", 1), chain)
		if _, err := v.Verify(context.Background(), hh, body); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
}

func TestValidateCertURL(t *testing.T) {
	valid := []string{
		"https://s3.amazonaws.com/echo.api/echo-api-cert.pem",
		"https://s3.amazonaws.com:443/echo.api/echo-api-cert.pem",
		"https://s3.amazonaws.com/echo.api/../echo.api/echo-api-cert.pem",
		"HTTPS://s3.amazonaws.com/echo.api/echo-api-cert.pem",
		"https://S3.AmazonAWS.com/echo.api/echo-api-cert.pem",
		"https://s3.amazonaws.com/echo.api/echo-api-cert-6-ats.pem",
	}
	invalid := map[string]string{
		"http://s3.amazonaws.com/echo.api/echo-api-cert.pem":               "scheme",
		"s3.amazonaws.com/echo.api/echo-api-cert.pem":                      "scheme",
		"ftp://s3.amazonaws.com/echo.api/echo-api-cert.pem":                "scheme",
		"https://notamazon.com/echo.api/echo-api-cert.pem":                 "host",
		"https://s3.amazonaws.com.evil.example/echo.api/echo-api-cert.pem": "host",
		"https://evil.example/s3.amazonaws.com/echo.api/x.pem":             "host",
		"https://s3.amazonaws.com/EcHo.aPi/echo-api-cert.pem":              "path",
		"https://s3.amazonaws.com/invalid.path/echo-api-cert.pem":          "path",
		"https://s3.amazonaws.com/echo.api/../invalid.path/x.pem":          "path",
		"https://s3.amazonaws.com/echo.api":                                "path",
		"https://s3.amazonaws.com/":                                        "path",
		"https://s3.amazonaws.com:563/echo.api/echo-api-cert.pem":          "port",
		"https://s3.amazonaws.com:80/echo.api/echo-api-cert.pem":           "port",
		"":                                      "scheme",
		"https://s3.amazonaws.com/echo.api/%zz": "parse",
	}
	for _, u := range valid {
		if err := ValidateCertURL(u); err != nil {
			t.Errorf("%q: %v, want valid", u, err)
		}
	}
	for u, why := range invalid {
		err := ValidateCertURL(u)
		if !errors.Is(err, ErrCertURL) || !strings.Contains(err.Error(), why) {
			t.Errorf("%q: %v, want an ErrCertURL about %s", u, err, why)
		}
	}
}

// TestCheckChainEchoAPICert12 verifies the newer real Amazon chain
// (Amazon RSA 2048 M01 → Amazon Root CA 1, in the system pool).
func TestCheckChainEchoAPICert12(t *testing.T) {
	certs, err := parsePEMChain(readCorpus(t, "cert-chains/echo-api-cert-12.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := checkChain(certs, time.Date(2023, 6, 1, 0, 0, 0, 0, time.UTC), nil); err != nil {
		t.Fatalf("echo-api-cert-12 with system roots in June 2023: %v", err)
	}
	_, err = checkChain(certs, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), nil)
	if !errors.Is(err, ErrCertificate) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("in 2024: %v, want expired", err)
	}
	// Without its root pool entry (an empty pool) it does not chain.
	_, err = checkChain(certs, time.Date(2023, 6, 1, 0, 0, 0, 0, time.UTC), x509.NewCertPool())
	if !errors.Is(err, ErrCertificate) || !strings.Contains(err.Error(), "trusted root") {
		t.Fatalf("empty pool: %v", err)
	}
}

const testSkillID = "amzn1.ask.skill.11111111-2222-3333-4444-555555555555"

func newTestSigner(t testing.TB, o alexatest.Options) *alexatest.Signer {
	t.Helper()
	s, err := alexatest.NewSigner(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func generatedVerifier(s *alexatest.Signer, mod func(*Config)) (*Verifier, *alexatest.ChainServer) {
	cs := alexatest.NewChainServer(map[string][]byte{s.CertURL: s.ChainPEM})
	cfg := Config{SkillID: testSkillID, Roots: s.Roots, HTTPClient: cs.Client()}
	if mod != nil {
		mod(&cfg)
	}
	return NewVerifier(cfg), cs
}

func TestVerifyGeneratedSHA256(t *testing.T) {
	s := newTestSigner(t, alexatest.Options{})
	body := alexatest.Call{AppID: testSkillID, UserID: "amzn1.ask.account.TEST", Type: TypeLaunch, New: true, SessionID: "s1"}.JSON()

	v, _ := generatedVerifier(s, func(c *Config) { c.RequireSHA256 = true })
	if _, err := v.Verify(context.Background(), s.Headers(body), body); err != nil {
		t.Fatalf("Signature-256: %v", err)
	}
	// Legacy header alone (Signature-256 absent) is the fallback.
	h := s.Headers(body)
	h.Del(HeaderSignature256)
	v, _ = generatedVerifier(s, nil)
	if _, err := v.Verify(context.Background(), h, body); err != nil {
		t.Fatalf("legacy Signature fallback: %v", err)
	}
	// A wrong Signature-256 is not rescued by a right SHA-1 Signature.
	h = s.Headers(body)
	h.Set(HeaderSignature256, s.Sign256([]byte("other body")))
	if _, err := v.Verify(context.Background(), h, body); !errors.Is(err, ErrSignature) {
		t.Fatalf("downgrade: %v", err)
	}

	t.Run("no echo-api.amazon.com SAN", func(t *testing.T) {
		s := newTestSigner(t, alexatest.Options{DNSNames: []string{"echo-api.example.com"}})
		v, _ := generatedVerifier(s, nil)
		_, err := v.Verify(context.Background(), s.Headers(body), body)
		if !errors.Is(err, ErrCertificate) || !strings.Contains(err.Error(), "subject alternative name") {
			t.Fatal(err)
		}
	})
	t.Run("untrusted root", func(t *testing.T) {
		other := newTestSigner(t, alexatest.Options{})
		v, _ := generatedVerifier(s, func(c *Config) { c.Roots = other.Roots })
		_, err := v.Verify(context.Background(), s.Headers(body), body)
		if !errors.Is(err, ErrCertificate) || !strings.Contains(err.Error(), "trusted root") {
			t.Fatal(err)
		}
	})
	t.Run("leaf not yet valid", func(t *testing.T) {
		s := newTestSigner(t, alexatest.Options{NotBefore: time.Now().Add(time.Hour), NotAfter: time.Now().Add(2 * time.Hour)})
		v, _ := generatedVerifier(s, nil)
		_, err := v.Verify(context.Background(), s.Headers(body), body)
		if !errors.Is(err, ErrCertificate) || !strings.Contains(err.Error(), "not yet valid") {
			t.Fatal(err)
		}
	})
	t.Run("session names another skill", func(t *testing.T) {
		b := bytes.Replace(body, []byte(`"session":{"application":{"applicationId":"`+testSkillID), []byte(`"session":{"application":{"applicationId":"amzn1.ask.skill.other`), 1)
		if bytes.Equal(b, body) {
			t.Fatalf("fixture shape changed: %s", body)
		}
		_, err := v.Verify(context.Background(), s.Headers(b), b)
		if !errors.Is(err, ErrApplicationID) {
			t.Fatal(err)
		}
	})
	t.Run("signed body that is not an envelope", func(t *testing.T) {
		b := []byte(`{"hello":"world"}`)
		_, err := v.Verify(context.Background(), s.Headers(b), b)
		if !errors.Is(err, ErrMalformedRequest) {
			t.Fatal(err)
		}
	})
	t.Run("no timestamp", func(t *testing.T) {
		b := []byte(`{"version":"1.0","request":{"type":"LaunchRequest","requestId":"r"},"context":{"System":{"application":{"applicationId":"` + testSkillID + `"}}}}`)
		_, err := v.Verify(context.Background(), s.Headers(b), b)
		if !errors.Is(err, ErrTimestamp) {
			t.Fatal(err)
		}
	})
}

func TestCertChainFetchLimits(t *testing.T) {
	s := newTestSigner(t, alexatest.Options{})
	body := alexatest.Call{AppID: testSkillID, Type: TypeLaunch}.JSON()

	v, _ := generatedVerifier(s, func(c *Config) { c.MaxCertChainBytes = 512 })
	_, err := v.Verify(context.Background(), s.Headers(body), body)
	if !errors.Is(err, ErrCertFetch) || !strings.Contains(err.Error(), "larger than 512 bytes") {
		t.Fatalf("size cap: %v", err)
	}

	v, cs := generatedVerifier(s, func(c *Config) { c.FetchTimeout = 100 * time.Millisecond })
	cs.Delay = 5 * time.Second
	start := time.Now()
	_, err = v.Verify(context.Background(), s.Headers(body), body)
	if !errors.Is(err, ErrCertFetch) || time.Since(start) > 2*time.Second {
		t.Fatalf("timeout: %v after %v", err, time.Since(start))
	}
	// A failed fetch is not cached: once the server answers, it verifies.
	cs.Delay = 0
	if _, err := v.Verify(context.Background(), s.Headers(body), body); err != nil {
		t.Fatal(err)
	}

	cs = alexatest.NewChainServer(map[string][]byte{s.CertURL: []byte("no pem here")})
	v = NewVerifier(Config{SkillID: testSkillID, Roots: s.Roots, HTTPClient: cs.Client()})
	if _, err := v.Verify(context.Background(), s.Headers(body), body); !errors.Is(err, ErrCertFetch) {
		t.Fatalf("not PEM: %v", err)
	}
}
