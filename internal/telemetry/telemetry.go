// Package telemetry is the OpenTelemetry plumbing every bulwark package
// shares: meters named after the import path, the attribute vocabulary of
// SPEC.md, counters kept in atomics and exported through observable
// instruments, and registrations that never keep a dropped policy alive.
//
// Hot paths touch only atomics ([Counters.Add]) or precomputed option
// slices ([Set]); an inline metric.WithAttributes allocates.
package telemetry

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"weak"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// ModulePath prefixes every package's meter name.
const ModulePath = "github.com/bulwark-go/bulwark"

// Version is reported as the instrumentation scope version.
const Version = "0.1.0"

// The attribute keys; values come from small fixed sets, never from request
// paths, keys, tenants or hosts.
const (
	KeyPolicyName  = attribute.Key("bulwark.policy.name")
	KeyOutcome     = attribute.Key("bulwark.outcome")
	KeyReason      = attribute.Key("bulwark.reason")
	KeyPriority    = attribute.Key("bulwark.priority")
	KeyState       = attribute.Key("bulwark.state")
	KeyFromState   = attribute.Key("bulwark.from_state")
	KeyToState     = attribute.Key("bulwark.to_state")
	KeyDecision    = attribute.Key("bulwark.decision")
	KeyAttemptKind = attribute.Key("bulwark.attempt.kind")
)

// Outcome values of bulwark.outcome.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
	OutcomeIgnored = "ignored"
	OutcomeRefused = "refused"
)

// Outcomes lists the outcome values in a fixed order, for counter slots.
var Outcomes = []string{OutcomeSuccess, OutcomeFailure, OutcomeIgnored, OutcomeRefused}

// Meter returns the meter for the package at pkg (relative to the module,
// "" for the root, "breaker" for breaker) from mp, or from the global
// provider when mp is nil.
func Meter(mp metric.MeterProvider, pkg string) metric.Meter {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	name := ModulePath
	if pkg != "" {
		name += "/" + pkg
	}
	return mp.Meter(name, metric.WithInstrumentationVersion(Version))
}

// Handle reports an instrument error to otel.Handle, never to the request
// path.
func Handle(err error) {
	if err != nil {
		otel.Handle(err)
	}
}

// Set is one precomputed attribute set in the option forms each instrument
// kind takes.
type Set struct {
	Attrs   attribute.Set
	Add     []metric.AddOption
	Record  []metric.RecordOption
	Observe []metric.ObserveOption
}

// NewSet precomputes the options for one combination of attributes.
func NewSet(kv ...attribute.KeyValue) Set {
	s := attribute.NewSet(kv...)
	o := metric.WithAttributeSet(s)
	return Set{
		Attrs:   s,
		Add:     []metric.AddOption{o},
		Record:  []metric.RecordOption{o},
		Observe: []metric.ObserveOption{o},
	}
}

// Counters is a fixed number of monotonic counts kept in atomics, each with
// its own attribute set, exported through an Int64ObservableCounter by
// [Register]. Add is a single atomic add.
type Counters struct {
	vals []paddedInt64
	sets []Set
	reg  *Registration // set by ObservedCounters
}

type paddedInt64 struct {
	atomic.Int64
	_ [56]byte // one cache line each: counters of different slots do not share
}

// NewCounters makes one count per set.
func NewCounters(sets ...Set) *Counters {
	return &Counters{vals: make([]paddedInt64, len(sets)), sets: sets}
}

// Add adds n to count i.
func (c *Counters) Add(i int, n int64) { c.vals[i].Add(n) }

// Load returns count i.
func (c *Counters) Load(i int) int64 { return c.vals[i].Load() }

// Observe reports every count to o for inst.
func (c *Counters) Observe(o metric.Observer, inst metric.Int64Observable) {
	for i := range c.vals {
		o.ObserveInt64(inst, c.vals[i].Load(), c.sets[i].Observe...)
	}
}

// ObservedCounters makes one count per set and exports them through a new
// Int64ObservableCounter named name, registered with the counts as the
// weakly held owner: the registration ends when the counts are dropped or
// when Unregister is called.
func ObservedCounters(m metric.Meter, name, desc, unit string, sets ...Set) *Counters {
	c := NewCounters(sets...)
	inst := Int64ObservableCounter(m, name, desc, unit)
	c.reg = Register(m, c, func(c *Counters, o metric.Observer) { c.Observe(o, inst) }, inst)
	return c
}

// Unregister ends the registration of counts made by [ObservedCounters];
// it does nothing for others.
func (c *Counters) Unregister() { c.reg.Unregister() }

// Int64ObservableCounter creates an observable counter, reporting an error
// to otel.Handle and falling back to a no-op instrument.
func Int64ObservableCounter(m metric.Meter, name, desc, unit string) metric.Int64ObservableCounter {
	c, err := m.Int64ObservableCounter(name, metric.WithDescription(desc), metric.WithUnit(unit))
	if err != nil || c == nil {
		Handle(err)
		c, _ = noop.Meter{}.Int64ObservableCounter(name)
	}
	return c
}

// Int64ObservableGauge creates an observable gauge, reporting an error to
// otel.Handle and falling back to a no-op instrument.
func Int64ObservableGauge(m metric.Meter, name, desc, unit string) metric.Int64ObservableGauge {
	g, err := m.Int64ObservableGauge(name, metric.WithDescription(desc), metric.WithUnit(unit))
	if err != nil || g == nil {
		Handle(err)
		g, _ = noop.Meter{}.Int64ObservableGauge(name)
	}
	return g
}

// Int64ObservableUpDownCounter creates an observable up-down counter,
// reporting an error to otel.Handle and falling back to a no-op instrument.
func Int64ObservableUpDownCounter(m metric.Meter, name, desc, unit string) metric.Int64ObservableUpDownCounter {
	g, err := m.Int64ObservableUpDownCounter(name, metric.WithDescription(desc), metric.WithUnit(unit))
	if err != nil || g == nil {
		Handle(err)
		g, _ = noop.Meter{}.Int64ObservableUpDownCounter(name)
	}
	return g
}

// Int64Counter creates a synchronous counter, for events off the hot path.
func Int64Counter(m metric.Meter, name, desc, unit string) metric.Int64Counter {
	c, err := m.Int64Counter(name, metric.WithDescription(desc), metric.WithUnit(unit))
	if err != nil || c == nil {
		Handle(err)
		c, _ = noop.Meter{}.Int64Counter(name)
	}
	return c
}

// Float64Histogram creates a histogram with explicit bucket boundaries (in
// the instrument's unit, seconds for durations).
func Float64Histogram(m metric.Meter, name, desc, unit string, bounds []float64) metric.Float64Histogram {
	h, err := m.Float64Histogram(name, metric.WithDescription(desc), metric.WithUnit(unit),
		metric.WithExplicitBucketBoundaries(bounds...))
	if err != nil || h == nil {
		Handle(err)
		h, _ = noop.Meter{}.Float64Histogram(name)
	}
	return h
}

// DurationBuckets are boundaries in seconds for waits and delays from 1 ms
// to 30 s.
var DurationBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// Registration is a callback registered for a policy. It ends when
// Unregister is called or when the policy is garbage collected, whichever
// comes first: the callback holds the policy weakly.
type Registration struct {
	once sync.Once
	reg  metric.Registration
}

// Unregister removes the callback; later calls do nothing.
func (r *Registration) Unregister() {
	if r == nil {
		return
	}
	r.once.Do(func() {
		if r.reg != nil {
			Handle(r.reg.Unregister())
		}
	})
}

// Register registers observe for owner's observable instruments. The
// callback holds owner through a weak pointer, so a dropped owner is
// collected and its callback unregistered; observe receives the owner and
// must not capture it. A collection on another goroutine may run observe
// as soon as it is registered, before Register returns: the owner must be
// complete by then, and observe must not read what is set afterwards (the
// Registration stored in the owner, say).
func Register[T any](m metric.Meter, owner *T, observe func(owner *T, o metric.Observer), insts ...metric.Observable) *Registration {
	wp := weak.Make(owner)
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		if p := wp.Value(); p != nil {
			observe(p, o)
		}
		return nil
	}, insts...)
	r := &Registration{reg: reg}
	if err != nil {
		Handle(err)
		return r
	}
	runtime.AddCleanup(owner, func(r *Registration) { r.Unregister() }, r)
	return r
}
