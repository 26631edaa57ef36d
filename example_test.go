package bulwark_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bulwark-go/bulwark"
)

// A chain runs its first policy outermost. Here a log policy wraps a
// per-attempt timeout.
func ExampleChain() {
	logged := bulwark.PolicyFunc(func(ctx context.Context, fn func(context.Context) error) error {
		fmt.Println("enter")
		err := fn(ctx)
		fmt.Println("leave:", err)
		return err
	})
	p := bulwark.Chain(logged, bulwark.Timeout(time.Second))
	err := p.Do(context.Background(), func(ctx context.Context) error {
		fmt.Println("work")
		return nil
	})
	fmt.Println(err)
	// Output:
	// enter
	// work
	// leave: <nil>
	// <nil>
}

// Get returns a value from a call made under a policy.
func ExampleGet() {
	p := bulwark.Timeout(time.Second)
	price, err := bulwark.Get(context.Background(), p, func(ctx context.Context) (int, error) {
		return 42, nil
	})
	fmt.Println(price, err)
	// Output: 42 <nil>
}

// A refusal carries its class and, where known, when to come back.
func ExampleRetryAfter() {
	err := fmt.Errorf("checkout: %w", overloaded{})
	d, ok := bulwark.RetryAfter(err)
	fmt.Println(errors.Is(err, bulwark.ErrUnavailable), d, ok)
	// Output: true 2s true
}

type overloaded struct{}

func (overloaded) Error() string             { return "overloaded" }
func (overloaded) Unwrap() error             { return bulwark.ErrUnavailable }
func (overloaded) RetryAfter() time.Duration { return 2 * time.Second }

// Timeout bounds a call; the caller's own deadline keeps its own error.
func ExampleTimeout() {
	p := bulwark.Timeout(10 * time.Millisecond)
	err := p.Do(context.Background(), func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	})
	fmt.Println(errors.Is(err, bulwark.ErrTimeout), errors.Is(err, context.DeadlineExceeded))
	// Output: true true
}

// DryRun tries a policy without enforcing it: calls it would refuse run
// anyway and are counted in bulwark.dryrun.would_refuse.
func ExampleDryRun() {
	strict := bulwark.PolicyFunc(func(context.Context, func(context.Context) error) error {
		return bulwark.ErrUnavailable // refuses everything
	})
	p := bulwark.DryRun(strict, bulwark.WithDryRunName("new-limit"))
	err := p.Do(context.Background(), func(context.Context) error {
		fmt.Println("served")
		return nil
	})
	fmt.Println(err)
	// Output:
	// served
	// <nil>
}

// Priorities travel in the context; the wire form is what the adapters send.
func ExampleParsePriority() {
	p, err := bulwark.ParsePriority("SHEDDABLE_PLUS")
	fmt.Println(p, err, p < bulwark.Critical)
	ctx := bulwark.WithPriority(context.Background(), p)
	fmt.Println(bulwark.PriorityFrom(ctx))
	// Output:
	// sheddable-plus <nil> true
	// sheddable-plus
}
