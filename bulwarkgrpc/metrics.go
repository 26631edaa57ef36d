package bulwarkgrpc

import (
	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/internal/telemetry"
)

// Outcome slots, in the order of telemetry.Outcomes.
const (
	outcomeSuccess = iota
	outcomeFailure
	outcomeIgnored
	outcomeRefused
)

// calls counts calls by outcome and tier, in atomics exported through an
// observable counter.
type calls struct {
	counts *telemetry.Counters
}

func newCalls(o *options, instName, desc string) *calls {
	name := telemetry.KeyPolicyName.String(o.name)
	sets := make([]telemetry.Set, 0, len(telemetry.Outcomes)*bulwark.NumPriorities)
	for _, outcome := range telemetry.Outcomes {
		for i := 0; i < bulwark.NumPriorities; i++ {
			p := bulwark.Sheddable + bulwark.Priority(i) // Index i
			sets = append(sets, telemetry.NewSet(name,
				telemetry.KeyOutcome.String(outcome), telemetry.KeyPriority.String(p.String())))
		}
	}
	return &calls{counts: telemetry.ObservedCounters(
		telemetry.Meter(o.mp, "bulwarkgrpc"), instName, desc, "{call}", sets...)}
}

func (c *calls) add(outcome int, p bulwark.Priority) {
	c.counts.Add(outcome*bulwark.NumPriorities+p.Index(), 1)
}
