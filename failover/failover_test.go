package failover_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/bulwarktest"
	"github.com/bulwark-go/bulwark/failover"
	"github.com/bulwark-go/bulwark/internal/metrictest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var errDown = fmt.Errorf("test: endpoint down: %w", bulwark.ErrRemoteUnavailable)

// fleet is a set of fake endpoints whose health a test switches.
type fleet struct {
	down  map[string]*atomic.Bool
	calls map[string]*atomic.Int64
}

func newFleet(eps ...string) *fleet {
	f := &fleet{down: map[string]*atomic.Bool{}, calls: map[string]*atomic.Int64{}}
	for _, e := range eps {
		f.down[e], f.calls[e] = new(atomic.Bool), new(atomic.Int64)
	}
	return f
}

// call is an fn that calls the endpoint the Set chose.
func (f *fleet) call(ctx context.Context) error {
	ep, ok := failover.EndpointFrom(ctx)
	if !ok {
		return errors.New("test: no endpoint in the context")
	}
	f.calls[ep].Add(1)
	if f.down[ep].Load() {
		return errDown
	}
	return nil
}

func (f *fleet) counts(eps ...string) []int64 {
	var out []int64
	for _, e := range eps {
		out = append(out, f.calls[e].Swap(0))
	}
	return out
}

// trip is the breaker setting of these tests: three failures in a row
// open it for the break.
func trip(brk time.Duration) failover.Option {
	return failover.WithBreakerOptions(breaker.WithConsecutiveFailures(3), breaker.WithBreakDuration(brk))
}

func TestPriorityFailoverAndFailback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFleet("a", "b", "c")
		s := failover.New("pay", []string{"a", "b", "c"}, trip(10*time.Second), failover.WithMinDwell(30*time.Second))
		defer s.Close()
		ctx := context.Background()
		for range 10 {
			if err := s.Do(ctx, f.call); err != nil {
				t.Fatalf("Do() = %v, want nil", err)
			}
		}
		if got := f.counts("a", "b", "c"); got[0] != 10 || got[1]+got[2] != 0 {
			t.Fatalf("calls = %v, want all 10 on the primary", got)
		}

		f.down["a"].Store(true)
		failed := 0
		for range 20 {
			if s.Do(ctx, f.call) != nil {
				failed++
			}
		}
		if failed != 3 {
			t.Errorf("failed calls after the primary went down = %d, want 3 (the breaker's threshold)", failed)
		}
		if got := f.counts("a", "b", "c"); got[0] != 3 || got[1] != 17 || got[2] != 0 {
			t.Errorf("calls = %v, want [3 17 0]: the rest moved to the first standby", got)
		}
		if st := s.Status(); st.Active != 1 || st.Endpoint != "b" || st.Endpoints[0].Breaker != breaker.StateOpen {
			t.Errorf("Status() = %+v, want active 1 (b) with a's breaker open", st)
		}

		// The primary heals; its break ends after 10 s but the dwell
		// keeps traffic on b for 30 s.
		f.down["a"].Store(false)
		time.Sleep(11 * time.Second)
		for range 5 {
			_ = s.Do(ctx, f.call)
		}
		if got := f.counts("a", "b"); got[0] != 0 || got[1] != 5 {
			t.Errorf("calls during the dwell = %v, want [0 5]", got)
		}
		time.Sleep(20 * time.Second)
		for range 5 {
			if err := s.Do(ctx, f.call); err != nil {
				t.Fatalf("Do() after fail-back = %v", err)
			}
		}
		if got := f.counts("a", "b"); got[0] != 5 {
			t.Errorf("calls after the dwell = %v, want all 5 back on a", got)
		}
		if st := s.Status(); st.Active != 0 {
			t.Errorf("Status().Active = %d after fail-back, want 0", st.Active)
		}
		snap := s.Snapshot()
		var reasons []string
		for _, e := range snap.Events {
			reasons = append(reasons, e.From+"→"+e.To+" "+e.Source)
		}
		if len(snap.Events) != 2 || snap.Events[0].To != "1" || snap.Events[1].To != "0" || snap.Events[1].Source != "automatic" {
			t.Errorf("events = %v, want a switch to 1 then a fail-back to 0", reasons)
		}
	})
}

func TestAllDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFleet("a", "b")
		s := failover.New("pay", []string{"a", "b"}, trip(10*time.Second))
		defer s.Close()
		f.down["a"].Store(true)
		f.down["b"].Store(true)
		ctx := context.Background()
		for range 3 {
			_ = s.Do(ctx, f.call) // trips a
		}
		time.Sleep(4 * time.Second)
		for range 3 {
			_ = s.Do(ctx, f.call) // trips b, 4 s later
		}
		called := false
		err := s.Do(ctx, func(context.Context) error { called = true; return nil })
		if called {
			t.Error("fn ran with every endpoint out")
		}
		if !errors.Is(err, failover.ErrNoEndpoint) || !errors.Is(err, bulwark.ErrUnavailable) {
			t.Fatalf("Do() = %v, want ErrNoEndpoint wrapping ErrUnavailable", err)
		}
		if d, ok := bulwark.RetryAfter(err); !ok || d != 6*time.Second {
			t.Errorf("RetryAfter = %v, %v, want 6s (a's break ends first)", d, ok)
		}
		if err := s.HealthCheck(ctx); err == nil {
			t.Error("HealthCheck() = nil with every endpoint out")
		}
		if s.Snapshot().Health != "fail" {
			t.Errorf("Snapshot().Health = %q, want fail", s.Snapshot().Health)
		}
	})
}

func TestRoundRobin(t *testing.T) {
	f := newFleet("a", "b", "c")
	s := failover.New("replicas", []string{"a", "b", "c"}, failover.WithMode(failover.RoundRobin), trip(time.Minute))
	defer s.Close()
	ctx := context.Background()
	for range 300 {
		if err := s.Do(ctx, f.call); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.counts("a", "b", "c"); got[0] != 100 || got[1] != 100 || got[2] != 100 {
		t.Errorf("calls = %v, want 100 each", got)
	}
	f.down["b"].Store(true)
	for range 300 {
		_ = s.Do(ctx, f.call)
	}
	if got := f.counts("a", "b", "c"); got[1] != 3 || got[0]+got[2] != 297 || got[0] < 140 || got[2] < 140 {
		t.Errorf("calls with b down = %v, want b tripped after 3 and the rest spread over a and c", got)
	}
}

func TestPin(t *testing.T) {
	f := newFleet("a", "b")
	s := failover.New("pay", []string{"a", "b"})
	defer s.Close()
	ctx := context.Background()
	if err := s.Pin("b"); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		_ = s.Do(ctx, f.call)
	}
	if got := f.counts("a", "b"); got[0] != 0 || got[1] != 4 {
		t.Errorf("calls while pinned to b = %v, want [0 4]", got)
	}
	if st := s.Status(); st.Pinned != "b" {
		t.Errorf("Status().Pinned = %q, want b", st.Pinned)
	}
	s.Unpin()
	_ = s.Do(ctx, f.call)
	if got := f.counts("a", "b"); got[0] != 1 {
		t.Errorf("calls after Unpin = %v, want back on a", got)
	}
	if err := s.Pin("nowhere"); !errors.Is(err, bulwark.ErrInvalidControl) {
		t.Errorf("Pin(unknown) = %v, want ErrInvalidControl", err)
	}
	// From the admin page, with a reason.
	if err := s.Control(ctx, "pin", map[string]string{"endpoint": "b"}, "region a maintenance"); err != nil {
		t.Fatal(err)
	}
	snap := s.Snapshot()
	if snap.State != "pinned to b" || snap.Source != "manual" || snap.Reason != "region a maintenance" {
		t.Errorf("snapshot = %q %q %q, want pinned to b / manual / the reason", snap.State, snap.Source, snap.Reason)
	}
	if err := s.Control(ctx, "unpin", nil, "done"); err != nil || s.Status().Pinned != "" {
		t.Errorf("Control(unpin) = %v, pinned %q", err, s.Status().Pinned)
	}
	if err := s.Control(ctx, "explode", nil, "x"); !errors.Is(err, bulwark.ErrInvalidControl) {
		t.Errorf("Control(unknown) = %v, want ErrInvalidControl", err)
	}
	if acts := s.Actions(); len(acts) != 2 || len(acts[0].Params[0].Choices) != 2 {
		t.Errorf("Actions() = %+v, want pin (with both endpoints as choices) and unpin", acts)
	}
}

// notReplayable is a failure that says it must not be sent again.
type notReplayable struct{ error }

func (notReplayable) Retryable() bool { return false }
func (e notReplayable) Unwrap() error { return e.error }

func TestRetryOnNext(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name      string
		give      error
		wantCalls int
	}{
		{"replayable failure", errDown, 3},
		{"unclassified failure", errors.New("500"), 1},
		{"says retryable", retryable{errors.New("x")}, 3},
		{"not replayable", notReplayable{errDown}, 1},
		{"downstream quota", fmt.Errorf("429: %w", bulwark.ErrRemoteRejected), 1},
		{"local refusal", fmt.Errorf("full: %w", bulwark.ErrUnavailable), 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := failover.New("pay", []string{"a", "b", "c"}, failover.WithRetryOnNext())
			defer s.Close()
			var seen []string
			err := s.Do(ctx, func(ctx context.Context) error {
				ep, _ := failover.EndpointFrom(ctx)
				seen = append(seen, ep)
				return tt.give
			})
			if len(seen) != tt.wantCalls || !errors.Is(err, tt.give) {
				t.Errorf("Do() ran on %v and returned %v, want %d calls and the attempt's error", seen, err, tt.wantCalls)
			}
		})
	}
	t.Run("success on the second", func(t *testing.T) {
		s := failover.New("pay", []string{"a", "b"}, failover.WithRetryOnNext())
		defer s.Close()
		n := 0
		err := s.Do(ctx, func(ctx context.Context) error {
			n++
			if ep, _ := failover.EndpointFrom(ctx); ep == "a" {
				return errDown
			}
			return nil
		})
		if err != nil || n != 2 {
			t.Errorf("Do() = %v after %d calls, want nil after 2", err, n)
		}
	})
	t.Run("caller gone", func(t *testing.T) {
		s := failover.New("pay", []string{"a", "b"}, failover.WithRetryOnNext())
		defer s.Close()
		cctx, cancel := context.WithCancel(ctx)
		n := 0
		err := s.Do(cctx, func(context.Context) error { n++; cancel(); return errDown })
		// Cut short by its context (SPEC): the caller's error, as
		// package retry returns it.
		if n != 1 || !errors.Is(err, context.Canceled) {
			t.Errorf("Do() ran %d times, returned %v; want once, context.Canceled", n, err)
		}
	})
}

func TestProbeResetsBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFleet("a", "b")
		var probes atomic.Int64
		s := failover.New("pay", []string{"a", "b"}, trip(time.Hour),
			failover.WithProbe(func(ctx context.Context, ep string) error {
				probes.Add(1)
				if f.down[ep].Load() {
					return errDown
				}
				return nil
			}, 5*time.Second))
		defer s.Close()
		ctx := context.Background()
		f.down["a"].Store(true)
		for range 10 {
			_ = s.Do(ctx, f.call)
		}
		synctest.Wait()
		if got := probes.Load(); got != 1 {
			t.Fatalf("probes = %d, want 1 (at most one per interval)", got)
		}
		if s.Breaker(0).State() != breaker.StateOpen {
			t.Fatal("a failing probe closed the breaker")
		}
		f.down["a"].Store(false)
		time.Sleep(5 * time.Second)
		_ = s.Do(ctx, f.call) // finds a open: probes it
		synctest.Wait()
		if s.Breaker(0).State() != breaker.StateClosed {
			t.Fatalf("breaker after a passing probe = %v, want closed (without waiting out the 1 h break)", s.Breaker(0).State())
		}
		f.counts("a", "b")
		for range 3 {
			_ = s.Do(ctx, f.call)
		}
		if got := f.counts("a", "b"); got[0] != 3 {
			t.Errorf("calls after the probe = %v, want back on a", got)
		}
	})
}

func TestPanics(t *testing.T) {
	for _, tt := range []struct {
		name string
		give func()
	}{
		{"no endpoints", func() { failover.New("x", nil) }},
		{"empty endpoint", func() { failover.New("x", []string{"a", ""}) }},
		{"duplicate", func() { failover.New("x", []string{"a", "a"}) }},
		{"too many", func() { failover.New("x", make([]string, failover.MaxEndpoints+1)) }},
		{"bad mode", func() { failover.WithMode(7) }},
		{"negative dwell", func() { failover.WithMinDwell(-1) }},
		{"nil probe", func() { failover.WithProbe(nil, time.Second) }},
		{"zero interval", func() { failover.WithProbe(func(context.Context, string) error { return nil }, 0) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r == nil {
					t.Error("no panic")
				} else if s := fmt.Sprint(r); len(s) < 9 || s[:9] != "failover:" {
					t.Errorf("panic %q does not name the package", s)
				}
			}()
			tt.give()
		})
	}
	// Huge durations are valid "never" values.
	s := failover.New("x", []string{"a"}, failover.WithMinDwell(math.MaxInt64), failover.WithProbe(func(context.Context, string) error { return nil }, math.MaxInt64))
	if err := s.Do(context.Background(), func(context.Context) error { return nil }); err != nil {
		t.Errorf("Do() with huge durations = %v", err)
	}
	s.Close()
}

func TestMetrics(t *testing.T) {
	r := metrictest.New(t)
	f := newFleet("a", "b")
	s := failover.New("pay", []string{"a", "b"}, trip(time.Minute), failover.WithMeterProvider(r.Provider))
	defer s.Close()
	r.Keep(s)
	f.down["a"].Store(true)
	for range 5 {
		_ = s.Do(context.Background(), f.call)
	}
	if got := r.Int64Total("bulwark.failover.active", "bulwark.policy.name", "pay"); got != 1 {
		t.Errorf("bulwark.failover.active = %d, want 1", got)
	}
	if got := r.Int64Total("bulwark.failover.switches", "bulwark.policy.name", "pay", "bulwark.reason", "breaker"); got != 1 {
		t.Errorf("switches{breaker} = %d, want 1", got)
	}
	_ = s.Pin("a")
	if got := r.Int64Total("bulwark.failover.switches", "bulwark.policy.name", "pay", "bulwark.reason", "manual"); got != 1 {
		t.Errorf("switches{manual} = %d, want 1", got)
	}
	if got := r.Int64Total("bulwark.breaker.state", "bulwark.policy.name", "pay/0"); got != 2 {
		t.Errorf("breaker pay/0 state = %d, want 2 (open), reported under its own name", got)
	}
}

func TestContract(t *testing.T) {
	bulwarktest.TestPolicy(t, func() bulwark.Policy {
		return failover.New("contract", []string{"a", "b"})
	})
	bulwarktest.TestPolicy(t, func() bulwark.Policy {
		return failover.New("contract-rr", []string{"a", "b", "c"}, failover.WithMode(failover.RoundRobin), failover.WithRetryOnNext())
	})
}

type retryable struct{ error }

func (retryable) Retryable() bool { return true }
