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
// With [WithSlowCallRatio], slow calls are counted apart from failures and
// trip the breaker by their own ratio (resilience4j's
// slowCallRateThreshold).
//
// A refusal's retry hint is fixed when the call is refused: the
// [RefusalError] a caller holds never changes, whatever the breaker does
// afterwards.
//
// A [Group] keeps one breaker per key (a host, a tenant) with bounded memory.
//
// [WithPauseOnHint] makes a downstream's 429 or 503 with a retry hint pause
// the breaker for every caller until exactly the advised time
// ([StatePaused]). [WithSharedState] shares open states and pauses across a
// fleet through Redis ([NewRedisState]) without putting Redis on any call's
// path. [NewAdaptive] is the other model: client-side adaptive throttling
// after the SRE book, refusing a share of calls in proportion to how many
// the backend rejects, with no open state.
//
// Both are bulwark.Snapshotter (kind "breaker" and "breaker-group": state,
// health, counts, failure ratio, time until the next probe, and recent
// transitions with their source, automatic or manual, and reason, such as
// "failure ratio 0.62 ≥ 0.5 over 40 calls") and bulwark.Controller
// (force-open, disable, reset), for the admin page; [Breaker.HealthCheck]
// fails while a breaker is open, for health checks.
//
// Options are checked when made: a meaningless value (a ratio outside
// (0, 1], NaN, a zero or negative duration or count) panics with a message
// naming the option; huge durations such as math.MaxInt64 are valid and
// mean "never".
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
//     1 half-open, 2 open, 3 paused (forced open reports 2, disabled 0,
//     open on another instance's behalf 2), from
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
//   - bulwark.breaker.throttle.probability (gauge, 1, {bulwark.policy.name,
//     bulwark.priority}): an [Adaptive] throttle's refusal probability per
//     tier.
//   - bulwark.breaker.shared.errors (counter, {error}) and
//     bulwark.breaker.shared.transitions (counter, {transition},
//     {bulwark.to_state}): a [RedisState]'s failed round trips and the
//     changes the fleet made to this instance's breakers.
//
// bulwark.from_state and bulwark.to_state take the values closed,
// half_open, open, forced_open, disabled and paused.
package breaker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
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
	msgs  [4]string
	group bool
	log   *bulwark.EventLog // transitions and manual changes, for Snapshot

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
		log:   &bulwark.EventLog{},
	}
}

// since is the monotonic time since the core was made.
func (c *core) since() time.Duration { return time.Since(c.epoch) }

// readyToTrip is gobreaker's ReadyToTrip, run under its mutex: the slow
// call ratio (decided by the call that reported), consecutive failures, or
// the failure ratio (inclusive) over at least minCalls counted calls. It
// leaves the reason in m.tripReason for the transition it causes.
func (c *core) readyToTrip(m *machine, n gobreaker.Counts) bool {
	if r := m.slowTrip.Load(); r != nil {
		m.tripReason = *r
		return true
	}
	if c.o.consecutive > 0 && n.ConsecutiveFailures >= c.o.consecutive {
		m.tripReason = fmt.Sprintf("%d consecutive failures ≥ %d", n.ConsecutiveFailures, c.o.consecutive)
		return true
	}
	calls := n.TotalSuccesses + n.TotalFailures
	if calls >= c.o.minCalls {
		if r := float64(n.TotalFailures) / float64(calls); r >= c.o.ratio {
			m.tripReason = fmt.Sprintf("failure ratio %.2f ≥ %s over %d calls", r, fmtRatio(c.o.ratio), calls)
			return true
		}
	}
	return false
}

func fmtRatio(r float64) string { return strconv.FormatFloat(r, 'g', -1, 64) }

// satAdd is a + b for durations, saturating at math.MaxInt64 (a break of
// math.MaxInt64 is "until reset", not a time in the past).
func satAdd(a, b time.Duration) time.Duration {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

func isExcluded(err error) bool { return err == errExcluded }

// machine is one gobreaker state machine; Reset replaces it.
type machine struct {
	cb        *gobreaker.TwoStepCircuitBreaker[struct{}]
	state     atomic.Int32 // last state gobreaker reported; written under Breaker.mu
	openUntil atomic.Int64 // core.since() when the break ends (saturating)

	// With WithSlowCallRatio: slow calls in the window, and the reason of
	// a trip the slow call ratio decided (read by readyToTrip).
	slow     *ring
	slowTrip atomic.Pointer[string]

	tripReason string // guarded by gobreaker's mutex
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

	forcedErr, probesErr *RefusalError
	lastOpen             atomic.Pointer[RefusalError] // reused while its hint holds
	lastPause            atomic.Pointer[RefusalError]

	// Holds over the state machine, checked before it, as core.since()
	// times; 0 is none. Set and cleared under mu; a hold whose time passed
	// stays set until a call or a read notices it (tick), so that the
	// visible state and the members gauge change together.
	pauseUntil  atomic.Int64 // a downstream's hint (WithPauseOnHint), or the fleet's
	sharedUntil atomic.Int64 // another instance holds the breaker open (WithSharedState)
	shared      *sharedLink  // nil without WithSharedState

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
	if s := b.c.o.shared; s != nil {
		b.shared = s.link(name, b)
	}
	t := b.c.tel
	b.reg = telemetry.Register(t.meter, b, (*Breaker).observe, t.stateInst, t.callsInst, t.transInst)
	return b
}

func newBreaker(c *core, name string) *Breaker {
	b := &Breaker{c: c, name: name}
	b.forcedErr = &RefusalError{kind: refusedForced, msg: c.msgs[refusedForced]}
	b.probesErr = &RefusalError{kind: refusedProbes, msg: c.msgs[refusedProbes], hint: c.o.breakDuration}
	b.m.Store(b.newMachine())
	if c.group {
		c.tel.members[StateClosed].Add(1)
	}
	return b
}

func (b *Breaker) newMachine() *machine {
	o := &b.c.o
	m := &machine{}
	if o.slowRatio > 0 {
		m.slow = newRing(o.window, o.buckets, 1)
	}
	interval, bucket := gobreakerWindow(o.window, o.buckets)
	m.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:         b.name,
		MaxRequests:  o.probes,
		Interval:     interval,
		BucketPeriod: bucket,
		Timeout:      o.breakDuration,
		ReadyToTrip: func(n gobreaker.Counts) bool {
			return b.c.readyToTrip(m, n)
		},
		IsExcluded: isExcluded,
		OnStateChange: func(_ string, from, to gobreaker.State) {
			b.onTransition(m, from, to)
		},
	})
	return m
}

// gobreakerWindow turns a window of d in buckets into gobreaker's Interval
// and BucketPeriod without letting gobreaker's rounding up overflow: it
// rounds the window up to a whole number of buckets itself (down when up
// would pass math.MaxInt64) and hands gobreaker an interval that rounds up
// to exactly that.
func gobreakerWindow(d time.Duration, buckets int) (interval, bucket time.Duration) {
	if buckets <= 1 {
		return d, 0
	}
	bucket = d / time.Duration(buckets)
	n := d / bucket
	if d%bucket != 0 && n < math.MaxInt64/bucket {
		n++
	}
	return bucket*(n-1) + 1, bucket
}

// onTransition runs under gobreaker's mutex: it only records and enqueues.
func (b *Breaker) onTransition(m *machine, from, to gobreaker.State) {
	now := b.c.since()
	f, t := fromGobreaker(from), fromGobreaker(to)
	var reason string
	switch {
	case f == StateClosed && t == StateOpen:
		reason = m.tripReason
	case t == StateOpen:
		reason = "probe failed"
		if m.slowTrip.Load() != nil {
			reason = "probe was slow"
		}
	case t == StateHalfOpen:
		reason = "break of " + b.c.o.breakDuration.String() + " ended"
	case t == StateClosed:
		reason = strconv.Itoa(int(b.c.o.probes)) + " probes succeeded"
	}
	m.tripReason = ""
	m.slowTrip.Store(nil)
	if m.slow != nil {
		m.slow.reset()
	}
	b.mu.Lock()
	if t == StateOpen {
		m.openUntil.Store(int64(satAdd(now, b.c.o.breakDuration)))
	}
	m.state.Store(int32(t))
	if b.m.Load() == m && b.mode.Load() == modeNormal && !b.heldLocked() {
		b.transitionLocked(f, t, sourceAutomatic, reason)
	}
	b.mu.Unlock()
	if b.shared != nil && b.m.Load() == m {
		b.shared.publishState(t, b.c.o.breakDuration)
	}
}

// heldLocked reports whether a pause or the fleet holds the breaker, so
// that the machine's own transitions are not visible. b.mu is held.
func (b *Breaker) heldLocked() bool {
	return b.pauseUntil.Load() != 0 || b.sharedUntil.Load() != 0
}

// beneathLocked is the visible state under a pause: open while the fleet
// holds it open, else the machine's. b.mu is held.
func (b *Breaker) beneathLocked() State {
	if b.sharedUntil.Load() != 0 {
		return StateOpen
	}
	return State(b.m.Load().state.Load())
}

// tick ends the holds whose time has passed at now, recording the
// transitions. Call it holding no lock; it delivers nothing (callers
// notify).
func (b *Breaker) tick(now time.Duration) {
	pu, su := b.pauseUntil.Load(), b.sharedUntil.Load()
	if (pu == 0 || now < time.Duration(pu)) && (su == 0 || now < time.Duration(su)) {
		return
	}
	b.mu.Lock()
	b.tickLocked(now)
	b.mu.Unlock()
}

func (b *Breaker) tickLocked(now time.Duration) {
	normal := b.mode.Load() == modeNormal
	if pu := b.pauseUntil.Load(); pu != 0 && now >= time.Duration(pu) {
		b.pauseUntil.Store(0)
		if normal {
			b.transitionLocked(StatePaused, b.beneathLocked(), sourceAutomatic, "pause ended")
		}
	}
	if su := b.sharedUntil.Load(); su != 0 && now >= time.Duration(su) {
		b.sharedUntil.Store(0)
		if normal && b.pauseUntil.Load() == 0 {
			b.transitionLocked(StateOpen, State(b.m.Load().state.Load()), sourceAutomatic, "the fleet's open state expired")
		}
	}
}

// startPause pauses the breaker for d from now, or longer if it already
// is; a breaker forced open or disabled ignores it. It reports whether the
// pause began or was extended, and whether it began.
func (b *Breaker) startPause(d time.Duration, reason string) (changed, began bool) {
	now := b.c.since()
	until := satAdd(now, d)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.mode.Load() != modeNormal || b.dead {
		return false, false
	}
	b.tickLocked(now)
	pu := b.pauseUntil.Load()
	if int64(until) <= pu {
		return false, false
	}
	b.pauseUntil.Store(int64(until))
	if pu == 0 {
		b.transitionLocked(b.beneathLocked(), StatePaused, sourceAutomatic, reason)
	}
	return true, pu == 0
}

// pauseOn pauses the breaker when err is a downstream's refusal with a
// hint (WithPauseOnHint), and tells the fleet.
func (b *Breaker) pauseOn(err error) {
	var class string
	switch {
	case errors.Is(err, bulwark.ErrRemoteRejected):
		class = "rejected"
	case errors.Is(err, bulwark.ErrRemoteUnavailable):
		class = "unavailable"
	default:
		return
	}
	d, ok := bulwark.RetryAfter(err)
	if !ok {
		return
	}
	if changed, _ := b.startPause(d, "the downstream answered "+class+" and asked to wait "+d.String()); changed && b.shared != nil {
		b.shared.publishPause(d)
	}
}

// The bulwark.source values of events.
const (
	sourceAutomatic = "automatic"
	sourceManual    = "manual"
)

// transitionLocked records a visible change of state. b.mu is held.
func (b *Breaker) transitionLocked(from, to State, source, reason string) {
	if b.dead {
		return
	}
	if from == to {
		if source == sourceManual {
			b.record(from, to, source, reason) // an operator's action is recorded even when it changed nothing
		}
		return
	}
	b.record(from, to, source, reason)
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

// record adds an event to the log; a Group member's reason names its key.
func (b *Breaker) record(from, to State, source, reason string) {
	if b.c.group {
		if reason == "" {
			reason = "key " + strconv.Quote(b.name)
		} else {
			reason = "key " + strconv.Quote(b.name) + ": " + reason
		}
	}
	b.c.log.Add(bulwark.Event{Time: time.Now(), From: from.label(), To: to.label(), Source: source, Reason: reason})
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
	if b.pauseUntil.Load() != 0 {
		return StatePaused
	}
	if b.sharedUntil.Load() != 0 {
		return StateOpen
	}
	return State(b.m.Load().state.Load())
}

// untilProbe is what is left of an open breaker's break.
func (b *Breaker) untilProbe() time.Duration {
	if b.mode.Load() != modeNormal {
		return 0
	}
	now := b.c.since()
	if su := b.sharedUntil.Load(); su != 0 {
		return max(0, time.Duration(su)-now)
	}
	m := b.m.Load()
	if State(m.state.Load()) != StateOpen {
		return 0
	}
	return max(0, time.Duration(m.openUntil.Load())-now)
}

// pauseLeft is what is left of a pause.
func (b *Breaker) pauseLeft() time.Duration {
	pu := b.pauseUntil.Load()
	if pu == 0 || b.mode.Load() != modeNormal {
		return 0
	}
	return max(0, time.Duration(pu)-b.c.since())
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
	b.tick(b.c.since())
	s := fromGobreaker(b.m.Load().cb.State())
	switch {
	case b.pauseUntil.Load() != 0:
		s = StatePaused
	case b.sharedUntil.Load() != 0:
		s = StateOpen
	}
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
	if m.slow != nil {
		n.Slow = uint32(min(m.slow.sum(b.c.since(), 0), math.MaxUint32))
	}
	b.notify()
	return n
}

// ForceOpen refuses every call with [ErrOpen] (without a retry hint) until
// [Breaker.Reset].
func (b *Breaker) ForceOpen() {
	b.setMode(modeForced, StateForcedOpen, "")
	b.notify()
}

// Disable admits every call and keeps recording metrics, but never trips,
// until [Breaker.Reset] (resilience4j's METRICS_ONLY).
func (b *Breaker) Disable() {
	b.setMode(modeDisabled, StateDisabled, "")
	b.notify()
}

func (b *Breaker) setMode(mode int32, to State, reason string) {
	b.mu.Lock()
	from := b.visible()
	b.mode.Store(mode)
	b.transitionLocked(from, to, sourceManual, reason)
	b.mu.Unlock()
}

// Reset closes the breaker with empty counts, leaving a forced-open or
// disabled mode. Outcomes of calls admitted before it are not counted.
func (b *Breaker) Reset() {
	b.reset("")
	b.notify()
}

func (b *Breaker) reset(reason string) {
	m := b.newMachine()
	b.mu.Lock()
	from := b.visible()
	b.m.Store(m)
	b.mode.Store(modeNormal)
	b.pauseUntil.Store(0)
	b.sharedUntil.Store(0)
	b.transitionLocked(from, StateClosed, sourceManual, reason)
	b.mu.Unlock()
	if b.shared != nil {
		b.shared.publishState(StateClosed, 0) // closes the fleet's open state if this instance owns it
	}
}

// Close stops reporting the breaker's metrics and, with
// [WithSharedState], sharing its state. The breaker keeps working, on its
// local state.
func (b *Breaker) Close() error {
	b.reg.Unregister()
	if b.shared != nil {
		b.shared.unlink()
	}
	return nil
}

func (b *Breaker) observe(o metric.Observer) {
	t := b.c.tel
	o.ObserveInt64(t.stateInst, b.visible().gauge(), t.nameSet.Observe...)
	t.observeCounts(o)
}

// admit asks the mode, then gobreaker. A nil done with a nil error means
// disabled: run, count in metrics only.
func (b *Breaker) admit() (*machine, func(error), error) {
	switch b.mode.Load() {
	case modeForced:
		b.c.tel.calls.Add(outRefused, 1)
		return nil, nil, b.forcedErr
	case modeDisabled:
		return nil, nil, nil
	}
	if b.pauseUntil.Load() != 0 || b.sharedUntil.Load() != 0 {
		if err := b.held(); err != nil {
			b.c.tel.calls.Add(outRefused, 1)
			return nil, nil, err
		}
	}
	m := b.m.Load()
	done, err := m.cb.Allow()
	if err != nil {
		b.c.tel.calls.Add(outRefused, 1)
		if err == gobreaker.ErrOpenState {
			return nil, nil, b.openRefusal(m)
		}
		return nil, nil, b.probesErr
	}
	return m, done, nil
}

// held refuses a call while a pause or the fleet holds the breaker, ending
// the holds whose time has passed.
func (b *Breaker) held() error {
	now := b.c.since()
	b.tick(now)
	if pu := b.pauseUntil.Load(); pu != 0 {
		b.notify()
		return b.refusal(&b.lastPause, refusedPaused, time.Duration(pu)-now)
	}
	if su := b.sharedUntil.Load(); su != 0 {
		b.notify()
		return b.refusal(&b.lastOpen, refusedOpen, time.Duration(su)-now)
	}
	b.notify()
	return nil
}

// openRefusal is the refusal of m's open state, with the time left of its
// break.
func (b *Breaker) openRefusal(m *machine) *RefusalError {
	return b.refusal(&b.lastOpen, refusedOpen, time.Duration(m.openUntil.Load())-b.c.since())
}

// refusal returns an immutable refusal of kind with the hint left, rounded
// up to the millisecond: the last one made when its hint is the same, else
// a new one kept for the next.
func (b *Breaker) refusal(last *atomic.Pointer[RefusalError], kind refusal, left time.Duration) *RefusalError {
	hint := ceilMilli(left)
	if e := last.Load(); e != nil && e.hint == hint && e.kind == kind {
		return e
	}
	e := &RefusalError{kind: kind, msg: b.c.msgs[kind], hint: hint}
	last.Store(e)
	return e
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
	m, done, err := b.admit()
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
			b.finish(m, done, outFailure, false)
		}
	}()
	err = fn(ctx)
	returned = true
	if err != nil && b.c.o.pauseOnHint {
		b.pauseOn(err)
	}
	out, slow := b.classify(ctx, err, start)
	b.finish(m, done, out, slow)
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
	m, gb, err := b.admit()
	if err != nil {
		return nil, err
	}
	a := &admission{b: b, m: m, ctx: ctx, gb: gb}
	if b.c.o.slow > 0 {
		a.start = b.c.since()
	}
	b.notify()
	return a.done, nil
}

type admission struct {
	b     *Breaker
	m     *machine
	ctx   context.Context
	gb    func(error)
	start time.Duration
	once  atomic.Bool
}

func (a *admission) done(err error) {
	if a.once.Swap(true) {
		return
	}
	if err != nil && a.b.c.o.pauseOnHint {
		a.b.pauseOn(err)
	}
	out, slow := a.b.classify(a.ctx, err, a.start)
	a.b.finish(a.m, a.gb, out, slow)
}

// classify turns fn's result into an outcome (outSuccess, outFailure or
// outIgnored) and, with WithSlowCallRatio, whether the call was slow.
func (b *Breaker) classify(ctx context.Context, err error, start time.Duration) (int, bool) {
	out := outSuccess
	if err != nil {
		if cerr := ctx.Err(); cerr != nil && errors.Is(err, cerr) {
			cause := context.Cause(ctx)
			if !errors.Is(cause, bulwark.ErrTimeout) {
				return outIgnored, false // the caller went away
			}
			// Our own deadline, set outside the breaker (a Retrier's
			// per-attempt timeout, Chain(bulwark.Timeout(d), b)): a
			// failure, which the classifier sees as bulwark.ErrTimeout.
			err = cause
		}
		if bulwark.IsRefusal(err) {
			return outIgnored, false // an inner policy refused: nothing ran
		}
		if b.c.o.isFailure(err) {
			out = outFailure
		} else if errors.Is(err, bulwark.ErrRemoteRejected) {
			// A downstream's quota answer, slow or not: neither a
			// failure (one tenant's quota must not open the breaker for
			// everyone) nor a sign of health (a 429 probe must not close
			// it).
			return outIgnored, false
		}
	}
	if b.c.o.slow > 0 && b.c.since()-start > b.c.o.slow {
		if b.c.o.slowRatio > 0 {
			return out, true
		}
		return outFailure, false
	}
	return out, false
}

// finish reports an outcome to gobreaker (done is nil when disabled) and to
// the metrics, then delivers transitions. m is the machine that admitted
// the call.
func (b *Breaker) finish(m *machine, done func(error), out int, slow bool) {
	if done != nil {
		if slow && b.slowTrips(m) {
			out = outFailure
		}
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

// slowTrips counts a slow call in m's window and reports whether it trips
// the breaker: a slow probe reopens it; closed, the slow call ratio over at
// least minCalls counted calls (this one included) reaching
// WithSlowCallRatio opens it. The call is then reported as a failure, and
// readyToTrip, seeing m.slowTrip, trips.
func (b *Breaker) slowTrips(m *machine) bool {
	o := &b.c.o
	slow := m.slow.add(b.c.since(), 0, 1)
	switch State(m.state.Load()) {
	case StateHalfOpen:
		r := "probe was slow"
		m.slowTrip.Store(&r)
		return true
	case StateClosed:
		n := m.cb.Counts()
		calls := uint64(n.TotalSuccesses) + uint64(n.TotalFailures) + 1
		if calls < uint64(o.minCalls) {
			return false
		}
		ratio := float64(min(slow, calls)) / float64(calls)
		if ratio < o.slowRatio {
			return false
		}
		r := fmt.Sprintf("slow call ratio %.2f ≥ %s over %d calls (slower than %v)", ratio, fmtRatio(o.slowRatio), calls, o.slow)
		m.slowTrip.Store(&r)
		return true
	}
	return false
}

var (
	_ bulwark.Policy   = (*Breaker)(nil)
	_ bulwark.Admitter = (*Breaker)(nil)
)
