package sns

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const testdata = "../testdata"

func readFile(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdata, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readMsg(t testing.TB, rel string) *Message {
	t.Helper()
	m, err := ParseMessage(readFile(t, rel))
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return m
}

// pemTransport serves certificates by URL, offline: the corpus certificate
// of each SigningCertURL. Unknown URLs are 404, like SNS's certificate host.
type pemTransport struct {
	mu    sync.Mutex
	certs map[string][]byte
	hits  atomic.Int64
}

func (p *pemTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	p.hits.Add(1)
	p.mu.Lock()
	b, ok := p.certs[r.URL.String()]
	p.mu.Unlock()
	status := http.StatusOK
	if !ok {
		status, b = http.StatusNotFound, []byte("<Error>NotFound</Error>")
	}
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Body: io.NopCloser(bytes.NewReader(b)), Header: http.Header{}, Request: r}, nil
}

// testCA is a self-made signing key and certificate.
type testCA struct {
	key     *rsa.PrivateKey
	cert    *x509.Certificate
	pemData []byte
}

var (
	keyOnce sync.Once
	key2048 *rsa.PrivateKey
)

func sharedKey(t testing.TB) *rsa.PrivateKey {
	keyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		key2048 = k
	})
	return key2048
}

func newCA(t testing.TB, notBefore, notAfter time.Time) *testCA {
	t.Helper()
	return newCAWithKey(t, sharedKey(t), notBefore, notAfter)
}

func newCAWithKey(t testing.TB, key *rsa.PrivateKey, notBefore, notAfter time.Time) *testCA {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "sns.amazonaws.com", Organization: []string{"Cordon test CA - NOT AMAZON"}},
		NotBefore:    notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{key: key, cert: cert, pemData: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// sign signs m with version "1" or "2" (m.SignatureVersion is set).
func (ca *testCA) sign(t testing.TB, m *Message, version string) *Message {
	t.Helper()
	m.SignatureVersion = version
	s, err := StringToSign(m)
	if err != nil {
		t.Fatal(err)
	}
	var sig []byte
	if version == "1" {
		d := sha1.Sum([]byte(s)) //nolint:gosec
		sig, err = rsa.SignPKCS1v15(rand.Reader, ca.key, crypto.SHA1, d[:])
	} else {
		d := sha256.Sum256([]byte(s))
		sig, err = rsa.SignPKCS1v15(rand.Reader, ca.key, crypto.SHA256, d[:])
	}
	if err != nil {
		t.Fatal(err)
	}
	m.Signature = base64.StdEncoding.EncodeToString(sig)
	return m
}

// body renders m as SNS does (HTTP key spellings, Subject only when set).
func body(t testing.TB, m *Message) []byte {
	t.Helper()
	o := map[string]any{"Type": m.Type, "MessageId": m.MessageId, "TopicArn": m.TopicArn, "Message": m.Message,
		"Timestamp": m.Timestamp, "SignatureVersion": m.SignatureVersion, "Signature": m.Signature, "SigningCertURL": m.SigningCertURL}
	if m.Subject != "" {
		o["Subject"] = m.Subject
	}
	if m.Type == TypeNotification {
		o["UnsubscribeURL"] = m.UnsubscribeURL
	} else {
		o["Token"] = m.Token
		o["SubscribeURL"] = m.SubscribeURL
	}
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}
