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
//   - the caller's own context ended first: the caller's ctx.Err();
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
	tctx, cancel := context.WithTimeoutCause(ctx, t.d, ErrTimeout)
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
		if dl, ok := tctx.Deadline(); ok && !time.Now().Before(dl) {
			<-tctx.Done()
		}
	}
	if tctx.Err() != nil && context.Cause(tctx) == ErrTimeout {
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
