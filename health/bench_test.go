package health_test

import (
	"context"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/health"
	"github.com/bulwark-go/bulwark/internal/metrictest"
)

// BenchmarkCheckCached is a probe storm against cached results: what a
// flood of /readyz costs once the checks ran.
func BenchmarkCheckCached(b *testing.B) {
	for _, p := range metrictest.Providers(b) {
		b.Run(p.Name, func(b *testing.B) {
			c := health.New(health.WithMeterProvider(p.Provider))
			defer c.Close()
			for _, n := range []string{"db", "cache", "queue"} {
				c.Register(n, pass, health.WithMinInterval(time.Hour))
			}
			ctx := context.Background()
			c.Check(ctx, health.Readiness)
			b.Run("loop", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					c.Check(ctx, health.Readiness)
				}
			})
			b.Run("parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						c.Check(ctx, health.Readiness)
					}
				})
			})
		})
	}
}

// BenchmarkCheckRun runs a check on every probe (WithMinInterval(0)): the
// cost of a run, goroutine and timer included.
func BenchmarkCheckRun(b *testing.B) {
	c := health.New()
	defer c.Close()
	c.Register("db", pass, health.WithMinInterval(0))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		c.Check(ctx, health.Readiness)
	}
}
