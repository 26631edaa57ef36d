package ratelimit

import (
	"context"
	"errors"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwark-go/bulwark/internal/redisopt"
	"go.opentelemetry.io/otel/metric"
	"golang.org/x/time/rate"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/internal/telemetry"
)

// DefaultRedisTimeout is the default time a [Redis] or [KeyedRedis]
// limiter gives one decision's round trip to Redis (see [WithTimeout]).
const DefaultRedisTimeout = 50 * time.Millisecond

// DefaultRedisPrefix is the default prefix of a Redis limiter's keys (see
// [WithPrefix]).
const DefaultRedisPrefix = "bulwark:ratelimit:"

// ErrStore is wrapped, with [bulwark.ErrUnavailable], by the refusal of a
// Redis limiter built [WithFailClosed] when Redis did not answer in time or
// answered with an error. The refusal is a [*StoreError].
var ErrStore = errors.New("ratelimit: store unavailable")

// StoreError is the refusal of a fail-closed Redis limiter whose store
// failed. It wraps [ErrStore] and [bulwark.ErrUnavailable] (HTTP 503), not
// the cause: a timeout of the limiter's own is not the caller's deadline.
type StoreError struct {
	Name  string // the limiter's name
	Cause error  // what Redis or the client said
}

// Error returns "ratelimit: <name>: store unavailable: <cause>".
func (e *StoreError) Error() string {
	prefix := "ratelimit: "
	if e.Name != "" {
		prefix += e.Name + ": "
	}
	return prefix + "store unavailable: " + e.Cause.Error()
}

// Unwrap returns [ErrStore] and [bulwark.ErrUnavailable].
func (e *StoreError) Unwrap() []error { return storeUnwrap }

var storeUnwrap = []error{ErrStore, bulwark.ErrUnavailable}

// gcra is the decision: generic cell rate algorithm, with the tier's
// reserve and the call's cost, on Redis's clock. The key holds the
// theoretical arrival time (TAT, µs since the epoch): the bucket holds
// burst − (TAT − now)/interval tokens. A call of cost n is admitted when
// the tokens left after taking n are at least the reserve; the key then
// expires when the bucket is full again. It returns {1, tokens left} or
// {0, tokens there}, the tokens as a string (Lua numbers become integers
// on the way out).
var gcra = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local reserve = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local want = tonumber(ARGV[5])
local tat = tonumber(redis.call('GET', KEYS[1]) or 0) or 0
if tat < now then tat = now end
local tokens = burst - (tat - now) / interval
if tokens - cost >= reserve - 1e-9 then
  local k = math.floor(tokens - reserve + 1e-9)
  if k > want then k = want end
  if k < cost then k = cost end
  tat = tat + k * interval
  local ttl = math.ceil((tat - now) / 1000)
  if ttl < 1 then ttl = 1 end
  if ttl > 1e15 then ttl = 1e15 end
  redis.call('SET', KEYS[1], string.format('%.17g', tat), 'PX', string.format('%d', ttl))
  return {1, string.format('%.17g', tokens - k), k}
end
return {0, string.format('%.17g', tokens), 0}
`)

// redisCore is what [Redis] and [KeyedRedis] share.
type redisCore struct {
	tunable
	client     redis.UniversalClient
	keyed      bool
	keyFn      func(context.Context) string // keyed: nil is the CallInfo's key
	shared     string                       // the key of the shared (no-key) bucket
	prefix     string                       // prefix + "{" + name + ":" for keyed buckets
	timeout    time.Duration
	failClosed bool
	fallback   bulwark.Admitter
	cost       func(context.Context) int
	errs       errCache
	batch      batcher
	lease      *lease              // WithLocalBatch; nil for none
	counts     *telemetry.Counters // decisions, by slot
	storeErrs  *telemetry.Counters // by reason: timeout, error
	lastErr    atomic.Int64        // Unix ns of the latest store failure
	duration   metric.Float64Histogram
	durSet     telemetry.Set
	reg        *telemetry.Registration
}

// Store failure reasons, the slots of storeErrs.
const (
	storeTimeout = iota
	storeError
)

// redisBuckets are the bounds of bulwark.ratelimit.store.duration, in
// seconds: a loopback round trip takes ~0.1 ms, the default timeout is
// 50 ms.
var redisBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1}

func newRedisCore(what, name string, client redis.UniversalClient, limit rate.Limit, burst int, keyed bool, opts []Option) *redisCore {
	mustValid(what, limit, burst)
	if client == nil {
		panic("ratelimit: " + what + ": nil Redis client")
	}
	if ok, known := redisopt.ContextTimeoutEnabled(client); known && !ok {
		panic("ratelimit: " + what + ": the Redis client must be built with ContextTimeoutEnabled: true " +
			"(redis.Options.ContextTimeoutEnabled), or go-redis ignores the per-decision timeout on reads")
	}
	class := bulwark.ErrUnavailable
	if keyed {
		class = bulwark.ErrRejected
	}
	o := newOptions(class, opts)
	r := &redisCore{
		client:     client,
		keyed:      keyed,
		keyFn:      o.keyFn,
		shared:     o.prefix + "{" + name + "}",
		prefix:     o.prefix + "{" + name + ":",
		timeout:    o.timeout,
		failClosed: o.failClosed,
		fallback:   o.fallback,
		cost:       o.cost,
		counts:     telemetry.NewCounters(decisionSets(name)...),
		storeErrs: telemetry.NewCounters(
			telemetry.NewSet(telemetry.KeyPolicyName.String(name), telemetry.KeyReason.String("timeout")),
			telemetry.NewSet(telemetry.KeyPolicyName.String(name), telemetry.KeyReason.String("error")),
		),
		durSet: telemetry.NewSet(telemetry.KeyPolicyName.String(name)),
	}
	r.cfg.Store(newConfig(name, limit, burst, &o))
	if o.localBatch > 1 && !keyed {
		r.lease = &lease{size: o.localBatch}
	}
	registerRedis(r, o.mp)
	return r
}

func registerRedis(r *redisCore, mp metric.MeterProvider) {
	m := telemetry.Meter(mp, "ratelimit")
	decisions := decisionsInstrument(m)
	errs := telemetry.Int64ObservableCounter(m, "bulwark.ratelimit.store.errors",
		"Decisions of a Redis rate limiter whose round trip to Redis failed or timed out, by reason.", "{error}")
	r.duration = telemetry.Float64Histogram(m, "bulwark.ratelimit.store.duration",
		"Time of a Redis rate limiter's round trip to Redis per decision.", "s", redisBuckets)
	r.reg = telemetry.Register(m, r, func(r *redisCore, o metric.Observer) {
		r.counts.Observe(o, decisions)
		r.storeErrs.Observe(o, errs)
	}, decisions, errs)
}

// key returns the Redis key of ctx's call.
func (r *redisCore) key(ctx context.Context, info bulwark.CallInfo) string {
	if !r.keyed {
		return r.shared
	}
	k := info.Key
	if r.keyFn != nil {
		k = r.keyFn(ctx)
	}
	if k == "" {
		return r.shared
	}
	return r.prefix + k + "}"
}

// errStoreReply is a reply of the script that is not what it returns.
var errStoreReply = errors.New("ratelimit: unexpected reply from the Redis script")

// decide makes one decision for ctx's call: on admission it returns the
// done of the fallback that admitted it, or noopDone; on refusal the
// refusal, with limited true and the hint when it is a *LimitedError.
// count says whether to count the decision.
func (r *redisCore) decide(ctx context.Context, info bulwark.CallInfo, n int, count bool) (done func(error), err error, reset time.Duration, limited bool) {
	i := info.Priority.Index()
	c := r.cfg.Load()
	if c.inf || n == 0 {
		if count {
			r.counts.Add(slotAllowed+i, 1)
		}
		if info.Quota != nil {
			info.Quota.Record(c.quota(i, float64(c.burst)))
		}
		return noopDone, nil, 0, false
	}
	start := time.Now()
	if r.lease != nil {
		if left, ok := r.lease.take(i, n, start, c); ok {
			if count {
				r.counts.Add(slotAllowed+i, 1)
			}
			if info.Quota != nil {
				info.Quota.Record(c.quota(i, left))
			}
			return noopDone, nil, 0, false
		}
	}
	deadline := start.Add(r.timeout)
	tctx, cancel := context.WithDeadline(ctx, deadline)
	g := &c.gcraArgs[i]
	want := n
	if r.lease != nil {
		want = r.lease.want(n)
	}
	res, rerr := r.batch.run(tctx, deadline, r.client, r.key(ctx, info), []any{g[0], g[1], g[2], n, want})
	cancel()
	r.duration.Record(ctx, time.Since(start).Seconds(), r.durSet.Record...)
	var (
		ok     bool
		tokens float64
		taken  int
	)
	if rerr == nil {
		ok, tokens, taken, rerr = parseReply(res)
	}
	if rerr != nil {
		if err := ctx.Err(); err != nil {
			return nil, err, 0, false // the caller went away: no decision
		}
		if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) && !time.Now().Before(dl) {
			// The caller's deadline ended the round trip (go-redis's read
			// deadline may fire a moment before the context's timer).
			return nil, context.DeadlineExceeded, 0, false
		}
		return r.storeFailed(ctx, i, rerr, count)
	}
	if count {
		if ok {
			r.counts.Add(slotAllowed+i, 1)
		} else {
			r.counts.Add(slotLimited+i, 1)
		}
	}
	if ok {
		if taken > n && r.lease != nil {
			r.lease.add(i, taken-n, tokens, start)
		}
		if info.Quota != nil {
			info.Quota.Record(c.quota(i, tokens))
		}
		return noopDone, nil, 0, false
	}
	reset = c.reset(i, n, tokens)
	return nil, r.errs.get(c, false, i, c.remaining(i, tokens), reset), reset, true
}

// storeFailed counts a store failure and answers as configured: the
// fallback decides, or the call is refused (fail-closed) or admitted
// (fail-open).
func (r *redisCore) storeFailed(ctx context.Context, i int, cause error, count bool) (func(error), error, time.Duration, bool) {
	reason := storeError
	if errors.Is(cause, context.DeadlineExceeded) || isTimeout(cause) {
		reason = storeTimeout
	}
	r.storeErrs.Add(reason, 1)
	r.lastErr.Store(time.Now().UnixNano())
	switch {
	case r.fallback != nil:
		done, err := r.fallback.Admit(ctx)
		if count {
			r.countOutcome(i, err == nil)
		}
		return done, err, 0, false
	case r.failClosed:
		if count {
			r.counts.Add(slotLimited+i, 1)
		}
		return nil, &StoreError{Name: r.cfg.Load().name, Cause: cause}, 0, false
	}
	if count {
		r.counts.Add(slotAllowed+i, 1)
	}
	return noopDone, nil, 0, false
}

func (r *redisCore) countOutcome(i int, ok bool) {
	if ok {
		r.counts.Add(slotAllowed+i, 1)
	} else {
		r.counts.Add(slotLimited+i, 1)
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// parseReply reads the script's {admitted, tokens, taken}.
func parseReply(res []any) (ok bool, tokens float64, taken int, err error) {
	if len(res) != 3 {
		return false, 0, 0, errStoreReply
	}
	flag, _ := res[0].(int64)
	k, _ := res[2].(int64)
	s, isStr := res[1].(string)
	if !isStr {
		return false, 0, 0, errStoreReply
	}
	tokens, err = strconv.ParseFloat(s, 64)
	if err != nil {
		return false, 0, 0, errStoreReply
	}
	return flag == 1, tokens, int(k), nil
}

// lease is what a [Redis] limiter built [WithLocalBatch] took from Redis
// ahead of its calls: tokens per tier that leased them, used by calls of
// that tier or a more important one, and dropped once older than a second
// (or the time the bucket takes to refill the batch, when longer).
type lease struct {
	size   int
	mu     sync.Mutex
	tokens [bulwark.NumPriorities]float64
	at     [bulwark.NumPriorities]time.Time // of the latest lease of each tier
	left   float64                          // tokens left in Redis at the latest lease
}

// want is what a call of cost n asks Redis for: n and enough to bring the
// outstanding lease up to size − 1.
func (l *lease) want(n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out float64
	for _, t := range l.tokens {
		out += t
	}
	return n + max(0, l.size-1-int(math.Ceil(out)))
}

// add records k tokens leased by tier i at t, with left in Redis after.
// Past size − 1 outstanding (concurrent leases), the excess is dropped: the
// fleet admits less, never more.
func (l *lease) add(i, k int, left float64, t time.Time) {
	l.mu.Lock()
	var out float64
	for _, v := range l.tokens {
		out += v
	}
	l.tokens[i] += min(float64(k), max(0, float64(l.size-1)-out))
	l.at[i] = t
	l.left = left
	l.mu.Unlock()
}

// take takes n leased tokens for tier i at t, from the tokens leased by
// tier i or a less important one. It returns the tokens the quota shows:
// those left in Redis at the latest lease and those still leased.
func (l *lease) take(i, n int, t time.Time, c *config) (float64, bool) {
	maxAge := max(durationFromTokens(c.limit, float64(l.size)), time.Second)
	l.mu.Lock()
	defer l.mu.Unlock()
	for j := i; j >= 0; j-- {
		if l.tokens[j] > 0 && t.Sub(l.at[j]) > maxAge {
			l.tokens[j] = 0 // stale: the bucket has refilled it since
		}
		if l.tokens[j] >= float64(n) {
			l.tokens[j] -= float64(n)
			var out float64
			for _, v := range l.tokens {
				out += v
			}
			return l.left + out, true
		}
	}
	return 0, false
}

// admit is Admit's decision: cost, then one decision.
func (r *redisCore) admit(ctx context.Context) (func(error), error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	info := bulwark.CallInfoFrom(ctx)
	n := callCost(r.cost, ctx)
	if err := checkCost(r.cfg.Load(), n); err != nil {
		r.counts.Add(slotLimited+info.Priority.Index(), 1)
		return nil, err
	}
	done, err, _, _ := r.decide(ctx, info, n, true)
	return done, err
}

func (r *redisCore) do(ctx context.Context, fn func(context.Context) error) error {
	done, err := r.admit(ctx)
	if err != nil {
		return err
	}
	// done is the fallback's (a rate limit's holds nothing): release it
	// however fn ends.
	ok := false
	defer func() {
		if !ok {
			done(errPanicked)
		}
	}()
	err = fn(ctx)
	ok = true
	done(err)
	return err
}

// errPanicked is what a fallback's done hears when fn panicked or called
// runtime.Goexit.
var errPanicked = errors.New("ratelimit: fn panicked or exited")

func (r *redisCore) wait(ctx context.Context) error {
	info := bulwark.CallInfoFrom(ctx)
	i := info.Priority.Index()
	n := callCost(r.cost, ctx)
	if err := checkCost(r.cfg.Load(), n); err != nil {
		r.counts.Add(slotLimited+i, 1)
		return err
	}
	var last error
	_, err := wait(ctx, func(time.Time) (time.Duration, bool) {
		done, err, reset, limited := r.decide(ctx, info, n, false)
		last = err
		if err == nil {
			done(nil) // Wait holds nothing
			return 0, true
		}
		if limited {
			return reset, false
		}
		return -1, false // a store failure's or the fallback's refusal: final
	})
	switch {
	case err == nil:
		r.counts.Add(slotAllowed+i, 1)
		return nil
	case err == errPastDeadline:
		r.counts.Add(slotLimited+i, 1)
		return last
	case err == errBadCost:
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.counts.Add(slotLimited+i, 1)
		return last
	}
	return err
}

// snapshotRedis is the snapshot of a Redis limiter: no tokens (they live
// in Redis, and a snapshot does no I/O), but the store's failures.
func (r *redisCore) snapshotRedis() bulwark.Snapshot {
	c := r.cfg.Load()
	var n [2 * bulwark.NumPriorities]int64
	for i := range n {
		n[i] = r.counts.Load(i)
	}
	s := r.snapshot(c, n)
	s.Figures = append(s.Figures,
		bulwark.Figure{Name: "store timeouts", Value: float64(r.storeErrs.Load(storeTimeout)), Unit: "{error}"},
		bulwark.Figure{Name: "store errors", Value: float64(r.storeErrs.Load(storeError)), Unit: "{error}"},
	)
	if last := r.lastErr.Load(); last != 0 && time.Since(time.Unix(0, last)) < 10*time.Second {
		s.State, s.Health = "store failing", "warn"
		if r.failClosed && r.fallback == nil {
			s.Health = "fail"
		}
	}
	return s
}

// Redis is a rate limiter whose one token bucket lives in Redis, shared by
// every instance of a fleet that uses the same Redis, name and prefix:
// ten instances of a service with a Redis limiter of 100 calls/s admit 100
// calls/s between them. Create one with [NewRedis].
//
// Each decision is one round trip: a Lua script (GCRA: the key holds the
// bucket's theoretical arrival time) loaded on first use and run with
// EVALSHA; after a Redis restart, the first decision finds the script gone
// and sends it again (EVAL: one extra round trip). Concurrent decisions
// share round trips: while one is in flight, the callers that arrive queue,
// and the first of them sends them all in one pipeline when it ends (no
// goroutine of the limiter's own; about 0.1 round trip per decision from
// 16 goroutines). The clock is Redis's
// (TIME), never the instances'. The tiers and reserves ([WithReserve]) and
// the cost ([WithCost]) are those of [Limiter], applied in the script, so
// they hold fleet-wide; refusals are the same [*LimitedError] (wrapping
// [ErrLimited] and [bulwark.ErrUnavailable], see [WithClass]) with the same
// hints and quota for the RateLimit headers. The key is
// "<prefix>{<name>}" ([WithPrefix]), one Cluster slot, and expires when
// the bucket would be full again.
//
// Each decision has [DefaultRedisTimeout] (50 ms, [WithTimeout]) for its
// round trip, and never blocks longer. When Redis fails or does not answer
// in time, the limiter admits the call (fail-open), unless a fallback
// decides ([WithFallback], say a local [Limiter] with the fleet limit ÷
// the instances) or it was built [WithFailClosed] (a [*StoreError],
// [bulwark.ErrUnavailable]). Every failure is counted; the next decision
// tries Redis again, so a Redis that comes back is used at once.
//
// SetLimit and SetBurst change this instance's view at once; every
// instance must be changed for the fleet to follow (the admin page's
// set-limit acts on one instance). The tokens taken stay in Redis as time:
// a new limit re-reads them at the new rate.
//
// A Redis limiter is safe for concurrent use. The zero value is not
// usable.
type Redis struct{ r *redisCore }

// KeyedRedis is a [Redis] limiter with a bucket per key (a tenant, a
// user), as [Keyed] is for [Limiter]: the key comes from the context
// ([bulwark.KeyFrom], see [WithKeyFunc]); calls without a key share one
// bucket. A key's bucket is "<prefix>{<name>:<key>}" (one Cluster slot per
// key) and expires once it would be full again, so Redis holds only the
// keys that are partly spent and needs no cap; [WithMaxKeys] is ignored.
// Refusals wrap [ErrLimited] and [bulwark.ErrRejected] (HTTP 429).
//
// A KeyedRedis limiter is safe for concurrent use. The zero value is not
// usable.
type KeyedRedis struct{ r *redisCore }

var (
	_ bulwark.Policy      = (*Redis)(nil)
	_ bulwark.Admitter    = (*Redis)(nil)
	_ bulwark.Snapshotter = (*Redis)(nil)
	_ bulwark.Controller  = (*Redis)(nil)
	_ bulwark.Policy      = (*KeyedRedis)(nil)
	_ bulwark.Admitter    = (*KeyedRedis)(nil)
	_ bulwark.Snapshotter = (*KeyedRedis)(nil)
	_ bulwark.Controller  = (*KeyedRedis)(nil)
)

// NewRedis returns a limiter named name whose bucket, in Redis through
// client, holds burst tokens and refills at limit tokens per second,
// starting full. It does no I/O. It panics, naming the argument, when limit
// is NaN or not positive, burst < 1, client is nil, or client is a go-redis
// client built without ContextTimeoutEnabled (go-redis would then ignore
// the per-decision timeout on socket reads, and a hung Redis would hang
// every call).
func NewRedis(name string, client redis.UniversalClient, limit rate.Limit, burst int, opts ...Option) *Redis {
	return &Redis{newRedisCore("NewRedis", name, client, limit, burst, false, opts)}
}

// NewKeyedRedis returns a limiter named name with a bucket per key in
// Redis through client, each holding burst tokens and refilling at limit
// tokens per second, starting full. It does no I/O, and panics as
// [NewRedis] does.
func NewKeyedRedis(name string, client redis.UniversalClient, limit rate.Limit, burst int, opts ...Option) *KeyedRedis {
	return &KeyedRedis{newRedisCore("NewKeyedRedis", name, client, limit, burst, true, opts)}
}

// Name returns the limiter's name.
func (l *Redis) Name() string { return l.r.cfg.Load().name }

// Limit returns the current limit, in tokens per second.
func (l *Redis) Limit() rate.Limit { return l.r.cfg.Load().limit }

// Burst returns the current burst.
func (l *Redis) Burst() int { return l.r.cfg.Load().burst }

// SetLimit sets the limit of this instance's decisions from now on. It
// returns an error, and changes nothing, when limit is NaN or not
// positive.
func (l *Redis) SetLimit(limit rate.Limit) error {
	return l.r.set("SetLimit", time.Now(), &limit, nil, "config", "")
}

// SetBurst sets the burst of this instance's decisions from now on. It
// returns an error, and changes nothing, when burst < 1.
func (l *Redis) SetBurst(burst int) error {
	return l.r.set("SetBurst", time.Now(), nil, &burst, "config", "")
}

// Allow reports whether a call with ctx's priority may happen now, and
// takes its tokens if it may. A store failure answers as configured
// (fail-open: true); a fallback's admission is released at once.
func (l *Redis) Allow(ctx context.Context) bool {
	done, err := l.r.admit(ctx)
	if err == nil {
		done(nil)
	}
	return err == nil
}

// Do runs fn if a call with ctx's priority may happen now, and otherwise
// returns the refusal at once without calling fn: a [*LimitedError], a
// [*CostError], a [*StoreError] (fail-closed) or the fallback's. An ended
// ctx is answered with ctx.Err().
func (l *Redis) Do(ctx context.Context, fn func(context.Context) error) error { return l.r.do(ctx, fn) }

// Admit decides as Do does. done releases the fallback's admission when a
// fallback decided, and does nothing otherwise.
func (l *Redis) Admit(ctx context.Context) (done func(error), err error) { return l.r.admit(ctx) }

// Wait blocks until a call with ctx's priority may happen, and takes its
// tokens, or until ctx ends (it then returns ctx.Err()). When ctx has a
// deadline before the hint of a refusal, Wait returns that refusal at
// once. A store failure is not waited out: it answers as configured.
func (l *Redis) Wait(ctx context.Context) error { return l.r.wait(ctx) }

// Snapshot returns the limiter's state for the admin page: kind
// "ratelimit"; state "ok", "unlimited" or "store failing" (a store failure
// in the last 10 s: warn, or fail when fail-closed); figures limit, burst,
// allowed, refused, refused per tier, store timeouts and store errors.
func (l *Redis) Snapshot() bulwark.Snapshot { return l.r.snapshotRedis() }

// Actions declares "set-limit", as [Limiter.Actions] does.
func (l *Redis) Actions() []bulwark.Action { return l.r.actions() }

// Control performs "set-limit" on this instance, as [Limiter.Control]
// does.
func (l *Redis) Control(ctx context.Context, action string, args map[string]string, reason string) error {
	return l.r.control(ctx, action, args, reason)
}

// Name returns the limiter's name.
func (l *KeyedRedis) Name() string { return l.r.cfg.Load().name }

// Limit returns the current limit of each bucket, in tokens per second.
func (l *KeyedRedis) Limit() rate.Limit { return l.r.cfg.Load().limit }

// Burst returns the current burst of each bucket.
func (l *KeyedRedis) Burst() int { return l.r.cfg.Load().burst }

// SetLimit sets the limit of this instance's decisions from now on, as
// [Redis.SetLimit] does.
func (l *KeyedRedis) SetLimit(limit rate.Limit) error {
	return l.r.set("SetLimit", time.Now(), &limit, nil, "config", "")
}

// SetBurst sets the burst of this instance's decisions from now on, as
// [Redis.SetBurst] does.
func (l *KeyedRedis) SetBurst(burst int) error {
	return l.r.set("SetBurst", time.Now(), nil, &burst, "config", "")
}

// Allow reports whether a call with ctx's key and priority may happen now,
// as [Redis.Allow] does.
func (l *KeyedRedis) Allow(ctx context.Context) bool {
	done, err := l.r.admit(ctx)
	if err == nil {
		done(nil)
	}
	return err == nil
}

// Do runs fn if a call with ctx's key and priority may happen now, as
// [Redis.Do] does.
func (l *KeyedRedis) Do(ctx context.Context, fn func(context.Context) error) error {
	return l.r.do(ctx, fn)
}

// Admit decides as Do does, as [Redis.Admit] does.
func (l *KeyedRedis) Admit(ctx context.Context) (done func(error), err error) { return l.r.admit(ctx) }

// Wait blocks until a call with ctx's key and priority may happen, as
// [Redis.Wait] does.
func (l *KeyedRedis) Wait(ctx context.Context) error { return l.r.wait(ctx) }

// Snapshot returns the limiter's state, as [Redis.Snapshot] does.
func (l *KeyedRedis) Snapshot() bulwark.Snapshot { return l.r.snapshotRedis() }

// Actions declares "set-limit", as [Limiter.Actions] does.
func (l *KeyedRedis) Actions() []bulwark.Action { return l.r.actions() }

// Control performs "set-limit" on this instance, as [Limiter.Control]
// does.
func (l *KeyedRedis) Control(ctx context.Context, action string, args map[string]string, reason string) error {
	return l.r.control(ctx, action, args, reason)
}
