package breaker

import (
	"context"
	"runtime"
	"testing"
	"weak"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// collector reads metrics through an SDK ManualReader.
type collector struct {
	t      *testing.T
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
}

func newCollector(t *testing.T) *collector {
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return &collector{t: t, reader: r, mp: mp}
}

// points returns every int64 data point of the named instrument, keyed by
// its attributes rendered as "k=v,k=v".
func (c *collector) points(name string) map[string]int64 {
	c.t.Helper()
	var rm metricdata.ResourceMetrics
	if err := c.reader.Collect(context.Background(), &rm); err != nil {
		c.t.Fatalf("Collect() = %v", err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != "github.com/bulwark-go/bulwark/breaker" {
			continue
		}
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			var dps []metricdata.DataPoint[int64]
			switch d := m.Data.(type) {
			case metricdata.Gauge[int64]:
				dps = d.DataPoints
			case metricdata.Sum[int64]:
				dps = d.DataPoints
			default:
				c.t.Fatalf("%s: unexpected data %T", name, m.Data)
			}
			for _, dp := range dps {
				out[render(dp.Attributes)] = dp.Value
			}
		}
	}
	return out
}

func render(s attribute.Set) string {
	out := ""
	for i, kv := range s.ToSlice() {
		if i > 0 {
			out += ","
		}
		out += string(kv.Key) + "=" + kv.Value.String()
	}
	return out
}

func TestMetrics(t *testing.T) {
	c := newCollector(t)
	b := New("pay", WithMeterProvider(c.mp), WithConsecutiveFailures(2))

	const name = "bulwark.policy.name=pay"
	if got := c.points("bulwark.breaker.state"); got[name] != 0 || len(got) != 1 {
		t.Errorf("state from construction = %v, want {%s: 0}", got, name)
	}

	run(t, b, "sff")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = b.Do(ctx, succeed)                  // ignored
	_ = b.Do(context.Background(), succeed) // refused

	if got := c.points("bulwark.breaker.state"); got[name] != 2 {
		t.Errorf("state when open = %v, want 2", got[name])
	}
	wantCalls := map[string]int64{
		"bulwark.outcome=success," + name: 1,
		"bulwark.outcome=failure," + name: 2,
		"bulwark.outcome=ignored," + name: 1,
		"bulwark.outcome=refused," + name: 1,
	}
	if got := c.points("bulwark.breaker.calls"); !equal(got, wantCalls) {
		t.Errorf("calls = %v, want %v", got, wantCalls)
	}

	b.ForceOpen()
	if got := c.points("bulwark.breaker.state"); got[name] != 2 {
		t.Errorf("state when forced open = %v, want 2", got[name])
	}
	b.Disable()
	if got := c.points("bulwark.breaker.state"); got[name] != 0 {
		t.Errorf("state when disabled = %v, want 0", got[name])
	}
	b.Reset()
	wantTrans := map[string]int64{
		"bulwark.from_state=closed," + name + ",bulwark.to_state=open":          1,
		"bulwark.from_state=open," + name + ",bulwark.to_state=forced_open":     1,
		"bulwark.from_state=forced_open," + name + ",bulwark.to_state=disabled": 1,
		"bulwark.from_state=disabled," + name + ",bulwark.to_state=closed":      1,
	}
	if got := c.points("bulwark.breaker.transitions"); !equal(got, wantTrans) {
		t.Errorf("transitions = %v, want %v", got, wantTrans)
	}

	if err := b.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if got := c.points("bulwark.breaker.state"); len(got) != 0 {
		t.Errorf("state after Close = %v, want nothing", got)
	}
}

func TestMetricsOfDisabledBreaker(t *testing.T) {
	c := newCollector(t)
	b := New("dis", WithMeterProvider(c.mp))
	b.Disable()
	run(t, b, "ssf")
	got := c.points("bulwark.breaker.calls")
	if got["bulwark.outcome=success,bulwark.policy.name=dis"] != 2 || got["bulwark.outcome=failure,bulwark.policy.name=dis"] != 1 {
		t.Errorf("calls while disabled = %v, want 2 successes and 1 failure", got)
	}
}

func equal(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestDroppedBreakerIsCollected(t *testing.T) {
	c := newCollector(t)
	b := New("dropped", WithMeterProvider(c.mp), WithConsecutiveFailures(1))
	run(t, b, "f")
	g := NewGroup("dropped-group", WithMeterProvider(c.mp))
	_ = g.Do(keyed("a"), succeed)
	wb, wg := weak.Make(b), weak.Make(g)
	if got := c.points("bulwark.breaker.state"); got["bulwark.policy.name=dropped"] != 2 {
		t.Fatalf("state = %v, want 2 before the breaker is dropped", got)
	}
	b, g = nil, nil
	_, _ = b, g
	for i := 0; i < 5 && (wb.Value() != nil || wg.Value() != nil); i++ {
		runtime.GC()
	}
	if wb.Value() != nil || wg.Value() != nil {
		t.Fatal("a dropped Breaker or Group is kept alive by its metric callback")
	}
	// Cleanups run on their own goroutine: let them unregister.
	for i := 0; i < 100 && len(c.points("bulwark.breaker.state")) != 0; i++ {
		runtime.Gosched()
		runtime.GC()
	}
	if got := c.points("bulwark.breaker.state"); len(got) != 0 {
		t.Errorf("state after the breaker was collected = %v, want nothing", got)
	}
}
