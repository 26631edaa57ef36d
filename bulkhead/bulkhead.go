// Package bulkhead isolates work in compartments: a [Bulkhead] lets at most
// a fixed number of calls run at once, so one slow dependency cannot take
// every goroutine, connection or thread of a service down with it.
//
// # Model
//
// A Bulkhead has limit slots. A call takes a slot, runs, and gives it back.
// [Bulkhead.Do], [Bulkhead.Admit] and [Bulkhead.TryAcquire] never wait:
// when no slot is free, or callers are queued ahead of them, they are
// refused at once with [ErrFull]. [Bulkhead.Acquire] is the one entry that
// blocks: when a queue is configured ([WithMaxQueue]) it waits for a slot
// (without a queue, the default, it too is refused at once):
//
//   - The queue is ordered by priority tier ([bulwark.PriorityFrom]): a
//     freed slot goes to the longest-waiting caller of the highest tier
//     waiting, so a tier is never kept waiting while a lower one is admitted.
//   - When the queue is full, an arriving caller evicts the newest waiter of
//     the lowest tier below its own; the evicted waiter leaves with
//     [ErrEvicted]. With no lower tier waiting, the arrival is refused with
//     [ErrFull].
//   - A waiter leaves with [ErrMaxWait] after the maximum wait
//     ([WithMaxWait]), and at once, with an error for which
//     errors.Is(err, ctx.Err()) holds, when its context ends.
//
// A freed slot goes to the queue before anyone else, so Do, Admit and
// TryAcquire never jump ahead of a queued caller. A permit is released
// exactly once: [Permit.Release] is idempotent, and a release of a permit
// whose slot has since gone to another caller does nothing.
//
// Every refusal wraps [ErrFull], which wraps [bulwark.ErrUnavailable], and
// carries a retry hint ([bulwark.RetryAfter]) derived from the hold times
// the bulkhead observed: the moving average of sampled hold times × (callers
// queued + 1) / limit, at least 1 ms; no hint before a hold was observed.
//
// # Cost
//
// Taking and giving back a slot while no one waits is a few atomic
// operations on a lock-free stack of free slots, allocates nothing and
// costs about as much as a buffered-channel semaphore; so does a refusal.
// A wait in the queue (Acquire only) takes a mutex and allocates one
// waiter. Hold times are sampled (about one call in 32) to keep clock reads
// off most calls.
//
// # Metrics
//
// Under the meter "github.com/bulwark-go/bulwark/bulkhead", every
// instrument with bulwark.policy.name:
//
//   - bulwark.bulkhead.active (observable up-down counter, {call}): calls
//     holding a slot.
//   - bulwark.bulkhead.queued (observable up-down counter, {call},
//     bulwark.priority): callers waiting in the queue.
//   - bulwark.bulkhead.limit (observable up-down counter, {call}): the
//     number of slots.
//   - bulwark.bulkhead.refused (observable counter, {call}, bulwark.reason =
//     full|timeout|evicted, bulwark.priority): refusals; timeout is
//     [ErrMaxWait]. Do, Admit and Acquire count at the tier of their
//     context; TryAcquire under the default tier, critical.
//   - bulwark.bulkhead.wait.duration (histogram, s, bulwark.priority,
//     bulwark.outcome = success|refused|ignored): time spent in the queue,
//     recorded only for callers of Acquire who waited; ignored is a caller
//     whose context ended while queued.
package bulkhead

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark"
)

const (
	maxLimit      = 1<<topBits - 1
	maxQueueLimit = 1 << 30
)

// The head of the free-slot stack, in one word: the index+1 of the top free
// slot (0: no slot free), a flag set while callers are queued, and a tag
// bumped by every push and pop so that a stale compare-and-swap fails (no
// ABA). While the flag is set the stack is empty: freed slots go to waiters.
const (
	topBits  = 24
	topMask  = 1<<topBits - 1
	qflag    = 1 << topBits
	tagShift = topBits + 1
	tagOne   = 1 << tagShift
)

// sampleMask selects the acquisitions whose hold time is measured: those
// whose stack tag has these bits clear (about one in 32 in a tight loop).
const sampleMask = 63

// Bulkhead is a compartment of limit slots with an optional priority queue
// for [Bulkhead.Acquire]; see the package documentation for the model. It implements
// [bulwark.Policy] and [bulwark.Admitter].
//
// Use [New]; the zero value is not usable. A Bulkhead is safe for
// concurrent use.
type Bulkhead struct {
	head atomic.Uint64 // free-slot stack: top | qflag | tag
	_    [56]byte

	slots    []slot
	limit    int
	maxQueue int
	maxWait  time.Duration
	name     string
	epoch    time.Time
	hold     atomic.Int64 // moving average of sampled hold times in ns; 0: none yet

	mu     sync.Mutex
	tiers  [bulwark.NumPriorities]waitList // by Priority.Index; guarded by mu
	queued atomic.Int64                    // waiters in all tiers; written under mu

	errFull, errEvicted, errMaxWait *refusal
	m                               *metrics
}

type slot struct {
	gen   atomic.Uint64 // odd while held; a permit carries the odd value
	next  atomic.Uint32 // free-stack link: index+1 of the next free slot
	start atomic.Int64  // sampled acquisition time (ns since epoch + 1); 0: not sampled
	_     [40]byte
}

// New returns a bulkhead named name (for metrics and error messages) that
// lets at most limit calls in at once. It panics if limit is not in
// [1, 1<<24-1]. Each slot costs 64 bytes.
func New(name string, limit int, opts ...Option) *Bulkhead {
	if limit < 1 || limit > maxLimit {
		panic("bulkhead: New: limit must be in [1, 1<<24-1], got " + strconv.Itoa(limit))
	}
	var o options
	for _, opt := range opts {
		if opt != nil {
			opt.apply(&o)
		}
	}
	b := &Bulkhead{
		slots:    make([]slot, limit),
		limit:    limit,
		maxQueue: o.maxQueue,
		maxWait:  o.maxWait,
		name:     name,
		epoch:    time.Now(),
	}
	for i := range b.slots {
		b.slots[i].next.Store(uint32(i)) // slot i links to slot i-1; 0 ends
	}
	b.head.Store(uint64(limit))
	b.errFull = newRefusal(b, ErrFull)
	b.errEvicted = newRefusal(b, ErrEvicted)
	b.errMaxWait = newRefusal(b, ErrMaxWait)
	b.m = newMetrics(b, o.mp)
	return b
}

// Permit is a slot taken from a [Bulkhead]. It is a small value: taking one
// allocates nothing, and copies of it refer to the same slot. The zero
// Permit holds nothing; releasing it does nothing.
type Permit struct {
	b   *Bulkhead
	gen uint64
	idx uint32
}

// Release gives the slot back. Only the first release of a permit counts:
// releasing it again, from any copy, or after the slot went to someone else
// does nothing.
func (p Permit) Release() {
	b := p.b
	if b == nil {
		return
	}
	s := &b.slots[p.idx]
	if !s.gen.CompareAndSwap(p.gen, p.gen+1) {
		return
	}
	if st := s.start.Load(); st != 0 {
		s.start.Store(0)
		b.observeHold(b.now() - (st - 1))
	}
	b.free(p.idx)
}

// Name returns the name given to [New].
func (b *Bulkhead) Name() string { return b.name }

// Limit returns the number of slots.
func (b *Bulkhead) Limit() int { return b.limit }

// InFlight returns the number of slots taken now. It scans the slots, so it
// costs O(limit).
func (b *Bulkhead) InFlight() int {
	n := 0
	for i := range b.slots {
		n += int(b.slots[i].gen.Load() & 1)
	}
	return n
}

// Queued returns the number of callers waiting for a slot.
func (b *Bulkhead) Queued() int { return int(b.queued.Load()) }

// TryAcquire takes a slot if one is free and no caller is queued; it never
// waits and never jumps ahead of a queued caller. When ok is false the
// refusal is counted (reason full, tier critical). Release the permit when
// the work is done.
func (b *Bulkhead) TryAcquire() (p Permit, ok bool) {
	if idx, tag, ok := b.pop(); ok {
		return b.take(idx, tag), true
	}
	b.m.refuse(reasonFull, bulwark.Critical)
	return Permit{}, false
}

// Acquire takes a slot for work that outlives a function call; it is the
// one entry of a Bulkhead that waits. When every slot is taken and a queue
// is configured ([WithMaxQueue]), it waits in the queue at the tier of
// [bulwark.PriorityFrom](ctx) until it is granted a slot, evicted
// ([ErrEvicted]), out of time ([ErrMaxWait], see [WithMaxWait]), or its
// context ends (an error for which errors.Is(err, ctx.Err()) holds).
// Without a queue it is refused at once with [ErrFull]. An ended context
// returns ctx.Err(). Release the permit when the work is done.
func (b *Bulkhead) Acquire(ctx context.Context) (Permit, error) {
	if err := ctx.Err(); err != nil {
		return Permit{}, err
	}
	if idx, tag, ok := b.pop(); ok {
		return b.take(idx, tag), nil
	}
	return b.acquireSlow(ctx)
}

// Do runs fn in a slot if one is free and no caller is queued; it never
// waits, even when a queue is configured (the queue is for [Acquire]), and,
// like TryAcquire, never jumps ahead of a queued caller. Otherwise fn does
// not run and Do returns a refusal wrapping [ErrFull] (counted as reason
// full at the tier of [bulwark.PriorityFrom](ctx)), or ctx.Err() when the
// context has already ended. The slot is released when fn returns, panics
// or calls runtime.Goexit; the panic passes through.
func (b *Bulkhead) Do(ctx context.Context, fn func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	idx, tag, ok := b.pop()
	if !ok {
		return b.refuseFull(ctx)
	}
	p := b.take(idx, tag)
	defer p.Release()
	return fn(ctx)
}

// Admit is two-step admission ([bulwark.Admitter]) under the rules of Do:
// it takes a free slot or refuses at once with [ErrFull], and never waits
// in the queue. done releases the slot; calling it again does nothing. The
// done func is the one allocation of an admission.
func (b *Bulkhead) Admit(ctx context.Context) (done func(error), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	idx, tag, ok := b.pop()
	if !ok {
		return nil, b.refuseFull(ctx)
	}
	p := b.take(idx, tag)
	return func(error) { p.Release() }, nil
}

// refuseFull counts a refusal of a full compartment at the tier of ctx and
// returns the preallocated ErrFull refusal.
func (b *Bulkhead) refuseFull(ctx context.Context) error {
	b.m.refuse(reasonFull, tierOf(ctx))
	return b.errFull
}

// tierOf is the priority of ctx, critical when it carries none valid.
func tierOf(ctx context.Context) bulwark.Priority {
	if p := bulwark.PriorityFrom(ctx); p.Valid() {
		return p
	}
	return bulwark.Critical
}

// pop takes a free slot off the stack. It fails when none is free, which
// includes every time a caller is queued. tag is the stack's new tag.
func (b *Bulkhead) pop() (idx uint32, tag uint64, ok bool) {
	for {
		w := b.head.Load()
		top := w & topMask
		if top == 0 {
			return 0, 0, false
		}
		next := uint64(b.slots[top-1].next.Load())
		nw := (w&^topMask + tagOne) | next
		if b.head.CompareAndSwap(w, nw) {
			return uint32(top - 1), nw >> tagShift, true
		}
	}
}

// take marks a popped slot held and returns its permit, sampling the start
// of its hold time now and then.
func (b *Bulkhead) take(idx uint32, tag uint64) Permit {
	s := &b.slots[idx]
	gen := s.gen.Add(1)
	if tag&sampleMask == 0 || b.hold.Load() == 0 {
		s.start.Store(b.now() + 1)
	}
	return Permit{b: b, gen: gen, idx: idx}
}

// free gives a released slot to the longest-waiting caller of the highest
// tier queued, or pushes it back on the stack.
func (b *Bulkhead) free(idx uint32) {
	s := &b.slots[idx]
	for {
		w := b.head.Load()
		if w&qflag != 0 {
			b.mu.Lock()
			if wt := b.nextWaiter(); wt != nil {
				b.grant(wt, idx)
				b.mu.Unlock()
				return
			}
			// The queue emptied before we got the lock (the flag is
			// clear again): push.
			b.mu.Unlock()
			continue
		}
		s.next.Store(uint32(w & topMask))
		if b.head.CompareAndSwap(w, (w&^topMask+tagOne)|uint64(idx+1)) {
			return
		}
	}
}

// now is the time since the bulkhead was made, in ns.
func (b *Bulkhead) now() int64 { return int64(time.Since(b.epoch)) }

// observeHold feeds one hold time into the moving average (weight 1/8).
func (b *Bulkhead) observeHold(d int64) {
	d = max(d, 1) // 0 means "nothing observed yet"
	for {
		old := b.hold.Load()
		nv := d
		if old != 0 {
			nv = old + (d-old)/8
			nv = max(nv, 1)
		}
		if b.hold.CompareAndSwap(old, nv) {
			return
		}
	}
}

// retryAfter estimates when a newcomer would find a slot: the mean hold time
// divided among the slots, for each caller queued plus the newcomer; at
// least a millisecond, or 0 before any hold time was observed.
func (b *Bulkhead) retryAfter() time.Duration {
	mean := b.hold.Load()
	if mean <= 0 {
		return 0
	}
	d := time.Duration(mean * (b.queued.Load() + 1) / int64(b.limit))
	return max(d, time.Millisecond)
}
