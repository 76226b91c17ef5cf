package sns

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cordonhq/cordon/workflows"
)

func TestStatsPrometheus(t *testing.T) {
	e := newEnv(t, nil)
	expect(t, "unsigned", func() int { c, _ := e.post([]byte(`{"badIP":"x"}`)); return c }(), http.StatusForbidden)
	reg := prometheus.NewRegistry()
	reg.MustRegister(e.h.Stats())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
		if mf.GetName() == "cordon_sns_refusals_total" && mf.GetMetric()[0].GetCounter().GetValue() != 1 {
			t.Errorf("refusals %v", mf)
		}
	}
	if got := strings.Join(names, ","); !strings.Contains(got, "cordon_sns_requests_total") || !strings.Contains(got, "cordon_sns_refusals_total") {
		t.Fatalf("metrics %s", got)
	}
}

// BenchmarkHandlerSignedNotification: verify (certificate cached) + dedup +
// parse an ElastAlert body + hand-off to a no-op opener, per request, over a
// real HTTP round trip.
func BenchmarkHandlerSignedNotification(b *testing.B) {
	now := time.Now().UTC()
	ca := newCA(b, now.Add(-time.Hour), now.Add(time.Hour))
	fs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(ca.pemData) }))
	defer fs.Close()
	h, err := NewHandler(Config{Topics: []string{testTopic}, Logger: slog.New(slog.DiscardHandler)},
		OpenerFunc(func(context.Context, workflows.QuarantineInput) error { return nil }),
		InsecureTestTrust(b, TestTrust{URLPrefixes: []string{fs.URL}, Now: fixedClock(now)}))
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	msg := string(readFile(b, "elastalert/GENERATED_blacklist-packetbeat_sns_message_1match.txt"))
	bodies := make([][]byte, b.N)
	for i := range bodies {
		m := &Message{Type: TypeNotification, MessageId: fmt.Sprintf("bench-%d", i), TopicArn: testTopic, Subject: "ElastAlert: r",
			Message: msg, Timestamp: now.Format(time.RFC3339), SigningCertURL: fs.URL + "/cert.pem"}
		bodies[i] = body(b, ca.sign(b, m, "2"))
	}
	b.ResetTimer()
	for i := range b.N {
		resp, err := http.Post(srv.URL, "text/plain", bytes.NewReader(bodies[i]))
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("HTTP %d", resp.StatusCode)
		}
	}
}
