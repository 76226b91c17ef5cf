// Package simcloud is an in-memory simulated AWS cloud for Cordon: the EC2,
// Auto Scaling, Elastic Load Balancing v2 and SNS operations that Cordon uses,
// with the SDK's method signatures, so a *Cloud can stand in for the real
// clients in the worker (local demo) and in tests.
//
// It behaves like AWS wherever Cordon's workflow can tell: asynchronous state
// changes (instances pending → running, shutting-down → terminated; images
// pending → available; targets initial → healthy, draining → gone; an Auto
// Scaling group launching replacements), AWS's error codes and wording as
// *smithy.GenericAPIError wrapped in *smithy.OperationError (so callers
// classify errors with errors.As and ErrorCode exactly as with the SDK), and
// AWS's quirks that matter to containment (the instance-level Groups change
// fails on multi-ENI instances, CreateImage names are unique, RunInstances
// client tokens are idempotent, termination protection blocks
// TerminateInstances but not a group's scale-in).
//
// Time is simulated lazily: every API call (and every inspection helper)
// first applies, in time order, each pending transition whose deadline has
// passed on the Options.Now clock. With all delays zero everything settles by
// the next call; with a ManualClock, tests step through the states
// deterministically. There is no background goroutine.
package simcloud

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/smithy-go"

	"github.com/cordonhq/cordon/activities"
)

// Delays are how long the simulated cloud's asynchronous transitions take.
// The zero value makes every transition happen by the next API call.
type Delays struct {
	// InstanceStart is how long a launched instance stays pending before it
	// is running.
	InstanceStart time.Duration
	// InstanceStop is how long a terminated instance stays shutting-down
	// before it is terminated.
	InstanceStop time.Duration
	// ImageAvailable is how long CreateImage's image (and its snapshots)
	// stays pending before it is available.
	ImageAvailable time.Duration
	// Replace is how long an Auto Scaling group takes to launch an instance
	// after it lost capacity (detach without decrement, a member terminated
	// through EC2, scale-out), standing for health-check detection plus the
	// scaling activity.
	Replace time.Duration
	// TargetHealthy is how long a registered target stays initial before it
	// is healthy (its instance must be running).
	TargetHealthy time.Duration
	// TargetDraining is the target group's deregistration delay: how long a
	// deregistered target stays draining, and how long a detached group
	// member registered with a target group stays Detaching.
	TargetDraining time.Duration
}

// RealisticDelays returns delays in the range AWS shows for a small web
// instance, shortened where AWS's defaults (a 300 s deregistration delay,
// many-minute images) would only make a demo wait.
func RealisticDelays() Delays {
	return Delays{
		InstanceStart:  30 * time.Second,
		InstanceStop:   40 * time.Second,
		ImageAvailable: 3 * time.Minute,
		Replace:        45 * time.Second,
		TargetHealthy:  20 * time.Second,
		TargetDraining: 30 * time.Second,
	}
}

// Options configure New.
type Options struct {
	// Delays of the asynchronous transitions; zero means instant.
	Delays Delays
	// Now is the clock; nil means time.Now. Use a ManualClock in tests.
	Now func() time.Time
	// Seed makes generated IDs reproducible; zero means 1.
	Seed uint64
}

// Cloud is the simulated cloud. It implements activities.EC2API,
// activities.AutoScalingAPI, activities.ELBv2API, activities.SNSAPI and
// activities.CloudProvider. All state sits behind one mutex; it is safe for
// concurrent use.
type Cloud struct {
	mu     sync.Mutex
	now    func() time.Time
	delays Delays
	rng    *rand.Rand
	used   map[string]bool // every generated or declared ID
	seq    int

	account string
	region  string

	vpcs      table[*vpc]
	subnets   table[*subnet]
	secGroups table[*secGroup]
	instances table[*instance]
	enis      map[string]*instance // ENI ID → owning instance
	volumes   map[string]*instance // volume ID → owning instance
	images    table[*image]
	snapshots table[*snapshot]
	groups    table[*asGroup]

	regionsOnce  sync.Once
	regions      map[string]bool     // regions of the environment, for Clients
	targetGroups table[*targetGroup] // by ARN
	topics       table[string]
	tokens       map[string]*runToken
	published    []PublishedMessage

	faults map[string]*fault
	calls  []string
	last   time.Time // latest time the state was advanced to
}

// table is a map that remembers insertion order, so every listing is
// deterministic.
type table[T any] struct {
	m     map[string]T
	order []string
}

func (t *table[T]) put(id string, v T) {
	if t.m == nil {
		t.m = map[string]T{}
	}
	if _, ok := t.m[id]; !ok {
		t.order = append(t.order, id)
	}
	t.m[id] = v
}

func (t *table[T]) get(id string) (T, bool) {
	v, ok := t.m[id]
	return v, ok
}

func (t *table[T]) del(id string) {
	if _, ok := t.m[id]; !ok {
		return
	}
	delete(t.m, id)
	for i, o := range t.order {
		if o == id {
			t.order = append(t.order[:i:i], t.order[i+1:]...)
			break
		}
	}
}

func (t *table[T]) all() []T {
	out := make([]T, 0, len(t.order))
	for _, id := range t.order {
		out = append(out, t.m[id])
	}
	return out
}

func (t *table[T]) len() int { return len(t.order) }

// New builds a cloud holding the resources of env.
func New(env *Environment, opts Options) (*Cloud, error) {
	if env == nil {
		return nil, errors.New("simcloud: nil environment; load one with LoadEnvironment or ParseEnvironment")
	}
	seed := opts.Seed
	if seed == 0 {
		seed = 1
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	c := &Cloud{
		now:     now,
		delays:  opts.Delays,
		rng:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		used:    map[string]bool{},
		account: env.Account,
		region:  env.Region,
		enis:    map[string]*instance{},
		volumes: map[string]*instance{},
		tokens:  map[string]*runToken{},
		faults:  map[string]*fault{},
	}
	c.last = now()
	if err := c.build(env, c.last); err != nil {
		return nil, err
	}
	return c, nil
}

// Clients implements activities.CloudProvider: every account and region get
// the same cloud, since the simulated state is one global store keyed by ID.
func (c *Cloud) Clients(ctx context.Context, account, region string) (activities.Clients, error) {
	if err := ctx.Err(); err != nil {
		return activities.Clients{}, err
	}
	if account != c.account {
		return activities.Clients{}, fmt.Errorf("account %s is not in the simulated environment (its account is %s)", account, c.account)
	}
	c.regionsOnce.Do(func() {
		c.regions = map[string]bool{c.region: true}
		for _, in := range c.Instances() {
			if in.Region != "" {
				c.regions[in.Region] = true
			}
		}
	})
	if !c.regions[region] {
		return activities.Clients{}, fmt.Errorf("region %q is not in the simulated environment", region)
	}
	return activities.Clients{EC2: c, AutoScaling: c, ELBv2: c}, nil
}

// EC2 returns the cloud as an EC2 client.
func (c *Cloud) EC2() activities.EC2API { return c }

// AutoScaling returns the cloud as an Auto Scaling client.
func (c *Cloud) AutoScaling() activities.AutoScalingAPI { return c }

// ELBv2 returns the cloud as an Elastic Load Balancing v2 client.
func (c *Cloud) ELBv2() activities.ELBv2API { return c }

// SNS returns the cloud as an SNS client.
func (c *Cloud) SNS() activities.SNSAPI { return c }

// Account returns the simulated account ID.
func (c *Cloud) Account() string { return c.account }

// Region returns the environment's default region.
func (c *Cloud) Region() string { return c.region }

// ---------------------------------------------------------------------------
// Calls, faults and the operation wrapper.

type fault struct {
	err   error
	times int // < 0: until cleared
}

// InjectFault makes the next times calls of operation (an SDK operation name
// such as "CreateImage") fail with err, before they change anything. times < 0
// fails every call until ClearFaults; times == 0 removes the fault. A
// *smithy.GenericAPIError such as APIError("RequestLimitExceeded", "Request
// limit exceeded.") is returned wrapped like the SDK wraps service errors.
func (c *Cloud) InjectFault(operation string, err error, times int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if times == 0 || err == nil {
		delete(c.faults, operation)
		return
	}
	c.faults[operation] = &fault{err: err, times: times}
}

// ClearFaults removes every injected fault.
func (c *Cloud) ClearFaults() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults = map[string]*fault{}
}

// Calls returns the operation names called so far, in order, including calls
// that failed (injected faults, validation errors).
func (c *Cloud) Calls() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.calls...)
}

// Mutations returns the calls so far that can change state (every operation
// except Describe*), in order.
func (c *Cloud) Mutations() []string {
	var out []string
	for _, op := range c.Calls() {
		if !IsReadOnly(op) {
			out = append(out, op)
		}
	}
	return out
}

// IsReadOnly reports whether operation never changes state (Describe*, and
// any call made with DryRun, logged with DryRunSuffix).
func IsReadOnly(operation string) bool {
	return strings.HasPrefix(operation, "Describe") || strings.HasSuffix(operation, DryRunSuffix)
}

// DryRunSuffix marks a call made with DryRun in the call log.
const DryRunSuffix = " (dry run)"

// isDryRun reports whether an EC2 input has DryRun set.
func isDryRun(in any) bool {
	v := reflect.ValueOf(in)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return false
	}
	f := v.Elem().FieldByName("DryRun")
	if !f.IsValid() || f.Kind() != reflect.Pointer || f.IsNil() || f.Elem().Kind() != reflect.Bool {
		return false
	}
	return f.Elem().Bool()
}

// ResetCalls forgets the call log.
func (c *Cloud) ResetCalls() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = nil
}

// APIError returns the error AWS services return, as the SDK surfaces it:
// callers read it with errors.As(err, &smithy.APIError) and ErrorCode. Use it
// with InjectFault.
func APIError(code, message string) error {
	return &smithy.GenericAPIError{Code: code, Message: message, Fault: smithy.FaultClient}
}

func apiErr(code, format string, args ...any) error {
	return &smithy.GenericAPIError{Code: code, Message: fmt.Sprintf(format, args...), Fault: smithy.FaultClient}
}

// req is one required member of an operation's input and whether it is set.
type req struct {
	name string
	set  bool
}

// need mirrors the SDK's client-side validation of required members: it
// returns a smithy.InvalidParamsError (a value, as the SDK does) naming the
// missing ones, or nil.
func need(op string, reqs ...req) error {
	e := smithy.InvalidParamsError{Context: op + "Input"}
	for _, r := range reqs {
		if !r.set {
			e.Add(smithy.NewErrParamRequired(r.name))
		}
	}
	if e.Len() > 0 {
		return e
	}
	return nil
}

const (
	svcEC2   = "EC2"
	svcAS    = "Auto Scaling"
	svcELBv2 = "Elastic Load Balancing v2"
	svcSNS   = "SNS"
)

// call runs one operation: it checks the context, takes the lock, advances
// the simulated time, records the call, applies injected faults, runs f and
// wraps its error like the SDK does.
func call[I, O any](c *Cloud, ctx context.Context, svc, op string, in *I, f func(time.Time, *I) (*O, error)) (*O, error) {
	if in == nil {
		in = new(I)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return nil, &smithy.OperationError{ServiceID: svc, OperationName: op, Err: err}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.advance()
	if isDryRun(in) {
		c.calls = append(c.calls, op+DryRunSuffix)
	} else {
		c.calls = append(c.calls, op)
	}
	if fl, ok := c.faults[op]; ok {
		if fl.times > 0 {
			fl.times--
			if fl.times == 0 {
				delete(c.faults, op)
			}
		}
		return nil, &smithy.OperationError{ServiceID: svc, OperationName: op, Err: fl.err}
	}
	out, err := f(t, in)
	if err != nil {
		return nil, &smithy.OperationError{ServiceID: svc, OperationName: op, Err: err}
	}
	// Let zero-delay consequences of this call settle before the next one
	// reads the state, as the caller would see after any network round trip.
	c.advance()
	return out, nil
}

func dry(b *bool) error {
	if b != nil && *b {
		return apiErr("DryRunOperation", "Request would have succeeded, but DryRun flag is set.")
	}
	return nil
}

// ---------------------------------------------------------------------------
// IDs.

const hexDigits = "0123456789abcdef"

// newID returns prefix-<17 hex digits>, unique in this cloud.
func (c *Cloud) newID(prefix string) string {
	return c.newIDn(prefix, 17)
}

func (c *Cloud) newIDn(prefix string, n int) string {
	for {
		b := make([]byte, n)
		for i := range b {
			b[i] = hexDigits[c.rng.IntN(16)]
		}
		b[0] = '0' // AWS's 17-digit IDs start with 0

		id := prefix + "-" + string(b)
		if !c.used[id] {
			c.used[id] = true
			return id
		}
	}
}

func (c *Cloud) newUUID() string {
	h := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = hexDigits[c.rng.IntN(16)]
		}
		return string(b)
	}
	return h(8) + "-" + h(4) + "-4" + h(3) + "-a" + h(3) + "-" + h(12)
}

func (c *Cloud) nextSeq() int {
	c.seq++
	return c.seq
}

// ---------------------------------------------------------------------------
// Small helpers.

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func copyTags(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func ptr[T any](v T) *T { return &v }

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
