package drill

import (
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/bulwark-go/bulwark/internal/telemetry"
)

// keyFault is SPEC's bulwark.fault attribute.
const keyFault = attribute.Key("bulwark.fault")

// Counter slots of bulwark.drill.injected.
const (
	slotLatency = iota
	slotError
	slotRefusal
)

// meters are a Drill's instruments and the counts behind them.
type meters struct {
	injected *telemetry.Counters
	armedSet telemetry.Set
	reg      *telemetry.Registration
}

// newMeters makes d's instruments; it sets d.m before registering the
// callback, which may run at once.
func newMeters(mp metric.MeterProvider, d *Drill) {
	pn := telemetry.KeyPolicyName.String(d.name)
	m := &meters{
		injected: telemetry.NewCounters(
			telemetry.NewSet(pn, keyFault.String(FaultLatency)),
			telemetry.NewSet(pn, keyFault.String(FaultError)),
			telemetry.NewSet(pn, keyFault.String(FaultRefusal)),
		),
		armedSet: telemetry.NewSet(pn),
	}
	d.m = m
	meter := telemetry.Meter(mp, "drill")
	armedG := telemetry.Int64ObservableGauge(meter, "bulwark.drill.armed",
		"1 while the drill is armed, else 0.", "{drill}")
	injected := telemetry.Int64ObservableCounter(meter, "bulwark.drill.injected",
		"Faults injected by drills, by kind.", "{fault}")
	// The callback holds the Drill weakly: a dropped Drill is collected
	// and its callback unregistered.
	m.reg = telemetry.Register(meter, d, func(d *Drill, o metric.Observer) {
		var v int64
		if _, _, ok := d.Armed(); ok {
			v = 1
		}
		o.ObserveInt64(armedG, v, d.m.armedSet.Observe...)
		d.m.injected.Observe(o, injected)
	}, armedG, injected)
}
