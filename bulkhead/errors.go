package bulkhead

import (
	"fmt"
	"strings"
	"time"

	"github.com/bulwark-go/bulwark"
)

// The refusals of a [Bulkhead]. Each wraps [ErrFull], which wraps
// [bulwark.ErrUnavailable], so errors.Is(err, ErrFull) holds for all three
// and the transport adapters answer 503 / UNAVAILABLE. They carry a retry
// hint (see [bulwark.RetryAfter]) once the bulkhead has observed how long
// slots are held.
var (
	// ErrFull is the refusal of a call that found every slot taken (or
	// callers queued ahead of it): always for Do, Admit and TryAcquire,
	// which never wait, and for Acquire when there is no room in the queue
	// (or no queue).
	ErrFull = fmt.Errorf("bulkhead: full: %w", bulwark.ErrUnavailable)

	// ErrEvicted is the refusal of a queued caller whose place went to a
	// caller of a higher tier that arrived when the queue was full.
	ErrEvicted = fmt.Errorf("bulkhead: evicted from the queue: %w", ErrFull)

	// ErrMaxWait is the refusal of a caller still queued after the
	// bulkhead's maximum wait ([WithMaxWait]). It is a refusal, not a
	// timeout of the call: it does not wrap [bulwark.ErrTimeout], and
	// breakers do not count it.
	ErrMaxWait = fmt.Errorf("bulkhead: max wait exceeded: %w", ErrFull)
)

// refusal is a preallocated refusal error of one bulkhead: returning it
// allocates nothing, and its retry hint is computed when asked for.
type refusal struct {
	b   *Bulkhead
	err error // ErrFull, ErrEvicted or ErrMaxWait
	msg string
}

func newRefusal(b *Bulkhead, err error) *refusal {
	return &refusal{b: b, err: err,
		msg: fmt.Sprintf("bulkhead %q: %s", b.name, strings.TrimPrefix(err.Error(), "bulkhead: "))}
}

func (e *refusal) Error() string { return e.msg }
func (e *refusal) Unwrap() error { return e.err }

// RetryAfter estimates when a slot will be free for a newcomer: the mean
// hold time spread over the slots, times the callers ahead of it. It is 0
// (no hint) until a hold time has been observed.
func (e *refusal) RetryAfter() time.Duration { return e.b.retryAfter() }
