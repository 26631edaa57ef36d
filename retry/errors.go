package retry

import (
	"errors"
	"strconv"

	"github.com/bulwark-go/bulwark"
)

// ExhaustedError is returned when retrying stopped while the last error was
// still retryable: the attempts were used up, the budget or
// [WithMaxElapsed] allowed no more, the next delay (a server hint or the
// backoff) would have ended past the caller's deadline, or a server hint
// was longer than [WithMaxHint]. Err is the last
// attempt's error; errors.Is and [bulwark.RetryAfter] see through to it.
//
// An ExhaustedError says it must not be retried again
// ([bulwark.Retryable] is false), so a Retrier further out does not
// multiply the attempts of one further in.
type ExhaustedError struct {
	// Attempts is the number of attempts made, the first included.
	Attempts int
	// Err is the last attempt's error.
	Err error

	reason string
}

// The reasons an ExhaustedError gives in its message.
const (
	reasonAttempts = "attempts used up"
	reasonBudget   = "retry budget exhausted"
	reasonDeadline = "next attempt would start past the deadline"
	reasonElapsed  = "next attempt would start past the maximum elapsed time"
	reasonHint     = "server hint longer than the maximum hint"
)

// Error reports the attempts made, why retrying stopped, and the last
// attempt's error.
func (e *ExhaustedError) Error() string {
	s := "retry: gave up after " + strconv.Itoa(e.Attempts) + " attempt"
	if e.Attempts != 1 {
		s += "s"
	}
	if e.reason != "" {
		s += " (" + e.reason + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the last attempt's error.
func (e *ExhaustedError) Unwrap() error { return e.Err }

// Retryable reports false: retrying already gave up on this error.
func (e *ExhaustedError) Retryable() bool { return false }

// DefaultRetryIf is the default of [WithRetryIf]. It retries
//
//   - [bulwark.ErrRemoteUnavailable] (a downstream's 502/503/504 or
//     UNAVAILABLE, or a downstream that could not be reached);
//   - [bulwark.ErrTimeout], which it is asked about only while the caller's
//     context is alive, so only when a per-attempt deadline (this
//     Retrier's or an inner [bulwark.Timeout]) cut the attempt short;
//   - [bulwark.ErrRemoteRejected] only when the downstream sent a hint
//     ([bulwark.RetryAfter]);
//
// and never a local refusal ([bulwark.ErrRejected], [bulwark.ErrUnavailable]:
// retry only at the layer right above the one that refused), nor any other
// error (a downstream's 500 included).
func DefaultRetryIf(err error) bool {
	switch {
	case err == nil, bulwark.IsRefusal(err):
		return false
	case errors.Is(err, bulwark.ErrRemoteUnavailable), errors.Is(err, bulwark.ErrTimeout):
		return true
	case errors.Is(err, bulwark.ErrRemoteRejected):
		_, ok := bulwark.RetryAfter(err)
		return ok
	}
	return false
}
