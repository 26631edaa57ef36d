package breaker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/internal/metrictest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// float64Gauge returns the points of a float64 gauge by rendered attributes.
func float64Gauge(t *testing.T, c *metrictest.Reader, name string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	m, ok := c.Metric(name)
	if !ok {
		t.Fatalf("no metric %s", name)
	}
	g, ok := m.Data.(metricdata.Gauge[float64])
	if !ok {
		t.Fatalf("%s holds %T, want a float64 gauge", name, m.Data)
	}
	for _, dp := range g.DataPoints {
		out[metrictest.Render(dp.Attributes)] = dp.Value
	}
	return out
}

func TestProbabilityFormula(t *testing.T) {
	tests := []struct {
		req, acc uint64
		k        float64
		want     float64
	}{
		{100, 20, 2, 0.594},
		{100, 50, 2, 0},
		{100, 100, 2, 0},
		{0, 0, 2, 0},
		{10, 0, 2, 10.0 / 11},
		{100, 20, 1.1, (100 - 22.0) / 101},
	}
	for _, tt := range tests {
		if got := probability(tt.req, tt.acc, tt.k); math.Abs(got-tt.want) > 0.0005 {
			t.Errorf("probability(%d, %d, %v) = %v, want %v", tt.req, tt.acc, tt.k, got, tt.want)
		}
	}
}

// fixedRand always draws v.
func fixedRand(v float64) Option { return WithRandom(func() float64 { return v }) }

// seeded is a deterministic source safe for concurrent use.
func seeded(seed uint64) func() float64 {
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(seed, seed))
	return func() float64 {
		mu.Lock()
		defer mu.Unlock()
		return r.Float64()
	}
}

func TestAdaptiveFormulaThroughCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Never refuse (the draw is 1), so that the counts are exact:
		// 20 accepted and 80 rejected requests give P = 0.594.
		a := NewAdaptive("formula", fixedRand(0.9999999))
		ctx := context.Background()
		for range 20 {
			_ = a.Do(ctx, succeed)
		}
		for range 80 {
			_ = a.Do(ctx, func(context.Context) error { return bulwark.ErrRemoteRejected })
		}
		if got := a.Probability(bulwark.Critical); math.Abs(got-0.594) > 0.0005 {
			t.Errorf("Probability = %v, want 0.594", got)
		}
		// The window ages: after 2 minutes every outcome is gone.
		time.Sleep(DefaultAdaptiveWindow / 2)
		if got := a.Probability(bulwark.Critical); math.Abs(got-0.594) > 0.0005 {
			t.Errorf("Probability 1 min later = %v, want 0.594", got)
		}
		time.Sleep(DefaultAdaptiveWindow / 2)
		if got := a.Probability(bulwark.Critical); got != 0 {
			t.Errorf("Probability 2 min later = %v, want 0 (aged out)", got)
		}
	})
}

func TestAdaptiveWindowAgesBucketByBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := NewAdaptive("age", WithWindow(10*time.Second, 10), fixedRand(0.9999999), WithMinCalls(1))
		ctx := context.Background()
		reject := func(context.Context) error { return bulwark.ErrRemoteUnavailable }
		for range 10 {
			_ = a.Do(ctx, reject) // bucket 0
		}
		time.Sleep(5 * time.Second)
		for range 10 {
			_ = a.Do(ctx, reject) // bucket 5
		}
		if got, want := a.Probability(bulwark.Critical), 20.0/21; math.Abs(got-want) > 1e-9 {
			t.Errorf("Probability = %v, want %v", got, want)
		}
		time.Sleep(5 * time.Second) // bucket 0 ages out
		if got, want := a.Probability(bulwark.Critical), 10.0/11; math.Abs(got-want) > 1e-9 {
			t.Errorf("Probability after 10 s = %v, want %v", got, want)
		}
	})
}

func TestAdaptiveRefuses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := NewAdaptive("refuse", fixedRand(0), WithMinCalls(1))
		ctx := context.Background()
		if err := a.Do(ctx, succeed); err != nil {
			t.Fatalf("healthy: Do() = %v", err)
		}
		for range 10 {
			_ = a.Do(ctx, func(context.Context) error { return bulwark.ErrRemoteUnavailable })
		}
		called := false
		err := a.Do(ctx, func(context.Context) error { called = true; return nil })
		if !errors.Is(err, ErrThrottled) || !errors.Is(err, bulwark.ErrUnavailable) || called {
			t.Fatalf("Do() = %v (called %v), want %v without calling", err, called, ErrThrottled)
		}
		if d, ok := bulwark.RetryAfter(err); !ok || d != 10*time.Second {
			t.Errorf("RetryAfter = %v, %v, want one bucket (10s)", d, ok)
		}
		if done, err := a.Admit(ctx); done != nil || !errors.Is(err, ErrThrottled) {
			t.Errorf("Admit() = %v, want %v and a nil done", err, ErrThrottled)
		}
	})
}

func TestAdaptiveClassification(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	timedOut, cancel2 := context.WithTimeoutCause(context.Background(), 0, bulwark.ErrTimeout)
	defer cancel2()
	<-timedOut.Done()
	tests := []struct {
		name         string
		ctx          context.Context
		err          error
		wantReq, acc uint64
	}{
		{"success", context.Background(), nil, 1, 1},
		{"429", context.Background(), bulwark.ErrRemoteRejected, 1, 0},
		{"503", context.Background(), bulwark.ErrRemoteUnavailable, 1, 0},
		{"timeout", context.Background(), fmt.Errorf("x: %w", bulwark.ErrTimeout), 1, 0},
		{"unclassified", context.Background(), errBoom, 1, 0},
		{"inner refusal", context.Background(), bulwark.ErrUnavailable, 0, 0},
		{"caller cancelled", cancelled, context.Canceled, 0, 0},
		{"own deadline", timedOut, context.DeadlineExceeded, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := NewAdaptive("class", fixedRand(0.9999999))
			done, err := a.Admit(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			// classify through done with tt.ctx
			_ = done
			out := a.classify(tt.ctx, tt.err)
			a.finish(bulwark.Critical.Index(), out)
			req, acc := a.win.sum(a.since(), bulwark.Critical.Index()), a.win.sum(a.since(), bulwark.NumPriorities+bulwark.Critical.Index())
			if req != tt.wantReq || acc != tt.acc {
				t.Errorf("requests, accepts = %d, %d, want %d, %d", req, acc, tt.wantReq, tt.acc)
			}
		})
	}
	t.Run("classifier says not a failure", func(t *testing.T) {
		a := NewAdaptive("class", WithFailure(func(error) bool { return false }))
		_ = a.Do(context.Background(), func(context.Context) error { return errBoom })
		_ = a.Do(context.Background(), func(context.Context) error { return bulwark.ErrRemoteUnavailable })
		ci := bulwark.Critical.Index()
		if req, acc := a.win.sum(a.since(), ci), a.win.sum(a.since(), bulwark.NumPriorities+ci); req != 2 || acc != 1 {
			t.Errorf("requests, accepts = %d, %d, want 2, 1 (a 503 is never an accept)", req, acc)
		}
	})
}

func TestAdaptivePanicIsNotAccepted(t *testing.T) {
	a := NewAdaptive("panic", fixedRand(0.9999999))
	func() {
		defer func() { _ = recover() }()
		_ = a.Do(context.Background(), func(context.Context) error { panic("boom") })
	}()
	ci := bulwark.Critical.Index()
	if req, acc := a.win.sum(a.since(), ci), a.win.sum(a.since(), bulwark.NumPriorities+ci); req != 1 || acc != 0 {
		t.Errorf("requests, accepts = %d, %d, want 1, 0", req, acc)
	}
}

// A lower tier is refused with at least the probability of a higher one,
// over many seeded calls, whatever each tier's own statistics say.
func TestAdaptiveTierOrdering(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := NewAdaptive("tiers", WithRandom(seeded(42)))
		// The backend rejects CriticalPlus most (so its own P is the
		// highest) and Sheddable least.
		rejectRate := map[bulwark.Priority]float64{
			bulwark.CriticalPlus: 0.8, bulwark.Critical: 0.6, bulwark.SheddablePlus: 0.3, bulwark.Sheddable: 0.1,
		}
		r := rand.New(rand.NewPCG(7, 7))
		refused := map[bulwark.Priority]int{}
		calls := map[bulwark.Priority]int{}
		for i := range 10000 {
			p := bulwark.Priorities[i%bulwark.NumPriorities]
			ctx := bulwark.WithPriority(context.Background(), p)
			reject := r.Float64() < rejectRate[p]
			err := a.Do(ctx, func(context.Context) error {
				if reject {
					return bulwark.ErrRemoteUnavailable
				}
				return nil
			})
			if i < 2000 {
				continue // let the statistics settle
			}
			calls[p]++
			if errors.Is(err, ErrThrottled) {
				refused[p]++
			}
		}
		var prev float64 = -1
		for _, p := range bulwark.Priorities { // highest first
			rate := float64(refused[p]) / float64(calls[p])
			if rate < prev-0.02 {
				t.Errorf("%v refused at %.3f, less than a higher tier's %.3f", p, rate, prev)
			}
			prev = max(prev, rate)
			if pr, hi := a.Probability(p), a.Probability(bulwark.CriticalPlus); pr < hi {
				t.Errorf("Probability(%v) = %v < Probability(critical-plus) = %v", p, pr, hi)
			}
		}
		if refused[bulwark.CriticalPlus] == 0 {
			t.Error("critical-plus never refused at an 80 % rejection rate")
		}
	})
}

func TestAdaptiveMinCalls(t *testing.T) {
	a := NewAdaptive("min", fixedRand(0), WithMinCalls(5))
	ctx := context.Background()
	for i := range 4 {
		if err := a.Do(ctx, fail); err != errBoom {
			t.Fatalf("call %d below the minimum: Do() = %v, want fn's error", i, err)
		}
	}
	_ = a.Do(ctx, fail) // the fifth request
	if err := a.Do(ctx, succeed); !errors.Is(err, ErrThrottled) {
		t.Errorf("at the minimum: Do() = %v, want %v", err, ErrThrottled)
	}
}

func TestAdaptiveOptionsAndMetrics(t *testing.T) {
	for _, bad := range []float64{0, 0.5, math.NaN(), math.Inf(1), -1} {
		func() {
			defer func() {
				if v, _ := recover().(string); v == "" {
					t.Errorf("WithK(%v) did not panic", bad)
				}
			}()
			WithK(bad)
		}()
	}
	c := metrictest.New(t)
	a := NewAdaptive("metrics", WithMeterProvider(c.Provider), WithK(1.5), fixedRand(0), nil, WithRandom(nil), WithMinCalls(1))
	defer a.Close()
	ctx := bulwark.WithPriority(context.Background(), bulwark.Sheddable)
	for range 4 {
		_ = a.Do(ctx, func(context.Context) error { return bulwark.ErrRemoteUnavailable })
	}
	_ = a.Do(ctx, succeed)
	gauge := float64Gauge(t, c, "bulwark.breaker.throttle.probability")
	if got := gauge["bulwark.policy.name=metrics,bulwark.priority=sheddable"]; got <= 0 {
		t.Errorf("probability{sheddable} = %v, want > 0 (%v)", got, gauge)
	}
	if got := gauge["bulwark.policy.name=metrics,bulwark.priority=critical"]; got != 0 {
		t.Errorf("probability{critical} = %v, want 0", got)
	}
	calls := c.Int64("bulwark.breaker.calls")
	if calls["bulwark.outcome=failure,bulwark.policy.name=metrics"] < 1 || calls["bulwark.outcome=refused,bulwark.policy.name=metrics"] < 1 {
		t.Errorf("calls = %v, want failures and refusals", calls)
	}
	if s := a.Snapshot(); s.Kind != "throttle" || s.State != "throttling" || s.Health != "warn" {
		t.Errorf("Snapshot() = %+v", s)
	}
}
