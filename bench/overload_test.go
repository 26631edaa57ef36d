package bench

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/failsafe-go/failsafe-go"
	fsbulkhead "github.com/failsafe-go/failsafe-go/bulkhead"
	fsratelimit "github.com/failsafe-go/failsafe-go/ratelimiter"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulkhead"
	"github.com/bulwark-go/bulwark/ratelimit"
)

// The overload scenario: a service configured for limit calls per second
// is offered four times that, for a fixed span of (fake) time, by a mix in
// which the important tiers alone stay within the limit.
const (
	limit    = 100                   // calls per second
	burst    = 20                    // tokens
	offered  = 4 * limit             // calls per second
	span     = 10 * time.Second      // of fake time
	hold     = 50 * time.Millisecond // each admitted call's work
	capacity = 16                    // bulkhead slots (~5 in use at the limit)
	arrivals = int(offered * span / time.Second)
)

// tierOf draws each arrival's priority from a fixed-seed generator (so
// that no limiter can fall into step with a cycle): per second about 20
// critical-plus, 40 critical, 20 sheddable-plus (80 % of the limit
// together) and 320 sheddable.
func tierOf(r *rand.Rand) bulwark.Priority {
	switch n := r.IntN(20); {
	case n == 0:
		return bulwark.CriticalPlus
	case n <= 2:
		return bulwark.Critical
	case n == 3:
		return bulwark.SheddablePlus
	default:
		return bulwark.Sheddable
	}
}

// tally counts the outcomes per tier (by Priority.Index).
type tally struct {
	offered, admitted, limited, full, other [bulwark.NumPriorities]atomic.Int64
}

func (c *tally) rate(p bulwark.Priority) float64 {
	return float64(c.admitted[p.Index()].Load()) / float64(c.offered[p.Index()].Load())
}

func (c *tally) refused(p bulwark.Priority) int64 {
	i := p.Index()
	return c.limited[i].Load() + c.full[i].Load() + c.other[i].Load()
}

func (c *tally) log(t *testing.T, who string) {
	t.Helper()
	for _, p := range bulwark.Priorities {
		i := p.Index()
		t.Logf("%s %-14s offered %4d admitted %4d (%5.1f %%) limited %4d full %3d",
			who, p, c.offered[i].Load(), c.admitted[i].Load(), 100*c.rate(p), c.limited[i].Load(), c.full[i].Load())
	}
}

// drive offers the load to call, one arrival every 1/offered seconds of
// fake time, each on its own goroutine, and waits for all of them.
func drive(call func(ctx context.Context) error, limited, full error) *tally {
	var (
		c  tally
		wg sync.WaitGroup
	)
	r := rand.New(rand.NewPCG(1, 2))
	for range arrivals {
		p := tierOf(r)
		i := p.Index()
		c.offered[i].Add(1)
		wg.Go(func() {
			switch err := call(bulwark.WithPriority(context.Background(), p)); {
			case err == nil:
				c.admitted[i].Add(1)
			case errors.Is(err, limited):
				c.limited[i].Add(1)
			case errors.Is(err, full):
				c.full[i].Add(1)
			default:
				c.other[i].Add(1)
			}
		})
		time.Sleep(time.Second / offered)
	}
	wg.Wait()
	return &c
}

func work(context.Context) error {
	time.Sleep(hold)
	return nil
}

// TestOverload offers 4× the configured rate through bulwark's rate limit
// and bulkhead: the critical tiers must be served at 95 % or more and the
// sheddable tier must absorb the refusals.
func TestOverload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := bulwark.Chain(ratelimit.New("overload", limit, burst), bulkhead.New("overload", capacity))
		c := drive(func(ctx context.Context) error { return p.Do(ctx, work) }, ratelimit.ErrLimited, bulkhead.ErrFull)
		c.log(t, "bulwark")

		for _, tt := range []struct {
			give    bulwark.Priority
			wantMin float64 // admission rate
			wantMax float64
		}{
			{give: bulwark.CriticalPlus, wantMin: 0.95, wantMax: 1},
			{give: bulwark.Critical, wantMin: 0.95, wantMax: 1},
			{give: bulwark.SheddablePlus, wantMin: 0.9, wantMax: 1},
			// What the limit leaves: (100 - 80) / 320 per second, plus the burst.
			{give: bulwark.Sheddable, wantMin: 0.03, wantMax: 0.12},
		} {
			if got := c.rate(tt.give); got < tt.wantMin || got > tt.wantMax {
				t.Errorf("%s: got admission rate %.3f, want in [%.2f, %.2f]", tt.give, got, tt.wantMin, tt.wantMax)
			}
		}

		var admitted, refused int64
		for _, p := range bulwark.Priorities {
			admitted += c.admitted[p.Index()].Load()
			refused += c.refused(p)
			if n := c.other[p.Index()].Load(); n != 0 {
				t.Errorf("%s: got %d errors that are no refusal, want 0", p, n)
			}
		}
		if max := int64(limit*span/time.Second) + burst; admitted > max {
			t.Errorf("got %d admitted, want at most %d (the limit over the span plus the burst)", admitted, max)
		}
		if got, want := float64(c.refused(bulwark.Sheddable))/float64(refused), 0.95; got < want {
			t.Errorf("got %.3f of the refusals on sheddable, want at least %.2f", got, want)
		}
	})
}

// TestOverloadFailsafe offers the same load to failsafe-go's rate limiter
// and bulkhead, which know no priorities: the refusals fall on every tier
// alike. It is here for the contrast in the log; the assertion only checks
// that the load really is an overload.
func TestOverloadFailsafe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ex := failsafe.With(
			fsratelimit.NewSmooth[any](limit, time.Second),
			fsbulkhead.New[any](capacity),
		)
		c := drive(func(ctx context.Context) error {
			return ex.WithContext(ctx).Run(func() error { return work(ctx) })
		}, fsratelimit.ErrExceeded, fsbulkhead.ErrFull)
		c.log(t, "failsafe-go")

		if got := c.rate(bulwark.Critical); got > 0.5 {
			t.Errorf("critical: got admission rate %.3f, want at most 0.5 from a limiter without tiers", got)
		}
	})
}
