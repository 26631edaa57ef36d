package health_test

import (
	"context"
	"errors"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/bulwark-go/bulwark/health"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var errBoom = errors.New("boom")

func pass(context.Context) error { return nil }
func fail(context.Context) error { return errBoom }
func warn(context.Context) error { return health.Warning(errBoom) }

// counted returns a check that returns err and counts its runs.
func counted(err error) (func(context.Context) error, *atomic.Int64) {
	var n atomic.Int64
	return func(context.Context) error {
		n.Add(1)
		return err
	}, &n
}

func newChecker(t *testing.T, opts ...health.Option) *health.Checker {
	t.Helper()
	c := health.New(opts...)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

type spec struct {
	name     string
	fn       func(context.Context) error
	kind     health.Kind
	critical bool
}

func TestAggregation(t *testing.T) {
	L, R, S := health.Liveness, health.Readiness, health.Startup
	tests := []struct {
		name  string
		give  []spec
		probe health.Kind
		want  health.Status
		wantS map[string]health.Status // per check
	}{
		{name: "no checks", probe: R, want: health.StatusPass},
		{name: "critical pass", give: []spec{{"a", pass, R, true}}, probe: R, want: health.StatusPass},
		{name: "critical fail", give: []spec{{"a", fail, R, true}}, probe: R, want: health.StatusFail,
			wantS: map[string]health.Status{"a": health.StatusFail}},
		{name: "non-critical fail warns", give: []spec{{"a", fail, R, false}}, probe: R, want: health.StatusWarn,
			wantS: map[string]health.Status{"a": health.StatusWarn}},
		{name: "critical Warning warns", give: []spec{{"a", warn, R, true}}, probe: R, want: health.StatusWarn},
		{name: "warn and pass", give: []spec{{"a", pass, R, true}, {"b", fail, R, false}}, probe: R, want: health.StatusWarn},
		{name: "warn and critical fail", give: []spec{{"a", fail, R, true}, {"b", fail, R, false}}, probe: R, want: health.StatusFail},
		{name: "fail of another kind ignored", give: []spec{{"a", fail, L, true}, {"b", pass, R, true}}, probe: R, want: health.StatusPass},
		{name: "liveness fail", give: []spec{{"a", fail, L, true}, {"b", pass, R, true}}, probe: L, want: health.StatusFail},
		{name: "both kinds fail both", give: []spec{{"a", fail, L | R, true}}, probe: L, want: health.StatusFail},
		{name: "both kinds readiness", give: []spec{{"a", fail, L | R, true}}, probe: R, want: health.StatusFail},
		{name: "startup fail", give: []spec{{"a", fail, S, true}}, probe: S, want: health.StatusFail},
		{name: "startup warn passes", give: []spec{{"a", fail, S, false}}, probe: S, want: health.StatusWarn},
		{name: "startup only, liveness empty", give: []spec{{"a", fail, S, true}}, probe: L, want: health.StatusPass},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newChecker(t)
			for _, s := range tt.give {
				c.Register(s.name, s.fn, health.WithKind(s.kind), health.WithCritical(s.critical))
			}
			rep := c.Check(context.Background(), tt.probe)
			if rep.Status != tt.want {
				t.Errorf("Check(%v).Status = %v, want %v (%+v)", tt.probe, rep.Status, tt.want, rep.Checks)
			}
			if rep.Kind != tt.probe {
				t.Errorf("Kind = %v, want %v", rep.Kind, tt.probe)
			}
			for _, r := range rep.Checks {
				if want, ok := tt.wantS[r.Name]; ok && r.Status != want {
					t.Errorf("check %s: Status = %v, want %v", r.Name, r.Status, want)
				}
				if r.Status != health.StatusPass && !errors.Is(r.Err, errBoom) {
					t.Errorf("check %s: Err = %v, want boom", r.Name, r.Err)
				}
			}
		})
	}
}

func TestReportOrderAndFields(t *testing.T) {
	c := newChecker(t)
	c.Register("b", fail, health.WithComponentType("datastore"), health.WithGroup("g1", "g2"))
	c.Register("a", pass, health.WithCritical(false))
	rep := c.Check(context.Background(), health.Readiness)
	if got := names(rep.Checks); !slices.Equal(got, []string{"b", "a"}) {
		t.Fatalf("checks = %v, want registration order [b a]", got)
	}
	b, a := rep.Checks[0], rep.Checks[1]
	if b.ComponentType != "datastore" || !slices.Equal(b.Groups, []string{"g1", "g2"}) || !b.Critical {
		t.Errorf("b = %+v, want datastore, groups g1 g2, critical", b)
	}
	if a.ComponentType != "component" || a.Critical || a.Err != nil || a.Time.IsZero() {
		t.Errorf("a = %+v, want component, non-critical, no error, a time", a)
	}
	if got := c.Names(health.Readiness); !slices.Equal(got, []string{"b", "a"}) {
		t.Errorf("Names = %v", got)
	}
	if got := c.Names(health.Liveness); len(got) != 0 {
		t.Errorf("Names(Liveness) = %v, want none", got)
	}
}

func names(rs []health.Result) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Name)
	}
	return out
}

func TestExclude(t *testing.T) {
	c := newChecker(t)
	bad, n := counted(errBoom)
	c.Register("db", bad)
	c.Register("cache", pass)
	c.Register("live", fail, health.WithKind(health.Liveness))
	rep := c.Check(context.Background(), health.Readiness, "db", "db", "nope", "live")
	if rep.Status != health.StatusPass {
		t.Errorf("Status = %v, want pass with db excluded", rep.Status)
	}
	if n.Load() != 0 {
		t.Errorf("excluded check ran %d times", n.Load())
	}
	if !slices.Equal(rep.Excluded, []string{"db"}) {
		t.Errorf("Excluded = %v, want [db]", rep.Excluded)
	}
	if !slices.Equal(rep.Unmatched, []string{"nope", "live"}) {
		t.Errorf("Unmatched = %v, want [nope live] (live is not a readiness check)", rep.Unmatched)
	}
	if got := names(rep.Checks); !slices.Equal(got, []string{"cache"}) {
		t.Errorf("Checks = %v, want [cache]", got)
	}
}

func TestCheckOne(t *testing.T) {
	c := newChecker(t)
	c.Register("db", fail)
	c.Register("live", pass, health.WithKind(health.Liveness))
	if r, ok := c.CheckOne(context.Background(), health.Readiness, "db"); !ok || r.Status != health.StatusFail || !errors.Is(r.Err, errBoom) {
		t.Errorf("CheckOne(db) = %+v, %v; want fail, true", r, ok)
	}
	if _, ok := c.CheckOne(context.Background(), health.Readiness, "live"); ok {
		t.Error("CheckOne(Readiness, live) found a liveness-only check")
	}
	if _, ok := c.CheckOne(context.Background(), health.Readiness, "nope"); ok {
		t.Error("CheckOne(nope) = true")
	}
	if _, ok := c.CheckOne(context.Background(), health.Readiness, "drain"); ok {
		t.Error("CheckOne(drain) = true")
	}
}

func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		v := recover()
		if v == nil {
			t.Errorf("%s did not panic", what)
			return
		}
		if s, ok := v.(string); !ok || !strings.HasPrefix(s, "health: ") {
			t.Errorf("%s panicked with %v, want a message starting with \"health: \"", what, v)
		}
	}()
	f()
}

func TestRegisterPanics(t *testing.T) {
	c := newChecker(t)
	c.Register("dup", pass)
	for _, name := range []string{"", "a/b", "a b", "a:b", "drain", "dup", "é", strings.Repeat("x", 129), "a?b", "%2F"} {
		mustPanic(t, "Register("+name+")", func() { c.Register(name, pass) })
	}
	mustPanic(t, "Register(nil)", func() { c.Register("nilcheck", nil) })
	c.Register(strings.Repeat("x", 128), pass)                      // the longest name is fine
	c.Register("ok-Name_1.2", pass, nil, health.WithCritical(true)) // nil options ignored
}

func TestOptionPanics(t *testing.T) {
	for what, f := range map[string]func(){
		"WithKind(0)":           func() { health.WithKind(0) },
		"WithKind(8)":           func() { health.WithKind(8) },
		"WithTimeout(0)":        func() { health.WithTimeout(0) },
		"WithTimeout(-1)":       func() { health.WithTimeout(-1) },
		"WithInterval(-1)":      func() { health.WithInterval(-1) },
		"WithMinInterval(-1)":   func() { health.WithMinInterval(-1) },
		"WithGroup(\"\")":       func() { health.WithGroup("") },
		"WithGroup(readyz)":     func() { health.WithGroup("ok", "readyz") },
		"WithPollInterval(0)":   func() { health.WithPollInterval(0) },
		"WithDrainDelay(-1)":    func() { health.WithDrainDelay(-1) },
		"WithDrainTimeout(0)":   func() { health.WithDrainTimeout(0) },
		"Check(Liveness|Ready)": func() { health.New().Check(context.Background(), health.Liveness|health.Readiness) },
		"Check(0)":              func() { health.New().Check(context.Background(), 0) },
		"CheckOne(0)":           func() { health.New().CheckOne(context.Background(), 0, "x") },
		"Watch(nil)":            func() { health.New().Watch(nil) },
		"GracefulStopper(nil)":  func() { health.GracefulStopper(nil) },
		"PingCheck(nil)":        func() { health.PingCheck[error](nil) },
		"PingCheck[int]":        func() { health.PingCheck(func(context.Context) int { return 0 }) },
	} {
		mustPanic(t, what, f)
	}
}

func TestStrings(t *testing.T) {
	for _, tt := range []struct {
		give fmtStringer
		want string
	}{
		{health.Liveness, "liveness"}, {health.Readiness, "readiness"}, {health.Startup, "startup"},
		{health.Liveness | health.Startup, "liveness|startup"}, {health.Kind(0), "Kind(0)"}, {health.Kind(9), "Kind(9)"},
		{health.StatusPass, "pass"}, {health.StatusWarn, "warn"}, {health.StatusFail, "fail"}, {health.Status(7), "Status(7)"},
	} {
		if got := tt.give.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

type fmtStringer interface{ String() string }

func TestWarning(t *testing.T) {
	if health.Warning(nil) != nil {
		t.Error("Warning(nil) != nil")
	}
	w := health.Warning(errBoom)
	if !errors.Is(w, errBoom) || w.Error() != "boom" {
		t.Errorf("Warning(boom) = %v, want to wrap boom", w)
	}
}

func TestPanicAndGoexit(t *testing.T) {
	c := newChecker(t)
	c.Register("panics", func(context.Context) error { panic("oops") })
	c.Register("nilpanic", func(context.Context) error { panic(nil) })
	c.Register("exits", func(context.Context) error { runtime.Goexit(); return nil })
	rep := c.Check(context.Background(), health.Readiness)
	if rep.Status != health.StatusFail {
		t.Fatalf("Status = %v, want fail", rep.Status)
	}
	for _, r := range rep.Checks {
		if !errors.Is(r.Err, health.ErrPanic) {
			t.Errorf("%s: Err = %v, want ErrPanic", r.Name, r.Err)
		}
	}
	if !strings.Contains(rep.Checks[0].Err.Error(), "oops") {
		t.Errorf("Err = %v, want the panic value in it", rep.Checks[0].Err)
	}
}

func TestHangingCheckTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var runs atomic.Int64
		c := health.New()
		defer c.Close()
		// A check that ignores its context.
		c.Register("hangs", func(context.Context) error {
			runs.Add(1)
			<-release
			return nil
		})
		c.Register("fine", pass)
		// Held for an hour: the late pass must not overwrite the timeout.
		c.Register("hangs-cached", func(context.Context) error {
			<-release
			return nil
		}, health.WithMinInterval(time.Hour))
		start := time.Now()
		rep := c.Check(context.Background(), health.Readiness)
		if got := time.Since(start); got != health.DefaultTimeout {
			t.Errorf("probe took %v, want the 1 s timeout", got)
		}
		if rep.Status != health.StatusFail || !errors.Is(rep.Checks[0].Err, health.ErrTimeout) {
			t.Fatalf("Check = %v %v, want fail with ErrTimeout", rep.Status, rep.Checks[0].Err)
		}
		if rep.Checks[1].Status != health.StatusPass {
			t.Errorf("the other check = %v, want pass: checks run concurrently", rep.Checks[1].Status)
		}
		// Later probes do not start a second run while the first hangs,
		// and do not wait: the timeout stands.
		time.Sleep(10 * time.Second)
		start = time.Now()
		rep = c.Check(context.Background(), health.Readiness)
		if time.Since(start) != 0 || !errors.Is(rep.Checks[0].Err, health.ErrTimeout) {
			t.Errorf("probe while hung: took %v, err %v; want at once, ErrTimeout", time.Since(start), rep.Checks[0].Err)
		}
		if runs.Load() != 1 {
			t.Errorf("runs = %d, want 1 while the first hangs", runs.Load())
		}
		close(release)
		synctest.Wait()
		if r, _ := c.CheckOne(context.Background(), health.Readiness, "hangs-cached"); !errors.Is(r.Err, health.ErrTimeout) {
			t.Errorf("after a late pass: %v, want the timeout to stand", r.Err)
		}
		// The next probe runs the check again, which now passes.
		rep = c.Check(context.Background(), health.Readiness)
		if runs.Load() != 2 || rep.Checks[0].Status != health.StatusPass {
			t.Errorf("after release: runs %d, status %v; want 2, pass", runs.Load(), rep.Checks[0].Status)
		}
	})
}

func TestContextHonouringCheckTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := health.New()
		defer c.Close()
		c.Register("slow", func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		}, health.WithTimeout(250*time.Millisecond))
		start := time.Now()
		r, _ := c.CheckOne(context.Background(), health.Readiness, "slow")
		if got := time.Since(start); got != 250*time.Millisecond {
			t.Errorf("took %v, want 250ms", got)
		}
		if !errors.Is(r.Err, health.ErrTimeout) || r.Duration != 250*time.Millisecond {
			t.Errorf("result = %v after %v, want ErrTimeout after 250ms", r.Err, r.Duration)
		}
		if !strings.Contains(r.Err.Error(), "250ms") {
			t.Errorf("Err = %q, want the timeout in it", r.Err)
		}
	})
}

func TestMinInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := health.New()
		defer c.Close()
		fn, n := counted(nil)
		c.Register("db", fn)
		fn2, n2 := counted(nil)
		c.Register("every", fn2, health.WithMinInterval(0))
		ctx := context.Background()
		c.Check(ctx, health.Readiness)
		time.Sleep(999 * time.Millisecond)
		c.Check(ctx, health.Readiness)
		c.CheckOne(ctx, health.Readiness, "db")
		if n.Load() != 1 {
			t.Errorf("runs within the minimum interval = %d, want 1", n.Load())
		}
		if n2.Load() != 2 {
			t.Errorf("runs with WithMinInterval(0) = %d, want 2", n2.Load())
		}
		time.Sleep(time.Millisecond)
		c.Check(ctx, health.Readiness)
		if n.Load() != 2 {
			t.Errorf("runs after the minimum interval = %d, want 2", n.Load())
		}
	})
}

func TestConcurrentProbesShareOneRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := health.New()
		defer c.Close()
		var runs atomic.Int64
		c.Register("slow", func(ctx context.Context) error {
			runs.Add(1)
			time.Sleep(100 * time.Millisecond)
			return errBoom
		}, health.WithMinInterval(0))
		var wg sync.WaitGroup
		results := make([]health.Report, 50)
		for i := range results {
			wg.Go(func() { results[i] = c.Check(context.Background(), health.Readiness) })
		}
		wg.Wait()
		if runs.Load() != 1 {
			t.Errorf("50 concurrent probes ran the check %d times, want 1", runs.Load())
		}
		for _, r := range results {
			if r.Status != health.StatusFail {
				t.Fatalf("a probe saw %v, want fail", r.Status)
			}
		}
	})
}

func TestProbeContextEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := health.New()
		defer c.Close()
		var runs atomic.Int64
		c.Register("slow", func(ctx context.Context) error {
			runs.Add(1)
			time.Sleep(500 * time.Millisecond)
			return nil
		})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		rep := c.Check(ctx, health.Readiness)
		if rep.Status != health.StatusFail || !errors.Is(rep.Checks[0].Err, health.ErrNotRun) || !errors.Is(rep.Checks[0].Err, context.DeadlineExceeded) {
			t.Errorf("Check = %v %v, want fail with ErrNotRun wrapping the deadline", rep.Status, rep.Checks[0].Err)
		}
		// The run was not cancelled with the probe: its result serves the next one.
		time.Sleep(time.Second)
		rep = c.Check(context.Background(), health.Readiness)
		if rep.Status != health.StatusPass || runs.Load() != 1 {
			t.Errorf("next probe: %v after %d runs, want pass after 1", rep.Status, runs.Load())
		}
	})
}

func TestWithInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := health.New()
		type errBox struct{ err error }
		var state atomic.Pointer[errBox]
		state.Store(&errBox{})
		var runs atomic.Int64
		c.Register("bg", func(context.Context) error {
			runs.Add(1)
			return state.Load().err
		}, health.WithInterval(10*time.Second))
		synctest.Wait()
		if runs.Load() != 1 {
			t.Fatalf("runs at registration = %d, want 1", runs.Load())
		}
		for range 5 {
			if rep := c.Check(context.Background(), health.Readiness); rep.Status != health.StatusPass {
				t.Fatalf("Status = %v, want pass", rep.Status)
			}
		}
		if runs.Load() != 1 {
			t.Errorf("probes ran a background check: runs = %d, want 1", runs.Load())
		}
		state.Store(&errBox{errBoom})
		time.Sleep(9 * time.Second)
		if rep := c.Check(context.Background(), health.Readiness); rep.Status != health.StatusPass {
			t.Errorf("before the next tick: %v, want the cached pass", rep.Status)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if rep := c.Check(context.Background(), health.Readiness); rep.Status != health.StatusFail || runs.Load() != 2 {
			t.Errorf("after the tick: %v, runs %d; want fail, 2", rep.Status, runs.Load())
		}
		_ = c.Close()
		time.Sleep(time.Minute)
		if runs.Load() != 2 {
			t.Errorf("runs after Close = %d, want 2: the loop stopped", runs.Load())
		}
		// Closed: probes run the check on demand.
		state.Store(&errBox{})
		if rep := c.Check(context.Background(), health.Readiness); rep.Status != health.StatusPass || runs.Load() != 3 {
			t.Errorf("after Close: %v, runs %d; want pass, 3 (on demand)", rep.Status, runs.Load())
		}
		if err := c.Close(); err != nil {
			t.Errorf("second Close() = %v", err)
		}
	})
}

func TestWithContextStopsLoops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		var nilCtx context.Context // ignored
		c := health.New(health.WithContext(ctx), health.WithContext(nilCtx))
		defer c.Close()
		fn, n := counted(nil)
		c.Register("bg", fn, health.WithInterval(time.Second))
		var watched atomic.Int64
		c.Watch(func(context.Context) { watched.Add(1) })
		time.Sleep(3500 * time.Millisecond)
		if n.Load() != 4 {
			t.Errorf("runs = %d, want 4 (0 s, 1 s, 2 s, 3 s)", n.Load())
		}
		cancel()
		synctest.Wait()
		before, w := n.Load(), watched.Load()
		time.Sleep(10 * time.Second)
		if n.Load() != before || watched.Load() != w {
			t.Errorf("loops ran after the context ended: runs %d→%d, watch %d→%d", before, n.Load(), w, watched.Load())
		}
	})
}

func TestStartupLatch(t *testing.T) {
	c := newChecker(t)
	var ready atomic.Bool
	var runs atomic.Int64
	c.Register("warm", func(context.Context) error {
		runs.Add(1)
		if ready.Load() {
			return nil
		}
		return errBoom
	}, health.WithKind(health.Startup), health.WithMinInterval(0))
	ctx := context.Background()
	if rep := c.Check(ctx, health.Startup); rep.Status != health.StatusFail {
		t.Fatalf("before warm-up: %v, want fail", rep.Status)
	}
	ready.Store(true)
	if rep := c.Check(ctx, health.Startup); rep.Status != health.StatusPass {
		t.Fatalf("after warm-up: %v, want pass", rep.Status)
	}
	ready.Store(false)
	rep := c.Check(ctx, health.Startup)
	if rep.Status != health.StatusPass || runs.Load() != 2 {
		t.Errorf("after the latch: %v with %d runs; want pass, and no further run", rep.Status, runs.Load())
	}
	if len(rep.Checks) != 1 || rep.Checks[0].Status != health.StatusPass {
		t.Errorf("latched report lists %+v, want warm's last pass", rep.Checks)
	}
}

func TestObserve(t *testing.T) {
	c := newChecker(t)
	c.Register("queue", func(ctx context.Context) error {
		health.Observe(ctx, 42, "{job}")
		return nil
	})
	c.Register("plain", pass)
	health.Observe(context.Background(), 1, "x") // outside a check: nothing
	rep := c.Check(context.Background(), health.Readiness)
	if r := rep.Checks[0]; r.ObservedValue != 42 || r.ObservedUnit != "{job}" {
		t.Errorf("observed = %v %q, want 42 {job}", r.ObservedValue, r.ObservedUnit)
	}
	if r := rep.Checks[1]; r.ObservedValue != nil || r.ObservedUnit != "" {
		t.Errorf("plain observed = %v %q, want nothing", r.ObservedValue, r.ObservedUnit)
	}
}

func TestHugeDurations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := health.New(health.WithPollInterval(math.MaxInt64), health.WithDrainDelay(math.MaxInt64),
			health.WithDrainTimeout(math.MaxInt64))
		defer c.Close()
		c.Register("a", pass, health.WithTimeout(math.MaxInt64), health.WithMinInterval(math.MaxInt64))
		c.Register("b", pass, health.WithInterval(math.MaxInt64))
		if rep := c.Check(context.Background(), health.Readiness); rep.Status != health.StatusPass {
			t.Errorf("Status = %v, want pass", rep.Status)
		}
		stop := c.Watch(func(context.Context) {})
		stop()
		stop() // idempotent
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if graceful, err := c.Drain(ctx); !graceful || err != nil {
			t.Errorf("Drain with an ended context and no servers = %v, %v; want true, nil", graceful, err)
		}
	})
}

// TestRegisterWhileProbing registers and probes from many goroutines at
// once; run under -race.
func TestRegisterWhileProbing(t *testing.T) {
	c := newChecker(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 20 {
				c.Register("c"+string(rune('a'+i))+string(rune('a'+j)), pass, health.WithMinInterval(0),
					health.WithKind(health.Liveness|health.Readiness))
				c.Check(context.Background(), health.Readiness)
			}
		})
		wg.Go(func() {
			for range 20 {
				c.Check(context.Background(), health.Liveness, "caa")
			}
		})
	}
	wg.Wait()
	if got := len(c.Names(health.Readiness)); got != 160 {
		t.Errorf("registered %d checks, want 160", got)
	}
	if rep := c.Check(context.Background(), health.Readiness); rep.Status != health.StatusPass || len(rep.Checks) != 160 {
		t.Errorf("Check = %v with %d results, want pass with 160", rep.Status, len(rep.Checks))
	}
}

// TestCheckProbingItself: a check that probes its own Checker waits for
// its own run, which ends at its timeout: no deadlock, a failure.
func TestCheckProbingItself(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := health.New()
		defer c.Close()
		c.Register("self", func(ctx context.Context) error {
			if rep := c.Check(ctx, health.Readiness); rep.Status != health.StatusPass {
				return rep.Checks[0].Err
			}
			return nil
		})
		start := time.Now()
		rep := c.Check(context.Background(), health.Readiness)
		if rep.Status != health.StatusFail || !errors.Is(rep.Checks[0].Err, health.ErrTimeout) || time.Since(start) != health.DefaultTimeout {
			t.Errorf("self-probing check = %v %v after %v, want fail, ErrTimeout after 1 s", rep.Status, rep.Checks[0].Err, time.Since(start))
		}
	})
}
