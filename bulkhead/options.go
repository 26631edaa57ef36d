package bulkhead

import (
	"strconv"
	"time"

	"go.opentelemetry.io/otel/metric"
)

// Option configures a [Bulkhead]. Nil options are ignored; when an option is
// given twice, the last one wins.
type Option interface{ apply(*options) }

type options struct {
	maxQueue int
	maxWait  time.Duration
	mp       metric.MeterProvider
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithMaxQueue lets up to n callers of [Bulkhead.Acquire] wait for a slot
// when the compartment is full, in priority order (see [Bulkhead]). It
// governs Acquire only: Do, Admit and TryAcquire never wait, queue or not.
// With n = 0 a full compartment refuses Acquire at once with [ErrFull]. It
// panics if n is negative or larger than 1<<30.
// Default: 0 (no queue).
func WithMaxQueue(n int) Option {
	if n < 0 || n > maxQueueLimit {
		panic("bulkhead: WithMaxQueue: n must be in [0, 1<<30], got " + strconv.Itoa(n))
	}
	return optionFunc(func(o *options) { o.maxQueue = n })
}

// WithMaxWait bounds how long a caller of [Bulkhead.Acquire] waits in the
// queue; a caller still queued after d leaves with [ErrMaxWait]. Zero means
// no bound other than the caller's context. It has no effect without
// [WithMaxQueue], and none on Do, Admit or TryAcquire, which never wait.
// It panics if d is negative.
// Default: 0 (wait until the context ends).
func WithMaxWait(d time.Duration) Option {
	if d < 0 {
		panic("bulkhead: WithMaxWait: d must be >= 0, got " + d.String())
	}
	return optionFunc(func(o *options) { o.maxWait = d })
}

// WithMeterProvider sets where the bulkhead's metrics go; nil is ignored.
// Default: otel.GetMeterProvider().
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(o *options) {
		if mp != nil {
			o.mp = mp
		}
	})
}
