package breaker

import (
	"context"
	"maps"
	"runtime"
	"slices"
	"testing"
	"weak"

	"github.com/bulwark-go/bulwark/internal/metrictest"
)

func TestMetrics(t *testing.T) {
	c := metrictest.New(t)
	b := New("pay", WithMeterProvider(c.Provider), WithConsecutiveFailures(2))

	const name = "bulwark.policy.name=pay"
	if got := c.Int64("bulwark.breaker.state"); got[name] != 0 || len(got) != 1 {
		t.Errorf("state from construction = %v, want {%s: 0}", got, name)
	}
	if got, want := c.Scopes(), []string{"github.com/bulwark-go/bulwark/breaker"}; !slices.Equal(got, want) {
		t.Errorf("meters = %v, want %v", got, want)
	}

	run(t, b, "sff")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = b.Do(ctx, succeed)                  // ignored
	_ = b.Do(context.Background(), succeed) // refused

	if got := c.Int64("bulwark.breaker.state"); got[name] != 2 {
		t.Errorf("state when open = %v, want 2", got[name])
	}
	wantCalls := map[string]int64{
		"bulwark.outcome=success," + name: 1,
		"bulwark.outcome=failure," + name: 2,
		"bulwark.outcome=ignored," + name: 1,
		"bulwark.outcome=refused," + name: 1,
	}
	if got := c.Int64("bulwark.breaker.calls"); !maps.Equal(got, wantCalls) {
		t.Errorf("calls = %v, want %v", got, wantCalls)
	}

	b.ForceOpen()
	if got := c.Int64("bulwark.breaker.state"); got[name] != 2 {
		t.Errorf("state when forced open = %v, want 2", got[name])
	}
	b.Disable()
	if got := c.Int64("bulwark.breaker.state"); got[name] != 0 {
		t.Errorf("state when disabled = %v, want 0", got[name])
	}
	b.Reset()
	wantTrans := map[string]int64{
		"bulwark.from_state=closed," + name + ",bulwark.to_state=open":          1,
		"bulwark.from_state=open," + name + ",bulwark.to_state=forced_open":     1,
		"bulwark.from_state=forced_open," + name + ",bulwark.to_state=disabled": 1,
		"bulwark.from_state=disabled," + name + ",bulwark.to_state=closed":      1,
	}
	if got := c.Int64("bulwark.breaker.transitions"); !maps.Equal(got, wantTrans) {
		t.Errorf("transitions = %v, want %v", got, wantTrans)
	}

	if err := b.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if got := c.Int64("bulwark.breaker.state"); len(got) != 0 {
		t.Errorf("state after Close = %v, want nothing", got)
	}
}

func TestMetricsOfDisabledBreaker(t *testing.T) {
	c := metrictest.New(t)
	b := New("dis", WithMeterProvider(c.Provider))
	b.Disable()
	run(t, b, "ssf")
	got := c.Int64("bulwark.breaker.calls")
	if got["bulwark.outcome=success,bulwark.policy.name=dis"] != 2 || got["bulwark.outcome=failure,bulwark.policy.name=dis"] != 1 {
		t.Errorf("calls while disabled = %v, want 2 successes and 1 failure", got)
	}
}

func TestDroppedBreakerIsCollected(t *testing.T) {
	c := metrictest.New(t)
	b := New("dropped", WithMeterProvider(c.Provider), WithConsecutiveFailures(1))
	run(t, b, "f")
	g := NewGroup("dropped-group", WithMeterProvider(c.Provider))
	_ = g.Do(keyed("a"), succeed)
	wb, wg := weak.Make(b), weak.Make(g)
	if got := c.Int64("bulwark.breaker.state"); got["bulwark.policy.name=dropped"] != 2 {
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
	for i := 0; i < 100 && len(c.Int64("bulwark.breaker.state")) != 0; i++ {
		runtime.Gosched()
		runtime.GC()
	}
	if got := c.Int64("bulwark.breaker.state"); len(got) != 0 {
		t.Errorf("state after the breaker was collected = %v, want nothing", got)
	}
}
