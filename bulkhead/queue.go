package bulkhead

import (
	"context"
	"time"

	"github.com/bulwark-go/bulwark"
)

// The states of a waiter, guarded by Bulkhead.mu; a state other than
// waiting is set before ready is closed.
const (
	waiting = iota
	granted
	evicted
)

// waiter is a caller queued for a slot.
type waiter struct {
	prev, next *waiter
	tier       int // Priority.Index
	state      int
	idx        uint32 // the slot, once granted
	gen        uint64
	ready      chan struct{} // closed when state leaves waiting
}

// waitList is one tier's FIFO: an intrusive doubly linked list.
type waitList struct {
	head, tail *waiter
	n          int
}

func (l *waitList) pushBack(w *waiter) {
	w.prev, w.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = w
	} else {
		l.head = w
	}
	l.tail = w
	l.n++
}

func (l *waitList) remove(w *waiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		l.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		l.tail = w.prev
	}
	w.prev, w.next = nil, nil
	l.n--
}

// acquireSlow admits a caller of Acquire that found no free slot: it
// refuses, or queues the caller and waits.
func (b *Bulkhead) acquireSlow(ctx context.Context) (Permit, error) {
	prio := tierOf(ctx)
	if b.maxQueue == 0 {
		b.m.refuse(reasonFull, prio)
		return Permit{}, b.refusal(kindFull)
	}
	b.mu.Lock()
	for {
		w := b.head.Load()
		if w&topMask != 0 {
			// A slot was freed meanwhile (so no one is queued).
			if idx, tag, ok := b.pop(); ok {
				b.mu.Unlock()
				return b.take(idx, tag), nil
			}
			continue
		}
		// Set the flag while the stack is empty: from now on freed slots
		// come to the queue.
		if w&qflag != 0 || b.head.CompareAndSwap(w, w|qflag) {
			break
		}
	}
	tier := prio.Index()
	if int(b.queued.Load()) >= b.maxQueue {
		victim := b.evictable(tier)
		if victim == nil {
			b.mu.Unlock()
			b.m.refuse(reasonFull, prio)
			return Permit{}, b.refusal(kindFull)
		}
		b.tiers[victim.tier].remove(victim)
		b.markTier(victim.tier)
		b.queued.Add(-1)
		victim.state = evicted
		close(victim.ready)
	}
	wt := &waiter{tier: tier, ready: make(chan struct{})}
	b.tiers[tier].pushBack(wt)
	b.markTier(tier)
	b.queued.Add(1)
	b.mu.Unlock()
	return b.wait(ctx, wt, prio)
}

// evictable returns the newest waiter of the lowest tier below tier, or nil.
// b.mu is held.
func (b *Bulkhead) evictable(tier int) *waiter {
	for t := 0; t < tier; t++ {
		if w := b.tiers[t].tail; w != nil {
			return w
		}
	}
	return nil
}

// markTier records in b.waiting whether tier has callers queued. b.mu is
// held.
func (b *Bulkhead) markTier(tier int) {
	m := b.waiting.Load()
	if b.tiers[tier].n > 0 {
		m |= 1 << tier
	} else {
		m &^= 1 << tier
	}
	b.waiting.Store(m)
}

// evictBelow evicts every queued caller of a tier below tier. b.mu is held.
func (b *Bulkhead) evictBelow(tier int) {
	for t := 0; t < tier; t++ {
		for w := b.tiers[t].head; w != nil; w = b.tiers[t].head {
			b.dequeue(w)
			w.state = evicted
			close(w.ready)
		}
	}
}

// nextWaiter returns the longest-waiting caller of the highest tier queued,
// or nil. b.mu is held.
func (b *Bulkhead) nextWaiter() *waiter {
	for t := len(b.tiers) - 1; t >= 0; t-- {
		if w := b.tiers[t].head; w != nil {
			return w
		}
	}
	return nil
}

// dequeue takes w out of the queue, clearing the queued flag when the queue
// empties. b.mu is held.
func (b *Bulkhead) dequeue(w *waiter) {
	b.tiers[w.tier].remove(w)
	b.markTier(w.tier)
	if b.queued.Add(-1) != 0 {
		return
	}
	for {
		// With the flag set the stack is empty and only holders of mu
		// change the word; the loop is for form's sake.
		old := b.head.Load()
		if b.head.CompareAndSwap(old, old&^qflag) {
			return
		}
	}
}

// grant hands the freed slot idx to w. b.mu is held.
func (b *Bulkhead) grant(w *waiter, idx uint32) {
	b.dequeue(w)
	s := &b.slots[idx]
	w.idx, w.gen = idx, s.gen.Add(1)
	s.start.Store(b.now() + 1)
	w.state = granted
	close(w.ready)
}

// wait blocks until w is granted a slot, evicted, out of time, or its
// context ends.
func (b *Bulkhead) wait(ctx context.Context, w *waiter, prio bulwark.Priority) (Permit, error) {
	start := time.Now()
	var expired <-chan time.Time
	if b.maxWait > 0 {
		t := time.NewTimer(b.maxWait)
		defer t.Stop()
		expired = t.C
	}
	woken, ctxEnded := false, false
	select {
	case <-w.ready:
		woken = true
	case <-ctx.Done():
		ctxEnded = true
	case <-expired:
	}
	if !woken {
		// Ended or out of time: leave, unless a slot or an eviction
		// reached us meanwhile.
		b.mu.Lock()
		if w.state == waiting {
			b.dequeue(w)
			if !ctxEnded {
				// Refused after the maximum wait: lower tiers must
				// not get the next slot in its place.
				b.evictBelow(w.tier)
			}
			b.mu.Unlock()
			waited := time.Since(start)
			if ctxEnded {
				b.m.waited(ctx, outcomeIgnored, prio, waited)
				return Permit{}, ctx.Err()
			}
			b.m.waited(ctx, outcomeRefused, prio, waited)
			b.m.refuse(reasonTimeout, prio)
			return Permit{}, b.refusal(kindMaxWait)
		}
		b.mu.Unlock()
	}
	waited := time.Since(start)
	if w.state == evicted {
		b.m.waited(ctx, outcomeRefused, prio, waited)
		b.m.refuse(reasonEvicted, prio)
		return Permit{}, b.refusal(kindEvicted)
	}
	p := Permit{b: b, gen: w.gen, idx: w.idx}
	if ctxEnded {
		// The slot came as the context ended: pass it on.
		p.Release()
		b.m.waited(ctx, outcomeIgnored, prio, waited)
		return Permit{}, ctx.Err()
	}
	b.m.waited(ctx, outcomeSuccess, prio, waited)
	return p, nil
}
