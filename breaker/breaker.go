// Package breaker stops calling a dependency that keeps failing, and lets a
// few probes find out when it has recovered.
//
// A [Breaker] is a bulwark.Policy and bulwark.Admitter built on
// github.com/sony/gobreaker/v2's TwoStepCircuitBreaker, which is its state
// machine for both Do and Admit. Closed, it admits every call and counts
// outcomes in a rolling window; it trips open when the failure ratio reaches
// [WithFailureRatio] over at least [WithMinCalls] counted calls, or after
// [WithConsecutiveFailures] failures in a row. Open, it refuses every call
// with [ErrOpen] (carrying the time until the next probe as a
// bulwark.RetryAfter hint) for [WithBreakDuration]; then it is half-open and
// admits [WithProbes] probes, refusing others with [ErrTooManyProbes]: that
// many successes close it, one failure reopens it. An operator can force it
// open ([Breaker.ForceOpen]), disable it so that it admits everything and
// only records metrics ([Breaker.Disable]), and [Breaker.Reset] it. State
// advances lazily on calls, as in gobreaker; there are no goroutines.
//
// Outcomes follow the bulwark spec: fn's nil is a success; a failure is an
// error that is bulwark.ErrRemoteUnavailable, bulwark.ErrTimeout or
// unclassified, a panic, or a runtime.Goexit (see [WithFailure] to change
// which errors count, and [WithSlowCall] to count slow successes); a
// downstream's bulwark.ErrRemoteRejected is not counted at all, like the
// caller's own cancellation and an inner policy's refusal (one tenant's
// quota must not open the breaker for everyone, and a 429 probe proves
// nothing about health); these are reported as bulwark.outcome=ignored. A
// context ended by bulwark's own deadline (its cause is bulwark.ErrTimeout,
// as with a per-attempt timeout set outside the breaker) is a failure, not
// the caller's cancellation.
//
// A [Group] keeps one breaker per key (a host, a tenant) with bounded memory.
//
// gobreaker consults its trip rule only when a call fails, so a success that
// brings the window to the minimum number of calls with the ratio already
// met trips the breaker at the next failure, not at once.
//
// # Metrics
//
// Meter github.com/bulwark-go/bulwark/breaker:
//
//   - bulwark.breaker.state (gauge, {bulwark.policy.name}): 0 closed,
//     1 half-open, 2 open (forced open reports 2, disabled 0), from
//     construction, as of the last call (an open breaker whose break ended
//     reports open until a call lets a probe through); a Group does not
//     report it.
//   - bulwark.breaker.calls (counter, {call}, {bulwark.policy.name,
//     bulwark.outcome}): success and failure as the breaker counted them,
//     ignored for calls it did not count, refused for its refusals.
//   - bulwark.breaker.transitions (counter, {transition},
//     {bulwark.policy.name, bulwark.from_state, bulwark.to_state}).
//   - bulwark.breaker.members (up-down counter, {breaker},
//     {bulwark.policy.name, bulwark.state}): a Group's live breakers by state.
package breaker

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel/metric"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/internal/telemetry"
)

// Modes, checked before gobreaker is consulted.
const (
	modeNormal int32 = iota
	modeForced
	modeDisabled
)

// core is what a breaker shares with the other members of its Group: the
// settings, the counts behind the metrics, the clock base.
type core struct {
	name  string // the policy name, for metrics and error messages
	o     options
	tel   *meters
	epoch time.Time // monotonic base of since
	msgs  [3]string
	group bool

	rescan atomic.Bool // Group: a breaker closed or (re)opened since the last eviction scan
}

func newCore(name string, o options, group bool) *core {
	return &core{
		name:  name,
		o:     o,
		tel:   newMeters(name, o.mp, group),
		epoch: time.Now(),
		msgs:  refusalMessages(name),
		group: group,
	}
}

// since is the monotonic time since the core was made.
func (c *core) since() time.Duration { return time.Since(c.epoch) }

// readyToTrip is gobreaker's ReadyToTrip: consecutive failures, or the
// failure ratio (inclusive) over at least minCalls counted calls.
func (c *core) readyToTrip(n gobreaker.Counts) bool {
	if c.o.consecutive > 0 && n.ConsecutiveFailures >= c.o.consecutive {
		return true
	}
	calls := n.TotalSuccesses + n.TotalFailures
	return calls >= c.o.minCalls && float64(n.TotalFailures)/float64(calls) >= c.o.ratio
}

func isExcluded(err error) bool { return err == errExcluded }

// machine is one gobreaker state machine; Reset replaces it.
type machine struct {
	cb        *gobreaker.TwoStepCircuitBreaker[struct{}]
	state     atomic.Int32 // last state gobreaker reported; written under Breaker.mu
	openUntil atomic.Int64 // core.since() when the break ends
}

type transition struct{ from, to State }

// Breaker is a circuit breaker; see the package documentation for the
// model. Make one with [New]; the zero value is not usable. It is safe for
// concurrent use.
type Breaker struct {
	c    *core
	name string // given to OnStateChange (a Group member's key)

	mode atomic.Int32
	m    atomic.Pointer[machine]

	openErr, forcedErr, probesErr *RefusalError

	// mu guards mode changes, the swap of m, dead and the queue of
	// transitions. gobreaker calls onTransition holding its own mutex, which
	// then takes mu: code holding mu never calls into gobreaker.
	mu       sync.Mutex
	queue    []transition
	spare    []transition
	draining bool
	pending  atomic.Bool // queue is not empty
	dead     bool        // evicted from its Group: reports nothing more

	used atomic.Bool // Group: used since the eviction clock last passed

	reg *telemetry.Registration
}

// New returns a closed breaker named name (the bulwark.policy.name of its
// metrics). Its state gauge is reported from now on; call [Breaker.Close]
// to stop reporting before the breaker is dropped.
func New(name string, opts ...Option) *Breaker {
	b := newBreaker(newCore(name, buildOptions(opts), false), name)
	t := b.c.tel
	b.reg = telemetry.Register(t.meter, b, (*Breaker).observe, t.stateInst, t.callsInst, t.transInst)
	return b
}

func newBreaker(c *core, name string) *Breaker {
	b := &Breaker{c: c, name: name}
	b.openErr = &RefusalError{b: b, kind: refusedOpen, msg: c.msgs[refusedOpen]}
	b.forcedErr = &RefusalError{b: b, kind: refusedForced, msg: c.msgs[refusedForced]}
	b.probesErr = &RefusalError{b: b, kind: refusedProbes, msg: c.msgs[refusedProbes]}
	b.m.Store(b.newMachine())
	if c.group {
		c.tel.members[StateClosed].Add(1)
	}
	return b
}

func (b *Breaker) newMachine() *machine {
	o := &b.c.o
	m := &machine{}
	var bucket time.Duration
	if o.buckets > 1 {
		bucket = o.window / time.Duration(o.buckets)
	}
	m.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:         b.name,
		MaxRequests:  o.probes,
		Interval:     o.window,
		BucketPeriod: bucket,
		Timeout:      o.breakDuration,
		ReadyToTrip:  b.c.readyToTrip,
		IsExcluded:   isExcluded,
		OnStateChange: func(_ string, from, to gobreaker.State) {
			b.onTransition(m, from, to)
		},
	})
	return m
}

// onTransition runs under gobreaker's mutex: it only records and enqueues.
func (b *Breaker) onTransition(m *machine, from, to gobreaker.State) {
	now := b.c.since()
	f, t := fromGobreaker(from), fromGobreaker(to)
	b.mu.Lock()
	if t == StateOpen {
		m.openUntil.Store(int64(now + b.c.o.breakDuration))
	}
	m.state.Store(int32(t))
	if b.m.Load() == m && b.mode.Load() == modeNormal {
		b.transitionLocked(f, t)
	}
	b.mu.Unlock()
}

// transitionLocked records a visible change of state. b.mu is held.
func (b *Breaker) transitionLocked(from, to State) {
	if b.dead || from == to {
		return
	}
	t := b.c.tel
	t.trans.Add(int(from)*numStates+int(to), 1)
	if b.c.group {
		t.members[from].Add(-1)
		t.members[to].Add(1)
		if to == StateClosed || to == StateOpen {
			b.c.rescan.Store(true)
		}
	}
	if b.c.o.onStateChange != nil {
		b.queue = append(b.queue, transition{from, to})
		b.pending.Store(true)
	}
}

// notify delivers queued transitions, unless another goroutine already
// does. Call it holding no lock.
func (b *Breaker) notify() {
	if b.pending.Load() {
		b.drain()
	}
}

func (b *Breaker) drain() {
	b.mu.Lock()
	if b.draining {
		b.mu.Unlock()
		return
	}
	b.draining = true
	var batch []transition
	next := 0
	defer func() {
		if batch != nil { // a callback panicked: the next call delivers the rest
			b.mu.Lock()
			b.queue = append(append([]transition(nil), batch[next:]...), b.queue...)
			b.pending.Store(len(b.queue) > 0)
			b.draining = false
			b.mu.Unlock()
		}
	}()
	f := b.c.o.onStateChange
	for len(b.queue) > 0 {
		batch = b.queue
		b.queue, b.spare = b.spare[:0], nil
		b.pending.Store(false)
		b.mu.Unlock()
		for next = 0; next < len(batch); {
			t := batch[next]
			next++
			f(b.name, t.from, t.to)
		}
		b.mu.Lock()
		b.spare, batch = batch[:0], nil
	}
	b.draining = false
	b.mu.Unlock()
}

// visible is the state users see, without advancing gobreaker.
func (b *Breaker) visible() State {
	switch b.mode.Load() {
	case modeForced:
		return StateForcedOpen
	case modeDisabled:
		return StateDisabled
	}
	return State(b.m.Load().state.Load())
}

// untilProbe is what is left of an open breaker's break.
func (b *Breaker) untilProbe() time.Duration {
	if b.mode.Load() != modeNormal {
		return 0
	}
	m := b.m.Load()
	if State(m.state.Load()) != StateOpen {
		return 0
	}
	return max(0, time.Duration(m.openUntil.Load())-b.c.since())
}

// State returns the breaker's state, advancing it if its break has ended or
// its window has moved.
func (b *Breaker) State() State {
	switch b.mode.Load() {
	case modeForced:
		return StateForcedOpen
	case modeDisabled:
		return StateDisabled
	}
	s := fromGobreaker(b.m.Load().cb.State())
	b.notify()
	return s
}

// Counts returns the outcomes counted in the current window (closed) or
// since the breaker became half-open. A forced-open or disabled breaker
// keeps the counts it had when the mode was set.
func (b *Breaker) Counts() Counts {
	m := b.m.Load()
	m.cb.State() // advance the window
	n := countsFrom(m.cb.Counts())
	b.notify()
	return n
}

// ForceOpen refuses every call with [ErrOpen] (without a retry hint) until
// [Breaker.Reset].
func (b *Breaker) ForceOpen() {
	b.setMode(modeForced, StateForcedOpen)
	b.notify()
}

// Disable admits every call and keeps recording metrics, but never trips,
// until [Breaker.Reset] (resilience4j's METRICS_ONLY).
func (b *Breaker) Disable() {
	b.setMode(modeDisabled, StateDisabled)
	b.notify()
}

func (b *Breaker) setMode(mode int32, to State) {
	b.mu.Lock()
	from := b.visible()
	b.mode.Store(mode)
	b.transitionLocked(from, to)
	b.mu.Unlock()
}

// Reset closes the breaker with empty counts, leaving a forced-open or
// disabled mode. Outcomes of calls admitted before it are not counted.
func (b *Breaker) Reset() {
	b.reset()
	b.notify()
}

func (b *Breaker) reset() {
	m := b.newMachine()
	b.mu.Lock()
	from := b.visible()
	b.m.Store(m)
	b.mode.Store(modeNormal)
	b.transitionLocked(from, StateClosed)
	b.mu.Unlock()
}

// Close stops reporting the breaker's metrics. The breaker keeps working.
func (b *Breaker) Close() error {
	b.reg.Unregister()
	return nil
}

func (b *Breaker) observe(o metric.Observer) {
	t := b.c.tel
	o.ObserveInt64(t.stateInst, b.visible().gauge(), t.nameSet.Observe...)
	t.observeCounts(o)
}

// admit asks the mode, then gobreaker. A nil done with a nil error means
// disabled: run, count in metrics only.
func (b *Breaker) admit() (func(error), error) {
	switch b.mode.Load() {
	case modeForced:
		b.c.tel.calls.Add(outRefused, 1)
		return nil, b.forcedErr
	case modeDisabled:
		return nil, nil
	}
	done, err := b.m.Load().cb.Allow()
	if err != nil {
		b.c.tel.calls.Add(outRefused, 1)
		if err == gobreaker.ErrOpenState {
			return nil, b.openErr
		}
		return nil, b.probesErr
	}
	return done, nil
}

// Do runs fn if the breaker admits the call and counts its outcome; it
// returns fn's error unchanged, or an error wrapping [ErrOpen] or
// [ErrTooManyProbes] when it refused. An ended ctx is answered with
// ctx.Err() without calling fn. A panic or runtime.Goexit in fn counts as a
// failure and passes through.
func (b *Breaker) Do(ctx context.Context, fn func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		b.c.tel.calls.Add(outIgnored, 1)
		return err
	}
	done, err := b.admit()
	if err != nil {
		return err
	}
	var start time.Duration
	if b.c.o.slow > 0 {
		start = b.c.since()
	}
	returned := false
	defer func() {
		if !returned {
			b.finish(done, outFailure)
		}
	}()
	err = fn(ctx)
	returned = true
	b.finish(done, b.classify(ctx, err, start))
	return err
}

// Admit is two-step admission for work that outlives a call (a response
// body, a stream): on admission the caller must call done with the work's
// outcome; only the first call of done counts. It refuses as [Breaker.Do]
// does, with a nil done. A done that is never called holds its half-open
// probe for good (gobreaker has no probe timeout): release every admission.
func (b *Breaker) Admit(ctx context.Context) (done func(error), err error) {
	if err := ctx.Err(); err != nil {
		b.c.tel.calls.Add(outIgnored, 1)
		return nil, err
	}
	gb, err := b.admit()
	if err != nil {
		return nil, err
	}
	a := &admission{b: b, ctx: ctx, gb: gb}
	if b.c.o.slow > 0 {
		a.start = b.c.since()
	}
	b.notify()
	return a.done, nil
}

type admission struct {
	b     *Breaker
	ctx   context.Context
	gb    func(error)
	start time.Duration
	once  atomic.Bool
}

func (a *admission) done(err error) {
	if a.once.Swap(true) {
		return
	}
	a.b.finish(a.gb, a.b.classify(a.ctx, err, a.start))
}

// classify turns fn's result into an outcome: outSuccess, outFailure or
// outIgnored.
func (b *Breaker) classify(ctx context.Context, err error, start time.Duration) int {
	if err != nil {
		if cerr := ctx.Err(); cerr != nil && errors.Is(err, cerr) {
			cause := context.Cause(ctx)
			if !errors.Is(cause, bulwark.ErrTimeout) {
				return outIgnored // the caller went away
			}
			// Our own deadline, set outside the breaker (a Retrier's
			// per-attempt timeout, Chain(bulwark.Timeout(d), b)): a
			// failure, which the classifier sees as bulwark.ErrTimeout.
			err = cause
		}
		if bulwark.IsRefusal(err) {
			return outIgnored // an inner policy refused: nothing ran
		}
		if b.c.o.isFailure(err) {
			return outFailure
		}
	}
	if b.c.o.slow > 0 && b.c.since()-start > b.c.o.slow {
		return outFailure
	}
	if err != nil && errors.Is(err, bulwark.ErrRemoteRejected) {
		// A downstream's quota answer: neither a failure (one tenant's
		// quota must not open the breaker for everyone) nor a sign of
		// health (a 429 probe must not close it).
		return outIgnored
	}
	return outSuccess
}

// finish reports an outcome to gobreaker (done is nil when disabled) and to
// the metrics, then delivers transitions.
func (b *Breaker) finish(done func(error), out int) {
	if done != nil {
		switch out {
		case outSuccess:
			done(nil)
		case outFailure:
			done(errFailure)
		default:
			done(errExcluded)
		}
	}
	b.c.tel.calls.Add(out, 1)
	b.notify()
}

var (
	_ bulwark.Policy   = (*Breaker)(nil)
	_ bulwark.Admitter = (*Breaker)(nil)
)
