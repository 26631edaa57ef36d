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
//     hold, whose message keeps fn's error.
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
		return &deadlineError{d: t.d, fnErr: err}
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
