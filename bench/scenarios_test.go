package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/afex/hystrix-go/hystrix"
	"github.com/failsafe-go/failsafe-go"
	fsbulkhead "github.com/failsafe-go/failsafe-go/bulkhead"
	fsbreaker "github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/failsafehttp"
	fsratelimit "github.com/failsafe-go/failsafe-go/ratelimiter"
	fsretry "github.com/failsafe-go/failsafe-go/retrypolicy"
	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/bulkhead"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/ratelimit"
	"github.com/bulwark-go/bulwark/retry"
)

// The success path is measured: the limits are far above what a benchmark
// can reach, so no policy ever refuses.
const (
	hugeRate  = 1e9     // calls per second
	hugeBurst = 1 << 20 // tokens
	slots     = 1024    // bulkhead capacity
)

// The protected work: an indirect call that does nothing, so that the
// figures are the policies' overhead alone.
var (
	nop   = func(context.Context) error { return nil }
	nopFS = func() error { return nil }
	nopGB = func() (any, error) { return nil, nil }

	errRefused = errors.New("bench: refused")
)

// cleaner is the part of testing.TB the scenarios need.
type cleaner interface{ Cleanup(func()) }

// A scenario is one side of a comparison. setup builds the subject once
// and returns a maker of workers: each worker is one goroutine's operation,
// so that per-goroutine state (an HTTP request) is never shared.
type scenario struct {
	name  string
	setup func(tb cleaner) func() func() error
}

// A group is one comparison: its bulwark scenarios and their peers.
type group struct {
	name      string
	scenarios []scenario
}

// same returns a maker whose workers all share op.
func same(op func() error) func() func() error {
	return func() func() error { return op }
}

func newBreaker(tb cleaner) *breaker.Breaker {
	b := breaker.New("bench")
	tb.Cleanup(func() { _ = b.Close() })
	return b
}

func newStack(tb cleaner) bulwark.Policy {
	return bulwark.Chain(
		ratelimit.New("bench", hugeRate, hugeBurst),
		bulkhead.New("bench", slots),
		newBreaker(tb),
	)
}

// failsafeStack is failsafe-go's rate limiter, bulkhead and circuit breaker
// in the same order as bulwark's stack (the first is outermost).
func failsafeStack[R any]() []failsafe.Policy[R] {
	return []failsafe.Policy[R]{
		fsratelimit.NewBursty[R](hugeRate, time.Second),
		fsbulkhead.New[R](slots),
		fsbreaker.NewWithDefaults[R](),
	}
}

var groups = []group{
	{name: "Stack", scenarios: []scenario{
		{"bare", func(cleaner) func() func() error {
			ctx := context.Background()
			return same(func() error { return nop(ctx) })
		}},
		{"bulwark.Chain", func(tb cleaner) func() func() error {
			ctx, p := context.Background(), newStack(tb)
			return same(func() error { return p.Do(ctx, nop) })
		}},
		{"failsafe.Run", func(cleaner) func() func() error {
			ex := failsafe.With(failsafeStack[any]()...)
			return same(func() error { return ex.Run(nopFS) })
		}},
		{"failsafe.WithContext.Run", func(cleaner) func() func() error {
			ctx, ex := context.Background(), failsafe.With(failsafeStack[any]()...)
			return same(func() error { return ex.WithContext(ctx).Run(nopFS) })
		}},
		// hystrix-go has a breaker and a concurrency cap, no rate limiter;
		// every call runs fn on a new goroutine. Its tickets come back
		// after Do returned, so it gets far more of them than the others'
		// slots, lest the parallel benchmark run out.
		{"hystrix.Do", func(cleaner) func() func() error {
			hystrix.ConfigureCommand("bench", hystrix.CommandConfig{
				Timeout:               int(time.Minute / time.Millisecond),
				MaxConcurrentRequests: 1 << 16,
			})
			return same(func() error { return hystrix.Do("bench", nopFS, nil) })
		}},
	}},
	{name: "Breaker", scenarios: []scenario{
		{"bulwark.Do", func(tb cleaner) func() func() error {
			ctx, b := context.Background(), newBreaker(tb)
			return same(func() error { return b.Do(ctx, nop) })
		}},
		{"bulwark.Admit", func(tb cleaner) func() func() error {
			ctx, b := context.Background(), newBreaker(tb)
			return same(func() error {
				done, err := b.Admit(ctx)
				if err != nil {
					return err
				}
				done(nil)
				return nil
			})
		}},
		{"gobreaker.Execute", func(cleaner) func() func() error {
			cb := gobreaker.NewCircuitBreaker[any](gobreaker.Settings{Name: "bench"})
			return same(func() error { _, err := cb.Execute(nopGB); return err })
		}},
		// gobreaker with bulwark's default rolling window (bulwark's
		// breaker is built on gobreaker's two-step breaker).
		{"gobreaker.Execute/window", func(cleaner) func() func() error {
			cb := gobreaker.NewCircuitBreaker[any](gobreaker.Settings{
				Name:         "bench",
				Interval:     breaker.DefaultWindow,
				BucketPeriod: breaker.DefaultWindow / breaker.DefaultBuckets,
			})
			return same(func() error { _, err := cb.Execute(nopGB); return err })
		}},
		{"failsafe.Run", func(cleaner) func() func() error {
			ex := failsafe.With(fsbreaker.NewWithDefaults[any]())
			return same(func() error { return ex.Run(nopFS) })
		}},
		{"failsafe.permit", func(cleaner) func() func() error {
			cb := fsbreaker.NewWithDefaults[any]()
			return same(func() error {
				if !cb.TryAcquirePermit() {
					return errRefused
				}
				cb.RecordSuccess()
				return nil
			})
		}},
	}},
	{name: "Bulkhead", scenarios: []scenario{
		{"bulwark.Do", func(cleaner) func() func() error {
			ctx, b := context.Background(), bulkhead.New("bench", slots)
			return same(func() error { return b.Do(ctx, nop) })
		}},
		{"bulwark.TryAcquire", func(cleaner) func() func() error {
			b := bulkhead.New("bench", slots)
			return same(func() error {
				p, ok := b.TryAcquire()
				if !ok {
					return errRefused
				}
				p.Release()
				return nil
			})
		}},
		{"failsafe.Run", func(cleaner) func() func() error {
			ex := failsafe.With(fsbulkhead.New[any](slots))
			return same(func() error { return ex.Run(nopFS) })
		}},
		{"failsafe.permit", func(cleaner) func() func() error {
			b := fsbulkhead.New[any](slots)
			return same(func() error {
				if !b.TryAcquirePermit() {
					return errRefused
				}
				b.ReleasePermit()
				return nil
			})
		}},
		{"chan-semaphore", func(cleaner) func() func() error {
			ctx, sem := context.Background(), make(chan struct{}, slots)
			return same(func() error {
				select {
				case sem <- struct{}{}:
				default:
					return errRefused
				}
				defer func() { <-sem }()
				return nop(ctx)
			})
		}},
	}},
	{name: "RateLimit", scenarios: []scenario{
		{"bulwark.Do", func(cleaner) func() func() error {
			ctx, l := context.Background(), ratelimit.New("bench", hugeRate, hugeBurst)
			return same(func() error { return l.Do(ctx, nop) })
		}},
		{"bulwark.Allow", func(cleaner) func() func() error {
			ctx, l := context.Background(), ratelimit.New("bench", hugeRate, hugeBurst)
			return same(func() error { return allowed(l.Allow(ctx)) })
		}},
		{"rate.Allow", func(cleaner) func() func() error {
			l := rate.NewLimiter(hugeRate, hugeBurst)
			return same(func() error { return allowed(l.Allow()) })
		}},
		{"failsafe.Run", func(cleaner) func() func() error {
			ex := failsafe.With(fsratelimit.NewBursty[any](hugeRate, time.Second))
			return same(func() error { return ex.Run(nopFS) })
		}},
		{"failsafe.permit", func(cleaner) func() func() error {
			l := fsratelimit.NewBursty[any](hugeRate, time.Second)
			return same(func() error { return allowed(l.TryAcquirePermit()) })
		}},
	}},
	{name: "Retry", scenarios: []scenario{
		{"bulwark.Do", func(cleaner) func() func() error {
			ctx, r := context.Background(), retry.New()
			return same(func() error { return r.Do(ctx, nop) })
		}},
		{"failsafe.Run", func(cleaner) func() func() error {
			ex := failsafe.With(fsretry.NewWithDefaults[any]())
			return same(func() error { return ex.Run(nopFS) })
		}},
	}},
	{name: "HTTP", scenarios: []scenario{
		{"bare", func(cleaner) func() func() error { return serve(hello) }},
		{"bulwarkhttp.Middleware", func(tb cleaner) func() func() error {
			return serve(bulwarkhttp.Middleware(newStack(tb))(hello))
		}},
		{"failsafehttp.NewHandler", func(cleaner) func() func() error {
			return serve(failsafehttp.NewHandler(hello, failsafeStack[*http.Response]()...))
		}},
		{"bulwarkhttp.Middleware/priority-header", func(tb cleaner) func() func() error {
			return serveWith(bulwarkhttp.Middleware(newStack(tb))(hello), http.Header{"Bulwark-Priority": {"sheddable"}})
		}},
	}},
}

func allowed(ok bool) error {
	if !ok {
		return errRefused
	}
	return nil
}

// hello is the handler every HTTP scenario serves.
var hello = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "hello\n")
})

// serve returns a maker of workers that each serve their own GET request
// to h in process, with a new recorder per call.
func serve(h http.Handler) func() func() error { return serveWith(h, nil) }

// serveWith is serve with the request headers hdr.
func serveWith(h http.Handler, hdr http.Header) func() func() error {
	return func() func() error {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		for k, v := range hdr {
			req.Header[k] = v
		}
		return func() error {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				return fmt.Errorf("bench: status %d: %s", rec.Code, rec.Body)
			}
			return nil
		}
	}
}
