package bulkhead_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulkhead"
	"github.com/bulwark-go/bulwark/internal/metrictest"
)

const (
	cp = bulwark.CriticalPlus
	cr = bulwark.Critical
	sp = bulwark.SheddablePlus
	sh = bulwark.Sheddable
)

// enqueue starts one caller per tier, in order, each queued before the next
// starts; caller i has id i.
func enqueue(b *bulkhead.Bulkhead, tiers []bulwark.Priority, out chan<- result, release <-chan struct{}) {
	for i, p := range tiers {
		queueCaller(prioCtx(p), b, i, out, release)
		synctest.Wait()
	}
}

func TestQueueOrder(t *testing.T) {
	tests := []struct {
		name string
		give []bulwark.Priority
		want []int // ids in the order they are admitted
	}{
		{"FIFO within a tier", []bulwark.Priority{cr, cr, cr}, []int{0, 1, 2}},
		{"higher tier first", []bulwark.Priority{sh, sp, cr, cp}, []int{3, 2, 1, 0}},
		{"tier then FIFO", []bulwark.Priority{sh, cr, cp, sp, cr, sh, cp}, []int{2, 6, 1, 4, 3, 0, 5}},
		{"no priority in the context is critical", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newQuiet(1, bulkhead.WithMaxQueue(8))
				hold, _ := b.TryAcquire()
				out := make(chan result, len(tt.give)+2)
				enqueue(b, tt.give, out, nil)
				if tt.give == nil {
					// a plain context queues as critical: behind a critical-plus
					// caller, ahead of a sheddable-plus one.
					queueCaller(prioCtx(sp), b, 0, out, nil)
					synctest.Wait()
					queueCaller(context.Background(), b, 1, out, nil)
					synctest.Wait()
					queueCaller(prioCtx(cp), b, 2, out, nil)
					synctest.Wait()
					tt.want = []int{2, 1, 0}
				}
				if got, want := b.Queued(), len(tt.want); got != want {
					t.Fatalf("Queued() = %d, want %d", got, want)
				}
				hold.Release()
				var got []int
				for range tt.want {
					r := <-out
					if r.err != nil {
						t.Errorf("caller %d: Acquire() = %v", r.id, r.err)
					}
					got = append(got, r.id)
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("admission order = %v, want %v", got, tt.want)
				}
			})
		})
	}
}

func TestTryAcquireNeverJumpsTheQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newQuiet(1, bulkhead.WithMaxQueue(1))
		hold, _ := b.TryAcquire()
		out := make(chan result, 1)
		release := make(chan struct{})
		queueCaller(context.Background(), b, 0, out, release)
		synctest.Wait()
		hold.Release() // the slot goes to the waiter, not back to the pool
		if p, ok := b.TryAcquire(); ok {
			p.Release()
			t.Fatal("TryAcquire() took the slot freed for a queued caller")
		}
		if r := <-out; r.id != 0 || r.err != nil {
			t.Fatalf("caller %d: %v, want caller 0 admitted", r.id, r.err)
		}
		// A newcomer queues behind the granted slot rather than taking it.
		queueCaller(context.Background(), b, 1, out, nil)
		synctest.Wait()
		if got := b.Queued(); got != 1 {
			t.Errorf("Queued() = %d, want 1", got)
		}
		close(release)
		if r := <-out; r.id != 1 || r.err != nil {
			t.Fatalf("caller %d: %v, want caller 1 admitted", r.id, r.err)
		}
		synctest.Wait()
		p, ok := b.TryAcquire()
		if !ok {
			t.Fatal("TryAcquire() failed once the queue emptied and the slot was released")
		}
		p.Release()
	})
}

func TestEviction(t *testing.T) {
	const evictNone = -1
	tests := []struct {
		name    string
		queue   []bulwark.Priority // fills a queue of len(queue)
		arrival bulwark.Priority
		want    int // id of the evicted waiter, or evictNone: the arrival is refused
	}{
		{"newest of the lowest tier", []bulwark.Priority{sh, sh, cr}, cr, 1},
		{"lowest tier, not the nearest below", []bulwark.Priority{sp, sh, cr}, cp, 1},
		{"only tier below", []bulwark.Priority{cr, cr, sp}, cr, 2},
		{"same tier is refused", []bulwark.Priority{cr, cr, cr}, cr, evictNone},
		{"lower tier is refused", []bulwark.Priority{cr, sp, cp}, sh, evictNone},
		{"higher tiers only is refused", []bulwark.Priority{cp, cp, cp}, cr, evictNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newQuiet(1, bulkhead.WithMaxQueue(len(tt.queue)))
				hold, _ := b.TryAcquire()
				out := make(chan result, len(tt.queue)+1)
				enqueue(b, tt.queue, out, nil)
				arrival := len(tt.queue)
				queueCaller(prioCtx(tt.arrival), b, arrival, out, nil)
				synctest.Wait()

				if tt.want == evictNone {
					r := <-out
					if r.id != arrival || !errors.Is(r.err, bulkhead.ErrFull) || errors.Is(r.err, bulkhead.ErrEvicted) {
						t.Errorf("caller %d: %v, want the arrival %d refused with ErrFull", r.id, r.err, arrival)
					}
				} else {
					r := <-out
					if r.id != tt.want || !errors.Is(r.err, bulkhead.ErrEvicted) ||
						!errors.Is(r.err, bulkhead.ErrFull) || !errors.Is(r.err, bulwark.ErrUnavailable) {
						t.Errorf("caller %d: %v, want caller %d evicted (ErrEvicted, ErrFull, ErrUnavailable)", r.id, r.err, tt.want)
					}
				}
				if got := b.Queued(); got != len(tt.queue) {
					t.Errorf("Queued() = %d, want %d (still full)", got, len(tt.queue))
				}
				hold.Release()
				for range tt.queue {
					if r := <-out; r.err != nil {
						t.Errorf("caller %d: %v, want admission", r.id, r.err)
					}
				}
				synctest.Wait() // the last caller releases after reporting
				if b.Queued() != 0 || b.InFlight() != 0 {
					t.Errorf("Queued() = %d, InFlight() = %d, want 0, 0", b.Queued(), b.InFlight())
				}
			})
		})
	}
}

func TestContextEndsWhileQueued(t *testing.T) {
	tests := []struct {
		name     string
		give     func() (context.Context, context.CancelFunc)
		cancel   bool
		wantErr  error
		wantWait time.Duration
	}{
		{"cancelled", func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			true, context.Canceled, 0},
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), time.Second)
		}, false, context.DeadlineExceeded, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newQuiet(1, bulkhead.WithMaxQueue(3))
				hold, _ := b.TryAcquire()
				out := make(chan result, 3)
				start := time.Now()
				queueCaller(context.Background(), b, 0, out, nil)
				synctest.Wait()
				ctx, cancel := tt.give()
				defer cancel()
				queueCaller(ctx, b, 1, out, nil)
				synctest.Wait()
				queueCaller(context.Background(), b, 2, out, nil)
				synctest.Wait()
				if tt.cancel {
					cancel()
				}
				r := <-out
				if r.id != 1 || !errors.Is(r.err, tt.wantErr) {
					t.Fatalf("caller %d: %v, want caller 1 with %v", r.id, r.err, tt.wantErr)
				}
				if d := time.Since(start); d != tt.wantWait {
					t.Errorf("left after %v, want %v", d, tt.wantWait)
				}
				if got := b.Queued(); got != 2 {
					t.Errorf("Queued() = %d, want 2", got)
				}
				hold.Release()
				var got []int
				for range 2 {
					r := <-out
					if r.err != nil {
						t.Errorf("caller %d: %v", r.id, r.err)
					}
					got = append(got, r.id)
				}
				if !slices.Equal(got, []int{0, 2}) {
					t.Errorf("admission order = %v, want [0 2]", got)
				}
				synctest.Wait() // the last caller releases after reporting
				if b.Queued() != 0 || b.InFlight() != 0 {
					t.Errorf("Queued() = %d, InFlight() = %d, want 0, 0", b.Queued(), b.InFlight())
				}
			})
		})
	}
}

func TestMaxWait(t *testing.T) {
	tests := []struct {
		name      string
		releaseAt time.Duration // when the holder releases
		wantErr   error
		wantAt    time.Duration // when the waiter is answered
	}{
		{"leaves after max wait", 5 * time.Second, bulkhead.ErrMaxWait, 2 * time.Second},
		{"admitted before max wait", time.Second, nil, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newQuiet(1, bulkhead.WithMaxQueue(1), bulkhead.WithMaxWait(2*time.Second))
				hold, _ := b.TryAcquire()
				start := time.Now()
				var at time.Duration
				var got bulkhead.Permit
				errc := make(chan error, 1)
				go func() {
					p, err := b.Acquire(context.Background())
					at = time.Since(start)
					got = p
					errc <- err
				}()
				time.Sleep(tt.releaseAt)
				hold.Release()
				err := <-errc
				if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
					t.Errorf("Acquire() = %v, want %v", err, tt.wantErr)
				}
				if tt.wantErr != nil {
					if !errors.Is(err, bulkhead.ErrFull) || !errors.Is(err, bulwark.ErrUnavailable) || errors.Is(err, bulwark.ErrTimeout) {
						t.Errorf("Acquire() = %v, want ErrFull and ErrUnavailable and not bulwark.ErrTimeout", err)
					}
					if got != (bulkhead.Permit{}) {
						t.Error("Acquire() returned a permit with its refusal")
					}
				}
				got.Release()
				if at != tt.wantAt {
					t.Errorf("answered after %v, want %v", at, tt.wantAt)
				}
				if b.Queued() != 0 || b.InFlight() != 0 {
					t.Errorf("Queued() = %d, InFlight() = %d, want 0, 0", b.Queued(), b.InFlight())
				}
				p, ok := b.TryAcquire()
				if !ok {
					t.Fatal("TryAcquire() failed on an idle bulkhead")
				}
				p.Release()
			})
		})
	}
}

// TestStress mixes every way in and out under -race: queued callers of all
// tiers, cancellations, max waits, evictions, TryAcquire and double
// releases; the bulkhead must never exceed its limit and must end idle with
// every slot free.
func TestStress(t *testing.T) {
	t.Run("DoWaits", func(t *testing.T) {
		stress(t, newQuiet(3, bulkhead.WithMaxQueue(6), bulkhead.WithMaxWait(2*time.Millisecond)))
	})
	// Do and Admit refuse at once and evict lower tiers from Acquire's
	// queue.
	t.Run("DoRefusesAndEvicts", func(t *testing.T) {
		stress(t, newQuiet(3, bulkhead.WithMaxQueue(6)))
	})
}

func stress(t *testing.T, b *bulkhead.Bulkhead) {
	const limit, workers, rounds = 3, 32, 60
	var cur, maxSeen atomic.Int64
	enter := func() {
		n := cur.Add(1)
		for m := maxSeen.Load(); n > m && !maxSeen.CompareAndSwap(m, n); m = maxSeen.Load() {
		}
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for range rounds {
				switch rng.IntN(5) {
				case 0:
					if p, ok := b.TryAcquire(); ok {
						enter()
						cur.Add(-1)
						p.Release()
						p.Release()
					}
				case 1:
					ctx, cancel := context.WithTimeout(prioCtx(bulwark.Priorities[rng.IntN(4)]), time.Duration(rng.IntN(500))*time.Microsecond)
					p, err := b.Acquire(ctx)
					cancel()
					if err == nil {
						enter()
						cur.Add(-1)
						p.Release()
					} else if !errors.Is(err, bulkhead.ErrFull) && !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("Acquire() = %v", err)
					}
				case 2:
					done, err := b.Admit(prioCtx(bulwark.Priorities[rng.IntN(4)]))
					if err == nil {
						enter()
						cur.Add(-1)
						done(nil)
						done(nil)
					} else if !errors.Is(err, bulkhead.ErrFull) {
						t.Errorf("Admit() = %v", err)
					}
				default:
					err := b.Do(prioCtx(bulwark.Priorities[rng.IntN(4)]), func(context.Context) error {
						enter()
						defer cur.Add(-1)
						if rng.IntN(2) == 0 {
							time.Sleep(time.Duration(rng.IntN(100)) * time.Microsecond)
						}
						return nil
					})
					if err != nil && !errors.Is(err, bulkhead.ErrFull) {
						t.Errorf("Do() = %v", err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if got := maxSeen.Load(); got > limit {
		t.Errorf("max concurrency = %d, want <= %d", got, limit)
	}
	if b.Queued() != 0 || b.InFlight() != 0 {
		t.Fatalf("Queued() = %d, InFlight() = %d after the load, want 0, 0", b.Queued(), b.InFlight())
	}
	var held []bulkhead.Permit
	for range limit {
		p, ok := b.TryAcquire()
		if !ok {
			t.Fatalf("only %d of %d slots free after the load", len(held), limit)
		}
		held = append(held, p)
	}
	if _, ok := b.TryAcquire(); ok {
		t.Error("more slots than the limit after the load")
	}
	for _, p := range held {
		p.Release()
	}
}

// TestDoAndAdmitNeverWait: with a queue configured and no slot to take, Do
// and Admit refuse at once with ErrFull (no time passes, the queue does not
// grow, the refusal counts at the context's tier), whatever their tier,
// while Acquire waits for the slot.
// TestDoAndAdmitWithoutMaxWaitRefuseAtOnce: with a queue but no maximum
// wait, Do and Admit never wait; a refused CriticalPlus evicts the lower
// tiers queued, so the slot freed next goes to nobody below it.
func TestDoAndAdmitWithoutMaxWaitRefuseAtOnce(t *testing.T) {
	tests := []struct {
		name    string
		give    func(b *bulkhead.Bulkhead, out chan result, release <-chan struct{}) (free func())
		evicted int // lower-tier callers queued before Do and Admit arrive
	}{
		{"compartment full", func(b *bulkhead.Bulkhead, _ chan result, _ <-chan struct{}) func() {
			hold, _ := b.TryAcquire()
			return hold.Release
		}, 0},
		{"lower tier queued", func(b *bulkhead.Bulkhead, out chan result, _ <-chan struct{}) func() {
			hold, _ := b.TryAcquire()
			queueCaller(prioCtx(sh), b, 1, out, nil)
			synctest.Wait()
			return hold.Release
		}, 1},
		{"freed slot granted to a queued caller", func(b *bulkhead.Bulkhead, out chan result, release <-chan struct{}) func() {
			hold, _ := b.TryAcquire()
			queueCaller(prioCtx(sh), b, 1, out, release)
			synctest.Wait()
			hold.Release() // to caller 1, which holds it until release
			if r := <-out; r.id != 1 || r.err != nil {
				t.Fatalf("caller %d: %v, want caller 1 admitted", r.id, r.err)
			}
			return func() {}
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				reader := metrictest.New(t)
				b := bulkhead.New("api", 1, bulkhead.WithMaxQueue(4), bulkhead.WithMeterProvider(reader.Provider))
				out := make(chan result, 4)
				release := make(chan struct{})
				free := tt.give(b, out, release)

				start := time.Now()
				ctx := prioCtx(cp)
				called := false
				err := b.Do(ctx, func(context.Context) error { called = true; return nil })
				if !errors.Is(err, bulkhead.ErrFull) || !errors.Is(err, bulwark.ErrUnavailable) ||
					errors.Is(err, bulkhead.ErrEvicted) || errors.Is(err, bulkhead.ErrMaxWait) {
					t.Errorf("Do() = %v, want ErrFull (not evicted, not max wait)", err)
				}
				if called {
					t.Error("Do() ran fn without a slot")
				}
				done, err := b.Admit(ctx)
				if !errors.Is(err, bulkhead.ErrFull) || errors.Is(err, bulkhead.ErrMaxWait) || done != nil {
					t.Errorf("Admit() = (done != nil: %v, %v), want (false, ErrFull)", done != nil, err)
				}
				synctest.Wait()
				if d := time.Since(start); d != 0 {
					t.Errorf("Do and Admit took %v, want 0", d)
				}
				for range tt.evicted {
					if r := <-out; !errors.Is(r.err, bulkhead.ErrEvicted) {
						t.Errorf("caller %d: %v, want ErrEvicted (a higher tier was refused)", r.id, r.err)
					}
				}
				if got := b.Queued(); got != 0 {
					t.Errorf("Queued() = %d after Do and Admit, want 0 (they do not queue, lower tiers are evicted)", got)
				}
				if v := reader.Int64("bulwark.bulkhead.refused")[apiKey(append(prio(cp), reason("full")...)...)]; v != 2 {
					t.Errorf("refused{full, critical-plus} = %d, want 2", v)
				}
				if v := reader.Int64("bulwark.bulkhead.refused")[apiKey(append(prio(sh), reason("evicted")...)...)]; v != int64(tt.evicted) {
					t.Errorf("refused{evicted, sheddable} = %d, want %d", v, tt.evicted)
				}

				// Acquire, at the same tier, waits for the slot.
				acquired := make(chan time.Duration, 1)
				go func() {
					p, err := b.Acquire(ctx)
					if err != nil {
						t.Errorf("Acquire() = %v, want a slot", err)
					}
					acquired <- time.Since(start)
					p.Release()
				}()
				synctest.Wait()
				if got := b.Queued(); got != 1 {
					t.Errorf("Queued() = %d while Acquire waits, want 1", got)
				}
				time.Sleep(time.Second)
				free()
				close(release)
				if at := <-acquired; at != time.Second {
					t.Errorf("Acquire() admitted after %v, want 1s (when the slot was freed)", at)
				}
				synctest.Wait()
				if b.Queued() != 0 || b.InFlight() != 0 {
					t.Errorf("Queued() = %d, InFlight() = %d, want 0, 0", b.Queued(), b.InFlight())
				}
			})
		})
	}
}
