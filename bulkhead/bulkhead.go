// Package bulkhead isolates work in compartments: a [Bulkhead] lets at most
// a fixed number of calls run at once, so one slow dependency cannot take
// every goroutine, connection or thread of a service down with it.
//
// # Model
//
// A Bulkhead has limit slots. A call takes a slot, runs, and gives it back.
// When no slot is free, or callers are queued ahead, what happens depends on
// how the bulkhead was built:
//
//   - Built to wait ([WithMaxQueue](n) and [WithMaxWait](d), both > 0):
//     [Bulkhead.Do], [Bulkhead.Admit] and [Bulkhead.Acquire] wait in the
//     priority queue for at most d and never past the caller's deadline.
//     This is how the HTTP and gRPC middleware, which use Do and Admit,
//     reach the queue.
//   - Otherwise Do, Admit and [Bulkhead.TryAcquire] are refused at once with
//     [ErrFull]; Acquire alone waits when a queue is configured (until its
//     context ends), and is refused at once without one (the default).
//
// The queue:
//
//   - It is ordered by priority tier ([bulwark.PriorityFrom]): a freed slot
//     goes to the longest-waiting caller of the highest tier waiting.
//   - When the queue is full, an arriving caller evicts the newest waiter of
//     the lowest tier below its own; the evicted waiter leaves with
//     [ErrEvicted]. With no lower tier waiting, the arrival is refused with
//     [ErrFull].
//   - A waiter leaves with [ErrMaxWait] after the maximum wait, and at once,
//     with an error for which errors.Is(err, ctx.Err()) holds, when its
//     context ends.
//   - A tier is never refused while a lower one is admitted: a caller that
//     is refused without waiting (Do, Admit, TryAcquire at tier critical),
//     or leaves with ErrMaxWait, evicts the waiters of every lower tier, so
//     the next freed slot cannot go to them.
//
// A freed slot goes to the queue before anyone else, so no caller jumps
// ahead of a queued one. A permit is released exactly once:
// [Permit.Release] is idempotent, and a release of a permit whose slot has
// since gone to another caller does nothing.
//
// Every refusal wraps [ErrFull], which wraps [bulwark.ErrUnavailable], and
// carries a retry hint ([bulwark.RetryAfter]) derived from the hold times
// the bulkhead observed: the moving average of sampled hold times × (callers
// queued + 1) / limit, rounded up to whole milliseconds, at least 1 ms; no
// hint before a hold was observed. The hint is fixed when the refusal is
// made: a refusal held by one caller never shows another's.
//
// # Cost
//
// Taking and giving back a slot while no one waits is a few atomic
// operations on a lock-free stack of free slots, allocates nothing and
// costs about as much as a buffered-channel semaphore. A refusal allocates
// nothing while its hint is the one of the previous refusal of its kind;
// when the hint changed it allocates one small error (48 bytes). A wait in
// the queue takes a mutex and allocates one waiter and a timer; a refusal
// while callers are queued takes the mutex to evict lower tiers. Hold times
// are sampled on every 32nd use of each slot to keep clock reads off most
// calls.
//
// [Bulkhead.Snapshot] shows the compartment on the admin page
// ([bulwark.Snapshotter]).
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
//     recorded only for callers who waited; ignored is a caller whose
//     context ended while queued.
package bulkhead

import (
	"context"
	"math"
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

// sampleMask selects the acquisitions whose hold time is measured: every
// 32nd use of each slot (counted by the slot's generation, which every use
// bumps), whatever the order of takes and releases across slots.
const sampleMask = 31

// Bulkhead is a compartment of limit slots with an optional priority queue;
// see the package documentation for the model. It implements
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
	waits    bool         // Do and Admit wait in the queue (maxQueue > 0 and maxWait > 0)
	hold     atomic.Int64 // moving average of sampled hold times in ns; 0: none yet

	mu      sync.Mutex
	tiers   [bulwark.NumPriorities]waitList // by Priority.Index; guarded by mu
	queued  atomic.Int64                    // waiters in all tiers; written under mu
	waiting atomic.Uint32                   // bit Priority.Index set while that tier has waiters; written under mu

	refusals [numKinds]atomic.Pointer[refusal] // the last refusal of each kind, reused while its hint holds
	m        *metrics
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
		waits:    o.maxQueue > 0 && o.maxWait > 0,
		name:     name,
		epoch:    time.Now(),
	}
	for i := range b.slots {
		b.slots[i].next.Store(uint32(i)) // slot i links to slot i-1; 0 ends
	}
	b.head.Store(uint64(limit))
	for k := range b.refusals {
		b.refusals[k].Store(newRefusal(name, k))
	}
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
// waits and never jumps ahead of a queued caller. It acts at the default
// tier, critical: when ok is false the refusal is counted (reason full,
// tier critical) and queued callers of lower tiers are evicted, as for Do.
// Release the permit when the work is done.
func (b *Bulkhead) TryAcquire() (p Permit, ok bool) {
	if idx, tag, ok := b.pop(); ok {
		return b.take(idx, tag), true
	}
	_ = b.refuseNow(bulwark.Critical)
	return Permit{}, false
}

// Acquire takes a slot for work that outlives a function call. When every
// slot is taken and a queue is configured ([WithMaxQueue]), it waits in the
// queue at the tier of [bulwark.PriorityFrom](ctx) until it is granted a
// slot, evicted ([ErrEvicted]), out of time ([ErrMaxWait], see
// [WithMaxWait]), or its context ends (an error for which
// errors.Is(err, ctx.Err()) holds); unlike Do and Admit it waits with a
// queue even without a maximum wait.
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

// Do runs fn in a slot. When a slot is free and no caller is queued it
// runs at once. Otherwise, on a bulkhead built to wait ([WithMaxQueue] and
// [WithMaxWait] both set), Do waits in the priority queue as [Acquire] does,
// for at most the maximum wait and never past ctx's deadline; on any other
// bulkhead it is refused at once with [ErrFull] (counted as reason full at
// the tier of [bulwark.PriorityFrom](ctx)), and callers of lower tiers
// waiting in the queue are evicted ([ErrEvicted]), so a freed slot never
// goes to a lower tier while this one was refused. Do never jumps ahead of
// a queued caller. An ended context returns ctx.Err() without calling fn.
// The slot is released when fn returns, panics or calls runtime.Goexit;
// the panic passes through.
func (b *Bulkhead) Do(ctx context.Context, fn func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	idx, tag, ok := b.pop()
	if !ok {
		return b.doSlow(ctx, fn)
	}
	p := b.take(idx, tag)
	defer p.Release()
	return fn(ctx)
}

// doSlow is Do on a full compartment: wait in the queue or refuse.
func (b *Bulkhead) doSlow(ctx context.Context, fn func(context.Context) error) error {
	if !b.waits {
		return b.refuseNow(tierOf(ctx))
	}
	p, err := b.acquireSlow(ctx)
	if err != nil {
		return err
	}
	defer p.Release()
	return fn(ctx)
}

// Admit is two-step admission ([bulwark.Admitter]) under the rules of Do:
// it takes a free slot, waits in the queue when the bulkhead was built to
// wait, or refuses at once with [ErrFull], evicting queued callers of lower
// tiers. done releases the slot; calling it again does nothing. The done
// func is the one allocation of an admission.
func (b *Bulkhead) Admit(ctx context.Context) (done func(error), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var p Permit
	if idx, tag, ok := b.pop(); ok {
		p = b.take(idx, tag)
	} else if !b.waits {
		return nil, b.refuseNow(tierOf(ctx))
	} else if p, err = b.acquireSlow(ctx); err != nil {
		return nil, err
	}
	return func(error) { p.Release() }, nil
}

// refuseNow refuses a caller of tier prio that found no free slot and will
// not wait: it counts the refusal, evicts the queued callers of lower tiers
// (a freed slot must not go to them while prio was refused) and returns an
// ErrFull refusal carrying this moment's hint.
func (b *Bulkhead) refuseNow(prio bulwark.Priority) error {
	b.m.refuse(reasonFull, prio)
	if tier := prio.Index(); b.waiting.Load()&(1<<tier-1) != 0 {
		b.mu.Lock()
		b.evictBelow(tier)
		b.mu.Unlock()
	}
	return b.refusal(kindFull)
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
// of its hold time on every 32nd use of the slot (and on every use until a
// hold was observed).
func (b *Bulkhead) take(idx uint32, _ uint64) Permit {
	s := &b.slots[idx]
	gen := s.gen.Add(1) // odd: the slot's (gen+1)/2-th use
	if (gen>>1)&sampleMask == 0 || b.hold.Load() == 0 {
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

// hintOf estimates when a newcomer would find a slot: the mean hold time
// (ns) divided among the limit slots, for each of the queued callers plus
// the newcomer; whole milliseconds rounded up, at least one, or 0 before
// any hold time was observed.
func hintOf(mean, queued int64, limit int) time.Duration {
	if mean <= 0 {
		return 0
	}
	n := queued + 1
	if mean > math.MaxInt64/n {
		return time.Duration(math.MaxInt64) // no overflow into a negative hint
	}
	d := time.Duration(mean * n / int64(limit))
	// Whole milliseconds, rounded up: finer is noise to a client, and a
	// hint that changes less often lets refusals share an error value.
	if d >= math.MaxInt64-time.Millisecond {
		return d
	}
	return max((d + time.Millisecond - 1).Truncate(time.Millisecond), time.Millisecond)
}
