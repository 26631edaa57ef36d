package ratelimit

import (
	"context"
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/internal/telemetry"
)

// Keyed is a rate limiter with a token bucket per key (a tenant, a user, a
// host), each with the tiers of [Limiter]: within one key, a call may take
// a token only if the tokens left after taking it are at least its tier's
// reserve. Create one with [NewKeyed].
//
// The key comes from the context ([bulwark.KeyFrom], see [WithKeyFunc]).
// Two buckets are shared, with the same limit and burst as a key's:
//
//   - the no-key bucket, used by every call whose key is "";
//   - the overflow bucket, used by the calls of a key that has no bucket of
//     its own when the key table is full.
//
// Memory is bounded by [WithMaxKeys]. When a new key arrives and the table
// is full, a bucket that has refilled to full is evicted and the new key
// takes its place — a key that comes back gets a fresh, full bucket, which
// is exactly what it had, so eviction never grants more than the bucket
// would have. A partly spent bucket is never evicted: while every live key
// is partly spent, new keys share the overflow bucket. The table is split
// into shards (up to 64, of at least 512 keys each) that each hold an
// equal part of the cap, so a new key may share the overflow bucket while
// another shard still has room. Each shard keeps its buckets in a heap by
// the earliest time each can be full again: finding a full bucket costs
// O(log n) per take since the last search, and knowing there is none
// costs nothing.
//
// Refusals wrap [ErrLimited] and [bulwark.ErrRejected] (see [WithClass]). A
// refusal by a key's own bucket allocates its [*LimitedError]; refusals by
// the shared buckets do not.
//
// A Keyed limiter is safe for concurrent use. The zero value is not usable.
type Keyed struct {
	c          config
	keyFn      func(context.Context) string // nil: the CallInfo's key
	seed       maphash.Seed
	shards     []shard
	mask       uint64
	noKey      shared
	over       shared
	keys       atomic.Int64        // live keys
	overflowed atomic.Int64        // decisions of the overflow bucket
	counts     *telemetry.Counters // decisions of the shared buckets
	reg        *telemetry.Registration
}

type shard struct {
	mu sync.RWMutex
	m  map[string]*entry
	// heap holds the entries of m, the one that may be full the earliest
	// first.
	heap []*entry
	// max is this shard's part of the cap.
	max int
	// evictedAt is the latest instant at which a bucket of the shard was
	// found full and evicted. A new bucket has seen it: an evicted key
	// that comes back with an earlier time (callers race to the table, or
	// AllowAt is given times out of order) then gets what its old bucket,
	// full at that instant, would have given, not a bucket full earlier.
	evictedAt time.Time
	// n counts the decisions of the shard's own buckets, by slot: spread
	// over shards, the counts of concurrent calls rarely share a line.
	n [2 * bulwark.NumPriorities]atomic.Int64
	_ [64]byte
}

// entry is a key's bucket in the key table.
type entry struct {
	bucket
	key string
	// fullAt is a lower bound of when the bucket is full again: taking
	// tokens only postpones it. Guarded by the shard's mu.
	fullAt time.Time
	i      int // index in the shard's heap
}

var (
	_ bulwark.Policy   = (*Keyed)(nil)
	_ bulwark.Admitter = (*Keyed)(nil)
)

// maxShards caps the shards of the key table; minShardKeys is the least
// part of the cap a shard holds.
const (
	maxShards    = 64
	minShardKeys = 512
)

// NewKeyed returns a limiter named name with a bucket per key, each
// holding burst tokens and refilling at limit tokens per second, starting
// full. NewKeyed panics when limit is not positive or burst < 1.
func NewKeyed(name string, limit rate.Limit, burst int, opts ...Option) *Keyed {
	o := newOptions(bulwark.ErrRejected, opts)
	k := &Keyed{c: newConfig(name, limit, burst, &o), keyFn: o.keyFn, seed: maphash.MakeSeed()}
	k.noKey.init(&k.c)
	k.over.init(&k.c)
	n := 1
	for n < maxShards && o.maxKeys/(2*n) >= minShardKeys {
		n *= 2
	}
	k.shards = make([]shard, n)
	k.mask = uint64(n - 1)
	for i := range k.shards {
		k.shards[i].max = o.maxKeys / n
		if i < o.maxKeys%n {
			k.shards[i].max++
		}
		k.shards[i].m = make(map[string]*entry)
	}
	k.counts = telemetry.NewCounters(decisionSets(name)...)
	registerKeyed(k, o.mp)
	return k
}

// Allow reports whether a call with ctx's key and priority may happen now,
// and takes a token if it may. It is AllowAt(ctx, time.Now()).
func (k *Keyed) Allow(ctx context.Context) bool {
	return k.AllowAt(ctx, time.Now())
}

// AllowAt reports whether a call with ctx's key and priority may happen at
// t, and takes a token if it may. Times earlier than one the key's bucket
// has already seen count as that one; a bucket made after an eviction has
// seen the instant of that eviction.
func (k *Keyed) AllowAt(ctx context.Context, t time.Time) bool {
	info := bulwark.CallInfoFrom(ctx)
	_, _, ok := k.try(k.key(ctx, info), info, t, true)
	return ok
}

// Do runs fn if a call with ctx's key and priority may happen now, and
// otherwise returns a [*LimitedError] at once without calling fn. An ended
// ctx is answered with ctx.Err().
func (k *Keyed) Do(ctx context.Context, fn func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := k.decide(ctx, time.Now()); err != nil {
		return err
	}
	return fn(ctx)
}

// Admit decides as Do does; a rate limit holds nothing while the work
// runs, so done does nothing (and may be called any number of times).
func (k *Keyed) Admit(ctx context.Context) (done func(error), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := k.decide(ctx, time.Now()); err != nil {
		return nil, err
	}
	return noopDone, nil
}

// Wait blocks until a call with ctx's key and priority may happen, and
// takes a token for it, or until ctx ends (it then returns ctx.Err()). When
// ctx has a deadline before the earliest moment the tier could take a
// token, Wait returns a [*LimitedError] at once. Only the outcome of a Wait
// is counted as a decision, not each try.
func (k *Keyed) Wait(ctx context.Context) error {
	info := bulwark.CallInfoFrom(ctx)
	key := k.key(ctx, info)
	var sh *shared
	reset, err := wait(ctx, func(t time.Time) (time.Duration, bool) {
		var reset time.Duration
		var ok bool
		reset, sh, ok = k.try(key, info, t, false)
		return reset, ok
	})
	if err == errPastDeadline {
		k.counts.Add(slotLimited+info.Priority.Index(), 1)
		return k.refusal(sh, info.Priority, reset)
	}
	return err
}

// QuotaAt returns the quota view of tier p of key's bucket at t without
// taking a token (see [Limiter.QuotaAt]). A key without a bucket of its own
// is reported as a fresh, full bucket; key "" is the no-key bucket.
func (k *Keyed) QuotaAt(key string, p bulwark.Priority, t time.Time) bulwark.Quota {
	if key == "" {
		return k.c.quota(p.Index(), k.noKey.b.peek(&k.c, t))
	}
	s := k.shard(key)
	s.mu.RLock()
	e := s.m[key]
	s.mu.RUnlock()
	if e == nil {
		return k.c.quota(p.Index(), float64(k.c.burst))
	}
	return k.c.quota(p.Index(), e.peek(&k.c, t))
}

// Keys returns the number of keys with a bucket of their own.
func (k *Keyed) Keys() int { return int(k.keys.Load()) }

func (k *Keyed) key(ctx context.Context, info bulwark.CallInfo) string {
	if k.keyFn != nil {
		return k.keyFn(ctx)
	}
	return info.Key
}

// decide takes a token at t for the call of ctx and counts the decision;
// on refusal it returns the refusal error, nil on admission.
func (k *Keyed) decide(ctx context.Context, t time.Time) error {
	info := bulwark.CallInfoFrom(ctx)
	reset, sh, ok := k.try(k.key(ctx, info), info, t, true)
	if ok {
		return nil
	}
	return k.refusal(sh, info.Priority, reset)
}

func (k *Keyed) refusal(sh *shared, p bulwark.Priority, reset time.Duration) error {
	i := p.Index()
	if sh != nil {
		return sh.errs[i].set(reset)
	}
	e := &LimitedError{c: &k.c, tier: bulwark.Sheddable + bulwark.Priority(i)}
	return e.set(reset)
}

// try takes a token at t for tier info.Priority of key's bucket, counting
// an admission (and a refusal when countLimited is true) and recording the
// quota of an admission. It returns the shared bucket that decided (nil
// for a key's own), and on refusal the time until the tier could take a
// token.
func (k *Keyed) try(key string, info bulwark.CallInfo, t time.Time, countLimited bool) (time.Duration, *shared, bool) {
	i := info.Priority.Index()
	var (
		tokens float64
		sh     *shared
		s      *shard
		ok     bool
	)
	if k.c.inf {
		tokens, ok = float64(k.c.burst), true
	} else {
		for {
			var b *bucket
			b, sh, s = k.route(key, t)
			var evicted bool
			tokens, ok, evicted = b.take(&k.c, i, t, info.Quota != nil, false)
			if !evicted {
				break
			}
		}
		if sh == &k.over {
			k.overflowed.Add(1)
		}
	}
	slot := slotAllowed + i
	if !ok {
		slot = slotLimited + i
	}
	if ok || countLimited {
		if s != nil {
			s.n[slot].Add(1)
		} else {
			k.counts.Add(slot, 1)
		}
	}
	if ok {
		if info.Quota != nil {
			info.Quota.Record(k.c.quota(i, tokens))
		}
		return 0, sh, true
	}
	return k.c.reset(i, tokens), sh, false
}

// decisions returns the decision counts of every bucket, by slot.
func (k *Keyed) decisions() (n [2 * bulwark.NumPriorities]int64) {
	for i := range n {
		n[i] = k.counts.Load(i)
	}
	for j := range k.shards {
		for i := range n {
			n[i] += k.shards[j].n[i].Load()
		}
	}
	return n
}

func (k *Keyed) shard(key string) *shard {
	return &k.shards[maphash.String(k.seed, key)&k.mask]
}

// route returns key's bucket and its shard, creating the bucket when there
// is room; when there is none, the overflow bucket. sh is the shared
// bucket it returned, if any (with a nil shard).
func (k *Keyed) route(key string, t time.Time) (b *bucket, sh *shared, s *shard) {
	if key == "" {
		return &k.noKey.b, &k.noKey, nil
	}
	s = k.shard(key)
	s.mu.RLock()
	e := s.m[key]
	s.mu.RUnlock()
	if e != nil {
		return &e.bucket, nil, s
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e = s.m[key]; e != nil {
		return &e.bucket, nil, s
	}
	full := len(s.heap) >= s.max
	if full && !k.evictFull(s, t) {
		return &k.over.b, &k.over, nil
	}
	at := t
	if at.Before(s.evictedAt) {
		at = s.evictedAt
	}
	e = &entry{key: strings.Clone(key), fullAt: at}
	e.init(&k.c)
	e.last = at
	s.m[e.key] = e
	if full {
		// The evicted entry was the root: the new one takes its place.
		e.i = 0
		s.heap[0] = e
		s.down(0)
	} else {
		e.i = len(s.heap)
		s.heap = append(s.heap, e)
		s.up(e.i)
		k.keys.Add(1)
	}
	return &e.bucket, nil, s
}

// evictFull looks for a bucket of s that is full at t. When it finds one,
// it marks it evicted, removes its key and leaves it at the root of the
// heap for the caller to replace; otherwise it reports false. s.mu is held.
//
// Each look either finds a full bucket or raises a stale fullAt to the
// truth, which only a take can make stale again; so a search costs
// O(log n) per take since the last one, and nothing when no bucket can be
// full yet.
func (k *Keyed) evictFull(s *shard, t time.Time) bool {
	burst := float64(k.c.burst)
	for len(s.heap) > 0 {
		e := s.heap[0]
		if e.fullAt.After(t) {
			return false
		}
		e.mu.Lock()
		bt := t
		if bt.Before(e.last) {
			bt = e.last
		}
		tokens := e.lim.TokensAt(bt)
		if tokens >= burst {
			e.evicted = true
			if bt.After(s.evictedAt) {
				s.evictedAt = bt
			}
			e.mu.Unlock()
			delete(s.m, e.key)
			return true
		}
		e.fullAt = bt.Add(durationFromTokens(k.c.limit, burst-tokens))
		e.mu.Unlock()
		s.down(0)
	}
	return false
}

func (s *shard) less(i, j int) bool { return s.heap[i].fullAt.Before(s.heap[j].fullAt) }

func (s *shard) swap(i, j int) {
	h := s.heap
	h[i], h[j] = h[j], h[i]
	h[i].i, h[j].i = i, j
}

func (s *shard) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !s.less(j, i) {
			break
		}
		s.swap(i, j)
		j = i
	}
}

func (s *shard) down(i int) {
	n := len(s.heap)
	for {
		j := 2*i + 1
		if j >= n {
			return
		}
		if r := j + 1; r < n && s.less(r, j) {
			j = r
		}
		if !s.less(j, i) {
			return
		}
		s.swap(i, j)
		i = j
	}
}
