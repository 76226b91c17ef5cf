// Package alexatest signs Alexa requests for tests: a throw-away CA and
// intermediate, a leaf with the SAN echo-api.amazon.com, the headers Alexa
// sends (SignatureCertChainUrl, Signature-256, Signature), an HTTP client that
// serves the chain at its s3.amazonaws.com URL, and request envelopes.
package alexatest

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"sync"
	"time"
)

// DefaultCertURL is where a Signer's chain is served by default.
const DefaultCertURL = "https://s3.amazonaws.com/echo.api/cordon-test-cert.pem"

// Options shape a Signer's leaf certificate.
type Options struct {
	// DNSNames are the leaf's SANs (default echo-api.amazon.com).
	DNSNames []string
	// NotBefore and NotAfter bound the leaf (default: an hour ago to a day on).
	NotBefore, NotAfter time.Time
	// CertURL is the SignatureCertChainUrl (default DefaultCertURL).
	CertURL string
}

// Signer is a throw-away PKI that signs request bodies like Alexa.
type Signer struct {
	CertURL  string
	ChainPEM []byte         // leaf, then intermediate (no root, like Amazon's)
	Roots    *x509.CertPool // the throw-away root, to trust in the verifier
	Leaf     *x509.Certificate
	key      *rsa.PrivateKey
}

// NewSigner makes a root CA, an intermediate and a leaf.
func NewSigner(o Options) (*Signer, error) {
	if len(o.DNSNames) == 0 {
		o.DNSNames = []string{"echo-api.amazon.com"}
	}
	now := time.Now()
	if o.NotBefore.IsZero() {
		o.NotBefore = now.Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = now.Add(24 * time.Hour)
	}
	if o.CertURL == "" {
		o.CertURL = DefaultCertURL
	}
	rootKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	interKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	leafKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	caTemplate := func(serial int64, cn string) *x509.Certificate {
		return &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn, Organization: []string{"Cordon tests"}},
			NotBefore: now.Add(-24 * time.Hour), NotAfter: now.Add(10 * 365 * 24 * time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		}
	}
	rootT := caTemplate(1, "Cordon Test Root")
	rootDER, err := x509.CreateCertificate(rand.Reader, rootT, rootT, &rootKey.PublicKey, rootKey)
	if err != nil {
		return nil, err
	}
	root, _ := x509.ParseCertificate(rootDER)
	interT := caTemplate(2, "Cordon Test Intermediate")
	interDER, err := x509.CreateCertificate(rand.Reader, interT, root, &interKey.PublicKey, rootKey)
	if err != nil {
		return nil, err
	}
	inter, _ := x509.ParseCertificate(interDER)
	leafT := &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: o.DNSNames[0]},
		NotBefore: o.NotBefore, NotAfter: o.NotAfter, DNSNames: o.DNSNames,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafT, inter, &leafKey.PublicKey, interKey)
	if err != nil {
		return nil, err
	}
	leaf, _ := x509.ParseCertificate(leafDER)
	var chain bytes.Buffer
	_ = pem.Encode(&chain, &pem.Block{Type: "CERTIFICATE", Bytes: leafDER})
	_ = pem.Encode(&chain, &pem.Block{Type: "CERTIFICATE", Bytes: interDER})
	roots := x509.NewCertPool()
	roots.AddCert(root)
	return &Signer{CertURL: o.CertURL, ChainPEM: chain.Bytes(), Roots: roots, Leaf: leaf, key: leafKey}, nil
}

// Headers signs body and returns the headers Alexa sends: SignatureCertChainUrl,
// Signature-256 (SHA256withRSA) and the legacy Signature (SHA1withRSA).
func (s *Signer) Headers(body []byte) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json;charset=UTF-8")
	h.Set("SignatureCertChainUrl", s.CertURL)
	h.Set("Signature-256", s.Sign256(body))
	d1 := sha1.Sum(body)
	sig1, _ := rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA1, d1[:])
	h.Set("Signature", base64.StdEncoding.EncodeToString(sig1))
	return h
}

// Sign256 returns the base64 SHA256withRSA signature of body.
func (s *Signer) Sign256(body []byte) string {
	d := sha256.Sum256(body)
	sig, _ := rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, d[:])
	return base64.StdEncoding.EncodeToString(sig)
}

// ChainServer is an http.RoundTripper serving PEM chains by URL (404 for
// others) and counting fetches.
type ChainServer struct {
	mu      sync.Mutex
	chains  map[string][]byte
	fetches map[string]int
	// Delay, when set, is waited (or the request's context) before answering.
	Delay time.Duration
}

// NewChainServer returns a server for url → PEM.
func NewChainServer(chains map[string][]byte) *ChainServer {
	cs := &ChainServer{chains: map[string][]byte{}, fetches: map[string]int{}}
	for u, b := range chains {
		cs.chains[u] = b
	}
	return cs
}

// Add serves pem at url.
func (cs *ChainServer) Add(url string, pem []byte) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.chains[url] = pem
}

// Fetches counts the requests for url.
func (cs *ChainServer) Fetches(url string) int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.fetches[url]
}

// Client returns an http.Client using the server.
func (cs *ChainServer) Client() *http.Client { return &http.Client{Transport: cs} }

// RoundTrip implements http.RoundTripper.
func (cs *ChainServer) RoundTrip(r *http.Request) (*http.Response, error) {
	u := r.URL.String()
	cs.mu.Lock()
	cs.fetches[u]++
	b, ok := cs.chains[u]
	delay := cs.Delay
	cs.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	resp := &http.Response{StatusCode: http.StatusOK, Status: "200 OK", Header: http.Header{}, Request: r, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
	if !ok {
		resp.StatusCode, resp.Status = http.StatusNotFound, "404 Not Found"
		b = []byte("not found")
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	return resp, nil
}

// Call describes one request envelope.
type Call struct {
	AppID      string
	UserID     string
	SessionID  string
	New        bool
	Attributes map[string]any
	Time       time.Time // request.timestamp (default now)
	Type       string    // LaunchRequest, IntentRequest, SessionEndedRequest, … (default IntentRequest)
	Intent     string
	// Slots maps slot name → spoken value ("" leaves the slot unfilled).
	Slots        map[string]string
	Confirmation string // intent.confirmationStatus (default NONE)
	DialogState  string
	Reason       string // SessionEndedRequest
	RequestID    string
}

// JSON renders the envelope as Alexa would send it.
func (c Call) JSON() []byte {
	if c.Time.IsZero() {
		c.Time = time.Now()
	}
	if c.Type == "" {
		c.Type = "IntentRequest"
	}
	if c.RequestID == "" {
		c.RequestID = fmt.Sprintf("amzn1.echo-api.request.test-%d", c.Time.UnixNano())
	}
	attrs := c.Attributes
	if attrs == nil {
		attrs = map[string]any{}
	}
	req := map[string]any{
		"type": c.Type, "requestId": c.RequestID, "locale": "en-US",
		"timestamp": c.Time.UTC().Format(time.RFC3339),
	}
	if c.Type == "IntentRequest" {
		slots := map[string]any{}
		for k, v := range c.Slots {
			s := map[string]any{"name": k, "confirmationStatus": "NONE"}
			if v != "" {
				s["value"] = v
			}
			slots[k] = s
		}
		conf := c.Confirmation
		if conf == "" {
			conf = "NONE"
		}
		req["intent"] = map[string]any{"name": c.Intent, "confirmationStatus": conf, "slots": slots}
		if c.DialogState != "" {
			req["dialogState"] = c.DialogState
		}
	}
	if c.Reason != "" {
		req["reason"] = c.Reason
	}
	env := map[string]any{
		"version": "1.0",
		"session": map[string]any{
			"new": c.New, "sessionId": c.SessionID, "attributes": attrs,
			"application": map[string]any{"applicationId": c.AppID},
			"user":        map[string]any{"userId": c.UserID},
		},
		"context": map[string]any{"System": map[string]any{
			"application": map[string]any{"applicationId": c.AppID},
			"user":        map[string]any{"userId": c.UserID},
			"device":      map[string]any{"deviceId": "amzn1.ask.device.test", "supportedInterfaces": map[string]any{}},
		}},
		"request": req,
	}
	b, _ := json.Marshal(env)
	return b
}
