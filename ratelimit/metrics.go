package ratelimit

import (
	"go.opentelemetry.io/otel/metric"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/internal/telemetry"
)

// Values of bulwark.decision.
const (
	decisionAllowed = "allowed"
	decisionLimited = "limited"
)

// Slots of the decision counters: decision*NumPriorities + tier index.
const (
	slotAllowed = 0
	slotLimited = bulwark.NumPriorities
)

// decisionSets are the attribute sets of bulwark.ratelimit.decisions for
// one limiter, by slot: allowed and limited, per tier.
func decisionSets(name string) []telemetry.Set {
	sets := make([]telemetry.Set, 0, 2*bulwark.NumPriorities)
	for _, d := range []string{decisionAllowed, decisionLimited} {
		for i := 0; i < bulwark.NumPriorities; i++ {
			p := bulwark.Priority(i) + bulwark.Sheddable
			sets = append(sets, telemetry.NewSet(
				telemetry.KeyPolicyName.String(name),
				telemetry.KeyDecision.String(d),
				telemetry.KeyPriority.String(p.String()),
			))
		}
	}
	return sets
}

func decisionsInstrument(m metric.Meter) metric.Int64ObservableCounter {
	return telemetry.Int64ObservableCounter(m, "bulwark.ratelimit.decisions",
		"Admission decisions of the rate limiter, by decision and priority.", "{decision}")
}

func registerLimiter(l *Limiter, mp metric.MeterProvider) {
	m := telemetry.Meter(mp, "ratelimit")
	decisions := decisionsInstrument(m)
	sets := decisionSets(l.Name())
	l.reg = telemetry.Register(m, l, func(l *Limiter, o metric.Observer) {
		n := l.b.counts()
		for i, v := range n {
			o.ObserveInt64(decisions, v, sets[i].Observe...)
		}
	}, decisions)
}

func registerKeyed(k *Keyed, mp metric.MeterProvider) {
	m := telemetry.Meter(mp, "ratelimit")
	decisions := decisionsInstrument(m)
	keys := telemetry.Int64ObservableUpDownCounter(m, "bulwark.ratelimit.keys",
		"Keys with a bucket of their own in the keyed rate limiter.", "{key}")
	overflow := telemetry.Int64ObservableCounter(m, "bulwark.ratelimit.overflow",
		"Decisions made by the shared overflow bucket because the key cap was reached.", "{decision}")
	name := telemetry.NewSet(telemetry.KeyPolicyName.String(k.Name()))
	sets := decisionSets(k.Name())
	k.reg = telemetry.Register(m, k, func(k *Keyed, o metric.Observer) {
		for i, v := range k.decisions() {
			o.ObserveInt64(decisions, v, sets[i].Observe...)
		}
		o.ObserveInt64(keys, k.keys.Load(), name.Observe...)
		o.ObserveInt64(overflow, k.overflowed.Load(), name.Observe...)
	}, decisions, keys, overflow)
}
