package health_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/bulwark-go/bulwark/health"
	"github.com/bulwark-go/bulwark/internal/metrictest"
)

// statusGauge returns the points of bulwark.health.status keyed as
// metrictest.Render keys them.
func statusGauge(t *testing.T, r *metrictest.Reader) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	m, ok := r.Metric("bulwark.health.status")
	if !ok {
		return out
	}
	g, ok := m.Data.(metricdata.Gauge[float64])
	if !ok {
		t.Fatalf("bulwark.health.status holds %T, want a float64 gauge", m.Data)
	}
	for _, dp := range g.DataPoints {
		out[metrictest.Render(dp.Attributes)] = dp.Value
	}
	return out
}

func TestMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := metrictest.New(t)
		c := health.New(health.WithMeterProvider(r.Provider), health.WithMeterProvider(nil))
		r.Keep(c)
		c.Register("db", func(context.Context) error { time.Sleep(30 * time.Millisecond); return nil },
			health.WithKind(health.Readiness|health.Startup))
		c.Register("cache", fail, health.WithCritical(false))
		c.Register("loop", fail, health.WithKind(health.Liveness))
		c.Register("never", pass, health.WithKind(health.Liveness))
		c.Register("hangs", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }, health.WithTimeout(2*time.Second))

		if got := r.Int64("bulwark.health.draining"); got[""] != 0 || len(got) != 1 {
			t.Errorf("draining before = %v, want 0", got)
		}
		c.Check(context.Background(), health.Readiness)
		c.Check(context.Background(), health.Liveness, "never")
		got := statusGauge(t, r)
		want := map[string]float64{
			metrictest.Key("bulwark.check", "db", "bulwark.check.kind", "readiness"):    1,
			metrictest.Key("bulwark.check", "db", "bulwark.check.kind", "startup"):      1,
			metrictest.Key("bulwark.check", "cache", "bulwark.check.kind", "readiness"): 0.5,
			metrictest.Key("bulwark.check", "loop", "bulwark.check.kind", "liveness"):   0,
			metrictest.Key("bulwark.check", "hangs", "bulwark.check.kind", "readiness"): 0,
		}
		if len(got) != len(want) {
			t.Errorf("status points = %v, want %v (a check never run is not reported)", got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("status %s = %v, want %v", k, got[k], v)
			}
		}
		h := r.HistogramWhere("bulwark.health.check.duration", "bulwark.check", "db")
		if dp := h[""]; dp.Count != 1 || dp.Sum != 0.03 {
			t.Errorf("db duration = %d runs, %v s; want 1, 0.03", dp.Count, dp.Sum)
		}
		h = r.HistogramWhere("bulwark.health.check.duration", "bulwark.check", "hangs")
		if dp := h[""]; dp.Count != 1 || dp.Sum != 2 {
			t.Errorf("hangs duration = %d runs, %v s; want 1 at its 2 s timeout", dp.Count, dp.Sum)
		}
		c.StartDrain()
		if got := r.Int64("bulwark.health.draining"); got[""] != 1 {
			t.Errorf("draining after StartDrain = %v, want 1", got)
		}
		_ = c.Close()
		if got := statusGauge(t, r); len(got) != 0 {
			t.Errorf("status after Close = %v, want no points", got)
		}
	})
}
