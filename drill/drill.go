package drill

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark"
)

// DefaultExpiry is how long an arming lasts when [Drill.Arm] is given no
// expiry (0), capped by [WithMaxExpiry].
const DefaultExpiry = 5 * time.Minute

// Drill injects faults into the calls it runs once it is armed; see the
// package documentation for the model. Make Drills with [New]; the zero
// value is not usable. A Drill is safe for concurrent use.
type Drill struct {
	name      string
	maxExpiry time.Duration
	src       rand.Source // nil: the global source
	srcMu     sync.Mutex  // guards src

	cur atomic.Pointer[armed] // nil while disarmed

	mu      sync.Mutex // serializes arming, disarming and expiry, and guards the fields below
	changed time.Time
	source  string
	reason  string
	events  bulwark.EventLog

	m *meters
}

// armed is one arming of a Drill; it is immutable once stored, except
// stop, which is closed exactly once by whoever takes it out of cur.
type armed struct {
	spec    Spec
	tiers   uint8 // bit Priority.Index() set for each selected tier; 0: any
	until   time.Time
	stop    chan struct{} // closed when this arming ends
	errInj  *InjectedError
	refusal *InjectedError
}

// New returns a disarmed Drill named name (in its metrics, on the admin
// page, and in the marker it answers to). It panics if name is empty. Nil
// options are ignored and the last of each kind wins.
func New(name string, opts ...Option) *Drill {
	if name == "" {
		panic("drill: New: name must not be empty")
	}
	o := options{maxExpiry: time.Hour}
	for _, opt := range opts {
		if opt != nil {
			opt.apply(&o)
		}
	}
	d := &Drill{name: name, maxExpiry: o.maxExpiry, src: o.src}
	newMeters(o.mp, d)
	return d
}

// Name returns the drill's name.
func (d *Drill) Name() string { return d.name }

// Arm starts injecting what spec says for expiry (0 means [DefaultExpiry],
// capped by the maximum), replacing the current arming if any. It returns
// an error wrapping [ErrInvalidSpec], and changes nothing, when the spec
// means nothing (no fault on, a probability outside [0, 1], a latency
// without delay or with Max below Min, an error fault without an error, an
// unknown tier, an empty key) or when expiry is negative or longer than
// [WithMaxExpiry]. Arm keeps its own copy of spec's slices.
func (d *Drill) Arm(spec Spec, expiry time.Duration) error {
	return d.arm(spec, expiry, "manual", "")
}

func (d *Drill) arm(spec Spec, expiry time.Duration, source, reason string) error {
	if err := spec.validate(); err != nil {
		return err
	}
	switch {
	case expiry < 0:
		return fmt.Errorf("%w: expiry must be >= 0, got %v", ErrInvalidSpec, expiry)
	case expiry > d.maxExpiry:
		return fmt.Errorf("%w: expiry %v is longer than the maximum %v", ErrInvalidSpec, expiry, d.maxExpiry)
	case expiry == 0:
		expiry = min(DefaultExpiry, d.maxExpiry)
	}
	spec = spec.clone()
	a := &armed{spec: spec, stop: make(chan struct{}), refusal: newInjected(d.name, FaultRefusal, ErrRefused)}
	if spec.Error.Err != nil {
		a.errInj = newInjected(d.name, FaultError, spec.Error.Err)
	}
	for _, p := range spec.Match.Tiers {
		a.tiers |= 1 << p.Index()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	a.until = now.Add(expiry)
	from := "disarmed"
	if old := d.cur.Swap(a); old != nil {
		close(old.stop)
		if now.Before(old.until) {
			from = "armed"
		} else { // it had expired unnoticed: say so first
			d.recordLocked(old.until, "armed", "disarmed", "automatic", "expired")
		}
	}
	d.recordLocked(now, from, "armed", source, describe(reason, spec, expiry))
	return nil
}

// describe joins an operator's reason and what was armed.
func describe(reason string, spec Spec, expiry time.Duration) string {
	what := spec.String() + "; for " + expiry.String()
	if reason == "" {
		return what
	}
	return reason + " (" + what + ")"
}

// Disarm stops the drill at once: calls waiting in an injected latency
// stop waiting and run fn. Disarming a disarmed drill does nothing.
func (d *Drill) Disarm() { d.disarm("manual", "") }

func (d *Drill) disarm(source, reason string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	old := d.cur.Swap(nil)
	if old == nil {
		return
	}
	close(old.stop)
	now := time.Now()
	if !now.Before(old.until) { // it had expired: say so
		d.recordLocked(old.until, "armed", "disarmed", "automatic", "expired")
		return
	}
	d.recordLocked(now, "armed", "disarmed", source, reason)
}

// expire ends a, found past its expiry at use.
func (d *Drill) expire(a *armed) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cur.CompareAndSwap(a, nil) {
		close(a.stop)
		d.recordLocked(a.until, "armed", "disarmed", "automatic", "expired")
	}
}

func (d *Drill) recordLocked(at time.Time, from, to, source, reason string) {
	d.changed, d.source, d.reason = at, source, reason
	d.events.Add(bulwark.Event{Time: at, From: from, To: to, Source: source, Reason: reason})
}

// Armed returns the spec of the current arming and when it expires; ok is
// false while the drill is disarmed (or its arming expired).
func (d *Drill) Armed() (spec Spec, until time.Time, ok bool) {
	a := d.live(time.Now())
	if a == nil {
		return Spec{}, time.Time{}, false
	}
	return a.spec.clone(), a.until, true
}

// live returns the current arming, ending it first when it expired by now.
func (d *Drill) live(now time.Time) *armed {
	a := d.cur.Load()
	if a != nil && !now.Before(a.until) {
		d.expire(a)
		return nil
	}
	return a
}

// Do runs fn, after injecting what the armed spec draws for this call:
// latency first (honouring ctx), then a refusal or an error returned
// instead of running fn. While the drill is disarmed, or the call does not
// match, Do runs fn as is. fn runs on the caller's goroutine; a panic or
// runtime.Goexit in fn passes through.
func (d *Drill) Do(ctx context.Context, fn func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d.cur.Load() != nil {
		if err := d.inject(ctx); err != nil {
			return err
		}
	}
	return fn(ctx)
}

// Admit is the two-step form of [Drill.Do]: it injects latency, then
// returns the injected refusal or error as its refusal, or admits. done
// does nothing (a drill holds no resource) and may be called any number of
// times.
func (d *Drill) Admit(ctx context.Context) (done func(error), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if d.cur.Load() != nil {
		if err := d.inject(ctx); err != nil {
			return nil, err
		}
	}
	return nop, nil
}

func nop(error) {}

// inject applies the current arming to one call; it returns the error the
// call must end with, or nil to run fn.
func (d *Drill) inject(ctx context.Context) error {
	// Scope first: a call out of scope is never injected, whatever the
	// expiry, so it need not read the clock.
	if a := d.cur.Load(); a == nil || !a.matches(ctx, d.name) {
		return nil
	}
	now := time.Now()
	a := d.live(now)
	if a == nil || !a.matches(ctx, d.name) { // expired, or re-armed meanwhile
		return nil
	}
	s := &a.spec
	var delay time.Duration
	if s.Latency.Probability > 0 && d.draw(s.Latency.Probability) {
		u := 0.0
		if s.Latency.Max > s.Latency.Min {
			u = d.float()
		}
		delay = s.Latency.delay(u)
	}
	refuse := s.Refusal.Probability > 0 && d.draw(s.Refusal.Probability)
	fail := s.Error.Probability > 0 && d.draw(s.Error.Probability)
	if delay > 0 {
		d.m.injected.Add(slotLatency, 1)
		if err := wait(ctx, a, min(delay, a.until.Sub(now))); err != nil {
			return err
		}
		if d.live(time.Now()) != a {
			return nil // disarmed, re-armed or expired while waiting
		}
	}
	switch {
	case refuse:
		d.m.injected.Add(slotRefusal, 1)
		return a.refusal
	case fail:
		d.m.injected.Add(slotError, 1)
		return a.errInj
	}
	return nil
}

// matches reports whether the call of ctx is in the arming's scope.
func (a *armed) matches(ctx context.Context, name string) bool {
	m := &a.spec.Match
	if m.Marked && bulwark.DrillFrom(ctx) != name {
		return false
	}
	if a.tiers != 0 || len(m.Keys) > 0 {
		info := bulwark.CallInfoFrom(ctx)
		if a.tiers != 0 && a.tiers&(1<<info.Priority.Index()) == 0 {
			return false
		}
		if len(m.Keys) > 0 && !slices.Contains(m.Keys, info.Key) {
			return false
		}
	}
	return true
}

// wait sleeps for delay, or until ctx ends (returning ctx.Err()) or the
// arming a ends (returning nil).
func wait(ctx context.Context, a *armed, delay time.Duration) error {
	if delay <= 0 {
		return nil
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-a.stop:
		return nil
	case <-ctx.Done():
	}
	return ctx.Err()
}

// draw reports true with probability p.
func (d *Drill) draw(p float64) bool {
	return p >= 1 || d.float() < p
}

// float returns a uniform draw in [0, 1) from the drill's source.
func (d *Drill) float() float64 {
	if d.src == nil {
		return rand.Float64()
	}
	d.srcMu.Lock()
	u := d.src.Uint64()
	d.srcMu.Unlock()
	return float64(u>>11) / (1 << 53)
}
