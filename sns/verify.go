package sns

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // SignatureVersion 1 is SHA1withRSA, as AWS specifies
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Reason is why a message was refused by the verifier. The values are stable
// strings, used in logs and in the refused-by-reason counters.
type Reason string

// Verification failures.
const (
	ReasonUnknownType        Reason = "unknown-type"
	ReasonMissingField       Reason = "missing-field"
	ReasonSignatureVersion   Reason = "unsupported-signature-version"
	ReasonTopicNotAllowed    Reason = "topic-not-allowed"
	ReasonCertURL            Reason = "cert-url-invalid"
	ReasonSignatureMalformed Reason = "signature-malformed"
	ReasonCertUnavailable    Reason = "cert-unavailable"
	ReasonCertInvalid        Reason = "cert-invalid"
	ReasonCertNotYetValid    Reason = "cert-not-yet-valid"
	ReasonCertExpired        Reason = "cert-expired"
	ReasonSignatureMismatch  Reason = "signature-mismatch"
	ReasonTimestampInvalid   Reason = "timestamp-invalid"
	ReasonStale              Reason = "stale-timestamp"
	ReasonFuture             Reason = "timestamp-in-future"
	ReasonSubscribeURL       Reason = "subscribe-url-invalid"
)

// VerifyError is a refused message. Temporary errors (the certificate could
// not be fetched because of the network or a 5xx from SNS) are worth a retry:
// the handler answers 503 for them, so a real alert is never lost because
// AWS's certificate host hiccuped.
type VerifyError struct {
	Reason    Reason
	Detail    string
	Temporary bool
}

func (e *VerifyError) Error() string { return "sns: " + string(e.Reason) + ": " + e.Detail }

func refuse(r Reason, format string, args ...any) *VerifyError {
	return &VerifyError{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

// ReasonOf returns the Reason of a *VerifyError in err's chain, or "".
func ReasonOf(err error) Reason {
	var ve *VerifyError
	if errors.As(err, &ve) {
		return ve.Reason
	}
	return ""
}

// snsHost is the host of a SigningCertURL/SubscribeURL in every AWS
// partition: sns.<region>.amazonaws.com, and .com.cn in China (the rule of
// AWS's PHP and JavaScript validators).
var snsHost = regexp.MustCompile(`^sns\.[a-zA-Z0-9\-]{3,}\.amazonaws\.com(\.cn)?$`)

// Defaults of the verifier settings in Config.
const (
	DefaultCertTimeout   = 5 * time.Second
	DefaultMaxCertBytes  = 64 << 10
	DefaultCertCacheSize = 64
	DefaultMaxMessageAge = 2 * time.Hour
	// MaxClockSkew is how far in the future a message Timestamp may be.
	MaxClockSkew = 15 * time.Minute
	certCacheTTL = 24 * time.Hour
)

// Verifier checks SNS messages as AWS specifies for HTTP subscribers. It is
// safe for concurrent use.
type Verifier struct {
	topics      map[string]bool
	client      *http.Client
	timeout     time.Duration
	maxCert     int64
	cacheSize   int
	maxAge      time.Duration
	now         func() time.Time
	certNow     func() time.Time
	trusted     []*url.URL
	testOnlyLog string

	mu       sync.Mutex
	cache    map[string]*cachedCert
	inflight map[string]*certCall
}

type cachedCert struct {
	cert    *x509.Certificate
	key     *rsa.PublicKey
	fetched time.Time
}

type certCall struct {
	done chan struct{}
	c    *cachedCert
	err  error
}

// NewVerifier builds the verifier from the verification settings of cfg
// (Topics, HTTPClient, CertTimeout, MaxCertBytes, CertCacheSize,
// MaxMessageAge). Options are for tests only (InsecureTestTrust).
func NewVerifier(cfg Config, opts ...Option) (*Verifier, error) {
	var o options
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	v := &Verifier{
		topics:    map[string]bool{},
		timeout:   cfg.CertTimeout,
		maxCert:   cfg.MaxCertBytes,
		cacheSize: cfg.CertCacheSize,
		maxAge:    cfg.MaxMessageAge,
		now:       time.Now,
		trusted:   o.trusted,
		cache:     map[string]*cachedCert{},
		inflight:  map[string]*certCall{},
	}
	if o.now != nil {
		v.now = o.now
	}
	v.certNow = v.now
	if o.certNow != nil {
		v.certNow = o.certNow
	}
	if len(o.trusted) > 0 || o.now != nil || o.certNow != nil {
		v.testOnlyLog = o.describe()
	}
	for _, t := range cfg.Topics {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		if !strings.HasPrefix(t, "arn:") {
			return nil, fmt.Errorf("sns: topic %q is not an ARN", t)
		}
		v.topics[t] = true
	}
	if len(v.topics) == 0 {
		return nil, errors.New("sns: no topic ARN allowed: set Config.Topics")
	}
	if v.timeout <= 0 {
		v.timeout = DefaultCertTimeout
	}
	if v.maxCert <= 0 {
		v.maxCert = DefaultMaxCertBytes
	}
	if v.cacheSize <= 0 {
		v.cacheSize = DefaultCertCacheSize
	}
	if v.maxAge == 0 {
		v.maxAge = DefaultMaxMessageAge
	}
	v.client = noRedirects(cfg.HTTPClient, v.timeout)
	return v, nil
}

// noRedirects copies c (or a default client) and refuses every redirect: a
// redirect would lead the fetch away from the host that was validated.
func noRedirects(c *http.Client, timeout time.Duration) *http.Client {
	var cp http.Client
	if c != nil {
		cp = *c
	}
	if cp.Timeout == 0 {
		cp.Timeout = timeout
	}
	cp.CheckRedirect = func(*http.Request, []*http.Request) error {
		return errors.New("redirects are not followed")
	}
	return &cp
}

// TopicAllowed reports whether arn is in the allowlist.
func (v *Verifier) TopicAllowed(arn string) bool { return v.topics[arn] }

// Now is the verifier's clock (the test hook may replace it).
func (v *Verifier) Now() time.Time { return v.now() }

// Verify checks m: known type, required fields, signature version, topic in
// the allowlist, SigningCertURL rules (all before any network access), then
// the certificate (fetched, cached, within its validity), the signature over
// the canonical string, and the Timestamp's age. It returns nil or a
// *VerifyError.
func (v *Verifier) Verify(ctx context.Context, m *Message) error {
	var required []string
	switch m.Type {
	case TypeNotification:
		required = []string{"MessageId", m.MessageId, "Timestamp", m.Timestamp, "TopicArn", m.TopicArn,
			"Signature", m.Signature, "SigningCertURL", m.SigningCertURL, "SignatureVersion", m.SignatureVersion}
	case TypeSubscriptionConfirmation, TypeUnsubscribeConfirmation:
		required = []string{"MessageId", m.MessageId, "Timestamp", m.Timestamp, "TopicArn", m.TopicArn,
			"Signature", m.Signature, "SigningCertURL", m.SigningCertURL, "SignatureVersion", m.SignatureVersion,
			"SubscribeURL", m.SubscribeURL, "Token", m.Token}
	default:
		return refuse(ReasonUnknownType, "message type %q is none of Notification, SubscriptionConfirmation, UnsubscribeConfirmation", trunc(m.Type, 64))
	}
	for i := 0; i < len(required); i += 2 {
		if required[i+1] == "" {
			return refuse(ReasonMissingField, "%s message without %s", m.Type, required[i])
		}
	}
	var hash crypto.Hash
	switch m.SignatureVersion {
	case "1":
		hash = crypto.SHA1
	case "2":
		hash = crypto.SHA256
	default:
		return refuse(ReasonSignatureVersion, "SignatureVersion %q is neither 1 (SHA1withRSA) nor 2 (SHA256withRSA)", trunc(m.SignatureVersion, 16))
	}
	if !v.topics[m.TopicArn] {
		return refuse(ReasonTopicNotAllowed, "topic %s is not in the allowlist", trunc(m.TopicArn, 256))
	}
	certURL, err := v.checkCertURL(m.SigningCertURL)
	if err != nil {
		return err
	}
	sig, err := base64.StdEncoding.DecodeString(m.Signature)
	if err != nil || len(sig) == 0 {
		return refuse(ReasonSignatureMalformed, "Signature is not base64")
	}
	ts, err := time.Parse(time.RFC3339, m.Timestamp)
	if err != nil {
		return refuse(ReasonTimestampInvalid, "Timestamp %q is not RFC 3339", trunc(m.Timestamp, 40))
	}
	cc, err := v.cert(ctx, certURL)
	if err != nil {
		return err
	}
	if now := v.certNow(); now.Before(cc.cert.NotBefore) {
		return refuse(ReasonCertNotYetValid, "signing certificate is valid from %s, now is %s", cc.cert.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	} else if now.After(cc.cert.NotAfter) {
		return refuse(ReasonCertExpired, "signing certificate expired %s, now is %s", cc.cert.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	s, err := StringToSign(m)
	if err != nil {
		return refuse(ReasonUnknownType, "%v", err)
	}
	var digest []byte
	if hash == crypto.SHA1 {
		d := sha1.Sum([]byte(s)) //nolint:gosec
		digest = d[:]
	} else {
		d := sha256.Sum256([]byte(s))
		digest = d[:]
	}
	if err := rsa.VerifyPKCS1v15(cc.key, hash, digest, sig); err != nil {
		return refuse(ReasonSignatureMismatch, "signature (version %s) does not match the %s message", m.SignatureVersion, m.Type)
	}
	now := v.now()
	if v.maxAge > 0 && now.Sub(ts) > v.maxAge {
		return refuse(ReasonStale, "Timestamp %s is older than %s", m.Timestamp, v.maxAge)
	}
	if ts.Sub(now) > MaxClockSkew {
		return refuse(ReasonFuture, "Timestamp %s is more than %s ahead of now (%s)", m.Timestamp, MaxClockSkew, now.UTC().Format(time.RFC3339))
	}
	return nil
}

// checkCertURL enforces the SigningCertURL rules: https, no user info, the
// default port, an SNS host of an AWS partition, a path ending in .pem, no
// query or fragment. A test-only trusted prefix replaces the scheme and host
// rules but not the .pem rule.
func (v *Verifier) checkCertURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.Host == "" {
		return nil, refuse(ReasonCertURL, "SigningCertURL %q is not an absolute URL", trunc(raw, 200))
	}
	if u.User != nil {
		return nil, refuse(ReasonCertURL, "SigningCertURL carries user info")
	}
	if !strings.HasSuffix(u.Path, ".pem") || u.RawQuery != "" || u.Fragment != "" {
		return nil, refuse(ReasonCertURL, "SigningCertURL %q does not name a .pem file", trunc(raw, 200))
	}
	if v.trustedURL(u) {
		return u, nil
	}
	if u.Scheme != "https" {
		return nil, refuse(ReasonCertURL, "SigningCertURL %q is not https", trunc(raw, 200))
	}
	if p := u.Port(); p != "" && p != "443" {
		return nil, refuse(ReasonCertURL, "SigningCertURL %q uses port %s", trunc(raw, 200), p)
	}
	if !snsHost.MatchString(u.Hostname()) {
		return nil, refuse(ReasonCertURL, "SigningCertURL host %q is not sns.<region>.amazonaws.com[.cn]", trunc(u.Hostname(), 100))
	}
	return u, nil
}

// CheckSubscribeURL validates the SubscribeURL of a verified confirmation:
// the same host rules as the certificate URL, Action=ConfirmSubscription and
// the message's own TopicArn.
func (v *Verifier) CheckSubscribeURL(m *Message) (*url.URL, error) {
	u, err := url.Parse(m.SubscribeURL)
	if err != nil || u.Opaque != "" || u.Host == "" || u.User != nil || u.Fragment != "" {
		return nil, refuse(ReasonSubscribeURL, "SubscribeURL is not an absolute URL without user info")
	}
	if !v.trustedURL(u) {
		if u.Scheme != "https" {
			return nil, refuse(ReasonSubscribeURL, "SubscribeURL is not https")
		}
		if p := u.Port(); p != "" && p != "443" {
			return nil, refuse(ReasonSubscribeURL, "SubscribeURL uses port %s", p)
		}
		if !snsHost.MatchString(u.Hostname()) {
			return nil, refuse(ReasonSubscribeURL, "SubscribeURL host %q is not sns.<region>.amazonaws.com[.cn]", trunc(u.Hostname(), 100))
		}
	}
	q := u.Query()
	if q.Get("Action") != "ConfirmSubscription" {
		return nil, refuse(ReasonSubscribeURL, "SubscribeURL action is %q, not ConfirmSubscription", trunc(q.Get("Action"), 40))
	}
	if q.Get("TopicArn") != m.TopicArn {
		return nil, refuse(ReasonSubscribeURL, "SubscribeURL names another topic than the message")
	}
	if q.Get("Token") == "" {
		return nil, refuse(ReasonSubscribeURL, "SubscribeURL has no token")
	}
	return u, nil
}

func (v *Verifier) trustedURL(u *url.URL) bool {
	for _, p := range v.trusted {
		if u.Scheme == p.Scheme && u.Host == p.Host && u.User == nil && strings.HasPrefix(u.Path, p.Path) {
			return true
		}
	}
	return false
}

// cert returns the certificate at u from the cache or fetches it; concurrent
// callers for one URL share one fetch.
func (v *Verifier) cert(ctx context.Context, u *url.URL) (*cachedCert, error) {
	key := u.String()
	v.mu.Lock()
	if c, ok := v.cache[key]; ok && time.Since(c.fetched) < certCacheTTL {
		v.mu.Unlock()
		return c, nil
	}
	if call, ok := v.inflight[key]; ok {
		v.mu.Unlock()
		select {
		case <-call.done:
			return call.c, call.err
		case <-ctx.Done():
			return nil, &VerifyError{Reason: ReasonCertUnavailable, Detail: "waiting for the signing certificate: " + ctx.Err().Error(), Temporary: true}
		}
	}
	call := &certCall{done: make(chan struct{})}
	v.inflight[key] = call
	v.mu.Unlock()

	call.c, call.err = v.fetch(ctx, key)

	v.mu.Lock()
	delete(v.inflight, key)
	if call.err == nil {
		if len(v.cache) >= v.cacheSize {
			v.evictOldest()
		}
		v.cache[key] = call.c
	}
	v.mu.Unlock()
	close(call.done)
	return call.c, call.err
}

func (v *Verifier) evictOldest() {
	var oldest string
	var t time.Time
	for k, c := range v.cache {
		if oldest == "" || c.fetched.Before(t) {
			oldest, t = k, c.fetched
		}
	}
	delete(v.cache, oldest)
}

func (v *Verifier) fetch(ctx context.Context, certURL string) (*cachedCert, error) {
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, certURL, nil)
	if err != nil {
		return nil, refuse(ReasonCertURL, "%v", err)
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, &VerifyError{Reason: ReasonCertUnavailable, Detail: fmt.Sprintf("fetching %s: %v", certURL, err), Temporary: true}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, &VerifyError{Reason: ReasonCertUnavailable, Detail: fmt.Sprintf("fetching %s: HTTP %d", certURL, resp.StatusCode), Temporary: resp.StatusCode >= 500}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, v.maxCert+1))
	if err != nil {
		return nil, &VerifyError{Reason: ReasonCertUnavailable, Detail: fmt.Sprintf("reading %s: %v", certURL, err), Temporary: true}
	}
	if int64(len(data)) > v.maxCert {
		return nil, refuse(ReasonCertInvalid, "%s is larger than %d bytes", certURL, v.maxCert)
	}
	cert, key, err := ParseSigningCert(data)
	if err != nil {
		return nil, refuse(ReasonCertInvalid, "%s: %v", certURL, err)
	}
	return &cachedCert{cert: cert, key: key, fetched: time.Now()}, nil
}

// ParseSigningCert decodes the first PEM CERTIFICATE block of data and
// returns the certificate with its RSA public key (at least 2048 bits).
func ParseSigningCert(data []byte) (*x509.Certificate, *rsa.PublicKey, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, nil, errors.New("no PEM certificate")
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("parsing the certificate: %v", err)
		}
		key, ok := cert.PublicKey.(*rsa.PublicKey)
		if !ok {
			return nil, nil, fmt.Errorf("the certificate's key is %T, not RSA", cert.PublicKey)
		}
		if key.N.BitLen() < 2048 {
			return nil, nil, fmt.Errorf("the certificate's RSA key has %d bits, fewer than 2048", key.N.BitLen())
		}
		return cert, key, nil
	}
}

// VerifyWithCert checks only the signature of m against cert (no URL, topic,
// validity or age rule). It exists for tests and tools that hold a
// certificate already, e.g. to check the canonical string of a message whose
// SigningCertURL can never pass the URL rules.
func VerifyWithCert(m *Message, cert *x509.Certificate) error {
	key, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return refuse(ReasonCertInvalid, "the certificate's key is %T, not RSA", cert.PublicKey)
	}
	var hash crypto.Hash
	var digest []byte
	s, err := StringToSign(m)
	if err != nil {
		return refuse(ReasonUnknownType, "%v", err)
	}
	switch m.SignatureVersion {
	case "1":
		d := sha1.Sum([]byte(s)) //nolint:gosec
		hash, digest = crypto.SHA1, d[:]
	case "2":
		d := sha256.Sum256([]byte(s))
		hash, digest = crypto.SHA256, d[:]
	default:
		return refuse(ReasonSignatureVersion, "SignatureVersion %q", trunc(m.SignatureVersion, 16))
	}
	sig, err := base64.StdEncoding.DecodeString(m.Signature)
	if err != nil {
		return refuse(ReasonSignatureMalformed, "Signature is not base64")
	}
	if rsa.VerifyPKCS1v15(key, hash, digest, sig) != nil {
		return refuse(ReasonSignatureMismatch, "signature does not match")
	}
	return nil
}

func trunc(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// TopicsOf returns the allowlisted topics, sorted (for logs).
func (v *Verifier) TopicsOf() []string {
	out := make([]string, 0, len(v.topics))
	for t := range v.topics {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}
