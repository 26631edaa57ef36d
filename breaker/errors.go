package breaker

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/bulwark-go/bulwark"
)

var (
	// ErrOpen is the refusal of an open or forced-open breaker. The error a
	// breaker returns wraps it (errors.Is(err, ErrOpen) and
	// errors.Is(err, bulwark.ErrUnavailable) both hold) and carries the
	// time until the breaker lets a probe through, for bulwark.RetryAfter
	// (no hint when forced open, or once the break has ended).
	ErrOpen = fmt.Errorf("breaker: open: %w", bulwark.ErrUnavailable)

	// ErrTooManyProbes is the refusal of a half-open breaker whose probes
	// are all running. The error a breaker returns wraps it and carries the
	// break duration as its retry hint: the longest the next probe can be
	// away once the running ones end.
	ErrTooManyProbes = fmt.Errorf("breaker: too many probes: %w", bulwark.ErrUnavailable)

	// ErrPaused is the refusal of a breaker paused by a downstream's hint
	// ([WithPauseOnHint]). The error a breaker returns wraps it and
	// bulwark.ErrUnavailable and carries what is left of the pause as its
	// retry hint.
	ErrPaused = fmt.Errorf("breaker: paused: %w", bulwark.ErrUnavailable)

	// Sentinels handed to gobreaker's done: it counts errFailure as a
	// failure and excludes errExcluded (IsExcluded).
	errFailure  = errors.New("breaker: failure")
	errExcluded = errors.New("breaker: excluded")
)

type refusal uint8

const (
	refusedOpen refusal = iota
	refusedForced
	refusedProbes
	refusedPaused
	refusedThrottled
)

// RefusalError is the error a breaker refuses a call with. It is
// immutable: its retry hint is the one computed for the call it refused
// (rounded up to the millisecond) and never changes afterwards, whoever
// else holds the same value. A breaker reuses the error of an earlier
// refusal when the hint is the same to the millisecond, so refusing
// allocates at most once per millisecond of break.
type RefusalError struct {
	kind refusal
	msg  string
	hint time.Duration
}

// refusalMessages are the messages of a breaker's three refusals; a Group
// computes them once for all its members.
func refusalMessages(name string) [4]string {
	q := fmt.Sprintf("%q", name)
	return [4]string{
		refusedOpen:   "breaker: " + q + " is open",
		refusedForced: "breaker: " + q + " is forced open",
		refusedProbes: "breaker: " + q + " has too many probes running",
		refusedPaused: "breaker: " + q + " is paused: the downstream asked to wait",
	}
}

// Error names the breaker and why it refused.
func (e *RefusalError) Error() string { return e.msg }

// Unwrap returns [ErrOpen] or [ErrTooManyProbes].
func (e *RefusalError) Unwrap() error {
	switch e.kind {
	case refusedProbes:
		return ErrTooManyProbes
	case refusedThrottled:
		return ErrThrottled
	case refusedPaused:
		return ErrPaused
	}
	return ErrOpen
}

// RetryAfter is the time until the breaker would let a probe through, as
// it was when the call was refused: what was left of the break for an open
// breaker (0, no hint, once it had ended), the break duration for one
// whose probes were running, and 0 (no hint) for a forced-open one.
func (e *RefusalError) RetryAfter() time.Duration { return e.hint }

// ceilMilli rounds d up to a whole millisecond, saturating.
func ceilMilli(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	r := d % time.Millisecond
	if r == 0 {
		return d
	}
	if d > math.MaxInt64-time.Millisecond {
		return math.MaxInt64
	}
	return d - r + time.Millisecond
}
