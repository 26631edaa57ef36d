package retry

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/internal/telemetry"
)

// Counter slots of bulwark.retry.attempts: kind + outcome.
const (
	kindFirst = 0
	kindRetry = 4

	outcomeSuccess = 0
	outcomeFailure = 1
	outcomeIgnored = 2
	outcomeRefused = 3
)

// The bulwark.attempt.kind values.
const (
	attemptFirst = "first"
	attemptRetry = "retry"
)

// The bulwark.reason values of bulwark.retry.delay.
const (
	delayBackoff = 0
	delayHint    = 1
)

// outcomeOf classifies an attempt's result (SPEC outcomes).
func outcomeOf(ctx context.Context, err error) int {
	switch {
	case err == nil:
		return outcomeSuccess
	case ctx.Err() != nil:
		return outcomeIgnored
	case bulwark.IsRefusal(err):
		return outcomeRefused
	}
	return outcomeFailure
}

// meters are a Retrier's instruments and the counts behind them.
type meters struct {
	attempts  *telemetry.Counters // [kind+outcome]
	exhausted *telemetry.Counters // [0]
	delay     metric.Float64Histogram
	delaySets [2]telemetry.Set // [delayBackoff], [delayHint]
	reg       *telemetry.Registration
}

func newMeters(mp metric.MeterProvider, name string) *meters {
	pn := telemetry.KeyPolicyName.String(name)
	sets := make([]telemetry.Set, 0, 8)
	for _, kind := range []string{attemptFirst, attemptRetry} {
		for _, oc := range telemetry.Outcomes { // success, failure, ignored, refused
			sets = append(sets, telemetry.NewSet(pn, telemetry.KeyOutcome.String(oc), telemetry.KeyAttemptKind.String(kind)))
		}
	}
	m := &meters{
		attempts:  telemetry.NewCounters(sets...),
		exhausted: telemetry.NewCounters(telemetry.NewSet(pn)),
		delaySets: [2]telemetry.Set{
			telemetry.NewSet(pn, telemetry.KeyReason.String("backoff")),
			telemetry.NewSet(pn, telemetry.KeyReason.String("hint")),
		},
	}
	meter := telemetry.Meter(mp, "retry")
	attempts := telemetry.Int64ObservableCounter(meter, "bulwark.retry.attempts",
		"Attempts made by retrying policies, by outcome and kind.", "{attempt}")
	exhausted := telemetry.Int64ObservableCounter(meter, "bulwark.retry.budget.exhausted",
		"Calls that stopped retrying because the retry budget allowed no retry.", "{call}")
	m.delay = telemetry.Float64Histogram(meter, "bulwark.retry.delay",
		"Delay before a retry (the backoff or a server hint).", "s", telemetry.DurationBuckets)
	// The Retrier holds m; the callback holds it weakly.
	m.reg = telemetry.Register(meter, m, func(m *meters, o metric.Observer) {
		m.attempts.Observe(o, attempts)
		m.exhausted.Observe(o, exhausted)
	}, attempts, exhausted)
	return m
}

func (m *meters) recordDelay(ctx context.Context, d time.Duration, reason int) {
	m.delay.Record(ctx, d.Seconds(), m.delaySets[reason].Record...)
}
