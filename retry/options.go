package retry

import (
	"fmt"
	"math"
	"time"

	"go.opentelemetry.io/otel/metric"
)

// Option configures a [Retrier]; see [New].
type Option interface{ apply(*options) }

type options struct {
	name        string
	maxAttempts int
	initial     time.Duration
	multiplier  float64
	maxDelay    time.Duration
	random      float64
	maxElapsed  time.Duration
	perAttempt  time.Duration
	retryIf     func(error) bool
	budget      *Budget
	maxHint     time.Duration
	onRetry     func(attempt int, err error, delay time.Duration)
	mp          metric.MeterProvider
}

func defaultOptions() options {
	return options{
		name:        "retry",
		maxAttempts: 3,
		initial:     100 * time.Millisecond,
		multiplier:  2,
		maxDelay:    5 * time.Second,
		random:      0.5,
		maxHint:     time.Minute,
		retryIf:     DefaultRetryIf,
	}
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithName names the Retrier in its metrics (bulwark.policy.name). It
// panics if name is empty. Default: "retry".
func WithName(name string) Option {
	if name == "" {
		panic("retry: WithName: name must not be empty")
	}
	return optionFunc(func(o *options) { o.name = name })
}

// WithMaxAttempts caps the attempts of one call, the first included; 1
// disables retrying. It panics if n < 1. Default: 3 (the SRE book's
// advice).
func WithMaxAttempts(n int) Option {
	if n < 1 {
		panic(fmt.Sprintf("retry: WithMaxAttempts: n must be >= 1, got %d", n))
	}
	return optionFunc(func(o *options) { o.maxAttempts = n })
}

// WithInitialDelay sets the backoff interval before the second attempt;
// one above [WithMaxDelay] is capped by it. It panics if d <= 0;
// math.MaxInt64 is valid. Default: 100 ms.
func WithInitialDelay(d time.Duration) Option {
	if d <= 0 {
		panic("retry: WithInitialDelay: d must be > 0, got " + d.String())
	}
	return optionFunc(func(o *options) { o.initial = d })
}

// WithMultiplier sets the factor the backoff interval grows by after each
// retry. It panics if m < 1, NaN or +Inf (a huge finite m is valid: the
// interval jumps to the cap). Default: 2.
func WithMultiplier(m float64) Option {
	if !(m >= 1) || math.IsInf(m, 1) {
		panic(fmt.Sprintf("retry: WithMultiplier: m must be finite and >= 1, got %v", m))
	}
	return optionFunc(func(o *options) { o.multiplier = m })
}

// WithMaxDelay caps the backoff interval and the jittered delay drawn from
// it: at the cap, delays are drawn from [d × (1-r), d] ([WithRandomization]
// r), so d is a hard ceiling. A server hint is not capped by d but by
// [WithMaxHint]. math.MaxInt64 means no cap. It panics if d <= 0.
// Default: 5 s.
func WithMaxDelay(d time.Duration) Option {
	if d <= 0 {
		panic("retry: WithMaxDelay: d must be > 0, got " + d.String())
	}
	return optionFunc(func(o *options) { o.maxDelay = d })
}

// WithRandomization sets the jitter: each delay is drawn uniformly from
// [interval × (1-f), min(interval × (1+f), [WithMaxDelay])]; 0 disables
// jitter. It panics unless 0 <= f <= 1 (NaN included). Default: 0.5.
func WithRandomization(f float64) Option {
	if !(f >= 0 && f <= 1) {
		panic(fmt.Sprintf("retry: WithRandomization: f must be in [0, 1], got %v", f))
	}
	return optionFunc(func(o *options) { o.random = f })
}

// WithMaxElapsed caps the time one call may take, attempts and delays
// included: a retry whose delay would end past it is not made. 0 means no
// cap besides the context's deadline. It panics if d < 0. Default: 0.
func WithMaxElapsed(d time.Duration) Option {
	if d < 0 {
		panic("retry: WithMaxElapsed: d must be >= 0, got " + d.String())
	}
	return optionFunc(func(o *options) { o.maxElapsed = d })
}

// WithPerAttemptTimeout runs each attempt under its own deadline of d, as
// [bulwark.Timeout] does: an attempt cut off by it fails with an error that
// wraps [bulwark.ErrTimeout] and is retried by default. 0 means none. It
// panics if d < 0. Default: 0 (attempts run under the caller's context).
func WithPerAttemptTimeout(d time.Duration) Option {
	if d < 0 {
		panic("retry: WithPerAttemptTimeout: d must be >= 0, got " + d.String())
	}
	return optionFunc(func(o *options) { o.perAttempt = d })
}

// WithRetryIf sets which errors are retried. It is asked only while the
// caller's context is alive and only about errors that do not refuse replay
// ([bulwark.Retryable] false is never retried, whatever f says). nil is
// ignored. Default: [DefaultRetryIf].
func WithRetryIf(f func(error) bool) Option {
	return optionFunc(func(o *options) {
		if f != nil {
			o.retryIf = f
		}
	})
}

// WithBudget makes retries draw on b, which may be shared by many
// Retriers (typically one per downstream service). nil is ignored.
// Default: no budget (retries are capped per call only).
func WithBudget(b *Budget) Option {
	return optionFunc(func(o *options) {
		if b != nil {
			o.budget = b
		}
	})
}

// WithMaxHint caps the server hints the Retrier waits for: a hint
// ([bulwark.RetryAfter]) longer than d ends retrying at once, Do returning
// the last error inside an [*ExhaustedError], rather than sleeping (a
// Retry-After of a day would otherwise hold the caller for a day per
// attempt). A hint past the caller's deadline ends retrying the same way,
// whatever d. math.MaxInt64 means no cap. It panics if d <= 0. Default:
// 1 min.
func WithMaxHint(d time.Duration) Option {
	if d <= 0 {
		panic("retry: WithMaxHint: d must be > 0, got " + d.String())
	}
	return optionFunc(func(o *options) { o.maxHint = d })
}

// WithOnRetry calls f before each retry, once the Retrier decided to make
// it (attempts, deadline, hint cap and budget allowed it), before the delay:
// attempt is the 1-based number of the attempt that failed with err, and
// delay the wait before attempt+1 (the backoff or the server hint). f runs
// on the caller's goroutine and should be quick (it delays the retry); a
// panic in f passes through Do. Use it to log retries, as Polly's and
// failsafe-go's OnRetry. nil is ignored. Default: none.
func WithOnRetry(f func(attempt int, err error, delay time.Duration)) Option {
	return optionFunc(func(o *options) {
		if f != nil {
			o.onRetry = f
		}
	})
}

// WithMeterProvider sets where the Retrier's metrics go; nil is ignored.
// Default: otel.GetMeterProvider().
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(o *options) {
		if mp != nil {
			o.mp = mp
		}
	})
}
