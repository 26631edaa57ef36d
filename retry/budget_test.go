package retry_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bulwark-go/bulwark/internal/metrictest"
	"github.com/bulwark-go/bulwark/retry"
)

func TestBudgetFailingBackend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const calls = 1000
		reader := metrictest.New(t)
		mp := reader.Provider
		r := retry.New(retry.WithBudget(retry.NewBudget()), retry.WithMeterProvider(mp),
			retry.WithInitialDelay(time.Millisecond), retry.WithRandomization(0))
		reader.Keep(r)
		var attempts int
		exhausted := 0
		start := time.Now()
		for i := 0; i < calls; i++ {
			err := r.Do(context.Background(), func(context.Context) error { attempts++; return errRemote })
			var ex *retry.ExhaustedError
			if !errors.As(err, &ex) {
				t.Fatalf("call %d: Do() = %v, want *ExhaustedError", i, err)
			}
			exhausted++
		}
		el := time.Since(start)
		if el >= time.Second {
			t.Fatalf("setup: the calls took %v, want them inside one window", el)
		}
		// Defaults: ratio 0.1, minimum 3 retries/s over a 10 s window.
		minAllowance := 3 * 10
		if limit := calls*11/10 + minAllowance; attempts > limit {
			t.Errorf("attempts = %d for %d calls, want <= %d", attempts, calls, limit)
		}
		if attempts < calls*11/10 {
			t.Errorf("attempts = %d for %d calls, want the budget's 10 %% used (>= %d)", attempts, calls, calls*11/10)
		}
		if got := sum(t, reader, "bulwark.retry.budget.exhausted"); got < calls/2 {
			t.Errorf("budget.exhausted = %d, want most of the %d calls", got, calls)
		}
		if got := sum(t, reader, "bulwark.retry.attempts"); got != int64(attempts) {
			t.Errorf("attempts metric = %d, want %d", got, attempts)
		}
	})
}

func TestBudgetShared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := retry.NewBudget(retry.WithRatio(0), retry.WithMinRetriesPerSecond(1)) // 10 retries per window
		r1 := retry.New(retry.WithBudget(b), retry.WithMaxAttempts(2))
		r2 := retry.New(retry.WithBudget(b), retry.WithMaxAttempts(2))
		attempts := 0
		fn := func(context.Context) error { attempts++; return errRemote }
		for i := 0; i < 20; i++ {
			_ = r1.Do(context.Background(), fn)
			_ = r2.Do(context.Background(), fn)
		}
		if want := 40 + 10; attempts != want {
			t.Errorf("attempts through two Retriers sharing 10 retries = %d, want %d", attempts, want)
		}
	})
}

func TestBudgetWindowRolls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := retry.NewBudget(retry.WithRatio(0), retry.WithMinRetriesPerSecond(1), retry.WithWindow(10*time.Second))
		r := retry.New(retry.WithBudget(b), retry.WithMaxAttempts(2), retry.WithInitialDelay(time.Millisecond), retry.WithRandomization(0))
		retries := func(n int) int {
			got := 0
			for i := 0; i < n; i++ {
				calls := 0
				_ = r.Do(context.Background(), func(context.Context) error { calls++; return errRemote })
				got += calls - 1
			}
			return got
		}
		for _, tt := range []struct {
			name  string
			sleep time.Duration
			want  int
		}{
			{"fresh budget", 0, 10},
			{"same window", 5 * time.Second, 0},
			{"window rolled", 5 * time.Second, 10},
		} {
			time.Sleep(tt.sleep)
			if got := retries(20); got != tt.want {
				t.Errorf("%s: retries = %d, want %d", tt.name, got, tt.want)
			}
		}
	})
}

func TestBudgetRatio(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := retry.NewBudget(retry.WithRatio(0.5), retry.WithMinRetriesPerSecond(0))
		ok := retry.New(retry.WithBudget(b))
		failing := retry.New(retry.WithBudget(b), retry.WithMaxAttempts(5))
		for i := 0; i < 20; i++ {
			_ = ok.Do(context.Background(), func(context.Context) error { return nil })
		}
		var perCall []int
		for i := 0; i < 5; i++ {
			calls := 0
			_ = failing.Do(context.Background(), func(context.Context) error { calls++; return errRemote })
			perCall = append(perCall, calls)
		}
		// Retries stay <= 0.5 x first attempts (21, 22, ... 25): 4, 4, 3, 1, 0.
		if got, want := fmt.Sprint(perCall), "[5 5 4 2 1]"; got != want {
			t.Errorf("attempts per failing call = %s, want %s", got, want)
		}
	})
}

func TestBudgetConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := retry.NewBudget(retry.WithMinRetriesPerSecond(0))
		r := retry.New(retry.WithBudget(b), retry.WithMaxAttempts(5))
		const workers, calls = 8, 100
		var attempts atomic.Int64
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < calls; i++ {
					_ = r.Do(context.Background(), func(context.Context) error { attempts.Add(1); return errRemote })
				}
			}()
		}
		wg.Wait()
		if got, limit := attempts.Load(), int64(workers*calls*11/10); got > limit {
			t.Errorf("attempts = %d, want <= %d", got, limit)
		}
		if got := attempts.Load(); got <= workers*calls {
			t.Errorf("attempts = %d, want some retries", got)
		}
	})
}

// FuzzBudget checks the budget's bound for any pattern of successes,
// failures and pauses: over a run of T, retries ≤ ratio × first attempts
// counted twice (a window overlaps two aligned windows) + the minimum
// allowance of every aligned window the run touches.
func FuzzBudget(f *testing.F) {
	f.Add([]byte{0, 1, 1, 1, 255, 1, 1, 3, 3, 3})
	f.Add([]byte{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1})
	f.Fuzz(func(t *testing.T, steps []byte) {
		synctest.Test(t, func(t *testing.T) {
			const ratio, minRate, window = 0.1, 1.0, 10 * time.Second
			b := retry.NewBudget(retry.WithRatio(ratio), retry.WithMinRetriesPerSecond(minRate), retry.WithWindow(window))
			r := retry.New(retry.WithBudget(b), retry.WithMaxAttempts(4), retry.WithInitialDelay(time.Millisecond),
				retry.WithRandomization(0))
			start := time.Now()
			firsts, attempts := 0, 0
			for _, s := range steps {
				firsts++
				fails := s&1 == 1
				_ = r.Do(context.Background(), func(context.Context) error {
					attempts++
					if fails {
						return errRemote
					}
					return nil
				})
				time.Sleep(time.Duration(s>>1) * 50 * time.Millisecond) // up to 6.35 s
			}
			windows := float64(time.Since(start)/window) + 2
			retries := attempts - firsts
			if limit := 2*ratio*float64(firsts) + minRate*window.Seconds()*windows; float64(retries) > limit {
				t.Errorf("%d retries for %d first attempts over %v, want <= %v", retries, firsts, time.Since(start), limit)
			}
		})
	})
}

// The documented minimum for quiet clients: 3 retries per second over the
// default 10 s window, whatever the ratio earns.
func TestBudgetDefaultMinimum(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := retry.NewBudget(retry.WithRatio(0))
		r := retry.New(retry.WithBudget(b), retry.WithMaxAttempts(2), retry.WithInitialDelay(time.Millisecond), retry.WithRandomization(0))
		retries := func() int {
			got := 0
			for range 50 {
				calls := 0
				_ = r.Do(context.Background(), func(context.Context) error { calls++; return errRemote })
				got += calls - 1
			}
			return got
		}
		if got := retries(); got != 30 {
			t.Errorf("retries in one window = %d, want 30 (3/s × 10 s)", got)
		}
		time.Sleep(9 * time.Second)
		if got := retries(); got != 0 {
			t.Errorf("retries 9 s later = %d, want 0 (same 10 s window)", got)
		}
		time.Sleep(2 * time.Second)
		if got := retries(); got != 30 {
			t.Errorf("retries after the window rolled = %d, want 30", got)
		}
	})
}
