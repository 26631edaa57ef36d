package ratelimit

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/bulwark-go/bulwark"
)

// ErrLimited is wrapped by every refusal of a [Limiter] or a [Keyed]
// limiter, together with the limiter's class ([bulwark.ErrUnavailable] by
// default for New, [bulwark.ErrRejected] for NewKeyed; see [WithClass]), so
// both errors.Is(err, ErrLimited) and errors.Is(err, bulwark.ErrUnavailable)
// hold. The refusal is a [*LimitedError], which carries the retry hint and
// the quota.
var ErrLimited = errors.New("ratelimit: limited")

// ErrCost is wrapped by the refusal of a call whose cost ([WithCost]) no
// bucket can ever grant: above the burst, or negative. The refusal is a
// [*CostError]; it wraps [bulwark.ErrRejected] (the caller asked for more
// than the quota), carries no retry hint and says Retryable() == false.
var ErrCost = errors.New("ratelimit: cost out of range")

// config is what every bucket of a limiter shares. A config never changes
// once made: SetLimit and SetBurst make a new one (gen + 1), which each
// bucket applies the next time a call looks at it.
type config struct {
	gen uint64
	// at is when the config took effect: a bucket applies it from then on
	// (or from the latest time the bucket has seen, if later).
	at     time.Time
	name   string
	limit  rate.Limit
	burst  int
	inf    bool // limit == rate.Inf: every call is admitted
	window time.Duration
	fracs  [bulwark.NumPriorities]float64 // reserves as given
	// reserve[i] is the tokens tier i must leave in the bucket.
	reserve [bulwark.NumPriorities]float64
	// gcraArgs[i] are the Redis script's first arguments for tier i,
	// boxed once: the interval in µs per token, the burst, the reserve.
	gcraArgs [bulwark.NumPriorities][3]any
	// unwrap and msgs are those of own refusals ([0]) and of the overflow
	// bucket's ([1]).
	unwrap [2][]error
	msgs   [2][bulwark.NumPriorities]string
}

// validLimit returns an error naming what when limit cannot be a limit.
func validLimit(what string, limit rate.Limit) error {
	if math.IsNaN(float64(limit)) || limit <= 0 {
		return fmt.Errorf("ratelimit: %s: limit must be > 0 (or rate.Inf), got %v", what, float64(limit))
	}
	return nil
}

// validBurst returns an error naming what when burst cannot be a burst.
func validBurst(what string, burst int) error {
	if burst < 1 {
		return fmt.Errorf("ratelimit: %s: burst must be >= 1, got %d", what, burst)
	}
	return nil
}

func newConfig(name string, limit rate.Limit, burst int, o *options) *config {
	c := &config{
		name:  name,
		fracs: o.reserves,
		unwrap: [2][]error{
			{ErrLimited, o.class},
			{ErrLimited, bulwark.ErrUnavailable},
		},
	}
	prefix := "ratelimit: "
	if name != "" {
		prefix += name + ": "
	}
	for _, p := range bulwark.Priorities {
		c.msgs[0][p.Index()] = prefix + "limited (" + p.String() + ")"
		c.msgs[1][p.Index()] = prefix + "key table full, overflow bucket limited (" + p.String() + ")"
	}
	c.set(limit, burst)
	return c
}

// with returns a copy of c with limit and burst, taking effect at t.
func (c *config) with(limit rate.Limit, burst int, t time.Time) *config {
	n := *c
	n.gen++
	n.at = t
	n.set(limit, burst)
	return &n
}

func (c *config) set(limit rate.Limit, burst int) {
	if math.IsInf(float64(limit), 1) {
		limit = rate.Inf // x/time/rate's own infinity is MaxFloat64
	}
	c.limit, c.burst = limit, burst
	c.inf = limit == rate.Inf
	c.window = 0
	if !c.inf {
		c.window = durationFromTokens(limit, float64(burst))
	}
	// Reserves in whole tokens, never below that of a more important tier.
	floor := 0.0
	for i := bulwark.NumPriorities - 1; i >= 0; i-- {
		// A fraction below 1 leaves the tier at least one token.
		r := min(floorTokens(c.fracs[i]*float64(burst)), float64(burst-1))
		if r < floor {
			r = floor
		}
		floor = r
		c.reserve[i] = r
		c.gcraArgs[i] = [3]any{1e6 / float64(limit), burst, r}
	}
}

// floorTokens rounds x, a fraction times the burst, down to whole tokens.
// A product within a few ulps of a whole number is that number: 0.57×100
// is 56.99999999999999 in float64, and a reserve of 57 % of 100 is 57.
func floorTokens(x float64) float64 {
	if r := math.Round(x); math.Abs(x-r) <= 1e-9*max(1, x) {
		return r
	}
	return math.Floor(x)
}

// durationFromTokens is the time limit takes to refill tokens, rounded up
// to the nanosecond.
func durationFromTokens(limit rate.Limit, tokens float64) time.Duration {
	if tokens <= 0 {
		return 0
	}
	d := math.Ceil(tokens / float64(limit) * float64(time.Second))
	if d >= math.MaxInt64 {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(d)
}

// reset is the time until a call of tier i and cost n may take its tokens
// from a bucket that holds tokens, when nobody else takes any meanwhile.
func (c *config) reset(i, n int, tokens float64) time.Duration {
	return durationFromTokens(c.limit, c.reserve[i]+float64(n)-tokens)
}

// remaining is the whole tokens tier i may take from a bucket holding
// tokens.
func (c *config) remaining(i int, tokens float64) int64 {
	if c.inf {
		return int64(c.burst)
	}
	if r := math.Floor(tokens - c.reserve[i]); r > 0 {
		return int64(r)
	}
	return 0
}

// quota is the quota view of tier i for a bucket holding tokens.
func (c *config) quota(i int, tokens float64) bulwark.Quota {
	q := bulwark.Quota{Name: c.name, Limit: int64(c.burst), Window: c.window, Remaining: c.remaining(i, tokens)}
	if q.Remaining < 1 && !c.inf {
		q.Reset = c.reset(i, 1, tokens)
	}
	return q
}

// A bucket is one token bucket with tiers: an x/time/rate Limiter, and a
// mutex that makes "check the tokens, then take them" atomic.
type bucket struct {
	mu  sync.Mutex
	lim *rate.Limiter // nil while the limit is rate.Inf since the start
	c   *config       // the config lim follows
	// last is the latest time seen: time never goes back, so the limiter
	// never counts an interval twice.
	last time.Time
	// floor is a lower bound of the tokens in lim at last and later: every
	// take goes through mu, and tokens only grow with time otherwise. While
	// it covers a call's need, a take needs no look at the tokens.
	floor   float64
	evicted bool // removed from its Keyed shard; look the key up again
	// n, when set, counts the decisions of take(count=true) under mu: a
	// Limiter's success path then needs no atomic of its own.
	n *decisionCounts
}

// decisionCounts are the counts of bulwark.ratelimit.decisions, by slot
// (slotAllowed or slotLimited, plus the tier index).
type decisionCounts [2 * bulwark.NumPriorities]int64

func (b *bucket) init(c *config) {
	b.c = c
	if !c.inf {
		b.lim = rate.NewLimiter(c.limit, c.burst)
		b.floor = float64(c.burst)
	}
}

// syncLocked brings b to cur, unless b already follows cur or a newer
// config, and returns the config b follows. A bucket that was idle through
// several changes refills at its old limit until the latest change. b.mu
// is held.
func (b *bucket) syncLocked(cur *config) *config {
	old := b.c
	if old == cur || old.gen >= cur.gen {
		return old
	}
	b.c = cur
	b.floor = 0 // look again
	if cur.inf {
		return cur
	}
	at := cur.at
	if at.Before(b.last) {
		at = b.last
	} else {
		b.last = at
	}
	if b.lim == nil || old.inf {
		// From unlimited: the bucket starts full.
		b.lim = rate.NewLimiter(cur.limit, cur.burst)
		return cur
	}
	if old.limit != cur.limit {
		b.lim.SetLimitAt(at, cur.limit)
	}
	if old.burst != cur.burst {
		b.lim.SetBurstAt(at, cur.burst)
	}
	return cur
}

// take tries to take n tokens for tier i at t, under cur (or the newer
// config the bucket follows, which it returns). It returns whether the tier
// took them and the tokens left (after the take when it did, before
// otherwise). When exact is false and the tier took its tokens, tokens may
// be a lower bound. ok is false and evicted true when the bucket was
// evicted meanwhile. When count is true and b.n is set, the decision is
// counted.
func (b *bucket) take(cur *config, i, n int, t time.Time, exact, count bool) (c *config, tokens float64, ok, evicted bool) {
	b.mu.Lock()
	c, tokens, ok, evicted = b.takeLocked(cur, i, n, t, exact)
	if count && b.n != nil && !evicted {
		if ok {
			b.n[slotAllowed+i]++
		} else {
			b.n[slotLimited+i]++
		}
	}
	b.mu.Unlock()
	return c, tokens, ok, evicted
}

// count counts a decision of tier i made outside take.
func (b *bucket) count(slot int) {
	if b.n != nil {
		b.mu.Lock()
		b.n[slot]++
		b.mu.Unlock()
	}
}

// counts returns a copy of the decision counts.
func (b *bucket) counts() decisionCounts {
	b.mu.Lock()
	defer b.mu.Unlock()
	return *b.n
}

// takeLocked is take without counting; b.mu is held.
func (b *bucket) takeLocked(cur *config, i, n int, t time.Time, exact bool) (c *config, tokens float64, ok, evicted bool) {
	if b.evicted {
		return cur, 0, false, true
	}
	c = b.syncLocked(cur)
	if c.inf {
		return c, float64(c.burst), true, false
	}
	if t.Before(b.last) {
		// Calls raced to the lock, or the caller's times go back.
		t = b.last
	} else {
		b.last = t
	}
	cost := float64(n)
	need := c.reserve[i] + cost
	if !exact {
		if b.floor >= need {
			// Enough tokens for sure: one take, no look.
			if b.lim.AllowN(t, n) {
				b.floor -= cost
				ok = true
			}
			return c, b.floor, ok, false
		}
		if c.reserve[i] == 0 {
			// No reserve to keep: the take is the check.
			if b.lim.AllowN(t, n) {
				b.floor = 0
				return c, 0, true, false
			}
		}
	}
	tokens = b.lim.TokensAt(t)
	if tokens >= need && b.lim.AllowN(t, n) {
		tokens -= cost
		ok = true
	}
	b.floor = tokens
	return c, tokens, ok, false
}

// peek returns the tokens in b at t without taking any, and the config b
// follows.
func (b *bucket) peek(cur *config, t time.Time) (*config, float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.syncLocked(cur)
	if c.inf {
		return c, float64(c.burst)
	}
	if t.Before(b.last) {
		t = b.last
	}
	return c, b.lim.TokensAt(t)
}

// LimitedError is the refusal of a [Limiter] or a [Keyed] limiter. It wraps
// [ErrLimited] and the limiter's class (a Keyed limiter's overflow bucket:
// [bulwark.ErrUnavailable], see [Keyed]), and carries the retry hint and
// the quota view that the RateLimit headers need ([bulwark.RetryAfter],
// [bulwark.QuotaFrom]).
//
// A LimitedError never changes once returned: its hint and quota are those
// of the call it refused. The hint is rounded up to the millisecond, so
// that refusals of one tier in the same millisecond share one error: a
// limiter under a flood of refusals allocates about one LimitedError per
// tier and millisecond, not one per call.
type LimitedError struct {
	c         *config
	tier      bulwark.Priority
	over      bool // refused by a Keyed limiter's overflow bucket
	remaining int64
	reset     time.Duration
}

// Error returns "ratelimit: <name>: limited (<tier>)", or for a Keyed
// limiter's overflow bucket "ratelimit: <name>: key table full, overflow
// bucket limited (<tier>)".
func (e *LimitedError) Error() string { return e.c.msgs[b2i(e.over)][e.tier.Index()] }

// Unwrap returns [ErrLimited] and the limiter's class.
func (e *LimitedError) Unwrap() []error { return e.c.unwrap[b2i(e.over)] }

// Priority returns the tier that was refused.
func (e *LimitedError) Priority() bulwark.Priority { return e.tier }

// RetryAfter returns the time, at the refusal, until the refused call could
// take its tokens (its cost, see [WithCost]) if nobody else took any
// meanwhile, rounded up to the millisecond.
func (e *LimitedError) RetryAfter() time.Duration { return e.reset }

// Quota returns the quota view of the refused tier at the refusal: Limit is
// the burst, Window the time the bucket takes to refill from empty
// (burst/limit), Remaining the whole tokens the tier could take (0 unless
// the call cost more than that), and Reset the same as RetryAfter.
func (e *LimitedError) Quota() bulwark.Quota {
	return bulwark.Quota{
		Name:      e.c.name,
		Limit:     int64(e.c.burst),
		Window:    e.c.window,
		Remaining: e.remaining,
		Reset:     e.reset,
	}
}

// CostError is the refusal of a call whose cost ([WithCost]) the limiter
// can never grant: above the burst (a bucket never holds more), or
// negative. It wraps [ErrCost] and [bulwark.ErrRejected]; retrying cannot
// help, so it carries no hint and Retryable reports false.
type CostError struct {
	Name  string // the limiter's name
	Cost  int    // the cost asked
	Burst int    // the burst at the refusal
}

// Error says what was asked and what the limiter can grant.
func (e *CostError) Error() string {
	prefix := "ratelimit: "
	if e.Name != "" {
		prefix += e.Name + ": "
	}
	if e.Cost < 0 {
		return fmt.Sprintf("%snegative cost %d", prefix, e.Cost)
	}
	return fmt.Sprintf("%scost %d above the burst %d: never admitted", prefix, e.Cost, e.Burst)
}

// Unwrap returns [ErrCost] and [bulwark.ErrRejected].
func (e *CostError) Unwrap() []error { return costUnwrap }

// Retryable reports false: the same call is refused again.
func (e *CostError) Retryable() bool { return false }

var costUnwrap = []error{ErrCost, bulwark.ErrRejected}

// errCache keeps the latest refusal of each tier, own and overflow, so that
// refusals with the same numbers share one immutable error.
type errCache [2][bulwark.NumPriorities]atomic.Pointer[LimitedError]

// get returns a LimitedError with these values: the cached one when its
// values are these, otherwise a new one, which it caches.
func (ec *errCache) get(c *config, over bool, i int, remaining int64, reset time.Duration) *LimitedError {
	const ms = time.Millisecond
	if r := reset % ms; r != 0 && reset <= math.MaxInt64-ms {
		reset += ms - r
	}
	slot := &ec[b2i(over)][i]
	if e := slot.Load(); e != nil && e.c == c && e.reset == reset && e.remaining == remaining {
		return e
	}
	e := &LimitedError{c: c, tier: bulwark.Sheddable + bulwark.Priority(i), over: over, remaining: remaining, reset: reset}
	slot.Store(e)
	return e
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func noopDone(error) {}
