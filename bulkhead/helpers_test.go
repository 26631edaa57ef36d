package bulkhead_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulkhead"
)

// newQuiet returns a bulkhead whose metrics go nowhere.
func newQuiet(limit int, opts ...bulkhead.Option) *bulkhead.Bulkhead {
	return bulkhead.New("test", limit, append([]bulkhead.Option{bulkhead.WithMeterProvider(noop.NewMeterProvider())}, opts...)...)
}

func prioCtx(p bulwark.Priority) context.Context {
	return bulwark.WithPriority(context.Background(), p)
}

// result is what a queued caller ended with.
type result struct {
	id  int
	err error
}

// queueCaller starts a goroutine that acquires at tier p, reports to out
// when it is admitted or refused, and releases its permit when told to
// (release receives a value) or at once when release is nil.
func queueCaller(ctx context.Context, b *bulkhead.Bulkhead, id int, out chan<- result, release <-chan struct{}) {
	go func() {
		p, err := b.Acquire(ctx)
		out <- result{id, err}
		if err == nil {
			if release != nil {
				<-release
			}
			p.Release()
		}
	}()
}

// collect reads every metric from r, by name.
func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]metricdata.Aggregation {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("Collect() = %v", err)
	}
	got := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			got[m.Name] = m.Data
		}
	}
	return got
}

// sumPoint returns the value of the int64 sum point with exactly attrs.
func sumPoint(t *testing.T, data metricdata.Aggregation, attrs ...attribute.KeyValue) (int64, bool) {
	t.Helper()
	if data == nil {
		return 0, false
	}
	s, ok := data.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("aggregation %T, want metricdata.Sum[int64]", data)
	}
	want := attribute.NewSet(attrs...)
	for _, dp := range s.DataPoints {
		if dp.Attributes.Equals(&want) {
			return dp.Value, true
		}
	}
	return 0, false
}

// histPoint returns the histogram point with exactly attrs.
func histPoint(t *testing.T, data metricdata.Aggregation, attrs ...attribute.KeyValue) (metricdata.HistogramDataPoint[float64], bool) {
	t.Helper()
	h, ok := data.(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("aggregation %T, want metricdata.Histogram[float64]", data)
	}
	want := attribute.NewSet(attrs...)
	for _, dp := range h.DataPoints {
		if dp.Attributes.Equals(&want) {
			return dp, true
		}
	}
	return metricdata.HistogramDataPoint[float64]{}, false
}
