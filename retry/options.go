package retry

import (
	"fmt"
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
		retryIf:     DefaultRetryIf,
	}
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithName names the Retrier in its metrics (bulwark.policy.name). Default:
// "retry".
func WithName(name string) Option {
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

// WithInitialDelay sets the backoff interval before the second attempt. It
// panics if d <= 0. Default: 100 ms.
func WithInitialDelay(d time.Duration) Option {
	if d <= 0 {
		panic("retry: WithInitialDelay: d must be > 0, got " + d.String())
	}
	return optionFunc(func(o *options) { o.initial = d })
}

// WithMultiplier sets the factor the backoff interval grows by after each
// retry. It panics if m < 1. Default: 2.
func WithMultiplier(m float64) Option {
	if !(m >= 1) {
		panic(fmt.Sprintf("retry: WithMultiplier: m must be >= 1, got %v", m))
	}
	return optionFunc(func(o *options) { o.multiplier = m })
}

// WithMaxDelay caps the backoff interval and the jittered delay drawn from
// it (a server hint is not capped). It panics if d <= 0. Default: 5 s.
func WithMaxDelay(d time.Duration) Option {
	if d <= 0 {
		panic("retry: WithMaxDelay: d must be > 0, got " + d.String())
	}
	return optionFunc(func(o *options) { o.maxDelay = d })
}

// WithRandomization sets the jitter: each delay is drawn uniformly from
// interval × [1-f, 1+f] (then capped by [WithMaxDelay]); 0 disables
// jitter. It panics unless 0 <= f <= 1. Default: 0.5.
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

// WithMeterProvider sets where the Retrier's metrics go; nil is ignored.
// Default: otel.GetMeterProvider().
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(o *options) {
		if mp != nil {
			o.mp = mp
		}
	})
}
