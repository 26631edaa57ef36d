package ratelimit_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarktest"
	"github.com/bulwark-go/bulwark/ratelimit"
)

func TestContract(t *testing.T) {
	t.Run("Limiter", func(t *testing.T) {
		bulwarktest.TestPolicy(t, func() bulwark.Policy { return ratelimit.New("contract", 1000, 1000) })
	})
	t.Run("Keyed", func(t *testing.T) {
		bulwarktest.TestPolicy(t, func() bulwark.Policy { return ratelimit.NewKeyed("contract", 1000, 1000) })
	})
	t.Run("Inf", func(t *testing.T) {
		bulwarktest.TestPolicy(t, func() bulwark.Policy { return ratelimit.New("contract", rate.Inf, 100) })
	})
	t.Run("Chain", func(t *testing.T) {
		bulwarktest.TestPolicy(t, func() bulwark.Policy {
			return bulwark.Chain(ratelimit.New("outer", 1000, 1000), ratelimit.NewKeyed("inner", 1000, 1000))
		})
	})
}

// TestShedOrder drains a bucket of 100 to each fill level and checks which
// tiers may still take a token: with the default reserves (50, 25, 5, 0
// tokens) a tier needs its reserve + 1.
func TestShedOrder(t *testing.T) {
	tests := []struct {
		name string
		give int                         // tokens in the bucket
		want [bulwark.NumPriorities]bool // Sheddable, SheddablePlus, Critical, CriticalPlus
	}{
		{"full", 100, [4]bool{true, true, true, true}},
		{"51", 51, [4]bool{true, true, true, true}},
		{"50", 50, [4]bool{false, true, true, true}},
		{"26", 26, [4]bool{false, true, true, true}},
		{"25", 25, [4]bool{false, false, true, true}},
		{"6", 6, [4]bool{false, false, true, true}},
		{"5", 5, [4]bool{false, false, false, true}},
		{"1", 1, [4]bool{false, false, false, true}},
		{"empty", 0, [4]bool{false, false, false, false}},
	}
	reserve := [4]int64{50, 25, 5, 0}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, p := range tiers {
				l := ratelimit.New("shed", rate.Every(time.Hour), 100)
				for n := 0; n < 100-tt.give; n++ {
					if !l.AllowAt(tierCtx(bulwark.CriticalPlus), t0) {
						t.Fatalf("draining: CriticalPlus refused at %d tokens", 100-n)
					}
				}
				q := l.QuotaAt(p, t0)
				if want := max(int64(tt.give)-reserve[i], 0); q.Remaining != want {
					t.Errorf("%v: QuotaAt().Remaining = %d, want %d", p, q.Remaining, want)
				}
				if got := l.AllowAt(tierCtx(p), t0); got != tt.want[i] {
					t.Errorf("%v: AllowAt() = %v, want %v", p, got, tt.want[i])
				}
			}
		})
	}
}

func TestReserves(t *testing.T) {
	tests := []struct {
		name  string
		burst int
		opts  []ratelimit.Option
		want  [bulwark.NumPriorities]int // tokens each tier can take from a full bucket
	}{
		{"defaults", 100, nil, [4]int{50, 75, 95, 100}},
		{"rounded down", 10, nil, [4]int{5, 8, 10, 10}}, // reserves 5, 2.5→2, 0.5→0, 0
		{"burst one", 1, nil, [4]int{1, 1, 1, 1}},
		{"none", 100, []ratelimit.Option{
			ratelimit.WithReserve(bulwark.Sheddable, 0), ratelimit.WithReserve(bulwark.SheddablePlus, 0),
			ratelimit.WithReserve(bulwark.Critical, 0),
		}, [4]int{100, 100, 100, 100}},
		{"raised to the tier above", 100, []ratelimit.Option{ratelimit.WithReserve(bulwark.Critical, 0.6)},
			[4]int{40, 40, 40, 100}},
		{"critical-plus reserve", 100, []ratelimit.Option{ratelimit.WithReserve(bulwark.CriticalPlus, 0.1)},
			[4]int{50, 75, 90, 90}},
		{"whole percentages exact", 100, []ratelimit.Option{ // 0.57×100 and 0.29×100 are just below 57 and 29 in float64
			ratelimit.WithReserve(bulwark.Sheddable, 0.57), ratelimit.WithReserve(bulwark.SheddablePlus, 0.29),
		}, [4]int{43, 71, 95, 100}},
		{"a fraction just below 1 leaves one token", 10, []ratelimit.Option{
			ratelimit.WithReserve(bulwark.Sheddable, 0.9999999999),
		}, [4]int{1, 8, 10, 10}},
		{"last wins", 100, []ratelimit.Option{
			ratelimit.WithReserve(bulwark.Sheddable, 0.9), nil, ratelimit.WithReserve(bulwark.Sheddable, 0.3),
		}, [4]int{70, 75, 95, 100}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, p := range tiers {
				l := ratelimit.New("reserve", rate.Every(time.Hour), tt.burst, tt.opts...)
				got := 0
				for l.AllowAt(tierCtx(p), t0) {
					got++
					if got > tt.burst {
						t.Fatalf("%v took more than the burst", p)
					}
				}
				if got != tt.want[i] {
					t.Errorf("%v took %d tokens from a full bucket, want %d", p, got, tt.want[i])
				}
			}
		})
	}
}

func TestPanics(t *testing.T) {
	tests := []struct {
		name string
		give func()
	}{
		{"zero limit", func() { ratelimit.New("x", 0, 1) }},
		{"negative limit", func() { ratelimit.NewKeyed("x", -1, 1) }},
		{"zero burst", func() { ratelimit.New("x", 1, 0) }},
		{"invalid tier", func() { ratelimit.WithReserve(bulwark.Priority(7), 0.5) }},
		{"fraction one", func() { ratelimit.WithReserve(bulwark.Critical, 1) }},
		{"fraction NaN", func() { ratelimit.WithReserve(bulwark.Critical, math.NaN()) }},
		{"negative fraction", func() { ratelimit.WithReserve(bulwark.Critical, -0.1) }},
		{"class", func() { ratelimit.WithClass(errors.New("other")) }},
		{"max keys", func() { ratelimit.WithMaxKeys(0) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r == nil {
					t.Error("no panic, want one")
				}
			}()
			tt.give()
		})
	}
}

func TestRefusal(t *testing.T) {
	tests := []struct {
		name      string
		give      func() bulwark.Policy
		wantClass error
	}{
		{"Limiter", func() bulwark.Policy { return ratelimit.New("api", 2, 10) }, bulwark.ErrUnavailable},
		{"Limiter WithClass", func() bulwark.Policy {
			return ratelimit.New("api", 2, 10, ratelimit.WithClass(bulwark.ErrRejected))
		}, bulwark.ErrRejected},
		{"Keyed", func() bulwark.Policy { return ratelimit.NewKeyed("api", 2, 10) }, bulwark.ErrRejected},
		{"Keyed WithClass", func() bulwark.Policy {
			return ratelimit.NewKeyed("api", 2, 10, ratelimit.WithClass(bulwark.ErrUnavailable), ratelimit.WithClass(nil))
		}, bulwark.ErrUnavailable},
	}
	for _, tt := range tests {
		for _, key := range []string{"", "tenant"} {
			t.Run(tt.name+"/key="+key, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					p := tt.give()
					// Sheddable may take 5 of 10 tokens.
					ctx := bulwark.WithCallInfo(context.Background(), bulwark.CallInfo{Priority: bulwark.Sheddable, Key: key})
					for i := 0; i < 5; i++ {
						if err := p.Do(ctx, okFn); err != nil {
							t.Fatalf("call %d: Do() = %v, want nil", i, err)
						}
					}
					called := false
					err := p.Do(ctx, func(context.Context) error { called = true; return nil })
					if called {
						t.Error("fn ran on a refusal")
					}
					if !errors.Is(err, ratelimit.ErrLimited) || !errors.Is(err, tt.wantClass) {
						t.Fatalf("Do() = %v, want ErrLimited and %v", err, tt.wantClass)
					}
					if other := bulwark.ErrUnavailable; other != tt.wantClass && errors.Is(err, other) {
						t.Errorf("Do() = %v wraps %v too, want one class", err, other)
					}
					var le *ratelimit.LimitedError
					if !errors.As(err, &le) || le.Priority() != bulwark.Sheddable {
						t.Errorf("Do() = %v, want a *LimitedError for sheddable", err)
					}
					// 5 tokens left, Sheddable needs 6: one token at 2/s.
					if d, ok := bulwark.RetryAfter(err); !ok || d != 500*time.Millisecond {
						t.Errorf("RetryAfter() = %v, %v, want 500ms", d, ok)
					}
					q, ok := bulwark.QuotaFrom(err)
					want := bulwark.Quota{Name: "api", Limit: 10, Window: 5 * time.Second, Remaining: 0, Reset: 500 * time.Millisecond}
					if !ok || q != want {
						t.Errorf("QuotaFrom() = %+v, %v, want %+v", q, ok, want)
					}
					a := p.(bulwark.Admitter)
					if done, err := a.Admit(ctx); done != nil || !errors.Is(err, ratelimit.ErrLimited) {
						t.Errorf("Admit() = %p, %v, want nil, ErrLimited", done, err)
					}
					// A more important tier is still served.
					if err := p.Do(tierCtxKey(bulwark.Critical, key), okFn); err != nil {
						t.Errorf("Critical: Do() = %v, want nil", err)
					}
					time.Sleep(500 * time.Millisecond)
					if err := p.Do(ctx, okFn); err == nil {
						t.Error("Sheddable admitted after 0.5 s although Critical took a token meanwhile")
					}
					time.Sleep(500 * time.Millisecond)
					if err := p.Do(ctx, okFn); err != nil {
						t.Errorf("Sheddable after 1 s: Do() = %v, want nil", err)
					}
				})
			})
		}
	}
}

func tierCtxKey(p bulwark.Priority, key string) context.Context {
	return bulwark.WithCallInfo(context.Background(), bulwark.CallInfo{Priority: p, Key: key})
}

func TestRefusalDoesNotAllocate(t *testing.T) {
	l := ratelimit.New("api", rate.Every(time.Hour), 1)
	ctx := context.Background()
	_ = l.Do(ctx, okFn)
	allocs := testing.AllocsPerRun(100, func() {
		if err := l.Do(ctx, okFn); err == nil {
			t.Fatal("admitted")
		}
		if _, err := l.Admit(ctx); err == nil {
			t.Fatal("admitted")
		}
	})
	if allocs != 0 {
		t.Errorf("refusal allocated %v times, want 0", allocs)
	}
	k := ratelimit.NewKeyed("api", rate.Every(time.Hour), 1)
	_ = k.Do(ctx, okFn) // the no-key bucket
	allocs = testing.AllocsPerRun(100, func() {
		if err := k.Do(ctx, okFn); err == nil {
			t.Fatal("admitted")
		}
	})
	if allocs != 0 {
		t.Errorf("no-key refusal allocated %v times, want 0", allocs)
	}
}

func TestQuotaRecordedOnAdmission(t *testing.T) {
	tests := []struct {
		name string
		give bulwark.Priority
		want bulwark.Quota
	}{
		// 10 tokens at 2/s; after the take 9 are left.
		{"critical-plus", bulwark.CriticalPlus, bulwark.Quota{Name: "api", Limit: 10, Window: 5 * time.Second, Remaining: 9}},
		{"critical", bulwark.Critical, bulwark.Quota{Name: "api", Limit: 10, Window: 5 * time.Second, Remaining: 9}},
		{"sheddable", bulwark.Sheddable, bulwark.Quota{Name: "api", Limit: 10, Window: 5 * time.Second, Remaining: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, p := range []bulwark.Policy{ratelimit.New("api", 2, 10), ratelimit.NewKeyed("api", 2, 10)} {
				var rec bulwark.QuotaRecorder
				ctx := bulwark.WithCallInfo(context.Background(), bulwark.CallInfo{Priority: tt.give, Key: "k", Quota: &rec})
				if err := p.Do(ctx, okFn); err != nil {
					t.Fatalf("%T: Do() = %v, want nil", p, err)
				}
				if q, ok := rec.Quota(); !ok || q != tt.want {
					t.Errorf("%T: recorded %+v, %v, want %+v", p, q, ok, tt.want)
				}
			}
		})
	}
	t.Run("last token", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := ratelimit.New("api", 2, 10)
			for i := 0; i < 4; i++ {
				l.Allow(tierCtx(bulwark.Sheddable))
			}
			var rec bulwark.QuotaRecorder
			ctx := bulwark.WithCallInfo(context.Background(), bulwark.CallInfo{Priority: bulwark.Sheddable, Quota: &rec})
			if !l.Allow(ctx) {
				t.Fatal("fifth Sheddable call refused, want admitted")
			}
			want := bulwark.Quota{Name: "api", Limit: 10, Window: 5 * time.Second, Remaining: 0, Reset: 500 * time.Millisecond}
			if q, _ := rec.Quota(); q != want {
				t.Errorf("recorded %+v, want %+v", q, want)
			}
		})
	})
}

func TestWait(t *testing.T) {
	t.Run("blocks until the tier may take a token", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := ratelimit.New("api", 10, 10)
			for l.Allow(tierCtx(bulwark.CriticalPlus)) {
			}
			start := time.Now()
			// SheddablePlus keeps 2 tokens: it needs 3, which take 0.3 s.
			if err := l.Wait(tierCtx(bulwark.SheddablePlus)); err != nil {
				t.Fatalf("Wait() = %v, want nil", err)
			}
			if got, want := time.Since(start), 300*time.Millisecond; got != want {
				t.Errorf("Wait() took %v, want %v", got, want)
			}
			if got := l.QuotaAt(bulwark.CriticalPlus, time.Now()).Remaining; got != 2 {
				t.Errorf("tokens left after Wait = %d, want 2", got)
			}
		})
	})
	t.Run("context ends", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := ratelimit.New("api", 1, 1)
			l.Allow(context.Background())
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				time.Sleep(100 * time.Millisecond)
				cancel()
			}()
			if err := l.Wait(ctx); !errors.Is(err, context.Canceled) {
				t.Errorf("Wait() = %v, want context.Canceled", err)
			}
			if err := l.Wait(ctx); !errors.Is(err, context.Canceled) {
				t.Errorf("Wait(ended ctx) = %v, want context.Canceled", err)
			}
		})
	})
	t.Run("deadline before the next token", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := ratelimit.New("api", 1, 1)
			l.Allow(context.Background())
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			start := time.Now()
			err := l.Wait(ctx)
			if !errors.Is(err, ratelimit.ErrLimited) {
				t.Errorf("Wait() = %v, want ErrLimited", err)
			}
			if d, _ := bulwark.RetryAfter(err); d != time.Second {
				t.Errorf("RetryAfter() = %v, want 1s", d)
			}
			if waited := time.Since(start); waited != 0 {
				t.Errorf("Wait() waited %v, want an answer at once", waited)
			}
		})
	})
	t.Run("keyed", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			k := ratelimit.NewKeyed("api", 4, 1)
			a, b := bulwark.WithKey(context.Background(), "a"), bulwark.WithKey(context.Background(), "b")
			k.Allow(a)
			start := time.Now()
			if err := k.Wait(b); err != nil || time.Since(start) != 0 {
				t.Errorf("Wait(b) = %v after %v, want nil at once", err, time.Since(start))
			}
			if err := k.Wait(a); err != nil || time.Since(start) != 250*time.Millisecond {
				t.Errorf("Wait(a) = %v after %v, want nil after 250ms", err, time.Since(start))
			}
			ctx, cancel := context.WithTimeout(a, 100*time.Millisecond)
			defer cancel()
			if err := k.Wait(ctx); !errors.Is(err, ratelimit.ErrLimited) || !errors.Is(err, bulwark.ErrRejected) {
				t.Errorf("Wait(a, short deadline) = %v, want ErrLimited", err)
			}
		})
	})
}

// TestTimeGoesBack checks that an earlier time than one already seen does
// not let the bucket refill an interval twice.
func TestTimeGoesBack(t *testing.T) {
	l := ratelimit.New("api", 1, 2)
	ctx := tierCtx(bulwark.CriticalPlus)
	l.AllowAt(ctx, t0.Add(10*time.Second))
	l.AllowAt(ctx, t0.Add(10*time.Second))
	if l.AllowAt(ctx, t0) {
		t.Fatal("AllowAt(earlier) admitted from an empty bucket")
	}
	if !l.AllowAt(ctx, t0.Add(11*time.Second)) {
		t.Fatal("AllowAt(+1s) refused, want one token")
	}
	if l.AllowAt(ctx, t0.Add(11*time.Second)) {
		t.Error("AllowAt(+1s) admitted twice: an interval was counted twice")
	}
}

func TestInf(t *testing.T) {
	l := ratelimit.New("free", rate.Inf, 100)
	for i := 0; i < 1000; i++ {
		if !l.Allow(tierCtx(bulwark.Sheddable)) {
			t.Fatalf("call %d refused by an infinite limit", i)
		}
	}
	k := ratelimit.NewKeyed("free", rate.Inf, 100)
	for i := 0; i < 1000; i++ {
		if !k.Allow(bulwark.WithKey(context.Background(), "a")) {
			t.Fatalf("call %d refused by an infinite keyed limit", i)
		}
	}
	if k.Keys() != 0 {
		t.Errorf("Keys() = %d, want 0: an infinite limit needs no buckets", k.Keys())
	}
}

func TestSuccessDoesNotAllocate(t *testing.T) {
	l := ratelimit.New("api", 1e9, 1<<30)
	k := ratelimit.NewKeyed("api", 1e9, 1<<30)
	ctx := context.Background()
	keyed := bulwark.WithKey(ctx, "tenant")
	_ = k.Do(keyed, okFn) // the key's bucket exists from here on
	for _, tt := range []struct {
		name string
		give func()
	}{
		{"Limiter.Do", func() { _ = l.Do(ctx, okFn) }},
		{"Limiter.Admit", func() { done, _ := l.Admit(ctx); done(nil) }},
		{"Keyed.Do hit", func() { _ = k.Do(keyed, okFn) }},
		{"Keyed.Do no key", func() { _ = k.Do(ctx, okFn) }},
	} {
		if allocs := testing.AllocsPerRun(100, tt.give); allocs != 0 {
			t.Errorf("%s allocated %v times per call, want 0", tt.name, allocs)
		}
	}
}

// TestRefusalsKeepTheirTier: a Limiter's preallocated refusals are one per
// tier, so a refusal of another tier never changes the numbers (and so the
// headers) of one already returned.
func TestRefusalsKeepTheirTier(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := ratelimit.New("api", 10, 100)
		drainTo := func(tokens int64) {
			for l.QuotaAt(bulwark.CriticalPlus, time.Now()).Remaining > tokens {
				if err := l.Do(tierCtx(bulwark.CriticalPlus), okFn); err != nil {
					t.Fatal(err)
				}
			}
		}
		drainTo(40)
		shed := l.Do(tierCtx(bulwark.Sheddable), okFn) // needs 51: 1.1 s
		drainTo(20)
		plus := l.Do(tierCtx(bulwark.SheddablePlus), okFn) // needs 26: 0.6 s
		for _, tt := range []struct {
			name string
			give error
			tier bulwark.Priority
			want time.Duration
		}{
			{"sheddable", shed, bulwark.Sheddable, 1100 * time.Millisecond},
			{"sheddable-plus", plus, bulwark.SheddablePlus, 600 * time.Millisecond},
		} {
			var le *ratelimit.LimitedError
			if !errors.As(tt.give, &le) || le.Priority() != tt.tier {
				t.Fatalf("%s: Do() = %v, want a *LimitedError of %v", tt.name, tt.give, tt.tier)
			}
			q, _ := bulwark.QuotaFrom(tt.give)
			if d, _ := bulwark.RetryAfter(tt.give); d != tt.want || q.Reset != tt.want || q.Remaining != 0 {
				t.Errorf("%s: RetryAfter() = %v, Quota() = %+v, want %v, r=0 and t=%v", tt.name, d, q, tt.want, tt.want)
			}
		}
	})
}
