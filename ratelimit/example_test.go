package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/ratelimit"
)

// A bucket of 20 drains tier by tier: Sheddable work stops at half,
// SheddablePlus at a quarter, Critical at 5 %, and CriticalPlus gets the
// last token.
func ExampleLimiter_AllowAt() {
	l := ratelimit.New("api", 10, 20) // 10 calls/s, bursts of 20
	now := time.Now()
	for _, p := range []bulwark.Priority{bulwark.Sheddable, bulwark.SheddablePlus, bulwark.Critical, bulwark.CriticalPlus} {
		ctx := bulwark.WithPriority(context.Background(), p)
		n := 0
		for l.AllowAt(ctx, now) {
			n++
		}
		fmt.Printf("%s: %d\n", p, n)
	}
	// Output:
	// sheddable: 10
	// sheddable-plus: 5
	// critical: 4
	// critical-plus: 1
}

func ExampleLimiter_Do() {
	l := ratelimit.New("api", rate.Every(5*time.Second), 1) // one call per 5 s
	ctx := context.Background()
	hello := func(context.Context) error { fmt.Println("hello"); return nil }

	fmt.Println(l.Do(ctx, hello))
	err := l.Do(ctx, hello)
	fmt.Println(err)
	fmt.Println(errors.Is(err, ratelimit.ErrLimited), errors.Is(err, bulwark.ErrUnavailable))
	d, _ := bulwark.RetryAfter(err)
	fmt.Println("retry after", d.Round(time.Second))
	q, _ := bulwark.QuotaFrom(err)
	fmt.Printf("q=%d w=%v r=%d\n", q.Limit, q.Window, q.Remaining)
	// Output:
	// hello
	// <nil>
	// ratelimit: api: limited (critical)
	// true true
	// retry after 5s
	// q=1 w=5s r=0
}

func ExampleNewKeyed() {
	// 1 call/s per tenant, bursts of 2; at most 10 000 tenants in memory.
	k := ratelimit.NewKeyed("tenants", 1, 2, ratelimit.WithMaxKeys(10_000))
	now := time.Now()
	for _, tenant := range []string{"acme", "acme", "acme", "globex"} {
		ctx := bulwark.WithKey(context.Background(), tenant)
		fmt.Println(tenant, k.AllowAt(ctx, now))
	}
	err := k.Do(bulwark.WithKey(context.Background(), "acme"), func(context.Context) error { return nil })
	fmt.Println(errors.Is(err, bulwark.ErrRejected)) // HTTP 429
	// Output:
	// acme true
	// acme true
	// acme false
	// globex true
	// true
}

func ExampleLimiter_Wait() {
	l := ratelimit.New("batch", rate.Every(10*time.Millisecond), 1)
	ctx := context.Background()
	start := time.Now()
	for i := 0; i < 3; i++ {
		if err := l.Wait(ctx); err != nil {
			fmt.Println(err)
		}
	}
	fmt.Println(time.Since(start) >= 20*time.Millisecond)
	// Output: true
}

func ExampleWithCost() {
	type itemsKey struct{}
	items := func(ctx context.Context) int { n, _ := ctx.Value(itemsKey{}).(int); return n }
	// 100 items/s, bursts of 10 items: a call takes as many tokens as items.
	l := ratelimit.New("batch", 100, 10, ratelimit.WithCost(items))
	ctx := bulwark.WithPriority(context.Background(), bulwark.CriticalPlus)
	now := time.Now()
	fmt.Println(l.AllowAt(context.WithValue(ctx, itemsKey{}, 8), now))
	fmt.Println(l.AllowAt(context.WithValue(ctx, itemsKey{}, 3), now)) // 2 left
	err := l.Do(context.WithValue(ctx, itemsKey{}, 50), func(context.Context) error { return nil })
	retryable, _ := bulwark.Retryable(err)
	fmt.Println(errors.Is(err, ratelimit.ErrCost), retryable) // never admitted: do not retry
	// Output:
	// true
	// false
	// true false
}

func ExampleLimiter_Control() {
	l := ratelimit.New("api", 500, 100)
	reg := bulwark.NewRegistry()
	reg.Register(l)
	// What the admin page does for "set-limit".
	err := l.Control(context.Background(), "set-limit", map[string]string{"limit": "50", "burst": "10"}, "downstream degraded")
	fmt.Println(err, l.Limit(), l.Burst())
	s := reg.Snapshots()[0]
	fmt.Println(s.Kind, s.Source, s.Reason)
	fmt.Println(s.Events[0].From, "→", s.Events[0].To)
	// Output:
	// <nil> 50 10
	// ratelimit manual downstream degraded
	// limit 500/s, burst 100 → limit 50/s, burst 10
}

func ExampleNewRedis() {
	// A fleet-wide limit of 1000 calls/s, bursts of 200, in Redis. The
	// client must honour context deadlines on reads.
	client := redis.NewClient(&redis.Options{
		Addr:                  "127.0.0.1:1", // no Redis here: the store fails
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
	})
	defer client.Close()
	// While Redis is out, a local limiter decides (here a small one).
	fleet := ratelimit.NewRedis("api", client, 1000, 200,
		ratelimit.WithFallback(ratelimit.New("api-local", rate.Every(time.Minute), 2)))
	ctx := bulwark.WithPriority(context.Background(), bulwark.CriticalPlus)
	for range 3 {
		fmt.Println(fleet.Allow(ctx)) // the fallback decides
	}
	// Fail-closed refuses with 503 instead.
	strict := ratelimit.NewRedis("payments", client, 10, 10, ratelimit.WithFailClosed())
	err := strict.Do(ctx, func(context.Context) error { return nil })
	fmt.Println(errors.Is(err, ratelimit.ErrStore), errors.Is(err, bulwark.ErrUnavailable))
	// Output:
	// true
	// true
	// false
	// true true
}
