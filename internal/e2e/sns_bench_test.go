package e2e

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/cordonhq/cordon/activities"
	"github.com/cordonhq/cordon/simcloud"
	"github.com/cordonhq/cordon/sns"
	"github.com/cordonhq/cordon/workflows"
)

// The SNS benchmarks of issue 4:
//
//	go test ./internal/e2e -run '^$' -bench 'SNS' -benchtime 1x -timeout 30m
//
// Messages are signed (SignatureVersion 2) with a throw-away RSA key whose
// self-signed certificate is "served" at an SNS-shaped URL
// (https://sns.us-east-1.amazonaws.com/SimpleNotificationService-….pem) by an
// injected HTTP client (sns.Config.HTTPClient) that answers offline: the
// verifier runs its production path — no test-only trust hook, no replaced
// clock.

const (
	benchTopic   = "arn:aws:sns:us-east-1:123456789012:cordon-bench-alerts"
	benchCertURL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-cordonbench0000000000000000000000.pem"
	benchAccount = "123456789012"
	benchRegion  = "us-east-1"
)

// benchSigner is a throw-away signing key and its self-signed certificate.
type benchSigner struct {
	key     *rsa.PrivateKey
	pemData []byte
}

func newBenchSigner(b testing.TB) *benchSigner {
	b.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(b, err)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: "sns.amazonaws.com", Organization: []string{"Cordon benchmark - NOT AMAZON"}},
		NotBefore:    now.Add(-time.Hour), NotAfter: now.Add(2 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	require.NoError(b, err)
	return &benchSigner{key: k, pemData: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// body signs a Notification (SignatureVersion 2, SHA256withRSA over the
// canonical string) and renders it as SNS does.
func (s *benchSigner) body(id, message string, ts time.Time) ([]byte, error) {
	m := &sns.Message{Type: sns.TypeNotification, MessageId: id, TopicArn: benchTopic, Message: message,
		Timestamp: ts.UTC().Format("2006-01-02T15:04:05.000Z"), SignatureVersion: "2", SigningCertURL: benchCertURL,
		UnsubscribeURL: "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=" + benchTopic + ":bench"}
	str, err := sns.StringToSign(m)
	if err != nil {
		return nil, err
	}
	d := sha256.Sum256([]byte(str))
	sig, err := rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, d[:])
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]string{"Type": m.Type, "MessageId": m.MessageId, "TopicArn": m.TopicArn, "Message": m.Message,
		"Timestamp": m.Timestamp, "SignatureVersion": m.SignatureVersion, "Signature": base64.StdEncoding.EncodeToString(sig),
		"SigningCertURL": m.SigningCertURL, "UnsubscribeURL": m.UnsubscribeURL})
}

// certTransport answers the certificate URL offline and counts fetches.
type certTransport struct {
	pemData []byte
	hits    atomic.Int64
}

func (c *certTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.hits.Add(1)
	status, body := http.StatusOK, c.pemData
	if r.URL.String() != benchCertURL {
		status, body = http.StatusNotFound, []byte("<Error>NotFound</Error>")
	}
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Body: io.NopCloser(bytes.NewReader(body)), Header: http.Header{}, Request: r}, nil
}

// detection is Cordon's own detection JSON (sns.ParseDetection).
func detection(inst string, i int) string {
	b, _ := json.Marshal(map[string]any{"kind": "cordon.detection", "instanceID": inst, "account": benchAccount, "region": benchRegion,
		"badIP": "1.19.6.4", "port": 443, "rule": "spamhaus-drop", "time": time.Now().UTC().Format(time.RFC3339), "source": "detector",
		"ref": fmt.Sprintf("bench:%d", i)})
	return string(b)
}

// countingOpener counts hand-offs and the distinct incidents they name.
type countingOpener struct {
	next  sns.Opener
	opens atomic.Int64
	mu    sync.Mutex
	ids   map[string]int
}

func (o *countingOpener) Open(ctx context.Context, in workflows.QuarantineInput) error {
	err := o.next.Open(ctx, in)
	if err == nil {
		o.opens.Add(1)
		o.mu.Lock()
		o.ids[workflows.IncidentID(in.Account, in.Region, in.InstanceID)]++
		o.mu.Unlock()
	}
	return err
}

// fleet is bigFleet with simulated delays: web-asg scaled out to n servers,
// governor limits raised so they never bind (unlimited).
func fleet(b testing.TB, n int, delays simcloud.Delays, wrap func(h *Harness)) *Harness {
	env, err := simcloud.LoadEnvironment(filepath.Join(Testdata, "sim/seed.yaml"))
	require.NoError(b, err)
	for i := range env.AutoScalingGroups {
		env.AutoScalingGroups[i].Max = int32(2 * n)
	}
	h := NewWithEnv(b, env, delays, "")
	if wrap != nil {
		wrap(h)
	}
	unlimited(h)
	_, err = h.Sim.SetDesiredCapacity(context.Background(), &autoscaling.SetDesiredCapacityInput{
		AutoScalingGroupName: aws.String("web-asg"), DesiredCapacity: aws.Int32(int32(n)),
	})
	require.NoError(b, err)
	require.Eventually(b, func() bool { return len(members(b, h)) >= n }, time.Minute, 10*time.Millisecond)
	return h
}

func newBenchHandler(b testing.TB, opener sns.Opener) (*sns.Handler, *certTransport, *benchSigner) {
	signer := newBenchSigner(b)
	ct := &certTransport{pemData: signer.pemData}
	h, err := sns.NewHandler(sns.Config{
		Topics:         []string{benchTopic},
		HTTPClient:     &http.Client{Transport: ct},
		DefaultAccount: benchAccount, DefaultRegion: benchRegion,
		Logger: slog.New(slog.DiscardHandler),
	}, opener)
	require.NoError(b, err)
	return h, ct, signer
}

func pct(lat []time.Duration, q float64) time.Duration {
	s := append([]time.Duration(nil), lat...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// BenchmarkSNSAlertStorm: 10,000 signed SNS notifications (Cordon detection
// JSON) about 100 instances of one Auto Scaling group, from 24 concurrent
// clients over loopback to the endpoint (httptest) in front of the embedded
// Temporal server, worker and simulated cloud. 500 of them (5%) resend a
// MessageId already in the storm and 20 carry a broken signature. Images stay
// pending for 10 minutes so every incident is still open when its later
// alerts arrive (an alert about a closed incident would rightly open a new
// one). Governor limits are raised (unlimited) so they do not bind.
//
// Checked: exactly 100 incidents (distinct workflow IDs handed to Temporal
// and 100 QuarantineWorkflow runs in visibility); accepted + duplicate +
// refused = 10,000 with accepted 9,480, duplicate 500, refused 20 (reason
// signature-mismatch), failed 0; one certificate fetch.
func BenchmarkSNSAlertStorm(b *testing.B) {
	const (
		total     = 10_000
		instances = 100
		dups      = total / 20 // 5% resent MessageIds
		bad       = 20         // broken signatures
		clients   = 24
	)
	unique := total - dups - bad
	for range b.N {
		b.StopTimer()
		h := fleet(b, instances+5, simcloud.Delays{ImageAvailable: 10 * time.Minute}, nil)
		insts := members(b, h)[:instances]
		opener := &countingOpener{next: sns.TemporalOpener{Client: h.Client}, ids: map[string]int{}}
		handler, ct, signer := newBenchHandler(b, opener)
		srv := httptest.NewServer(handler)

		// Sign everything up front, in parallel (not timed).
		now := time.Now()
		bodies := make([][]byte, total)
		var wg sync.WaitGroup
		signErrs := make([]error, 4)
		for w := range 4 {
			wg.Go(func() {
				for i := w; i < unique+bad; i += 4 {
					inst := insts[i%instances]
					if i < unique {
						bodies[i], signErrs[w] = signer.body(fmt.Sprintf("bench-%06d", i), detection(inst, i), now)
					} else {
						// Signed, then the message is changed: signature mismatch.
						var m []byte
						m, signErrs[w] = signer.body(fmt.Sprintf("bench-bad-%03d", i), detection(inst, i), now)
						bodies[i] = bytes.Replace(m, []byte("spamhaus-drop"), []byte("spamhaus-dr0p"), 1)
					}
					if signErrs[w] != nil {
						return
					}
				}
			})
		}
		wg.Wait()
		for _, err := range signErrs {
			require.NoError(b, err)
		}
		rng := mrand.New(mrand.NewPCG(1, 2))
		for i := range dups {
			bodies[unique+bad+i] = bodies[rng.IntN(unique)]
		}
		rng.Shuffle(total, func(i, j int) { bodies[i], bodies[j] = bodies[j], bodies[i] })

		tr := &http.Transport{MaxIdleConns: clients, MaxIdleConnsPerHost: clients}
		hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
		lat := make([]time.Duration, total)
		status := make([]int, total)
		var next, retries atomic.Int64
		b.StartTimer()
		start := time.Now()
		for range clients {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= total {
						return
					}
					t0 := time.Now()
					for attempt := 0; ; attempt++ {
						resp, err := hc.Post(srv.URL, "text/plain; charset=UTF-8", bytes.NewReader(bodies[i]))
						if err != nil {
							status[i] = -1
							break
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						status[i] = resp.StatusCode
						if resp.StatusCode < 500 || attempt == 5 {
							break
						}
						retries.Add(1) // SNS retries a 5xx; so do we
						time.Sleep(100 * time.Millisecond)
					}
					lat[i] = time.Since(t0)
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		b.StopTimer()
		srv.Close()
		tr.CloseIdleConnections()

		snap := handler.Stats().Snapshot()
		b.Logf("endpoint counters: %s; cert fetches %d; HTTP retries after 5xx %d", handler.Stats(), ct.hits.Load(), retries.Load())
		byStatus := map[int]int{}
		for _, s := range status {
			byStatus[s]++
		}
		b.Logf("HTTP statuses: %v", byStatus)
		require.EqualValues(b, total, snap.Accepted+snap.Duplicate+snap.Refused, "every notification accounted for")
		require.EqualValues(b, unique, snap.Accepted)
		require.EqualValues(b, dups, snap.Duplicate)
		require.EqualValues(b, bad, snap.Refused)
		require.EqualValues(b, bad, snap.ByReason[string(sns.ReasonSignatureMismatch)])
		require.EqualValues(b, 0, snap.Failed)
		require.EqualValues(b, unique, snap.Incidents)
		require.EqualValues(b, unique, opener.opens.Load())
		require.Equal(b, total-bad, byStatus[http.StatusOK])
		require.Equal(b, bad, byStatus[http.StatusForbidden])
		require.EqualValues(b, 1, ct.hits.Load(), "one certificate fetch")
		require.Len(b, opener.ids, instances, "distinct incidents handed to Temporal")

		var runs int64
		require.Eventually(b, func() bool {
			resp, err := h.Client.CountWorkflow(context.Background(), &workflowservice.CountWorkflowExecutionsRequest{
				Query: fmt.Sprintf("WorkflowType = %q", workflows.WorkflowName)})
			if err != nil {
				return false
			}
			runs = resp.GetCount()
			return runs == instances
		}, 30*time.Second, 200*time.Millisecond, "QuarantineWorkflow runs in visibility")
		b.Logf("incidents: %d distinct workflow IDs opened, %d QuarantineWorkflow runs in visibility", len(opener.ids), runs)

		b.ReportMetric(float64(total)/elapsed.Seconds(), "notifications/s")
		b.ReportMetric(elapsed.Seconds(), "s-total")
		b.ReportMetric(ms(pct(lat, 0.50)), "ms-p50")
		b.ReportMetric(ms(pct(lat, 0.99)), "ms-p99")
		b.ReportMetric(float64(runs), "incidents")
	}
	if rss, ok := peakRSS(); ok {
		b.ReportMetric(float64(rss)/1024, "MiB-peak-rss")
	}
}

// isolationClock timestamps the first isolation call (DetachInstances or
// ModifyNetworkInterfaceAttribute) since it was armed.
type isolationClock struct {
	next  activities.CloudProvider
	mu    sync.Mutex
	armed bool
	first chan time.Time
}

func (c *isolationClock) arm() <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.armed, c.first = true, make(chan time.Time, 1)
	return c.first
}

func (c *isolationClock) hit() {
	t := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.armed {
		c.armed = false
		c.first <- t
	}
}

func (c *isolationClock) Clients(ctx context.Context, account, region string) (activities.Clients, error) {
	cl, err := c.next.Clients(ctx, account, region)
	if err != nil {
		return cl, err
	}
	cl.EC2 = isoEC2{EC2API: cl.EC2, c: c}
	cl.AutoScaling = isoASG{AutoScalingAPI: cl.AutoScaling, c: c}
	return cl, nil
}

type isoEC2 struct {
	activities.EC2API
	c *isolationClock
}

func (e isoEC2) ModifyNetworkInterfaceAttribute(ctx context.Context, in *ec2.ModifyNetworkInterfaceAttributeInput, optFns ...func(*ec2.Options)) (*ec2.ModifyNetworkInterfaceAttributeOutput, error) {
	e.c.hit()
	return e.EC2API.ModifyNetworkInterfaceAttribute(ctx, in, optFns...)
}

type isoASG struct {
	activities.AutoScalingAPI
	c *isolationClock
}

func (a isoASG) DetachInstances(ctx context.Context, in *autoscaling.DetachInstancesInput, optFns ...func(*autoscaling.Options)) (*autoscaling.DetachInstancesOutput, error) {
	a.c.hit()
	return a.AutoScalingAPI.DetachInstances(ctx, in, optFns...)
}

const floorQueue = "cordon-bench-floor"

// BenchmarkSNSToFirstIsolation: for N fresh instances, one after another,
// the time from the signed POST being received by the endpoint to the first
// isolation call in the simulated cloud; each incident is then run to its
// end before the next. In the same run, the bare Temporal floor: a trivial
// workflow on its own task queue and worker (same client) started by
// SignalWithStart, time until its one no-op activity starts.
func BenchmarkSNSToFirstIsolation(b *testing.B) {
	const n = 30
	for range b.N {
		b.StopTimer()
		iso := &isolationClock{}
		h := fleet(b, n+5, simcloud.Delays{}, func(h *Harness) {
			iso.next = h.Acts.Cloud
			h.Acts.Cloud = iso
		})
		handler, _, signer := newBenchHandler(b, sns.TemporalOpener{Client: h.Client})
		var received atomic.Value
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			received.Store(time.Now())
			handler.ServeHTTP(w, r)
		}))
		defer srv.Close()

		// The floor: a workflow that runs one no-op activity.
		started := make(chan time.Time, 1)
		fw := worker.New(h.Client, floorQueue, worker.Options{})
		fw.RegisterWorkflowWithOptions(func(ctx workflow.Context) error {
			ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
			return workflow.ExecuteActivity(ctx, "BenchNoop").Get(ctx, nil)
		}, workflow.RegisterOptions{Name: "BenchFloor"})
		fw.RegisterActivityWithOptions(func(ctx context.Context) error {
			if activity.GetInfo(ctx).Attempt == 1 {
				started <- time.Now()
			}
			return nil
		}, activity.RegisterOptions{Name: "BenchNoop"})
		require.NoError(b, fw.Start())
		defer fw.Stop()

		ctx := context.Background()
		var snsLat, floorLat []time.Duration
		used := map[string]bool{}
		b.StartTimer()
		for i := range n + 1 { // the first of each is a warm-up, not counted
			// SNS → first isolation call.
			var inst string
			for _, m := range members(b, h) {
				if !used[m] {
					inst = m
					break
				}
			}
			require.NotEmpty(b, inst, "no fresh instance left")
			used[inst] = true
			body, err := signer.body(fmt.Sprintf("iso-%03d", i), detection(inst, i), time.Now())
			require.NoError(b, err)
			first := iso.arm()
			resp, err := http.Post(srv.URL, "text/plain; charset=UTF-8", bytes.NewReader(body))
			require.NoError(b, err)
			resp.Body.Close()
			require.Equal(b, http.StatusOK, resp.StatusCode)
			var t1 time.Time
			select {
			case t1 = <-first:
			case <-time.After(time.Minute):
				b.Fatalf("no isolation call for %s", inst)
			}
			if i > 0 {
				snsLat = append(snsLat, t1.Sub(received.Load().(time.Time)))
			}
			id := workflows.IncidentID(benchAccount, benchRegion, inst)
			st := h.WaitFinal([]string{id}, 2*time.Minute)[id]
			require.Equal(b, workflows.OutcomeResolved, st.Outcome, st.Reason)

			// Floor: SignalWithStart → no-op activity starts.
			t0 := time.Now()
			run, err := h.Client.SignalWithStartWorkflow(ctx, fmt.Sprintf("bench-floor-%03d", i), "poke", i,
				client.StartWorkflowOptions{TaskQueue: floorQueue}, "BenchFloor")
			require.NoError(b, err)
			var t2 time.Time
			select {
			case t2 = <-started:
			case <-time.After(time.Minute):
				b.Fatal("the floor activity never started")
			}
			require.NoError(b, run.Get(ctx, nil))
			if i > 0 {
				floorLat = append(floorLat, t2.Sub(t0))
			}
		}
		b.StopTimer()
		b.Logf("SNS POST → first isolation call (n=%d): p50 %v p99 %v max %v", len(snsLat), pct(snsLat, .5), pct(snsLat, .99), pct(snsLat, 1))
		b.Logf("SignalWithStart → no-op activity starts (n=%d): p50 %v p99 %v max %v", len(floorLat), pct(floorLat, .5), pct(floorLat, .99), pct(floorLat, 1))
		b.ReportMetric(ms(pct(snsLat, 0.50)), "ms-sns-isolate-p50")
		b.ReportMetric(ms(pct(snsLat, 0.99)), "ms-sns-isolate-p99")
		b.ReportMetric(ms(pct(floorLat, 0.50)), "ms-floor-p50")
		b.ReportMetric(ms(pct(floorLat, 0.99)), "ms-floor-p99")
	}
}
