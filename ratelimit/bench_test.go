package ratelimit_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"golang.org/x/time/rate"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/internal/metrictest"
	"github.com/bulwark-go/bulwark/ratelimit"
)

// A bucket that never runs dry during a benchmark, so every call takes the
// success path.
const (
	benchLimit = rate.Limit(1e12)
	benchBurst = 1 << 30
)

func okFn(context.Context) error { return nil }

// BenchmarkRawAllow is the baseline: x/time/rate's own Allow.
func BenchmarkRawAllow(b *testing.B) {
	lim := rate.NewLimiter(benchLimit, benchBurst)
	b.Run("loop", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !lim.Allow() {
				b.Fatal("refused")
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if !lim.Allow() {
					b.Error("refused")
					return
				}
			}
		})
	})
}

// BenchmarkDo is the success path of Limiter.Do (tier Critical, which has
// a reserve to check), next to BenchmarkRawAllow.
func BenchmarkDo(b *testing.B) {
	for _, mp := range metrictest.Providers(b) {
		l := ratelimit.New("bench", benchLimit, benchBurst, ratelimit.WithMeterProvider(mp.Provider))
		ctx := context.Background()
		b.Run(mp.Name+"/loop", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := l.Do(ctx, okFn); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(mp.Name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := l.Do(ctx, okFn); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkDoCriticalPlus is the success path of a tier without a reserve.
func BenchmarkDoCriticalPlus(b *testing.B) {
	l := ratelimit.New("bench", benchLimit, benchBurst)
	ctx := bulwark.WithPriority(context.Background(), bulwark.CriticalPlus)
	b.ReportAllocs()
	for b.Loop() {
		if err := l.Do(ctx, okFn); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDoRefused is the refusal path of Limiter.Do: no allocation.
func BenchmarkDoRefused(b *testing.B) {
	l := ratelimit.New("bench", rate.Limit(1e-9), 1)
	ctx := context.Background()
	_ = l.Do(ctx, okFn) // spend the only token
	b.ReportAllocs()
	for b.Loop() {
		if err := l.Do(ctx, okFn); err == nil {
			b.Fatal("admitted")
		}
	}
}

// BenchmarkKeyedHit is the success path of Keyed.Do for a live key among
// 100 000.
func BenchmarkKeyedHit(b *testing.B) {
	const live = 100_000
	for _, mp := range metrictest.Providers(b) {
		k := ratelimit.NewKeyed("bench", benchLimit, benchBurst, ratelimit.WithMaxKeys(2*live), ratelimit.WithMeterProvider(mp.Provider))
		ctxs := make([]context.Context, 1024)
		for i := 0; i < live; i++ {
			ctx := bulwark.WithKey(context.Background(), "tenant-"+strconv.Itoa(i))
			if err := k.Do(ctx, okFn); err != nil {
				b.Fatal(err)
			}
			if i < len(ctxs) {
				ctxs[i] = ctx
			}
		}
		if k.Keys() != live {
			b.Fatalf("Keys() = %d, want %d", k.Keys(), live)
		}
		b.Run(mp.Name+"/loop", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := k.Do(ctxs[i&1023], okFn); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		var g atomic.Int64
		b.Run(mp.Name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := int(g.Add(1)) * 509 // each goroutine on other keys
				for pb.Next() {
					if err := k.Do(ctxs[i&1023], okFn); err != nil {
						b.Error(err)
						return
					}
					i += 7
				}
			})
		})
	}
}

// BenchmarkKeyedRefused is the refusal path of a key's own bucket, which
// allocates its LimitedError.
func BenchmarkKeyedRefused(b *testing.B) {
	k := ratelimit.NewKeyed("bench", rate.Limit(1e-9), 1)
	ctx := bulwark.WithKey(context.Background(), "tenant")
	_ = k.Do(ctx, okFn) // spend the only token
	b.ReportAllocs()
	for b.Loop() {
		if err := k.Do(ctx, okFn); err == nil {
			b.Fatal("admitted")
		}
	}
}
