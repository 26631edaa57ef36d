package bench

import (
	"context"
	"errors"
	"testing"
	"time"

	fsbreaker "github.com/failsafe-go/failsafe-go/circuitbreaker"
	fsratelimit "github.com/failsafe-go/failsafe-go/ratelimiter"
	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/bulkhead"
	"github.com/bulwark-go/bulwark/degrade"
	"github.com/bulwark-go/bulwark/ratelimit"
)

// BenchmarkRefusal is the cost of saying no: every scenario refuses every
// call (the target is ≤ 100 ns for bulwark's policies). An op returns nil
// when the call was refused as it should be.
func BenchmarkRefusal(b *testing.B) { runGroup(b, "Refusal") }

var errAdmitted = errors.New("bench: admitted, want a refusal")

func refused(err error) error {
	if err == nil {
		return errAdmitted
	}
	return nil
}

func init() {
	ctx := context.Background()
	groups = append(groups, group{name: "Refusal", scenarios: []scenario{
		{"bulwark.breaker", func(tb cleaner) func() func() error {
			b := newBreaker(tb)
			b.ForceOpen()
			return same(func() error { return refused(b.Do(ctx, nop)) })
		}},
		{"bulwark.bulkhead", func(cleaner) func() func() error {
			bh := bulkhead.New("bench-full", 1)
			if _, ok := bh.TryAcquire(); !ok {
				panic("bench: the only slot was taken")
			}
			return same(func() error { return refused(bh.Do(ctx, nop)) })
		}},
		{"bulwark.ratelimit", func(cleaner) func() func() error {
			l := ratelimit.New("bench-empty", rate.Every(time.Hour), 1)
			_ = l.Do(ctx, nop)
			return same(func() error { return refused(l.Do(ctx, nop)) })
		}},
		{"bulwark.degrade", func(cleaner) func() func() error {
			s := degrade.NewSwitch("bench-on")
			s.Set(true, "bench")
			return same(func() error { return refused(s.Do(ctx, nop)) })
		}},
		{"bulwark.Chain", func(tb cleaner) func() func() error {
			// The stack of the Stack comparison, refused by its first
			// member.
			l := ratelimit.New("bench-empty", rate.Every(time.Hour), 1)
			_ = l.Do(ctx, nop)
			p := bulwark.Chain(l, bulkhead.New("bench", slots), newBreaker(tb))
			return same(func() error { return refused(p.Do(ctx, nop)) })
		}},
		{"bulwark.breaker.Adaptive", func(cleaner) func() func() error {
			a := breaker.NewAdaptive("bench-adaptive", breaker.WithMinCalls(1))
			fail := func(context.Context) error { return bulwark.ErrRemoteUnavailable }
			for range 1000 {
				_ = a.Do(ctx, fail)
			}
			// Nearly every call is refused now; count the rare admitted
			// one as a refusal of the downstream, not as a failure here.
			return same(func() error { _ = a.Do(ctx, fail); return nil })
		}},
		{"gobreaker.Execute", func(cleaner) func() func() error {
			cb := gobreaker.NewCircuitBreaker[any](gobreaker.Settings{Name: "bench", ReadyToTrip: func(gobreaker.Counts) bool { return true }})
			_, _ = cb.Execute(func() (any, error) { return nil, errRefused })
			return same(func() error { _, err := cb.Execute(nopGB); return refused(err) })
		}},
		{"failsafe.breaker.permit", func(cleaner) func() func() error {
			cb := fsbreaker.NewWithDefaults[any]()
			cb.Open()
			return same(func() error { return refused(allowed(cb.TryAcquirePermit())) })
		}},
		{"failsafe.ratelimit.permit", func(cleaner) func() func() error {
			l := fsratelimit.NewBursty[any](1, time.Hour)
			_ = l.TryAcquirePermit()
			return same(func() error { return refused(allowed(l.TryAcquirePermit())) })
		}},
		{"rate.Allow", func(cleaner) func() func() error {
			l := rate.NewLimiter(rate.Every(time.Hour), 1)
			l.Allow()
			return same(func() error { return refused(allowed(l.Allow())) })
		}},
	}})
}
