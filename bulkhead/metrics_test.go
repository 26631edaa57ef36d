package bulkhead_test

import (
	"context"
	"errors"
	"math"
	"runtime"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulkhead"
)

var (
	attrName = attribute.String("bulwark.policy.name", "api")
	attrPrio = func(p bulwark.Priority) attribute.KeyValue { return attribute.String("bulwark.priority", p.String()) }
)

func TestMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		defer func() { _ = mp.Shutdown(context.Background()) }()
		b := bulkhead.New("api", 1, bulkhead.WithMaxQueue(2), bulkhead.WithMaxWait(5*time.Second), bulkhead.WithMeterProvider(mp))

		hold, _ := b.TryAcquire()
		out := make(chan result, 4)
		release := make(chan struct{})
		enqueue(b, []bulwark.Priority{cr, sh}, out, release) // callers 0 and 1
		queueCaller(prioCtx(cp), b, 2, out, release)         // evicts caller 1
		synctest.Wait()
		if r := <-out; r.id != 1 || !errors.Is(r.err, bulkhead.ErrEvicted) {
			t.Fatalf("caller %d: %v, want caller 1 evicted", r.id, r.err)
		}
		if _, ok := b.TryAcquire(); ok {
			t.Fatal("TryAcquire() succeeded on a full bulkhead")
		}
		// Do and Admit never wait: refused at once, counted at their tier.
		if err := b.Do(prioCtx(sp), func(context.Context) error { return nil }); !errors.Is(err, bulkhead.ErrFull) {
			t.Fatalf("Do() = %v, want ErrFull", err)
		}
		if _, err := b.Admit(prioCtx(cp)); !errors.Is(err, bulkhead.ErrFull) {
			t.Fatalf("Admit() = %v, want ErrFull", err)
		}
		time.Sleep(time.Second)
		hold.Release() // to caller 2, after 1 s
		if r := <-out; r.id != 2 || r.err != nil {
			t.Fatalf("caller %d: %v, want caller 2 admitted", r.id, r.err)
		}

		got := collect(t, reader)
		gauges := []struct {
			name  string
			attrs []attribute.KeyValue
			want  int64
		}{
			{"bulwark.bulkhead.active", []attribute.KeyValue{attrName}, 1},
			{"bulwark.bulkhead.limit", []attribute.KeyValue{attrName}, 1},
			{"bulwark.bulkhead.queued", []attribute.KeyValue{attrName, attrPrio(cr)}, 1},
			{"bulwark.bulkhead.queued", []attribute.KeyValue{attrName, attrPrio(sh)}, 0},
			{"bulwark.bulkhead.queued", []attribute.KeyValue{attrName, attrPrio(cp)}, 0},
			{"bulwark.bulkhead.queued", []attribute.KeyValue{attrName, attrPrio(sp)}, 0},
			{"bulwark.bulkhead.refused", []attribute.KeyValue{attrName, attrPrio(sh), attribute.String("bulwark.reason", "evicted")}, 1},
			{"bulwark.bulkhead.refused", []attribute.KeyValue{attrName, attrPrio(cr), attribute.String("bulwark.reason", "full")}, 1},
			{"bulwark.bulkhead.refused", []attribute.KeyValue{attrName, attrPrio(sp), attribute.String("bulwark.reason", "full")}, 1},
			{"bulwark.bulkhead.refused", []attribute.KeyValue{attrName, attrPrio(cp), attribute.String("bulwark.reason", "full")}, 1},
			{"bulwark.bulkhead.refused", []attribute.KeyValue{attrName, attrPrio(cr), attribute.String("bulwark.reason", "timeout")}, 0},
		}
		for _, g := range gauges {
			v, ok := sumPoint(t, got[g.name], g.attrs...)
			if !ok || v != g.want {
				t.Errorf("%s %v = %d (found %v), want %d", g.name, g.attrs, v, ok, g.want)
			}
		}

		// Caller 0 runs out of time 5 s after it queued; a sheddable-plus
		// caller gives up after half a second.
		if r := <-out; r.id != 0 || !errors.Is(r.err, bulkhead.ErrMaxWait) {
			t.Fatalf("caller %d: %v, want caller 0 out of time", r.id, r.err)
		}
		ctx, cancel := context.WithCancel(prioCtx(sp))
		queueCaller(ctx, b, 3, out, nil)
		time.Sleep(500 * time.Millisecond)
		cancel()
		if r := <-out; r.id != 3 || !errors.Is(r.err, context.Canceled) {
			t.Fatalf("caller %d: %v, want caller 3 cancelled", r.id, r.err)
		}
		close(release)
		synctest.Wait()

		got = collect(t, reader)
		if v, _ := sumPoint(t, got["bulwark.bulkhead.active"], attrName); v != 0 {
			t.Errorf("active = %d at the end, want 0", v)
		}
		if v, _ := sumPoint(t, got["bulwark.bulkhead.refused"], attrName, attrPrio(cr), attribute.String("bulwark.reason", "timeout")); v != 1 {
			t.Errorf("refused{timeout, critical} = %d, want 1", v)
		}
		waits := []struct {
			outcome string
			prio    bulwark.Priority
			want    float64 // seconds, one wait each
		}{
			{"success", cp, 1},
			{"refused", sh, 0},
			{"refused", cr, 5},
			{"ignored", sp, 0.5},
		}
		for _, w := range waits {
			dp, ok := histPoint(t, got["bulwark.bulkhead.wait.duration"], attrName, attrPrio(w.prio), attribute.String("bulwark.outcome", w.outcome))
			if !ok || dp.Count != 1 || math.Abs(dp.Sum-w.want) > 1e-9 {
				t.Errorf("wait.duration{%s, %s} = count %d sum %v (found %v), want count 1 sum %v", w.outcome, w.prio, dp.Count, dp.Sum, ok, w.want)
			}
		}
		// The refusals of Do and Admit recorded no wait.
		for _, p := range []bulwark.Priority{sp, cp} {
			if dp, _ := histPoint(t, got["bulwark.bulkhead.wait.duration"], attrName, attrPrio(p), attribute.String("bulwark.outcome", "refused")); dp.Count != 0 {
				t.Errorf("wait.duration{refused, %s} count = %d, want 0 (Do and Admit do not wait)", p, dp.Count)
			}
		}
		// The fast path records no wait.
		_ = b.Do(context.Background(), func(context.Context) error { return nil })
		got = collect(t, reader)
		if dp, _ := histPoint(t, got["bulwark.bulkhead.wait.duration"], attrName, attrPrio(cr), attribute.String("bulwark.outcome", "success")); dp.Count != 0 {
			t.Errorf("wait.duration{success, critical} count = %d after an unqueued call, want 0", dp.Count)
		}
	})
}

// TestMetricsDoNotKeepTheBulkheadAlive: a dropped bulkhead is collected and
// its callback stops reporting.
func TestMetricsDoNotKeepTheBulkheadAlive(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	func() {
		b := bulkhead.New("api", 3, bulkhead.WithMeterProvider(mp))
		_ = b.Do(context.Background(), func(context.Context) error { return nil })
	}()
	for i := 0; ; i++ {
		runtime.GC()
		runtime.Gosched()
		got := collect(t, reader)
		if _, ok := sumPoint(t, got["bulwark.bulkhead.limit"], attrName); !ok {
			return
		}
		if i == 100 {
			t.Fatal("the dropped bulkhead still reports bulwark.bulkhead.limit")
		}
	}
}

// eagerProvider runs every callback as it is registered, as a collection
// running on another goroutine (a periodic reader) may while New is still
// building the bulkhead.
type eagerProvider struct{ noop.MeterProvider }

func (eagerProvider) Meter(string, ...metric.MeterOption) metric.Meter { return eagerMeter{} }

type eagerMeter struct{ noop.Meter }

func (eagerMeter) RegisterCallback(f metric.Callback, _ ...metric.Observable) (metric.Registration, error) {
	_ = f(context.Background(), noop.Observer{})
	return noop.Registration{}, nil
}

// TestCollectionDuringNew: the observable callback reads only what is set
// before it is registered.
func TestCollectionDuringNew(t *testing.T) {
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("New() with a collection during registration panicked: %v", r)
		}
	}()
	b := bulkhead.New("api", 2, bulkhead.WithMeterProvider(eagerProvider{}))
	if err := b.Do(context.Background(), func(context.Context) error { return nil }); err != nil {
		t.Errorf("Do() = %v, want nil", err)
	}
}

// TestMeterProviderNilIgnored: a later WithMeterProvider(nil) does not send
// the metrics back to the global provider.
func TestMeterProviderNilIgnored(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	b := bulkhead.New("api", 3, bulkhead.WithMeterProvider(mp), bulkhead.WithMeterProvider(nil))
	if v, ok := sumPoint(t, collect(t, reader)["bulwark.bulkhead.limit"], attrName); !ok || v != 3 {
		t.Errorf("bulwark.bulkhead.limit = %d (found %v), want 3 through the provider given before nil", v, ok)
	}
	runtime.KeepAlive(b)
}
