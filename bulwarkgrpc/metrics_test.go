package bulwarkgrpc_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// metrics is an SDK meter provider read by hand.
type metrics struct {
	mp     *sdkmetric.MeterProvider
	reader *sdkmetric.ManualReader
}

func newMetrics(t *testing.T) *metrics {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return &metrics{mp: mp, reader: reader}
}

// count returns the value of the counter name for the outcome and tier.
func (m *metrics) count(t *testing.T, name, outcome, priority string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := m.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != "github.com/bulwark-go/bulwark/bulwarkgrpc" {
			continue
		}
		for _, mm := range sm.Metrics {
			if mm.Name != name {
				continue
			}
			sum, ok := mm.Data.(metricdata.Sum[int64])
			if !ok {
				t.Fatalf("%s is %T, want a Sum[int64]", name, mm.Data)
			}
			for _, dp := range sum.DataPoints {
				o, _ := dp.Attributes.Value(attribute.Key("bulwark.outcome"))
				p, _ := dp.Attributes.Value(attribute.Key("bulwark.priority"))
				if o.AsString() == outcome && p.AsString() == priority {
					return dp.Value
				}
			}
		}
	}
	return 0
}
