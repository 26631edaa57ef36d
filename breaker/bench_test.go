package breaker

import (
	"context"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/internal/metrictest"
	"github.com/bulwark-go/bulwark/internal/redistest"
)

// The targets (issue 5): a successful Do within 1.3× of raw gobreaker
// TwoStepCircuitBreaker Allow+done and at most its 1 allocation; a refused
// Do within 1.3× of raw gobreaker's refusal and 0 allocations; both with the
// no-op and with an SDK MeterProvider.

func rawTwoStep(open bool) *gobreaker.TwoStepCircuitBreaker[struct{}] {
	cb := gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:         "raw",
		Interval:     DefaultWindow,
		BucketPeriod: DefaultWindow / DefaultBuckets,
		Timeout:      time.Hour,
		ReadyToTrip:  func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 1 },
	})
	if open {
		done, _ := cb.Allow()
		done(errBoom)
	}
	return cb
}

func BenchmarkSuccess(b *testing.B) {
	ctx := context.Background()
	srv := redistest.Start(b) // running for every sub-benchmark, so that only the link differs
	b.Run("raw-twostep", func(b *testing.B) {
		cb := rawTwoStep(false)
		b.ReportAllocs()
		for b.Loop() {
			done, err := cb.Allow()
			if err != nil {
				b.Fatal(err)
			}
			done(nil)
		}
	})
	b.Run("raw-execute", func(b *testing.B) {
		cb := gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{Interval: DefaultWindow, BucketPeriod: DefaultWindow / DefaultBuckets})
		b.ReportAllocs()
		for b.Loop() {
			_, _ = cb.Execute(func() (struct{}, error) { return struct{}{}, nil })
		}
	})
	for _, p := range metrictest.Providers(b) {
		b.Run("do-"+p.Name, func(b *testing.B) {
			br := New("bench", WithMeterProvider(p.Provider))
			defer br.Close()
			b.ReportAllocs()
			for b.Loop() {
				if err := br.Do(ctx, succeed); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("admit-"+p.Name, func(b *testing.B) {
			br := New("bench", WithMeterProvider(p.Provider))
			defer br.Close()
			b.ReportAllocs()
			for b.Loop() {
				done, err := br.Admit(ctx)
				if err != nil {
					b.Fatal(err)
				}
				done(nil)
			}
		})
		b.Run("group-"+p.Name, func(b *testing.B) {
			g := NewGroup("bench", WithMeterProvider(p.Provider))
			defer g.Close()
			kctx := bulwark.WithKey(ctx, "host-1")
			b.ReportAllocs()
			for b.Loop() {
				if err := g.Do(kctx, succeed); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("pause-on-hint-"+p.Name, func(b *testing.B) {
			br := New("bench", WithMeterProvider(p.Provider), WithPauseOnHint())
			defer br.Close()
			b.ReportAllocs()
			for b.Loop() {
				if err := br.Do(ctx, succeed); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("shared-"+p.Name, func(b *testing.B) {
			br := New("bench", WithMeterProvider(p.Provider), WithSharedState(benchState(b, srv)))
			defer br.Close()
			b.ReportAllocs()
			for b.Loop() {
				if err := br.Do(ctx, succeed); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("adaptive-"+p.Name, func(b *testing.B) {
			a := NewAdaptive("bench", WithMeterProvider(p.Provider))
			defer a.Close()
			b.ReportAllocs()
			for b.Loop() {
				if err := a.Do(ctx, succeed); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchState is a RedisState on srv, closed when the benchmark ends.
func benchState(b *testing.B, srv *redistest.Server) *RedisState {
	s := NewRedisState(srv.Client())
	b.Cleanup(func() { s.Close() })
	return s
}

func BenchmarkRefused(b *testing.B) {
	ctx := context.Background()
	b.Run("raw-twostep", func(b *testing.B) {
		cb := rawTwoStep(true)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := cb.Allow(); err == nil {
				b.Fatal("admitted")
			}
		}
	})
	for _, p := range metrictest.Providers(b) {
		b.Run("do-"+p.Name, func(b *testing.B) {
			br := New("bench", WithMeterProvider(p.Provider), WithConsecutiveFailures(1), WithBreakDuration(time.Hour))
			defer br.Close()
			_ = br.Do(ctx, fail)
			b.ReportAllocs()
			for b.Loop() {
				if err := br.Do(ctx, succeed); err == nil {
					b.Fatal("admitted")
				}
			}
		})
		b.Run("forced-"+p.Name, func(b *testing.B) {
			br := New("bench", WithMeterProvider(p.Provider))
			defer br.Close()
			br.ForceOpen()
			b.ReportAllocs()
			for b.Loop() {
				if err := br.Do(ctx, succeed); err == nil {
					b.Fatal("admitted")
				}
			}
		})
		b.Run("paused-"+p.Name, func(b *testing.B) {
			br := New("bench", WithMeterProvider(p.Provider), WithPauseOnHint())
			defer br.Close()
			_ = br.Do(ctx, func(context.Context) error { return &hinted{bulwark.ErrRemoteRejected, time.Hour} })
			b.ReportAllocs()
			for b.Loop() {
				if err := br.Do(ctx, succeed); err == nil {
					b.Fatal("admitted")
				}
			}
		})
		b.Run("adaptive-"+p.Name, func(b *testing.B) {
			a := NewAdaptive("bench", WithMeterProvider(p.Provider), WithRandom(func() float64 { return 0 }), WithMinCalls(1))
			defer a.Close()
			_ = a.Do(ctx, fail)
			b.ReportAllocs()
			for b.Loop() {
				if err := a.Do(ctx, succeed); err == nil {
					b.Fatal("admitted")
				}
			}
		})
	}
}

func BenchmarkSuccessParallel(b *testing.B) {
	ctx := context.Background()
	srv := redistest.Start(b)
	b.Run("raw-twostep", func(b *testing.B) {
		cb := rawTwoStep(false)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				done, _ := cb.Allow()
				done(nil)
			}
		})
	})
	for _, p := range metrictest.Providers(b) {
		b.Run("do-"+p.Name, func(b *testing.B) {
			br := New("bench", WithMeterProvider(p.Provider))
			defer br.Close()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					_ = br.Do(ctx, succeed)
				}
			})
		})
		b.Run("shared-"+p.Name, func(b *testing.B) {
			br := New("bench", WithMeterProvider(p.Provider), WithSharedState(benchState(b, srv)))
			defer br.Close()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					_ = br.Do(ctx, succeed)
				}
			})
		})
		b.Run("adaptive-"+p.Name, func(b *testing.B) {
			a := NewAdaptive("bench", WithMeterProvider(p.Provider))
			defer a.Close()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					_ = a.Do(ctx, succeed)
				}
			})
		})
	}
}

func BenchmarkRefusedParallel(b *testing.B) {
	ctx := context.Background()
	b.Run("raw-twostep", func(b *testing.B) {
		cb := rawTwoStep(true)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, _ = cb.Allow()
			}
		})
	})
	for _, p := range metrictest.Providers(b) {
		b.Run("do-"+p.Name, func(b *testing.B) {
			br := New("bench", WithMeterProvider(p.Provider), WithConsecutiveFailures(1), WithBreakDuration(time.Hour))
			defer br.Close()
			_ = br.Do(ctx, fail)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					_ = br.Do(ctx, succeed)
				}
			})
		})
	}
}
