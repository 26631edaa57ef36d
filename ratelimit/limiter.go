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
// [WithClass]) and allocate nothing (see [LimitedError]). Allow, AllowAt,
// Do and Admit decide at once; only Wait blocks.
//
// A Limiter is safe for concurrent use. The zero value is not usable.
type Limiter struct {
	c   config
	s   shared
	n   decisionCounts // guarded by s.b.mu
	reg *telemetry.Registration
}

var (
	_ bulwark.Policy   = (*Limiter)(nil)
	_ bulwark.Admitter = (*Limiter)(nil)
)

// New returns a limiter named name (reported in metrics and the RateLimit
// headers) whose bucket holds burst tokens and refills at limit tokens per
// second, starting full. limit may be [rate.Inf] (every call is admitted).
// New panics when limit is not positive or burst < 1.
func New(name string, limit rate.Limit, burst int, opts ...Option) *Limiter {
	o := newOptions(bulwark.ErrUnavailable, opts)
	l := &Limiter{c: newConfig(name, limit, burst, &o)}
	l.s.init(&l.c)
	l.s.b.n = &l.n
	registerLimiter(l, o.mp)
	return l
}

// Allow reports whether a call with ctx's priority may happen now, and
// takes a token if it may. It is AllowAt(ctx, time.Now()).
func (l *Limiter) Allow(ctx context.Context) bool {
	_, ok := l.decide(bulwark.CallInfoFrom(ctx), time.Now())
	return ok
}

// AllowAt reports whether a call with ctx's priority may happen at t, and
// takes a token if it may. Times earlier than one the limiter has already
// seen count as that one.
func (l *Limiter) AllowAt(ctx context.Context, t time.Time) bool {
	_, ok := l.decide(bulwark.CallInfoFrom(ctx), t)
	return ok
}

// Do runs fn if a call with ctx's priority may happen now, and otherwise
// returns a [*LimitedError] at once without calling fn. An ended ctx is
// answered with ctx.Err().
func (l *Limiter) Do(ctx context.Context, fn func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	info := bulwark.CallInfoFrom(ctx)
	if reset, ok := l.decide(info, time.Now()); !ok {
		return l.s.errs[info.Priority.Index()].set(reset)
	}
	return fn(ctx)
}

// Admit decides as Do does; a rate limit holds nothing while the work
// runs, so done does nothing (and may be called any number of times).
func (l *Limiter) Admit(ctx context.Context) (done func(error), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	info := bulwark.CallInfoFrom(ctx)
	if reset, ok := l.decide(info, time.Now()); !ok {
		return nil, l.s.errs[info.Priority.Index()].set(reset)
	}
	return noopDone, nil
}

// Wait blocks until a call with ctx's priority may happen, and takes a
// token for it, or until ctx ends (it then returns ctx.Err()). When ctx has
// a deadline before the earliest moment the tier could take a token, Wait
// returns a [*LimitedError] at once instead of waiting in vain. Only the
// outcome of a Wait is counted as a decision, not each try.
func (l *Limiter) Wait(ctx context.Context) error {
	info := bulwark.CallInfoFrom(ctx)
	i := info.Priority.Index()
	reset, err := wait(ctx, func(t time.Time) (time.Duration, bool) { return l.take(info, t, false) })
	switch err {
	case nil:
		l.s.b.count(slotAllowed + i)
	case errPastDeadline:
		l.s.b.count(slotLimited + i)
		return l.s.errs[i].set(reset)
	}
	return err
}

// QuotaAt returns the quota view of tier p at t without taking a token:
// Limit is the burst, Window burst/limit, Remaining the tokens a call of
// tier p could take, Reset the time until it could take one (0 when it
// can now).
func (l *Limiter) QuotaAt(p bulwark.Priority, t time.Time) bulwark.Quota {
	return l.c.quota(p.Index(), l.s.b.peek(&l.c, t))
}

// decide takes a token for info's tier at t, counts the decision and, on
// admission, records the quota when info asks for it. On refusal it
// returns the time until the tier could take a token.
func (l *Limiter) decide(info bulwark.CallInfo, t time.Time) (time.Duration, bool) {
	return l.take(info, t, true)
}

// take is decide, counting the decision only when count is true.
func (l *Limiter) take(info bulwark.CallInfo, t time.Time, count bool) (time.Duration, bool) {
	i := info.Priority.Index()
	tokens, ok, _ := l.s.b.take(&l.c, i, t, info.Quota != nil, count)
	if ok {
		if info.Quota != nil {
			info.Quota.Record(l.c.quota(i, tokens))
		}
		return 0, true
	}
	return l.c.reset(i, tokens), false
}

// errPastDeadline tells a Wait that the next chance lies past its
// context's deadline.
var errPastDeadline = errors.New("ratelimit: next chance past the deadline")

// wait retries try until it admits (nil error), ctx ends (ctx.Err()), or
// the next chance lies past ctx's deadline (errPastDeadline, with the time
// until that chance). try returns the time until the next chance.
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
