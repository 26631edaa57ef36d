package retry_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/retry"
)

// A downstream that is unavailable twice, then answers.
func Example() {
	r := retry.New(retry.WithInitialDelay(time.Millisecond))
	calls := 0
	err := r.Do(context.Background(), func(ctx context.Context) error {
		calls++
		fmt.Println("attempt", bulwark.AttemptFrom(ctx))
		if calls < 3 {
			return fmt.Errorf("GET /orders: 503: %w", bulwark.ErrRemoteUnavailable)
		}
		return nil
	})
	fmt.Println("err:", err)
	// Output:
	// attempt 1
	// attempt 2
	// attempt 3
	// err: <nil>
}

// When every attempt fails, the last error comes back inside an
// ExhaustedError; errors.Is still sees its class.
func ExampleExhaustedError() {
	r := retry.New(retry.WithMaxAttempts(2), retry.WithInitialDelay(time.Millisecond))
	err := r.Do(context.Background(), func(context.Context) error {
		return fmt.Errorf("dial: connection refused: %w", bulwark.ErrRemoteUnavailable)
	})
	var ex *retry.ExhaustedError
	fmt.Println(errors.As(err, &ex), ex.Attempts)
	fmt.Println(errors.Is(err, bulwark.ErrRemoteUnavailable))
	fmt.Println(err)
	// Output:
	// true 2
	// true
	// retry: gave up after 2 attempts (attempts used up): dial: connection refused: bulwark: remote unavailable
}

// Errors a Retrier does not retry come back unchanged after one attempt:
// here a local refusal (retry only at the layer right above the one that
// refused).
func ExampleDefaultRetryIf() {
	for _, err := range []error{
		bulwark.ErrRemoteUnavailable,
		bulwark.ErrRemoteRejected,
		bulwark.ErrUnavailable,
		bulwark.ErrTimeout,
	} {
		fmt.Printf("%v: %v\n", err, retry.DefaultRetryIf(err))
	}
	// Output:
	// bulwark: remote unavailable: true
	// bulwark: remote rejected: false
	// bulwark: unavailable: false
	// bulwark: timeout: true
}

// One budget per downstream, shared by every Retrier that calls it: retries
// stay within 10 % of first attempts (plus 3 per second for quiet clients).
func ExampleNewBudget() {
	budget := retry.NewBudget(retry.WithRatio(0.1), retry.WithMinRetriesPerSecond(0))
	r := retry.New(retry.WithBudget(budget), retry.WithInitialDelay(time.Millisecond))
	attempts := 0
	for i := 0; i < 20; i++ {
		_ = r.Do(context.Background(), func(context.Context) error {
			attempts++
			return bulwark.ErrRemoteUnavailable
		})
	}
	fmt.Println("attempts for 20 calls:", attempts)
	// Output:
	// attempts for 20 calls: 22
}

// In a client chain the Retrier goes outermost and the per-attempt timeout
// innermost, so each attempt gets its own deadline.
func Example_chain() {
	p := bulwark.Chain(
		retry.New(retry.WithInitialDelay(time.Millisecond)),
		bulwark.Timeout(10*time.Millisecond),
	)
	calls := 0
	err := p.Do(context.Background(), func(ctx context.Context) error {
		calls++
		if calls == 1 {
			<-ctx.Done() // a hung first attempt
			return ctx.Err()
		}
		return nil
	})
	fmt.Println(calls, err)
	// Output:
	// 2 <nil>
}

// WithOnRetry logs each retry before its delay; a server hint longer than
// WithMaxHint ends retrying at once instead of sleeping.
func ExampleWithOnRetry() {
	r := retry.New(
		retry.WithInitialDelay(time.Millisecond), retry.WithRandomization(0),
		retry.WithMaxHint(time.Second),
		retry.WithOnRetry(func(attempt int, err error, delay time.Duration) {
			fmt.Printf("attempt %d failed (%v); retrying in %v\n", attempt, err, delay)
		}),
	)
	calls := 0
	err := r.Do(context.Background(), func(context.Context) error {
		calls++
		if calls == 1 {
			return fmt.Errorf("503: %w", bulwark.ErrRemoteUnavailable)
		}
		return overloaded{} // asks for an hour
	})
	fmt.Println(err)
	// Output:
	// attempt 1 failed (503: bulwark: remote unavailable); retrying in 1ms
	// retry: gave up after 2 attempts (server hint longer than the maximum hint): 503 Retry-After: 3600
}

// overloaded is a downstream 503 with a Retry-After of an hour.
type overloaded struct{}

func (overloaded) Error() string             { return "503 Retry-After: 3600" }
func (overloaded) Unwrap() error             { return bulwark.ErrRemoteUnavailable }
func (overloaded) RetryAfter() time.Duration { return time.Hour }
