package idempotency_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/internal/metrictest"
	"github.com/bulwark-go/bulwark/internal/redistest"
)

func benchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "key-" + strconv.Itoa(i)
	}
	return keys
}

// benchGuard runs a new request (Begin, Complete: records expire at once,
// so every key executes again) or a replay (Begin of a completed key).
func benchGuard(b *testing.B, g *idempotency.Guard, replay bool, counter *redistest.Counter) {
	ctx := context.Background()
	rec := &idempotency.Record{Status: 201, Header: []idempotency.Field{{"Content-Type", "application/json"}}, Body: []byte(`{"id":"ord_1"}`)}
	keys := benchKeys(4096)
	if replay {
		keys = keys[:1]
		c, _, _ := g.Begin(ctx, keys[0], "scope", fpA)
		_ = c.Complete(ctx, rec)
	}
	one := func(i int) {
		c, r, err := g.Begin(ctx, keys[i%len(keys)], "scope", fpA)
		switch {
		case err != nil:
			b.Fatal(err)
		case replay && r == nil:
			b.Fatal("no replay")
		case !replay && c == nil:
			b.Fatal("no call")
		case c != nil:
			if err := c.Complete(ctx, rec); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("loop", func(b *testing.B) {
		b.ReportAllocs()
		if counter != nil {
			counter.Reset()
		}
		i := 0
		for b.Loop() {
			one(i)
			i++
		}
		if counter != nil {
			b.ReportMetric(float64(counter.Trips())/float64(i), "trips/op")
		}
	})
	b.Run("parallel", func(b *testing.B) {
		if !replay {
			b.Skip("distinct keys per goroutine would be needed; the loop measures a new request")
		}
		b.ReportAllocs()
		if counter != nil {
			counter.Reset()
		}
		var n atomic.Int64
		defer func() {
			if counter != nil {
				b.ReportMetric(float64(counter.Trips())/float64(n.Load()), "trips/op")
			}
		}()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				one(0)
				n.Add(1)
			}
		})
	})
}

func BenchmarkGuardMemory(b *testing.B) {
	for _, mp := range metrictest.Providers(b) {
		b.Run(mp.Name+"/new", func(b *testing.B) {
			benchGuard(b, idempotency.New(idempotency.NewMemoryStore(idempotency.WithMeterProvider(mp.Provider)),
				idempotency.WithRetention(time.Nanosecond), idempotency.WithMeterProvider(mp.Provider)), false, nil)
		})
		b.Run(mp.Name+"/replay", func(b *testing.B) {
			benchGuard(b, idempotency.New(idempotency.NewMemoryStore(idempotency.WithMeterProvider(mp.Provider)),
				idempotency.WithMeterProvider(mp.Provider)), true, nil)
		})
	}
}

// BenchmarkGuardRedis reports round trips per request, counted by a
// go-redis hook after the scripts are loaded.
func BenchmarkGuardRedis(b *testing.B) {
	srv := redistest.Start(b)
	c := srv.Client()
	counter := redistest.NewCounter()
	c.AddHook(counter)
	for _, replay := range []bool{false, true} {
		name := "new"
		if replay {
			name = "replay"
		}
		b.Run(name, func(b *testing.B) {
			g := idempotency.New(idempotency.NewRedisStore(c, idempotency.WithPrefix("benchn:")),
				idempotency.WithRetention(time.Millisecond))
			if replay {
				g = idempotency.New(idempotency.NewRedisStore(c, idempotency.WithPrefix("benchr:")))
			}
			// Load the scripts first: steady state.
			if call, _, err := g.Begin(context.Background(), "warm", "", fpB); err == nil && call != nil {
				_ = call.Complete(context.Background(), &idempotency.Record{Status: 200})
			}
			benchGuard(b, g, replay, counter)
		})
	}
}
