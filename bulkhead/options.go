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

// WithMaxQueue lets up to n callers wait for a slot when the compartment is
// full, in priority order (see the package documentation): callers of
// [Bulkhead.Acquire], and, when [WithMaxWait] is set too, callers of Do and
// Admit. TryAcquire never waits. With n = 0 a full compartment refuses
// every caller at once with [ErrFull]. It panics if n is negative or larger
// than 1<<30.
// Default: 0 (no queue).
func WithMaxQueue(n int) Option {
	if n < 0 || n > maxQueueLimit {
		panic("bulkhead: WithMaxQueue: n must be in [0, 1<<30], got " + strconv.Itoa(n))
	}
	return optionFunc(func(o *options) { o.maxQueue = n })
}

// WithMaxWait bounds how long a caller waits in the queue; a caller still
// queued after d leaves with [ErrMaxWait]. With d > 0 and a queue
// ([WithMaxQueue]), Do and Admit wait in the queue too (for at most d, and
// never past the caller's deadline); with d = 0 they refuse at once and
// only Acquire waits, bounded by its context alone. It has no effect
// without WithMaxQueue. Huge values (math.MaxInt64) are valid: no bound
// but the caller's context. It panics if d is negative.
// Default: 0 (Do and Admit never wait; Acquire waits until its context
// ends).
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
