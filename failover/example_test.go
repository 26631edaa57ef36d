package failover_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/failover"
)

// A primary and a standby region: when the primary's breaker opens, calls
// move to the standby; they come back once it closes again.
func Example() {
	set := failover.New("payments", []string{"https://eu.payments.example", "https://us.payments.example"},
		failover.WithBreakerOptions(breaker.WithConsecutiveFailures(2), breaker.WithBreakDuration(30*time.Second)),
		failover.WithMinDwell(time.Minute))
	defer set.Close()

	euDown := true
	for range 4 {
		err := set.Do(context.Background(), func(ctx context.Context) error {
			ep, _ := failover.EndpointFrom(ctx)
			if ep == "https://eu.payments.example" && euDown {
				fmt.Println(ep, "failed")
				return fmt.Errorf("eu: %w", bulwark.ErrRemoteUnavailable)
			}
			fmt.Println(ep, "served")
			return nil
		})
		_ = err
	}
	fmt.Println("active:", set.Status().Endpoint)
	// Output:
	// https://eu.payments.example failed
	// https://eu.payments.example failed
	// https://us.payments.example served
	// https://us.payments.example served
	// active: https://us.payments.example
}

// Every endpoint out: the refusal is a 503-class error with the earliest
// time a breaker lets a call through.
func Example_noEndpoint() {
	set := failover.New("payments", []string{"a", "b"},
		failover.WithBreakerOptions(breaker.WithConsecutiveFailures(1), breaker.WithBreakDuration(10*time.Second)))
	defer set.Close()
	set.Breaker(0).ForceOpen()
	set.Breaker(1).ForceOpen()
	err := set.Do(context.Background(), func(context.Context) error { return nil })
	fmt.Println(errors.Is(err, failover.ErrNoEndpoint), errors.Is(err, bulwark.ErrUnavailable))
	// Output: true true
}

// A manual cut-over, as an operator does before maintenance of a region.
func ExampleSet_Pin() {
	set := failover.New("payments", []string{"eu", "us"})
	defer set.Close()
	_ = set.Pin("us")
	_ = set.Do(context.Background(), func(ctx context.Context) error {
		ep, _ := failover.EndpointFrom(ctx)
		fmt.Println("sent to", ep)
		return nil
	})
	set.Unpin()
	// Output: sent to us
}
