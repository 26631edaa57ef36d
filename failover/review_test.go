package failover_test

import (
	"context"
	"errors"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/failover"
	"github.com/bulwark-go/bulwark/internal/metrictest"
)

// A dwell of math.MaxInt64 means "never fail back by itself": the deadline
// must saturate, not overflow into the past.
func TestMaxDwell(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFleet("a", "b")
		s := failover.New("pay", []string{"a", "b"}, trip(10*time.Second), failover.WithMinDwell(math.MaxInt64))
		defer s.Close()
		ctx := context.Background()
		f.down["a"].Store(true)
		for range 5 {
			_ = s.Do(ctx, f.call)
		}
		f.down["a"].Store(false)
		f.counts("a", "b")
		time.Sleep(time.Minute)
		for range 5 {
			if err := s.Do(ctx, f.call); err != nil {
				t.Fatal(err)
			}
		}
		if got := f.counts("a", "b"); got[0] != 0 || got[1] != 5 {
			t.Errorf("calls after the primary healed = %v, want [0 5]: an endless dwell keeps traffic on b", got)
		}
	})
}

// A long probe interval and break duration do not overflow either.
func TestMaxProbeInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var probes atomic.Int32
		s := failover.New("pay", []string{"a", "b"},
			failover.WithBreakerOptions(breaker.WithConsecutiveFailures(1), breaker.WithBreakDuration(math.MaxInt64)),
			failover.WithProbe(func(context.Context, string) error { probes.Add(1); return nil }, math.MaxInt64))
		defer s.Close()
		ctx := context.Background()
		_ = s.Do(ctx, func(context.Context) error { return errDown })
		for range 3 {
			if err := s.Do(ctx, func(context.Context) error { return nil }); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
		}
		if n := probes.Load(); n != 1 {
			t.Errorf("probes = %d, want 1 (the first finding; the interval is endless)", n)
		}
	})
}

// Probes started by calls racing Close: Close returns only when no probe
// runs, and none starts afterwards.
func TestProbesRaceClose(t *testing.T) {
	for range 50 {
		var running, after atomic.Int32
		var closed atomic.Bool
		s := failover.New("pay", []string{"a", "b"},
			failover.WithBreakerOptions(breaker.WithConsecutiveFailures(1), breaker.WithBreakDuration(time.Hour)),
			failover.WithProbe(func(ctx context.Context, _ string) error {
				if closed.Load() {
					after.Add(1)
				}
				running.Add(1)
				defer running.Add(-1)
				<-ctx.Done()
				return ctx.Err()
			}, time.Nanosecond))
		ctx := context.Background()
		_ = s.Do(ctx, func(context.Context) error { return errDown }) // a opens
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 20 {
					_ = s.Do(ctx, func(context.Context) error { return nil })
					runtime.Gosched()
				}
			}()
		}
		runtime.Gosched()
		_ = s.Close()
		closed.Store(true)
		if n := running.Load(); n != 0 {
			t.Fatalf("%d probes still running after Close returned", n)
		}
		wg.Wait()
		if n := after.Load(); n != 0 {
			t.Fatalf("%d probes started after Close returned", n)
		}
		if err := s.Close(); err != nil { // twice is fine
			t.Fatal(err)
		}
	}
	goleak.VerifyNone(t)
}

// A pin made while calls are in flight on another endpoint holds: their
// success is no fail-back away from the pinned endpoint.
func TestPinWhileInFlight(t *testing.T) {
	mr := metrictest.New(t)
	s := failover.New("pay", []string{"a", "b"}, failover.WithMeterProvider(mr.Provider))
	defer s.Close()
	mr.Keep(s)
	ctx := context.Background()
	// A call starts on a; b is pinned meanwhile.
	started, release := make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() {
		done <- s.Do(ctx, func(ctx context.Context) error {
			close(started)
			<-release
			return nil
		})
	}()
	<-started
	if err := s.Pin("b"); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := s.Status(); st.Active != 1 || st.Pinned != "b" {
		t.Errorf("Status() = active %d pinned %q after an in-flight call on a ended, want active 1 pinned b", st.Active, st.Pinned)
	}
	if n := mr.Int64Total("bulwark.failover.switches", "bulwark.reason", "failback"); n != 0 {
		t.Errorf("switches{failback} = %d, want 0", n)
	}
	f := newFleet("a", "b")
	_ = s.Do(ctx, f.call)
	if got := f.counts("a", "b"); got[1] != 1 {
		t.Errorf("calls = %v, want the next on b", got)
	}
}

// A pinned endpoint whose breaker is open: the Set's refusal is
// ErrNoEndpoint with the breaker's hint, as when every endpoint is out.
func TestPinnedOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := failover.New("pay", []string{"a", "b"}, trip(10*time.Second))
		defer s.Close()
		ctx := context.Background()
		if err := s.Pin("a"); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			_ = s.Do(ctx, func(context.Context) error { return errDown })
		}
		err := s.Do(ctx, func(context.Context) error { return nil })
		if !errors.Is(err, failover.ErrNoEndpoint) || !errors.Is(err, bulwark.ErrUnavailable) {
			t.Fatalf("Do() pinned to an open endpoint = %v, want ErrNoEndpoint", err)
		}
		if d, ok := bulwark.RetryAfter(err); !ok || d <= 0 || d > 10*time.Second {
			t.Errorf("RetryAfter = %v, %v, want the breaker's remaining break", d, ok)
		}
	})
}

// flipCtx is a context that ends after its Err has been asked n times:
// cancellation landing between two steps of the Set.
type flipCtx struct {
	context.Context
	mu   sync.Mutex
	left int
	done chan struct{}
}

func newFlipCtx(n int) *flipCtx {
	return &flipCtx{Context: context.Background(), left: n, done: make(chan struct{})}
}

func (c *flipCtx) Done() <-chan struct{} { return c.done }
func (c *flipCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.left > 0 {
		c.left--
		if c.left == 0 {
			close(c.done)
		}
		return nil
	}
	return context.Canceled
}

// A call cut short by its context between attempts returns an error
// errors.Is finds the context's in, not the previous attempt's failure.
func TestCancelBetweenAttempts(t *testing.T) {
	for n := 1; n <= 6; n++ {
		s := failover.New("pay", []string{"a", "b", "c"}, failover.WithRetryOnNext())
		ctx := newFlipCtx(n)
		calls := 0
		err := s.Do(ctx, func(context.Context) error { calls++; return errDown })
		_ = s.Close()
		if ctx.Err() == nil {
			continue // the Set asked fewer times: it finished first
		}
		if calls < 3 && !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled after %d Err checks (%d calls): Do() = %v, want context.Canceled", n, calls, err)
		}
	}
}

// A Set used inside its own fn, panics and Goexit in fn: each counts as
// a failure of the endpoint that ran it, and the Set stays usable.
func TestNestedAndPanics(t *testing.T) {
	s := failover.New("pay", []string{"a", "b"}, trip(time.Hour))
	defer s.Close()
	ctx := context.Background()
	var inner string
	err := s.Do(ctx, func(ctx context.Context) error {
		outer, _ := failover.EndpointFrom(ctx)
		return s.Do(ctx, func(ctx context.Context) error {
			inner, _ = failover.EndpointFrom(ctx)
			if outer != "a" {
				return errors.New("outer endpoint " + outer)
			}
			return nil
		})
	})
	if err != nil || inner != "a" {
		t.Fatalf("nested Do() = %v (inner endpoint %q), want nil on a", err, inner)
	}
	for range 2 {
		func() {
			defer func() { _ = recover() }()
			_ = s.Do(ctx, func(context.Context) error { panic("boom") })
		}()
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = s.Do(ctx, func(context.Context) error { runtime.Goexit(); return nil })
	}()
	wg.Wait()
	if st := s.Breaker(0).State(); st != breaker.StateOpen {
		t.Errorf("a's breaker = %v after two panics and a Goexit, want open", st)
	}
	f := newFleet("a", "b")
	if err := s.Do(ctx, f.call); err != nil {
		t.Fatalf("Do() after panics = %v", err)
	}
	if got := f.counts("a", "b"); got[1] != 1 {
		t.Errorf("calls = %v, want on b", got)
	}
}

// Round-robin with one endpoint refusing: the others share evenly.
func TestRoundRobinFairWithRefusal(t *testing.T) {
	f := newFleet("a", "b", "c", "d")
	s := failover.New("pay", []string{"a", "b", "c", "d"}, failover.WithMode(failover.RoundRobin))
	defer s.Close()
	s.Breaker(1).ForceOpen()
	for range 300 {
		if err := s.Do(context.Background(), f.call); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.counts("a", "b", "c", "d"); got[0] != 100 || got[1] != 0 || got[2] != 100 || got[3] != 100 {
		t.Errorf("calls = %v, want [100 0 100 100]", got)
	}
}

// An endpoint an operator forced open (maintenance) is not probed: the
// probe could not bring it back, and it would hit a region being worked on.
func TestNoProbeOfForcedOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var probes atomic.Int32
		s := failover.New("pay", []string{"a", "b"},
			failover.WithProbe(func(context.Context, string) error { probes.Add(1); return nil }, time.Second))
		defer s.Close()
		s.Breaker(0).ForceOpen()
		for range 5 {
			if err := s.Do(context.Background(), func(context.Context) error { return nil }); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * time.Second)
			synctest.Wait()
		}
		if n := probes.Load(); n != 0 {
			t.Errorf("probes of a forced-open endpoint = %d, want 0", n)
		}
		if st := s.Breaker(0).State(); st != breaker.StateForcedOpen {
			t.Errorf("a's breaker = %v, want still forced open", st)
		}
	})
}

// The most endpoints a Set takes, every one failing: retry on next tries
// each once and stops.
func TestMaxEndpointsRetryOnNext(t *testing.T) {
	eps := make([]string, failover.MaxEndpoints)
	for i := range eps {
		eps[i] = "ep" + string(rune('A'+i/26)) + string(rune('a'+i%26))
	}
	s := failover.New("pay", eps, failover.WithRetryOnNext())
	defer s.Close()
	seen := map[string]int{}
	err := s.Do(context.Background(), func(ctx context.Context) error {
		ep, _ := failover.EndpointFrom(ctx)
		seen[ep]++
		return errDown
	})
	if !errors.Is(err, errDown) || len(seen) != failover.MaxEndpoints {
		t.Errorf("Do() = %v after %d endpoints, want errDown after all %d", err, len(seen), failover.MaxEndpoints)
	}
	for ep, n := range seen {
		if n != 1 {
			t.Errorf("%s tried %d times, want once", ep, n)
		}
	}
}

// One transient failure retried on the next endpoint is not a cut-over:
// the primary's breaker never opened, so traffic stays on it (no dwell on
// the standby) and no switch is counted.
func TestRetryOnNextIsNoSwitch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mr := metrictest.New(t)
		f := newFleet("a", "b")
		s := failover.New("pay", []string{"a", "b"}, trip(10*time.Second), failover.WithRetryOnNext(),
			failover.WithMinDwell(time.Minute), failover.WithMeterProvider(mr.Provider))
		defer s.Close()
		mr.Keep(s)
		ctx := context.Background()
		f.down["a"].Store(true)
		if err := s.Do(ctx, f.call); err != nil {
			t.Fatalf("Do() = %v, want b's success", err)
		}
		f.down["a"].Store(false)
		f.counts("a", "b")
		for range 5 {
			if err := s.Do(ctx, f.call); err != nil {
				t.Fatal(err)
			}
		}
		if got := f.counts("a", "b"); got[0] != 5 {
			t.Errorf("calls after one transient failure = %v, want all 5 on a", got)
		}
		if st := s.Status(); st.Active != 0 {
			t.Errorf("Status().Active = %d, want 0", st.Active)
		}
		for _, r := range []string{"breaker", "failback"} {
			if n := mr.Int64Total("bulwark.failover.switches", "bulwark.reason", r); n != 0 {
				t.Errorf("switches{%s} = %d, want 0", r, n)
			}
		}
	})
}
