package ratelimit

import (
	"context"
	"errors"
	"time"

	"golang.org/x/time/rate"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/internal/telemetry"
)

// Limiter is a token bucket shared by every caller, on
// golang.org/x/time/rate, with tiered admission: a call may take a token
// only if the tokens left after taking it are at least the reserve of its
// tier (see [WithReserve]), so under pressure Sheddable calls are refused
// first and CriticalPlus calls last. Create one with [New].
//
// Its refusals wrap [ErrLimited] and [bulwark.ErrUnavailable] (see
// [WithClass]) and are immutable [*LimitedError] values, shared by the
// refusals of one tier in the same millisecond. Allow, AllowAt, Do and
// Admit decide at once; only Wait blocks. SetLimit and SetBurst change the
// bucket at run time.
//
// A Limiter is safe for concurrent use. The zero value is not usable.
type Limiter struct {
	tunable
	b    bucket
	n    decisionCounts // guarded by b.mu
	errs errCache
	cost func(context.Context) int
	reg  *telemetry.Registration
}

var (
	_ bulwark.Policy      = (*Limiter)(nil)
	_ bulwark.Admitter    = (*Limiter)(nil)
	_ bulwark.Snapshotter = (*Limiter)(nil)
	_ bulwark.Controller  = (*Limiter)(nil)
)

// New returns a limiter named name (reported in metrics, the RateLimit
// headers and snapshots) whose bucket holds burst tokens and refills at
// limit tokens per second, starting full. limit may be [rate.Inf] (every
// call is admitted; the burst is still the quota the headers report). New
// panics, naming the argument, when limit is NaN or not positive, or burst
// < 1.
func New(name string, limit rate.Limit, burst int, opts ...Option) *Limiter {
	mustValid("New", limit, burst)
	o := newOptions(bulwark.ErrUnavailable, opts)
	l := &Limiter{cost: o.cost}
	c := newConfig(name, limit, burst, &o)
	l.cfg.Store(c)
	l.b.init(c)
	l.b.n = &l.n
	registerLimiter(l, o.mp)
	return l
}

func mustValid(what string, limit rate.Limit, burst int) {
	if err := validLimit(what, limit); err != nil {
		panic(err.Error())
	}
	if err := validBurst(what, burst); err != nil {
		panic(err.Error())
	}
}

// Name returns the limiter's name.
func (l *Limiter) Name() string { return l.cfg.Load().name }

// Limit returns the current limit, in tokens per second.
func (l *Limiter) Limit() rate.Limit { return l.cfg.Load().limit }

// Burst returns the current burst.
func (l *Limiter) Burst() int { return l.cfg.Load().burst }

// SetLimit sets the limit from now on: SetLimitAt(time.Now(), limit).
func (l *Limiter) SetLimit(limit rate.Limit) error { return l.SetLimitAt(time.Now(), limit) }

// SetLimitAt sets the limit from t on: the bucket refills at the old limit
// until t and at the new one after. It returns an error, and changes
// nothing, when limit is NaN or not positive. It is recorded in the
// snapshot's events with source "config".
func (l *Limiter) SetLimitAt(t time.Time, limit rate.Limit) error {
	return l.set("SetLimit", t, &limit, nil, "config", "")
}

// SetBurst sets the burst from now on: SetBurstAt(time.Now(), burst).
func (l *Limiter) SetBurst(burst int) error { return l.SetBurstAt(time.Now(), burst) }

// SetBurstAt sets the burst from t on; the tokens in the bucket stay, up
// to the new burst, and the reserves are recomputed from their fractions.
// It returns an error, and changes nothing, when burst < 1.
func (l *Limiter) SetBurstAt(t time.Time, burst int) error {
	return l.set("SetBurst", t, nil, &burst, "config", "")
}

// Allow reports whether a call with ctx's priority may happen now, and
// takes its tokens if it may. It is AllowAt(ctx, time.Now()).
func (l *Limiter) Allow(ctx context.Context) bool {
	return l.AllowAt(ctx, time.Now())
}

// AllowAt reports whether a call with ctx's priority may happen at t, and
// takes its tokens if it may. Times earlier than one the limiter has
// already seen count as that one.
func (l *Limiter) AllowAt(ctx context.Context, t time.Time) bool {
	return l.decide(ctx, bulwark.CallInfoFrom(ctx), t) == nil
}

// Do runs fn if a call with ctx's priority may happen now, and otherwise
// returns a [*LimitedError] (a [*CostError] for a cost out of range) at
// once without calling fn. An ended ctx is answered with ctx.Err().
func (l *Limiter) Do(ctx context.Context, fn func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := l.decide(ctx, bulwark.CallInfoFrom(ctx), time.Now()); err != nil {
		return err
	}
	return fn(ctx)
}

// Admit decides as Do does; a rate limit holds nothing while the work
// runs, so done does nothing (and may be called any number of times).
func (l *Limiter) Admit(ctx context.Context) (done func(error), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := l.decide(ctx, bulwark.CallInfoFrom(ctx), time.Now()); err != nil {
		return nil, err
	}
	return noopDone, nil
}

// Wait blocks until a call with ctx's priority may happen, and takes its
// tokens, or until ctx ends (it then returns ctx.Err()). When ctx has a
// deadline before the earliest moment the tier could take its tokens, Wait
// returns a [*LimitedError] at once instead of waiting in vain; a cost out
// of range is refused at once with a [*CostError]. Only the outcome of a
// Wait is counted as a decision, not each try.
func (l *Limiter) Wait(ctx context.Context) error {
	info := bulwark.CallInfoFrom(ctx)
	i := info.Priority.Index()
	n := callCost(l.cost, ctx)
	if err := checkCost(l.cfg.Load(), n); err != nil {
		l.b.count(slotLimited + i)
		return err
	}
	var (
		c      *config
		tokens float64
	)
	reset, err := wait(ctx, func(t time.Time) (time.Duration, bool) {
		var ok bool
		c, tokens, ok = l.take(info, n, t, false)
		if ok {
			return 0, true
		}
		if n > c.burst {
			return -1, false // the burst was lowered meanwhile
		}
		return c.reset(i, n, tokens), false
	})
	switch err {
	case nil:
		l.b.count(slotAllowed + i)
	case errBadCost:
		l.b.count(slotLimited + i)
		return checkCost(c, n)
	case errPastDeadline:
		l.b.count(slotLimited + i)
		return l.errs.get(c, false, i, c.remaining(i, tokens), reset)
	}
	return err
}

// QuotaAt returns the quota view of tier p at t without taking a token:
// Limit is the burst, Window burst/limit, Remaining the tokens a call of
// tier p could take, Reset the time until it could take one (0 when it
// can now).
func (l *Limiter) QuotaAt(p bulwark.Priority, t time.Time) bulwark.Quota {
	c, tokens := l.b.peek(l.cfg.Load(), t)
	return c.quota(p.Index(), tokens)
}

// decide takes the tokens of ctx's call at t, counts the decision and, on
// admission, records the quota when info asks for it. It returns the
// refusal, nil on admission.
func (l *Limiter) decide(ctx context.Context, info bulwark.CallInfo, t time.Time) error {
	n := 1
	if l.cost != nil {
		n = l.cost(ctx)
		if err := checkCost(l.cfg.Load(), n); err != nil {
			l.b.count(slotLimited + info.Priority.Index())
			return err
		}
	}
	i := info.Priority.Index()
	c, tokens, ok := l.take(info, n, t, true)
	if ok {
		return nil
	}
	if n > c.burst {
		return checkCost(c, n)
	}
	return l.errs.get(c, false, i, c.remaining(i, tokens), c.reset(i, n, tokens))
}

// take takes n tokens for info's tier at t, counting the decision when
// count is true, and records the quota of an admission when info asks for
// it. It returns the config it followed and the tokens left.
func (l *Limiter) take(info bulwark.CallInfo, n int, t time.Time, count bool) (*config, float64, bool) {
	i := info.Priority.Index()
	if n == 0 {
		c := l.cfg.Load()
		if count {
			l.b.count(slotAllowed + i)
		}
		if info.Quota != nil {
			_, tokens := l.b.peek(c, t)
			info.Quota.Record(c.quota(i, tokens))
		}
		return c, 0, true
	}
	c, tokens, ok, _ := l.b.take(l.cfg.Load(), i, n, t, info.Quota != nil, count)
	if ok && info.Quota != nil {
		info.Quota.Record(c.quota(i, tokens))
	}
	return c, tokens, ok
}

// callCost is the cost of ctx's call: f(ctx), or 1 without f.
func callCost(f func(context.Context) int, ctx context.Context) int {
	if f == nil {
		return 1
	}
	return f(ctx)
}

// checkCost returns the refusal of cost n under c when no bucket can ever
// grant it, nil otherwise.
func checkCost(c *config, n int) error {
	if n < 0 || (n > c.burst && !c.inf) {
		return &CostError{Name: c.name, Cost: n, Burst: c.burst}
	}
	return nil
}

// errPastDeadline tells a Wait that the next chance lies past its
// context's deadline; errBadCost that there is none.
var (
	errPastDeadline = errors.New("ratelimit: next chance past the deadline")
	errBadCost      = errors.New("ratelimit: cost out of range")
)

// wait retries try until it admits (nil error), ctx ends (ctx.Err()), or
// the next chance lies past ctx's deadline (errPastDeadline, with the time
// until that chance). try returns the time until the next chance; a
// negative time means there is none (errBadCost).
func wait(ctx context.Context, try func(t time.Time) (time.Duration, bool)) (time.Duration, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		now := time.Now()
		reset, ok := try(now)
		if ok {
			return 0, nil
		}
		if reset < 0 {
			return reset, errBadCost
		}
		if dl, ok := ctx.Deadline(); ok && now.Add(reset).After(dl) {
			return reset, errPastDeadline
		}
		if timer == nil {
			timer = time.NewTimer(reset)
		} else {
			timer.Reset(reset)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-timer.C:
		}
	}
}
