package bulkhead_test

import (
	"context"
	"errors"
	"math"
	"runtime"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulkhead"
	"github.com/bulwark-go/bulwark/internal/metrictest"
)

// apiKey renders the attributes of a point of the bulkhead "api" with kv
// (keys and values) besides its name, as metrictest keys points.
func apiKey(kv ...string) string {
	return metrictest.Key(append([]string{"bulwark.policy.name", "api"}, kv...)...)
}

// prio, reason and outcome are the key and value of one attribute.
func prio(p bulwark.Priority) []string { return []string{"bulwark.priority", p.String()} }
func reason(r string) []string         { return []string{"bulwark.reason", r} }
func outcome(o string) []string        { return []string{"bulwark.outcome", o} }

func TestMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reader := metrictest.New(t)
		b := bulkhead.New("api", 1, bulkhead.WithMaxQueue(2), bulkhead.WithMaxWait(5*time.Second), bulkhead.WithMeterProvider(reader.Provider))

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
		// Do and Admit would wait, but the queue is full of tiers no lower
		// than theirs: refused at once, counted at their tier.
		if err := b.Do(prioCtx(sp), func(context.Context) error { return nil }); !errors.Is(err, bulkhead.ErrFull) {
			t.Fatalf("Do() = %v, want ErrFull", err)
		}
		if _, err := b.Admit(prioCtx(cr)); !errors.Is(err, bulkhead.ErrFull) {
			t.Fatalf("Admit() = %v, want ErrFull", err)
		}
		time.Sleep(time.Second)
		hold.Release() // to caller 2, after 1 s
		if r := <-out; r.id != 2 || r.err != nil {
			t.Fatalf("caller %d: %v, want caller 2 admitted", r.id, r.err)
		}

		gauges := []struct {
			name string
			key  string
			want int64
		}{
			{"bulwark.bulkhead.active", apiKey(), 1},
			{"bulwark.bulkhead.limit", apiKey(), 1},
			{"bulwark.bulkhead.queued", apiKey(prio(cr)...), 1},
			{"bulwark.bulkhead.queued", apiKey(prio(sh)...), 0},
			{"bulwark.bulkhead.queued", apiKey(prio(cp)...), 0},
			{"bulwark.bulkhead.queued", apiKey(prio(sp)...), 0},
			{"bulwark.bulkhead.refused", apiKey(append(prio(sh), reason("evicted")...)...), 1},
			{"bulwark.bulkhead.refused", apiKey(append(prio(cr), reason("full")...)...), 2},
			{"bulwark.bulkhead.refused", apiKey(append(prio(sp), reason("full")...)...), 1},
			{"bulwark.bulkhead.refused", apiKey(append(prio(cp), reason("full")...)...), 0},
			{"bulwark.bulkhead.refused", apiKey(append(prio(cr), reason("timeout")...)...), 0},
		}
		for _, g := range gauges {
			v, ok := reader.Int64(g.name)[g.key]
			if !ok || v != g.want {
				t.Errorf("%s {%s} = %d (found %v), want %d", g.name, g.key, v, ok, g.want)
			}
		}
		if got, want := reader.Scopes(), []string{"github.com/bulwark-go/bulwark/bulkhead"}; !slices.Equal(got, want) {
			t.Errorf("meters = %v, want %v", got, want)
		}
		for _, name := range []string{"bulwark.bulkhead.active", "bulwark.bulkhead.limit", "bulwark.bulkhead.queued", "bulwark.bulkhead.refused"} {
			if _, ok := reader.Monotonic(name); !ok {
				t.Errorf("%s is not an int64 sum", name)
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

		if v := reader.Int64("bulwark.bulkhead.active")[apiKey()]; v != 0 {
			t.Errorf("active = %d at the end, want 0", v)
		}
		if v := reader.Int64("bulwark.bulkhead.refused")[apiKey(append(prio(cr), reason("timeout")...)...)]; v != 1 {
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
			dp, ok := reader.HistogramWhere("bulwark.bulkhead.wait.duration")[apiKey(append(prio(w.prio), outcome(w.outcome)...)...)]
			if !ok || dp.Count != 1 || math.Abs(dp.Sum-w.want) > 1e-9 {
				t.Errorf("wait.duration{%s, %s} = count %d sum %v (found %v), want count 1 sum %v", w.outcome, w.prio, dp.Count, dp.Sum, ok, w.want)
			}
		}
		// The refusal of Do, which found the queue full, recorded no wait.
		if dp := reader.HistogramWhere("bulwark.bulkhead.wait.duration")[apiKey(append(prio(sp), outcome("refused")...)...)]; dp.Count != 0 {
			t.Errorf("wait.duration{refused, %s} count = %d, want 0 (Do did not wait)", sp, dp.Count)
		}
		// The fast path records no wait.
		_ = b.Do(context.Background(), func(context.Context) error { return nil })
		if dp := reader.HistogramWhere("bulwark.bulkhead.wait.duration")[apiKey(append(prio(cr), outcome("success")...)...)]; dp.Count != 0 {
			t.Errorf("wait.duration{success, critical} count = %d after an unqueued call, want 0", dp.Count)
		}
	})
}

// TestMetricsDoNotKeepTheBulkheadAlive: a dropped bulkhead is collected and
// its callback stops reporting.
func TestMetricsDoNotKeepTheBulkheadAlive(t *testing.T) {
	reader := metrictest.New(t)
	func() {
		b := bulkhead.New("api", 3, bulkhead.WithMeterProvider(reader.Provider))
		_ = b.Do(context.Background(), func(context.Context) error { return nil })
	}()
	for i := 0; ; i++ {
		runtime.GC()
		runtime.Gosched()
		if _, ok := reader.Int64("bulwark.bulkhead.limit")[apiKey()]; !ok {
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
	reader := metrictest.New(t)
	b := bulkhead.New("api", 3, bulkhead.WithMeterProvider(reader.Provider), bulkhead.WithMeterProvider(nil))
	if v, ok := reader.Int64("bulwark.bulkhead.limit")[apiKey()]; !ok || v != 3 {
		t.Errorf("bulwark.bulkhead.limit = %d (found %v), want 3 through the provider given before nil", v, ok)
	}
	runtime.KeepAlive(b)
}
