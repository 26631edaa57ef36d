package degrade

import (
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"
)

// Option configures a [Switch] or a [Shedder]. Nil options are ignored;
// when an option is given twice, the last one wins.
type Option interface{ apply(*options) }

type options struct {
	fallback   func(ctx context.Context, err error) error
	trigger    *Trigger
	onChange   func(old, new Status)
	retryAfter time.Duration
	mp         metric.MeterProvider
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithFallback makes Do run fallback instead of refusing while the switch
// is on (or the shedder sheds the call's tier): Do returns what fallback
// returns. fallback receives the refusal (wrapping [ErrDegraded]), to return
// or to inspect. Admit cannot run a fallback: it refuses as without one. A
// nil fallback is ignored.
// Default: none (Do refuses).
func WithFallback(fallback func(ctx context.Context, err error) error) Option {
	return optionFunc(func(o *options) {
		if fallback != nil {
			o.fallback = fallback
		}
	})
}

// WithTrigger lets t turn the switch on and off, or set the shedder's
// level, lazily on use (see [Trigger]). A manual [Switch.Set] or
// [Shedder.SetLevel] and a config value override it until released. A nil
// trigger is ignored. A [LevelsAbove] trigger with more than three
// thresholds panics on a Shedder.
// Default: none (the state changes only by hand or by config).
func WithTrigger(t *Trigger) Option {
	return optionFunc(func(o *options) {
		if t != nil {
			o.trigger = t
		}
	})
}

// WithOnChange calls f after every recorded change with the status before
// and after it. Calls are made in the order of the changes, one at a time,
// on the goroutine that made the change (or that is already delivering
// earlier ones), never while the switch's state is locked: f may read and
// even change the switch. A nil f is ignored.
// Default: none.
func WithOnChange(f func(old, new Status)) Option {
	return optionFunc(func(o *options) {
		if f != nil {
			o.onChange = f
		}
	})
}

// WithRetryAfter sets the retry hint of refusals (see [bulwark.RetryAfter]);
// the server adapters send it as Retry-After. It panics if d is negative.
// Default: 0: refusals carry a hint only while a trigger holds the state
// (the rest of its hold time or sampling interval).
func WithRetryAfter(d time.Duration) Option {
	if d < 0 {
		panic("degrade: WithRetryAfter: d must be >= 0, got " + d.String())
	}
	return optionFunc(func(o *options) { o.retryAfter = d })
}

// MeterProviderOption is an [Option] that is also a [LoadOption].
type MeterProviderOption interface {
	Option
	LoadOption
}

type mpOption struct{ mp metric.MeterProvider }

func (m mpOption) apply(o *options) {
	if m.mp != nil {
		o.mp = m.mp
	}
}

func (m mpOption) applyLoad(o *loadOptions) {
	if m.mp != nil {
		o.mp = m.mp
	}
}

// WithMeterProvider sets where metrics go, for a Switch, a Shedder or the
// config loaders; nil is ignored.
// Default: otel.GetMeterProvider().
func WithMeterProvider(mp metric.MeterProvider) MeterProviderOption { return mpOption{mp} }

// LoadOption configures [Load], [LoadFile] and [Watch]. Nil options are
// ignored; the last one wins.
type LoadOption interface{ applyLoad(*loadOptions) }

type loadOptions struct {
	logger *slog.Logger
	mp     metric.MeterProvider
	onLoad func(error)
	reason string // default reason of config changes
}

type loadOptionFunc func(*loadOptions)

func (f loadOptionFunc) applyLoad(o *loadOptions) { f(o) }

// WithLogger sets where the loaders report what they applied and what they
// rejected; nil is ignored.
// Default: slog.Default().
func WithLogger(l *slog.Logger) LoadOption {
	return loadOptionFunc(func(o *loadOptions) {
		if l != nil {
			o.logger = l
		}
	})
}

// WithOnLoad calls f after every attempt of [Watch] to apply the file, with
// its error (nil when applied); it is not called while the file is
// unchanged. A nil f is ignored.
// Default: none.
func WithOnLoad(f func(err error)) LoadOption {
	return loadOptionFunc(func(o *loadOptions) {
		if f != nil {
			o.onLoad = f
		}
	})
}

func newLoadOptions(opts []LoadOption) loadOptions {
	var o loadOptions
	for _, opt := range opts {
		if opt != nil {
			opt.applyLoad(&o)
		}
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	return o
}
