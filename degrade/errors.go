package degrade

import (
	"fmt"
	"time"

	"github.com/bulwark-go/bulwark"
)

// The refusals of this package. Both wrap [bulwark.ErrUnavailable], so the
// transport adapters answer 503 / UNAVAILABLE, and carry the name of the
// switch or shedder that refused (see [bulwark.Degraded]), which the server
// adapters send as the Bulwark-Degraded header.
var (
	// ErrDegraded is the refusal of a call while a [Switch] is on. The
	// refusals of a [Shedder] wrap it too, so errors.Is(err, ErrDegraded)
	// holds for every refusal of this package.
	ErrDegraded = fmt.Errorf("degrade: degraded: %w", bulwark.ErrUnavailable)

	// ErrShed is the refusal of a call whose priority tier a [Shedder]'s
	// level sheds.
	ErrShed = fmt.Errorf("degrade: shed: %w", ErrDegraded)
)

// refusal is a preallocated refusal of one switch or shedder (one per tier
// for a shedder): returning it allocates nothing.
type refusal struct {
	c   *core
	err error // ErrDegraded or ErrShed
	msg string
}

func (e *refusal) Error() string { return e.msg }
func (e *refusal) Unwrap() error { return e.err }

// Degraded returns the name of the switch or shedder that refused, for
// [bulwark.Degraded].
func (e *refusal) Degraded() string { return e.c.name }

// RetryAfter is the hint the refusal carries (see [bulwark.RetryAfter]):
// the [WithRetryAfter] value when one was given; else, while a trigger holds
// the state, the time until it may next turn it off (the rest of its hold
// time, or of its sampling interval); else 0, no hint.
func (e *refusal) RetryAfter() time.Duration { return e.c.retryAfter() }
