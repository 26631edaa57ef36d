package ratelimit

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/bulwark-go/bulwark"
)

// An Option configures a [Limiter] or a [Keyed] limiter. Nil options are
// ignored; when an option is given twice, the last one wins.
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// defaultReserves are the default reserves, as fractions of the burst,
// indexed by [bulwark.Priority.Index]: a Sheddable call may take a token
// only if half the burst stays for the tiers above it, SheddablePlus a
// quarter, Critical 5 %, CriticalPlus nothing.
var defaultReserves = [bulwark.NumPriorities]float64{
	0.50, // Sheddable
	0.25, // SheddablePlus
	0.05, // Critical
	0,    // CriticalPlus
}

// DefaultMaxKeys is the default cap on the live keys of a [Keyed] limiter.
const DefaultMaxKeys = 100_000

type options struct {
	reserves [bulwark.NumPriorities]float64
	class    error
	mp       metric.MeterProvider
	keyFn    func(context.Context) string
	maxKeys  int
	cost     func(context.Context) int

	// Redis limiters only.
	timeout    time.Duration
	prefix     string
	fallback   bulwark.Admitter
	failClosed bool
	localBatch int
}

func newOptions(class error, opts []Option) options {
	o := options{reserves: defaultReserves, class: class, maxKeys: DefaultMaxKeys,
		timeout: DefaultRedisTimeout, prefix: DefaultRedisPrefix}
	for _, opt := range opts {
		if opt != nil {
			opt.apply(&o)
		}
	}
	return o
}

// WithReserve sets the reserve of tier p: the fraction of the burst that a
// call of tier p must leave in the bucket for the tiers above it. The
// fraction is rounded down to whole tokens. A tier's effective reserve is
// never below that of a more important tier (a lower reserve is raised to
// it), so a tier is refused only when every lower tier would be too.
// WithReserve panics when p is not one of the four tiers or fraction is not
// in [0, 1).
//
// Default: Sheddable 50 %, SheddablePlus 25 %, Critical 5 %, CriticalPlus
// 0.
func WithReserve(p bulwark.Priority, fraction float64) Option {
	if !p.Valid() {
		panic("ratelimit: WithReserve: invalid priority " + p.String())
	}
	if math.IsNaN(fraction) || fraction < 0 || fraction >= 1 {
		panic(fmt.Sprintf("ratelimit: WithReserve: fraction must be in [0, 1), got %v", fraction))
	}
	return optionFunc(func(o *options) { o.reserves[p.Index()] = fraction })
}

// WithClass sets the class the refusals wrap besides [ErrLimited]:
// [bulwark.ErrUnavailable] (HTTP 503) when the limiter protects this
// service's capacity, [bulwark.ErrRejected] (HTTP 429) when it enforces a
// caller's quota. Nil is ignored; any other error panics.
//
// Default: bulwark.ErrUnavailable for [New], bulwark.ErrRejected for
// [NewKeyed].
func WithClass(class error) Option {
	if class != nil && class != bulwark.ErrUnavailable && class != bulwark.ErrRejected {
		panic(fmt.Sprintf("ratelimit: WithClass: class must be bulwark.ErrUnavailable or bulwark.ErrRejected, got %v", class))
	}
	return optionFunc(func(o *options) {
		if class != nil {
			o.class = class
		}
	})
}

// WithMeterProvider sets the meter provider the limiter's metrics are
// reported to. Nil is ignored.
//
// Default: otel.GetMeterProvider().
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(o *options) {
		if mp != nil {
			o.mp = mp
		}
	})
}

// WithKeyFunc sets how a [Keyed] limiter finds a call's key; "" means no
// key (the call uses the shared no-key bucket). [New] ignores it. Nil is
// ignored.
//
// Default: [bulwark.KeyFrom].
func WithKeyFunc(f func(context.Context) string) Option {
	return optionFunc(func(o *options) {
		if f != nil {
			o.keyFn = f
		}
	})
}

// WithCost sets the tokens a call takes, read from its context: a batch of
// n items, the tokens of a prompt. A call of cost n is admitted only if the
// tokens left after taking n are at least its tier's reserve, and a refused
// call's hint is the time until n tokens are there ([LimitedError]). A cost
// of 0 is admitted without a look at the bucket. A cost above the burst (a
// bucket never holds more) or below 0 is refused at once, by every method
// Wait included, with a [*CostError], which says it is not worth retrying.
// Nil is ignored.
//
// Default: every call costs 1.
func WithCost(f func(ctx context.Context) int) Option {
	return optionFunc(func(o *options) {
		if f != nil {
			o.cost = f
		}
	})
}

// WithMaxKeys caps the live keys of a [Keyed] limiter (see [Keyed] for
// eviction and the overflow bucket). [New] ignores it. It panics when n < 1.
//
// Default: [DefaultMaxKeys] (100 000).
func WithMaxKeys(n int) Option {
	if n < 1 {
		panic(fmt.Sprintf("ratelimit: WithMaxKeys: n must be >= 1, got %d", n))
	}
	return optionFunc(func(o *options) { o.maxKeys = n })
}

// WithTimeout sets the time a [Redis] or [KeyedRedis] limiter gives one
// decision's round trip to Redis; past it, the decision answers as a store
// failure (fail-open, [WithFallback] or [WithFailClosed]). The caller's
// deadline, when earlier, bounds it too. The local limiters ignore it. It
// panics when d <= 0.
//
// Default: [DefaultRedisTimeout] (50 ms).
func WithTimeout(d time.Duration) Option {
	if d <= 0 {
		panic(fmt.Sprintf("ratelimit: WithTimeout: d must be > 0, got %v", d))
	}
	return optionFunc(func(o *options) { o.timeout = d })
}

// WithPrefix sets the prefix of a Redis limiter's keys, to keep them apart
// from other users of the same Redis. The local limiters ignore it. It
// panics when prefix contains "{" or "}", which would break the hash tag
// that keeps a decision on one Cluster slot.
//
// Default: [DefaultRedisPrefix] ("bulwark:ratelimit:").
func WithPrefix(prefix string) Option {
	if strings.ContainsAny(prefix, "{}") {
		panic(fmt.Sprintf("ratelimit: WithPrefix: prefix %q must not contain { or }", prefix))
	}
	return optionFunc(func(o *options) { o.prefix = prefix })
}

// WithFallback makes a Redis limiter ask a when Redis fails or does not
// answer in time: a local [Limiter] with the fleet's limit divided by the
// instances keeps the fleet near its limit while Redis is out. It takes
// precedence over [WithFailClosed]. The local limiters ignore it. Nil is
// ignored.
//
// Default: none (fail-open: admit).
func WithFallback(a bulwark.Admitter) Option {
	return optionFunc(func(o *options) {
		if a != nil {
			o.fallback = a
		}
	})
}

// WithFailClosed makes a Redis limiter refuse with a [*StoreError]
// ([bulwark.ErrUnavailable]) when Redis fails or does not answer in time,
// for limits that protect something that must not be overrun. The local
// limiters ignore it.
//
// Default: fail-open (admit).
func WithFailClosed() Option {
	return optionFunc(func(o *options) { o.failClosed = true })
}

// WithLocalBatch makes a [Redis] limiter take up to n tokens from Redis in
// one decision and serve the calls that follow from them locally, for very
// hot limits: about one round trip per n calls. Tokens taken by a tier
// serve that tier and the more important ones only (so reserves hold), and
// are dropped once older than a second (or the time the bucket takes to
// refill n, when longer). The
// fleet-wide bound then holds to within the leases outstanding: over any
// window, the fleet admits at most burst + limit × window + (n − 1) ×
// instances, and tokens leased but unused (at most n − 1 per instance) are
// not admitted elsewhere. Refusals always come from Redis, with exact
// hints; the quota recorded for a call served locally is as of the latest
// lease. [KeyedRedis] and the local limiters ignore
// it. It panics when n < 1; 1 is no batching.
//
// Default: 1 (one round trip per decision).
func WithLocalBatch(n int) Option {
	if n < 1 {
		panic(fmt.Sprintf("ratelimit: WithLocalBatch: n must be >= 1, got %d", n))
	}
	return optionFunc(func(o *options) { o.localBatch = n })
}
