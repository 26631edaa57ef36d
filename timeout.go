package bulwark

import (
	"context"
	"errors"
	"strconv"
	"time"
)

// Timeout returns a policy that runs fn on the caller's goroutine under a
// context that ends after d, with [ErrTimeout] as its cause
// (context.WithTimeoutCause). Do returns when fn returns, so fn must honour
// its context for the timeout to bound the call:
//
//   - fn returned nil: the call succeeded, even if it finished late;
//   - the caller's own context ended first: the caller's ctx.Err(), also
//     when an outer bulwark deadline (an outer Timeout, a retry's
//     per-attempt timeout) ended it;
//   - our deadline fired first and fn failed: an error for which
//     errors.Is(err, ErrTimeout) and errors.Is(err, context.DeadlineExceeded)
//     hold, whose message keeps fn's error. It wraps no class and does not
//     unwrap to fn's error, but it answers [Retryable] and [RetryAfter] as
//     fn's error does: a request that must not be replayed, or a
//     downstream's hint, survives the timeout, so a retrier around it
//     neither replays the one nor forgets the other.
//
// Timeout panics if d ≤ 0. In a client chain, put it innermost, so each
// retried attempt gets its own deadline.
func Timeout(d time.Duration) Policy {
	if d <= 0 {
		panic("bulwark: Timeout: d must be > 0, got " + d.String())
	}
	return timeout{d}
}

type timeout struct{ d time.Duration }

func (t timeout) Do(ctx context.Context, fn func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dl := time.Now().Add(t.d)
	tctx, cancel := context.WithDeadlineCause(ctx, dl, ErrTimeout)
	defer cancel()
	err := fn(tctx)
	if err == nil {
		return nil
	}
	if tctx.Err() == nil && isDeadlineError(err) {
		// fn saw the deadline a moment before our timer fired (a transport
		// that reads the clock itself, a server that got a copy of the
		// deadline): once the deadline has passed, wait for the timer, which
		// is due, so the error is classified by who set the deadline.
		if tdl, ok := tctx.Deadline(); ok && !time.Now().Before(tdl) {
			<-tctx.Done()
		}
	}
	if t.fired(ctx, tctx, dl) {
		if errors.Is(err, ErrTimeout) {
			return err
		}
		return newDeadlineError(t.d, err)
	}
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return err
}

// fired reports whether our own deadline dl ended tctx, rather than the
// caller's ctx. The cause alone cannot tell: the caller's context may have
// been ended by bulwark's own deadline too (an outer Timeout, a Retrier's
// per-attempt timeout), and then its cause is ErrTimeout as well. Ours fired
// only when tctx has its own timer (the caller's deadline is not earlier)
// and, if the caller's context has ended too, our deadline has passed.
func (t timeout) fired(ctx, tctx context.Context, dl time.Time) bool {
	if tctx.Err() == nil || context.Cause(tctx) != ErrTimeout {
		return false
	}
	if pdl, ok := ctx.Deadline(); ok && pdl.Before(dl) {
		return false // tctx is the caller's deadline, with no timer of ours
	}
	return ctx.Err() == nil || !time.Now().Before(dl)
}

// deadlineError is ErrTimeout with the duration and fn's own error in its
// message; it unwraps to ErrTimeout only, so it carries no class.
type deadlineError struct {
	d     time.Duration
	fnErr error
}

// The variants of deadlineError that answer Retryable and RetryAfter from
// fn's own error. A method set is fixed, so an error that has no answer of
// its own must not grow one: one type per combination.
type (
	deadlineReplayError     struct{ *deadlineError }
	deadlineHintError       struct{ *deadlineError }
	deadlineReplayHintError struct{ *deadlineError }
)

// newDeadlineError is the error of our deadline, d, ending fn, which failed
// with fnErr.
func newDeadlineError(d time.Duration, fnErr error) error {
	e := &deadlineError{d: d, fnErr: fnErr}
	_, replay := find[interface{ Retryable() bool }](fnErr)
	_, hint := find[interface{ RetryAfter() time.Duration }](fnErr)
	switch {
	case replay && hint:
		return deadlineReplayHintError{e}
	case replay:
		return deadlineReplayError{e}
	case hint:
		return deadlineHintError{e}
	}
	return e
}

func (e *deadlineError) retryable() bool {
	r, _ := find[interface{ Retryable() bool }](e.fnErr)
	return r.Retryable()
}

func (e *deadlineError) retryAfter() time.Duration {
	h, _ := find[interface{ RetryAfter() time.Duration }](e.fnErr)
	return h.RetryAfter()
}

// Retryable answers as fn's error does.
func (e deadlineReplayError) Retryable() bool { return e.retryable() }

// RetryAfter answers as fn's error does.
func (e deadlineHintError) RetryAfter() time.Duration { return e.retryAfter() }

// Retryable answers as fn's error does.
func (e deadlineReplayHintError) Retryable() bool { return e.retryable() }

// RetryAfter answers as fn's error does.
func (e deadlineReplayHintError) RetryAfter() time.Duration { return e.retryAfter() }

func (e *deadlineError) Error() string {
	return "bulwark: timeout after " + e.d.String() + ": " + strconv.Quote(e.fnErr.Error())
}

func (e *deadlineError) Unwrap() error   { return ErrTimeout }
func (e *deadlineError) Timeout() bool   { return true }
func (e *deadlineError) Temporary() bool { return true }

// isDeadlineError reports whether err says a deadline passed: the context's,
// or an I/O deadline (a net.Error whose Timeout() is true).
func isDeadlineError(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	t, ok := find[interface{ Timeout() bool }](err)
	return ok && t.Timeout()
}
