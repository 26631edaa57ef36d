package breaker

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/internal/metrictest"
)

var errBoom = errors.New("boom")

func succeed(context.Context) error { return nil }
func fail(context.Context) error    { return errBoom }

// run makes calls through b: 's' succeeds, 'f' fails.
func run(t *testing.T, b *Breaker, calls string) {
	t.Helper()
	for i, c := range calls {
		fn := succeed
		if c == 'f' {
			fn = fail
		}
		if err := b.Do(context.Background(), fn); err != nil && err != errBoom {
			t.Fatalf("call %d (%c): Do() = %v, want fn's result", i, c, err)
		}
	}
}

func repeat(s string, n int) string {
	out := ""
	for range n {
		out += s
	}
	return out
}

func TestFailureRatio(t *testing.T) {
	tests := []struct {
		name string
		opts []Option
		give string
		want State
	}{
		{"min calls - 1, ratio above", []Option{WithMinCalls(10)}, repeat("s", 4) + repeat("f", 5), StateClosed},
		{"exactly min calls, exactly the ratio", []Option{WithMinCalls(10)}, repeat("s", 5) + repeat("f", 5), StateOpen},
		{"min calls, just below the ratio", []Option{WithMinCalls(10)}, repeat("s", 6) + repeat("f", 4), StateClosed},
		{"past min calls, ratio reached later", []Option{WithMinCalls(10)}, repeat("s", 6) + repeat("f", 5) + "f", StateOpen},
		{"ratio 0.1 is inclusive despite floats", []Option{WithMinCalls(30), WithFailureRatio(0.1)}, repeat("s", 27) + "fff", StateOpen},
		{"ratio 0.1, one short", []Option{WithMinCalls(30), WithFailureRatio(0.1)}, repeat("s", 28) + "ff", StateClosed},
		{"ratio 1 needs every call to fail", []Option{WithMinCalls(3), WithFailureRatio(1)}, "sfff", StateClosed},
		{"ratio 1, all failed", []Option{WithMinCalls(3), WithFailureRatio(1)}, "fff", StateOpen},
		{"default min calls 20 - 1", nil, repeat("f", 19), StateClosed},
		{"default min calls 20", nil, repeat("s", 10) + repeat("f", 10), StateOpen},
		{"default ratio 0.5, just below", nil, repeat("s", 11) + repeat("f", 10), StateClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New("ratio", tt.opts...)
			run(t, b, tt.give)
			if got := b.State(); got != tt.want {
				t.Errorf("State() after %q = %v, want %v (counts %+v)", tt.give, got, tt.want, b.Counts())
			}
		})
	}
}

func TestSuccessDoesNotTrip(t *testing.T) {
	// gobreaker consults the rule on failures only: 10 failures then the
	// 20th call a success leaves it closed until the next failure.
	b := New("lazy")
	run(t, b, repeat("f", 10)+repeat("s", 10))
	if got := b.State(); got != StateClosed {
		t.Fatalf("State() = %v, want %v", got, StateClosed)
	}
	run(t, b, "f")
	if got := b.State(); got != StateOpen {
		t.Fatalf("State() after the next failure = %v, want %v", got, StateOpen)
	}
}

func TestConsecutiveFailures(t *testing.T) {
	tests := []struct {
		name string
		opts []Option
		give string
		want State
	}{
		{"n - 1", []Option{WithConsecutiveFailures(3)}, "fff"[:2], StateClosed},
		{"n", []Option{WithConsecutiveFailures(3)}, "fff", StateOpen},
		{"broken run", []Option{WithConsecutiveFailures(3)}, "ffsff", StateClosed},
		{"off by default", nil, repeat("f", 19), StateClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New("consecutive", tt.opts...)
			run(t, b, tt.give)
			if got := b.State(); got != tt.want {
				t.Errorf("State() after %q = %v, want %v", tt.give, got, tt.want)
			}
		})
	}
}

type counted struct{ success, failure, excluded uint32 }

func TestClassification(t *testing.T) {
	cancelled := func(ctx context.Context, cancel context.CancelFunc) error {
		cancel()
		return ctx.Err()
	}
	tests := []struct {
		name string
		opts []Option
		give func(ctx context.Context, cancel context.CancelFunc) error
		want counted
	}{
		{"nil", nil, func(context.Context, context.CancelFunc) error { return nil }, counted{success: 1}},
		{"unclassified", nil, func(context.Context, context.CancelFunc) error { return errBoom }, counted{failure: 1}},
		{"remote unavailable", nil, func(context.Context, context.CancelFunc) error {
			return fmt.Errorf("GET: %w", bulwark.ErrRemoteUnavailable)
		}, counted{failure: 1}},
		{"our timeout", nil, func(context.Context, context.CancelFunc) error { return bulwark.ErrTimeout }, counted{failure: 1}},
		{"remote rejected", nil, func(context.Context, context.CancelFunc) error {
			return fmt.Errorf("GET: %w", bulwark.ErrRemoteRejected)
		}, counted{excluded: 1}},
		{"inner refusal, unavailable", nil, func(context.Context, context.CancelFunc) error {
			return fmt.Errorf("bulkhead: full: %w", bulwark.ErrUnavailable)
		}, counted{excluded: 1}},
		{"inner refusal, rejected", nil, func(context.Context, context.CancelFunc) error {
			return fmt.Errorf("ratelimit: limited: %w", bulwark.ErrRejected)
		}, counted{excluded: 1}},
		{"another breaker's refusal", nil, func(context.Context, context.CancelFunc) error { return ErrOpen }, counted{excluded: 1}},
		{"caller cancelled", nil, cancelled, counted{excluded: 1}},
		{"caller cancelled, wrapped", nil, func(ctx context.Context, cancel context.CancelFunc) error {
			cancel()
			return fmt.Errorf("read: %w", ctx.Err())
		}, counted{excluded: 1}},
		{"context.Canceled of fn's own", nil, func(context.Context, context.CancelFunc) error { return context.Canceled }, counted{failure: 1}},
		{"caller cancelled but fn failed otherwise", nil, func(_ context.Context, cancel context.CancelFunc) error {
			cancel()
			return errBoom
		}, counted{failure: 1}},
		{"WithFailure: not a failure", []Option{WithFailure(func(err error) bool { return err != errBoom })},
			func(context.Context, context.CancelFunc) error { return errBoom }, counted{success: 1}},
		{"WithFailure: remote rejected counted", []Option{WithFailure(func(error) bool { return true })},
			func(context.Context, context.CancelFunc) error { return bulwark.ErrRemoteRejected }, counted{failure: 1}},
		{"WithFailure does not see cancellation", []Option{WithFailure(func(error) bool { return true })}, cancelled, counted{excluded: 1}},
		{"WithFailure does not see refusals", []Option{WithFailure(func(error) bool { return true })},
			func(context.Context, context.CancelFunc) error { return bulwark.ErrUnavailable }, counted{excluded: 1}},
		{"WithFailure(nil) ignored", []Option{WithFailure(nil)},
			func(context.Context, context.CancelFunc) error { return bulwark.ErrRemoteRejected }, counted{excluded: 1}},
		{"WithFailure: remote rejected not a failure is still not counted", []Option{WithFailure(func(error) bool { return false })},
			func(context.Context, context.CancelFunc) error { return bulwark.ErrRemoteRejected }, counted{excluded: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, admit := range []bool{false, true} {
				b := New("classify", tt.opts...)
				ctx, cancel := context.WithCancel(context.Background())
				if admit {
					done, err := b.Admit(ctx)
					if err != nil {
						t.Fatalf("Admit() = %v, want admission", err)
					}
					done(tt.give(ctx, cancel))
				} else {
					_ = b.Do(ctx, func(ctx context.Context) error { return tt.give(ctx, cancel) })
				}
				cancel()
				c := b.Counts()
				got := counted{c.Successes, c.Failures, c.Excluded}
				if got != tt.want {
					t.Errorf("admit=%v: counted %+v, want %+v", admit, got, tt.want)
				}
			}
		})
	}
}

func TestCallerCancellationNeverTrips(t *testing.T) {
	b := New("cancel", WithMinCalls(1), WithConsecutiveFailures(1))
	for range 50 {
		ctx, cancel := context.WithCancel(context.Background())
		_ = b.Do(ctx, func(ctx context.Context) error { cancel(); return ctx.Err() })
		_ = b.Do(context.Background(), func(context.Context) error { return bulwark.ErrRemoteRejected })
	}
	if got := b.State(); got != StateClosed {
		t.Fatalf("State() = %v, want %v", got, StateClosed)
	}
}

func TestDeadlineOfCallerIgnored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New("deadline", WithConsecutiveFailures(1))
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err := b.Do(ctx, func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Do() = %v, want %v", err, context.DeadlineExceeded)
		}
		if got := b.State(); got != StateClosed {
			t.Errorf("State() = %v, want %v: the caller's deadline is not a failure", got, StateClosed)
		}
		// Our own per-attempt timeout inside the breaker is a failure.
		err = bulwark.Chain(b, bulwark.Timeout(time.Second)).Do(context.Background(), func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		})
		if !errors.Is(err, bulwark.ErrTimeout) {
			t.Fatalf("Do() = %v, want %v", err, bulwark.ErrTimeout)
		}
		if got := b.State(); got != StateOpen {
			t.Errorf("State() = %v, want %v: our timeout is a failure", got, StateOpen)
		}
	})
}

func TestEndedContext(t *testing.T) {
	b := New("ended")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Do(ctx, succeed); !errors.Is(err, context.Canceled) {
		t.Errorf("Do() = %v, want %v", err, context.Canceled)
	}
	if done, err := b.Admit(ctx); !errors.Is(err, context.Canceled) || done != nil {
		t.Errorf("Admit() = %p, %v, want nil, %v", done, err, context.Canceled)
	}
	if c := b.Counts(); c.Requests != 0 {
		t.Errorf("Counts().Requests = %d, want 0", c.Requests)
	}
}

func TestPanicAndGoexitAreFailures(t *testing.T) {
	b := New("panic", WithConsecutiveFailures(2))
	func() {
		defer func() {
			if v := recover(); v != "boom" {
				t.Errorf("recovered %v, want boom", v)
			}
		}()
		_ = b.Do(context.Background(), func(context.Context) error { panic("boom") })
	}()
	if c := b.Counts(); c.Failures != 1 {
		t.Fatalf("after a panic Counts().Failures = %d, want 1", c.Failures)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = b.Do(context.Background(), func(context.Context) error { runtime.Goexit(); return nil })
		t.Error("Do returned after runtime.Goexit")
	})
	wg.Wait()
	if got := b.State(); got != StateOpen {
		t.Fatalf("State() after a panic and a Goexit = %v, want %v", got, StateOpen)
	}
}

func TestBreakAndProbes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const brk = 10 * time.Second
		b := New("probes", WithConsecutiveFailures(1), WithBreakDuration(brk), WithProbes(2))
		run(t, b, "f")

		err := b.Do(context.Background(), succeed)
		if !errors.Is(err, ErrOpen) || !errors.Is(err, bulwark.ErrUnavailable) {
			t.Fatalf("Do() on an open breaker = %v, want %v and %v", err, ErrOpen, bulwark.ErrUnavailable)
		}
		if d, ok := bulwark.RetryAfter(err); !ok || d != brk {
			t.Errorf("RetryAfter = %v, %v, want %v", d, ok, brk)
		}
		time.Sleep(4 * time.Second)
		if d, _ := bulwark.RetryAfter(err); d != brk {
			t.Errorf("RetryAfter of the first refusal 4s later = %v, want %v (its own hint, unchanged)", d, brk)
		}
		err4 := b.Do(context.Background(), succeed)
		if d, _ := bulwark.RetryAfter(err4); d != brk-4*time.Second {
			t.Errorf("RetryAfter of a refusal 4s later = %v, want %v", d, brk-4*time.Second)
		}
		time.Sleep(brk - 4*time.Second - time.Nanosecond)
		errLast := b.Do(context.Background(), succeed)
		if d, _ := bulwark.RetryAfter(errLast); d != time.Millisecond {
			t.Errorf("RetryAfter 1ns before the break ends = %v, want 1ms (rounded up)", d)
		}
		if got := b.State(); got != StateOpen {
			t.Fatalf("State() 1ns before the break ends = %v, want %v", got, StateOpen)
		}
		time.Sleep(2 * time.Nanosecond)
		if d, _ := bulwark.RetryAfter(err); d != brk {
			t.Errorf("RetryAfter of the first refusal after the break = %v, want %v", d, brk)
		}

		// Half-open: probes + 1.
		var dones []func(error)
		for i := range 2 {
			done, err := b.Admit(context.Background())
			if err != nil {
				t.Fatalf("probe %d: Admit() = %v, want admission", i, err)
			}
			dones = append(dones, done)
		}
		if got := b.State(); got != StateHalfOpen {
			t.Fatalf("State() = %v, want %v", got, StateHalfOpen)
		}
		_, err = b.Admit(context.Background())
		if !errors.Is(err, ErrTooManyProbes) || !errors.Is(err, bulwark.ErrUnavailable) {
			t.Fatalf("probe 3: Admit() = %v, want %v", err, ErrTooManyProbes)
		}
		if d, ok := bulwark.RetryAfter(err); !ok || d != brk {
			t.Errorf("RetryAfter(ErrTooManyProbes) = %v, %v, want %v", d, ok, brk)
		}
		dones[0](nil)
		if got := b.State(); got != StateHalfOpen {
			t.Fatalf("State() after 1 of 2 probes succeeded = %v, want %v", got, StateHalfOpen)
		}
		dones[1](nil)
		if got := b.State(); got != StateClosed {
			t.Fatalf("State() after 2 of 2 probes succeeded = %v, want %v", got, StateClosed)
		}

		// A failed probe reopens it for a full break.
		run(t, b, "f")
		time.Sleep(brk + time.Nanosecond)
		err = b.Do(context.Background(), func(context.Context) error {
			time.Sleep(time.Second)
			return errBoom
		})
		if err != errBoom {
			t.Fatalf("probe: Do() = %v, want %v", err, errBoom)
		}
		err = b.Do(context.Background(), succeed)
		if d, ok := bulwark.RetryAfter(err); !errors.Is(err, ErrOpen) || !ok || d != brk {
			t.Errorf("after a failed probe: Do() = %v with hint %v, want %v with hint %v", err, d, ErrOpen, brk)
		}
	})
}

func TestCancelledProbeFreesItsSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New("probe", WithConsecutiveFailures(1), WithBreakDuration(time.Second))
		run(t, b, "f")
		time.Sleep(2 * time.Second)
		ctx, cancel := context.WithCancel(context.Background())
		_ = b.Do(ctx, func(ctx context.Context) error { cancel(); return ctx.Err() })
		if got := b.State(); got != StateHalfOpen {
			t.Fatalf("State() after a cancelled probe = %v, want %v", got, StateHalfOpen)
		}
		if err := b.Do(context.Background(), succeed); err != nil {
			t.Fatalf("next probe: Do() = %v, want nil", err)
		}
		if got := b.State(); got != StateClosed {
			t.Fatalf("State() = %v, want %v", got, StateClosed)
		}
	})
}

func TestWindowRolls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New("window", WithMinCalls(4), WithWindow(10*time.Second, 10))
		run(t, b, "fff")
		time.Sleep(10 * time.Second) // the failures age out
		run(t, b, "sf")
		if got := b.State(); got != StateClosed {
			t.Fatalf("State() = %v, want %v (counts %+v)", got, StateClosed, b.Counts())
		}
		time.Sleep(5 * time.Second) // "sf" stays in the window
		run(t, b, "sf")
		if got := b.State(); got != StateOpen {
			t.Fatalf("State() = %v, want %v (counts %+v)", got, StateOpen, b.Counts())
		}
	})
}

func TestSlowCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tests := []struct {
			name string
			opts []Option
			give time.Duration
			err  error
			want uint32 // failures
		}{
			{"off by default", nil, time.Hour, nil, 0},
			{"at the threshold", []Option{WithSlowCall(time.Second)}, time.Second, nil, 0},
			{"above the threshold", []Option{WithSlowCall(time.Second)}, time.Second + 1, nil, 1},
			// Issue 14 item 5: a downstream's 429 is not counted, however slow.
			{"slow remote rejected", []Option{WithSlowCall(time.Second)}, 2 * time.Second, bulwark.ErrRemoteRejected, 0},
			{"slow remote rejected, ratio", []Option{WithSlowCall(time.Second), WithSlowCallRatio(0.5)}, 2 * time.Second, bulwark.ErrRemoteRejected, 0},
			{"slow success, ratio", []Option{WithSlowCall(time.Second), WithSlowCallRatio(0.5)}, 2 * time.Second, nil, 0},
			{"slow refusal stays excluded", []Option{WithSlowCall(time.Second)}, 2 * time.Second, bulwark.ErrUnavailable, 0},
		}
		for _, tt := range tests {
			for _, admit := range []bool{false, true} {
				b := New("slow", tt.opts...)
				if admit {
					done, _ := b.Admit(context.Background())
					time.Sleep(tt.give)
					done(tt.err)
				} else {
					_ = b.Do(context.Background(), func(context.Context) error {
						time.Sleep(tt.give)
						return tt.err
					})
				}
				if got := b.Counts().Failures; got != tt.want {
					t.Errorf("%s (admit=%v): failures = %d, want %d", tt.name, admit, got, tt.want)
				}
			}
		}
	})
}

func TestModes(t *testing.T) {
	var mu sync.Mutex
	var got []string
	b := New("modes", WithConsecutiveFailures(1), WithOnStateChange(func(name string, from, to State) {
		mu.Lock()
		got = append(got, name+":"+from.String()+">"+to.String())
		mu.Unlock()
	}))

	b.ForceOpen()
	if s := b.State(); s != StateForcedOpen {
		t.Fatalf("State() = %v, want %v", s, StateForcedOpen)
	}
	called := false
	err := b.Do(context.Background(), func(context.Context) error { called = true; return nil })
	if called || !errors.Is(err, ErrOpen) || !errors.Is(err, bulwark.ErrUnavailable) {
		t.Fatalf("forced open: Do() = %v (fn called %v), want %v without calling fn", err, called, ErrOpen)
	}
	if d, ok := bulwark.RetryAfter(err); ok {
		t.Errorf("forced open: RetryAfter = %v, want no hint", d)
	}
	if _, err := b.Admit(context.Background()); !errors.Is(err, ErrOpen) {
		t.Errorf("forced open: Admit() = %v, want %v", err, ErrOpen)
	}

	b.Disable()
	for i := range 100 {
		if err := b.Do(context.Background(), fail); err != errBoom {
			t.Fatalf("disabled, call %d: Do() = %v, want %v", i, err, errBoom)
		}
	}
	done, err := b.Admit(context.Background())
	if err != nil {
		t.Fatalf("disabled: Admit() = %v, want admission", err)
	}
	done(errBoom)
	if s := b.State(); s != StateDisabled {
		t.Fatalf("State() after 101 failures while disabled = %v, want %v", s, StateDisabled)
	}

	b.Reset()
	if s := b.State(); s != StateClosed {
		t.Fatalf("State() after Reset = %v, want %v", s, StateClosed)
	}
	run(t, b, "f")
	b.Reset()
	b.Reset() // closed already: no transition
	mu.Lock()
	defer mu.Unlock()
	want := []string{
		"modes:closed>forced_open", "modes:forced_open>disabled", "modes:disabled>closed",
		"modes:closed>open", "modes:open>closed",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("transitions = %v, want %v", got, want)
	}
}

func TestResetDropsOutcomesOfEarlierCalls(t *testing.T) {
	b := New("reset", WithConsecutiveFailures(1))
	done, _ := b.Admit(context.Background())
	b.Reset()
	done(errBoom)
	if s := b.State(); s != StateClosed {
		t.Fatalf("State() = %v, want %v: a call admitted before Reset must not count", s, StateClosed)
	}
}

func TestAdmitDoneCountsOnce(t *testing.T) {
	b := New("once")
	done, err := b.Admit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	done(errBoom)
	done(errBoom)
	done(nil)
	if c := b.Counts(); c.Failures != 1 || c.Successes != 0 {
		t.Errorf("Counts() = %+v, want 1 failure, 0 successes", c)
	}
}

func TestOnStateChangeMayCallBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var b *Breaker
		var seen []string
		b = New("reentrant", WithConsecutiveFailures(1), WithBreakDuration(time.Second),
			WithOnStateChange(func(name string, from, to State) {
				// Runs outside gobreaker's lock: calling back must not deadlock.
				seen = append(seen, fmt.Sprintf("%v>%v now %v", from, to, b.State()))
				_ = b.Counts()
				if to == StateOpen {
					_ = b.Do(context.Background(), succeed) // refused
				}
				if to == StateHalfOpen {
					b.Reset()
				}
			}))
		run(t, b, "f")
		time.Sleep(2 * time.Second)
		_ = b.State()
		want := []string{"closed>open now open", "open>half_open now half_open", "half_open>closed now closed"}
		if fmt.Sprint(seen) != fmt.Sprint(want) {
			t.Errorf("callbacks saw %q, want %q", seen, want)
		}
	})
}

func TestOnStateChangeInOrderUnderLoad(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		last := StateClosed
		var bad []string
		b := New("order", WithConsecutiveFailures(1), WithBreakDuration(time.Millisecond),
			WithOnStateChange(func(_ string, from, to State) {
				mu.Lock()
				defer mu.Unlock()
				if from != last {
					bad = append(bad, fmt.Sprintf("%v>%v after %v", from, to, last))
				}
				last = to
			}))
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := range 200 {
					fn := succeed
					if (i+w)%3 == 0 {
						fn = fail
					}
					_ = b.Do(context.Background(), fn)
					if i%50 == 0 {
						time.Sleep(2 * time.Millisecond)
					}
				}
			})
		}
		wg.Wait()
		_ = b.State()
		mu.Lock()
		defer mu.Unlock()
		if len(bad) > 0 {
			t.Errorf("callbacks out of order: %v", bad)
		}
		if got := b.visible(); got != last {
			t.Errorf("last delivered state %v, breaker is %v", last, got)
		}
	})
}

func TestOnStateChangePanicKeepsDelivering(t *testing.T) {
	n := 0
	b := New("panicky", WithConsecutiveFailures(1), WithOnStateChange(func(string, State, State) {
		n++
		if n == 1 {
			panic("callback")
		}
	}))
	func() {
		defer func() { _ = recover() }()
		run(t, b, "f")
	}()
	b.Reset()
	if n != 2 {
		t.Errorf("callback ran %d times, want 2 (the panic must not stop delivery)", n)
	}
}

func TestStateString(t *testing.T) {
	tests := []struct {
		give State
		want string
	}{
		{StateClosed, "closed"}, {StateHalfOpen, "half_open"}, {StateOpen, "open"},
		{StateForcedOpen, "forced_open"}, {StateDisabled, "disabled"}, {State(9), "unknown"},
	}
	for _, tt := range tests {
		if got := tt.give.String(); got != tt.want {
			t.Errorf("State(%d).String() = %q, want %q", tt.give, got, tt.want)
		}
	}
}

func TestOptionsPanic(t *testing.T) {
	tests := []struct {
		name string
		give func()
	}{
		{"ratio 0", func() { WithFailureRatio(0) }},
		{"ratio > 1", func() { WithFailureRatio(1.5) }},
		{"min calls 0", func() { WithMinCalls(0) }},
		{"consecutive < 0", func() { WithConsecutiveFailures(-1) }},
		{"window 0", func() { WithWindow(0, 1) }},
		{"buckets 0", func() { WithWindow(time.Second, 0) }},
		{"slow 0", func() { WithSlowCall(0) }},
		{"break 0", func() { WithBreakDuration(0) }},
		{"probes 0", func() { WithProbes(0) }},
		{"max keys 0", func() { WithMaxKeys(0) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if v, _ := recover().(string); len(v) < 9 || v[:9] != "breaker: " {
					t.Errorf("panic %q, want one naming the package", v)
				}
			}()
			tt.give()
		})
	}
}

func TestNilOptionsIgnored(t *testing.T) {
	// A nil option, or an option given nil, leaves what an earlier option
	// set in force.
	c := metrictest.New(t)
	var changes []string
	type hostKey struct{}
	g := NewGroup("nil", nil,
		WithMeterProvider(c.Provider), WithMeterProvider(nil),
		WithOnStateChange(func(name string, _, to State) { changes = append(changes, name+":"+to.String()) }),
		WithOnStateChange(nil),
		WithFailure(func(err error) bool { return err == errBoom }), WithFailure(nil),
		WithKeyFunc(func(ctx context.Context) string { s, _ := ctx.Value(hostKey{}).(string); return s }),
		WithKeyFunc(nil),
		WithConsecutiveFailures(1))
	ctx := context.WithValue(context.Background(), hostKey{}, "h")
	_ = g.Do(ctx, func(context.Context) error { return bulwark.ErrRemoteUnavailable }) // not a failure for f
	if got := g.State("h"); got != StateClosed {
		t.Fatalf("State(h) = %v, want %v: WithFailure(nil) replaced the classifier", got, StateClosed)
	}
	_ = g.Do(ctx, fail)
	if got := g.State("h"); got != StateOpen {
		t.Fatalf("State(h) = %v, want %v: WithKeyFunc(nil) replaced the key function", got, StateOpen)
	}
	if want := []string{"h:open"}; fmt.Sprint(changes) != fmt.Sprint(want) {
		t.Errorf("OnStateChange saw %v, want %v: WithOnStateChange(nil) dropped the callback", changes, want)
	}
	if got := c.Int64("bulwark.breaker.calls")["bulwark.outcome=failure,bulwark.policy.name=nil"]; got != 1 {
		t.Errorf("calls{failure} = %d, want 1: WithMeterProvider(nil) dropped the provider", got)
	}
}

func TestRefusalAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	open := New("allocs", WithConsecutiveFailures(1))
	run(t, open, "f")
	forced := New("allocs")
	forced.ForceOpen()
	ctx := context.Background()
	for _, b := range []*Breaker{open, forced} {
		if n := testing.AllocsPerRun(100, func() { _ = b.Do(ctx, succeed) }); n != 0 {
			t.Errorf("%v: refused Do allocates %v times, want 0", b.State(), n)
		}
		err := b.Do(ctx, succeed)
		if n := testing.AllocsPerRun(100, func() { _, _ = bulwark.RetryAfter(err) }); n != 0 {
			t.Errorf("%v: RetryAfter allocates %v times, want 0", b.State(), n)
		}
	}
}

// refuser is an inner admission policy that always refuses.
type refuser struct{}

func (refuser) Do(context.Context, func(context.Context) error) error {
	return fmt.Errorf("inner: full: %w", bulwark.ErrUnavailable)
}

func (refuser) Admit(context.Context) (func(error), error) {
	return nil, fmt.Errorf("inner: full: %w", bulwark.ErrUnavailable)
}

func TestChainRefusalIsNotCounted(t *testing.T) {
	b := New("chained", WithConsecutiveFailures(1))
	p := bulwark.Chain(b, refuser{})
	a, ok := p.(bulwark.Admitter)
	if !ok {
		t.Fatal("Chain(breaker, admitter) is not an Admitter")
	}
	for range 3 {
		if _, err := a.Admit(context.Background()); !errors.Is(err, bulwark.ErrUnavailable) {
			t.Fatalf("Admit() = %v, want the inner refusal", err)
		}
		if err := p.Do(context.Background(), succeed); !errors.Is(err, bulwark.ErrUnavailable) {
			t.Fatalf("Do() = %v, want the inner refusal", err)
		}
	}
	if c := b.Counts(); c.Excluded != 6 || c.Failures != 0 || b.State() != StateClosed {
		t.Errorf("Counts() = %+v, state %v; want 6 excluded, closed", c, b.State())
	}
}

// A per-attempt timeout set outside the breaker (retry.WithPerAttemptTimeout,
// or Chain(bulwark.Timeout(d), breaker)) ends the breaker's own context with
// bulwark.ErrTimeout as its cause: that is our timeout, a failure, not the
// caller going away.
func TestOwnTimeoutOutsideIsFailure(t *testing.T) {
	waitDone := func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	}
	tests := []struct {
		name string
		give func(b *Breaker) error
		want counted
	}{
		{"Chain(Timeout, breaker).Do", func(b *Breaker) error {
			return bulwark.Chain(bulwark.Timeout(time.Second), b).Do(context.Background(), waitDone)
		}, counted{failure: 1}},
		{"Do under a context ended by ErrTimeout", func(b *Breaker) error {
			ctx, cancel := context.WithTimeoutCause(context.Background(), time.Second, bulwark.ErrTimeout)
			defer cancel()
			return b.Do(ctx, waitDone)
		}, counted{failure: 1}},
		{"Admit under a context ended by ErrTimeout", func(b *Breaker) error {
			ctx, cancel := context.WithTimeoutCause(context.Background(), time.Second, bulwark.ErrTimeout)
			defer cancel()
			done, err := b.Admit(ctx)
			if err != nil {
				return err
			}
			err = waitDone(ctx)
			done(err)
			return err
		}, counted{failure: 1}},
		{"the caller's own deadline stays ignored", func(b *Breaker) error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			return b.Do(ctx, waitDone)
		}, counted{excluded: 1}},
		{"the caller's cancellation with a cause stays ignored", func(b *Breaker) error {
			ctx, cancel := context.WithCancelCause(context.Background())
			return b.Do(ctx, func(ctx context.Context) error {
				cancel(errBoom)
				return ctx.Err()
			})
		}, counted{excluded: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := New("own-timeout")
				if err := tt.give(b); !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
					t.Fatalf("Do() = %v, want a context error", err)
				}
				c := b.Counts()
				if got := (counted{c.Successes, c.Failures, c.Excluded}); got != tt.want {
					t.Errorf("counted %+v, want %+v", got, tt.want)
				}
			})
		})
	}
}

// The allocation target for the success path: no more than the
// one allocation of gobreaker's TwoStepCircuitBreaker (its done closure),
// with an SDK MeterProvider, for a Breaker and a Group member.
func TestSuccessAllocatesAtMostGobreaker(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	c := metrictest.New(t)
	ctx := context.Background()
	b := New("allocs", WithMeterProvider(c.Provider))
	g := NewGroup("allocs", WithMeterProvider(c.Provider))
	kctx := bulwark.WithKey(ctx, "host")
	_ = g.Do(kctx, succeed)
	for _, tt := range []struct {
		name string
		give func()
	}{
		{"Breaker", func() { _ = b.Do(ctx, succeed) }},
		{"Group", func() { _ = g.Do(kctx, succeed) }},
	} {
		if n := testing.AllocsPerRun(1000, tt.give); n > 1 {
			t.Errorf("%s: successful Do allocates %v times, want ≤ 1", tt.name, n)
		}
	}
}

// The documented defaults: a 60 s window in 6 s buckets, a 30 s break and
// one probe (the ratio and minimum calls are in TestFailureRatio).
func TestDefaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New("defaults")
		run(t, b, repeat("f", 10))
		time.Sleep(54 * time.Second) // the failures are still in the window
		run(t, b, repeat("s", 9)+"f")
		if got := b.State(); got != StateOpen {
			t.Fatalf("State() = %v, want %v: 20 calls within 60 s, half failed", got, StateOpen)
		}
		err := b.Do(context.Background(), succeed)
		if d, ok := bulwark.RetryAfter(err); !errors.Is(err, ErrOpen) || !ok || d != 30*time.Second {
			t.Fatalf("Do() = %v with hint %v, want %v with hint 30s", err, d, ErrOpen)
		}
		time.Sleep(30*time.Second + time.Nanosecond)
		done, err := b.Admit(context.Background())
		if err != nil {
			t.Fatalf("after the break: Admit() = %v, want a probe", err)
		}
		if _, err := b.Admit(context.Background()); !errors.Is(err, ErrTooManyProbes) {
			t.Errorf("second probe: Admit() = %v, want %v (one probe by default)", err, ErrTooManyProbes)
		}
		done(nil)
		if got := b.State(); got != StateClosed {
			t.Fatalf("State() after one successful probe = %v, want %v", got, StateClosed)
		}

		// Outcomes age out a 6 s bucket at a time: 60 s after the first
		// failures they are gone.
		b = New("window")
		run(t, b, repeat("f", 10))
		time.Sleep(60 * time.Second)
		run(t, b, repeat("s", 9)+"f")
		if got := b.State(); got != StateClosed {
			t.Errorf("State() = %v, want %v: the first failures left the 60 s window (counts %+v)", got, StateClosed, b.Counts())
		}
	})
}

// A downstream's 429 on a half-open probe proves nothing about its health:
// the breaker neither closes nor reopens, and the next probe decides.
func TestRemoteRejectedProbeDecidesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New("probe429", WithConsecutiveFailures(1), WithMinCalls(1), WithBreakDuration(time.Second))
		_ = b.Do(context.Background(), func(context.Context) error { return bulwark.ErrRemoteUnavailable })
		if got := b.State(); got != StateOpen {
			t.Fatalf("after a failure State() = %v, want %v", got, StateOpen)
		}
		time.Sleep(time.Second + time.Nanosecond)
		if err := b.Do(context.Background(), func(context.Context) error { return bulwark.ErrRemoteRejected }); !errors.Is(err, bulwark.ErrRemoteRejected) {
			t.Fatalf("probe Do() = %v, want the downstream's ErrRemoteRejected", err)
		}
		if got := b.State(); got != StateHalfOpen {
			t.Fatalf("after a 429 probe State() = %v, want %v", got, StateHalfOpen)
		}
		if err := b.Do(context.Background(), func(context.Context) error { return nil }); err != nil {
			t.Fatalf("second probe Do() = %v, want nil", err)
		}
		if got := b.State(); got != StateClosed {
			t.Errorf("after a successful probe State() = %v, want %v", got, StateClosed)
		}
	})
}
