// Package metrictest reads what bulwark's instruments recorded, for tests:
// an SDK MeterProvider with a ManualReader, and accessors that return data
// points keyed by their attributes.
package metrictest

import (
	"context"
	"runtime"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Reader is an SDK MeterProvider whose metrics a test collects on demand.
type Reader struct {
	t        testing.TB
	reader   *sdkmetric.ManualReader
	Provider *sdkmetric.MeterProvider
}

// New returns a Reader whose provider is shut down when the test ends.
func New(t testing.TB) *Reader {
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return &Reader{t: t, reader: r, Provider: mp}
}

// NamedProvider is a MeterProvider named for a sub-benchmark.
type NamedProvider struct {
	Name     string
	Provider metric.MeterProvider
}

// Providers returns the meter providers benchmarks run under: "noop", the
// no-op provider, and "sdk", an SDK provider with a ManualReader as in
// production, shut down when tb ends.
func Providers(tb testing.TB) []NamedProvider {
	return []NamedProvider{{"noop", noop.NewMeterProvider()}, {"sdk", New(tb).Provider}}
}

// Keep keeps objs reachable until the test ends. bulwark's metric
// callbacks hold their policies weakly, so a policy the test no longer
// uses may be collected, and stop reporting, before the test reads its
// metrics; Keep the policies whose metrics a test reads.
func (r *Reader) Keep(objs ...any) {
	r.t.Cleanup(func() { runtime.KeepAlive(objs) })
}

// Collect collects every instrument now.
func (r *Reader) Collect() metricdata.ResourceMetrics {
	r.t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.reader.Collect(context.Background(), &rm); err != nil {
		r.t.Fatalf("Collect() = %v", err)
	}
	return rm
}

// Metric returns the instrument called name, from any scope.
func (r *Reader) Metric(name string) (metricdata.Metrics, bool) {
	r.t.Helper()
	for _, sm := range r.Collect().ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m, true
			}
		}
	}
	return metricdata.Metrics{}, false
}

// Int64 returns the int64 data points (of a sum or a gauge) of the
// instrument called name, keyed by [Render] of their attributes. It fails
// the test when the instrument holds other data.
func (r *Reader) Int64(name string) map[string]int64 {
	r.t.Helper()
	return r.Int64Where(name)
}

// Int64Where returns the int64 data points (of a sum or a gauge) of the
// instrument called name whose attributes include every key and value of
// kv (given as for [Key]), keyed by [Render] of their other attributes: ""
// is the point whose attributes are exactly kv. It fails the test when the
// instrument holds other data.
func (r *Reader) Int64Where(name string, kv ...string) map[string]int64 {
	r.t.Helper()
	out := map[string]int64{}
	m, ok := r.Metric(name)
	if !ok {
		return out
	}
	var dps []metricdata.DataPoint[int64]
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		dps = d.DataPoints
	case metricdata.Gauge[int64]:
		dps = d.DataPoints
	default:
		r.t.Fatalf("%s holds %T, want int64 points", name, m.Data)
	}
	for _, dp := range dps {
		if rest, ok := without(dp.Attributes, kv); ok {
			out[rest] = dp.Value
		}
	}
	return out
}

// Int64Total returns the sum of the values [Reader.Int64Where] returns.
func (r *Reader) Int64Total(name string, kv ...string) int64 {
	r.t.Helper()
	var total int64
	for _, v := range r.Int64Where(name, kv...) {
		total += v
	}
	return total
}

// Monotonic reports whether the instrument called name is a monotonic
// int64 sum (a counter); ok is false when it is not an int64 sum at all,
// or was not collected.
func (r *Reader) Monotonic(name string) (monotonic, ok bool) {
	r.t.Helper()
	m, found := r.Metric(name)
	s, ok := m.Data.(metricdata.Sum[int64])
	return s.IsMonotonic, found && ok
}

// HistogramWhere returns the data points of the float64 histogram called
// name whose attributes include every key and value of kv, keyed as
// [Reader.Int64Where] keys them. It fails the test when the instrument
// holds other data.
func (r *Reader) HistogramWhere(name string, kv ...string) map[string]metricdata.HistogramDataPoint[float64] {
	r.t.Helper()
	out := map[string]metricdata.HistogramDataPoint[float64]{}
	m, ok := r.Metric(name)
	if !ok {
		return out
	}
	h, ok := m.Data.(metricdata.Histogram[float64])
	if !ok {
		r.t.Fatalf("%s holds %T, want a float64 histogram", name, m.Data)
	}
	for _, dp := range h.DataPoints {
		if rest, ok := without(dp.Attributes, kv); ok {
			out[rest] = dp
		}
	}
	return out
}

// Scopes returns the names of the instrumentation scopes (meters) that
// reported anything, sorted.
func (r *Reader) Scopes() []string {
	r.t.Helper()
	var names []string
	for _, sm := range r.Collect().ScopeMetrics {
		names = append(names, sm.Scope.Name)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// without reports whether s holds every key and value of kv, and renders
// the attributes of s that kv does not name.
func without(s attribute.Set, kv []string) (string, bool) {
	if len(kv)%2 != 0 {
		panic("metrictest: need key, value pairs")
	}
	for i := 0; i < len(kv); i += 2 {
		if v, ok := s.Value(attribute.Key(kv[i])); !ok || v.String() != kv[i+1] {
			return "", false
		}
	}
	rest, _ := s.Filter(func(a attribute.KeyValue) bool {
		for i := 0; i < len(kv); i += 2 {
			if string(a.Key) == kv[i] {
				return false
			}
		}
		return true
	})
	return Render(rest), true
}

// Render writes an attribute set as "k=v,k=v", keys in order.
func Render(s attribute.Set) string {
	var b strings.Builder
	for i, kv := range s.ToSlice() {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(string(kv.Key))
		b.WriteByte('=')
		b.WriteString(kv.Value.String())
	}
	return b.String()
}

// Key renders attributes given as alternating keys and values, in any
// order, the way [Render] does: Key("bulwark.outcome", "success",
// "bulwark.policy.name", "api").
func Key(kv ...string) string {
	if len(kv)%2 != 0 {
		panic("metrictest: Key needs key, value pairs")
	}
	attrs := make([]attribute.KeyValue, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		attrs = append(attrs, attribute.String(kv[i], kv[i+1]))
	}
	return Render(attribute.NewSet(attrs...))
}
