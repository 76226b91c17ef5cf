package alexa

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"
)

// Verification failures. Every error Verifier.Verify returns wraps one of
// these (or ErrMalformedRequest); the HTTPS handler answers 400 to all.
var (
	ErrMissingHeader = errors.New("missing signature header")
	ErrCertURL       = errors.New("invalid SignatureCertChainUrl")
	ErrCertFetch     = errors.New("certificate chain not retrieved")
	ErrCertificate   = errors.New("invalid signing certificate")
	ErrSignature     = errors.New("invalid request signature")
	ErrTimestamp     = errors.New("request timestamp out of tolerance")
	ErrApplicationID = errors.New("wrong application ID")
)

// Constants of the Alexa Skills Kit's request verification.
const (
	// EchoAPIDomain must be a subject alternative name of the signing certificate.
	EchoAPIDomain = "echo-api.amazon.com"
	// CertHost is the only host a SignatureCertChainUrl may name.
	CertHost = "s3.amazonaws.com"
	// CertPathPrefix starts the (normalised, case-sensitive) path of a SignatureCertChainUrl.
	CertPathPrefix = "/echo.api/"

	DefaultTolerance         = 150 * time.Second
	DefaultFetchTimeout      = 5 * time.Second
	DefaultMaxCertChainBytes = 64 << 10
	DefaultMaxBodyBytes      = 1 << 20
	DefaultCertCacheTTL      = 24 * time.Hour
	maxCachedChains          = 16
)

// Header names Alexa signs requests with.
const (
	HeaderCertChainURL = "SignatureCertChainUrl"
	HeaderSignature256 = "Signature-256" // SHA256withRSA, base64
	HeaderSignature    = "Signature"     // legacy SHA1withRSA, base64
)

// Config configures request verification and the HTTPS and Lambda entry
// points. Only SkillID is required.
type Config struct {
	// SkillID is the skill's application ID (amzn1.ask.skill.…). Requests
	// naming another one are refused.
	SkillID string
	// Users, when set, lists the Alexa user IDs (amzn1.ask.account.…) that
	// may steer Cordon; others hear that they may not. Empty: every user of
	// the skill (keep the skill unpublished, in development, then).
	Users []string

	// Roots are the trusted roots of the signing chain; nil means the
	// system pool. Tests inject their own.
	Roots *x509.CertPool
	// Now is the clock for certificate validity and the timestamp check;
	// nil means time.Now.
	Now func() time.Time
	// HTTPClient fetches certificate chains; nil means a client that does
	// not follow redirects.
	HTTPClient *http.Client
	// FetchTimeout bounds one chain download (default 5 s).
	FetchTimeout time.Duration
	// MaxCertChainBytes caps a downloaded chain (default 64 KiB).
	MaxCertChainBytes int64
	// MaxBodyBytes caps a request body (default 1 MiB).
	MaxBodyBytes int64
	// CertCacheTTL is how long a downloaded chain is reused (default 24 h;
	// Amazon rotates the URL with the certificate).
	CertCacheTTL time.Duration
	// Tolerance is how far request.timestamp may be from Now (default 150 s,
	// the Alexa Skills Kit's limit).
	Tolerance time.Duration
	// RequireSHA256 refuses requests that carry only the legacy SHA-1
	// Signature header. By default that header is checked when
	// Signature-256 is absent; a present Signature-256 is always the one
	// checked (no downgrade).
	RequireSHA256 bool
	// Logger receives one line per refused request (nil: slog.Default()).
	Logger *slog.Logger
}

func (c *Config) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Config) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}

func orDuration(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func orInt(n, def int64) int64 {
	if n > 0 {
		return n
	}
	return def
}

// Verifier checks that HTTPS requests come from Alexa, for one skill. It
// caches certificate chains per URL and is safe for concurrent use.
type Verifier struct {
	cfg    Config
	client *http.Client

	mu    sync.Mutex
	cache map[string]cachedChain
}

type cachedChain struct {
	certs   []*x509.Certificate
	fetched time.Time
}

// NewVerifier returns a Verifier for cfg.
func NewVerifier(cfg Config) *Verifier {
	cl := cfg.HTTPClient
	if cl == nil {
		cl = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return &Verifier{cfg: cfg, client: cl, cache: map[string]cachedChain{}}
}

// ValidateCertURL checks a SignatureCertChainUrl: scheme https and host
// s3.amazonaws.com (both case-insensitive), port absent or 443, and a path
// that, once normalised, starts with /echo.api/ (case-sensitive).
func ValidateCertURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: %q does not parse", ErrCertURL, raw)
	}
	switch {
	case !strings.EqualFold(u.Scheme, "https"):
		return fmt.Errorf("%w: %q: scheme is not https", ErrCertURL, raw)
	case !strings.EqualFold(u.Hostname(), CertHost):
		return fmt.Errorf("%w: %q: host is not %s", ErrCertURL, raw, CertHost)
	case u.Port() != "" && u.Port() != "443":
		return fmt.Errorf("%w: %q: port is not 443", ErrCertURL, raw)
	case !strings.HasPrefix(path.Clean("/"+u.Path), CertPathPrefix):
		return fmt.Errorf("%w: %q: path does not start with %s", ErrCertURL, raw, CertPathPrefix)
	}
	return nil
}

// Verify checks one HTTPS request as the Alexa Skills Kit requires and
// returns its parsed envelope: the SignatureCertChainUrl, the certificate
// chain (dates, the echo-api.amazon.com SAN, a trusted root), the signature
// over the raw body bytes (Signature-256, or the legacy Signature), the
// request timestamp within the tolerance of Now, and the application ID.
func (v *Verifier) Verify(ctx context.Context, h http.Header, body []byte) (*RequestEnvelope, error) {
	certURL := h.Get(HeaderCertChainURL)
	if certURL == "" {
		return nil, fmt.Errorf("%w: no %s", ErrMissingHeader, HeaderCertChainURL)
	}
	if err := ValidateCertURL(certURL); err != nil {
		return nil, err
	}
	hash, sigHeader := crypto.SHA256, HeaderSignature256
	sigB64 := h.Get(HeaderSignature256)
	if sigB64 == "" {
		switch {
		case h.Get(HeaderSignature) == "":
			return nil, fmt.Errorf("%w: no %s nor %s", ErrMissingHeader, HeaderSignature256, HeaderSignature)
		case v.cfg.RequireSHA256:
			return nil, fmt.Errorf("%w: no %s (the legacy SHA-1 %s header is refused by configuration)", ErrMissingHeader, HeaderSignature256, HeaderSignature)
		}
		hash, sigHeader, sigB64 = crypto.SHA1, HeaderSignature, h.Get(HeaderSignature)
	}
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(sigB64))
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not base64", ErrSignature, sigHeader)
	}
	certs, err := v.chain(ctx, certURL)
	if err != nil {
		return nil, err
	}
	now := v.cfg.now()
	leaf, err := checkChain(certs, now, v.cfg.Roots)
	if err != nil {
		return nil, err
	}
	pub, ok := leaf.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: the signing certificate's key is not RSA", ErrCertificate)
	}
	var digest []byte
	if hash == crypto.SHA256 {
		d := sha256.Sum256(body)
		digest = d[:]
	} else {
		d := sha1.Sum(body)
		digest = d[:]
	}
	if err := rsa.VerifyPKCS1v15(pub, hash, digest, sig); err != nil {
		return nil, fmt.Errorf("%w: %s does not match the body", ErrSignature, sigHeader)
	}
	env, err := ParseRequest(body)
	if err != nil {
		return nil, err
	}
	ts := env.Request.Timestamp.Time
	if ts.IsZero() {
		return nil, fmt.Errorf("%w: no request.timestamp", ErrTimestamp)
	}
	tol := orDuration(v.cfg.Tolerance, DefaultTolerance)
	if d := now.Sub(ts); d > tol || d < -tol {
		return nil, fmt.Errorf("%w: request.timestamp %s is %s from now (%s), more than %s",
			ErrTimestamp, ts.UTC().Format(time.RFC3339), d.Round(time.Second).Abs(), now.UTC().Format(time.RFC3339), tol)
	}
	if err := checkApplicationID(env, v.cfg.SkillID); err != nil {
		return nil, err
	}
	return env, nil
}

// checkChain checks the signing certificate (first of certs) at now: its
// validity dates, the echo-api.amazon.com SAN and a chain to roots (nil:
// the system pool) through the other certificates. It returns the leaf.
func checkChain(certs []*x509.Certificate, now time.Time, roots *x509.CertPool) (*x509.Certificate, error) {
	leaf := certs[0]
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		state := "expired"
		if now.Before(leaf.NotBefore) {
			state = "not yet valid"
		}
		return nil, fmt.Errorf("%w: %s is %s at %s (valid %s to %s)", ErrCertificate, leaf.Subject.CommonName, state,
			now.UTC().Format(time.RFC3339), leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	san := false
	for _, n := range leaf.DNSNames {
		if strings.EqualFold(n, EchoAPIDomain) {
			san = true
		}
	}
	if !san {
		return nil, fmt.Errorf("%w: %s is not a subject alternative name of the signing certificate (%v)", ErrCertificate, EchoAPIDomain, leaf.DNSNames)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return nil, fmt.Errorf("%w: no chain to a trusted root: %v", ErrCertificate, err)
	}
	return leaf, nil
}

func checkApplicationID(env *RequestEnvelope, skillID string) error {
	if skillID == "" {
		return fmt.Errorf("%w: no skill ID is configured", ErrApplicationID)
	}
	ids := env.ApplicationIDs()
	if len(ids) == 0 {
		return fmt.Errorf("%w: the request names no application ID", ErrApplicationID)
	}
	for _, id := range ids {
		if id != skillID {
			return fmt.Errorf("%w: %s is not this skill (%s)", ErrApplicationID, id, skillID)
		}
	}
	return nil
}

// chain returns the parsed certificate chain at u, from the cache or
// downloaded (bounded in time and size).
func (v *Verifier) chain(ctx context.Context, u string) ([]*x509.Certificate, error) {
	ttl := orDuration(v.cfg.CertCacheTTL, DefaultCertCacheTTL)
	v.mu.Lock()
	c, ok := v.cache[u]
	v.mu.Unlock()
	if ok && time.Since(c.fetched) < ttl {
		return c.certs, nil
	}
	ctx, cancel := context.WithTimeout(ctx, orDuration(v.cfg.FetchTimeout, DefaultFetchTimeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCertFetch, err)
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCertFetch, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: GET %s: HTTP %d", ErrCertFetch, u, resp.StatusCode)
	}
	limit := orInt(v.cfg.MaxCertChainBytes, DefaultMaxCertChainBytes)
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %v", ErrCertFetch, u, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrCertFetch, u, limit)
	}
	certs, err := parsePEMChain(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCertFetch, u, err)
	}
	v.mu.Lock()
	if len(v.cache) >= maxCachedChains {
		for k := range v.cache {
			delete(v.cache, k)
			break
		}
	}
	v.cache[u] = cachedChain{certs: certs, fetched: time.Now()}
	v.mu.Unlock()
	return certs, nil
}

func parsePEMChain(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %v", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate")
	}
	return certs, nil
}
