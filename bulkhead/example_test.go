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
// full, Do refuses at once (it never waits, even with a queue configured).
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

// With a queue, Acquire waits for a slot, the most important tier first;
// Do still never waits: it refuses at once when no slot is free.
func ExampleWithMaxQueue() {
	b := bulkhead.New("reports", 1, bulkhead.WithMaxQueue(10), bulkhead.WithMaxWait(time.Minute))
	hold, _ := b.TryAcquire()

	err := b.Do(context.Background(), func(context.Context) error { return nil })
	fmt.Println("Do refused at once:", errors.Is(err, bulkhead.ErrFull))

	var wg sync.WaitGroup
	for i, p := range []bulwark.Priority{bulwark.Sheddable, bulwark.CriticalPlus, bulwark.Critical} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			permit, err := b.Acquire(bulwark.WithPriority(context.Background(), p))
			if err != nil {
				fmt.Println(p, err)
				return
			}
			defer permit.Release()
			fmt.Println("acquired", p)
		}()
		for b.Queued() != i+1 { // wait until it is queued, to fix the arrival order
			runtime.Gosched()
		}
	}
	hold.Release()
	wg.Wait()
	// Output:
	// Do refused at once: true
	// acquired critical-plus
	// acquired critical
	// acquired sheddable
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
