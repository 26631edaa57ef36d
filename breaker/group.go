package breaker

import (
	"context"
	"math"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/internal/telemetry"
)

// Group keeps one [Breaker] per key (a host, a tenant), all with the same
// settings, so that one bad key does not cut off the others. A call's key
// comes from [WithKeyFunc] (default bulwark.KeyFrom; "" is a key like any
// other). Make one with [NewGroup]; the zero value is not usable. It is safe
// for concurrent use.
//
// At most [WithMaxKeys] breakers are live. A new key takes the place of a
// closed breaker that was not used since the eviction clock last passed it
// (idle closed ones first, then other closed ones), or of an open one whose
// break ended unused; a breaker that is open, half-open, forced open or
// disabled is kept. When every live breaker is kept, keys without a breaker
// share one overflow breaker, named after the Group, until room frees up.
//
// The Group reports the metrics of all its breakers under its own name
// (never the keys), plus bulwark.breaker.members; it reports no state gauge.
// Evicted breakers are dropped: nothing keeps them alive, and they report
// nothing more.
type Group struct {
	c     *core
	keyFn func(context.Context) string

	mu        sync.RWMutex
	members   map[string]*Breaker
	ring      []*Breaker    // the eviction clock's face
	hand      int           // next ring slot the clock looks at
	fullUntil time.Duration // core.since() before which a new scan is pointless
	overflow  *Breaker
	closed    bool // Close was called: new members are not shared

	reg *telemetry.Registration
}

// NewGroup returns an empty group named name (the bulwark.policy.name of its
// metrics). Breakers are made on first use of their key.
func NewGroup(name string, opts ...Option) *Group {
	o := buildOptions(opts)
	g := &Group{
		c:       newCore(name, o, true),
		keyFn:   o.keyFn,
		members: make(map[string]*Breaker),
	}
	t := g.c.tel
	g.reg = telemetry.Register(t.meter, g, (*Group).observe, t.callsInst, t.transInst, t.membersInst)
	return g
}

func (g *Group) observe(o metric.Observer) {
	t := g.c.tel
	for s := range State(numStates) {
		o.ObserveInt64(t.membersInst, t.members[s].Load(), t.stateSet[s].Observe...)
	}
	t.observeCounts(o)
}

// Close stops reporting the group's metrics and, with [WithSharedState],
// sharing its members' state. The group keeps working, on local state.
func (g *Group) Close() error {
	g.reg.Unregister()
	if g.c.o.shared != nil {
		g.mu.Lock()
		g.closed = true
		for _, b := range g.ring {
			if b.shared != nil {
				b.shared.unlink()
			}
		}
		g.mu.Unlock()
	}
	return nil
}

// Do runs fn under the breaker of the call's key; see [Breaker.Do].
func (g *Group) Do(ctx context.Context, fn func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		g.c.tel.calls.Add(outIgnored, 1)
		return err
	}
	return g.member(g.keyFn(ctx)).Do(ctx, fn)
}

// Admit admits under the breaker of the call's key; see [Breaker.Admit].
func (g *Group) Admit(ctx context.Context) (done func(error), err error) {
	if err := ctx.Err(); err != nil {
		g.c.tel.calls.Add(outIgnored, 1)
		return nil, err
	}
	return g.member(g.keyFn(ctx)).Admit(ctx)
}

// State returns the state of key's breaker; [StateClosed] when it has none
// (a new one would be closed).
func (g *Group) State(key string) State {
	g.mu.RLock()
	b := g.members[key]
	g.mu.RUnlock()
	if b == nil {
		return StateClosed
	}
	return b.State()
}

// Len returns the number of live breakers, the overflow one not included.
func (g *Group) Len() int {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return len(g.members)
}

// ForceOpen forces key's breaker open (see [Breaker.ForceOpen]), making it
// if needed, even past [WithMaxKeys]: it is kept until [Group.Reset].
func (g *Group) ForceOpen(key string) { g.setMode(key, modeForced, StateForcedOpen, "") }

// Disable disables key's breaker (see [Breaker.Disable]), making it if
// needed, even past [WithMaxKeys]: it is kept until [Group.Reset].
func (g *Group) Disable(key string) { g.setMode(key, modeDisabled, StateDisabled, "") }

func (g *Group) setMode(key string, mode int32, to State, reason string) {
	g.mu.Lock()
	b := g.addLocked(key, true)
	b.setMode(mode, to, reason) // under g.mu, so the clock cannot evict it meanwhile
	g.mu.Unlock()
	b.notify()
}

// Reset resets key's breaker (see [Breaker.Reset]), if it has one.
func (g *Group) Reset(key string) {
	g.mu.RLock()
	b := g.members[key]
	g.mu.RUnlock()
	if b != nil {
		b.Reset()
	}
}

// member returns key's breaker, making it if needed.
func (g *Group) member(key string) *Breaker {
	g.mu.RLock()
	b := g.members[key]
	g.mu.RUnlock()
	if b != nil {
		if !b.used.Load() {
			b.used.Store(true)
		}
		return b
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.addLocked(key, false)
}

// addLocked returns key's breaker, making it in a free slot, in the slot of
// an evicted breaker, past the limit when force is set, or else returning
// the overflow breaker. g.mu is held for writing.
func (g *Group) addLocked(key string, force bool) *Breaker {
	if b := g.members[key]; b != nil {
		return b
	}
	key = strings.Clone(key) // do not pin the caller's buffer
	// Make room; more than one breaker goes when forced ones made the
	// group grow past the limit and have been reset since.
	for len(g.ring) >= g.c.o.maxKeys {
		i, ok := g.victimLocked()
		if !ok {
			break
		}
		delete(g.members, g.ring[i].name)
		last := len(g.ring) - 1
		g.ring[i], g.ring[last] = g.ring[last], nil
		g.ring = g.ring[:last]
		if g.hand >= last {
			g.hand = 0
		}
	}
	if len(g.ring) < g.c.o.maxKeys || force {
		b := newBreaker(g.c, key)
		if s := g.c.o.shared; s != nil && !g.closed {
			b.shared = s.link(g.c.name+":"+key, b)
		}
		g.ring = append(g.ring, b)
		g.members[key] = b
		return b
	}
	if g.overflow == nil {
		g.overflow = newBreaker(g.c, g.c.name)
	}
	return g.overflow
}

// victimLocked runs the eviction clock (second chance) for at most two
// turns and evicts the breaker it stops at. After a turn that found
// nothing, it does not look again before a breaker closes or opens or the first
// break ends.
func (g *Group) victimLocked() (int, bool) {
	now := g.c.since()
	if now < g.fullUntil && !g.c.rescan.Load() {
		return 0, false
	}
	g.c.rescan.Store(false)
	n := len(g.ring)
	soonest := time.Duration(math.MaxInt64)
	for range 2 * n {
		i := g.hand
		g.hand = (g.hand + 1) % n
		b := g.ring[i]
		b.tick(now) // a pause or fleet hold that ended unnoticed
		ok, until := b.evictable(now)
		if !ok {
			soonest = min(soonest, until)
			continue
		}
		if b.used.Load() {
			b.used.Store(false)
			continue
		}
		if b.evict(now) {
			return i, true
		}
	}
	// Everything is kept. Look again when a breaker closes or opens, or the first
	// break ends.
	g.fullUntil = soonest
	return 0, false
}

// evictable reports whether b may be evicted at now, and otherwise when it
// may be at the earliest (math.MaxInt64 when unknown).
func (b *Breaker) evictable(now time.Duration) (bool, time.Duration) {
	switch b.visible() {
	case StateClosed:
		return true, 0
	case StateOpen:
		until := time.Duration(b.m.Load().openUntil.Load())
		if su := b.sharedUntil.Load(); su != 0 {
			until = max(until, time.Duration(su))
		}
		return until <= now, until
	case StatePaused:
		return false, time.Duration(b.pauseUntil.Load())
	}
	return false, math.MaxInt64
}

// evict marks b dead if it still may be evicted.
func (b *Breaker) evict(now time.Duration) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.visible()
	if ok, _ := b.evictable(now); !ok || b.dead {
		return false
	}
	b.dead = true
	b.c.tel.members[s].Add(-1)
	if b.shared != nil {
		b.shared.unlink()
	}
	return true
}

var (
	_ bulwark.Policy   = (*Group)(nil)
	_ bulwark.Admitter = (*Group)(nil)
)
