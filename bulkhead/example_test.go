package bulkhead_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulkhead"
)

// A bulkhead caps the calls to one dependency; when the compartment is
// full, Do refuses at once (unless the bulkhead was built to wait, see
// WithMaxQueue).
func Example() {
	payments := bulkhead.New("payments", 10)
	err := payments.Do(context.Background(), func(ctx context.Context) error {
		fmt.Println("charged")
		return nil
	})
	fmt.Println(err)
	// Output:
	// charged
	// <nil>
}

// Built with a queue and a maximum wait, a bulkhead lets Do (and Admit,
// which the HTTP and gRPC middleware use) wait for a slot, the most
// important tier first, for at most the maximum wait.
func ExampleWithMaxQueue() {
	b := bulkhead.New("reports", 1, bulkhead.WithMaxQueue(10), bulkhead.WithMaxWait(time.Minute))
	hold, _ := b.TryAcquire()

	var wg sync.WaitGroup
	for i, p := range []bulwark.Priority{bulwark.Sheddable, bulwark.CriticalPlus, bulwark.Critical} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := b.Do(bulwark.WithPriority(context.Background(), p), func(context.Context) error {
				fmt.Println("ran", p)
				return nil
			})
			if err != nil {
				fmt.Println(p, err)
			}
		}()
		for b.Queued() != i+1 { // wait until it is queued, to fix the arrival order
			runtime.Gosched()
		}
	}
	hold.Release()
	wg.Wait()
	// Output:
	// ran critical-plus
	// ran critical
	// ran sheddable
}

// Without a maximum wait, Do never waits; a refused call evicts the
// callers of lower tiers waiting in Acquire, so the next free slot cannot
// go to them while a more important call was turned away.
func ExampleBulkhead_Do_refusalEvicts() {
	b := bulkhead.New("exports", 1, bulkhead.WithMaxQueue(10))
	hold, _ := b.TryAcquire()
	defer hold.Release()

	queued := make(chan error)
	go func() {
		_, err := b.Acquire(bulwark.WithPriority(context.Background(), bulwark.Sheddable))
		queued <- err
	}()
	for b.Queued() != 1 {
		runtime.Gosched()
	}
	err := b.Do(bulwark.WithPriority(context.Background(), bulwark.CriticalPlus), func(context.Context) error { return nil })
	fmt.Println("critical-plus:", err)
	fmt.Println("sheddable:", <-queued)
	// Output:
	// critical-plus: bulkhead "exports": full: bulwark: unavailable
	// sheddable: bulkhead "exports": evicted from the queue: bulkhead: full: bulwark: unavailable
}

// Permits are for work that outlives a function call. Releasing twice is
// harmless.
func ExampleBulkhead_TryAcquire() {
	b := bulkhead.New("uploads", 1)
	p, ok := b.TryAcquire()
	fmt.Println("first:", ok)
	_, ok = b.TryAcquire()
	fmt.Println("second:", ok)
	p.Release()
	p.Release() // does nothing
	q, ok := b.TryAcquire()
	fmt.Println("after release:", ok, b.InFlight())
	q.Release()
	// Output:
	// first: true
	// second: false
	// after release: true 1
}

// Every refusal is an ErrFull, of class bulwark.ErrUnavailable (HTTP 503,
// gRPC UNAVAILABLE).
func ExampleErrFull() {
	b := bulkhead.New("search", 1)
	p, _ := b.TryAcquire()
	defer p.Release()
	err := b.Do(context.Background(), func(context.Context) error { return nil })
	fmt.Println(errors.Is(err, bulkhead.ErrFull), errors.Is(err, bulwark.ErrUnavailable))
	fmt.Println(err)
	// Output:
	// true true
	// bulkhead "search": full: bulwark: unavailable
}

// A bulkhead shows itself on the admin page through bulwark.Snapshotter.
func ExampleBulkhead_Snapshot() {
	b := bulkhead.New("db", 1)
	p, _ := b.TryAcquire()
	defer p.Release()
	_ = b.Do(context.Background(), func(context.Context) error { return nil }) // refused

	s := b.Snapshot()
	fmt.Println(s.Name, s.Kind, s.State, s.Health)
	for _, f := range s.Figures[:4] {
		fmt.Println(f.Name, f.Value)
	}
	// Output:
	// db bulkhead full warn
	// limit 1
	// in-flight 1
	// queued 0
	// refused 1
}
