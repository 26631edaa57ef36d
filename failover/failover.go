package failover

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/internal/telemetry"
)

// MaxEndpoints is the most endpoints a Set takes.
const MaxEndpoints = 64

// EndpointFrom returns the endpoint a [Set] chose for the call whose
// context is ctx.
func EndpointFrom(ctx context.Context) (string, bool) { return bulwark.EndpointFrom(ctx) }

// Set is a failover set: a [bulwark.Policy] that runs each call against one
// of its endpoints, each behind its own breaker; see the package
// documentation for the model. Make one with [New]; the zero value is not
// usable. It is safe for concurrent use.
type Set struct {
	name string
	eps  []*endpoint
	o    options

	rr         atomic.Uint64
	pinned     atomic.Int32 // index, or -1
	active     atomic.Int32
	dwellUntil atomic.Int64 // unix nanoseconds: no fail-back before

	switches *telemetry.Counters // by reason
	reg      *telemetry.Registration

	mu     sync.Mutex // guards source, reason, change; and closed's setting against probes.Add
	source string
	reason string
	change time.Time
	events bulwark.EventLog

	probeCtx    context.Context
	probeCancel context.CancelFunc
	probes      sync.WaitGroup
	closed      atomic.Bool
}

type endpoint struct {
	addr      string
	name      string // the breaker's name, "<set>/<index>"
	b         *breaker.Breaker
	probing   atomic.Bool
	lastProbe atomic.Int64 // unix nanoseconds
}

// Switch reasons, the values of bulwark.reason.
const (
	reasonBreaker = iota
	reasonManual
	reasonFailback
	numReasons
)

var reasonNames = [numReasons]string{"breaker", "manual", "failback"}

// New returns a Set named name over endpoints, in order of preference. An
// endpoint is any string the transport understands; for
// bulwarkhttp.FailoverTransport, a base URL such as "https://eu.example.com".
// New panics when endpoints is empty or longer than [MaxEndpoints], or holds
// an empty or duplicate endpoint, or when an option is invalid.
func New(name string, endpoints []string, opts ...Option) *Set {
	if len(endpoints) == 0 {
		panic("failover: New: no endpoints")
	}
	if len(endpoints) > MaxEndpoints {
		panic("failover: New: more than " + strconv.Itoa(MaxEndpoints) + " endpoints")
	}
	o := buildOptions(opts)
	s := &Set{name: name, o: o}
	s.pinned.Store(-1)
	seen := map[string]bool{}
	for i, addr := range endpoints {
		if addr == "" {
			panic("failover: New: endpoint " + strconv.Itoa(i) + " is empty")
		}
		if seen[addr] {
			panic(fmt.Sprintf("failover: New: endpoint %q listed twice", addr))
		}
		seen[addr] = true
		bopts := append([]breaker.Option{breaker.WithMeterProvider(o.mp)}, o.breakerOpts...)
		bname := name + "/" + strconv.Itoa(i)
		s.eps = append(s.eps, &endpoint{addr: addr, name: bname, b: breaker.New(bname, bopts...)})
	}
	s.probeCtx, s.probeCancel = context.WithCancel(context.Background())

	m := telemetry.Meter(o.mp, "failover")
	sets := make([]telemetry.Set, numReasons)
	for i, r := range reasonNames {
		sets[i] = telemetry.NewSet(telemetry.KeyPolicyName.String(name), telemetry.KeyReason.String(r))
	}
	s.switches = telemetry.NewCounters(sets...)
	activeInst := telemetry.Int64ObservableGauge(m, "bulwark.failover.active",
		"The index of the endpoint taking traffic (the last one chosen).", "{endpoint}")
	switchInst := telemetry.Int64ObservableCounter(m, "bulwark.failover.switches",
		"Changes of the endpoint taking traffic, by reason.", "{switch}")
	nameSet := telemetry.NewSet(telemetry.KeyPolicyName.String(name))
	s.reg = telemetry.Register(m, s, func(s *Set, ob metric.Observer) {
		ob.ObserveInt64(activeInst, int64(s.active.Load()), nameSet.Observe...)
		s.switches.Observe(ob, switchInst)
	}, activeInst, switchInst)
	return s
}

// Name returns the Set's name.
func (s *Set) Name() string { return s.name }

// Endpoints returns the endpoints in order of preference.
func (s *Set) Endpoints() []string {
	out := make([]string, len(s.eps))
	for i, e := range s.eps {
		out[i] = e.addr
	}
	return out
}

// Breaker returns the breaker of endpoint i (in the order given to [New]),
// for its state and manual controls.
func (s *Set) Breaker(i int) *breaker.Breaker { return s.eps[i].b }

// Do runs fn against the endpoint chosen for this call, named in fn's
// context ([EndpointFrom]). It refuses with [ErrNoEndpoint] when every
// endpoint's breaker refuses; with [WithRetryOnNext] it runs fn again on the
// next healthy endpoint after a counted failure, unless the failure says it
// must not be replayed or the caller's context ended.
func (s *Set) Do(ctx context.Context, fn func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var tried uint64
	var lastErr error
	for {
		i, err := s.run(ctx, tried, fn)
		if i < 0 { // nothing ran: every candidate refused, or ctx ended
			if lastErr != nil && ctx.Err() == nil {
				return lastErr
			}
			return err
		}
		if err == nil || !s.o.retryOnNext {
			return err
		}
		if cerr := ctx.Err(); cerr != nil {
			// Cut short by the caller between attempts: its error, as
			// package retry returns it.
			if errors.Is(err, cerr) {
				return err
			}
			return cerr
		}
		if !worthAnother(err) {
			return err
		}
		tried |= 1 << i
		lastErr = err
		if tried == 1<<len(s.eps)-1 {
			return err
		}
	}
}

// worthAnother reports whether a failed attempt may be tried on another
// endpoint: what package retry retries by default — an unreachable or
// unavailable downstream (bulwark.ErrRemoteUnavailable), our own
// per-attempt timeout, or an error that says Retryable() == true — and
// never one that says Retryable() == false.
func worthAnother(err error) bool {
	if bulwark.IsRefusal(err) || errors.Is(err, bulwark.ErrRemoteRejected) {
		return false
	}
	if r, ok := bulwark.Retryable(err); ok {
		return r
	}
	return errors.Is(err, bulwark.ErrRemoteUnavailable) || errors.Is(err, bulwark.ErrTimeout)
}

// run runs fn once on the first candidate (not in tried) whose breaker
// admits it, returning its index, or -1 and the refusal when none did.
func (s *Set) run(ctx context.Context, tried uint64, fn func(context.Context) error) (int, error) {
	n := len(s.eps)
	if p := int(s.pinned.Load()); p >= 0 {
		if tried&(1<<p) != 0 {
			return -1, s.noEndpoint(0, false)
		}
		ran, err := s.try(ctx, p, tried != 0, fn)
		if !ran {
			if ctx.Err() != nil {
				return -1, err
			}
			// The one candidate is out: refused as when every
			// endpoint is, with its breaker's hint.
			d, ok := bulwark.RetryAfter(err)
			return -1, s.noEndpoint(d, ok)
		}
		return p, err
	}
	var hint time.Duration
	var hinted bool
	// The order of candidates: round-robin from the next turn; priority
	// order from the top, except that while the dwell lasts the endpoints
	// above the active one come last (fail-back waits; they are still a
	// last resort).
	if s.o.mode == RoundRobin {
		return s.runRoundRobin(ctx, tried, fn)
	}
	start, skipBelow := 0, 0
	if until := s.dwellUntil.Load(); until != 0 && time.Now().UnixNano() < until {
		skipBelow = int(s.active.Load())
	}
	for pass := 0; pass < 2; pass++ {
		for k := range n {
			i := (start + k) % n
			if tried&(1<<i) != 0 {
				continue
			}
			deferred := i < skipBelow
			if deferred != (pass == 1) {
				continue
			}
			ran, err := s.try(ctx, i, tried != 0, fn)
			if ran {
				return i, err
			}
			if ctx.Err() != nil {
				return -1, err
			}
			if d, ok := bulwark.RetryAfter(err); ok && (!hinted || d < hint) {
				hint, hinted = d, true
			}
		}
		if skipBelow == 0 {
			break
		}
	}
	return -1, s.noEndpoint(hint, hinted)
}

// runRoundRobin takes a turn per candidate, so an endpoint that refuses
// hands its turn on without doubling the share of its neighbour; the
// endpoints no turn reached are tried last.
func (s *Set) runRoundRobin(ctx context.Context, tried uint64, fn func(context.Context) error) (int, error) {
	n := len(s.eps)
	retry := tried != 0 // this call already ran on an endpoint
	var hint time.Duration
	var hinted bool
	refused := func(err error) {
		if d, ok := bulwark.RetryAfter(err); ok && (!hinted || d < hint) {
			hint, hinted = d, true
		}
	}
	for range n {
		i := int((s.rr.Add(1) - 1) % uint64(n))
		if tried&(1<<i) != 0 {
			continue
		}
		ran, err := s.try(ctx, i, retry, fn)
		if ran {
			return i, err
		}
		if ctx.Err() != nil {
			return -1, err
		}
		tried |= 1 << i
		refused(err)
	}
	for i := range n {
		if tried&(1<<i) != 0 {
			continue
		}
		ran, err := s.try(ctx, i, retry, fn)
		if ran {
			return i, err
		}
		if ctx.Err() != nil {
			return -1, err
		}
		refused(err)
	}
	return -1, s.noEndpoint(hint, hinted)
}

// try runs fn on endpoint i under its breaker; ran is false when the
// breaker refused.
func (s *Set) try(ctx context.Context, i int, retry bool, fn func(context.Context) error) (ran bool, err error) {
	ep := s.eps[i]
	err = ep.b.Do(ctx, func(ctx context.Context) error {
		ran = true
		s.chose(i, retry)
		return fn(bulwark.WithEndpoint(ctx, ep.addr))
	})
	if !ran {
		// Not a breaker an operator forced open: a probe could not
		// bring it back, and it would hit an endpoint under maintenance.
		if errors.Is(err, breaker.ErrOpen) && ep.b.State() == breaker.StateOpen {
			s.maybeProbe(ep)
		}
		return false, err
	}
	if err == nil && s.o.mode == PriorityOrder && s.pinned.Load() < 0 && i < int(s.active.Load()) && ep.b.State() == breaker.StateClosed {
		s.switchTo(i, reasonFailback, "automatic", "")
	}
	return true, err
}

// chose records that endpoint i takes this call. Moving down the list is a
// switch because of a breaker; moving up waits for a success on a closed
// breaker (see try), so a half-open probe does not count as fail-back.
func (s *Set) chose(i int, retry bool) {
	old := int(s.active.Load())
	switch {
	case i == old:
	case s.o.mode == RoundRobin:
		s.active.Store(int32(i))
	case s.pinned.Load() >= 0:
		// A call that chose before a pin: the pinned endpoint stays
		// the active one.
	case i > old:
		if retry && !out(s.eps[old].b.State()) {
			// A retry on the next endpoint after one failure of an
			// endpoint still in rotation: no cut-over (no dwell, no
			// switch counted). Once its breaker opens, the next call
			// that moves down is one.
			return
		}
		s.switchTo(i, reasonBreaker, "automatic", "")
	}
}

// switchTo makes i the active endpoint and records why.
func (s *Set) switchTo(i, reason int, source, why string) {
	old := s.active.Swap(int32(i))
	if int(old) == i {
		return
	}
	s.switches.Add(reason, 1)
	now := time.Now()
	if i > int(old) && s.o.minDwell > 0 {
		s.dwellUntil.Store(addSat(now.UnixNano(), s.o.minDwell))
	}
	if why == "" {
		switch reason {
		case reasonBreaker:
			why = "breaker of " + s.eps[old].name + " refused"
		case reasonFailback:
			why = "breaker of " + s.eps[i].name + " closed again"
		}
	}
	s.record(now, strconv.Itoa(int(old)), strconv.Itoa(i), source, why)
}

// addSat is t + d in unix nanoseconds, saturating at math.MaxInt64 (a
// dwell of math.MaxInt64 would otherwise wrap into the past).
func addSat(t int64, d time.Duration) int64 {
	if d > 0 && t > math.MaxInt64-int64(d) {
		return math.MaxInt64
	}
	return t + int64(d)
}

func (s *Set) record(now time.Time, from, to, source, why string) {
	s.mu.Lock()
	s.source, s.reason, s.change = source, why, now
	s.mu.Unlock()
	s.events.Add(bulwark.Event{Time: now, From: from, To: to, Source: source, Reason: why})
}

// maybeProbe starts an off-path probe of ep when one is configured, due,
// and not already running.
func (s *Set) maybeProbe(ep *endpoint) {
	if s.o.probe == nil || s.closed.Load() {
		return
	}
	now := time.Now().UnixNano()
	last := ep.lastProbe.Load()
	if last != 0 && now-last < int64(s.o.probeInterval) {
		return
	}
	// The check of closed and probes.Add happen under mu, as Close's
	// setting of closed does: no probe starts once Close has begun
	// waiting (a WaitGroup must not grow from zero during Wait).
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() || !ep.probing.CompareAndSwap(false, true) {
		return
	}
	ep.lastProbe.Store(now)
	s.probes.Add(1)
	go s.probeOnce(ep)
}

func (s *Set) probeOnce(ep *endpoint) {
	defer s.probes.Done()
	defer ep.probing.Store(false)
	if s.closed.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(s.probeCtx, s.o.probeInterval)
	defer cancel()
	if err := s.o.probe(ctx, ep.addr); err != nil {
		return
	}
	if ep.b.State() == breaker.StateOpen {
		ep.b.Reset()
		s.events.Add(bulwark.Event{Time: time.Now(), From: "open", To: "closed", Source: "automatic",
			Reason: "probe of " + ep.name + " passed"})
	}
}

// Pin sends every call to endpoint, whatever the other breakers say, until
// [Set.Unpin]; the endpoint's own breaker still refuses while it is open,
// and the Set then refuses with [ErrNoEndpoint] (with the breaker's retry
// hint), as when every endpoint is out. It returns an error for an
// endpoint not in the Set.
func (s *Set) Pin(endpoint string) error { return s.pin(endpoint, "pinned") }

func (s *Set) pin(endpoint, why string) error {
	for i, e := range s.eps {
		if e.addr == endpoint {
			s.pinned.Store(int32(i))
			old := s.active.Swap(int32(i))
			if int(old) != i {
				s.switches.Add(reasonManual, 1)
			}
			s.record(time.Now(), strconv.Itoa(int(old)), strconv.Itoa(i)+" (pinned)", "manual", why)
			return nil
		}
	}
	return fmt.Errorf("failover: %q: no endpoint %q: %w", s.name, endpoint, bulwark.ErrInvalidControl)
}

// Unpin ends a [Set.Pin]: the next call chooses by the Set's mode again.
func (s *Set) Unpin() { s.unpin("unpinned") }

func (s *Set) unpin(why string) {
	if p := s.pinned.Swap(-1); p >= 0 {
		s.switches.Add(reasonManual, 1)
		s.record(time.Now(), strconv.Itoa(int(p))+" (pinned)", "unpinned", "manual", why)
	}
}

// Status is what a Set is doing now.
type Status struct {
	// Active is the index of the endpoint taking traffic (the last one
	// chosen), Endpoint its name.
	Active   int
	Endpoint string
	// Pinned is the pinned endpoint, or "" when none is.
	Pinned string
	// Endpoints are every endpoint's breaker states, in order.
	Endpoints []EndpointStatus
}

// EndpointStatus is one endpoint of a [Status].
type EndpointStatus struct {
	Endpoint string
	Breaker  breaker.State
}

// Status returns what the Set is doing now.
func (s *Set) Status() Status {
	a := int(s.active.Load())
	st := Status{Active: a, Endpoint: s.eps[a].addr}
	if p := s.pinned.Load(); p >= 0 {
		st.Pinned = s.eps[p].addr
	}
	for _, e := range s.eps {
		st.Endpoints = append(st.Endpoints, EndpointStatus{Endpoint: e.addr, Breaker: e.b.State()})
	}
	return st
}

// HealthCheck fails while no endpoint can take a call (every breaker open),
// for a readiness check. Register it as non-critical ("warn"): a dependency
// whose every region is out should not take this instance out of rotation
// too.
func (s *Set) HealthCheck(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if p := s.pinned.Load(); p >= 0 {
		if out(s.eps[p].b.State()) {
			return fmt.Errorf("failover: %q: pinned endpoint %d is out", s.name, p)
		}
		return nil
	}
	for _, e := range s.eps {
		if !out(e.b.State()) {
			return nil
		}
	}
	return fmt.Errorf("failover: %q: every endpoint is out", s.name)
}

func out(st breaker.State) bool { return st == breaker.StateOpen || st == breaker.StateForcedOpen }

// Close stops the Set's probes (cancelling and waiting for any running) and
// its metrics callbacks, and those of its breakers. Calls after Close still
// work, without probes. Close may be called more than once.
func (s *Set) Close() error {
	s.mu.Lock()
	s.closed.Store(true)
	s.mu.Unlock()
	s.probeCancel()
	s.probes.Wait()
	s.reg.Unregister()
	for _, e := range s.eps {
		_ = e.b.Close()
	}
	return nil
}

// endpointLabel shortens an endpoint for the admin page: the host of a URL.
func endpointLabel(addr string) string {
	if u, err := url.Parse(addr); err == nil && u.Host != "" {
		return u.Host
	}
	return addr
}
