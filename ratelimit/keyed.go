package ratelimit

import (
	"context"
	"hash/maphash"
	"math"
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
// takes its place — a key that comes back gets a fresh bucket, which is
// what it had, so eviction never grants more than the bucket would have. A
// partly spent bucket is never evicted: while every live key is partly
// spent, new keys share the overflow bucket. The table is split into
// shards (up to 64, of at least 512 keys each) that each hold an equal part
// of the cap, so a new key may share the overflow bucket while another
// shard still has room. Each shard keeps its buckets in a heap by the
// earliest time each can be full again: finding a full bucket costs
// O(log n) per take since the last search, and knowing there is none
// costs nothing.
//
// The overflow bucket has one key's limit and burst, shared by every key
// that overflows: a flood of one-off keys past the cap gets limit calls per
// second (plus the burst) between them all — in a run of 1M one-off keys
// at 10 000 keys in the table, about one first call in ten was admitted.
// It is no wider because any key may be among those that overflow, and
// none may take more than its own quota. Running out of table space is
// this side's capacity, not the caller's quota: the overflow bucket's
// refusals wrap [bulwark.ErrUnavailable] (HTTP 503), whatever [WithClass]
// says. And what a key takes from the overflow bucket is charged to it: a
// key that gets a bucket of its own soon after (when another became
// evictable) starts it less what it took, so over any window a key is
// admitted at most burst + limit × window calls, own and overflow bucket
// together. The charges are kept in 1024 slots by hash of the key, so a
// new key whose slot another key charged starts its bucket lower too; a
// charge is paid back at the limit's rate.
//
// Refusals by a key's own and the no-key bucket wrap [ErrLimited] and
// [bulwark.ErrRejected] (see [WithClass]); they are immutable
// [*LimitedError] values, shared by equal refusals of one tier.
//
// A Keyed limiter is safe for concurrent use. The zero value is not usable.
type Keyed struct {
	tunable
	keyFn      func(context.Context) string // nil: the CallInfo's key
	cost       func(context.Context) int
	seed       maphash.Seed
	shards     []shard
	mask       uint64
	maxKeys    int
	noKey      bucket
	over       bucket
	errs       errCache
	keys       atomic.Int64        // live keys
	overflowed atomic.Int64        // decisions of the overflow bucket
	overLast   atomic.Int64        // Unix ns of the latest overflow decision
	counts     *telemetry.Counters // decisions of the shared buckets
	reg        *telemetry.Registration

	debtMu   sync.Mutex
	debtUsed atomic.Bool      // a charge was ever made
	debts    *[debtSlots]debt // made at the first charge
}

// debtSlots is the number of overflow charge slots of a Keyed limiter.
const debtSlots = 1024

// debt is what the keys of one slot took from the overflow bucket, paid
// back at the limit's rate.
type debt struct {
	tokens float64
	at     time.Time
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
	_ bulwark.Policy      = (*Keyed)(nil)
	_ bulwark.Admitter    = (*Keyed)(nil)
	_ bulwark.Snapshotter = (*Keyed)(nil)
	_ bulwark.Controller  = (*Keyed)(nil)
)

// maxShards caps the shards of the key table; minShardKeys is the least
// part of the cap a shard holds.
const (
	maxShards    = 64
	minShardKeys = 512
)

// NewKeyed returns a limiter named name with a bucket per key, each
// holding burst tokens and refilling at limit tokens per second, starting
// full. NewKeyed panics, naming the argument, when limit is NaN or not
// positive, or burst < 1.
func NewKeyed(name string, limit rate.Limit, burst int, opts ...Option) *Keyed {
	mustValid("NewKeyed", limit, burst)
	o := newOptions(bulwark.ErrRejected, opts)
	c := newConfig(name, limit, burst, &o)
	k := &Keyed{keyFn: o.keyFn, cost: o.cost, seed: maphash.MakeSeed(), maxKeys: o.maxKeys}
	k.cfg.Store(c)
	k.noKey.init(c)
	k.over.init(c)
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

// Name returns the limiter's name.
func (k *Keyed) Name() string { return k.cfg.Load().name }

// Limit returns the current limit of each bucket, in tokens per second.
func (k *Keyed) Limit() rate.Limit { return k.cfg.Load().limit }

// Burst returns the current burst of each bucket.
func (k *Keyed) Burst() int { return k.cfg.Load().burst }

// SetLimit sets the limit of every bucket from now on: SetLimitAt(time.Now(),
// limit).
func (k *Keyed) SetLimit(limit rate.Limit) error { return k.SetLimitAt(time.Now(), limit) }

// SetLimitAt sets the limit of every bucket from t on, as
// [Limiter.SetLimitAt] does. Each bucket applies the change the next time a
// call looks at it, as of t. The table's estimates of when each bucket is
// full again are kept: after a raise, a bucket may be evicted a little
// later than it could be (never earlier). It returns an error, and changes
// nothing, when limit is NaN or not positive.
func (k *Keyed) SetLimitAt(t time.Time, limit rate.Limit) error {
	return k.set("SetLimit", t, &limit, nil, "config", "")
}

// SetBurst sets the burst of every bucket from now on: SetBurstAt(time.Now(),
// burst).
func (k *Keyed) SetBurst(burst int) error { return k.SetBurstAt(time.Now(), burst) }

// SetBurstAt sets the burst of every bucket from t on, as
// [Limiter.SetBurstAt] does. It returns an error, and changes nothing, when
// burst < 1.
func (k *Keyed) SetBurstAt(t time.Time, burst int) error {
	return k.set("SetBurst", t, nil, &burst, "config", "")
}

// Allow reports whether a call with ctx's key and priority may happen now,
// and takes its tokens if it may. It is AllowAt(ctx, time.Now()).
func (k *Keyed) Allow(ctx context.Context) bool {
	return k.AllowAt(ctx, time.Now())
}

// AllowAt reports whether a call with ctx's key and priority may happen at
// t, and takes its tokens if it may. Times earlier than one the key's
// bucket has already seen count as that one; a bucket made after an
// eviction has seen the instant of that eviction.
func (k *Keyed) AllowAt(ctx context.Context, t time.Time) bool {
	return k.decide(ctx, t) == nil
}

// Do runs fn if a call with ctx's key and priority may happen now, and
// otherwise returns a [*LimitedError] (a [*CostError] for a cost out of
// range) at once without calling fn. An ended ctx is answered with
// ctx.Err().
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
// takes its tokens, or until ctx ends (it then returns ctx.Err()). When ctx
// has a deadline before the earliest moment the tier could take its
// tokens, Wait returns a [*LimitedError] at once; a cost out of range is
// refused at once with a [*CostError]. Only the outcome of a Wait is
// counted as a decision (and as an overflow decision), not each try.
func (k *Keyed) Wait(ctx context.Context) error {
	info := bulwark.CallInfoFrom(ctx)
	i := info.Priority.Index()
	key := k.key(ctx, info)
	n := callCost(k.cost, ctx)
	if err := checkCost(k.cfg.Load(), n); err != nil {
		k.counts.Add(slotLimited+i, 1)
		return err
	}
	var d outcome
	reset, err := wait(ctx, func(t time.Time) (time.Duration, bool) {
		d = k.try(key, info, n, t, false)
		if d.ok {
			return 0, true
		}
		if n > d.c.burst {
			return -1, false // the burst was lowered meanwhile
		}
		return d.c.reset(i, n, d.tokens), false
	})
	switch err {
	case errBadCost:
		k.countRefusal(d, i)
		return checkCost(d.c, n)
	case errPastDeadline:
		k.countRefusal(d, i)
		return k.errs.get(d.c, d.over, i, d.c.remaining(i, d.tokens), reset)
	}
	return err
}

// countRefusal counts a refusal that try did not count.
func (k *Keyed) countRefusal(d outcome, i int) {
	k.counts.Add(slotLimited+i, 1)
	if d.over {
		k.overflowed.Add(1)
	}
}

// QuotaAt returns the quota view of tier p of key's bucket at t without
// taking a token (see [Limiter.QuotaAt]). A key without a bucket of its own
// is reported as a fresh, full bucket; key "" is the no-key bucket.
func (k *Keyed) QuotaAt(key string, p bulwark.Priority, t time.Time) bulwark.Quota {
	cur := k.cfg.Load()
	if key == "" {
		c, tokens := k.noKey.peek(cur, t)
		return c.quota(p.Index(), tokens)
	}
	s := &k.shards[k.hash(key)&k.mask]
	s.mu.RLock()
	e := s.m[key]
	s.mu.RUnlock()
	if e == nil {
		return cur.quota(p.Index(), float64(cur.burst))
	}
	c, tokens := e.peek(cur, t)
	return c.quota(p.Index(), tokens)
}

// Keys returns the number of keys with a bucket of their own.
func (k *Keyed) Keys() int { return int(k.keys.Load()) }

func (k *Keyed) key(ctx context.Context, info bulwark.CallInfo) string {
	if k.keyFn != nil {
		return k.keyFn(ctx)
	}
	return info.Key
}

// decide takes the tokens of ctx's call at t and counts the decision; on
// refusal it returns the refusal error, nil on admission.
func (k *Keyed) decide(ctx context.Context, t time.Time) error {
	info := bulwark.CallInfoFrom(ctx)
	i := info.Priority.Index()
	n := 1
	if k.cost != nil {
		n = k.cost(ctx)
		if err := checkCost(k.cfg.Load(), n); err != nil {
			k.counts.Add(slotLimited+i, 1)
			return err
		}
	}
	d := k.try(k.key(ctx, info), info, n, t, true)
	if d.ok {
		return nil
	}
	if n > d.c.burst {
		return checkCost(d.c, n)
	}
	return k.errs.get(d.c, d.over, i, d.c.remaining(i, d.tokens), d.c.reset(i, n, d.tokens))
}

// outcome is what try decided, under which config, and the tokens left.
type outcome struct {
	c      *config
	tokens float64
	ok     bool
	over   bool // decided by the overflow bucket
}

// try takes n tokens at t for tier info.Priority of key's bucket, counting
// an admission (and a refusal when countLimited is true) and recording the
// quota of an admission.
func (k *Keyed) try(key string, info bulwark.CallInfo, n int, t time.Time, countLimited bool) outcome {
	i := info.Priority.Index()
	cur := k.cfg.Load()
	var (
		d outcome
		s *shard
	)
	if cur.inf || n == 0 {
		d = outcome{c: cur, tokens: float64(cur.burst), ok: true}
	} else {
		for {
			var (
				b       *bucket
				h       uint64
				evicted bool
			)
			b, d.over, s, h = k.route(key, t, cur)
			d.c, d.tokens, d.ok, evicted = b.take(cur, i, n, t, info.Quota != nil, false)
			if !evicted {
				if d.over && d.ok {
					k.charge(h, n, t, d.c)
				}
				break
			}
		}
	}
	slot := slotAllowed + i
	if !d.ok {
		slot = slotLimited + i
	}
	if d.ok || countLimited {
		if s != nil {
			s.n[slot].Add(1)
		} else {
			k.counts.Add(slot, 1)
		}
		if d.over {
			k.overflowed.Add(1)
			k.overLast.Store(t.UnixNano())
		}
	}
	if d.ok && info.Quota != nil {
		info.Quota.Record(d.c.quota(i, d.tokens))
	}
	return d
}

// charge records that the keys of hash h took n tokens from the overflow
// bucket at t.
func (k *Keyed) charge(h uint64, n int, t time.Time, c *config) {
	k.debtMu.Lock()
	if k.debts == nil {
		k.debts = new([debtSlots]debt)
	}
	d := &k.debts[(h>>32)%debtSlots]
	d.tokens = d.owed(t, c) + float64(n)
	if t.After(d.at) {
		d.at = t
	}
	k.debtMu.Unlock()
	k.debtUsed.Store(true)
}

// owed returns what d still owes at t.
func (d *debt) owed(t time.Time, c *config) float64 {
	if d.tokens <= 0 {
		return 0
	}
	if t.After(d.at) {
		return max(0, d.tokens-t.Sub(d.at).Seconds()*float64(c.limit))
	}
	return d.tokens
}

// owedBy returns what the keys of hash h owe the overflow bucket at t.
func (k *Keyed) owedBy(h uint64, t time.Time, c *config) float64 {
	if !k.debtUsed.Load() {
		return 0
	}
	k.debtMu.Lock()
	defer k.debtMu.Unlock()
	return k.debts[(h>>32)%debtSlots].owed(t, c)
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

func (k *Keyed) hash(key string) uint64 { return maphash.String(k.seed, key) }

// route returns key's bucket, its shard and the key's hash, creating the
// bucket when there is room; when there is none, the overflow bucket
// (over is true, s nil). Key "" is the no-key bucket (s nil).
func (k *Keyed) route(key string, t time.Time, cur *config) (b *bucket, over bool, s *shard, h uint64) {
	if key == "" {
		return &k.noKey, false, nil, 0
	}
	h = k.hash(key)
	s = &k.shards[h&k.mask]
	s.mu.RLock()
	e := s.m[key]
	s.mu.RUnlock()
	if e != nil {
		return &e.bucket, false, s, h
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e = s.m[key]; e != nil {
		return &e.bucket, false, s, h
	}
	full := len(s.heap) >= s.max
	if full && !k.evictFull(s, t, cur) {
		return &k.over, true, nil, h
	}
	at := t
	if at.Before(s.evictedAt) {
		at = s.evictedAt
	}
	e = &entry{key: strings.Clone(key), fullAt: at}
	e.init(cur)
	e.last = at
	if owed := k.owedBy(h, at, cur); owed > 0 && !cur.inf {
		// What the key's slot took from the overflow bucket is not to be
		// had again.
		m := int(math.Ceil(min(owed, float64(cur.burst))))
		e.lim.AllowN(at, m)
		e.floor = float64(cur.burst - m)
		e.fullAt = at.Add(durationFromTokens(cur.limit, float64(m)))
	}
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
	return &e.bucket, false, s, h
}

// evictFull looks for a bucket of s that is full at t. When it finds one,
// it marks it evicted, removes its key and leaves it at the root of the
// heap for the caller to replace; otherwise it reports false. s.mu is held.
//
// Each look either finds a full bucket or raises a stale fullAt to the
// truth, which only a take can make stale again; so a search costs
// O(log n) per take since the last one, and nothing when no bucket can be
// full yet.
func (k *Keyed) evictFull(s *shard, t time.Time, cur *config) bool {
	for len(s.heap) > 0 {
		e := s.heap[0]
		if e.fullAt.After(t) {
			return false
		}
		e.mu.Lock()
		c := e.syncLocked(cur)
		burst := float64(c.burst)
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
		e.fullAt = bt.Add(durationFromTokens(c.limit, burst-tokens))
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
