package degrade

import (
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/internal/telemetry"
)

// The bulwark.reason values of bulwark.degrade.refused, in counter order.
const (
	reasonRefused  = iota // the caller got the refusal
	reasonFallback        // the fallback answered instead
	numReasons
)

var reasonNames = [numReasons]string{"refused", "fallback"}

// keySourceAttr is SPEC's bulwark.source attribute.
var keySourceAttr = attribute.Key("bulwark.source")

type metrics struct {
	refused *telemetry.Counters // reason × tier
	changes *telemetry.Counters // by source
	reg     *telemetry.Registration
}

// observed is what the callback reads besides the core it is handed
// (held weakly): never c.m, which is not set yet when a collection on
// another goroutine runs the callback during the constructor.
type observed struct {
	state       metric.Int64ObservableGauge
	refusedInst metric.Int64ObservableCounter
	changesInst metric.Int64ObservableCounter
	refused     *telemetry.Counters
	changes     *telemetry.Counters
	name        telemetry.Set
}

func newMetrics(c *core, mp metric.MeterProvider) *metrics {
	m := &metrics{}
	name := telemetry.KeyPolicyName.String(c.name)
	sets := make([]telemetry.Set, 0, numReasons*bulwark.NumPriorities)
	for r := range numReasons {
		for t := range bulwark.NumPriorities {
			sets = append(sets, telemetry.NewSet(name, telemetry.KeyReason.String(reasonNames[r]),
				telemetry.KeyPriority.String(bulwark.Priority(t+int(bulwark.Sheddable)).String())))
		}
	}
	m.refused = telemetry.NewCounters(sets...)
	srcSets := make([]telemetry.Set, numSources)
	for s := range numSources {
		srcSets[s] = telemetry.NewSet(name, keySourceAttr.String(sourceNames[s]))
	}
	m.changes = telemetry.NewCounters(srcSets...)

	meter := telemetry.Meter(mp, "degrade")
	obs := &observed{
		refusedInst: telemetry.Int64ObservableCounter(meter, "bulwark.degrade.refused",
			"Calls a switch or shedder did not run: refused, or answered by the fallback.", "{call}"),
		changesInst: telemetry.Int64ObservableCounter(meter, "bulwark.degrade.changes",
			"Recorded changes of switches and shedders, by who made them.", "{change}"),
		refused: m.refused,
		changes: m.changes,
		name:    telemetry.NewSet(name),
	}
	if c.kind == kindSwitch {
		obs.state = telemetry.Int64ObservableGauge(meter, "bulwark.degrade.switch.state",
			"1 while the switch is on, 0 while off.", "1")
	} else {
		obs.state = telemetry.Int64ObservableGauge(meter, "bulwark.degrade.shed.level",
			"The shed level in force, 0 to 3.", "1")
	}
	m.reg = telemetry.Register(meter, c, func(c *core, o metric.Observer) {
		o.ObserveInt64(obs.state, int64(c.level.Load()), obs.name.Observe...)
		obs.refused.Observe(o, obs.refusedInst)
		obs.changes.Observe(o, obs.changesInst)
	}, obs.state, obs.refusedInst, obs.changesInst)
	return m
}

func (m *metrics) refuse(reason int, p bulwark.Priority) {
	m.refused.Add(reason*bulwark.NumPriorities+p.Index(), 1)
}

func (m *metrics) changed(src int) { m.changes.Add(src, 1) }

func (m *metrics) refusedTotal() int64 {
	var n int64
	for i := range numReasons * bulwark.NumPriorities {
		n += m.refused.Load(i)
	}
	return n
}
