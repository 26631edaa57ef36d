package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
)

// Client-side adaptive throttling: while the backend rejects most calls,
// the client refuses a share of them itself, before they reach the
// network. The seeded random source makes the example repeatable.
func ExampleNewAdaptive() {
	r := rand.New(rand.NewPCG(1, 2))
	a := breaker.NewAdaptive("search", breaker.WithRandom(r.Float64))
	defer a.Close()
	ctx := context.Background()

	overloaded := func(context.Context) error { return bulwark.ErrRemoteRejected }
	for range 20 {
		_ = a.Do(ctx, func(context.Context) error { return nil }) // 20 accepted
	}
	for range 80 {
		_ = a.Do(ctx, overloaded) // then 80 calls, some rejected by the backend, some refused here
	}
	// 100 requests, 20 accepts, K = 2: (100 − 40) / 101.
	fmt.Printf("refusal probability %.2f\n", a.Probability(bulwark.Critical))

	var err error
	for !errors.Is(err, breaker.ErrThrottled) {
		err = a.Do(ctx, overloaded)
	}
	fmt.Println(err)
	// Output:
	// refusal probability 0.59
	// breaker: "search" is throttling
}

// hinted is a downstream's 429 with Retry-After, as bulwarkhttp's
// transport decodes it.
type hinted struct{ d time.Duration }

func (h hinted) Error() string             { return "quota exceeded" }
func (h hinted) Unwrap() error             { return bulwark.ErrRemoteRejected }
func (h hinted) RetryAfter() time.Duration { return h.d }

// With WithPauseOnHint, one caller's "429, retry after 2 s" pauses the
// breaker for every caller until exactly then.
func ExampleWithPauseOnHint() {
	b := breaker.New("partner-api", breaker.WithPauseOnHint())
	defer b.Close()
	ctx := context.Background()

	fmt.Println(b.Do(ctx, func(context.Context) error { return hinted{2 * time.Second} }))
	err := b.Do(ctx, func(context.Context) error { panic("not called while paused") })
	d, _ := bulwark.RetryAfter(err)
	fmt.Println(err, errors.Is(err, breaker.ErrPaused), d.Round(time.Second))
	fmt.Println(b.State())
	// Output:
	// quota exceeded
	// breaker: "partner-api" is paused: the downstream asked to wait true 2s
	// paused
}

// A breaker on the admin page: its snapshot, and an operator's action with
// a reason.
func ExampleBreaker_Snapshot() {
	b := breaker.New("ledger", breaker.WithConsecutiveFailures(2))
	defer b.Close()
	ctx := context.Background()
	for range 2 {
		_ = b.Do(ctx, func(context.Context) error { return bulwark.ErrRemoteUnavailable })
	}
	s := b.Snapshot()
	fmt.Println(s.Kind, s.State, s.Health, s.Source+":", s.Reason)

	_ = b.Control(ctx, "reset", nil, "ledger redeployed")
	s = b.Snapshot()
	fmt.Println(s.State, s.Health, s.Source+":", s.Reason)
	// Output:
	// breaker open fail automatic: 2 consecutive failures ≥ 2
	// closed ok manual: ledger redeployed
}

// HealthCheck is a plain func(context.Context) error for health checkers.
func ExampleBreaker_HealthCheck() {
	b := breaker.New("mail", breaker.WithConsecutiveFailures(1))
	defer b.Close()
	var check func(context.Context) error = b.HealthCheck
	fmt.Println(check(context.Background()))
	_ = b.Do(context.Background(), func(context.Context) error { return errors.New("smtp: 421") })
	fmt.Println(check(context.Background()))
	// Output:
	// <nil>
	// breaker: "mail" is open
}

// Breakers named alike on every instance share their state through Redis:
// when one instance opens "payments", the others refuse its calls within a
// refresh interval until the owner's probes close it. The client must set
// ContextTimeoutEnabled.
func ExampleNewRedisState() {
	client := redis.NewClient(&redis.Options{
		Addr:                  "127.0.0.1:6379",
		ContextTimeoutEnabled: true,
	})
	defer client.Close()
	state := breaker.NewRedisState(client, breaker.WithRefreshInterval(time.Second))
	defer state.Close()

	b := breaker.New("payments", breaker.WithSharedState(state), breaker.WithPauseOnHint())
	defer b.Close()
	_ = b.Do(context.Background(), func(context.Context) error { return nil })
}
