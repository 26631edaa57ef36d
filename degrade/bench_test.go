package degrade_test

import (
	"context"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/degrade"
	"github.com/bulwark-go/bulwark/internal/metrictest"
)

func nop(context.Context) error { return nil }

// BenchmarkDo measures the admission path: a switch off and a shedder at
// level 0 (the state a healthy service runs in), with and without a
// trigger, and the refusal path.
func BenchmarkDo(b *testing.B) {
	for _, mp := range metrictest.Providers(b) {
		cases := []struct {
			name string
			p    bulwark.Policy
		}{
			{"switch-off", degrade.NewSwitch("bench", degrade.WithMeterProvider(mp.Provider))},
			{"shedder-0", degrade.NewShedder("bench", degrade.WithMeterProvider(mp.Provider))},
			{"switch-off-trigger", degrade.NewSwitch("bench", degrade.WithMeterProvider(mp.Provider),
				degrade.WithTrigger(degrade.When(func() bool { return false }, degrade.WithInterval(time.Hour))))},
			{"shedder-2-critical", func() bulwark.Policy {
				s := degrade.NewShedder("bench", degrade.WithMeterProvider(mp.Provider))
				s.SetLevel(2, "bench")
				return s
			}()},
			{"switch-on-refused", func() bulwark.Policy {
				s := degrade.NewSwitch("bench", degrade.WithMeterProvider(mp.Provider))
				s.Set(true, "bench")
				return s
			}()},
			{"chain-shedder-switch", bulwark.Chain(degrade.NewShedder("a", degrade.WithMeterProvider(mp.Provider)),
				degrade.NewSwitch("b", degrade.WithMeterProvider(mp.Provider)))},
		}
		for _, c := range cases {
			ctx := context.Background()
			b.Run(mp.Name+"/"+c.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					_ = c.p.Do(ctx, nop)
				}
			})
			b.Run(mp.Name+"/"+c.name+"/parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						_ = c.p.Do(ctx, nop)
					}
				})
			})
		}
	}
}

// BenchmarkAdmit is two-step admission with the switch off.
func BenchmarkAdmit(b *testing.B) {
	s := degrade.NewSwitch("bench")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		done, _ := s.Admit(ctx)
		done(nil)
	}
}

// BenchmarkOn is the code-path check.
func BenchmarkOn(b *testing.B) {
	s := degrade.NewSwitch("bench")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = s.On()
		}
	})
}

// TestDoAllocs holds the zero-allocation promise outside benchmarks.
func TestDoAllocs(t *testing.T) {
	sw := degrade.NewSwitch("a")
	sh := degrade.NewShedder("b")
	trig := degrade.NewSwitch("c", degrade.WithTrigger(degrade.When(func() bool { return false }, degrade.WithInterval(0))))
	refused := degrade.NewShedder("d")
	refused.SetLevel(3, "x")
	ctx := context.Background()
	for name, f := range map[string]func(){
		"switch off":        func() { _ = sw.Do(ctx, nop) },
		"shedder level 0":   func() { _ = sh.Do(ctx, nop) },
		"trigger every use": func() { _ = trig.Do(ctx, nop) },
		"refusal":           func() { _ = refused.Do(ctx, nop) },
		"admit":             func() { d, _ := sw.Admit(ctx); d(nil) },
		"on":                func() { _ = sw.On() },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocs per call, want 0", name, n)
		}
	}
}
