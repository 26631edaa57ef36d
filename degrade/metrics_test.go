package degrade_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/degrade"
	"github.com/bulwark-go/bulwark/internal/metrictest"
)

func TestMetrics(t *testing.T) {
	mr := metrictest.New(t)
	sw := degrade.NewSwitch("recs", degrade.WithMeterProvider(mr.Provider), degrade.WithMeterProvider(nil))
	sh := degrade.NewShedder("api", degrade.WithMeterProvider(mr.Provider),
		degrade.WithFallback(func(context.Context, error) error { return nil }))
	mr.Keep(sw, sh)
	reg := bulwark.NewRegistry()
	reg.Register(sw, sh)

	name := func(n string) []string { return []string{"bulwark.policy.name", n} }
	if got := mr.Int64Total("bulwark.degrade.switch.state", name("recs")...); got != 0 {
		t.Errorf("switch.state = %d while off, want 0", got)
	}
	sw.Set(true, "m")
	sh.SetLevel(2, "m")
	if err := degrade.Load(reg, strings.NewReader(`{"switches": {"recs": {"on": true}}}`), quiet()); err != nil {
		t.Fatal(err)
	}
	sw.Release() // hands over to config: a manual change
	for range 3 {
		run(sw, bulwark.WithPriority(context.Background(), bulwark.CriticalPlus))
	}
	run(sh, bulwark.WithPriority(context.Background(), bulwark.Sheddable))
	run(sh, bulwark.WithPriority(context.Background(), bulwark.SheddablePlus))
	run(sh, context.Background()) // critical: served
	if _, err := sh.Admit(bulwark.WithPriority(context.Background(), bulwark.Sheddable)); !errors.Is(err, degrade.ErrShed) {
		t.Fatalf("Admit = %v, want ErrShed", err)
	}

	if got := mr.Int64Total("bulwark.degrade.switch.state", name("recs")...); got != 1 {
		t.Errorf("switch.state = %d while on, want 1", got)
	}
	if got := mr.Int64Total("bulwark.degrade.shed.level", name("api")...); got != 2 {
		t.Errorf("shed.level = %d, want 2", got)
	}
	wantRefused := map[string]map[string]int64{
		"recs": {"bulwark.priority=critical-plus,bulwark.reason=refused": 3},
		"api": {
			"bulwark.priority=sheddable,bulwark.reason=fallback":      1,
			"bulwark.priority=sheddable-plus,bulwark.reason=fallback": 1,
			"bulwark.priority=sheddable,bulwark.reason=refused":       1,
		},
	}
	for n, want := range wantRefused {
		got := mr.Int64Where("bulwark.degrade.refused", name(n)...)
		if len(got) != 8 {
			t.Errorf("refused{%s} has %d points, want 8 (2 reasons × 4 tiers)", n, len(got))
		}
		for k, v := range got {
			if want[k] != v {
				t.Errorf("refused{%s, %s} = %d, want %d", n, k, v, want[k])
			}
		}
	}
	changes := mr.Int64Where("bulwark.degrade.changes", name("recs")...)
	if changes["bulwark.source=manual"] != 2 || changes["bulwark.source=config"] != 0 || changes["bulwark.source=automatic"] != 0 {
		t.Errorf("changes of recs = %v, want manual 2 (the config load was shadowed by the override)", changes)
	}
	if m, ok := mr.Monotonic("bulwark.degrade.refused"); !m || !ok {
		t.Error("bulwark.degrade.refused is not a counter")
	}
	if f := sh.Snapshot().Figures; len(f) != 2 || f[1].Name != "refused" || f[1].Value != 3 {
		t.Errorf("shedder figures = %+v, want refused 3", f)
	}
}

// TestMetricsDoNotKeepPolicies: a dropped switch is collected although its
// metrics were registered.
func TestMetricsDoNotKeepPolicies(t *testing.T) {
	mr := metrictest.New(t)
	collected := make(chan struct{})
	func() {
		sw := degrade.NewSwitch("dropped", degrade.WithMeterProvider(mr.Provider))
		runtime.AddCleanup(sw, func(ch chan struct{}) { close(ch) }, collected)
	}()
	for range 20 {
		runtime.GC()
		select {
		case <-collected:
			mr.Collect()
			return
		default:
		}
	}
	t.Fatal("a dropped switch was never collected: its metrics keep it alive")
}
