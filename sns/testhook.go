package sns

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Option changes a Verifier or Handler in ways that Config deliberately
// cannot: today only the test-only trust hook.
type Option func(*options) error

type options struct {
	trusted []*url.URL
	now     func() time.Time
	certNow func() time.Time
}

func (o options) describe() string {
	var p []string
	for _, u := range o.trusted {
		p = append(p, u.String())
	}
	return fmt.Sprintf("trusted URL prefixes %v, clock replaced: %v, certificate clock replaced: %v", p, o.now != nil, o.certNow != nil)
}

// TestTrust is what the test-only trust hook changes.
type TestTrust struct {
	// URLPrefixes are accepted as SigningCertURL and SubscribeURL prefixes in
	// addition to the SNS hosts, e.g. goaws's "http://127.0.0.1:4100/". Each
	// must be an http(s) URL on a loopback host. The .pem rule still applies.
	URLPrefixes []string
	// Now replaces the clock that checks certificate validity and message age
	// (goaws's certificate expires 5 s after it starts; AWS's corpus
	// certificates expired years ago).
	Now func() time.Time
	// CertNow replaces only the clock that checks certificate validity, so
	// that message age is still checked against Now (or the real clock):
	// goaws's certificate is valid for 5 s, its messages carry real times.
	CertNow func() time.Time
}

// InsecureTestTrust is the test-only trust hook. It takes the running test
// and refuses to work outside a test binary (testing.Testing() is false in
// every production build), so no flag, environment variable or config file
// can ever enable it.
func InsecureTestTrust(t testing.TB, tt TestTrust) Option {
	t.Helper()
	return func(o *options) error {
		if !testing.Testing() {
			return errors.New("sns: InsecureTestTrust is only available in tests")
		}
		for _, p := range tt.URLPrefixes {
			u, err := url.Parse(p)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
				return fmt.Errorf("sns: test trust prefix %q is not an http(s) URL", p)
			}
			host := u.Hostname()
			ip := net.ParseIP(host)
			if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
				return fmt.Errorf("sns: test trust prefix %q is not on a loopback host", p)
			}
			if !strings.HasSuffix(u.Path, "/") {
				u.Path += "/"
			}
			o.trusted = append(o.trusted, u)
		}
		o.now = tt.Now
		o.certNow = tt.CertNow
		t.Logf("sns: TEST-ONLY trust hook enabled: %s", o.describe())
		return nil
	}
}
