// Package scenarios runs bulwark and its peers under fire over real HTTP
// on loopback: overload by priority tier, a downstream outage, a retry
// storm, and idempotent duplicates across two instances. Each scenario is
// bounded in time; Quick makes them short enough for CI, where they run as
// a smoke test that asserts only that each produced its table.
package scenarios

import (
	"context"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/bulwark-go/bulwark"
)

// sample is one request the generator sent.
type sample struct {
	tier    bulwark.Priority
	status  int // 0 for a transport error
	latency time.Duration
	err     error
	at      time.Duration // since the start of the run
}

// openLoop sends requests with Poisson arrivals at rate per second for d,
// each on its own goroutine with its own deadline, whatever the answers:
// an open-loop generator, which does not slow down when the server does
// (a closed loop hides overload). send makes one request and returns its
// status. tierOf draws each request's tier. It returns every sample, in
// order of sending.
func openLoop(ctx context.Context, rate float64, d, deadline time.Duration, seed uint64,
	tierOf func(*rand.Rand) bulwark.Priority,
	send func(ctx context.Context, tier bulwark.Priority) (int, error)) []sample {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var (
		mu      sync.Mutex
		samples []sample
		wg      sync.WaitGroup
	)
	start := time.Now()
	next := time.Duration(0)
	for {
		next += time.Duration(r.ExpFloat64() / rate * float64(time.Second))
		if next >= d || ctx.Err() != nil {
			break
		}
		if wait := next - time.Since(start); wait > time.Millisecond {
			time.Sleep(wait)
		}
		tier := bulwark.Critical
		if tierOf != nil {
			tier = tierOf(r)
		}
		at := time.Since(start)
		wg.Go(func() {
			rctx, cancel := context.WithTimeout(ctx, deadline)
			t0 := time.Now()
			status, err := send(rctx, tier)
			lat := time.Since(t0)
			cancel()
			mu.Lock()
			samples = append(samples, sample{tier: tier, status: status, latency: lat, err: err, at: at})
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.SortFunc(samples, func(a, b sample) int { return int(a.at - b.at) })
	return samples
}

// mix is the tier mix of the overload scenario: 10 % CriticalPlus, 60 %
// Critical, 20 % SheddablePlus, 10 % Sheddable.
func mix(r *rand.Rand) bulwark.Priority {
	switch x := r.Float64(); {
	case x < 0.10:
		return bulwark.CriticalPlus
	case x < 0.70:
		return bulwark.Critical
	case x < 0.90:
		return bulwark.SheddablePlus
	default:
		return bulwark.Sheddable
	}
}

// quantile returns the q-quantile of ds (nearest rank), 0 for none.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// newClient is an HTTP client for one scenario: enough idle connections
// that the generator does not dial per request.
func newClient(rt http.RoundTripper) *http.Client {
	return &http.Client{Transport: rt}
}

func newTransport() *http.Transport {
	return &http.Transport{
		MaxIdleConns:        2048,
		MaxIdleConnsPerHost: 2048,
		IdleConnTimeout:     30 * time.Second,
	}
}
