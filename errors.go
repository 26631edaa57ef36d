package bulwark

import (
	"context"
	"errors"
	"time"
)

// The error classes. Every refusal by a policy and every downstream answer
// classified by a transport adapter wraps exactly one of them, so
// errors.Is(err, bulwark.ErrUnavailable) holds for a breaker's ErrOpen as for
// a bulkhead's ErrFull. The transport adapters map classes, never a
// particular policy's errors.
var (
	// ErrRejected is a local refusal because this caller asked for too much
	// (its own quota). Served as HTTP 429, gRPC RESOURCE_EXHAUSTED; not
	// retried by default.
	ErrRejected = errors.New("bulwark: rejected")

	// ErrUnavailable is a local refusal because this side cannot serve now:
	// an open breaker, a full compartment, a shed level, global overload.
	// Served as HTTP 503, gRPC UNAVAILABLE; not retried by default.
	ErrUnavailable = errors.New("bulwark: unavailable")

	// ErrRemoteRejected is a downstream's 429 or RESOURCE_EXHAUSTED. Served
	// as 503 / UNAVAILABLE (a downstream's quota is never relayed as ours);
	// retried only when the downstream sent a hint; breakers do not count
	// it.
	ErrRemoteRejected = errors.New("bulwark: remote rejected")

	// ErrRemoteUnavailable is a downstream's 502, 503, 504 or UNAVAILABLE,
	// or a downstream that could not be reached. Served as 503 /
	// UNAVAILABLE; retried by default; breakers count it as a failure.
	ErrRemoteUnavailable = errors.New("bulwark: remote unavailable")
)

// ErrTimeout is the cause of a deadline set by bulwark itself (see
// [Timeout]); it wraps [context.DeadlineExceeded] and no class. Served as
// HTTP 503, gRPC DEADLINE_EXCEEDED; retried by default when it ended one
// attempt; breakers count it as a failure.
var ErrTimeout error = timeoutError{}

type timeoutError struct{}

func (timeoutError) Error() string   { return "bulwark: timeout" }
func (timeoutError) Unwrap() error   { return context.DeadlineExceeded }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// RetryAfter returns the retry hint err carries: the first error in its wrap
// chain that implements interface{ RetryAfter() time.Duration }. A hint of
// zero or less is no hint. It allocates nothing.
func RetryAfter(err error) (time.Duration, bool) {
	h, ok := find[interface{ RetryAfter() time.Duration }](err)
	if !ok {
		return 0, false
	}
	d := h.RetryAfter()
	if d <= 0 {
		return 0, false
	}
	return d, true
}

// Retryable reports what err says of being retried: the first error in its
// wrap chain that implements interface{ Retryable() bool } decides. ok is
// false when none does. A downstream that said "do not retry" (a negative
// grpc-retry-pushback-ms) and a request that cannot be replayed carry
// Retryable() == false.
func Retryable(err error) (retryable, ok bool) {
	r, ok := find[interface{ Retryable() bool }](err)
	if !ok {
		return false, false
	}
	return r.Retryable(), true
}

// IsRefusal reports whether err is a local refusal ([ErrRejected] or
// [ErrUnavailable]).
func IsRefusal(err error) bool {
	return errors.Is(err, ErrUnavailable) || errors.Is(err, ErrRejected)
}

// find walks err's wrap tree depth first, as errors.As does, without
// allocating.
func find[T any](err error) (T, bool) {
	for err != nil {
		if v, ok := err.(T); ok {
			return v, true
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if v, ok := find[T](e); ok {
					return v, true
				}
			}
			var zero T
			return zero, false
		default:
			err = nil
		}
	}
	var zero T
	return zero, false
}
