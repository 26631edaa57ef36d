package drill

import (
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/otel/metric"
)

// Option configures a [Drill]; see [New].
type Option interface{ apply(*options) }

type options struct {
	maxExpiry time.Duration
	src       rand.Source
	mp        metric.MeterProvider
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithMaxExpiry caps the expiry [Drill.Arm] accepts; a longer one is an
// error. [DefaultExpiry] is capped by it too. math.MaxInt64 means no cap
// (not advised: a forgotten drill then runs for ever). It panics if
// d <= 0. Default: 1 h.
func WithMaxExpiry(d time.Duration) Option {
	if d <= 0 {
		panic("drill: WithMaxExpiry: d must be > 0, got " + d.String())
	}
	return optionFunc(func(o *options) { o.maxExpiry = d })
}

// WithRand sets the random source the drill draws its probabilities and
// latencies from, for deterministic tests (rand.NewPCG(1, 2)). The drill
// serializes its use of src with a mutex. nil is ignored. Default: the
// global source of math/rand/v2.
func WithRand(src rand.Source) Option {
	return optionFunc(func(o *options) {
		if src != nil {
			o.src = src
		}
	})
}

// WithMeterProvider sets where the drill's metrics go; nil is ignored.
// Default: otel.GetMeterProvider().
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(o *options) {
		if mp != nil {
			o.mp = mp
		}
	})
}
