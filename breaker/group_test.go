package breaker

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
	"weak"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/internal/metrictest"
)

func keyed(key string) context.Context { return bulwark.WithKey(context.Background(), key) }

func TestGroupKeysAreIndependent(t *testing.T) {
	g := NewGroup("hosts", WithConsecutiveFailures(1))
	_ = g.Do(keyed("a"), fail)
	if err := g.Do(keyed("a"), succeed); !errors.Is(err, ErrOpen) {
		t.Errorf("key a: Do() = %v, want %v", err, ErrOpen)
	}
	if err := g.Do(keyed("b"), succeed); err != nil {
		t.Errorf("key b: Do() = %v, want nil", err)
	}
	if done, err := g.Admit(keyed("a")); !errors.Is(err, ErrOpen) || done != nil {
		t.Errorf("key a: Admit() = %v, want %v", err, ErrOpen)
	}
	if got := g.State("a"); got != StateOpen {
		t.Errorf("State(a) = %v, want %v", got, StateOpen)
	}
	if got := g.State("never seen"); got != StateClosed {
		t.Errorf("State(never seen) = %v, want %v", got, StateClosed)
	}
	// The error message names the group, never the key.
	err := g.Do(keyed("a"), succeed)
	if strings.Contains(err.Error(), `"a"`) || !strings.Contains(err.Error(), "hosts") {
		t.Errorf("error %q should name the group and not the key", err)
	}
}

func TestGroupKeyFunc(t *testing.T) {
	type hostKey struct{}
	g := NewGroup("custom", WithConsecutiveFailures(1), WithKeyFunc(func(ctx context.Context) string {
		s, _ := ctx.Value(hostKey{}).(string)
		return s
	}))
	ctx := context.WithValue(context.Background(), hostKey{}, "x")
	_ = g.Do(ctx, fail)
	if got := g.State("x"); got != StateOpen {
		t.Errorf("State(x) = %v, want %v", got, StateOpen)
	}
	if got := g.State(""); got != StateClosed {
		t.Errorf("State(\"\") = %v, want %v", got, StateClosed)
	}
}

func TestGroupEvictsIdleClosedFirst(t *testing.T) {
	g := NewGroup("lru", WithMaxKeys(3))
	for _, k := range []string{"a", "b", "c"} {
		_ = g.Do(keyed(k), succeed)
	}
	_ = g.Do(keyed("a"), succeed) // used again
	_ = g.Do(keyed("c"), succeed) // used again
	_ = g.Do(keyed("d"), succeed) // takes b's place
	tests := []struct {
		give string
		want bool
	}{{"a", true}, {"b", false}, {"c", true}, {"d", true}}
	for _, tt := range tests {
		g.mu.RLock()
		_, got := g.members[tt.give]
		g.mu.RUnlock()
		if got != tt.want {
			t.Errorf("key %s live = %v, want %v", tt.give, got, tt.want)
		}
	}
}

func TestGroupEviction100000Keys(t *testing.T) {
	c := metrictest.New(t)
	const max = 1000
	g := NewGroup("keys", WithMaxKeys(max), WithConsecutiveFailures(1), WithMeterProvider(c.Provider))
	_ = g.Do(keyed("open"), fail)
	g.ForceOpen("forced")
	g.Disable("disabled")

	// Watch the first members: once evicted they must be collectable.
	var watched []weak.Pointer[Breaker]
	for i := range max {
		_ = g.Do(keyed("k"+strconv.Itoa(i)), succeed)
	}
	g.mu.RLock()
	for k, b := range g.members {
		if strings.HasPrefix(k, "k") {
			watched = append(watched, weak.Make(b))
		}
	}
	g.mu.RUnlock()

	for i := max; i < 100_000; i++ {
		if err := g.Do(keyed("k"+strconv.Itoa(i)), succeed); err != nil {
			t.Fatalf("key %d: Do() = %v, want nil", i, err)
		}
		if n := g.Len(); n > max {
			t.Fatalf("after key %d: Len() = %d, want ≤ %d", i, n, max)
		}
	}
	for _, tt := range []struct {
		give string
		want State
	}{{"open", StateOpen}, {"forced", StateForcedOpen}, {"disabled", StateDisabled}} {
		if got := g.State(tt.give); got != tt.want {
			t.Errorf("State(%s) after 100 000 keys = %v, want %v (kept)", tt.give, got, tt.want)
		}
	}

	runtime.GC()
	runtime.GC()
	alive := 0
	for _, w := range watched {
		if w.Value() != nil {
			alive++
		}
	}
	if alive != 0 {
		t.Errorf("%d of %d evicted breakers still alive after GC", alive, len(watched))
	}

	members := c.Int64("bulwark.breaker.members")
	var total int64
	for k, v := range members {
		if strings.Contains(k, "k9") || !strings.Contains(k, "bulwark.policy.name=keys") {
			t.Errorf("members point %q: attributes must carry the group's name only", k)
		}
		total += v
	}
	if total != int64(g.Len()) {
		t.Errorf("members gauge sums to %d, want Len() = %d (%v)", total, g.Len(), members)
	}
	if got := members["bulwark.policy.name=keys,bulwark.state=open"]; got != 1 {
		t.Errorf("members{open} = %d, want 1", got)
	}
	calls := c.Int64("bulwark.breaker.calls")
	if got := calls["bulwark.outcome=success,bulwark.policy.name=keys"]; got != 100_000 {
		t.Errorf("calls{success} = %d, want 100000", got)
	}
	if len(calls) != 4 {
		t.Errorf("calls has %d series, want 4 (one per outcome, no keys): %v", len(calls), calls)
	}
}

func TestGroupOverflowWhenAllKept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := NewGroup("full", WithMaxKeys(2), WithConsecutiveFailures(1), WithBreakDuration(10*time.Second))
		_ = g.Do(keyed("a"), fail)
		time.Sleep(5 * time.Second)
		_ = g.Do(keyed("b"), fail)
		// No room: c and d share the overflow breaker.
		_ = g.Do(keyed("c"), fail)
		if err := g.Do(keyed("d"), succeed); !errors.Is(err, ErrOpen) {
			t.Errorf("key d on the tripped overflow breaker: Do() = %v, want %v", err, ErrOpen)
		}
		if n := g.Len(); n != 2 {
			t.Errorf("Len() = %d, want 2", n)
		}
		// Past its break an unused open breaker may go; b's break runs on.
		time.Sleep(6 * time.Second)
		if err := g.Do(keyed("e"), succeed); err != nil {
			t.Errorf("key e: Do() = %v, want nil (its own breaker)", err)
		}
		if got, want := g.State("a"), StateClosed; got != want {
			t.Errorf("State(a) = %v, want %v (evicted)", got, want)
		}
		if got, want := g.State("b"), StateOpen; got != want {
			t.Errorf("State(b) = %v, want %v (kept)", got, want)
		}
	})
}

func TestGroupForceOpenPastTheLimit(t *testing.T) {
	g := NewGroup("ops", WithMaxKeys(1), WithConsecutiveFailures(1))
	_ = g.Do(keyed("a"), fail)
	g.ForceOpen("b")
	if err := g.Do(keyed("b"), succeed); !errors.Is(err, ErrOpen) {
		t.Errorf("forced key: Do() = %v, want %v", err, ErrOpen)
	}
	if n := g.Len(); n != 2 {
		t.Errorf("Len() = %d, want 2", n)
	}
	g.Reset("b")
	g.Reset("missing")
	if err := g.Do(keyed("b"), succeed); err != nil {
		t.Errorf("after Reset: Do() = %v, want nil", err)
	}
	// Reset, b may go: the next new key brings the group back to the
	// limit (a is open and kept, so c gets the overflow breaker).
	_ = g.Do(keyed("c"), succeed)
	if n := g.Len(); n != 1 {
		t.Errorf("Len() = %d, want 1", n)
	}
	if got := g.State("a"); got != StateOpen {
		t.Errorf("State(a) = %v, want %v", got, StateOpen)
	}
}

func TestGroupOnStateChangeGetsKeys(t *testing.T) {
	var mu sync.Mutex
	var got []string
	g := NewGroup("named", WithConsecutiveFailures(1), WithOnStateChange(func(name string, from, to State) {
		mu.Lock()
		got = append(got, name+":"+to.String())
		mu.Unlock()
	}))
	_ = g.Do(keyed("h1"), fail)
	g.Reset("h1")
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(got, " ") != "h1:open h1:closed" {
		t.Errorf("callbacks = %v, want [h1:open h1:closed]", got)
	}
}

func TestGroupEvictedMemberReportsNothing(t *testing.T) {
	c := metrictest.New(t)
	g := NewGroup("late", WithMaxKeys(1), WithConsecutiveFailures(1), WithMeterProvider(c.Provider))
	done, err := g.Admit(keyed("a"))
	if err != nil {
		t.Fatal(err)
	}
	_ = g.Do(keyed("b"), succeed) // evicts a while its call runs
	done(errBoom)                 // trips the evicted breaker: not reported
	if got := c.Int64("bulwark.breaker.transitions"); len(got) != 0 {
		t.Errorf("transitions = %v, want none from an evicted breaker", got)
	}
	members := c.Int64("bulwark.breaker.members")
	if got := members["bulwark.policy.name=late,bulwark.state=closed"]; got != 1 {
		t.Errorf("members{closed} = %d, want 1 (%v)", got, members)
	}
	if got := members["bulwark.policy.name=late,bulwark.state=open"]; got != 0 {
		t.Errorf("members{open} = %d, want 0", got)
	}
}

func TestGroupConcurrent(t *testing.T) {
	g := NewGroup("conc", WithMaxKeys(8), WithConsecutiveFailures(3))
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 500 {
				fn := succeed
				if i%7 == 0 {
					fn = fail
				}
				_ = g.Do(keyed(strconv.Itoa((w*31+i)%20)), fn)
				if i%100 == 0 {
					g.ForceOpen("x")
					g.Reset("x")
				}
			}
		})
	}
	wg.Wait()
	if n := g.Len(); n > 9 { // 8 plus "x" when forced past the limit
		t.Errorf("Len() = %d, want ≤ 9", n)
	}
}
