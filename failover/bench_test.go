package failover_test

import (
	"context"
	"testing"

	"github.com/bulwark-go/bulwark/failover"
	"github.com/bulwark-go/bulwark/internal/metrictest"
)

func BenchmarkDo(b *testing.B) {
	for _, p := range metrictest.Providers(b) {
		for _, mode := range []struct {
			name string
			m    failover.Mode
		}{{"priority", failover.PriorityOrder}, {"roundrobin", failover.RoundRobin}} {
			b.Run(p.Name+"/"+mode.name, func(b *testing.B) {
				set := failover.New("bench", []string{"a", "b", "c"}, failover.WithMode(mode.m), failover.WithMeterProvider(p.Provider))
				defer set.Close()
				ctx := context.Background()
				fn := func(context.Context) error { return nil }
				b.ReportAllocs()
				b.Run("loop", func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						_ = set.Do(ctx, fn)
					}
				})
				b.Run("parallel", func(b *testing.B) {
					b.ReportAllocs()
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							_ = set.Do(ctx, fn)
						}
					})
				})
			})
		}
	}
}
