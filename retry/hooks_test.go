package retry_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/retry"
)

func TestOnRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		type call struct {
			attempt int
			err     error
			delay   time.Duration
		}
		var got []call
		r := retry.New(retry.WithMaxAttempts(4), retry.WithRandomization(0),
			retry.WithOnRetry(func(attempt int, err error, delay time.Duration) {
				got = append(got, call{attempt, err, delay})
			}))
		first := hinted{errRemote, 3 * time.Second}
		s := &script{errs: []error{first, errRemote, errRemote}, succeed: true}
		if err := r.Do(context.Background(), s.fn); err != nil {
			t.Fatalf("Do() = %v, want nil", err)
		}
		want := []call{{1, first, 3 * time.Second}, {2, errRemote, 200 * time.Millisecond}, {3, errRemote, 400 * time.Millisecond}}
		if len(got) != len(want) {
			t.Fatalf("OnRetry called %d times (%v), want %d", len(got), got, len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("OnRetry call %d = %+v, want %+v", i, got[i], want[i])
			}
		}
		if d := delays(s.at); d[0] != got[0].delay || d[1] != got[1].delay || d[2] != got[2].delay {
			t.Errorf("delays slept %v, want the ones OnRetry saw", d)
		}
	})
}

func TestOnRetryNotCalledWithoutRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := 0
		b := retry.NewBudget(retry.WithRatio(0), retry.WithMinRetriesPerSecond(0))
		r := retry.New(retry.WithBudget(b), retry.WithOnRetry(func(int, error, time.Duration) { n++ }), retry.WithOnRetry(nil))
		for _, give := range []error{errors.New("not retryable"), noReplay{errRemote}, errRemote, hinted{errRemote, time.Hour}} {
			_ = r.Do(context.Background(), fail(give).fn)
		}
		if n != 0 {
			t.Errorf("OnRetry called %d times, want 0 (no retry was made)", n)
		}
	})
}

func TestMaxHint(t *testing.T) {
	for _, tt := range []struct {
		name      string
		opts      []retry.Option
		hint      time.Duration
		wantCalls int
	}{
		{"a day by default ends at once", nil, 24 * time.Hour, 1},
		{"just over the default", nil, time.Minute + 1, 1},
		{"the default itself waits", nil, time.Minute, 3},
		{"custom cap", []retry.Option{retry.WithMaxHint(time.Second)}, 2 * time.Second, 1},
		{"under a custom cap", []retry.Option{retry.WithMaxHint(time.Second)}, time.Second, 3},
		{"no cap", []retry.Option{retry.WithMaxHint(math.MaxInt64)}, 24 * time.Hour, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := retry.New(tt.opts...)
				s := fail(hinted{errRemote, tt.hint})
				start := time.Now()
				err := r.Do(context.Background(), s.fn)
				var ex *retry.ExhaustedError
				if !errors.As(err, &ex) || !errors.Is(err, bulwark.ErrRemoteUnavailable) {
					t.Fatalf("Do() = %v, want an *ExhaustedError wrapping the last error", err)
				}
				if s.calls != tt.wantCalls {
					t.Errorf("fn ran %d times, want %d", s.calls, tt.wantCalls)
				}
				if tt.wantCalls == 1 {
					if el := time.Since(start); el != 0 {
						t.Errorf("Do took %v, want it to end at once", el)
					}
					if !strings.Contains(err.Error(), "hint") {
						t.Errorf("Do() = %q, want the reason to name the hint", err)
					}
				}
			})
		})
	}
}

func TestNewOptionPanics(t *testing.T) {
	for _, tt := range []struct {
		name string
		give func()
		want string
	}{
		{"MaxHint/0", func() { retry.WithMaxHint(0) }, "retry: WithMaxHint"},
		{"MaxHint/neg", func() { retry.WithMaxHint(math.MinInt64) }, "retry: WithMaxHint"},
		{"BudgetName/empty", func() { retry.WithBudgetName("") }, "retry: WithBudgetName"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				s, _ := recover().(string)
				if !strings.HasPrefix(s, tt.want) {
					t.Errorf("panic = %q, want a message starting %q", s, tt.want)
				}
			}()
			tt.give()
		})
	}
}

var _ bulwark.Snapshotter = (*retry.Budget)(nil)

func figures(s bulwark.Snapshot) map[string]float64 {
	m := map[string]float64{}
	for _, f := range s.Figures {
		m[f.Name] = f.Value
	}
	return m
}

func TestBudgetSnapshot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := retry.NewBudget(retry.WithBudgetName("payments"), retry.WithRatio(0.5),
			retry.WithMinRetriesPerSecond(0.2), retry.WithWindow(10*time.Second))
		reg := bulwark.NewRegistry()
		reg.Register(b)
		snaps := reg.Snapshots()
		if len(snaps) != 1 {
			t.Fatalf("Snapshots() = %v, want one", snaps)
		}
		s := snaps[0]
		if s.Name != "payments" || s.Kind != "retry-budget" || s.State != "ok" || s.Health == "fail" {
			t.Errorf("Snapshot() = %+v, want payments / retry-budget / ok", s)
		}
		f := figures(s)
		for name, want := range map[string]float64{"ratio": 0.5, "min retries per second": 0.2, "window": 10,
			"available retries": 2, "retries spent": 0, "retries refused": 0} {
			if got, ok := f[name]; !ok || got != want {
				t.Errorf("figure %q = %v (present %v), want %v", name, got, ok, want)
			}
		}

		// Reserve 2 + 0.5 × 4 first attempts = 4 retries.
		r := retry.New(retry.WithBudget(b), retry.WithMaxAttempts(2), retry.WithRandomization(0))
		for range 4 {
			_ = r.Do(context.Background(), ok)
		}
		for range 6 {
			_ = r.Do(context.Background(), fail(errRemote).fn)
		}
		// 10 first attempts: 2 + 5 = 7 allowed, 6 spent.
		f = figures(b.Snapshot())
		if f["retries spent"] != 6 || f["retries refused"] != 0 || f["available retries"] != 1 || f["first attempts in window"] != 10 {
			t.Errorf("figures after 6 retries = %v, want 6 spent, 0 refused, 1 available, 10 first attempts", f)
		}
		for range 3 {
			_ = r.Do(context.Background(), fail(errRemote).fn)
		}
		// 13 first attempts: 2 + 6.5 = 8.5: two more retries allowed, one refused.
		s = b.Snapshot()
		f = figures(s)
		if f["retries spent"] != 8 || f["retries refused"] != 1 || f["available retries"] != 0 {
			t.Errorf("figures = %v, want 8 spent, 1 refused, 0 available", f)
		}
		if s.State != "exhausted" || s.Health != "warn" {
			t.Errorf("State, Health = %q, %q, want exhausted, warn", s.State, s.Health)
		}
		// The window rolls: everything ages out.
		time.Sleep(11 * time.Second)
		f = figures(b.Snapshot())
		if f["available retries"] != 2 || f["retries in window"] != 0 || f["retries spent"] != 8 {
			t.Errorf("figures after the window = %v, want 2 available, 0 in window, 8 spent ever", f)
		}
	})
}
