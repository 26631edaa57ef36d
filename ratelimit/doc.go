// Package ratelimit admits calls at a sustained rate with bursts, on
// golang.org/x/time/rate token buckets, shedding low-priority work first and
// keeping a quota per key.
//
// # Model
//
// A bucket holds up to burst tokens and refills at limit tokens per second;
// a call takes one token. Each priority tier keeps a reserve for the tiers
// above it: a call may take a token only if the tokens left after taking it
// are at least its tier's reserve (by default, as fractions of the burst
// rounded down to whole tokens: Sheddable 50 %, SheddablePlus 25 %,
// Critical 5 %, CriticalPlus 0; see [WithReserve]). As the bucket drains,
// Sheddable calls are refused first, then SheddablePlus, then Critical, and
// CriticalPlus only when it is empty: at any instant a tier is refused only
// if every lower tier would be too, and over any interval the calls
// admitted are at most burst + limit × elapsed.
//
// With [WithCost] a call takes n tokens (a batch, the tokens of a prompt):
// the reserves and hints are exact for n, and a cost no bucket can grant
// (above the burst) is refused at once with a non-retryable [*CostError].
//
// [New] makes one bucket shared by every caller, which protects this
// service's capacity: its refusals are [bulwark.ErrUnavailable] (HTTP 503).
// [NewKeyed] makes a bucket per key (a tenant, a user), which enforces each
// caller's quota: its refusals are [bulwark.ErrRejected] (HTTP 429) — except
// those of its overflow bucket, used when the key table is full, which are
// this side's capacity: [bulwark.ErrUnavailable] (see [Keyed]). Both
// refusals wrap [ErrLimited] and are an immutable [*LimitedError], which
// carries the retry hint ([bulwark.RetryAfter]: when the refused call could
// take its tokens) and the quota view of the RateLimit headers
// ([bulwark.QuotaFrom]: q = burst, w = burst/limit, r = tokens the tier may
// take now, t = time until it may take one). On admission, a limiter
// records that quota in the context's [bulwark.QuotaRecorder] when there is
// one, for the headers of admitted responses.
//
// Limit and burst change at run time with SetLimit and SetBurst (an error,
// not a panic, for a bad value), or from the admin page: both limiters are
// a [bulwark.Snapshotter] (kind "ratelimit") and a [bulwark.Controller]
// (action "set-limit"). Constructors and options panic at construction,
// naming the argument, on values that cannot work: a limit that is NaN or
// not positive, a burst below 1 (with [rate.Inf] too), a reserve outside
// [0, 1), a key cap below 1.
//
// # Fleet-wide limits on Redis
//
// [NewRedis] and [NewKeyedRedis] keep the bucket (or a bucket per key) in
// Redis, shared by every instance of a fleet: the same tiers, costs,
// refusals, hints and quota, decided by one Lua script (GCRA) per call —
// one round trip (EVALSHA) in steady state, Redis's clock, keys
// "{hash-tagged}" to one Cluster slot that expire once refilled. Each
// decision has 50 ms ([WithTimeout]); when Redis fails it fails open, or
// asks a local fallback ([WithFallback]), or refuses ([WithFailClosed]).
// The client must be built with ContextTimeoutEnabled (construction panics
// otherwise). Concurrent decisions share pipelined round trips, and
// [WithLocalBatch] leases tokens for very hot limits within a documented
// error.
//
// Allow, AllowAt, Do and Admit decide at once; Wait blocks until the tier
// may take a token or the context ends. No goroutine runs in the
// background: buckets refill lazily when a call looks at them.
//
// # Metrics
//
// Meter github.com/bulwark-go/bulwark/ratelimit:
//
//   - bulwark.ratelimit.decisions (Int64ObservableCounter, {decision}):
//     decisions by bulwark.policy.name, bulwark.decision (allowed, limited)
//     and bulwark.priority.
//   - bulwark.ratelimit.keys (Int64ObservableUpDownCounter, {key}), keyed
//     limiters: keys with a bucket of their own, by bulwark.policy.name.
//   - bulwark.ratelimit.overflow (Int64ObservableCounter, {decision}), keyed
//     limiters: decisions made by the shared overflow bucket because the key
//     table was full (outcomes: a Wait counts once), by bulwark.policy.name.
//   - bulwark.ratelimit.store.errors (Int64ObservableCounter, {error}),
//     Redis limiters: decisions whose round trip to Redis failed, by
//     bulwark.policy.name and bulwark.reason (timeout, error).
//   - bulwark.ratelimit.store.duration (Float64Histogram, s), Redis
//     limiters: the round trip of each decision, by bulwark.policy.name
//     (buckets from 0.1 ms to 1 s).
package ratelimit
