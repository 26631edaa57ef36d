package failover

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/bulwark-go/bulwark/breaker"
)

// Mode is how a [Set] chooses among healthy endpoints.
type Mode int

const (
	// PriorityOrder takes the first endpoint, in the order given, whose
	// breaker admits the call: primary and standbys.
	PriorityOrder Mode = iota
	// RoundRobin starts each call at the next endpoint in turn: equal
	// replicas.
	RoundRobin
)

// Option configures a [Set]. Nil options are ignored; when an option is
// given twice the last one wins.
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	mode          Mode
	breakerOpts   []breaker.Option
	minDwell      time.Duration
	retryOnNext   bool
	probe         func(ctx context.Context, endpoint string) error
	probeInterval time.Duration
	mp            metric.MeterProvider
}

func buildOptions(opts []Option) options {
	var o options
	for _, opt := range opts {
		if opt != nil {
			opt.apply(&o)
		}
	}
	return o
}

// WithMode sets how endpoints are chosen. It panics on an unknown mode.
// Default: [PriorityOrder].
func WithMode(m Mode) Option {
	if m != PriorityOrder && m != RoundRobin {
		panic("failover: WithMode: unknown mode")
	}
	return optionFunc(func(o *options) { o.mode = m })
}

// WithBreakerOptions sets the options of every endpoint's breaker
// (thresholds, break duration, shared state…); the Set's meter provider is
// passed first, so a breaker.WithMeterProvider here wins. Default: the
// breaker package's defaults.
func WithBreakerOptions(opts ...breaker.Option) Option {
	return optionFunc(func(o *options) { o.breakerOpts = append([]breaker.Option(nil), opts...) })
}

// WithMinDwell sets how long traffic stays on a lower endpoint after a
// switch before it may fail back to a preferred one, so that a flapping
// primary does not drag it back and forth. It panics on a negative d.
// Default: 0 (fail back as soon as the preferred breaker closes).
func WithMinDwell(d time.Duration) Option {
	if d < 0 {
		panic("failover: WithMinDwell: negative duration")
	}
	return optionFunc(func(o *options) { o.minDwell = d })
}

// WithRetryOnNext runs a call again on the next healthy endpoint when its
// attempt failed (an error the breakers count), once per endpoint, unless
// the error says it must not be replayed ([bulwark.Retryable] false). When
// the caller's context ends after a failed attempt, Do returns the
// context's error (as package retry does), not the attempt's. Default: off
// (one attempt per call; compose with package retry for more).
func WithRetryOnNext() Option {
	return optionFunc(func(o *options) { o.retryOnNext = true })
}

// WithProbe checks an endpoint whose breaker is open (not forced open by an
// operator) off the request path:
// when a call finds it open and interval has passed since its last probe,
// probe runs on a goroutine of the Set's (at most one per endpoint),
// bounded by interval; a nil error resets the breaker to closed at once.
// It panics on a nil probe or an interval ≤ 0. Default: no probe (an open
// breaker waits out its break and probes with a user call).
func WithProbe(probe func(ctx context.Context, endpoint string) error, interval time.Duration) Option {
	if probe == nil {
		panic("failover: WithProbe: nil probe")
	}
	if interval <= 0 {
		panic("failover: WithProbe: interval must be > 0")
	}
	return optionFunc(func(o *options) { o.probe, o.probeInterval = probe, interval })
}

// WithMeterProvider sets the meter provider of the Set and its breakers. A
// nil mp is ignored. Default: otel.GetMeterProvider().
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(o *options) {
		if mp != nil {
			o.mp = mp
		}
	})
}
