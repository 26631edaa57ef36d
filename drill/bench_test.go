package drill_test

import (
	"context"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/drill"
	"github.com/bulwark-go/bulwark/internal/metrictest"
)

func okFn(context.Context) error { return nil }

// BenchmarkDo measures a call through a disarmed drill (the cost every
// call pays in production), an armed drill whose scope the call is out
// of, and an injected refusal, with the no-op and an SDK MeterProvider.
func BenchmarkDo(b *testing.B) {
	for _, mp := range metrictest.Providers(b) {
		scoped := drill.New("scoped", drill.WithMeterProvider(mp.Provider))
		if err := scoped.Arm(drill.Spec{Refusal: drill.Refusal{Probability: 1},
			Match: drill.Match{Tiers: []bulwark.Priority{bulwark.Sheddable}, Marked: true}}, time.Hour); err != nil {
			b.Fatal(err)
		}
		refusing := drill.New("refusing", drill.WithMeterProvider(mp.Provider))
		if err := refusing.Arm(drill.Spec{Refusal: drill.Refusal{Probability: 1}}, time.Hour); err != nil {
			b.Fatal(err)
		}
		for _, bb := range []struct {
			name string
			d    *drill.Drill
		}{
			{"disarmed", drill.New("off", drill.WithMeterProvider(mp.Provider))},
			{"armed-out-of-scope", scoped},
			{"armed-refusal", refusing},
		} {
			ctx := context.Background()
			b.Run(mp.Name+"/"+bb.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					_ = bb.d.Do(ctx, okFn)
				}
			})
			b.Run(mp.Name+"/"+bb.name+"/parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						_ = bb.d.Do(ctx, okFn)
					}
				})
			})
		}
	}
}
