// Package metrictest reads what bulwark's instruments recorded, for tests:
// an SDK MeterProvider with a ManualReader, and accessors that return data
// points keyed by their attributes.
package metrictest

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
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
		out[Render(dp.Attributes)] = dp.Value
	}
	return out
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
