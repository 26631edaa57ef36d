package ratelimit

import (
	"errors"
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

// config is what every bucket of a limiter shares.
type config struct {
	name   string
	limit  rate.Limit
	burst  int
	inf    bool // limit == rate.Inf: every call is admitted
	window time.Duration
	// need[i] is reserve[i]+1: the tokens tier i needs in the bucket to
	// take one.
	need    [bulwark.NumPriorities]float64
	reserve [bulwark.NumPriorities]float64
	unwrap  []error // ErrLimited, class
	msgs    [bulwark.NumPriorities]string
}

func newConfig(name string, limit rate.Limit, burst int, o *options) config {
	if math.IsNaN(float64(limit)) || limit <= 0 {
		panic("ratelimit: limit must be > 0")
	}
	inf := limit == rate.Inf
	if burst < 1 && !inf {
		panic("ratelimit: burst must be >= 1")
	}
	c := config{
		name:   name,
		limit:  limit,
		burst:  burst,
		inf:    inf,
		unwrap: []error{ErrLimited, o.class},
	}
	if !inf {
		c.window = durationFromTokens(limit, float64(burst))
	}
	// Reserves in whole tokens, never below that of a more important tier.
	floor := 0.0
	for i := bulwark.NumPriorities - 1; i >= 0; i-- {
		// A fraction below 1 leaves the tier at least one token.
		r := min(floorTokens(o.reserves[i]*float64(burst)), float64(burst-1))
		if r < floor {
			r = floor
		}
		floor = r
		c.reserve[i] = r
		c.need[i] = r + 1
	}
	prefix := "ratelimit: "
	if name != "" {
		prefix += name + ": "
	}
	for _, p := range bulwark.Priorities {
		c.msgs[p.Index()] = prefix + "limited (" + p.String() + ")"
	}
	return c
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

// reset is the time until tier i may take a token from a bucket that holds
// tokens, when nobody else takes one meanwhile.
func (c *config) reset(i int, tokens float64) time.Duration {
	return durationFromTokens(c.limit, c.need[i]-tokens)
}

// quota is the quota view of tier i for a bucket holding tokens.
func (c *config) quota(i int, tokens float64) bulwark.Quota {
	q := bulwark.Quota{Name: c.name, Limit: int64(c.burst), Window: c.window}
	if c.inf {
		q.Remaining = int64(c.burst)
		return q
	}
	if r := math.Floor(tokens - c.reserve[i]); r > 0 {
		q.Remaining = int64(r)
	}
	if q.Remaining < 1 {
		q.Reset = c.reset(i, tokens)
	}
	return q
}

// A bucket is one token bucket with tiers: an x/time/rate Limiter, and a
// mutex that makes "check the tokens, then take one" atomic.
type bucket struct {
	mu  sync.Mutex
	lim *rate.Limiter
	// last is the latest time seen: time never goes back, so the limiter
	// never counts an interval twice.
	last time.Time
	// floor is a lower bound of the tokens in lim at last and later: every
	// take goes through mu, and tokens only grow with time otherwise. While
	// it covers a tier's reserve, a take needs no look at the tokens.
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
	if !c.inf {
		b.lim = rate.NewLimiter(c.limit, c.burst)
		b.floor = float64(c.burst)
	}
}

// take tries to take a token for tier i at t. It returns whether the tier
// took one and the tokens left (after the take when it did, before
// otherwise). When exact is false and the tier took a token, tokens may be
// a lower bound. ok is false and evicted true when the bucket was evicted
// meanwhile. When count is true and b.n is set, the decision is counted.
func (b *bucket) take(c *config, i int, t time.Time, exact, count bool) (tokens float64, ok, evicted bool) {
	b.mu.Lock()
	tokens, ok, evicted = b.takeLocked(c, i, t, exact)
	if count && b.n != nil && !evicted {
		if ok {
			b.n[slotAllowed+i]++
		} else {
			b.n[slotLimited+i]++
		}
	}
	b.mu.Unlock()
	return tokens, ok, evicted
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
func (b *bucket) takeLocked(c *config, i int, t time.Time, exact bool) (tokens float64, ok, evicted bool) {
	if c.inf {
		return float64(c.burst), true, false
	}
	need := c.need[i]
	if b.evicted {
		return 0, false, true
	}
	if t.Before(b.last) {
		// Calls raced to the lock, or the caller's times go back.
		t = b.last
	} else {
		b.last = t
	}
	if !exact {
		if b.floor >= need {
			// Enough tokens for sure: one take, no look.
			if b.lim.AllowN(t, 1) {
				b.floor--
				ok = true
			}
			return b.floor, ok, false
		}
		if need == 1 {
			// No reserve to keep: the take is the check.
			if b.lim.AllowN(t, 1) {
				b.floor = 0
				return 0, true, false
			}
		}
	}
	tokens = b.lim.TokensAt(t)
	if tokens >= need && b.lim.AllowN(t, 1) {
		tokens--
		ok = true
	}
	b.floor = tokens
	return tokens, ok, false
}

// peek returns the tokens in b at t without taking any.
func (b *bucket) peek(c *config, t time.Time) float64 {
	if c.inf {
		return float64(c.burst)
	}
	b.mu.Lock()
	if t.Before(b.last) {
		t = b.last
	}
	tokens := b.lim.TokensAt(t)
	b.mu.Unlock()
	return tokens
}

// LimitedError is the refusal of a [Limiter] or a [Keyed] limiter. It wraps
// [ErrLimited] and the limiter's class, and carries the retry hint and the
// quota view that the RateLimit headers need ([bulwark.RetryAfter],
// [bulwark.QuotaFrom]).
//
// A [Limiter] (and a Keyed limiter's shared no-key and overflow buckets)
// refuses without allocating: it returns one preallocated LimitedError per
// tier, whose values are those of the latest refusal of that tier — under
// concurrent refusals, possibly another caller's a moment later. A per-key
// bucket's refusal is a fresh LimitedError.
type LimitedError struct {
	c     *config
	tier  bulwark.Priority
	reset atomic.Int64 // time.Duration
}

func (e *LimitedError) set(reset time.Duration) *LimitedError {
	e.reset.Store(int64(reset))
	return e
}

// Error returns "ratelimit: <name>: limited (<tier>)".
func (e *LimitedError) Error() string { return e.c.msgs[e.tier.Index()] }

// Unwrap returns [ErrLimited] and the limiter's class.
func (e *LimitedError) Unwrap() []error { return e.c.unwrap }

// Priority returns the tier that was refused.
func (e *LimitedError) Priority() bulwark.Priority { return e.tier }

// RetryAfter returns the time, at the refusal, until the refused tier
// could take a token if nobody else took one meanwhile.
func (e *LimitedError) RetryAfter() time.Duration { return time.Duration(e.reset.Load()) }

// Quota returns the quota view of the refused tier at the refusal:
// Limit is the burst, Window the time the bucket takes to refill from
// empty (burst/limit), Remaining 0 and Reset the same as RetryAfter.
func (e *LimitedError) Quota() bulwark.Quota {
	return bulwark.Quota{
		Name:   e.c.name,
		Limit:  int64(e.c.burst),
		Window: e.c.window,
		Reset:  e.RetryAfter(),
	}
}

// shared is a bucket used by many callers, with one preallocated refusal
// per tier.
type shared struct {
	b    bucket
	errs [bulwark.NumPriorities]LimitedError
}

func (s *shared) init(c *config) {
	s.b.init(c)
	for _, p := range bulwark.Priorities {
		s.errs[p.Index()].c = c
		s.errs[p.Index()].tier = p
	}
}

func noopDone(error) {}
