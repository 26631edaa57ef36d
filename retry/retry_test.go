package retry_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"testing/synctest"
	"time"
	"weak"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarktest"
	"github.com/bulwark-go/bulwark/internal/metrictest"
	"github.com/bulwark-go/bulwark/retry"
)

func TestContract(t *testing.T) {
	for _, tt := range []struct {
		name string
		give func() bulwark.Policy
	}{
		{"Default", func() bulwark.Policy { return retry.New() }},
		{"PerAttemptTimeout", func() bulwark.Policy { return retry.New(retry.WithPerAttemptTimeout(time.Second)) }},
		{"Budget", func() bulwark.Policy { return retry.New(retry.WithBudget(retry.NewBudget())) }},
		{"Chained", func() bulwark.Policy { return bulwark.Chain(retry.New(), bulwark.Timeout(time.Second)) }},
	} {
		t.Run(tt.name, func(t *testing.T) { bulwarktest.TestPolicy(t, tt.give) })
	}
}

// failN returns an fn that fails with errs[i] on call i (the last error
// repeating) and succeeds once errs is exhausted when succeed is set.
type script struct {
	errs    []error
	succeed bool
	calls   int
	at      []time.Time
	attempt []int
	ctxs    []context.Context
}

func (s *script) fn(ctx context.Context) error {
	s.calls++
	s.at = append(s.at, time.Now())
	s.attempt = append(s.attempt, bulwark.AttemptFrom(ctx))
	s.ctxs = append(s.ctxs, ctx)
	i := s.calls - 1
	if i >= len(s.errs) {
		if s.succeed {
			return nil
		}
		i = len(s.errs) - 1
	}
	return s.errs[i]
}

func fail(err error) *script { return &script{errs: []error{err}} }

func TestAttempts(t *testing.T) {
	plain := errors.New("test: plain failure")
	timeoutErr := bulwark.Timeout(time.Nanosecond).Do(context.Background(), func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	})
	if !errors.Is(timeoutErr, bulwark.ErrTimeout) {
		t.Fatalf("setup: inner timeout error %v does not wrap ErrTimeout", timeoutErr)
	}
	inner := &retry.ExhaustedError{Attempts: 3, Err: errRemote}
	for _, tt := range []struct {
		name      string
		give      *script
		opts      []retry.Option
		wantCalls int
		wantErr   error // errors.Is target; nil means success
		exhausted bool  // want an *ExhaustedError
		unchanged bool  // want fn's last error itself
	}{
		{name: "success", give: &script{succeed: true}, wantCalls: 1},
		{name: "remote unavailable retried up to 3", give: fail(errRemote), wantCalls: 3, wantErr: bulwark.ErrRemoteUnavailable, exhausted: true},
		{name: "success on second attempt", give: &script{errs: []error{errRemote}, succeed: true}, wantCalls: 2},
		{name: "max attempts 5", give: fail(errRemote), opts: []retry.Option{retry.WithMaxAttempts(5)}, wantCalls: 5, wantErr: errRemote, exhausted: true},
		{name: "max attempts 1", give: fail(errRemote), opts: []retry.Option{retry.WithMaxAttempts(1)}, wantCalls: 1, wantErr: errRemote, exhausted: true},
		{name: "plain error not retried", give: fail(plain), wantCalls: 1, wantErr: plain, unchanged: true},
		{name: "remote rejected without hint", give: fail(errRejected), wantCalls: 1, wantErr: bulwark.ErrRemoteRejected, unchanged: true},
		{name: "remote rejected with hint", give: fail(hinted{errRejected, time.Millisecond}), wantCalls: 3, wantErr: bulwark.ErrRemoteRejected, exhausted: true},
		{name: "remote rejected with zero hint", give: fail(hinted{errRejected, 0}), wantCalls: 1, wantErr: bulwark.ErrRemoteRejected, unchanged: true},
		{name: "local unavailable", give: fail(fmt.Errorf("breaker: open: %w", bulwark.ErrUnavailable)), wantCalls: 1, wantErr: bulwark.ErrUnavailable, unchanged: true},
		{name: "local unavailable with hint", give: fail(hinted{fmt.Errorf("breaker: open: %w", bulwark.ErrUnavailable), time.Second}), wantCalls: 1, wantErr: bulwark.ErrUnavailable, unchanged: true},
		{name: "local rejected", give: fail(fmt.Errorf("ratelimit: limited: %w", bulwark.ErrRejected)), wantCalls: 1, wantErr: bulwark.ErrRejected, unchanged: true},
		{name: "not replayable", give: fail(noReplay{errRemote}), wantCalls: 1, wantErr: bulwark.ErrRemoteUnavailable, unchanged: true},
		{name: "not replayable beats RetryIf", give: fail(noReplay{plain}), opts: []retry.Option{retry.WithRetryIf(func(error) bool { return true })}, wantCalls: 1, wantErr: plain, unchanged: true},
		{name: "inner timeout retried", give: fail(timeoutErr), wantCalls: 3, wantErr: bulwark.ErrTimeout, exhausted: true},
		{name: "RetryIf retries a plain error", give: &script{errs: []error{plain, plain}, succeed: true}, opts: []retry.Option{retry.WithRetryIf(func(err error) bool { return errors.Is(err, plain) })}, wantCalls: 3},
		{name: "RetryIf declines remote", give: fail(errRemote), opts: []retry.Option{retry.WithRetryIf(func(error) bool { return false })}, wantCalls: 1, wantErr: errRemote, unchanged: true},
		{name: "nil RetryIf ignored", give: fail(errRemote), opts: []retry.Option{retry.WithRetryIf(nil), nil}, wantCalls: 3, wantErr: errRemote, exhausted: true},
		{name: "inner exhausted not retried again", give: fail(inner), wantCalls: 1, wantErr: errRemote, unchanged: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := retry.New(tt.opts...)
				err := r.Do(context.Background(), tt.give.fn)
				if tt.give.calls != tt.wantCalls {
					t.Errorf("fn ran %d times, want %d", tt.give.calls, tt.wantCalls)
				}
				if tt.wantErr == nil {
					if err != nil {
						t.Fatalf("Do() = %v, want nil", err)
					}
					return
				}
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("Do() = %v, want errors.Is %v", err, tt.wantErr)
				}
				var ex *retry.ExhaustedError
				if got := errors.As(err, &ex); got != tt.exhausted && !tt.unchanged {
					t.Errorf("Do() = %v (%T): *ExhaustedError %v, want %v", err, err, got, tt.exhausted)
				}
				if tt.exhausted && ex.Attempts != tt.wantCalls {
					t.Errorf("ExhaustedError.Attempts = %d, want %d", ex.Attempts, tt.wantCalls)
				}
				if tt.unchanged && err != tt.give.errs[len(tt.give.errs)-1] {
					t.Errorf("Do() = %v, want fn's error unchanged", err)
				}
			})
		})
	}
}

func TestAttemptNumbers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		type ctxKey struct{}
		ctx := context.WithValue(context.Background(), ctxKey{}, "caller")
		s := fail(errRemote)
		_ = retry.New(retry.WithMaxAttempts(4)).Do(ctx, s.fn)
		if want := []int{1, 2, 3, 4}; fmt.Sprint(s.attempt) != fmt.Sprint(want) {
			t.Errorf("AttemptFrom per attempt = %v, want %v", s.attempt, want)
		}
		if s.ctxs[0] != ctx {
			t.Error("first attempt got a derived context, want the caller's as is")
		}
		if got := bulwark.CallInfoFrom(s.ctxs[0]).Attempt; got != 0 {
			t.Errorf("first attempt: CallInfo.Attempt = %d, want 0 (unset)", got)
		}
		for i, c := range s.ctxs[1:] {
			if c.Value(ctxKey{}) != "caller" {
				t.Errorf("attempt %d lost the caller's context values", i+2)
			}
		}
	})
}

// delays returns the waits between consecutive attempts.
func delays(at []time.Time) []time.Duration {
	var d []time.Duration
	for i := 1; i < len(at); i++ {
		d = append(d, at[i].Sub(at[i-1]))
	}
	return d
}

func TestDelaysWithinJitterBounds(t *testing.T) {
	const (
		initial = 100 * time.Millisecond
		maxD    = time.Second
		rnd     = 0.5
	)
	synctest.Test(t, func(t *testing.T) {
		r := retry.New(retry.WithMaxAttempts(7), retry.WithInitialDelay(initial),
			retry.WithMaxDelay(maxD), retry.WithRandomization(rnd), retry.WithMultiplier(2))
		distinct := map[time.Duration]bool{}
		for call := 0; call < 50; call++ {
			s := fail(errRemote)
			_ = r.Do(context.Background(), s.fn)
			got := delays(s.at)
			if len(got) != 6 {
				t.Fatalf("call %d: %d delays, want 6", call, len(got))
			}
			for n, d := range got {
				interval := min(initial<<n, maxD)
				lo := time.Duration(float64(interval) * (1 - rnd))
				hi := min(time.Duration(float64(interval)*(1+rnd))+time.Nanosecond, maxD)
				if d < lo || d > hi {
					t.Errorf("call %d: delay %d = %v, want within [%v, %v]", call, n+1, d, lo, hi)
				}
			}
			distinct[got[0]] = true
		}
		if len(distinct) < 10 {
			t.Errorf("first delays took %d distinct values in 50 calls, want jitter", len(distinct))
		}
	})
}

func TestDelaysWithoutJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := retry.New(retry.WithMaxAttempts(7), retry.WithRandomization(0), retry.WithMaxDelay(time.Second))
		s := fail(errRemote)
		_ = r.Do(context.Background(), s.fn)
		want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond,
			800 * time.Millisecond, time.Second, time.Second}
		if got := delays(s.at); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("delays = %v, want %v", got, want)
		}
	})
}

func TestHints(t *testing.T) {
	for _, tt := range []struct {
		name       string
		give       error
		deadline   time.Duration // 0: none
		wantCalls  int
		wantDelays []time.Duration
		exhausted  bool
	}{
		{name: "hint replaces backoff", give: hinted{errRemote, 7 * time.Second}, wantCalls: 3,
			wantDelays: []time.Duration{7 * time.Second, 7 * time.Second}, exhausted: true},
		{name: "rejected with hint", give: hinted{errRejected, 1500 * time.Millisecond}, wantCalls: 3,
			wantDelays: []time.Duration{1500 * time.Millisecond, 1500 * time.Millisecond}, exhausted: true},
		{name: "zero hint keeps backoff", give: hinted{errRemote, 0}, wantCalls: 3,
			wantDelays: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}, exhausted: true},
		{name: "negative hint keeps backoff", give: hinted{errRemote, -time.Second}, wantCalls: 3,
			wantDelays: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}, exhausted: true},
		{name: "hint past deadline stops at once", give: hinted{errRemote, 10 * time.Second}, deadline: 5 * time.Second,
			wantCalls: 1, exhausted: true},
		{name: "hint ending at deadline stops at once", give: hinted{errRemote, 5 * time.Second}, deadline: 5 * time.Second,
			wantCalls: 1, exhausted: true},
		{name: "hint within deadline waits", give: hinted{errRemote, 2 * time.Second}, deadline: 5 * time.Second,
			wantCalls: 3, wantDelays: []time.Duration{2 * time.Second, 2 * time.Second}, exhausted: true},
		{name: "hint over max delay is not capped", give: hinted{errRemote, time.Minute}, wantCalls: 2,
			wantDelays: []time.Duration{time.Minute}, exhausted: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				if tt.deadline > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.deadline)
					defer cancel()
				}
				maxAttempts := 3
				if tt.wantCalls == 2 {
					maxAttempts = 2
				}
				r := retry.New(retry.WithRandomization(0), retry.WithMaxAttempts(maxAttempts))
				start := time.Now()
				s := fail(tt.give)
				err := r.Do(ctx, s.fn)
				if s.calls != tt.wantCalls {
					t.Errorf("fn ran %d times, want %d", s.calls, tt.wantCalls)
				}
				if got := delays(s.at); fmt.Sprint(got) != fmt.Sprint(tt.wantDelays) && len(got)+len(tt.wantDelays) > 0 {
					t.Errorf("delays = %v, want %v", got, tt.wantDelays)
				}
				var ex *retry.ExhaustedError
				if got := errors.As(err, &ex); got != tt.exhausted {
					t.Errorf("Do() = %v: *ExhaustedError %v, want %v", err, got, tt.exhausted)
				}
				if !errors.Is(err, bulwark.ErrRemoteUnavailable) && !errors.Is(err, bulwark.ErrRemoteRejected) {
					t.Errorf("Do() = %v, want the last attempt's error inside", err)
				}
				if tt.wantCalls == 1 {
					if el := time.Since(start); el != 0 {
						t.Errorf("Do took %v, want it to stop at once", el)
					}
				}
			})
		})
	}
}

func TestDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Attempts at 0, 300 ms, 900 ms; the next delay (1.2 s) would end
		// past the 1 s deadline, so Do stops at 900 ms.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		r := retry.New(retry.WithMaxAttempts(10), retry.WithInitialDelay(300*time.Millisecond), retry.WithRandomization(0))
		start := time.Now()
		s := fail(errRemote)
		err := r.Do(ctx, s.fn)
		var ex *retry.ExhaustedError
		if !errors.As(err, &ex) || ex.Attempts != 3 {
			t.Fatalf("Do() = %v, want *ExhaustedError after 3 attempts", err)
		}
		if s.calls != 3 {
			t.Errorf("fn ran %d times, want 3", s.calls)
		}
		if el := time.Since(start); el != 900*time.Millisecond {
			t.Errorf("Do took %v, want 900ms (no wait past the deadline)", el)
		}
		if !errors.Is(err, errRemote) {
			t.Errorf("Do() = %v, want errors.Is the last error", err)
		}
	})
}

func TestNoAttemptAfterContextEnded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Attempts take 400 ms each; the deadline (1 s) passes during the
		// third, whose error comes back as the caller's deadline.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		r := retry.New(retry.WithMaxAttempts(10), retry.WithInitialDelay(50*time.Millisecond), retry.WithRandomization(0))
		calls := 0
		err := r.Do(ctx, func(ctx context.Context) error {
			calls++
			select {
			case <-time.After(400 * time.Millisecond):
				return errRemote
			case <-ctx.Done():
				return fmt.Errorf("test: gave up: %w", context.Cause(ctx))
			}
		})
		if calls != 3 {
			t.Errorf("fn ran %d times, want 3", calls)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Do() = %v, want the caller's deadline", err)
		}
		var ex *retry.ExhaustedError
		if errors.As(err, &ex) {
			t.Errorf("Do() = %v, want no *ExhaustedError for the caller's own deadline", err)
		}
	})
}

func TestCallerEndedDuringAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		calls := 0
		err := retry.New().Do(ctx, func(context.Context) error {
			calls++
			cancel()
			return errRemote // does not mention the cancellation
		})
		if calls != 1 {
			t.Errorf("fn ran %d times, want 1", calls)
		}
		if err != context.Canceled {
			t.Errorf("Do() = %v, want context.Canceled", err)
		}
	})
}

func TestCancelDuringBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		r := retry.New(retry.WithInitialDelay(time.Hour), retry.WithMaxDelay(time.Hour), retry.WithRandomization(0))
		s := fail(errRemote)
		done := make(chan error)
		start := time.Now()
		go func() { done <- r.Do(ctx, s.fn) }()
		time.Sleep(time.Minute) // in the bubble: Do is waiting its hour
		synctest.Wait()
		cancel()
		err := <-done
		if err != context.Canceled {
			t.Errorf("Do() = %v, want context.Canceled", err)
		}
		if s.calls != 1 {
			t.Errorf("fn ran %d times, want 1", s.calls)
		}
		if el := time.Since(start); el != time.Minute {
			t.Errorf("Do returned after %v, want at the cancellation (1m)", el)
		}
	})
}

func TestPerAttemptTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := retry.New(retry.WithPerAttemptTimeout(time.Second), retry.WithRandomization(0))
		calls := 0
		start := time.Now()
		err := r.Do(context.Background(), func(ctx context.Context) error {
			calls++
			if calls < 3 {
				<-ctx.Done() // a hung downstream
				return ctx.Err()
			}
			return nil
		})
		if err != nil || calls != 3 {
			t.Fatalf("Do() = %v after %d calls, want nil after 3", err, calls)
		}
		// 1 s, 100 ms, 1 s, 200 ms.
		if el, want := time.Since(start), 2300*time.Millisecond; el != want {
			t.Errorf("Do took %v, want %v", el, want)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		// Every attempt times out: ErrTimeout inside ExhaustedError.
		r := retry.New(retry.WithPerAttemptTimeout(time.Second))
		err := r.Do(context.Background(), func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
		var ex *retry.ExhaustedError
		if !errors.As(err, &ex) || ex.Attempts != 3 || !errors.Is(err, bulwark.ErrTimeout) {
			t.Errorf("Do() = %v, want *ExhaustedError{3, ErrTimeout}", err)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		// The caller's deadline cuts the second attempt: not retried, the
		// caller's error comes back.
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		defer cancel()
		r := retry.New(retry.WithPerAttemptTimeout(time.Second), retry.WithMaxAttempts(5))
		calls := 0
		err := r.Do(ctx, func(ctx context.Context) error { calls++; <-ctx.Done(); return ctx.Err() })
		if calls != 2 {
			t.Errorf("fn ran %d times, want 2", calls)
		}
		if err != context.DeadlineExceeded {
			t.Errorf("Do() = %v, want the caller's context.DeadlineExceeded", err)
		}
	})
}

func TestMaxElapsed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Attempts take 100 ms; delays 100, 200, 400 ms: attempts start at
		// 0, 200, 500 ms; the next would start at 1000 ms > 900 ms.
		r := retry.New(retry.WithMaxAttempts(10), retry.WithRandomization(0), retry.WithMaxElapsed(900*time.Millisecond))
		calls := 0
		start := time.Now()
		err := r.Do(context.Background(), func(context.Context) error {
			calls++
			time.Sleep(100 * time.Millisecond)
			return errRemote
		})
		var ex *retry.ExhaustedError
		if !errors.As(err, &ex) || ex.Attempts != 3 {
			t.Fatalf("Do() = %v, want *ExhaustedError after 3 attempts", err)
		}
		if el := time.Since(start); el != 600*time.Millisecond {
			t.Errorf("Do took %v, want 600ms", el)
		}
	})
}

func TestPanicAndGoexitCounted(t *testing.T) {
	reader := metrictest.New(t)
	mp := reader.Provider
	r := retry.New(retry.WithMeterProvider(mp), retry.WithName("p"))
	reader.Keep(r)
	func() {
		defer func() {
			if v := recover(); v != "boom" {
				t.Errorf("recovered %v, want boom", v)
			}
		}()
		_ = r.Do(context.Background(), func(context.Context) error { panic("boom") })
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.Do(context.Background(), func(context.Context) error { runtime.Goexit(); return nil })
	}()
	<-done
	if got := sum(t, reader, "bulwark.retry.attempts", "bulwark.outcome", "failure",
		"bulwark.attempt.kind", "first"); got != 2 {
		t.Errorf("failed first attempts = %d, want 2 (panic and Goexit)", got)
	}
}

func TestExhaustedError(t *testing.T) {
	e := &retry.ExhaustedError{Attempts: 3, Err: errRemote}
	if !errors.Is(e, bulwark.ErrRemoteUnavailable) {
		t.Error("ExhaustedError does not unwrap to its Err")
	}
	if got, ok := bulwark.Retryable(e); !ok || got {
		t.Errorf("Retryable(ExhaustedError) = %v, %v, want false, true", got, ok)
	}
	if got, want := e.Error(), "retry: gave up after 3 attempts: downstream 503"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if d, ok := bulwark.RetryAfter(&retry.ExhaustedError{Attempts: 1, Err: hinted{errRemote, time.Second}}); !ok || d != time.Second {
		t.Errorf("RetryAfter(ExhaustedError) = %v, %v, want the inner hint 1s", d, ok)
	}
}

func TestDefaultRetryIf(t *testing.T) {
	for _, tt := range []struct {
		name string
		give error
		want bool
	}{
		{"nil", nil, false},
		{"remote unavailable", errRemote, true},
		{"timeout", bulwark.ErrTimeout, true},
		{"remote rejected", errRejected, false},
		{"remote rejected with hint", hinted{errRejected, time.Second}, true},
		{"local unavailable", bulwark.ErrUnavailable, false},
		{"local rejected with hint", hinted{bulwark.ErrRejected, time.Second}, false},
		{"canceled", context.Canceled, false},
		{"deadline", context.DeadlineExceeded, false},
		{"plain", errors.New("x"), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := retry.DefaultRetryIf(tt.give); got != tt.want {
				t.Errorf("DefaultRetryIf(%v) = %v, want %v", tt.give, got, tt.want)
			}
		})
	}
}

func TestOptionPanics(t *testing.T) {
	for _, tt := range []struct {
		name string
		give func()
		want string
	}{
		{"MaxAttempts", func() { retry.WithMaxAttempts(0) }, "retry: WithMaxAttempts"},
		{"InitialDelay", func() { retry.WithInitialDelay(0) }, "retry: WithInitialDelay"},
		{"Multiplier", func() { retry.WithMultiplier(0.5) }, "retry: WithMultiplier"},
		{"MaxDelay", func() { retry.WithMaxDelay(-1) }, "retry: WithMaxDelay"},
		{"Randomization", func() { retry.WithRandomization(1.5) }, "retry: WithRandomization"},
		{"MaxElapsed", func() { retry.WithMaxElapsed(-1) }, "retry: WithMaxElapsed"},
		{"PerAttemptTimeout", func() { retry.WithPerAttemptTimeout(-1) }, "retry: WithPerAttemptTimeout"},
		{"Ratio", func() { retry.WithRatio(-0.1) }, "retry: WithRatio"},
		{"MinRetries", func() { retry.WithMinRetriesPerSecond(-1) }, "retry: WithMinRetriesPerSecond"},
		{"Window", func() { retry.WithWindow(0) }, "retry: WithWindow"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				v := recover()
				s, _ := v.(string)
				if len(s) < len(tt.want) || s[:len(tt.want)] != tt.want {
					t.Errorf("panic = %v, want a message starting %q", v, tt.want)
				}
			}()
			tt.give()
		})
	}
}

func TestMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reader := metrictest.New(t)
		mp := reader.Provider
		budget := retry.NewBudget(retry.WithRatio(0), retry.WithMinRetriesPerSecond(0.3)) // 3 retries per 10 s
		r := retry.New(retry.WithMeterProvider(mp), retry.WithName("orders"), retry.WithBudget(budget),
			retry.WithRandomization(0))
		reader.Keep(r)
		ctx := context.Background()

		// 5 first-attempt successes: no delay recorded.
		for i := 0; i < 5; i++ {
			_ = r.Do(ctx, func(context.Context) error { return nil })
		}
		if n, _ := histCount(t, reader, "bulwark.retry.delay"); n != 0 {
			t.Errorf("delays recorded after first-attempt successes = %d, want 0", n)
		}
		// Fail, retry (backoff 100 ms), succeed.
		_ = r.Do(ctx, (&script{errs: []error{errRemote}, succeed: true}).fn)
		// Fail, retry on a 2 s hint, fail: refused by an inner breaker.
		_ = r.Do(ctx, (&script{errs: []error{hinted{errRemote, 2 * time.Second}, fmt.Errorf("open: %w", bulwark.ErrUnavailable)}}).fn)
		// Fail, retry (100 ms), fail; then the budget (3) is spent: exhausted.
		_ = r.Do(ctx, fail(errRemote).fn)
		err := r.Do(ctx, fail(errRemote).fn)
		var ex *retry.ExhaustedError
		if !errors.As(err, &ex) || ex.Attempts != 1 {
			t.Fatalf("Do() with the budget spent = %v, want *ExhaustedError after 1 attempt", err)
		}
		// The caller goes away during an attempt.
		cctx, cancel := context.WithCancel(ctx)
		_ = r.Do(cctx, func(context.Context) error { cancel(); return errRemote })

		name := []string{"bulwark.policy.name", "orders"}
		for _, w := range []struct {
			outcome, kind string
			want          int64
		}{
			{"success", "first", 5}, {"failure", "first", 4}, {"ignored", "first", 1}, {"refused", "first", 0},
			{"success", "retry", 1}, {"failure", "retry", 1}, {"refused", "retry", 1}, {"ignored", "retry", 0},
		} {
			got := sum(t, reader, "bulwark.retry.attempts", append(name, "bulwark.outcome", w.outcome,
				"bulwark.attempt.kind", w.kind)...)
			if got != w.want {
				t.Errorf("attempts{%s, %s} = %d, want %d", w.outcome, w.kind, got, w.want)
			}
		}
		if got := sum(t, reader, "bulwark.retry.budget.exhausted", name...); got != 2 {
			t.Errorf("budget.exhausted = %d, want 2", got)
		}
		if n, s := histCount(t, reader, "bulwark.retry.delay", append(name, "bulwark.reason", "backoff")...); n != 2 || s != 0.2 {
			t.Errorf("backoff delays = %d summing %vs, want 2 summing 0.2s", n, s)
		}
		if n, s := histCount(t, reader, "bulwark.retry.delay", append(name, "bulwark.reason", "hint")...); n != 1 || s != 2 {
			t.Errorf("hint delays = %d summing %vs, want 1 summing 2s", n, s)
		}
	})
}

// The allocation target, held by a test rather than read off a
// benchmark: a first attempt that succeeds allocates nothing in the policy,
// with an SDK MeterProvider, a per-attempt timeout aside.
func TestFirstAttemptSuccessAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	ctx := context.Background()
	fn := func(context.Context) error { return nil }
	for _, tt := range []struct {
		name string
		give *retry.Retrier
	}{
		{"default", retry.New(retry.WithMeterProvider(mp))},
		{"budget", retry.New(retry.WithMeterProvider(mp), retry.WithBudget(retry.NewBudget()))},
		{"max elapsed", retry.New(retry.WithMeterProvider(mp), retry.WithMaxElapsed(time.Second))},
	} {
		if n := testing.AllocsPerRun(1000, func() { _ = tt.give.Do(ctx, fn) }); n != 0 {
			t.Errorf("%s: Do() of a first-attempt success allocates %v times, want 0", tt.name, n)
		}
	}
}

// The attempts counter is an observable instrument: its callback must not
// keep a dropped Retrier alive (SPEC, Telemetry), and stops reporting once
// the Retrier is collected.
func TestDroppedRetrierIsCollected(t *testing.T) {
	reader := metrictest.New(t)
	mp := reader.Provider
	r := retry.New(retry.WithMeterProvider(mp), retry.WithName("dropped"))
	_ = r.Do(context.Background(), func(context.Context) error { return nil })
	name := []string{"bulwark.policy.name", "dropped"}
	if got := sum(t, reader, "bulwark.retry.attempts", name...); got != 1 {
		t.Fatalf("attempts = %d before the Retrier is dropped, want 1", got)
	}
	wr := weak.Make(r)
	r = nil
	_ = r
	for i := 0; i < 5 && wr.Value() != nil; i++ {
		runtime.GC()
	}
	if wr.Value() != nil {
		t.Fatal("a dropped Retrier is kept alive by its metric callback")
	}
	reported := func() bool {
		return len(reader.Int64("bulwark.retry.attempts")) > 0
	}
	// Cleanups run on their own goroutine: let them unregister.
	for i := 0; i < 100 && reported(); i++ {
		runtime.Gosched()
		runtime.GC()
	}
	if reported() {
		t.Error("bulwark.retry.attempts still reported after the Retrier was collected")
	}
}

func TestNilOptionsIgnored(t *testing.T) {
	// A nil option, or an option given nil, leaves what an earlier option
	// set in force.
	synctest.Test(t, func(t *testing.T) {
		reader := metrictest.New(t)
		mp := reader.Provider
		budget := retry.NewBudget(retry.WithRatio(0), retry.WithMinRetriesPerSecond(0), nil) // no retries
		r := retry.New(nil, retry.WithMeterProvider(mp), retry.WithMeterProvider(nil),
			retry.WithBudget(budget), retry.WithBudget(nil), retry.WithName("nil"))
		reader.Keep(r)
		s := fail(errRemote)
		err := r.Do(context.Background(), s.fn)
		var ex *retry.ExhaustedError
		if !errors.As(err, &ex) || s.calls != 1 {
			t.Errorf("Do() = %v after %d calls, want *ExhaustedError after 1: WithBudget(nil) dropped the budget", err, s.calls)
		}
		if got := sum(t, reader, "bulwark.retry.budget.exhausted", "bulwark.policy.name", "nil"); got != 1 {
			t.Errorf("budget.exhausted = %d, want 1: WithMeterProvider(nil) dropped the provider", got)
		}
	})
}

// The documented defaults: 3 attempts, delays from 100 ms growing ×2 up to
// 5 s, each drawn within ±50 % and capped at 5 s.
func TestDefaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := fail(errRemote)
		_ = retry.New().Do(context.Background(), s.fn)
		if s.calls != 3 {
			t.Errorf("fn ran %d times, want 3 by default", s.calls)
		}
		r := retry.New(retry.WithMaxAttempts(9))
		var maxSeen [8]time.Duration
		for call := range 50 {
			s := fail(errRemote)
			_ = r.Do(context.Background(), s.fn)
			got := delays(s.at)
			if len(got) != 8 {
				t.Fatalf("call %d: %d delays, want 8", call, len(got))
			}
			for n, d := range got {
				interval := min(100*time.Millisecond<<n, 5*time.Second)
				lo := interval / 2
				hi := min(interval*3/2+time.Nanosecond, 5*time.Second)
				if d < lo || d > hi {
					t.Errorf("call %d: delay %d = %v, want within [%v, %v]", call, n+1, d, lo, hi)
				}
				maxSeen[n] = max(maxSeen[n], d)
			}
		}
		// With ±50 % jitter some of 50 first delays exceed 120 ms.
		if maxSeen[0] <= 120*time.Millisecond {
			t.Errorf("largest first delay in 50 calls = %v, want jitter of ±50 %% around 100 ms", maxSeen[0])
		}
	})
}
