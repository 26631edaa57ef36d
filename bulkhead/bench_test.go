package bulkhead_test

import (
	"context"
	"errors"
	"runtime"
	"testing"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulkhead"
	"github.com/bulwark-go/bulwark/internal/metrictest"
)

// chanSem is the floor the bulkhead is measured against: a buffered-channel
// semaphore.
type chanSem chan struct{}

func (s chanSem) tryAcquire() bool {
	select {
	case s <- struct{}{}:
		return true
	default:
		return false
	}
}

func (s chanSem) release() { <-s }

func (s chanSem) do(ctx context.Context, fn func(context.Context) error) error {
	if !s.tryAcquire() {
		return errSemFull
	}
	defer s.release()
	return fn(ctx)
}

var errSemFull = errors.New("full")

// benchLimit is large enough that RunParallel never finds the bulkhead full.
const benchLimit = 1024

func nop(context.Context) error { return nil }

func BenchmarkTryAcquireRelease(b *testing.B) {
	b.Run("chan", func(b *testing.B) {
		s := make(chanSem, benchLimit)
		b.ReportAllocs()
		for b.Loop() {
			if !s.tryAcquire() {
				b.Fatal("refused")
			}
			s.release()
		}
	})
	b.Run("chan/parallel", func(b *testing.B) {
		s := make(chanSem, benchLimit)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if !s.tryAcquire() {
					b.Error("refused")
					return
				}
				s.release()
			}
		})
	})
	for _, mp := range metrictest.Providers(b) {
		b.Run("bulkhead/"+mp.Name, func(b *testing.B) {
			bh := bulkhead.New("bench", benchLimit, bulkhead.WithMeterProvider(mp.Provider))
			b.ReportAllocs()
			for b.Loop() {
				p, ok := bh.TryAcquire()
				if !ok {
					b.Fatal("refused")
				}
				p.Release()
			}
		})
		b.Run("bulkhead/"+mp.Name+"/parallel", func(b *testing.B) {
			bh := bulkhead.New("bench", benchLimit, bulkhead.WithMeterProvider(mp.Provider))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					p, ok := bh.TryAcquire()
					if !ok {
						b.Error("refused")
						return
					}
					p.Release()
				}
			})
		})
	}
}

func BenchmarkDo(b *testing.B) {
	ctx := context.Background()
	b.Run("chan", func(b *testing.B) {
		s := make(chanSem, benchLimit)
		b.ReportAllocs()
		for b.Loop() {
			if err := s.do(ctx, nop); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("chan/parallel", func(b *testing.B) {
		s := make(chanSem, benchLimit)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := s.do(ctx, nop); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	for _, mp := range metrictest.Providers(b) {
		for _, queue := range []int{0, 16} {
			name := mp.Name
			if queue > 0 {
				name += "/queue"
			}
			b.Run("bulkhead/"+name, func(b *testing.B) {
				bh := bulkhead.New("bench", benchLimit, bulkhead.WithMeterProvider(mp.Provider), bulkhead.WithMaxQueue(queue))
				b.ReportAllocs()
				for b.Loop() {
					if err := bh.Do(ctx, nop); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("bulkhead/"+name+"/parallel", func(b *testing.B) {
				bh := bulkhead.New("bench", benchLimit, bulkhead.WithMeterProvider(mp.Provider), bulkhead.WithMaxQueue(queue))
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := bh.Do(ctx, nop); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

// BenchmarkRefused measures a refusal of a full bulkhead (limit 1, held).
func BenchmarkRefused(b *testing.B) {
	ctx := context.Background()
	b.Run("chan", func(b *testing.B) {
		s := make(chanSem, 1)
		s.tryAcquire()
		b.ReportAllocs()
		for b.Loop() {
			if err := s.do(ctx, nop); err == nil {
				b.Fatal("admitted")
			}
		}
	})
	for _, mp := range metrictest.Providers(b) {
		b.Run("bulkhead/"+mp.Name+"/Do", func(b *testing.B) {
			bh := bulkhead.New("bench", 1, bulkhead.WithMeterProvider(mp.Provider))
			p, _ := bh.TryAcquire()
			defer p.Release()
			b.ReportAllocs()
			for b.Loop() {
				if err := bh.Do(ctx, nop); err == nil {
					b.Fatal("admitted")
				}
			}
		})
		// With a hold time observed, the refusal carries a hint; it stays
		// the same, so refusals share one error value.
		b.Run("bulkhead/"+mp.Name+"/Do/hinted", func(b *testing.B) {
			bh := bulkhead.New("bench", 1, bulkhead.WithMeterProvider(mp.Provider))
			_ = bh.Do(ctx, nop)
			p, _ := bh.TryAcquire()
			defer p.Release()
			b.ReportAllocs()
			for b.Loop() {
				if err := bh.Do(ctx, nop); err == nil {
					b.Fatal("admitted")
				}
			}
		})
		b.Run("bulkhead/"+mp.Name+"/Do/parallel", func(b *testing.B) {
			bh := bulkhead.New("bench", 1, bulkhead.WithMeterProvider(mp.Provider))
			p, _ := bh.TryAcquire()
			defer p.Release()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := bh.Do(ctx, nop); err == nil {
						b.Error("admitted")
						return
					}
				}
			})
		})
		b.Run("bulkhead/"+mp.Name+"/TryAcquire", func(b *testing.B) {
			bh := bulkhead.New("bench", 1, bulkhead.WithMeterProvider(mp.Provider))
			p, _ := bh.TryAcquire()
			defer p.Release()
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := bh.TryAcquire(); ok {
					b.Fatal("admitted")
				}
			}
		})
	}
	// With a caller queued: Do refuses on the lock-free path, Acquire of the
	// lowest tier finds the queue full under the mutex.
	queued := func(b *testing.B, refuse func(bh *bulkhead.Bulkhead) error) {
		bh := bulkhead.New("bench", 1, bulkhead.WithMaxQueue(1))
		p, _ := bh.TryAcquire()
		waiter := make(chan error)
		wctx, cancel := context.WithCancel(ctx)
		go func() { _, err := bh.Acquire(wctx); waiter <- err }()
		for bh.Queued() != 1 {
			runtime.Gosched()
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := refuse(bh); err == nil {
				b.Fatal("admitted")
			}
		}
		b.StopTimer()
		cancel()
		<-waiter
		p.Release()
	}
	b.Run("bulkhead/queued/Do", func(b *testing.B) {
		queued(b, func(bh *bulkhead.Bulkhead) error { return bh.Do(ctx, nop) })
	})
	b.Run("bulkhead/queue-full/Acquire", func(b *testing.B) {
		sctx := bulwark.WithPriority(ctx, bulwark.Sheddable)
		queued(b, func(bh *bulkhead.Bulkhead) error { _, err := bh.Acquire(sctx); return err })
	})
}
