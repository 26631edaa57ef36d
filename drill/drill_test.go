package drill_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
	"weak"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarktest"
	"github.com/bulwark-go/bulwark/drill"
	"github.com/bulwark-go/bulwark/internal/metrictest"
)

// counting is an fn that counts its calls.
type counting struct {
	mu sync.Mutex
	n  int
}

func (c *counting) fn(context.Context) error {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return nil
}

func (c *counting) calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func mustArm(t *testing.T, d *drill.Drill, s drill.Spec, expiry time.Duration) {
	t.Helper()
	if err := d.Arm(s, expiry); err != nil {
		t.Fatalf("Arm(%v) = %v", s, err)
	}
}

var refuseAll = drill.Spec{Refusal: drill.Refusal{Probability: 1}}

func TestContract(t *testing.T) {
	for _, tt := range []struct {
		name string
		give func() bulwark.Policy
	}{
		{"disarmed", func() bulwark.Policy { return drill.New("d") }},
		{"armed latency", func() bulwark.Policy {
			d := drill.New("d")
			mustArm(t, d, drill.Spec{Latency: drill.Latency{Min: time.Millisecond, Probability: 1}}, 0)
			return d
		}},
		{"armed uniform latency", func() bulwark.Policy {
			d := drill.New("d")
			mustArm(t, d, drill.Spec{Latency: drill.Latency{Min: 100 * time.Microsecond, Max: 2 * time.Millisecond, Probability: 0.5}}, 0)
			return d
		}},
		{"armed faults scoped to another tier", func() bulwark.Policy {
			d := drill.New("d")
			mustArm(t, d, drill.Spec{
				Error:   drill.Error{Err: drill.ErrRemoteUnavailable, Probability: 1},
				Refusal: drill.Refusal{Probability: 1},
				Match:   drill.Match{Tiers: []bulwark.Priority{bulwark.Sheddable}},
			}, 0)
			return d
		}},
	} {
		t.Run(tt.name, func(t *testing.T) { bulwarktest.TestPolicy(t, tt.give) })
	}
}

func TestDisarmedRunsFn(t *testing.T) {
	d := drill.New("d")
	var c counting
	for range 3 {
		if err := d.Do(context.Background(), c.fn); err != nil {
			t.Fatalf("Do() = %v, want nil", err)
		}
	}
	if c.calls() != 3 {
		t.Errorf("fn ran %d times, want 3", c.calls())
	}
	if _, _, ok := d.Armed(); ok {
		t.Error("a new drill is armed")
	}
	mustArm(t, d, refuseAll, 0)
	d.Disarm()
	d.Disarm() // harmless
	if err := d.Do(context.Background(), c.fn); err != nil {
		t.Errorf("Do() after Disarm = %v, want nil", err)
	}
}

// Probabilities hold within statistical bounds over 10 000 calls with a
// seeded source, and the counts exported agree with what callers saw.
func TestProbabilities(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := metrictest.New(t)
		d := drill.New("prob", drill.WithRand(rand.NewPCG(1, 2)), drill.WithMeterProvider(r.Provider))
		r.Keep(d)
		const n = 10000
		const pl, pe, pr = 0.5, 0.3, 0.1
		mustArm(t, d, drill.Spec{
			Latency: drill.Latency{Min: time.Millisecond, Probability: pl},
			Error:   drill.Error{Err: drill.ErrRemoteUnavailable, Probability: pe},
			Refusal: drill.Refusal{Probability: pr},
		}, time.Hour)
		var delayed, failed, refused, ran int
		for range n {
			start := time.Now()
			err := d.Do(context.Background(), func(context.Context) error { ran++; return nil })
			if time.Since(start) == time.Millisecond {
				delayed++
			}
			switch {
			case err == nil:
			case errors.Is(err, drill.ErrRefused):
				refused++
			case errors.Is(err, drill.ErrRemoteUnavailable):
				failed++
			default:
				t.Fatalf("Do() = %v", err)
			}
		}
		// Within 5 standard deviations of the expected counts.
		within := func(name string, got int, p float64) {
			mean, sd := n*p, math.Sqrt(n*p*(1-p))
			if math.Abs(float64(got)-mean) > 5*sd {
				t.Errorf("%s: %d of %d, want %.0f ± %.0f", name, got, n, mean, 5*sd)
			}
		}
		within("delayed", delayed, pl)
		within("refused", refused, pr)
		within("failed", failed, pe*(1-pr)) // a refusal wins over an error
		if ran != n-refused-failed {
			t.Errorf("fn ran %d times, want %d", ran, n-refused-failed)
		}
		for _, c := range []struct {
			fault string
			want  int
		}{{"latency", delayed}, {"error", failed}, {"refusal", refused}} {
			if got := r.Int64Total("bulwark.drill.injected", "bulwark.fault", c.fault, "bulwark.policy.name", "prob"); got != int64(c.want) {
				t.Errorf("bulwark.drill.injected{%s} = %d, want %d", c.fault, got, c.want)
			}
		}
	})
}

func TestSeededSourceIsDeterministic(t *testing.T) {
	run := func() string {
		d := drill.New("d", drill.WithRand(rand.NewPCG(7, 7)))
		mustArm(t, d, drill.Spec{Refusal: drill.Refusal{Probability: 0.5}}, 0)
		var b strings.Builder
		for range 64 {
			if d.Do(context.Background(), func(context.Context) error { return nil }) != nil {
				b.WriteByte('x')
			} else {
				b.WriteByte('.')
			}
		}
		return b.String()
	}
	if a, b := run(), run(); a != b || !strings.Contains(a, "x") || !strings.Contains(a, ".") {
		t.Errorf("two runs with the same seed: %s and %s, want the same mix", a, b)
	}
}

func TestFaultsCombine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := drill.New("d")
		mine := errors.New("boom")
		mustArm(t, d, drill.Spec{
			Latency: drill.Latency{Min: 250 * time.Millisecond, Probability: 1},
			Error:   drill.Error{Err: mine, Probability: 1},
		}, 0)
		var c counting
		start := time.Now()
		err := d.Do(context.Background(), c.fn)
		if el := time.Since(start); el != 250*time.Millisecond {
			t.Errorf("Do took %v, want the 250ms latency", el)
		}
		if !errors.Is(err, mine) || !drill.IsInjected(err) {
			t.Errorf("Do() = %v, want the injected error", err)
		}
		var inj *drill.InjectedError
		if !errors.As(err, &inj) || inj.Drill != "d" || inj.Fault != drill.FaultError {
			t.Errorf("Do() = %#v, want an *InjectedError of drill d, fault error", err)
		}
		if c.calls() != 0 {
			t.Errorf("fn ran %d times, want 0", c.calls())
		}
	})
}

func TestUniformLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const lo, hi = 100 * time.Millisecond, 300 * time.Millisecond
		d := drill.New("d", drill.WithRand(rand.NewPCG(3, 4)))
		mustArm(t, d, drill.Spec{Latency: drill.Latency{Min: lo, Max: hi, Probability: 1}}, 0)
		seen := map[time.Duration]bool{}
		var sum time.Duration
		for range 200 {
			start := time.Now()
			_ = d.Do(context.Background(), func(context.Context) error { return nil })
			el := time.Since(start)
			if el < lo || el > hi {
				t.Fatalf("latency %v, want within [%v, %v]", el, lo, hi)
			}
			seen[el] = true
			sum += el
		}
		if len(seen) < 100 {
			t.Errorf("%d distinct latencies in 200 calls, want them spread", len(seen))
		}
		if mean := sum / 200; mean < 180*time.Millisecond || mean > 220*time.Millisecond {
			t.Errorf("mean latency %v, want about 200ms", mean)
		}
	})
}

func TestLatencyHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := drill.New("d")
		mustArm(t, d, drill.Spec{
			Latency: drill.Latency{Min: time.Minute, Probability: 1},
			Error:   drill.Error{Err: drill.ErrTimeout, Probability: 1},
		}, 0)
		var c counting

		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		err := d.Do(ctx, c.fn)
		if !errors.Is(err, context.DeadlineExceeded) || drill.IsInjected(err) || time.Since(start) != time.Second {
			t.Errorf("Do() = %v after %v, want the caller's deadline after 1s, not an injected error", err, time.Since(start))
		}

		ctx2, cancel2 := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- d.Do(ctx2, c.fn) }()
		synctest.Wait()
		cancel2()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled Do() = %v, want context.Canceled", err)
		}
		ctx3, cancel3 := context.WithCancel(context.Background())
		go func() {
			_, err := d.Admit(ctx3)
			done <- err
		}()
		synctest.Wait()
		cancel3()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled Admit() = %v, want context.Canceled", err)
		}
		if c.calls() != 0 {
			t.Errorf("fn ran %d times, want 0", c.calls())
		}
	})
}

func TestDisarmMidFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := drill.New("d")
		mustArm(t, d, drill.Spec{
			Latency: drill.Latency{Min: 10 * time.Minute, Probability: 1},
			Refusal: drill.Refusal{Probability: 1},
		}, 30*time.Minute)
		var c counting
		done := make(chan error)
		for range 3 {
			go func() { done <- d.Do(context.Background(), c.fn) }()
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		start := time.Now()
		d.Disarm()
		for range 3 {
			if err := <-done; err != nil {
				t.Errorf("Do() = %v, want nil: a disarmed drill injects nothing more", err)
			}
		}
		if el := time.Since(start); el != 0 {
			t.Errorf("calls ended %v after Disarm, want at once", el)
		}
		if c.calls() != 3 {
			t.Errorf("fn ran %d times, want 3", c.calls())
		}
	})
}

func TestRearmMidFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := drill.New("d")
		mustArm(t, d, drill.Spec{Latency: drill.Latency{Min: time.Hour, Probability: 1}, Refusal: drill.Refusal{Probability: 1}}, time.Hour)
		done := make(chan error)
		go func() { done <- d.Do(context.Background(), func(context.Context) error { return nil }) }()
		synctest.Wait()
		mustArm(t, d, drill.Spec{Error: drill.Error{Err: drill.ErrTimeout, Probability: 1}}, time.Hour)
		if err := <-done; err != nil {
			t.Errorf("Do() = %v, want nil: the old arming ended, the new one was not drawn for this call", err)
		}
		if err := d.Do(context.Background(), func(context.Context) error { return nil }); !errors.Is(err, drill.ErrTimeout) {
			t.Errorf("Do() = %v, want the new arming's error", err)
		}
	})
}

func TestExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := metrictest.New(t)
		d := drill.New("exp", drill.WithMeterProvider(r.Provider))
		r.Keep(d)
		mustArm(t, d, refuseAll, time.Minute)
		armedAt := time.Now()
		if got := r.Int64Total("bulwark.drill.armed", "bulwark.policy.name", "exp"); got != 1 {
			t.Errorf("bulwark.drill.armed = %d, want 1", got)
		}
		time.Sleep(time.Minute - time.Nanosecond)
		if err := d.Do(context.Background(), func(context.Context) error { return nil }); !errors.Is(err, drill.ErrRefused) {
			t.Errorf("Do() just before expiry = %v, want the refusal", err)
		}
		time.Sleep(time.Nanosecond)
		if err := d.Do(context.Background(), func(context.Context) error { return nil }); err != nil {
			t.Errorf("Do() at expiry = %v, want nil", err)
		}
		if _, _, ok := d.Armed(); ok {
			t.Error("Armed() after expiry = true")
		}
		if got := r.Int64Total("bulwark.drill.armed", "bulwark.policy.name", "exp"); got != 0 {
			t.Errorf("bulwark.drill.armed after expiry = %d, want 0", got)
		}
		ev := d.Snapshot().Events
		if len(ev) != 2 || ev[1].To != "disarmed" || ev[1].Source != "automatic" || ev[1].Reason != "expired" ||
			!ev[1].Time.Equal(armedAt.Add(time.Minute)) {
			t.Errorf("events = %+v, want an automatic expiry at the expiry time", ev)
		}
	})
}

// A drill with nobody calling it still reads as expired.
func TestExpirySeenWithoutCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := drill.New("d")
		mustArm(t, d, refuseAll, 0)
		time.Sleep(drill.DefaultExpiry)
		if s := d.Snapshot(); s.State != "disarmed" {
			t.Errorf("Snapshot().State after the default expiry = %q, want disarmed", s.State)
		}
	})
}

// A latency longer than what is left of the arming ends with it.
func TestLatencyEndsWithExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := drill.New("d")
		mustArm(t, d, drill.Spec{Latency: drill.Latency{Min: time.Hour, Probability: 1}, Refusal: drill.Refusal{Probability: 1}}, time.Minute)
		var c counting
		start := time.Now()
		if err := d.Do(context.Background(), c.fn); err != nil || c.calls() != 1 {
			t.Errorf("Do() = %v with %d calls, want nil and fn run once the drill expired", err, c.calls())
		}
		if el := time.Since(start); el != time.Minute {
			t.Errorf("Do took %v, want the minute left of the arming", el)
		}
	})
}

func TestExpiryBounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := drill.New("d")
		if err := d.Arm(refuseAll, time.Hour+1); !errors.Is(err, drill.ErrInvalidSpec) {
			t.Errorf("Arm past the default maximum = %v, want ErrInvalidSpec", err)
		}
		if err := d.Arm(refuseAll, -1); !errors.Is(err, drill.ErrInvalidSpec) {
			t.Errorf("Arm with a negative expiry = %v, want ErrInvalidSpec", err)
		}
		if _, _, ok := d.Armed(); ok {
			t.Error("a refused Arm armed the drill")
		}
		mustArm(t, d, refuseAll, time.Hour)
		mustArm(t, d, refuseAll, 0)
		if _, until, _ := d.Armed(); until.Sub(time.Now()) != drill.DefaultExpiry {
			t.Errorf("Arm(spec, 0) expires in %v, want %v", until.Sub(time.Now()), drill.DefaultExpiry)
		}

		short := drill.New("d", drill.WithMaxExpiry(time.Minute))
		mustArm(t, short, refuseAll, 0)
		if _, until, _ := short.Armed(); until.Sub(time.Now()) != time.Minute {
			t.Errorf("default expiry under a 1m maximum = %v, want 1m", until.Sub(time.Now()))
		}
		if err := short.Arm(refuseAll, 2*time.Minute); !errors.Is(err, drill.ErrInvalidSpec) || !strings.Contains(err.Error(), "maximum") {
			t.Errorf("Arm past a 1m maximum = %v, want ErrInvalidSpec naming the maximum", err)
		}
		long := drill.New("d", drill.WithMaxExpiry(math.MaxInt64))
		mustArm(t, long, refuseAll, math.MaxInt64)
		if err := long.Do(context.Background(), func(context.Context) error { return nil }); !errors.Is(err, drill.ErrRefused) {
			t.Errorf("Do() under a MaxInt64 expiry = %v, want the refusal", err)
		}
	})
}

func TestArmValidation(t *testing.T) {
	lat := drill.Latency{Min: time.Millisecond, Probability: 1}
	for _, tt := range []struct {
		name string
		give drill.Spec
		want string
	}{
		{"nothing", drill.Spec{}, "no fault"},
		{"zero probabilities", drill.Spec{Latency: drill.Latency{Min: time.Second}, Error: drill.Error{Err: drill.ErrTimeout}}, "no fault"},
		{"NaN", drill.Spec{Refusal: drill.Refusal{Probability: math.NaN()}}, "Refusal.Probability"},
		{"above 1", drill.Spec{Error: drill.Error{Err: drill.ErrTimeout, Probability: 1.5}}, "Error.Probability"},
		{"negative", drill.Spec{Latency: drill.Latency{Min: 1, Probability: -0.1}}, "Latency.Probability"},
		{"+Inf", drill.Spec{Refusal: drill.Refusal{Probability: math.Inf(1)}}, "Refusal.Probability"},
		{"latency without delay", drill.Spec{Latency: drill.Latency{Probability: 1}}, "no delay"},
		{"negative latency", drill.Spec{Latency: drill.Latency{Min: -1, Probability: 1}}, "Latency.Min"},
		{"negative max", drill.Spec{Latency: drill.Latency{Max: math.MinInt64, Probability: 1}}, "Latency.Max"},
		{"max below min", drill.Spec{Latency: drill.Latency{Min: 2, Max: 1, Probability: 1}}, "below"},
		{"nil error", drill.Spec{Error: drill.Error{Probability: 1}}, "Error.Err"},
		{"bad tier", drill.Spec{Latency: lat, Match: drill.Match{Tiers: []bulwark.Priority{7}}}, "Match.Tiers"},
		{"empty key", drill.Spec{Latency: lat, Match: drill.Match{Keys: []string{"a", ""}}}, "Match.Keys"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := drill.New("d")
			mustArm(t, d, drill.Spec{Latency: lat}, 0)
			err := d.Arm(tt.give, 0)
			if !errors.Is(err, drill.ErrInvalidSpec) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Arm() = %v, want ErrInvalidSpec mentioning %q", err, tt.want)
			}
			if s, _, ok := d.Armed(); !ok || s.Latency != lat {
				t.Errorf("after a refused Arm: Armed() = %v, %v, want the previous arming kept", s, ok)
			}
		})
	}
	// Huge values are valid.
	d := drill.New("d")
	mustArm(t, d, drill.Spec{Latency: drill.Latency{Min: math.MaxInt64, Max: math.MaxInt64, Probability: 1}}, 0)
}

func TestArmCopiesSpec(t *testing.T) {
	d := drill.New("d")
	keys := []string{"acme"}
	mustArm(t, d, drill.Spec{Refusal: drill.Refusal{Probability: 1}, Match: drill.Match{Keys: keys}}, 0)
	keys[0] = "globex"
	if err := d.Do(bulwark.WithKey(context.Background(), "acme"), func(context.Context) error { return nil }); !errors.Is(err, drill.ErrRefused) {
		t.Errorf("Do(acme) = %v after the caller changed its slice, want the refusal", err)
	}
}

func TestSelectors(t *testing.T) {
	bg := context.Background()
	shed := bulwark.WithPriority(bg, bulwark.Sheddable)
	acme := bulwark.WithKey(bg, "acme")
	marked := bulwark.WithDrill(bg, "sel")
	for _, tt := range []struct {
		name  string
		match drill.Match
		hit   []context.Context
		miss  []context.Context
	}{
		{"everything", drill.Match{}, []context.Context{bg, shed, acme, marked}, nil},
		{"tier", drill.Match{Tiers: []bulwark.Priority{bulwark.Sheddable, bulwark.SheddablePlus}},
			[]context.Context{shed, bulwark.WithPriority(bg, bulwark.SheddablePlus)},
			[]context.Context{bg, acme, bulwark.WithPriority(bg, bulwark.CriticalPlus)}},
		{"key", drill.Match{Keys: []string{"acme", "initech"}},
			[]context.Context{acme, bulwark.WithKey(shed, "initech")},
			[]context.Context{bg, shed, bulwark.WithKey(bg, "globex")}},
		{"marker", drill.Match{Marked: true},
			[]context.Context{marked, bulwark.WithKey(marked, "x")},
			[]context.Context{bg, shed, bulwark.WithDrill(bg, "other"), bulwark.WithDrill(bg, "")}},
		{"all of them", drill.Match{Tiers: []bulwark.Priority{bulwark.Sheddable}, Keys: []string{"acme"}, Marked: true},
			[]context.Context{bulwark.WithKey(bulwark.WithPriority(marked, bulwark.Sheddable), "acme")},
			[]context.Context{shed, acme, marked, bulwark.WithKey(shed, "acme"), bulwark.WithKey(marked, "acme")}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := drill.New("sel")
			mustArm(t, d, drill.Spec{Refusal: drill.Refusal{Probability: 1}, Match: tt.match}, 0)
			for i, ctx := range tt.hit {
				if err := d.Do(ctx, func(context.Context) error { return nil }); !errors.Is(err, drill.ErrRefused) {
					t.Errorf("hit %d: Do() = %v, want the refusal", i, err)
				}
				if _, err := d.Admit(ctx); !errors.Is(err, drill.ErrRefused) {
					t.Errorf("hit %d: Admit() = %v, want the refusal", i, err)
				}
			}
			for i, ctx := range tt.miss {
				if err := d.Do(ctx, func(context.Context) error { return nil }); err != nil {
					t.Errorf("miss %d: Do() = %v, want nil", i, err)
				}
			}
		})
	}
}

func TestInjectedErrors(t *testing.T) {
	d := drill.New("d")
	mustArm(t, d, refuseAll, 0)
	refusal := d.Do(context.Background(), func(context.Context) error { return nil })
	if !bulwark.IsRefusal(refusal) || !errors.Is(refusal, bulwark.ErrUnavailable) || !errors.Is(refusal, drill.ErrRefused) {
		t.Errorf("refusal %v: want ErrRefused, a bulwark.ErrUnavailable refusal", refusal)
	}
	mustArm(t, d, drill.Spec{Error: drill.Error{Err: drill.ErrRemoteUnavailable, Probability: 1}}, 0)
	remote := d.Do(context.Background(), func(context.Context) error { return nil })
	if !errors.Is(remote, bulwark.ErrRemoteUnavailable) || bulwark.IsRefusal(remote) {
		t.Errorf("error %v: want a downstream-unavailable error, not a refusal", remote)
	}
	if !errors.Is(drill.ErrTimeout, bulwark.ErrTimeout) || !errors.Is(drill.ErrTimeout, context.DeadlineExceeded) {
		t.Error("ErrTimeout does not wrap bulwark.ErrTimeout")
	}
	for _, tt := range []struct {
		give error
		want bool
	}{
		{refusal, true},
		{remote, true},
		{fmt.Errorf("call: %w", remote), true},
		{errors.Join(errors.New("x"), refusal), true},
		{drill.ErrRefused, false}, // not injected by a drill
		{errors.New("x"), false},
		{nil, false},
		{errors.Join(errors.New("x"), errors.New("y")), false},
	} {
		if got := drill.IsInjected(tt.give); got != tt.want {
			t.Errorf("IsInjected(%v) = %v, want %v", tt.give, got, tt.want)
		}
	}
	if !strings.Contains(refusal.Error(), "drill d") {
		t.Errorf("refusal message %q, want it to name the drill", refusal)
	}
}

func TestAdmit(t *testing.T) {
	d := drill.New("d")
	done, err := d.Admit(context.Background())
	if err != nil || done == nil {
		t.Fatalf("Admit() = %v, %v on a disarmed drill, want admission", done != nil, err)
	}
	done(nil)
	done(errors.New("x"))
	mustArm(t, d, refuseAll, 0)
	if done, err := d.Admit(context.Background()); !errors.Is(err, drill.ErrRefused) || done != nil {
		t.Errorf("Admit() = %v, %v, want a refusal with a nil done", done != nil, err)
	}
}

func TestNewPanics(t *testing.T) {
	for _, tt := range []struct {
		name string
		give func()
		want string
	}{
		{"empty name", func() { drill.New("") }, "drill: New"},
		{"max expiry 0", func() { drill.WithMaxExpiry(0) }, "drill: WithMaxExpiry"},
		{"max expiry negative", func() { drill.WithMaxExpiry(math.MinInt64) }, "drill: WithMaxExpiry"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				s, _ := recover().(string)
				if !strings.HasPrefix(s, tt.want) {
					t.Errorf("panic = %q, want a message starting %q", s, tt.want)
				}
			}()
			tt.give()
		})
	}
	// nil options are ignored.
	d := drill.New("d", nil, drill.WithRand(nil), drill.WithMeterProvider(nil))
	mustArm(t, d, drill.Spec{Refusal: drill.Refusal{Probability: 0.5}}, 0)
}

func TestDisarmedAllocatesNothing(t *testing.T) {
	d := drill.New("d")
	ctx := context.Background()
	fn := func(context.Context) error { return nil }
	if n := testing.AllocsPerRun(1000, func() { _ = d.Do(ctx, fn) }); n != 0 {
		t.Errorf("disarmed Do allocates %v times, want 0", n)
	}
	mustArm(t, d, drill.Spec{Refusal: drill.Refusal{Probability: 1}, Match: drill.Match{Tiers: []bulwark.Priority{bulwark.Sheddable}, Keys: []string{"a"}, Marked: true}}, 0)
	if n := testing.AllocsPerRun(1000, func() { _ = d.Do(ctx, fn) }); n != 0 {
		t.Errorf("armed Do of a call out of scope allocates %v times, want 0", n)
	}
	shed := bulwark.WithKey(bulwark.WithPriority(bulwark.WithDrill(ctx, "d"), bulwark.Sheddable), "a")
	if n := testing.AllocsPerRun(1000, func() { _ = d.Do(shed, fn) }); n != 0 {
		t.Errorf("an injected refusal allocates %v times, want 0", n)
	}
}

func TestConcurrentArming(t *testing.T) {
	d := drill.New("d", drill.WithRand(rand.NewPCG(1, 1)))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				err := d.Do(context.Background(), func(context.Context) error { return nil })
				if err != nil && !drill.IsInjected(err) {
					t.Errorf("Do() = %v", err)
					return
				}
			}
		}()
	}
	for i := range 200 {
		if i%2 == 0 {
			mustArm(t, d, drill.Spec{Refusal: drill.Refusal{Probability: 0.5}, Latency: drill.Latency{Min: time.Microsecond, Probability: 0.1}}, 0)
		} else {
			d.Disarm()
		}
		_ = d.Snapshot()
	}
	close(stop)
	wg.Wait()
}

func TestDroppedDrillIsCollected(t *testing.T) {
	reader := metrictest.New(t)
	d := drill.New("dropped", drill.WithMeterProvider(reader.Provider))
	mustArm(t, d, refuseAll, 0)
	_ = d.Do(context.Background(), func(context.Context) error { return nil })
	if got := reader.Int64Total("bulwark.drill.injected", "bulwark.policy.name", "dropped"); got != 1 {
		t.Fatalf("injected = %d before the drill is dropped, want 1", got)
	}
	wd := weak.Make(d)
	d = nil
	_ = d
	for i := 0; i < 5 && wd.Value() != nil; i++ {
		runtime.GC()
	}
	if wd.Value() != nil {
		t.Fatal("a dropped Drill is kept alive by its metric callback")
	}
	reported := func() bool { return len(reader.Int64("bulwark.drill.armed")) > 0 }
	for i := 0; i < 100 && reported(); i++ { // cleanups run on their own goroutine
		runtime.Gosched()
		runtime.GC()
	}
	if reported() {
		t.Error("bulwark.drill.armed still reported after the Drill was collected")
	}
}

func TestRearmAfterUnnoticedExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := drill.New("d")
		mustArm(t, d, refuseAll, time.Minute)
		time.Sleep(2 * time.Minute)
		mustArm(t, d, refuseAll, time.Minute)
		ev := d.Snapshot().Events
		if len(ev) != 3 || ev[1].Reason != "expired" || ev[2].From != "disarmed" || ev[2].To != "armed" {
			t.Errorf("events = %+v, want armed, expired, armed from disarmed", ev)
		}
	})
}
