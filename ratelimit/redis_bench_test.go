package ratelimit_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/internal/redistest"
	"github.com/bulwark-go/bulwark/ratelimit"
)

// BenchmarkRedis measures decisions against a local redis-server from 1
// and 16 goroutines (GOMAXPROCS × parallelism), each decision one EVALSHA
// through the client's connection pool; it reports decisions/s and round
// trips per decision.
func BenchmarkRedis(b *testing.B) {
	srv := redistest.Start(b)
	for _, keyed := range []bool{false, true} {
		for _, g := range []int{1, 16} {
			name := fmt.Sprintf("Redis/goroutines=%d", g)
			if keyed {
				name = fmt.Sprintf("KeyedRedis/goroutines=%d", g)
			}
			b.Run(name, func(b *testing.B) {
				c := srv.Client()
				counter := redistest.NewCounter()
				c.AddHook(counter)
				var p bulwark.Policy = ratelimit.NewRedis(uniqueName("bench"), c, benchLimit, benchBurst)
				ctx := context.Background()
				if keyed {
					p = ratelimit.NewKeyedRedis(uniqueName("bench"), c, benchLimit, benchBurst)
					ctx = keyCtx("tenant")
				}
				_ = p.Do(ctx, okFn) // load the script
				counter.Reset()
				b.ReportAllocs()
				b.ResetTimer()
				if g == 1 {
					for b.Loop() {
						if err := p.Do(ctx, okFn); err != nil {
							b.Fatal(err)
						}
					}
				} else {
					b.SetParallelism(max(1, g/runtime.GOMAXPROCS(0)))
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if err := p.Do(ctx, okFn); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
				b.ReportMetric(float64(counter.Trips())/float64(b.N), "trips/decision")
			})
		}
	}
}

// BenchmarkRedisLocalBatch is BenchmarkRedis with leases of 16 tokens
// (WithLocalBatch): about one round trip per 16 decisions.
func BenchmarkRedisLocalBatch(b *testing.B) {
	srv := redistest.Start(b)
	for _, g := range []int{1, 16} {
		b.Run(fmt.Sprintf("goroutines=%d", g), func(b *testing.B) {
			c := srv.Client()
			counter := redistest.NewCounter()
			c.AddHook(counter)
			l := ratelimit.NewRedis(uniqueName("bench"), c, benchLimit, benchBurst, ratelimit.WithLocalBatch(16))
			ctx := context.Background()
			_ = l.Do(ctx, okFn)
			counter.Reset()
			b.ReportAllocs()
			b.ResetTimer()
			if g == 1 {
				for b.Loop() {
					if err := l.Do(ctx, okFn); err != nil {
						b.Fatal(err)
					}
				}
			} else {
				b.SetParallelism(max(1, g/runtime.GOMAXPROCS(0)))
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := l.Do(ctx, okFn); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
			b.ReportMetric(float64(counter.Trips())/float64(b.N), "trips/decision")
		})
	}
}
