package awstest

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// APIOption is an SDK stack option (aws.Config.APIOptions, the clients'
// Options.APIOptions).
type APIOption = func(*middleware.Stack) error

// IAMPrefix maps an SDK service ID to its IAM action prefix.
var IAMPrefix = map[string]string{
	"EC2":                       "ec2",
	"Auto Scaling":              "autoscaling",
	"Elastic Load Balancing v2": "elasticloadbalancing",
	"SNS":                       "sns",
	"STS":                       "sts",
}

// Action is the IAM action of the operation running in ctx, e.g. "ec2:CreateImage".
func Action(ctx context.Context) string {
	svc := middleware.GetServiceID(ctx)
	p, ok := IAMPrefix[svc]
	if !ok {
		p = strings.ToLower(strings.ReplaceAll(svc, " ", ""))
	}
	return p + ":" + middleware.GetOperationName(ctx)
}

// Call is one SDK operation call as the caller made it.
type Call struct {
	Action string // IAM action, e.g. "ec2:CreateImage"
	Input  any    // the caller's input (*ec2.CreateImageInput, ...)
	Err    error  // the error the caller got, after the SDK's own retries
}

// Recorder records every operation call: its IAM action, the caller's input
// and the final error. It sits first in the Initialize step, so it sees the
// input before any other middleware and the error after the SDK's retries
// (a "retry quota exceeded" would show here).
type Recorder struct {
	mu    sync.Mutex
	calls []Call
}

// Option is the recorder's stack option.
func (r *Recorder) Option() APIOption {
	return func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("cordon-awstest-recorder",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleInitialize(ctx, in)
				r.mu.Lock()
				r.calls = append(r.calls, Call{Action: Action(ctx), Input: in.Parameters, Err: err})
				r.mu.Unlock()
				return out, md, err
			}), middleware.Before)
	}
}

// Calls returns the recorded calls, in order.
func (r *Recorder) Calls() []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Call(nil), r.calls...)
}

// Reset forgets the recorded calls.
func (r *Recorder) Reset() {
	r.mu.Lock()
	r.calls = nil
	r.mu.Unlock()
}

// Actions returns the distinct IAM actions called, sorted.
func (r *Recorder) Actions() []string {
	set := map[string]bool{}
	for _, c := range r.Calls() {
		set[c.Action] = true
	}
	out := make([]string, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// Of returns the calls of one IAM action.
func (r *Recorder) Of(action string) []Call {
	var out []Call
	for _, c := range r.Calls() {
		if c.Action == action {
			out = append(out, c)
		}
	}
	return out
}

// Errors returns every error a caller got.
func (r *Recorder) Errors() []error {
	var out []error
	for _, c := range r.Calls() {
		if c.Err != nil {
			out = append(out, c.Err)
		}
	}
	return out
}

// Throttle makes AWS refuse a share of calls with its throttling error,
// before they are sent: the response is a real HTTP 400 with AWS's XML error
// body (EC2: RequestLimitExceeded in the EC2 query format; the Query
// services: Throttling), handed to the SDK's own deserializer. It sits last
// in the Deserialize step, in place of the HTTP round trip, so every attempt
// of the SDK's retryer is a separate draw and the SDK classifies the error
// exactly as it would AWS's.
type Throttle struct {
	// Services are SDK service IDs to throttle; empty means EC2 only.
	Services []string

	rate     atomic.Uint64 // share in millionths
	mu       sync.Mutex
	rng      *rand.Rand
	attempts map[string]int
	injected map[string]int
}

// NewThrottle throttles rate (0..1) of the attempts, with a fixed seed.
func NewThrottle(rate float64, seed uint64, services ...string) *Throttle {
	th := &Throttle{Services: services, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		attempts: map[string]int{}, injected: map[string]int{}}
	th.SetRate(rate)
	return th
}

// SetRate changes the share of throttled attempts.
func (th *Throttle) SetRate(rate float64) { th.rate.Store(uint64(rate * 1e6)) }

func (th *Throttle) applies(svc string) bool {
	if len(th.Services) == 0 {
		return svc == "EC2"
	}
	for _, s := range th.Services {
		if s == svc {
			return true
		}
	}
	return false
}

// Option is the throttle's stack option.
func (th *Throttle) Option() APIOption {
	return func(s *middleware.Stack) error {
		return s.Deserialize.Add(middleware.DeserializeMiddlewareFunc("cordon-awstest-throttle",
			func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
				svc := middleware.GetServiceID(ctx)
				if !th.applies(svc) {
					return next.HandleDeserialize(ctx, in)
				}
				action := Action(ctx)
				th.mu.Lock()
				th.attempts[action]++
				hit := th.rng.Float64()*1e6 < float64(th.rate.Load())
				n := 0
				if hit {
					th.injected[action]++
					for _, v := range th.injected {
						n += v
					}
				}
				th.mu.Unlock()
				if !hit {
					return next.HandleDeserialize(ctx, in)
				}
				if req, ok := in.Request.(*smithyhttp.Request); ok && req.Body != nil {
					_, _ = io.Copy(io.Discard, req.Body) // as if sent
				}
				return middleware.DeserializeOutput{RawResponse: throttledResponse(svc, n)}, middleware.Metadata{}, nil
			}), middleware.After)
	}
}

func throttledResponse(svc string, n int) *smithyhttp.Response {
	reqID := fmt.Sprintf("cordon-throttle-%08d", n)
	var body string
	if svc == "EC2" {
		body = `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
			`<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>` + reqID + `</RequestID></Response>`
	} else {
		body = `<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>` + reqID + `</RequestId></ErrorResponse>`
	}
	return &smithyhttp.Response{Response: &http.Response{
		StatusCode:    http.StatusBadRequest,
		Status:        "400 Bad Request",
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"text/xml;charset=UTF-8"}, "X-Amzn-Requestid": {reqID}},
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
	}}
}

// Injected returns how many attempts were throttled, in total and per action.
func (th *Throttle) Injected() (int, map[string]int) {
	th.mu.Lock()
	defer th.mu.Unlock()
	n := 0
	m := map[string]int{}
	for k, v := range th.injected {
		n += v
		m[k] = v
	}
	return n, m
}

// Attempts returns how many attempts reached the throttle, in total and per action.
func (th *Throttle) Attempts() (int, map[string]int) {
	th.mu.Lock()
	defer th.mu.Unlock()
	n := 0
	m := map[string]int{}
	for k, v := range th.attempts {
		n += v
		m[k] = v
	}
	return n, m
}

// MotoCompat adapts requests that moto 5.2.1 cannot serve although AWS
// does, and counts each adaptation (docs/moto.md lists them):
//
//   - CreateImage with a TagSpecification for ResourceType "snapshot": moto
//     raises NotImplementedError (HTTP 500). The snapshot specification is
//     dropped before sending; the recorder, which runs first, still sees the
//     caller's request with it.
type MotoCompat struct {
	snapshotTagsDropped atomic.Int64
}

// SnapshotTagsDropped reports how many CreateImage requests lost their
// snapshot tag specification on the way to moto.
func (m *MotoCompat) SnapshotTagsDropped() int64 { return m.snapshotTagsDropped.Load() }

// Option is the adapter's stack option.
func (m *MotoCompat) Option() APIOption {
	return func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("cordon-awstest-moto-compat",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				if p, ok := in.Parameters.(*ec2.CreateImageInput); ok {
					var keep []ec2types.TagSpecification
					for _, ts := range p.TagSpecifications {
						if ts.ResourceType != ec2types.ResourceTypeSnapshot {
							keep = append(keep, ts)
						}
					}
					if len(keep) != len(p.TagSpecifications) {
						cp := *p
						cp.TagSpecifications = keep
						in.Parameters = &cp
						m.snapshotTagsDropped.Add(1)
					}
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
	}
}
