package retry_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bulwark-go/bulwark/retry"
)

// Issue 14 item 6: once the backoff interval reaches the cap, the jitter
// must still spread the delays, within [MaxDelay·(1−r), MaxDelay] (gRFC A6),
// instead of about half of them firing at exactly MaxDelay.
func TestJitterAtTheCap(t *testing.T) {
	const (
		maxD = time.Second
		rnd  = 0.5
	)
	synctest.Test(t, func(t *testing.T) {
		r := retry.New(retry.WithMaxAttempts(11), retry.WithInitialDelay(maxD),
			retry.WithMaxDelay(maxD), retry.WithRandomization(rnd))
		var all []time.Duration
		for call := 0; call < 20; call++ {
			s := fail(errRemote)
			_ = r.Do(context.Background(), s.fn)
			all = append(all, delays(s.at)...)
		}
		if len(all) != 200 {
			t.Fatalf("%d delays, want 200", len(all))
		}
		atCap, lo := 0, time.Duration(float64(maxD)*(1-rnd))
		shortest := maxD
		for _, d := range all {
			if d < lo || d > maxD {
				t.Errorf("delay %v, want within [%v, %v]", d, lo, maxD)
			}
			if d == maxD {
				atCap++
			}
			shortest = min(shortest, d)
		}
		if atCap > 10 {
			t.Errorf("%d of %d delays at exactly MaxDelay, want the jitter kept at the cap", atCap, len(all))
		}
		if shortest > 600*time.Millisecond {
			t.Errorf("shortest delay %v, want the range below the cap used", shortest)
		}
	})
}

// Issue 14 item 10: WithMaxDelay(math.MaxInt64), a common "no cap", must
// not produce negative delays (float overflow) that slip past the deadline
// check and retry at once.
func TestMaxDelayNoCapNoNegativeDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := retry.New(retry.WithMaxAttempts(5), retry.WithInitialDelay(time.Second),
			retry.WithMultiplier(1e10), retry.WithMaxDelay(math.MaxInt64), retry.WithRandomization(0.5))
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		s := fail(errRemote)
		err := r.Do(ctx, s.fn)
		var ex *retry.ExhaustedError
		if !errors.As(err, &ex) || !strings.Contains(err.Error(), "deadline") {
			t.Fatalf("Do() = %v, want an *ExhaustedError for the deadline", err)
		}
		// The first delay is 0.5–1.5 s; the second is at least 2^62 ns, far
		// past the hour left.
		if s.calls != 2 {
			t.Errorf("fn ran %d times, want 2 (the huge second delay ends retrying)", s.calls)
		}
		for _, d := range delays(s.at) {
			if d < 0 {
				t.Errorf("negative delay %v", d)
			}
		}
	})
}

// Issue 14 item 9: a retry the budget allowed but that never ran (the
// caller cancelled during the backoff) must not stay charged.
func TestBudgetNotChargedForCancelledRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Room for exactly one retry in the window.
		b := retry.NewBudget(retry.WithRatio(0), retry.WithMinRetriesPerSecond(0.1), retry.WithWindow(10*time.Second))
		r := retry.New(retry.WithBudget(b), retry.WithRandomization(0), retry.WithMaxAttempts(2))

		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		s1 := fail(errRemote)
		go func() { done <- r.Do(ctx, s1.fn) }()
		synctest.Wait() // the first attempt failed; Do sleeps before the retry
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled Do() = %v, want context.Canceled", err)
		}
		if s1.calls != 1 {
			t.Fatalf("cancelled call ran fn %d times, want 1", s1.calls)
		}

		s2 := fail(errRemote)
		err := r.Do(context.Background(), s2.fn)
		var ex *retry.ExhaustedError
		if !errors.As(err, &ex) || strings.Contains(err.Error(), "budget") {
			t.Errorf("Do() = %v, want attempts used up, not the budget", err)
		}
		if s2.calls != 2 {
			t.Errorf("fn ran %d times, want 2: the cancelled retry must have been refunded", s2.calls)
		}
	})
}

// Issue 14 item 12: every option refuses values that mean nothing with a
// panic naming it, and accepts huge "no cap" values.
func TestOptionValidation(t *testing.T) {
	for _, tt := range []struct {
		name string
		give func()
		want string // panic prefix; "" means no panic
	}{
		{"MaxAttempts/0", func() { retry.WithMaxAttempts(0) }, "retry: WithMaxAttempts"},
		{"MaxAttempts/neg", func() { retry.WithMaxAttempts(-1) }, "retry: WithMaxAttempts"},
		{"MaxAttempts/huge", func() { retry.WithMaxAttempts(math.MaxInt) }, ""},
		{"InitialDelay/neg", func() { retry.WithInitialDelay(-1) }, "retry: WithInitialDelay"},
		{"InitialDelay/huge", func() { retry.WithInitialDelay(math.MaxInt64) }, ""},
		{"Multiplier/NaN", func() { retry.WithMultiplier(math.NaN()) }, "retry: WithMultiplier"},
		{"Multiplier/+Inf", func() { retry.WithMultiplier(math.Inf(1)) }, "retry: WithMultiplier"},
		{"Multiplier/<1", func() { retry.WithMultiplier(0.99) }, "retry: WithMultiplier"},
		{"Multiplier/huge", func() { retry.WithMultiplier(math.MaxFloat64) }, ""},
		{"MaxDelay/0", func() { retry.WithMaxDelay(0) }, "retry: WithMaxDelay"},
		{"MaxDelay/huge", func() { retry.WithMaxDelay(math.MaxInt64) }, ""},
		{"Randomization/NaN", func() { retry.WithRandomization(math.NaN()) }, "retry: WithRandomization"},
		{"Randomization/neg", func() { retry.WithRandomization(-0.1) }, "retry: WithRandomization"},
		{"Randomization/+Inf", func() { retry.WithRandomization(math.Inf(1)) }, "retry: WithRandomization"},
		{"MaxElapsed/neg", func() { retry.WithMaxElapsed(-1) }, "retry: WithMaxElapsed"},
		{"MaxElapsed/huge", func() { retry.WithMaxElapsed(math.MaxInt64) }, ""},
		{"PerAttemptTimeout/neg", func() { retry.WithPerAttemptTimeout(math.MinInt64) }, "retry: WithPerAttemptTimeout"},
		{"PerAttemptTimeout/huge", func() { retry.WithPerAttemptTimeout(math.MaxInt64) }, ""},
		{"Name/empty", func() { retry.WithName("") }, "retry: WithName"},
		{"Ratio/NaN", func() { retry.WithRatio(math.NaN()) }, "retry: WithRatio"},
		{"Ratio/+Inf", func() { retry.WithRatio(math.Inf(1)) }, "retry: WithRatio"},
		{"Ratio/neg", func() { retry.WithRatio(-1) }, "retry: WithRatio"},
		{"Ratio/0", func() { retry.WithRatio(0) }, ""},
		{"MinRetries/NaN", func() { retry.WithMinRetriesPerSecond(math.NaN()) }, "retry: WithMinRetriesPerSecond"},
		{"MinRetries/+Inf", func() { retry.WithMinRetriesPerSecond(math.Inf(1)) }, "retry: WithMinRetriesPerSecond"},
		{"MinRetries/0", func() { retry.WithMinRetriesPerSecond(0) }, ""},
		{"Window/9ns", func() { retry.WithWindow(9) }, "retry: WithWindow"},
		{"Window/neg", func() { retry.WithWindow(math.MinInt64) }, "retry: WithWindow"},
		{"Window/huge", func() { retry.WithWindow(math.MaxInt64) }, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				v := recover()
				s, _ := v.(string)
				switch {
				case tt.want == "" && v != nil:
					t.Errorf("panic = %v, want none", v)
				case tt.want != "" && !strings.HasPrefix(s, tt.want):
					t.Errorf("panic = %v, want a message starting %q", v, tt.want)
				}
			}()
			tt.give()
		})
	}
}

// Huge "no cap" values build working Retriers and Budgets.
func TestHugeValuesWork(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := retry.NewBudget(retry.WithWindow(math.MaxInt64))
		r := retry.New(retry.WithMaxAttempts(math.MaxInt), retry.WithInitialDelay(math.MaxInt64),
			retry.WithMaxDelay(math.MaxInt64), retry.WithMaxElapsed(math.MaxInt64),
			retry.WithPerAttemptTimeout(math.MaxInt64), retry.WithMultiplier(math.MaxFloat64), retry.WithBudget(b))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s := fail(errRemote)
		err := r.Do(ctx, s.fn)
		var ex *retry.ExhaustedError
		if !errors.As(err, &ex) || s.calls != 1 {
			t.Errorf("Do() = %v after %d calls, want an *ExhaustedError after 1 (the delay is past the deadline)", err, s.calls)
		}
		if err := r.Do(ctx, ok); err != nil {
			t.Errorf("Do(ok) = %v, want nil", err)
		}
	})
}
