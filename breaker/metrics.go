package breaker

import (
	"sync/atomic"

	"go.opentelemetry.io/otel/metric"

	"github.com/bulwark-go/bulwark/internal/telemetry"
)

// Indexes of the bulwark.outcome counts, in telemetry.Outcomes order.
const (
	outSuccess = iota
	outFailure
	outIgnored
	outRefused
)

// meters are the counts a breaker keeps, or that a Group's members share,
// and the instruments exporting them. The hot path touches only atomics.
type meters struct {
	meter    metric.Meter
	calls    *telemetry.Counters // by outcome
	trans    *telemetry.Counters // by from*numStates + to
	transSet []telemetry.Set
	members  [numStates]atomic.Int64
	nameSet  telemetry.Set
	stateSet [numStates]telemetry.Set // for the members gauge

	stateInst   metric.Int64ObservableGauge
	callsInst   metric.Int64ObservableCounter
	transInst   metric.Int64ObservableCounter
	membersInst metric.Int64ObservableUpDownCounter
}

func newMeters(name string, mp metric.MeterProvider, group bool) *meters {
	t := &meters{meter: telemetry.Meter(mp, "breaker")}
	nameKV := telemetry.KeyPolicyName.String(name)
	t.nameSet = telemetry.NewSet(nameKV)
	outs := make([]telemetry.Set, len(telemetry.Outcomes))
	for i, o := range telemetry.Outcomes {
		outs[i] = telemetry.NewSet(nameKV, telemetry.KeyOutcome.String(o))
	}
	t.calls = telemetry.NewCounters(outs...)
	trans := make([]telemetry.Set, numStates*numStates)
	for from := range State(numStates) {
		for to := range State(numStates) {
			trans[int(from)*numStates+int(to)] = telemetry.NewSet(nameKV,
				telemetry.KeyFromState.String(from.String()), telemetry.KeyToState.String(to.String()))
		}
	}
	t.trans, t.transSet = telemetry.NewCounters(trans...), trans

	m := t.meter
	if group {
		for s := range State(numStates) {
			t.stateSet[s] = telemetry.NewSet(nameKV, telemetry.KeyState.String(s.String()))
		}
		t.membersInst = telemetry.Int64ObservableUpDownCounter(m, "bulwark.breaker.members",
			"Live breakers of a group, by state.", "{breaker}")
	} else {
		t.stateInst = telemetry.Int64ObservableGauge(m, "bulwark.breaker.state",
			"State of the breaker: 0 closed, 1 half-open, 2 open.", "1")
	}
	t.callsInst = telemetry.Int64ObservableCounter(m, "bulwark.breaker.calls",
		"Calls through the breaker, by how it counted them.", "{call}")
	t.transInst = telemetry.Int64ObservableCounter(m, "bulwark.breaker.transitions",
		"Changes of state.", "{transition}")
	return t
}

// observeCounts reports calls and the transitions that happened.
func (t *meters) observeCounts(o metric.Observer) {
	t.calls.Observe(o, t.callsInst)
	for i := range numStates * numStates {
		if n := t.trans.Load(i); n != 0 {
			o.ObserveInt64(t.transInst, n, t.transSet[i].Observe...)
		}
	}
}
