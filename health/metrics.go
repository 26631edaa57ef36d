package health

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/bulwark-go/bulwark/internal/telemetry"
)

// The attribute keys of SPEC.md's vocabulary that only health uses.
const (
	keyCheck     = attribute.Key("bulwark.check")
	keyCheckKind = attribute.Key("bulwark.check.kind")
)

// meters are the Checker's instruments.
type meters struct {
	duration metric.Float64Histogram
	status   metric.Float64ObservableGauge
	draining metric.Int64ObservableGauge
	reg      *telemetry.Registration
}

func newMeters(mp metric.MeterProvider, c *Checker) *meters {
	m := telemetry.Meter(mp, "health")
	t := &meters{}
	t.duration = telemetry.Float64Histogram(m, "bulwark.health.check.duration",
		"How long one run of a health check took; a timed-out run counts as its timeout.", "s",
		telemetry.DurationBuckets)
	st, err := m.Float64ObservableGauge("bulwark.health.status",
		metric.WithDescription("A health check's last result, per kind of probe it answers for: 1 pass, 0.5 warn, 0 fail."),
		metric.WithUnit("1"))
	if err != nil || st == nil {
		telemetry.Handle(err)
		st, _ = noop.Meter{}.Float64ObservableGauge("bulwark.health.status")
	}
	t.status = st
	t.draining = telemetry.Int64ObservableGauge(m, "bulwark.health.draining",
		"1 once a drain started (readiness failing for shutdown), else 0.", "1")
	t.reg = telemetry.Register(m, c, func(c *Checker, o metric.Observer) { c.observe(o, t) }, t.status, t.draining)
	return t
}

func (t *meters) unregister() { t.reg.Unregister() }

// recordDuration records one run of ch that took d.
func (t *meters) recordDuration(ch *check, d time.Duration) {
	t.duration.Record(context.Background(), d.Seconds(), ch.durSet.Record...)
}

// statusValue is the gauge value of a status.
func statusValue(s Status) float64 {
	switch s {
	case StatusPass:
		return 1
	case StatusWarn:
		return 0.5
	}
	return 0
}

// observe reports every check's last result and the drain flag.
func (c *Checker) observe(o metric.Observer, t *meters) {
	var d int64
	if c.draining.Load() {
		d = 1
	}
	o.ObserveInt64(t.draining, d)
	for _, ch := range c.all() {
		ch.mu.Lock()
		has, st := ch.has, ch.last.Status
		ch.mu.Unlock()
		if !has {
			continue
		}
		for i, k := range kinds {
			if ch.kinds&k != 0 {
				o.ObserveFloat64(t.status, statusValue(st), ch.statusSets[i].Observe...)
			}
		}
	}
}
