package bulkhead_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulkhead"
	"github.com/bulwark-go/bulwark/bulwarktest"
)

func TestContract(t *testing.T) {
	tests := []struct {
		name string
		give func() bulwark.Policy
	}{
		{"NoQueue", func() bulwark.Policy { return newQuiet(4) }},
		{"LimitOne", func() bulwark.Policy { return newQuiet(1) }},
		{"QueueAcquireOnly", func() bulwark.Policy { return newQuiet(2, bulkhead.WithMaxQueue(8)) }},
		// Do and Admit wait, for less than the suite's bound (1 s).
		{"QueueWaits", func() bulwark.Policy {
			return newQuiet(2, bulkhead.WithMaxQueue(8), bulkhead.WithMaxWait(100*time.Millisecond))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { bulwarktest.TestPolicy(t, tt.give) })
	}
}

// TestValidation: every impossible argument panics at construction with a
// message naming the package and the option; huge values meaning "no cap"
// stay valid.
func TestValidation(t *testing.T) {
	tests := []struct {
		name string
		give func()
		want string // the panic message starts with it; "" for no panic
	}{
		{"limit zero", func() { bulkhead.New("x", 0) }, "bulkhead: New: limit"},
		{"limit negative", func() { bulkhead.New("x", -1) }, "bulkhead: New: limit"},
		{"limit too large", func() { bulkhead.New("x", 1<<24) }, "bulkhead: New: limit"},
		{"limit MaxInt", func() { bulkhead.New("x", math.MaxInt) }, "bulkhead: New: limit"},
		{"limit MinInt", func() { bulkhead.New("x", math.MinInt) }, "bulkhead: New: limit"},
		{"negative queue", func() { bulkhead.WithMaxQueue(-1) }, "bulkhead: WithMaxQueue"},
		{"queue too large", func() { bulkhead.WithMaxQueue(1<<30 + 1) }, "bulkhead: WithMaxQueue"},
		{"queue MaxInt", func() { bulkhead.WithMaxQueue(math.MaxInt) }, "bulkhead: WithMaxQueue"},
		{"negative wait", func() { bulkhead.WithMaxWait(-time.Second) }, "bulkhead: WithMaxWait"},
		{"wait MinInt64", func() { bulkhead.WithMaxWait(math.MinInt64) }, "bulkhead: WithMaxWait"},
		{"limit one", func() { bulkhead.New("x", 1) }, ""},
		{"queue zero", func() { bulkhead.New("x", 1, bulkhead.WithMaxQueue(0)) }, ""},
		{"queue max", func() { bulkhead.WithMaxQueue(1 << 30) }, ""},
		{"wait zero", func() { bulkhead.New("x", 1, bulkhead.WithMaxQueue(1), bulkhead.WithMaxWait(0)) }, ""},
		{"wait MaxInt64 (no cap)", func() {
			b := bulkhead.New("x", 1, bulkhead.WithMaxQueue(1), bulkhead.WithMaxWait(math.MaxInt64))
			if err := b.Do(context.Background(), func(context.Context) error { return nil }); err != nil {
				panic("Do() = " + err.Error())
			}
		}, ""},
		{"nil meter provider", func() { bulkhead.New("x", 1, bulkhead.WithMeterProvider(nil)) }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				s, _ := r.(string)
				switch {
				case tt.want == "" && r != nil:
					t.Errorf("panic %v, want none", r)
				case tt.want != "" && !strings.HasPrefix(s, tt.want):
					t.Errorf("panic %v, want a message starting with %q", r, tt.want)
				}
			}()
			tt.give()
		})
	}
}

// TestHugeHoldHintDoesNotOverflow: a hold time near the limit of
// time.Duration with callers queued gives a huge hint, never a negative
// one.
func TestHugeHoldHintDoesNotOverflow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newQuiet(1, bulkhead.WithMaxQueue(8))
		_ = b.Do(context.Background(), func(context.Context) error { time.Sleep(math.MaxInt64 / 4); return nil })
		hold, _ := b.TryAcquire()
		out := make(chan result, 8)
		for i := range 6 {
			queueCaller(context.Background(), b, i, out, nil)
		}
		synctest.Wait()
		err := b.Do(context.Background(), func(context.Context) error { return nil })
		if h, ok := bulwark.RetryAfter(err); !ok || h < time.Duration(math.MaxInt64/4) {
			t.Errorf("RetryAfter() = %v, %v, want a huge positive hint", h, ok)
		}
		hold.Release()
		for range 6 {
			<-out
		}
		synctest.Wait()
	})
}

// TestNilOptionsIgnoredLastWins: Acquire on a full bulkhead waits only when
// the last WithMaxQueue gave it a queue (Do never waits, so it cannot
// tell).
func TestNilOptionsIgnoredLastWins(t *testing.T) {
	tests := []struct {
		name     string
		give     []bulkhead.Option
		wantErr  error
		wantWait time.Duration
	}{
		{"queue then none", []bulkhead.Option{nil, bulkhead.WithMaxQueue(5), bulkhead.WithMaxQueue(0), bulkhead.WithMeterProvider(nil)},
			bulkhead.ErrFull, 0},
		{"none then queue", []bulkhead.Option{bulkhead.WithMaxQueue(0), nil, bulkhead.WithMaxQueue(5)},
			context.DeadlineExceeded, time.Second},
		{"max wait, last wins", []bulkhead.Option{bulkhead.WithMaxQueue(1), bulkhead.WithMaxWait(time.Hour), bulkhead.WithMaxWait(time.Second / 2)},
			bulkhead.ErrMaxWait, time.Second / 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newQuiet(1, tt.give...)
				p, _ := b.TryAcquire()
				defer p.Release()
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				start := time.Now()
				_, err := b.Acquire(ctx)
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("Acquire() = %v, want %v", err, tt.wantErr)
				}
				if got := time.Since(start); got != tt.wantWait {
					t.Errorf("Acquire() answered after %v, want %v", got, tt.wantWait)
				}
			})
		})
	}
}

func TestErrorClasses(t *testing.T) {
	tests := []struct {
		name string
		give error
		want []error
		not  []error
	}{
		{"full", bulkhead.ErrFull, []error{bulwark.ErrUnavailable}, []error{bulkhead.ErrEvicted, bulkhead.ErrMaxWait, bulwark.ErrRejected}},
		{"evicted", bulkhead.ErrEvicted, []error{bulkhead.ErrFull, bulwark.ErrUnavailable}, []error{bulkhead.ErrMaxWait}},
		{"max wait", bulkhead.ErrMaxWait, []error{bulkhead.ErrFull, bulwark.ErrUnavailable},
			[]error{bulkhead.ErrEvicted, bulwark.ErrTimeout, context.DeadlineExceeded}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, w := range tt.want {
				if !errors.Is(tt.give, w) {
					t.Errorf("errors.Is(%v, %v) = false, want true", tt.give, w)
				}
			}
			for _, w := range tt.not {
				if errors.Is(tt.give, w) {
					t.Errorf("errors.Is(%v, %v) = true, want false", tt.give, w)
				}
			}
		})
	}
}

func TestDoWithoutQueueRefusesAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newQuiet(2)
		p1, _ := b.TryAcquire()
		p2, _ := b.TryAcquire()
		start := time.Now()
		called := false
		err := b.Do(context.Background(), func(context.Context) error { called = true; return nil })
		if !errors.Is(err, bulkhead.ErrFull) || !errors.Is(err, bulwark.ErrUnavailable) {
			t.Errorf("Do() = %v, want ErrFull and ErrUnavailable", err)
		}
		if called {
			t.Error("fn ran in a full bulkhead")
		}
		if _, err := b.Acquire(context.Background()); !errors.Is(err, bulkhead.ErrFull) {
			t.Errorf("Acquire() = %v, want ErrFull", err)
		}
		if done, err := b.Admit(context.Background()); !errors.Is(err, bulkhead.ErrFull) || done != nil {
			t.Errorf("Admit() = (done != nil: %v, %v), want (false, ErrFull)", done != nil, err)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("refusals took %v, want 0", d)
		}
		p1.Release()
		p2.Release()
		if err := b.Do(context.Background(), func(context.Context) error { return nil }); err != nil {
			t.Errorf("Do() after release = %v, want nil", err)
		}
	})
}

// acquireDo runs fn in a slot taken with Acquire, the entry that waits in
// the queue.
func acquireDo(b *bulkhead.Bulkhead, ctx context.Context, fn func(context.Context) error) error {
	p, err := b.Acquire(ctx)
	if err != nil {
		return err
	}
	defer p.Release()
	return fn(ctx)
}

// TestMaxConcurrency: under 200 goroutines the bulkhead reaches its limit
// and never exceeds it, whether callers wait in the queue (Acquire) or are
// refused and come back (Do, with and without a queue configured).
func TestMaxConcurrency(t *testing.T) {
	const limit, callers = 8, 200
	tests := []struct {
		name  string
		queue int
		wait  bool // Acquire, which waits in the queue; otherwise Do
	}{
		{"Acquire, queue holds everyone", callers, true},
		{"Do, no queue", 0, false},
		{"Do, queue configured", callers, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newQuiet(limit, bulkhead.WithMaxQueue(tt.queue))
			run := b.Do
			if tt.wait {
				run = func(ctx context.Context, fn func(context.Context) error) error { return acquireDo(b, ctx, fn) }
			}
			var cur, maxSeen, ok, refused atomic.Int64
			reached := make(chan struct{})
			var once sync.Once
			var wg sync.WaitGroup
			for range callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						err := run(context.Background(), func(context.Context) error {
							n := cur.Add(1)
							defer cur.Add(-1)
							for m := maxSeen.Load(); n > m && !maxSeen.CompareAndSwap(m, n); m = maxSeen.Load() {
							}
							if n == limit {
								once.Do(func() { close(reached) })
							}
							select {
							case <-reached:
							case <-time.After(10 * time.Second):
								return errors.New("the limit was never reached")
							}
							runtime.Gosched()
							return nil
						})
						switch {
						case err == nil:
							ok.Add(1)
							return
						case errors.Is(err, bulkhead.ErrFull) && !tt.wait:
							refused.Add(1)
							runtime.Gosched() // retry until admitted: bounded by reached
						default:
							t.Errorf("call = %v", err)
							return
						}
					}
				}()
			}
			wg.Wait()
			if got := maxSeen.Load(); got != limit {
				t.Errorf("max concurrency = %d, want %d", got, limit)
			}
			if got := ok.Load(); got != callers {
				t.Errorf("%d calls admitted, want %d", got, callers)
			}
			if tt.wait && refused.Load() != 0 {
				t.Errorf("%d refusals with a queue holding everyone, want 0", refused.Load())
			}
			if got := b.InFlight(); got != 0 {
				t.Errorf("InFlight() = %d after all calls, want 0", got)
			}
		})
	}
}

func TestReleaseIdempotent(t *testing.T) {
	tests := []struct {
		name string
		give func(b *bulkhead.Bulkhead) (held bulkhead.Permit)
	}{
		{"double release", func(b *bulkhead.Bulkhead) bulkhead.Permit {
			p, _ := b.TryAcquire()
			p.Release()
			p.Release()
			q, _ := b.TryAcquire()
			return q
		}},
		{"late release after the slot was reused", func(b *bulkhead.Bulkhead) bulkhead.Permit {
			p, _ := b.TryAcquire()
			p.Release()
			q, _ := b.TryAcquire()
			p.Release() // must not free q's slot
			return q
		}},
		{"release of a copy", func(b *bulkhead.Bulkhead) bulkhead.Permit {
			p, _ := b.TryAcquire()
			c := p
			c.Release()
			p.Release()
			q, _ := b.TryAcquire()
			c.Release()
			return q
		}},
		{"zero permit", func(b *bulkhead.Bulkhead) bulkhead.Permit {
			var z bulkhead.Permit
			z.Release()
			q, _ := b.TryAcquire()
			z.Release()
			return q
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newQuiet(1)
			held := tt.give(b)
			if got := b.InFlight(); got != 1 {
				t.Errorf("InFlight() = %d, want 1", got)
			}
			if _, ok := b.TryAcquire(); ok {
				t.Fatal("TryAcquire() succeeded while the slot is held: a stale release freed it")
			}
			held.Release()
			if _, ok := b.TryAcquire(); !ok {
				t.Error("TryAcquire() failed after the holder released")
			}
		})
	}
}

func TestPanicAndGoexitRelease(t *testing.T) {
	tests := []struct {
		name string
		give func(b *bulkhead.Bulkhead)
	}{
		{"panic", func(b *bulkhead.Bulkhead) {
			defer func() { _ = recover() }()
			_ = b.Do(context.Background(), func(context.Context) error { panic("boom") })
		}},
		{"Goexit", func(b *bulkhead.Bulkhead) {
			done := make(chan struct{})
			go func() {
				defer close(done)
				_ = b.Do(context.Background(), func(context.Context) error { runtime.Goexit(); return nil })
			}()
			<-done
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newQuiet(1)
			tt.give(b)
			if got := b.InFlight(); got != 0 {
				t.Errorf("InFlight() = %d, want 0", got)
			}
			if p, ok := b.TryAcquire(); !ok {
				t.Error("TryAcquire() = false, want the released slot")
			} else {
				p.Release()
			}
		})
	}
}

func TestAdmit(t *testing.T) {
	b := newQuiet(1)
	var _ bulwark.Admitter = b
	done, err := b.Admit(context.Background())
	if err != nil || done == nil {
		t.Fatalf("Admit() = (%v, %v), want a done and nil", done != nil, err)
	}
	if _, ok := b.TryAcquire(); ok {
		t.Fatal("TryAcquire() succeeded while Admit holds the slot")
	}
	done(nil)
	p, ok := b.TryAcquire()
	if !ok {
		t.Fatal("TryAcquire() failed after done")
	}
	done(errors.New("late")) // must not release p's slot
	if _, ok := b.TryAcquire(); ok {
		t.Error("a second done released someone else's slot")
	}
	p.Release()
}

// TestEndedContext: an ended context is answered with ctx.Err() and no
// slot, by every entry, on a free and on a full bulkhead with a queue.
func TestEndedContext(t *testing.T) {
	entries := []struct {
		name string
		give func(b *bulkhead.Bulkhead, ctx context.Context) (called bool, err error)
	}{
		{"Do", func(b *bulkhead.Bulkhead, ctx context.Context) (bool, error) {
			called := false
			err := b.Do(ctx, func(context.Context) error { called = true; return nil })
			return called, err
		}},
		{"Admit", func(b *bulkhead.Bulkhead, ctx context.Context) (bool, error) {
			done, err := b.Admit(ctx)
			if done != nil {
				done(nil)
			}
			return done != nil, err
		}},
		{"Acquire", func(b *bulkhead.Bulkhead, ctx context.Context) (bool, error) {
			p, err := b.Acquire(ctx)
			p.Release()
			return p != (bulkhead.Permit{}), err
		}},
	}
	for _, full := range []bool{false, true} {
		for _, e := range entries {
			t.Run(fmt.Sprintf("%s/full=%v", e.name, full), func(t *testing.T) {
				b := newQuiet(1, bulkhead.WithMaxQueue(1))
				want := 0
				if full {
					p, _ := b.TryAcquire()
					defer p.Release()
					want = 1
				}
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				called, err := e.give(b, ctx)
				if !errors.Is(err, context.Canceled) {
					t.Errorf("%s() = %v, want context.Canceled", e.name, err)
				}
				if called {
					t.Errorf("%s() admitted a call with an ended context", e.name)
				}
				if got := b.InFlight(); got != want {
					t.Errorf("InFlight() = %d, want %d", got, want)
				}
				if got := b.Queued(); got != 0 {
					t.Errorf("Queued() = %d, want 0", got)
				}
			})
		}
	}
}

func TestRetryAfter(t *testing.T) {
	hold := func(b *bulkhead.Bulkhead, d time.Duration, n int) {
		for range n {
			_ = b.Do(context.Background(), func(context.Context) error { time.Sleep(d); return nil })
		}
	}
	tests := []struct {
		name   string
		limit  int
		queue  int
		hold   time.Duration // each of 4 sequential calls held a slot this long
		queued int           // callers queued ahead of the refused one
		want   time.Duration // 0: no hint
	}{
		{"no hold observed", 1, 0, 0, 0, 0},
		{"mean hold spread over the slots", 2, 0, 100 * time.Millisecond, 0, 50 * time.Millisecond},
		{"callers queued ahead", 2, 1, 100 * time.Millisecond, 1, 100 * time.Millisecond},
		{"at least a millisecond", 4, 0, time.Millisecond, 0, time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newQuiet(tt.limit, bulkhead.WithMaxQueue(tt.queue))
				if tt.hold > 0 {
					hold(b, tt.hold, 4)
				}
				var held []bulkhead.Permit
				for range tt.limit {
					p, _ := b.TryAcquire()
					held = append(held, p)
				}
				out := make(chan result, tt.queued)
				for i := range tt.queued {
					queueCaller(context.Background(), b, i, out, nil)
				}
				synctest.Wait()
				err := b.Do(context.Background(), func(context.Context) error { return nil })
				if !errors.Is(err, bulkhead.ErrFull) {
					t.Fatalf("Do() = %v, want ErrFull", err)
				}
				got, ok := bulwark.RetryAfter(err)
				if got != tt.want || ok != (tt.want > 0) {
					t.Errorf("RetryAfter() = %v, %v, want %v, %v", got, ok, tt.want, tt.want > 0)
				}
				for _, p := range held {
					p.Release()
				}
				for range tt.queued {
					if r := <-out; r.err != nil {
						t.Errorf("queued caller: %v", r.err)
					}
				}
			})
		})
	}
}

// TestRefusalAllocatesNothing: the refusals of Do and Admit allocate
// nothing, with or without a queue configured (they never queue).
func TestRefusalAllocatesNothing(t *testing.T) {
	for _, queue := range []int{0, 4} {
		t.Run(fmt.Sprintf("queue=%d", queue), func(t *testing.T) {
			b := newQuiet(1, bulkhead.WithMaxQueue(queue))
			p, _ := b.TryAcquire()
			defer p.Release()
			ctx := prioCtx(sp)
			fn := func(context.Context) error { return nil }
			if n := testing.AllocsPerRun(100, func() { _ = b.Do(ctx, fn) }); n != 0 {
				t.Errorf("refused Do allocates %v times, want 0", n)
			}
			if n := testing.AllocsPerRun(100, func() { _, _ = b.Admit(ctx) }); n != 0 {
				t.Errorf("refused Admit allocates %v times, want 0", n)
			}
			if n := testing.AllocsPerRun(100, func() { _, _ = bulwark.RetryAfter(b.Do(ctx, fn)) }); n != 0 {
				t.Errorf("RetryAfter of a refusal allocates %v times, want 0", n)
			}
			if got := b.Queued(); got != 0 {
				t.Errorf("Queued() = %d after refusals, want 0", got)
			}
		})
	}
}

func TestSuccessAllocatesNothing(t *testing.T) {
	b := newQuiet(4, bulkhead.WithMaxQueue(4))
	ctx := context.Background()
	fn := func(context.Context) error { return nil }
	if n := testing.AllocsPerRun(100, func() { _ = b.Do(ctx, fn) }); n != 0 {
		t.Errorf("Do allocates %v times, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() {
		p, _ := b.TryAcquire()
		p.Release()
	}); n != 0 {
		t.Errorf("TryAcquire+Release allocates %v times, want 0", n)
	}
}
