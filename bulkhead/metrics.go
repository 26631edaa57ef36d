package bulkhead

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/internal/telemetry"
)

// The bulwark.reason values of bulwark.bulkhead.refused, in counter order.
const (
	reasonFull = iota
	reasonTimeout
	reasonEvicted
	numReasons
)

var reasonNames = [numReasons]string{"full", "timeout", "evicted"}

// The bulwark.outcome values of bulwark.bulkhead.wait.duration.
const (
	outcomeSuccess = iota
	outcomeRefused
	outcomeIgnored
	numOutcomes
)

var outcomeNames = [numOutcomes]string{telemetry.OutcomeSuccess, telemetry.OutcomeRefused, telemetry.OutcomeIgnored}

// waitBuckets are the boundaries of bulwark.bulkhead.wait.duration, in
// seconds: 100 µs to 30 s.
var waitBuckets = append([]float64{0.0001, 0.00025, 0.0005}, telemetry.DurationBuckets...)

type metrics struct {
	refused *telemetry.Counters // reason × tier
	wait    metric.Float64Histogram
	waitSet [numOutcomes][bulwark.NumPriorities]telemetry.Set
	reg     *telemetry.Registration
}

// observed is what the observable callback reads besides the bulkhead it
// is handed: the instruments, the attribute sets and the refusal counts,
// never the bulkhead itself (held weakly), nor b.m, which is not set yet
// when a collection on another goroutine runs the callback during New.
type observed struct {
	active, queued, limit metric.Int64ObservableUpDownCounter
	refusedInst           metric.Int64ObservableCounter
	refused               *telemetry.Counters
	name                  telemetry.Set
	tier                  [bulwark.NumPriorities]telemetry.Set
}

func newMetrics(b *Bulkhead, mp metric.MeterProvider) *metrics {
	m := &metrics{}
	name := telemetry.KeyPolicyName.String(b.name)
	prio := func(i int) attribute.KeyValue {
		return telemetry.KeyPriority.String(bulwark.Priority(i + int(bulwark.Sheddable)).String())
	}
	sets := make([]telemetry.Set, 0, numReasons*bulwark.NumPriorities)
	for r := range numReasons {
		for t := range bulwark.NumPriorities {
			sets = append(sets, telemetry.NewSet(name, telemetry.KeyReason.String(reasonNames[r]), prio(t)))
		}
	}
	m.refused = telemetry.NewCounters(sets...)
	for o := range numOutcomes {
		for t := range bulwark.NumPriorities {
			m.waitSet[o][t] = telemetry.NewSet(name, telemetry.KeyOutcome.String(outcomeNames[o]), prio(t))
		}
	}

	meter := telemetry.Meter(mp, "bulkhead")
	m.wait = telemetry.Float64Histogram(meter, "bulwark.bulkhead.wait.duration",
		"Time callers spent queued for a slot.", "s", waitBuckets)
	obs := &observed{
		active: telemetry.Int64ObservableUpDownCounter(meter, "bulwark.bulkhead.active",
			"Calls holding a slot of the bulkhead.", "{call}"),
		queued: telemetry.Int64ObservableUpDownCounter(meter, "bulwark.bulkhead.queued",
			"Callers waiting for a slot.", "{call}"),
		limit: telemetry.Int64ObservableUpDownCounter(meter, "bulwark.bulkhead.limit",
			"Slots of the bulkhead.", "{call}"),
		refusedInst: telemetry.Int64ObservableCounter(meter, "bulwark.bulkhead.refused",
			"Calls the bulkhead refused.", "{call}"),
		refused: m.refused,
		name:    telemetry.NewSet(name),
	}
	for t := range bulwark.NumPriorities {
		obs.tier[t] = telemetry.NewSet(name, prio(t))
	}
	m.reg = telemetry.Register(meter, b, func(b *Bulkhead, o metric.Observer) {
		o.ObserveInt64(obs.active, int64(b.InFlight()), obs.name.Observe...)
		o.ObserveInt64(obs.limit, int64(b.limit), obs.name.Observe...)
		q := b.queuedByTier()
		for t := range q {
			o.ObserveInt64(obs.queued, q[t], obs.tier[t].Observe...)
		}
		obs.refused.Observe(o, obs.refusedInst)
	}, obs.active, obs.queued, obs.limit, obs.refusedInst)
	return m
}

// refuse counts one refusal.
func (m *metrics) refuse(reason int, p bulwark.Priority) {
	m.refused.Add(reason*bulwark.NumPriorities+p.Index(), 1)
}

// waited records the queue time of a caller who waited.
func (m *metrics) waited(ctx context.Context, outcome int, p bulwark.Priority, d time.Duration) {
	m.wait.Record(ctx, d.Seconds(), m.waitSet[outcome][p.Index()].Record...)
}

// queuedByTier returns the queue length of every tier, by Priority.Index.
func (b *Bulkhead) queuedByTier() [bulwark.NumPriorities]int64 {
	var q [bulwark.NumPriorities]int64
	b.mu.Lock()
	for t := range b.tiers {
		q[t] = int64(b.tiers[t].n)
	}
	b.mu.Unlock()
	return q
}
