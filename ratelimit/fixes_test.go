package ratelimit_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/internal/metrictest"
	"github.com/bulwark-go/bulwark/ratelimit"
)

// TestKeyedOverflowRefusalIsUnavailable: a key refused because the key
// table is full was refused by this side's capacity, not its own quota:
// 503, not 429 (issue 14, item 3).
func TestKeyedOverflowRefusalIsUnavailable(t *testing.T) {
	k := ratelimit.NewKeyed("tenants", rate.Every(time.Hour), 1, ratelimit.WithMaxKeys(1))
	ctx := context.Background()
	if err := k.Do(keyCtx("a"), okFn); err != nil {
		t.Fatalf("a: Do() = %v, want nil", err)
	}
	own := k.Do(keyCtx("a"), okFn)
	if !errors.Is(own, bulwark.ErrRejected) || errors.Is(own, bulwark.ErrUnavailable) || !errors.Is(own, ratelimit.ErrLimited) {
		t.Errorf("a's own refusal = %v, want ErrLimited and ErrRejected only", own)
	}
	if err := k.Do(keyCtx("b"), okFn); err != nil {
		t.Fatalf("b: Do() = %v, want the overflow bucket's token", err)
	}
	over := k.Do(keyCtx("c"), okFn) // c's first call
	if !errors.Is(over, bulwark.ErrUnavailable) || errors.Is(over, bulwark.ErrRejected) || !errors.Is(over, ratelimit.ErrLimited) {
		t.Errorf("overflow refusal = %v, want ErrLimited and ErrUnavailable, not ErrRejected", over)
	}
	if !strings.Contains(over.Error(), "key table full") {
		t.Errorf("overflow refusal says %q, want it to say the key table is full", over)
	}
	if d, ok := bulwark.RetryAfter(over); !ok || d <= 0 {
		t.Errorf("RetryAfter(overflow refusal) = %v, %v, want a hint", d, ok)
	}
	// The no-key bucket keeps the limiter's class.
	_ = k.Do(ctx, okFn)
	if err := k.Do(ctx, okFn); !errors.Is(err, bulwark.ErrRejected) {
		t.Errorf("no-key refusal = %v, want ErrRejected", err)
	}
}

// TestKeyedTenantCannotTakeTwice: a key that drained the overflow bucket
// and then gets a bucket of its own (a full one became evictable) is
// charged what it took: within any window it gets at most burst + limit ×
// window (issue 14, item 8).
func TestKeyedTenantCannotTakeTwice(t *testing.T) {
	k := ratelimit.NewKeyed("tenants", 1, 4, ratelimit.WithMaxKeys(1))
	if n := takeN(k, "a", t0, 1); n != 1 {
		t.Fatalf("a took %d, want 1", n)
	}
	if n := takeAll(k, "b", t0); n != 4 {
		t.Fatalf("b took %d from the overflow bucket, want 4", n)
	}
	// At +1 s a is full again and evictable: b takes its place.
	t1 := t0.Add(time.Second)
	got := takeAll(k, "b", t1)
	if k.Keys() != 1 || k.QuotaAt("a", bulwark.CriticalPlus, t1).Remaining != 4 {
		t.Fatalf("a was not evicted at +1s: the test no longer reaches the case")
	}
	if total, bound := 4+got, 4+1; total > bound {
		t.Errorf("b took %d in 1s (4 from the overflow bucket, %d from its own), want at most burst + limit × 1s = %d", total, got, bound)
	}
	if got != 1 {
		t.Errorf("b's own bucket granted %d at +1s, want 1 (4 less the 3 still owed)", got)
	}
	// A key that never overflowed still gets a full bucket.
	t2 := t1.Add(10 * time.Second)
	if n := takeAll(k, "c", t2); n != 4 {
		t.Errorf("c took %d with a new bucket, want 4", n)
	}
}

func takeN(k *ratelimit.Keyed, key string, t time.Time, n int) int {
	ctx := bulwark.WithCallInfo(context.Background(), bulwark.CallInfo{Priority: bulwark.CriticalPlus, Key: key})
	got := 0
	for range n {
		if k.AllowAt(ctx, t) {
			got++
		}
	}
	return got
}

// TestOverflowMetricCountsOutcomes: a Wait that tries twice on the
// overflow bucket is one overflow decision, as it is one decision (issue
// 14, item 13).
func TestOverflowMetricCountsOutcomes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := metrictest.New(t)
		k := ratelimit.NewKeyed("m", 10, 10, ratelimit.WithMaxKeys(1), ratelimit.WithMeterProvider(r.Provider))
		for range 10 {
			_ = k.Allow(keyCtx("a")) // a's own: full again after 1 s
			_ = k.Allow(keyCtx("b")) // the overflow bucket's tokens
		}
		ctx, cancel := context.WithTimeout(keyCtx("b"), time.Second)
		defer cancel()
		if err := k.Wait(ctx); err != nil { // tries at 0 and at +100ms
			t.Fatalf("Wait() = %v, want nil", err)
		}
		if got := sums(t, r, "bulwark.ratelimit.overflow")[""]; got != 11 {
			t.Errorf("overflow = %d, want 11 (ten Allow, one Wait)", got)
		}
		if got := sums(t, r, "bulwark.ratelimit.decisions")[decision("allowed", bulwark.Critical)]; got != 21 {
			t.Errorf("allowed decisions = %d, want 21", got)
		}
	})
}

// TestRefusalsAreImmutable: a refusal one caller holds keeps its own hint
// when another caller of the same tier is refused later (issue 14, item
// 14): for a Limiter, a Keyed limiter's no-key, overflow and own buckets.
func TestRefusalsAreImmutable(t *testing.T) {
	type policy interface {
		Do(context.Context, func(context.Context) error) error
	}
	tests := []struct {
		name string
		give func() (policy, context.Context)
	}{
		{"Limiter", func() (policy, context.Context) {
			return ratelimit.New("api", 10, 1), context.Background()
		}},
		{"Keyed no key", func() (policy, context.Context) {
			return ratelimit.NewKeyed("api", 10, 1), context.Background()
		}},
		{"Keyed own", func() (policy, context.Context) {
			return ratelimit.NewKeyed("api", 10, 1), keyCtx("a")
		}},
		{"Keyed overflow", func() (policy, context.Context) {
			k := ratelimit.NewKeyed("api", 10, 1, ratelimit.WithMaxKeys(1))
			_ = k.Allow(keyCtx("a"))
			return k, keyCtx("b")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p, ctx := tt.give()
				if err := p.Do(ctx, okFn); err != nil {
					t.Fatal(err)
				}
				first := p.Do(ctx, okFn)
				time.Sleep(40 * time.Millisecond)
				second := p.Do(ctx, okFn)
				if d, _ := bulwark.RetryAfter(first); d != 100*time.Millisecond {
					t.Errorf("first refusal's RetryAfter() = %v after a second refusal, want 100ms", d)
				}
				if q, _ := bulwark.QuotaFrom(first); q.Reset != 100*time.Millisecond {
					t.Errorf("first refusal's Quota().Reset = %v, want 100ms", q.Reset)
				}
				if d, _ := bulwark.RetryAfter(second); d != 60*time.Millisecond {
					t.Errorf("second refusal's RetryAfter() = %v, want 60ms", d)
				}
			})
		})
	}
}

// TestRefusalsConcurrent: refusals returned to concurrent callers never
// change after they are returned (run under -race).
func TestRefusalsConcurrent(t *testing.T) {
	l := ratelimit.New("api", 1000, 1)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 500 {
				err := l.Do(context.Background(), okFn)
				if err == nil {
					continue
				}
				d1, _ := bulwark.RetryAfter(err)
				q1, _ := bulwark.QuotaFrom(err)
				for range 10 {
					_ = l.Do(context.Background(), okFn)
				}
				if d2, _ := bulwark.RetryAfter(err); d2 != d1 {
					t.Errorf("RetryAfter() changed from %v to %v", d1, d2)
					return
				}
				if q2, _ := bulwark.QuotaFrom(err); q2 != q1 {
					t.Errorf("Quota() changed from %+v to %+v", q1, q2)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestConstructorsValidate: every impossible argument and option panics
// at construction with a message naming it; huge values stay valid (issue
// 14, item 12).
func TestConstructorsValidate(t *testing.T) {
	tests := []struct {
		name string
		give func()
		want string // in the panic; "" for no panic
	}{
		{"New limit NaN", func() { ratelimit.New("x", rate.Limit(math.NaN()), 1) }, "New: limit"},
		{"New limit 0", func() { ratelimit.New("x", 0, 1) }, "New: limit"},
		{"New limit negative", func() { ratelimit.New("x", -1, 1) }, "New: limit"},
		{"New limit -Inf", func() { ratelimit.New("x", rate.Limit(math.Inf(-1)), 1) }, "New: limit"},
		{"New burst 0", func() { ratelimit.New("x", 1, 0) }, "New: burst"},
		{"New burst negative", func() { ratelimit.New("x", 1, -5) }, "New: burst"},
		{"New Inf burst negative", func() { ratelimit.New("x", rate.Inf, -5) }, "New: burst"},
		{"New Inf burst 0", func() { ratelimit.New("x", rate.Inf, 0) }, "New: burst"},
		{"NewKeyed limit NaN", func() { ratelimit.NewKeyed("x", rate.Limit(math.NaN()), 1) }, "NewKeyed: limit"},
		{"NewKeyed limit 0", func() { ratelimit.NewKeyed("x", 0, 1) }, "NewKeyed: limit"},
		{"NewKeyed burst 0", func() { ratelimit.NewKeyed("x", 1, 0) }, "NewKeyed: burst"},
		{"NewKeyed Inf burst negative", func() { ratelimit.NewKeyed("x", rate.Inf, -5) }, "NewKeyed: burst"},
		{"WithReserve NaN", func() { ratelimit.WithReserve(bulwark.Sheddable, math.NaN()) }, "WithReserve"},
		{"WithReserve 1", func() { ratelimit.WithReserve(bulwark.Sheddable, 1) }, "WithReserve"},
		{"WithReserve Inf", func() { ratelimit.WithReserve(bulwark.Sheddable, math.Inf(1)) }, "WithReserve"},
		{"WithReserve negative", func() { ratelimit.WithReserve(bulwark.Sheddable, -0.1) }, "WithReserve"},
		{"WithReserve bad tier", func() { ratelimit.WithReserve(bulwark.Priority(99), 0.1) }, "WithReserve"},
		{"WithMaxKeys 0", func() { ratelimit.WithMaxKeys(0) }, "WithMaxKeys"},
		{"WithMaxKeys negative", func() { ratelimit.WithMaxKeys(-1) }, "WithMaxKeys"},
		{"WithClass other", func() { ratelimit.WithClass(errors.New("x")) }, "WithClass"},
		{"huge burst", func() { ratelimit.New("x", 1e-300, math.MaxInt) }, ""},
		{"huge limit", func() { ratelimit.New("x", math.MaxFloat64, 1) }, ""},
		{"huge max keys", func() { ratelimit.NewKeyed("x", 1, 1, ratelimit.WithMaxKeys(math.MaxInt)) }, ""},
		{"Inf burst 1", func() { ratelimit.New("x", rate.Inf, 1) }, ""},
		{"WithTimeout MaxInt64", func() { ratelimit.WithTimeout(math.MaxInt64) }, ""},
		{"WithPrefix empty", func() { ratelimit.WithPrefix("") }, ""},
		{"+Inf is rate.Inf", func() {
			if l := ratelimit.New("x", rate.Limit(math.Inf(1)), 1); l.Limit() != rate.Inf || !l.AllowAt(context.Background(), t0) || !l.AllowAt(context.Background(), t0) {
				panic("+Inf is not unlimited")
			}
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := func() (msg string) {
				defer func() {
					if r := recover(); r != nil {
						msg = fmtAny(r)
						if msg == "" {
							msg = "(empty panic)"
						}
					}
				}()
				tt.give()
				return ""
			}()
			switch {
			case tt.want == "" && got != "":
				t.Errorf("panicked with %q, want no panic", got)
			case tt.want != "" && !strings.Contains(got, "ratelimit: "+tt.want):
				t.Errorf("panic = %q, want one naming %q", got, "ratelimit: "+tt.want)
			}
		})
	}
}

func fmtAny(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case error:
		return v.Error()
	}
	return "(non-string panic)"
}

// TestInfQuota: an unlimited limiter reports its burst as the quota, never
// a negative or zero one (issue 14, item 12).
func TestInfQuota(t *testing.T) {
	l := ratelimit.New("free", rate.Inf, 50)
	q := l.QuotaAt(bulwark.Sheddable, t0)
	if q.Limit != 50 || q.Remaining != 50 || q.Reset != 0 {
		t.Errorf("QuotaAt() = %+v, want q=50, r=50, t=0", q)
	}
	var rec bulwark.QuotaRecorder
	ctx := bulwark.WithCallInfo(context.Background(), bulwark.CallInfo{Priority: bulwark.Sheddable, Quota: &rec})
	if !l.Allow(ctx) {
		t.Fatal("refused by an infinite limit")
	}
	if got, _ := rec.Quota(); got.Limit != 50 || got.Remaining != 50 {
		t.Errorf("recorded quota = %+v, want q=50, r=50", got)
	}
}
