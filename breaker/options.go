package breaker

import (
	"context"
	"errors"
	"math"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/bulwark-go/bulwark"
)

// The defaults, and why (facts from the systems users compare us with):
//
//   - failure ratio 0.5, inclusive: resilience4j's 50 %. Polly's 0.1 trips
//     on ordinary noise of a busy dependency.
//   - minimum 20 calls in the window: resilience4j and Polly ask for 100,
//     which a dependency called a few times a second never reaches within a
//     one-minute window; 20 still keeps a couple of unlucky failures from
//     tripping it.
//   - a 60 s window in 10 buckets of 6 s: resilience4j's time window is
//     N one-second buckets and Polly samples 30 s; ten buckets keep a
//     breaker small (a Group holds thousands) and age out old outcomes in
//     6 s steps.
//   - consecutive failures off: as in resilience4j and Polly; at high
//     traffic a run of N failures happens by chance long before the ratio is
//     bad (gobreaker's own default, more than 5, trips a 1000 req/s service
//     with 20 % errors about every 20 s).
//   - break 30 s: between Polly's 5 s, which hammers a dependency that is
//     restarting, and the 60 s of resilience4j and gobreaker, which keeps a
//     recovered one cut off for long.
//   - 1 probe in half-open: Polly's and gobreaker's; the least load on a
//     recovering dependency.
//   - slow calls not counted: each clock read costs 20–46 ns on this kind of
//     machine; opt in with [WithSlowCall].
const (
	DefaultFailureRatio  = 0.5
	DefaultMinCalls      = 20
	DefaultWindow        = 60 * time.Second
	DefaultBuckets       = 10
	DefaultBreakDuration = 30 * time.Second
	DefaultProbes        = 1
	DefaultMaxKeys       = 1000

	// MaxBuckets is the most buckets [WithWindow] accepts: every breaker
	// (every member of a Group) keeps them all.
	MaxBuckets = 1000
)

// Option configures a [Breaker] or a [Group]. Nil options are ignored; when
// an option is given twice the last one wins.
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	ratio         float64
	minCalls      uint32
	consecutive   uint32
	window        time.Duration
	buckets       int
	slow          time.Duration
	slowRatio     float64
	breakDuration time.Duration
	probes        uint32
	isFailure     func(error) bool
	onStateChange func(name string, from, to State)
	mp            metric.MeterProvider
	keyFn         func(context.Context) string
	maxKeys       int
	pauseOnHint   bool
	shared        SharedState
	refresh       time.Duration  // RedisState
	storeTimeout  time.Duration  // RedisState
	redisPrefix   string         // RedisState
	instanceID    string         // RedisState
	k             float64        // Adaptive
	rand          func() float64 // Adaptive
}

func defaultOptions() options {
	return options{
		ratio:         DefaultFailureRatio,
		minCalls:      DefaultMinCalls,
		window:        DefaultWindow,
		buckets:       DefaultBuckets,
		breakDuration: DefaultBreakDuration,
		probes:        DefaultProbes,
		isFailure:     defaultIsFailure,
		keyFn:         bulwark.KeyFrom,
		maxKeys:       DefaultMaxKeys,
		refresh:       DefaultRefreshInterval,
		storeTimeout:  DefaultStoreTimeout,
		redisPrefix:   DefaultRedisPrefix,
	}
}

func buildOptions(opts []Option) options {
	o := defaultOptions()
	for _, opt := range opts {
		if opt != nil {
			opt.apply(&o)
		}
	}
	if o.slowRatio > 0 && o.slow <= 0 {
		panic("breaker: WithSlowCallRatio needs WithSlowCall(threshold) to say which calls are slow")
	}
	return o
}

// defaultIsFailure counts every error but a downstream's 429 / RESOURCE_EXHAUSTED
// (bulwark.ErrRemoteRejected): one tenant's quota must not open the breaker
// for everyone.
func defaultIsFailure(err error) bool { return !errors.Is(err, bulwark.ErrRemoteRejected) }

// WithFailureRatio trips the breaker when failures / (successes + failures)
// in the window reaches ratio (inclusive: 0.5 trips at exactly half),
// once the window holds at least [WithMinCalls] counted calls. It panics
// unless 0 < ratio ≤ 1.
//
// Default: 0.5.
func WithFailureRatio(ratio float64) Option {
	if !(ratio > 0 && ratio <= 1) || math.IsNaN(ratio) {
		panic("breaker: WithFailureRatio: ratio must be in (0, 1], got " + strconv.FormatFloat(ratio, 'g', -1, 64))
	}
	return optionFunc(func(o *options) { o.ratio = ratio })
}

// WithMinCalls is the number of counted calls (successes and failures) the
// window must hold before the failure ratio is evaluated. It panics if
// n < 1.
//
// Default: 20.
func WithMinCalls(n int) Option {
	if n < 1 || n > math.MaxUint32 {
		panic("breaker: WithMinCalls: n must be in [1, 4294967295], got " + strconv.Itoa(n))
	}
	return optionFunc(func(o *options) { o.minCalls = uint32(n) })
}

// WithConsecutiveFailures trips the breaker after n failures in a row,
// whatever the window holds; 0 turns the rule off. It panics if n < 0.
//
// Default: 0 (off).
func WithConsecutiveFailures(n int) Option {
	if n < 0 || n > math.MaxUint32 {
		panic("breaker: WithConsecutiveFailures: n must be in [0, 4294967295], got " + strconv.Itoa(n))
	}
	return optionFunc(func(o *options) { o.consecutive = uint32(n) })
}

// WithWindow sets the rolling window the failure ratio is computed over:
// its length and the number of buckets it is kept in (gobreaker's Interval
// and BucketPeriod). Outcomes age out one bucket at a time; one bucket is a
// fixed window cleared every d. The length is rounded up to a multiple of
// d/buckets (down when that would pass math.MaxInt64, which is a valid
// "never age out" window). It panics if d ≤ 0, buckets < 1,
// buckets > [MaxBuckets] or d/buckets is zero.
//
// Default: 60 s in 10 buckets.
func WithWindow(d time.Duration, buckets int) Option {
	if d <= 0 || buckets < 1 || buckets > MaxBuckets || d/time.Duration(buckets) <= 0 {
		panic("breaker: WithWindow: need d > 0 and 1 ≤ buckets ≤ min(1000, d in ns), got " + d.String() + ", " + strconv.Itoa(buckets))
	}
	return optionFunc(func(o *options) { o.window, o.buckets = d, buckets })
}

// WithSlowCall counts a call that succeeded but took longer than threshold
// as a failure; with [WithSlowCallRatio], it says which calls are slow
// instead. It costs two clock reads per call. A downstream's 429
// (bulwark.ErrRemoteRejected) is not counted however long it took. It
// panics if threshold ≤ 0; math.MaxInt64 is valid (no call is slow).
//
// Default: off (slow calls are not failures).
func WithSlowCall(threshold time.Duration) Option {
	if threshold <= 0 {
		panic("breaker: WithSlowCall: threshold must be > 0, got " + threshold.String())
	}
	return optionFunc(func(o *options) { o.slow = threshold })
}

// WithBreakDuration is how long the breaker stays open before it lets
// probes through. It panics if d ≤ 0; math.MaxInt64 is valid (open until
// [Breaker.Reset], and a [Group] keeps such a breaker).
//
// Default: 30 s.
func WithBreakDuration(d time.Duration) Option {
	if d <= 0 {
		panic("breaker: WithBreakDuration: d must be > 0, got " + d.String())
	}
	return optionFunc(func(o *options) { o.breakDuration = d })
}

// WithPauseOnHint obeys a downstream's quota signal for every caller: when
// a call fails with bulwark.ErrRemoteRejected or bulwark.ErrRemoteUnavailable
// carrying a retry hint (bulwark.RetryAfter: what the transports decode
// from 429 / 503 + Retry-After and from gRPC pushback), the breaker pauses
// until exactly the advised time — every call refused locally with
// [ErrPaused], without calling, with what is left of the pause as its
// hint — and then lets calls through again, without probes (the upstream
// said when). A later hint that ends later extends the pause; one that
// ends sooner does not shorten it. The calls a pause refuses are not
// counted and a pause never trips the breaker by itself; the answer that
// started it counts as usual (a 503 is a failure, a 429 is not), so a
// dying backend that answers 503 + Retry-After still trips it. A pause is
// the state [StatePaused] (gauge 3); a forced-open or disabled breaker
// ignores hints, and [Breaker.Reset] ends a pause. With [WithSharedState]
// a pause reaches the fleet. A hint as long as math.MaxInt64 pauses until
// reset: cap hints at the transport if the downstream is not trusted.
//
// Default: off (hints are for the caller's retries only).
func WithPauseOnHint() Option {
	return optionFunc(func(o *options) { o.pauseOnHint = true })
}

// WithSlowCallRatio counts slow calls (those that took longer than the
// [WithSlowCall] threshold, which it requires) apart from failures, as
// resilience4j's slowCallRateThreshold does: a slow call counts as slow and
// as the success or failure it was, and the breaker trips when
// slow / counted calls in the window reaches ratio (inclusive), once the
// window holds at least [WithMinCalls] counted calls. In half-open, a slow
// probe reopens the breaker like a failed one. Without it, WithSlowCall
// alone counts a slow success as a failure. [Counts].Slow shows the slow
// calls in the window. It panics unless 0 < ratio ≤ 1, and New and
// NewGroup panic when WithSlowCall is missing.
//
// Default: off.
func WithSlowCallRatio(ratio float64) Option {
	if !(ratio > 0 && ratio <= 1) {
		panic("breaker: WithSlowCallRatio: ratio must be in (0, 1], got " + strconv.FormatFloat(ratio, 'g', -1, 64))
	}
	return optionFunc(func(o *options) { o.slowRatio = ratio })
}

// WithProbes is the number of calls admitted in half-open (others are
// refused with [ErrTooManyProbes] while they run); that many successes in a
// row close the breaker, one failure reopens it. It panics if n < 1.
//
// Default: 1.
func WithProbes(n int) Option {
	if n < 1 || n > math.MaxUint32 {
		panic("breaker: WithProbes: n must be in [1, 4294967295], got " + strconv.Itoa(n))
	}
	return optionFunc(func(o *options) { o.probes = uint32(n) })
}

// WithFailure replaces the classifier that decides whether fn's non-nil
// error is a failure (true) or counts as a success (false). It is not asked
// about the calls a breaker never counts: those the caller cancelled
// (ctx.Err() != nil and errors.Is(err, ctx.Err())) and refusals by inner
// policies (bulwark.ErrRejected, bulwark.ErrUnavailable). A call whose
// context was ended by a bulwark deadline set outside the breaker
// (context.Cause is bulwark.ErrTimeout: a Retrier's per-attempt timeout) is
// not the caller's cancellation: f is asked about bulwark.ErrTimeout. A nil
// f is ignored.
//
// Default: every error is a failure except bulwark.ErrRemoteRejected (a
// downstream's 429), so bulwark.ErrRemoteUnavailable, bulwark.ErrTimeout and
// unclassified errors count. An ErrRemoteRejected that f does not call a
// failure is not counted at all (neither failure nor success).
func WithFailure(f func(err error) bool) Option {
	return optionFunc(func(o *options) {
		if f != nil {
			o.isFailure = f
		}
	})
}

// WithOnStateChange calls f after every change of state, in order, outside
// the breaker's locks (f may call the breaker's methods). It runs on the
// goroutine of a call that caused or noticed a change, after that call's
// own work; when another goroutine is already delivering, the change is
// left to it. In a [Group], name is the member's key. A nil f is ignored.
//
// Default: none.
func WithOnStateChange(f func(name string, from, to State)) Option {
	return optionFunc(func(o *options) {
		if f != nil {
			o.onStateChange = f
		}
	})
}

// WithMeterProvider sets where metrics go. A nil mp is ignored.
//
// Default: otel.GetMeterProvider().
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(o *options) {
		if mp != nil {
			o.mp = mp
		}
	})
}

// WithKeyFunc sets how a [Group] finds a call's key; "" is a key like any
// other. Breakers ignore it. A nil f is ignored.
//
// Default: bulwark.KeyFrom.
func WithKeyFunc(f func(ctx context.Context) string) Option {
	return optionFunc(func(o *options) {
		if f != nil {
			o.keyFn = f
		}
	})
}

// WithMaxKeys bounds the number of live breakers in a [Group]. Breakers
// ignore it. It panics if n < 1.
//
// Default: 1000.
func WithMaxKeys(n int) Option {
	if n < 1 {
		panic("breaker: WithMaxKeys: n must be ≥ 1, got " + strconv.Itoa(n))
	}
	return optionFunc(func(o *options) { o.maxKeys = n })
}
