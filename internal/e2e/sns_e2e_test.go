package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	goaws "github.com/Admiral-Piett/goaws/app"
	"github.com/Admiral-Piett/goaws/app/gosns"
	"github.com/Admiral-Piett/goaws/app/servertest"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awssns "github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/simcloud"
	"github.com/cordonhq/cordon/sns"
	"github.com/cordonhq/cordon/workflows"
)

// snsRig is goaws (embedded) + Cordon's SNS endpoint (httptest) subscribed
// to one goaws topic, in front of a harness.
type snsRig struct {
	client   *awssns.Client
	topicARN string
	handler  *sns.Handler
	endpoint *httptest.Server
	emuURL   string
	logs     *syncBuf
}

var goawsOnce struct {
	sync.Mutex
	url string
}

// startGoaws starts the embedded goaws once per test binary (its state is
// global) on a fixed free port: goaws copies host:port into
// SigningCertURL and SubscribeURL.
func startGoaws(t *testing.T) string {
	goawsOnce.Lock()
	defer goawsOnce.Unlock()
	if goawsOnce.url != "" {
		return goawsOnce.url
	}
	logrus.SetLevel(logrus.WarnLevel)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	goaws.CurrentEnvironment.Region = "us-east-1"
	goaws.CurrentEnvironment.AccountID = "123456789012"
	emu, err := servertest.New(addr)
	require.NoError(t, err)
	goawsOnce.url = emu.URL()
	return goawsOnce.url
}

// newSNSRig creates the topic, the endpoint (allowlisting only that topic,
// trusting goaws's loopback certificate URL through the test-only hook) and
// the HTTP subscription, and waits until the endpoint confirmed it.
func newSNSRig(ctx context.Context, t *testing.T, h *Harness, topicName string) *snsRig {
	emuURL := startGoaws(t)
	goawsCert, _, err := sns.ParseSigningCert(gosns.PemKEY)
	require.NoError(t, err, "goaws signing certificate")
	certNotBefore := goawsCert.NotBefore
	t.Logf("goaws certificate valid %s .. %s (the endpoint's certificate clock stays inside)", goawsCert.NotBefore.Format(time.RFC3339), goawsCert.NotAfter.Format(time.RFC3339))

	r := &snsRig{emuURL: emuURL, logs: &syncBuf{}}
	r.client = awssns.New(awssns.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(emuURL),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
	topic, err := r.client.CreateTopic(ctx, &awssns.CreateTopicInput{Name: aws.String(topicName)})
	require.NoError(t, err)
	r.topicARN = aws.ToString(topic.TopicArn)
	require.Equal(t, "arn:aws:sns:us-east-1:123456789012:"+topicName, r.topicARN)

	r.handler, err = sns.NewHandler(sns.Config{
		Topics:         []string{r.topicARN},
		DefaultAccount: "123456789012", DefaultRegion: "us-east-1",
		Logger: slog.New(slog.NewJSONHandler(r.logs, nil)),
	}, sns.TemporalOpener{Client: h.Client},
		sns.InsecureTestTrust(t, sns.TestTrust{
			URLPrefixes: []string{emuURL + "/"},
			CertNow:     func() time.Time { return certNotBefore.Add(2 * time.Second) },
		}))
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("POST /sns", r.handler)
	r.endpoint = httptest.NewServer(mux)
	t.Cleanup(r.endpoint.Close)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("endpoint logs:\n%s", r.logs.String())
		}
	})

	// Subscribe: goaws delivers the SubscriptionConfirmation before answering.
	sub, err := r.client.Subscribe(ctx, &awssns.SubscribeInput{TopicArn: aws.String(r.topicARN), Protocol: aws.String("http"), Endpoint: aws.String(r.endpoint.URL + "/sns")})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(aws.ToString(sub.SubscriptionArn), r.topicARN+":"))
	require.Eventually(t, func() bool { return r.handler.Stats().Snapshot().Confirmed == 1 }, 10*time.Second, 20*time.Millisecond, "subscription confirmed")
	require.Contains(t, r.logs.String(), `"msg":"subscription confirmed"`)
	return r
}

// TestSNSEndToEnd runs the SNS endpoint against a real peer: goaws (an SNS
// emulator that signs with SignatureVersion 1 and delivers over HTTP like
// SNS), embedded in the test, with an HTTP subscription to the endpoint
// served by httptest, in front of the embedded Temporal server, a worker and
// the simulated cloud.
//
//   - Subscribe → goaws POSTs a signed SubscriptionConfirmation → the
//     endpoint verifies it and visits the SubscribeURL (the topic is
//     allowlisted) → confirmed.
//   - Publish the ElastAlert SNS body of a Packetbeat blacklist match → an
//     incident for the right instance with the right bad IP, resolved.
//   - Publish a GuardDuty finding (the EventBridge event) about a second
//     instance and a Cordon detection about a third → two more incidents,
//     resolved; text nobody understands → 200, logged, nothing started; a
//     notification with a forged signature POSTed straight to the endpoint
//     → 403.
//
// goaws serves its certificate over http on loopback, and the certificate
// expires 5 s after goaws's package initialisation: both are accepted only
// through sns.InsecureTestTrust, whose certificate clock stops inside that
// window (message timestamps are still checked against the real clock).
func TestSNSEndToEnd(t *testing.T) {
	h := New(t, simcloud.Delays{}, "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := newSNSRig(ctx, t, h, "elastalert")
	client, topicARN, handler, endpoint := r.client, r.topicARN, r.handler, r.endpoint
	emuURL := r.emuURL

	publish := func(subject, message string) {
		t.Helper()
		in := &awssns.PublishInput{TopicArn: aws.String(topicARN), Message: aws.String(message)}
		if subject != "" {
			in.Subject = aws.String(subject)
		}
		_, err := client.Publish(ctx, in)
		require.NoError(t, err)
	}
	read := func(rel string) string {
		b, err := os.ReadFile(filepath.Join(Testdata, rel))
		require.NoError(t, err)
		return string(b)
	}

	// ElastAlert's SNS alerter: the Packetbeat blacklist match.
	publish(strings.TrimSpace(read("elastalert/GENERATED_blacklist-packetbeat_sns_subject.txt")), read("elastalert/GENERATED_blacklist-packetbeat_sns_message_1match.txt"))
	web1 := workflows.IncidentID("123456789012", "us-east-1", "i-04f2ae54915567738")
	h.WaitPhase(web1, workflows.PhaseResolved, time.Minute) // or any later: resolved is final
	st, err := workflows.GetStatus(ctx, h.Client, web1)
	require.NoError(t, err)
	require.Equal(t, "2.57.232.61", st.BadIP)
	require.Equal(t, "elastalert", st.Evidence[0].Source)
	require.Equal(t, "Packetbeat destination.ip on threat blocklist", st.Evidence[0].Rule)
	require.True(t, strings.HasPrefix(st.Evidence[0].Ref, "sns:"), st.Evidence[0].Ref)

	// A GuardDuty finding (EventBridge event as the SNS message) about a
	// second instance (i-085a2fa5fa92cd19c), a Cordon detection about a third,
	// and noise.
	gd := strings.ReplaceAll(read("guardduty/GENERATED_eventbridge_guardduty-finding_MaliciousIPCaller-Custom_seed-instance.event.json"), "i-04f2ae54915567738", "i-085a2fa5fa92cd19c")
	gd = strings.ReplaceAll(gd, "10.0.1.10", "10.0.2.17")
	publish("", gd)
	publish("", read("sns/cordon-detection/GENERATED_detection_instance.json"))
	publish("ElastAlert: frequency", read("elastalert/yelp-1843_frequency_email-body.txt"))

	gdID := workflows.IncidentID("123456789012", "us-east-1", "i-085a2fa5fa92cd19c")
	detID := workflows.IncidentID("123456789012", "us-east-1", "i-0144394dc883f9fe0")
	final := h.WaitFinal([]string{web1, gdID, detID}, 2*time.Minute)
	require.Equal(t, "guardduty", final[gdID].Evidence[0].Source)
	require.Equal(t, "UnauthorizedAccess:EC2/MaliciousIPCaller.Custom", final[gdID].Evidence[0].Rule)
	require.Equal(t, "2.57.232.61", final[gdID].BadIP)
	require.Equal(t, "detector", final[detID].Evidence[0].Source)
	require.Equal(t, "1.19.6.4", final[detID].BadIP)
	for id, s := range final {
		require.Equal(t, workflows.PhaseResolved, s.Phase, "%s: %s", id, s.Reason)
	}

	// A forged, unsigned notification straight to the endpoint.
	forged, _ := json.Marshal(map[string]string{"Type": "Notification", "MessageId": "forged", "TopicArn": topicARN,
		"Message": read("sns/cordon-detection/GENERATED_detection_instance.json"), "Timestamp": time.Now().UTC().Format(time.RFC3339),
		"SignatureVersion": "1", "Signature": "Zm9yZ2Vk", "SigningCertURL": emuURL + "/SimpleNotificationService/forged.pem"})
	resp, err := http.Post(endpoint.URL+"/sns", "text/plain", bytes.NewReader(forged))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode)

	snap := handler.Stats().Snapshot()
	t.Logf("endpoint counters: %s", handler.Stats())
	require.EqualValues(t, 1, snap.Confirmed)
	require.EqualValues(t, 3, snap.Incidents)
	require.EqualValues(t, 1, snap.Ignored)
	require.EqualValues(t, 1, snap.Refused)
	require.EqualValues(t, 0, snap.Failed)
	require.EqualValues(t, snap.Received, snap.Accepted+snap.Duplicate+snap.Refused+snap.Failed)
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
