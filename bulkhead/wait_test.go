package bulkhead_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulkhead"
)

// doCaller starts a goroutine that runs Do at ctx's tier, reports to out
// when fn starts (err nil) or Do is refused, and returns from fn when told
// to (release receives a value) or at once when release is nil.
func doCaller(ctx context.Context, b *bulkhead.Bulkhead, id int, out chan<- result, release <-chan struct{}) {
	go func() {
		err := b.Do(ctx, func(context.Context) error {
			out <- result{id, nil}
			if release != nil {
				<-release
			}
			return nil
		})
		if err != nil {
			out <- result{id, err}
		}
	}()
}

// admitCaller is doCaller through Admit.
func admitCaller(ctx context.Context, b *bulkhead.Bulkhead, id int, out chan<- result, release <-chan struct{}) {
	go func() {
		done, err := b.Admit(ctx)
		out <- result{id, err}
		if err == nil {
			if release != nil {
				<-release
			}
			done(nil)
		}
	}()
}

// TestRefusedTierEvictsLowerWaiters is the review's case: a Sheddable
// waiting in Acquire's queue, a CriticalPlus Do refused (the bulkhead does
// not let Do wait); the slot freed next must not go to the Sheddable.
func TestRefusedTierEvictsLowerWaiters(t *testing.T) {
	refusals := map[string]func(b *bulkhead.Bulkhead) error{
		"Do": func(b *bulkhead.Bulkhead) error {
			return b.Do(prioCtx(cp), func(context.Context) error { return nil })
		},
		"Admit": func(b *bulkhead.Bulkhead) error { _, err := b.Admit(prioCtx(cp)); return err },
		"TryAcquire": func(b *bulkhead.Bulkhead) error { // the default tier, critical
			if _, ok := b.TryAcquire(); ok {
				return nil
			}
			return bulkhead.ErrFull
		},
	}
	for name, refuse := range refusals {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newQuiet(1, bulkhead.WithMaxQueue(4))
				hold, _ := b.TryAcquire()
				out := make(chan result, 4)
				enqueue(b, []bulwark.Priority{sh, cp, sp}, out, nil)
				if err := refuse(b); !errors.Is(err, bulkhead.ErrFull) {
					t.Fatalf("%s() = %v, want ErrFull", name, err)
				}
				synctest.Wait()
				var evicted []int
				for len(out) > 0 {
					r := <-out
					if !errors.Is(r.err, bulkhead.ErrEvicted) {
						t.Errorf("caller %d: %v, want ErrEvicted", r.id, r.err)
					}
					evicted = append(evicted, r.id)
				}
				slices.Sort(evicted)
				if want := []int{0, 2}; !slices.Equal(evicted, want) {
					t.Errorf("evicted %v, want %v (the tiers below critical)", evicted, want)
				}
				if got := b.Queued(); got != 1 {
					t.Errorf("Queued() = %d, want 1 (the critical-plus waiter stays)", got)
				}
				hold.Release()
				if r := <-out; r.id != 1 || r.err != nil {
					t.Errorf("caller %d: %v, want the critical-plus caller 1 admitted", r.id, r.err)
				}
				synctest.Wait()
				if b.InFlight() != 0 || b.Queued() != 0 {
					t.Errorf("InFlight() = %d, Queued() = %d, want 0, 0", b.InFlight(), b.Queued())
				}
			})
		})
	}
}

// TestDoAndAdmitWait: on a bulkhead built with WithMaxQueue and
// WithMaxWait, Do and Admit wait in the priority queue: higher tiers
// first, the lowest evicted when the queue is full.
func TestDoAndAdmitWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newQuiet(1, bulkhead.WithMaxQueue(3), bulkhead.WithMaxWait(time.Minute))
		hold, _ := b.TryAcquire()
		out := make(chan result, 8)
		start := time.Now()
		doCaller(prioCtx(sh), b, 0, out, nil)
		synctest.Wait()
		admitCaller(prioCtx(cr), b, 1, out, nil)
		synctest.Wait()
		doCaller(prioCtx(sp), b, 2, out, nil)
		synctest.Wait()
		if got := b.Queued(); got != 3 {
			t.Fatalf("Queued() = %d, want 3 (Do and Admit wait)", got)
		}
		doCaller(prioCtx(cp), b, 3, out, nil) // evicts caller 0, the sheddable
		synctest.Wait()
		if r := <-out; r.id != 0 || !errors.Is(r.err, bulkhead.ErrEvicted) {
			t.Fatalf("caller %d: %v, want caller 0 evicted", r.id, r.err)
		}
		time.Sleep(time.Second)
		hold.Release()
		var order []int
		for range 3 {
			r := <-out
			if r.err != nil {
				t.Errorf("caller %d: %v, want admission", r.id, r.err)
			}
			order = append(order, r.id)
		}
		if want := []int{3, 1, 2}; !slices.Equal(order, want) {
			t.Errorf("admission order = %v, want %v (critical-plus, critical, sheddable-plus)", order, want)
		}
		if d := time.Since(start); d != time.Second {
			t.Errorf("served after %v, want 1s", d)
		}
		synctest.Wait()
		if b.InFlight() != 0 || b.Queued() != 0 {
			t.Errorf("InFlight() = %d, Queued() = %d, want 0, 0", b.InFlight(), b.Queued())
		}
	})
}

// TestDoWaitIsBounded: a waiting Do leaves after the maximum wait, or
// earlier when the caller's deadline comes first, without calling fn.
func TestDoWaitIsBounded(t *testing.T) {
	tests := []struct {
		name     string
		deadline time.Duration // 0: none
		wantErr  error
		wantAt   time.Duration
	}{
		{"max wait", 0, bulkhead.ErrMaxWait, 2 * time.Second},
		{"caller's deadline first", 500 * time.Millisecond, context.DeadlineExceeded, 500 * time.Millisecond},
		{"max wait before the deadline", time.Hour, bulkhead.ErrMaxWait, 2 * time.Second},
	}
	for _, tt := range tests {
		for _, entry := range []string{"Do", "Admit"} {
			t.Run(tt.name+"/"+entry, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					b := newQuiet(1, bulkhead.WithMaxQueue(1), bulkhead.WithMaxWait(2*time.Second))
					hold, _ := b.TryAcquire()
					defer hold.Release()
					ctx := context.Background()
					if tt.deadline > 0 {
						var cancel context.CancelFunc
						ctx, cancel = context.WithTimeout(ctx, tt.deadline)
						defer cancel()
					}
					start := time.Now()
					var err error
					if entry == "Do" {
						err = b.Do(ctx, func(context.Context) error {
							t.Error("fn ran without a slot")
							return nil
						})
					} else {
						var done func(error)
						done, err = b.Admit(ctx)
						if done != nil {
							t.Error("Admit refused with a non-nil done")
						}
					}
					if !errors.Is(err, tt.wantErr) {
						t.Errorf("%s() = %v, want %v", entry, err, tt.wantErr)
					}
					if d := time.Since(start); d != tt.wantAt {
						t.Errorf("%s() returned after %v, want %v", entry, d, tt.wantAt)
					}
					if b.Queued() != 0 {
						t.Errorf("Queued() = %d, want 0", b.Queued())
					}
				})
			})
		}
	}
}

// TestMaxWaitEvictsLowerTiers: a caller refused after the maximum wait
// takes the lower tiers queued behind it out too.
func TestMaxWaitEvictsLowerTiers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newQuiet(1, bulkhead.WithMaxQueue(4), bulkhead.WithMaxWait(2*time.Second))
		hold, _ := b.TryAcquire()
		out := make(chan result, 4)
		doCaller(prioCtx(cr), b, 0, out, nil)
		time.Sleep(time.Second)
		doCaller(prioCtx(sh), b, 1, out, nil)
		doCaller(prioCtx(cp), b, 2, out, nil)
		synctest.Wait()
		time.Sleep(time.Second) // caller 0 runs out of time
		synctest.Wait()
		got := map[int]error{}
		for len(out) > 0 {
			r := <-out
			got[r.id] = r.err
		}
		if !errors.Is(got[0], bulkhead.ErrMaxWait) || !errors.Is(got[1], bulkhead.ErrEvicted) || len(got) != 2 {
			t.Errorf("results %v, want caller 0 out of time and caller 1 evicted", got)
		}
		hold.Release()
		if r := <-out; r.id != 2 || r.err != nil {
			t.Errorf("caller %d: %v, want caller 2 admitted", r.id, r.err)
		}
	})
}

// TestWaitingDoReleasesOnPanic: a slot granted from the queue is freed when
// fn panics.
func TestWaitingDoReleasesOnPanic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newQuiet(1, bulkhead.WithMaxQueue(1), bulkhead.WithMaxWait(time.Minute))
		hold, _ := b.TryAcquire()
		panicked := make(chan any, 1)
		go func() {
			defer func() { panicked <- recover() }()
			_ = b.Do(context.Background(), func(context.Context) error { panic("boom") })
		}()
		synctest.Wait()
		hold.Release()
		if r := <-panicked; r != "boom" {
			t.Fatalf("recovered %v, want boom", r)
		}
		if b.InFlight() != 0 {
			t.Errorf("InFlight() = %d after the panic, want 0", b.InFlight())
		}
	})
}

// TestHintFollowsHoldTimes: the hint keeps up with the hold times however
// the slots are used; serial use of one slot alternates take and release,
// which once froze the hint at the first hold.
func TestHintFollowsHoldTimes(t *testing.T) {
	for _, limit := range []int{1, 2, 3} {
		t.Run("limit="+string(rune('0'+limit)), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newQuiet(limit)
				run := func(d time.Duration, n int) {
					for range n {
						_ = b.Do(context.Background(), func(context.Context) error { time.Sleep(d); return nil })
					}
				}
				hint := func() time.Duration {
					var held []bulkhead.Permit
					for range limit {
						p, _ := b.TryAcquire()
						held = append(held, p)
					}
					err := b.Do(context.Background(), func(context.Context) error { return nil })
					for _, p := range held {
						p.Release()
					}
					h, _ := bulwark.RetryAfter(err)
					return h
				}
				run(time.Millisecond, 100)
				if h := hint(); h != time.Millisecond {
					t.Errorf("hint = %v after 1 ms holds, want 1ms", h)
				}
				run(time.Second, 32*40*limit)
				// 40 samples or more: the average of weight 1/8 is within
				// 1 % of 1 s, spread over the slots (rounded up to ms).
				want := time.Second / time.Duration(limit)
				if h := hint(); h < want*99/100 || h > want+time.Millisecond {
					t.Errorf("hint = %v after 1 s holds, want about %v", h, want)
				}
			})
		})
	}
}

// TestRefusalKeepsItsHint: a refusal a caller holds shows the hint it was
// refused with, not a later caller's.
func TestRefusalKeepsItsHint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newQuiet(1, bulkhead.WithMaxQueue(4))
		_ = b.Do(context.Background(), func(context.Context) error { time.Sleep(100 * time.Millisecond); return nil })
		hold, _ := b.TryAcquire()
		first := b.Do(context.Background(), func(context.Context) error { return nil })
		if h, _ := bulwark.RetryAfter(first); h != 100*time.Millisecond {
			t.Fatalf("first hint = %v, want 100ms", h)
		}
		again := b.Do(context.Background(), func(context.Context) error { return nil })
		// A caller queued ahead doubles the estimate for the next one.
		out := make(chan result, 1)
		queueCaller(context.Background(), b, 0, out, nil)
		synctest.Wait()
		second := b.Do(context.Background(), func(context.Context) error { return nil })
		if h, _ := bulwark.RetryAfter(second); h != 200*time.Millisecond {
			t.Errorf("second hint = %v, want 200ms", h)
		}
		for _, err := range []error{first, again} {
			if h, _ := bulwark.RetryAfter(err); h != 100*time.Millisecond {
				t.Errorf("held refusal's hint = %v after a later refusal, want its own 100ms", h)
			}
		}
		hold.Release()
		<-out
		synctest.Wait()
		// Refusals with an unchanged hint share one value and allocate
		// nothing.
		hold, _ = b.TryAcquire()
		defer hold.Release()
		fn := func(context.Context) error { return nil }
		_ = b.Do(context.Background(), fn)
		if n := testing.AllocsPerRun(100, func() { _ = b.Do(context.Background(), fn) }); n != 0 {
			t.Errorf("a refusal with the previous refusal's hint allocates %v times, want 0", n)
		}
	})
}

// TestNestedInItself: a one-slot bulkhead chained with itself cannot admit
// the inner call; the inner Do waits its maximum wait (or refuses at once)
// and nothing leaks.
func TestNestedInItself(t *testing.T) {
	for _, wait := range []time.Duration{0, time.Second} {
		t.Run("wait="+wait.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				opts := []bulkhead.Option{bulkhead.WithMaxQueue(2)}
				if wait > 0 {
					opts = append(opts, bulkhead.WithMaxWait(wait))
				}
				b := newQuiet(1, opts...)
				start := time.Now()
				called := false
				err := bulwark.Chain(b, b).Do(context.Background(), func(context.Context) error { called = true; return nil })
				if called || !errors.Is(err, bulkhead.ErrFull) {
					t.Errorf("Do() = %v (fn ran: %v), want ErrFull and fn not run", err, called)
				}
				if d := time.Since(start); d != wait {
					t.Errorf("Do() returned after %v, want %v", d, wait)
				}
				if b.InFlight() != 0 || b.Queued() != 0 {
					t.Errorf("InFlight() = %d, Queued() = %d, want 0, 0", b.InFlight(), b.Queued())
				}
			})
		})
	}
}
