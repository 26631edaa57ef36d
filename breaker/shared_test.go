package breaker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarktest"
	"github.com/bulwark-go/bulwark/internal/metrictest"
	"github.com/bulwark-go/bulwark/internal/redistest"
)

// Shared-state tests run against a real redis-server; they wait for the
// refresh goroutine with waitFor, bounded, never asserting how long it
// took.
const (
	testInterval = 20 * time.Millisecond
	testTimeout  = 150 * time.Millisecond
)

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10 s for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// instance is one member of a test fleet: its own client and store.
func instance(t *testing.T, srv *redistest.Server, id string, opts ...Option) *RedisState {
	t.Helper()
	c := redis.NewClient(redistest.Options(srv.Addr))
	t.Cleanup(func() { c.Close() })
	s := NewRedisState(c, append([]Option{WithInstanceID(id), WithRefreshInterval(testInterval), WithStoreTimeout(testTimeout)}, opts...)...)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSharedOpenReachesTheFleet(t *testing.T) {
	srv := redistest.Start(t)
	sa, sb := instance(t, srv, "a"), instance(t, srv, "b")
	const brk = 300 * time.Millisecond
	a := New("pay", WithSharedState(sa), WithConsecutiveFailures(1), WithBreakDuration(brk))
	b := New("pay", WithSharedState(sb), WithConsecutiveFailures(1), WithBreakDuration(brk))
	defer a.Close()
	defer b.Close()
	ctx := context.Background()

	_ = a.Do(ctx, fail)
	if got := a.State(); got != StateOpen {
		t.Fatalf("owner State() = %v, want open", got)
	}
	waitFor(t, "the other instance to open", func() bool { return b.State() == StateOpen })
	called := false
	err := b.Do(ctx, func(context.Context) error { called = true; return nil })
	if !errors.Is(err, ErrOpen) || called {
		t.Fatalf("other instance: Do() = %v (called %v), want %v without calling", err, called, ErrOpen)
	}
	if d, ok := bulwark.RetryAfter(err); !ok || d <= 0 || d > brk+testInterval {
		t.Errorf("other instance: RetryAfter = %v, %v, want in (0, break + interval]", d, ok)
	}
	if n := b.Counts(); n.Requests != 0 {
		t.Errorf("other instance counted the refused calls: %+v", n)
	}
	if s := b.Snapshot(); s.State != "open" || !strings.Contains(s.Reason, "opened by instance a") {
		t.Errorf("other instance Snapshot(): state %q reason %q", s.State, s.Reason)
	}

	// The owner probes after its break; its success closes both.
	waitFor(t, "the owner to admit a probe", func() bool { return a.Do(ctx, succeed) == nil })
	if got := a.State(); got != StateClosed {
		t.Fatalf("owner State() after its probe = %v, want closed", got)
	}
	waitFor(t, "the other instance to close", func() bool { return b.State() == StateClosed })
	if err := b.Do(ctx, succeed); err != nil {
		t.Errorf("other instance after the close: Do() = %v", err)
	}
}

func TestSharedOpenExpiresWhenTheOwnerDies(t *testing.T) {
	srv := redistest.Start(t)
	sa, sb := instance(t, srv, "a"), instance(t, srv, "b")
	const brk = 200 * time.Millisecond
	a := New("orders", WithSharedState(sa), WithConsecutiveFailures(1), WithBreakDuration(brk))
	b := New("orders", WithSharedState(sb), WithBreakDuration(time.Hour))
	defer b.Close()
	_ = a.Do(context.Background(), fail)
	waitFor(t, "the other instance to open", func() bool { return b.State() == StateOpen })
	sa.Close() // the owner dies: nobody closes, the key expires
	waitFor(t, "the open state to expire", func() bool { return b.State() == StateClosed })
	if err := b.Do(context.Background(), succeed); err != nil {
		t.Errorf("Do() after the expiry = %v", err)
	}
	a.Close()
}

func TestSharedPauseReachesTheFleet(t *testing.T) {
	srv := redistest.Start(t)
	sa, sb := instance(t, srv, "a"), instance(t, srv, "b")
	a := New("quota", WithSharedState(sa), WithPauseOnHint())
	b := New("quota", WithSharedState(sb), WithPauseOnHint())
	defer a.Close()
	defer b.Close()
	_ = a.Do(context.Background(), answer(bulwark.ErrRemoteRejected, 2*time.Second))
	waitFor(t, "the other instance to pause", func() bool { return b.State() == StatePaused })
	err := b.Do(context.Background(), succeed)
	if !errors.Is(err, ErrPaused) {
		t.Fatalf("Do() = %v, want %v", err, ErrPaused)
	}
	if d, _ := bulwark.RetryAfter(err); d <= 0 || d > 2*time.Second {
		t.Errorf("RetryAfter = %v, want in (0, 2s]", d)
	}
	waitFor(t, "the pause to end everywhere", func() bool { return b.State() == StateClosed && a.State() == StateClosed })
}

func TestSharedGroupMembers(t *testing.T) {
	srv := redistest.Start(t)
	sa, sb := instance(t, srv, "a"), instance(t, srv, "b")
	ga := NewGroup("hosts", WithSharedState(sa), WithConsecutiveFailures(1), WithBreakDuration(time.Hour))
	gb := NewGroup("hosts", WithSharedState(sb), WithConsecutiveFailures(1), WithBreakDuration(time.Hour))
	defer ga.Close()
	defer gb.Close()
	_ = gb.Do(keyed("x"), succeed) // x exists on b
	_ = gb.Do(keyed("y"), succeed)
	_ = ga.Do(keyed("x"), fail)
	waitFor(t, "b's member x to open", func() bool { return gb.State("x") == StateOpen })
	if got := gb.State("y"); got != StateClosed {
		t.Errorf("State(y) = %v, want closed: one key's state leaked to another", got)
	}
	_ = ga.Control(context.Background(), "reset", map[string]string{"key": "x"}, "fixed")
	waitFor(t, "b's member x to close", func() bool { return gb.State("x") == StateClosed })
}

func TestSharedSuccessPathNeverTouchesRedis(t *testing.T) {
	srv := redistest.Start(t)
	c := redis.NewClient(redistest.Options(srv.Addr))
	defer c.Close()
	counter := redistest.NewCounter()
	c.AddHook(counter)
	s := NewRedisState(c, WithRefreshInterval(time.Hour))
	defer s.Close()
	if n := counter.Trips(); n != 0 {
		t.Fatalf("NewRedisState made %d round trips, want none", n)
	}
	b := New("quiet", WithSharedState(s))
	defer b.Close()
	waitFor(t, "the first refresh", func() bool { return counter.Trips() >= 1 })
	before := counter.Trips()
	for range 1000 {
		if err := b.Do(context.Background(), succeed); err != nil {
			t.Fatal(err)
		}
	}
	_ = b.Do(context.Background(), fail) // a failure that does not trip
	if n := counter.Trips() - before; n != 0 {
		t.Errorf("1001 calls without a transition made %d round trips, want 0 (%v)", n, counter.Commands())
	}
}

// Redis stopped or hung: calls keep flowing on local state, none waits on
// Redis, errors show in metrics, and sharing resumes when Redis is back.
func TestSharedStateOutages(t *testing.T) {
	for _, outage := range []string{"stopped", "hung"} {
		t.Run(outage, func(t *testing.T) {
			srv := redistest.Start(t)
			m := metrictest.New(t)
			sa := instance(t, srv, "a", WithMeterProvider(m.Provider))
			sb := instance(t, srv, "b")
			a := New("dep", WithSharedState(sa), WithConsecutiveFailures(3), WithBreakDuration(time.Hour))
			b := New("dep", WithSharedState(sb), WithBreakDuration(time.Hour))
			defer a.Close()
			defer b.Close()
			ctx := context.Background()
			if outage == "stopped" {
				srv.Stop()
			} else {
				srv.Pause()
			}
			waitFor(t, "errors in metrics", func() bool {
				return m.Int64Total("bulwark.breaker.shared.errors") > 0
			})
			for i := range 200 {
				start := time.Now()
				err := a.Do(ctx, succeed)
				if took := time.Since(start); took >= testTimeout {
					t.Fatalf("call %d took %v during the outage, at least the store timeout %v", i, took, testTimeout)
				}
				if err != nil {
					t.Fatalf("call %d: Do() = %v during the outage, want nil", i, err)
				}
			}
			// Local state still works: a trips on its own.
			for range 3 {
				_ = a.Do(ctx, fail)
			}
			if got := a.State(); got != StateOpen {
				t.Fatalf("local trip during the outage: State() = %v, want open", got)
			}
			if got := b.State(); got != StateClosed {
				t.Errorf("other instance during the outage = %v, want closed (nothing shared)", got)
			}
			if outage == "stopped" {
				srv.Restart()
			} else {
				srv.Resume()
			}
			// After the outage, the open written during it reaches the
			// fleet, without a new transition.
			waitFor(t, "the other instance to open after the outage", func() bool { return b.State() == StateOpen })
			// And transitions are shared again.
			a.Reset()
			waitFor(t, "the other instance to close after the reset", func() bool { return b.State() == StateClosed })
		})
	}
}

func TestNewRedisStateRefusesBadClients(t *testing.T) {
	noTimeout := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer noTimeout.Close()
	var nilClient *redis.Client
	tests := []struct {
		name   string
		client redis.UniversalClient
		want   string
	}{
		{"nil", nil, "nil client"},
		{"typed nil", nilClient, "ContextTimeoutEnabled"},
		{"without ContextTimeoutEnabled", noTimeout, "ContextTimeoutEnabled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				v, _ := recover().(string)
				if !strings.HasPrefix(v, "breaker: NewRedisState") || !strings.Contains(v, tt.want) {
					t.Errorf("panic %q, want one naming %q", v, tt.want)
				}
			}()
			NewRedisState(tt.client)
		})
	}
	for _, f := range []func(){
		func() { WithRefreshInterval(0) }, func() { WithStoreTimeout(-1) },
		func() { WithRedisPrefix("") }, func() { WithInstanceID("") },
	} {
		func() {
			defer func() {
				if v, _ := recover().(string); !strings.HasPrefix(v, "breaker: With") {
					t.Errorf("panic %q, want one naming the option", v)
				}
			}()
			f()
		}()
	}
}

func TestSharedTwoBreakersOneName(t *testing.T) {
	srv := redistest.Start(t)
	sa, sb := instance(t, srv, "a"), instance(t, srv, "b")
	a := New("twice", WithSharedState(sa), WithConsecutiveFailures(1), WithBreakDuration(time.Hour))
	b1 := New("twice", WithSharedState(sb))
	b2 := New("twice", WithSharedState(sb))
	defer a.Close()
	defer b1.Close()
	defer b2.Close()
	_ = a.Do(context.Background(), fail)
	waitFor(t, "both breakers of the other instance to open", func() bool {
		return b1.State() == StateOpen && b2.State() == StateOpen
	})
	b1.Close() // unlinks b1 only
	a.Reset()
	waitFor(t, "the linked breaker to close", func() bool { return b2.State() == StateClosed })
}

func TestSharedContract(t *testing.T) {
	srv := redistest.Start(t)
	s := instance(t, srv, "contract")
	first := New("first", WithSharedState(s)) // starts the store's goroutine before the suite
	defer first.Close()
	bulwarktest.TestPolicy(t, func() bulwark.Policy {
		b := New("contract", WithSharedState(s), WithPauseOnHint())
		t.Cleanup(func() { b.Close() })
		return b
	})
}
