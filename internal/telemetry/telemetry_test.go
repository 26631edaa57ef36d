package telemetry

import (
	"context"
	"runtime"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type owner struct {
	counts *Counters
	_      [1 << 10]byte
}

func collect(t *testing.T, r *sdkmetric.ManualReader, name string) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != ModulePath+"/test" {
			t.Errorf("scope = %q, want %q", sm.Scope.Name, ModulePath+"/test")
		}
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				v, _ := dp.Attributes.Value(KeyOutcome)
				got[v.AsString()] = dp.Value
			}
		}
	}
	return got
}

func TestObservedCounters(t *testing.T) {
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	defer mp.Shutdown(context.Background())
	c := ObservedCounters(Meter(mp, "test"), "bulwark.test.calls", "test", "{call}",
		NewSet(KeyOutcome.String(OutcomeSuccess)), NewSet(KeyOutcome.String(OutcomeRefused)))
	c.Add(1, 2)
	if got := collect(t, r, "bulwark.test.calls"); got[OutcomeRefused] != 2 || got[OutcomeSuccess] != 0 || len(got) != 2 {
		t.Errorf("collected %v, want refused 2, success 0", got)
	}
	c.Unregister()
	if got := collect(t, r, "bulwark.test.calls"); len(got) != 0 {
		t.Errorf("after Unregister collected %v, want nothing", got)
	}
}

func newOwner(m metric.Meter, inst metric.Int64ObservableCounter) (*owner, *Registration) {
	o := &owner{counts: NewCounters(NewSet(KeyOutcome.String(OutcomeSuccess)), NewSet(KeyOutcome.String(OutcomeFailure)))}
	reg := Register(m, o, func(o *owner, obs metric.Observer) { o.counts.Observe(obs, inst) }, inst)
	return o, reg
}

func TestCountersObserved(t *testing.T) {
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	defer mp.Shutdown(context.Background())
	m := Meter(mp, "test")
	inst := Int64ObservableCounter(m, "bulwark.test.calls", "test", "{call}")
	o, reg := newOwner(m, inst)
	o.counts.Add(0, 3)
	o.counts.Add(1, 1)
	got := collect(t, r, "bulwark.test.calls")
	if got[OutcomeSuccess] != 3 || got[OutcomeFailure] != 1 {
		t.Errorf("collected %v, want success 3, failure 1", got)
	}
	reg.Unregister()
	reg.Unregister() // harmless
	if got := collect(t, r, "bulwark.test.calls"); len(got) != 0 {
		t.Errorf("after Unregister collected %v, want nothing", got)
	}
	runtime.KeepAlive(o)
}

func TestDroppedOwnerIsCollectedAndUnregistered(t *testing.T) {
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	defer mp.Shutdown(context.Background())
	m := Meter(mp, "test")
	inst := Int64ObservableCounter(m, "bulwark.test.calls", "test", "{call}")
	collected := make(chan struct{})
	func() {
		o, _ := newOwner(m, inst)
		o.counts.Add(0, 1)
		runtime.AddCleanup(o, func(ch chan struct{}) { close(ch) }, collected)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		runtime.GC()
		select {
		case <-collected:
		default:
			if time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			t.Fatal("the owner was kept alive by its metric callback")
		}
		break
	}
	// The registration's own cleanup runs on the cleanup goroutine too;
	// once it has, nothing is reported for the dropped owner.
	for time.Now().Before(deadline) {
		runtime.GC()
		if len(collect(t, r, "bulwark.test.calls")) == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Error("a dropped owner's callback is still registered")
}

func TestMeterNilProviderUsesGlobal(t *testing.T) {
	if m := Meter(nil, ""); m == nil {
		t.Fatal("Meter(nil) = nil")
	}
}
