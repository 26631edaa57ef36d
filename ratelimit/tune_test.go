package ratelimit_test

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/ratelimit"
)

// tunable is what both limiters offer for run-time changes.
type tunable interface {
	AllowAt(context.Context, time.Time) bool
	SetLimitAt(time.Time, rate.Limit) error
	SetBurstAt(time.Time, int) error
	SetLimit(rate.Limit) error
	SetBurst(int) error
	Limit() rate.Limit
	Burst() int
}

func tunables() []struct {
	name string
	make func(limit rate.Limit, burst int) tunable
	ctx  context.Context
} {
	return []struct {
		name string
		make func(limit rate.Limit, burst int) tunable
		ctx  context.Context
	}{
		{"Limiter", func(l rate.Limit, b int) tunable { return ratelimit.New("t", l, b) }, tierCtx(bulwark.CriticalPlus)},
		{"Keyed", func(l rate.Limit, b int) tunable { return ratelimit.NewKeyed("t", l, b) },
			bulwark.WithCallInfo(context.Background(), bulwark.CallInfo{Priority: bulwark.CriticalPlus, Key: "a"})},
		{"Keyed no key", func(l rate.Limit, b int) tunable { return ratelimit.NewKeyed("t", l, b) }, tierCtx(bulwark.CriticalPlus)},
	}
}

func countAt(l tunable, ctx context.Context, t time.Time) int {
	n := 0
	for l.AllowAt(ctx, t) {
		n++
		if n > 10000 {
			panic("countAt: no end")
		}
	}
	return n
}

func TestSetLimitAndBurst(t *testing.T) {
	for _, tt := range tunables() {
		t.Run(tt.name, func(t *testing.T) {
			l := tt.make(1, 2)
			if n := countAt(l, tt.ctx, t0); n != 2 {
				t.Fatalf("took %d at t0, want 2", n)
			}
			// Faster from t0 on: one token each 100 ms.
			if err := l.SetLimitAt(t0, 10); err != nil {
				t.Fatal(err)
			}
			if n := countAt(l, tt.ctx, t0.Add(100*time.Millisecond)); n != 1 {
				t.Errorf("took %d at +100ms after SetLimit(10), want 1", n)
			}
			// A larger burst from +1s: the bucket then fills to 5.
			if err := l.SetBurstAt(t0.Add(time.Second), 5); err != nil {
				t.Fatal(err)
			}
			if n := countAt(l, tt.ctx, t0.Add(2*time.Second)); n != 5 {
				t.Errorf("took %d at +2s after SetBurst(5), want 5", n)
			}
			// A smaller burst caps what the bucket holds.
			if err := l.SetBurstAt(t0.Add(2*time.Second), 1); err != nil {
				t.Fatal(err)
			}
			if n := countAt(l, tt.ctx, t0.Add(10*time.Second)); n != 1 {
				t.Errorf("took %d at +10s after SetBurst(1), want 1", n)
			}
			if l.Limit() != 10 || l.Burst() != 1 {
				t.Errorf("Limit(), Burst() = %v, %d, want 10, 1", l.Limit(), l.Burst())
			}
			// To unlimited and back: the bucket starts full again.
			if err := l.SetLimitAt(t0.Add(10*time.Second), rate.Inf); err != nil {
				t.Fatal(err)
			}
			for i := range 100 {
				if !l.AllowAt(tt.ctx, t0.Add(10*time.Second)) {
					t.Fatalf("call %d refused by an infinite limit", i)
				}
			}
			if err := l.SetLimitAt(t0.Add(11*time.Second), 1); err != nil {
				t.Fatal(err)
			}
			if n := countAt(l, tt.ctx, t0.Add(11*time.Second)); n != 1 {
				t.Errorf("took %d after leaving rate.Inf, want the full bucket of 1", n)
			}
		})
	}
}

func TestSetLimitRejectsBadValues(t *testing.T) {
	for _, tt := range tunables() {
		t.Run(tt.name, func(t *testing.T) {
			l := tt.make(5, 3)
			for _, bad := range []rate.Limit{0, -1, rate.Limit(math.NaN()), rate.Limit(math.Inf(-1))} {
				if err := l.SetLimit(bad); err == nil {
					t.Errorf("SetLimit(%v) = nil, want an error", bad)
				}
			}
			for _, bad := range []int{0, -1, math.MinInt} {
				if err := l.SetBurst(bad); err == nil {
					t.Errorf("SetBurst(%d) = nil, want an error", bad)
				}
			}
			if l.Limit() != 5 || l.Burst() != 3 {
				t.Errorf("Limit(), Burst() = %v, %d after bad values, want 5, 3 unchanged", l.Limit(), l.Burst())
			}
		})
	}
}

// TestSetLimitConcurrent changes limit and burst while calls are made
// (run under -race): every call is decided, and the last change stays.
func TestSetLimitConcurrent(t *testing.T) {
	for _, tt := range tunables() {
		t.Run(tt.name, func(t *testing.T) {
			l := tt.make(1000, 10)
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 300 {
						if w == 0 && i%10 == 0 {
							_ = l.SetLimit(rate.Limit(100 + i))
							_ = l.SetBurst(1 + i%7)
							continue
						}
						_ = l.AllowAt(tt.ctx, time.Now())
					}
				}()
			}
			wg.Wait()
			if err := l.SetBurst(3); err != nil {
				t.Fatal(err)
			}
			if l.Burst() != 3 {
				t.Errorf("Burst() = %d, want 3", l.Burst())
			}
			if n := countAt(l, tt.ctx, time.Now().Add(time.Hour)); n != 3 {
				t.Errorf("took %d an hour later, want the burst of 3", n)
			}
		})
	}
}

// costCtx is a context of tier p whose call costs n.
type costKey struct{}

func costCtx(p bulwark.Priority, key string, n int) context.Context {
	ctx := bulwark.WithCallInfo(context.Background(), bulwark.CallInfo{Priority: p, Key: key})
	return context.WithValue(ctx, costKey{}, n)
}

func costOf(ctx context.Context) int {
	n, _ := ctx.Value(costKey{}).(int)
	return n
}

func TestWithCost(t *testing.T) {
	type limiter interface {
		AllowAt(context.Context, time.Time) bool
		Do(context.Context, func(context.Context) error) error
		Wait(context.Context) error
	}
	for _, tt := range []struct {
		name string
		give limiter
		key  string
	}{
		{"Limiter", ratelimit.New("c", 1, 10, ratelimit.WithCost(costOf), ratelimit.WithCost(nil)), ""},
		{"Keyed", ratelimit.NewKeyed("c", 1, 10, ratelimit.WithCost(costOf)), "a"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := tt.give
			t0 := time.Now() // Do and Wait decide at time.Now()
			// Sheddable keeps a reserve of 5 of 10: cost 3 is admitted once
			// (7 left), then refused (4 < 5).
			if !l.AllowAt(costCtx(bulwark.Sheddable, tt.key, 3), t0) {
				t.Fatal("first cost-3 Sheddable call refused, want admitted")
			}
			if l.AllowAt(costCtx(bulwark.Sheddable, tt.key, 3), t0) {
				t.Fatal("second cost-3 Sheddable call admitted, want refused by its reserve")
			}
			// CriticalPlus may take the 7.
			if !l.AllowAt(costCtx(bulwark.CriticalPlus, tt.key, 7), t0) {
				t.Fatal("cost-7 CriticalPlus call refused with 7 tokens, want admitted")
			}
			// The hint is exact for the cost: 4 tokens at 1/s from empty.
			err := l.Do(costCtx(bulwark.CriticalPlus, tt.key, 4), okFn)
			var le *ratelimit.LimitedError
			if !errors.As(err, &le) {
				t.Fatalf("Do(cost 4) = %v, want a *LimitedError", err)
			}
			if d, _ := bulwark.RetryAfter(err); d < 3900*time.Millisecond || d > 4*time.Second {
				t.Errorf("RetryAfter(cost 4) = %v, want about 4s (from the refusal's instant)", d)
			}
			// Cost 0 is free.
			if !l.AllowAt(costCtx(bulwark.Sheddable, tt.key, 0), t0) {
				t.Error("cost-0 call refused, want admitted")
			}
			// Above the burst, or negative: refused at once, not retryable,
			// Wait included (no deadline).
			for _, n := range []int{11, math.MaxInt, -1} {
				ctx := costCtx(bulwark.CriticalPlus, tt.key, n)
				for name, err := range map[string]error{
					"Do":   l.Do(ctx, okFn),
					"Wait": l.Wait(ctx),
				} {
					var ce *ratelimit.CostError
					if !errors.As(err, &ce) || ce.Cost != n || !errors.Is(err, ratelimit.ErrCost) || !errors.Is(err, bulwark.ErrRejected) {
						t.Errorf("%s(cost %d) = %v, want a *CostError wrapping ErrCost and ErrRejected", name, n, err)
					}
					if r, ok := bulwark.Retryable(err); !ok || r {
						t.Errorf("%s(cost %d): Retryable() = %v, %v, want false, true", name, n, r, ok)
					}
					if _, ok := bulwark.RetryAfter(err); ok {
						t.Errorf("%s(cost %d) carries a hint, want none", name, n)
					}
					if errors.Is(err, ratelimit.ErrLimited) {
						t.Errorf("%s(cost %d) wraps ErrLimited, want not: waiting cannot help", name, n)
					}
				}
			}
		})
	}
}

// TestWithCostTiers: with a cost, a tier is refused only if every lower
// tier of the same cost would be too, and the reserves hold exactly.
func TestWithCostTiers(t *testing.T) {
	l := ratelimit.New("c", rate.Every(time.Hour), 100, ratelimit.WithCost(costOf))
	took := [bulwark.NumPriorities]int{}
	for _, p := range tiers {
		for l.AllowAt(costCtx(p, "", 7), t0) {
			took[p.Index()] += 7
		}
	}
	// Reserves 50, 25, 5, 0 of 100: each tier stops before crossing its own.
	want := [bulwark.NumPriorities]int{49, 21, 21, 7} // 100 → 51 → 30 → 9 → 2
	for i, w := range want {
		if took[i] != w {
			t.Errorf("%v took %d, want %d", tiers[i], took[i], w)
		}
	}
}

// TestWaitCostAboveLoweredBurst: a Wait for 5 tokens ends with a
// *CostError when the burst is lowered below 5 while it waits, rather
// than waiting forever.
func TestWaitCostAboveLoweredBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, l := range []interface {
			Wait(context.Context) error
			SetBurst(int) error
			Allow(context.Context) bool
		}{
			ratelimit.New("c", 1, 10, ratelimit.WithCost(costOf)),
			ratelimit.NewKeyed("c", 1, 10, ratelimit.WithCost(costOf)),
		} {
			if !l.Allow(costCtx(bulwark.CriticalPlus, "a", 10)) {
				t.Fatal("draining call refused")
			}
			errc := make(chan error, 1)
			go func() { errc <- l.Wait(costCtx(bulwark.CriticalPlus, "a", 5)) }()
			time.Sleep(time.Second)
			if err := l.SetBurst(2); err != nil {
				t.Fatal(err)
			}
			err := <-errc
			var ce *ratelimit.CostError
			if !errors.As(err, &ce) || ce.Burst != 2 || ce.Cost != 5 {
				t.Errorf("Wait(cost 5) after SetBurst(2) = %v, want a *CostError (cost 5, burst 2)", err)
			}
		}
	})
}

// TestOverflowChargeCountsCost: what a key takes from the overflow bucket
// at a cost is charged in full to its next own bucket.
func TestOverflowChargeCountsCost(t *testing.T) {
	k := ratelimit.NewKeyed("c", 1, 10, ratelimit.WithMaxKeys(1), ratelimit.WithCost(costOf))
	if !k.AllowAt(costCtx(bulwark.CriticalPlus, "a", 1), t0) {
		t.Fatal("a refused")
	}
	if !k.AllowAt(costCtx(bulwark.CriticalPlus, "b", 8), t0) { // the overflow bucket
		t.Fatal("b's cost-8 call refused by the full overflow bucket")
	}
	// At +1 s a is full and evicted: b's own bucket starts at 10 − (8 − 1).
	t1 := t0.Add(time.Second)
	if k.AllowAt(costCtx(bulwark.CriticalPlus, "b", 4), t1) {
		t.Error("b took 4 more at +1s, want at most 3: it owes 7 to the overflow bucket")
	}
	if !k.AllowAt(costCtx(bulwark.CriticalPlus, "b", 3), t1) {
		t.Error("b's cost-3 call at +1s refused, want admitted (10 − 7)")
	}
}
