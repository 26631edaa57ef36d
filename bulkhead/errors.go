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
	// callers queued ahead of it) and did not wait: Do, Admit and
	// TryAcquire on a bulkhead not built to wait, and any caller that finds
	// no room in the queue (or no queue).
	ErrFull = fmt.Errorf("bulkhead: full: %w", bulwark.ErrUnavailable)

	// ErrEvicted is the refusal of a queued caller whose place went to a
	// caller of a higher tier that arrived when the queue was full, or
	// that was evicted because a caller of a higher tier was refused.
	ErrEvicted = fmt.Errorf("bulkhead: evicted from the queue: %w", ErrFull)

	// ErrMaxWait is the refusal of a caller still queued after the
	// bulkhead's maximum wait ([WithMaxWait]). It is a refusal, not a
	// timeout of the call: it does not wrap [bulwark.ErrTimeout], and
	// breakers do not count it.
	ErrMaxWait = fmt.Errorf("bulkhead: max wait exceeded: %w", ErrFull)
)

// The kinds of refusal, by the sentinel they wrap.
const (
	kindFull = iota
	kindEvicted
	kindMaxWait
	numKinds
)

var kindErrs = [numKinds]error{ErrFull, ErrEvicted, ErrMaxWait}

// refusal is a refusal error of one bulkhead with the retry hint of the
// moment it was made. It is immutable once returned: a caller holding it
// reads the hint it was refused with, whatever happens to the bulkhead
// afterwards. The bulkhead keeps its last refusal of each kind and returns
// it again while the hint is the same, so a refusal allocates only when
// the hint changed.
type refusal struct {
	err  error // ErrFull, ErrEvicted or ErrMaxWait
	msg  string
	hint time.Duration // 0: no hint
	// The inputs hint was computed from: a refusal made while they hold
	// reuses this one without recomputing.
	mean, queued int64
}

func newRefusal(name string, kind int) *refusal {
	err := kindErrs[kind]
	return &refusal{err: err,
		msg: fmt.Sprintf("bulkhead %q: %s", name, strings.TrimPrefix(err.Error(), "bulkhead: "))}
}

func (e *refusal) Error() string { return e.msg }
func (e *refusal) Unwrap() error { return e.err }

// RetryAfter is the bulkhead's estimate, when it refused, of when a slot
// would be free for a newcomer: the mean hold time spread over the slots,
// times the callers ahead of it. It is 0 (no hint) until a hold time has
// been observed.
func (e *refusal) RetryAfter() time.Duration { return e.hint }

// refusal returns a refusal of kind carrying the hint of this moment.
func (b *Bulkhead) refusal(kind int) error {
	mean, queued := b.hold.Load(), b.queued.Load()
	r := b.refusals[kind].Load()
	if r.mean == mean && r.queued == queued {
		return r
	}
	h := hintOf(mean, queued, b.limit)
	if r.hint == h {
		return r
	}
	nr := &refusal{err: r.err, msg: r.msg, hint: h, mean: mean, queued: queued}
	b.refusals[kind].Store(nr)
	return nr
}
