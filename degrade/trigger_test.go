package degrade_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/degrade"
)

func TestWhenSamplingInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var f flag
		f.on.Store(true)
		s := degrade.NewSwitch("recs", degrade.WithTrigger(degrade.When(f.cond, degrade.WithInterval(100*time.Millisecond))))
		if !s.On() {
			t.Fatal("On() = false on first use with the condition true, want true")
		}
		st := s.Status()
		if st.Source != "automatic" || st.Overridden || !strings.Contains(st.Reason, "condition true") {
			t.Errorf("Status() = %+v, want automatic, condition true", st)
		}
		f.on.Store(false)
		for range 1000 {
			if !s.On() {
				t.Fatal("the switch turned off before the sampling interval passed")
			}
			if ran, _ := run(s, context.Background()); ran {
				t.Fatal("Do ran fn while the switch was on")
			}
		}
		if n := f.calls.Load(); n != 1 {
			t.Errorf("cond called %d times within one interval, want 1", n)
		}
		time.Sleep(99 * time.Millisecond)
		if !s.On() {
			t.Fatal("off after 99ms of a 100ms interval")
		}
		time.Sleep(time.Millisecond)
		if s.On() {
			t.Fatal("still on once the interval passed and the condition is false")
		}
		if n := f.calls.Load(); n != 2 {
			t.Errorf("cond called %d times over two intervals, want 2", n)
		}
		ev := s.Snapshot().Events
		if len(ev) != 2 || ev[0].Source != "automatic" || ev[1].To != "off" || ev[1].Time.Sub(ev[0].Time) != 100*time.Millisecond {
			t.Errorf("events = %+v, want on then off, automatic, 100ms apart", ev)
		}
	})
}

func TestWhenAboveHysteresis(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g gauge
		s := degrade.NewSwitch("cpu", degrade.WithTrigger(degrade.WhenAbove(g.signal(), 0.9, 0.8, degrade.WithInterval(0))))
		steps := []struct {
			give float64
			want bool
		}{
			{0, false}, {0.85, false}, {0.9, true}, {0.85, true}, {0.8, true}, {0.7999, false},
			{0.89, false}, {1.5, true}, {nan(), true}, {0.1, false}, {nan(), false},
		}
		for i, st := range steps {
			g.set(st.give)
			if got := s.On(); got != st.want {
				t.Fatalf("step %d: signal %v: On() = %v, want %v", i, st.give, got, st.want)
			}
		}
		if n := len(s.Snapshot().Events); n != 4 {
			t.Errorf("%d events, want 4 (on, off, on, off)", n)
		}
	})
}

func TestTriggerHold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g gauge
		sh := degrade.NewShedder("api", degrade.WithTrigger(
			degrade.WhenAbove(g.signal(), 0.9, 0.8, degrade.WithInterval(0), degrade.WithHold(5*time.Second), degrade.WithLevel(2))))
		g.set(0.95)
		if l := sh.Level(); l != 2 {
			t.Fatalf("Level() = %d with the signal above on, want 2 (WithLevel)", l)
		}
		ctx := bulwark.WithPriority(context.Background(), bulwark.SheddablePlus)
		_, err := run(sh, ctx)
		if d, ok := bulwark.RetryAfter(err); !ok || d != 5*time.Second {
			t.Errorf("refusal RetryAfter = %v, %v, want the hold time 5s", d, ok)
		}
		g.set(0.1)
		time.Sleep(4 * time.Second)
		if l := sh.Level(); l != 2 {
			t.Fatalf("Level() = %d after 4s of a 5s hold, want 2", l)
		}
		_, err = run(sh, ctx)
		if d, ok := bulwark.RetryAfter(err); !ok || d != time.Second {
			t.Errorf("refusal RetryAfter = %v, %v, want the rest of the hold, 1s", d, ok)
		}
		time.Sleep(time.Second)
		if l := sh.Level(); l != 0 {
			t.Fatalf("Level() = %d once the hold passed, want 0", l)
		}
		// A raise restarts the hold.
		g.set(0.95)
		sh.Level()
		time.Sleep(3 * time.Second)
		g.set(0.95)
		sh.Level()
		g.set(0)
		time.Sleep(3 * time.Second)
		if l := sh.Level(); l != 2 {
			t.Errorf("Level() = %d 3s after the last sample above the threshold, want 2: the hold counts from it", l)
		}
		time.Sleep(2 * time.Second)
		if l := sh.Level(); l != 0 {
			t.Errorf("Level() = %d 5s after the last sample above the threshold, want 0", l)
		}
	})
}

func TestLevelsAbove(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g gauge
		sh := degrade.NewShedder("api", degrade.WithTrigger(
			degrade.LevelsAbove(g.signal(), []float64{0.5, 0.7, 0.9}, degrade.WithInterval(0), degrade.WithHysteresis(0.05))))
		steps := []struct {
			give float64
			want int
		}{
			{0, 0}, {0.5, 1}, {0.69, 1}, {0.7, 2}, {0.66, 2}, {0.649, 1}, {0.95, 3}, {0.86, 3},
			{0.84, 2}, {0.2, 0}, {0.9, 3}, {0.449, 0}, {0.7, 2}, {0.46, 1},
		}
		for i, st := range steps {
			g.set(st.give)
			if got := sh.Level(); got != st.want {
				t.Fatalf("step %d: signal %v: Level() = %d, want %d", i, st.give, got, st.want)
			}
		}
		// On a switch any level is on.
		g.set(0.6)
		sw := degrade.NewSwitch("sw", degrade.WithTrigger(degrade.LevelsAbove(g.signal(), []float64{0.5, 0.7}, degrade.WithInterval(0))))
		if !sw.On() {
			t.Error("a switch on a LevelsAbove trigger at level 1 is off, want on")
		}
		if l := sw.Status().Level; l != 1 {
			t.Errorf("the switch's Status().Level = %d, want 1", l)
		}
	})
}

func TestManualOverridesTriggerAndConfig(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var f flag
		s := degrade.NewSwitch("recs", degrade.WithTrigger(degrade.When(f.cond, degrade.WithInterval(0), degrade.WithReason("breaker open"))))
		reg := bulwark.NewRegistry()
		reg.Register(s)
		load := func(doc string) {
			t.Helper()
			if err := degrade.Load(reg, stringsReader(doc), quiet()); err != nil {
				t.Fatal(err)
			}
		}
		type want struct {
			on     bool
			source string
			reason string
		}
		check := func(step string, w want) {
			t.Helper()
			st := s.Status()
			if st.On != w.on || st.Source != w.source || st.Reason != w.reason {
				t.Fatalf("%s: Status() = on %v, %q, %q; want on %v, %q, %q", step, st.On, st.Source, st.Reason, w.on, w.source, w.reason)
			}
		}
		f.on.Store(true)
		check("trigger on", want{true, "automatic", "breaker open"})
		s.Set(false, "I know better")
		check("manual off beats trigger", want{false, "manual", "I know better"})
		load(`{"switches": {"recs": {"on": true, "reason": "cfg"}}}`)
		check("manual off beats config", want{false, "manual", "I know better"})
		s.Release()
		check("release hands back to config", want{true, "config", "cfg"})
		load(`{"switches": {"recs": {"on": false, "reason": "cfg off"}}}`)
		check("config off beats the trigger", want{false, "config", "cfg off"})
		load(`{}`)
		check("config gone hands back to the trigger", want{true, "automatic", "breaker open"})
		f.on.Store(false)
		check("trigger off", want{false, "automatic", "breaker open"})
		s.Set(true, "drill")
		check("manual on", want{true, "manual", "drill"})
		f.on.Store(true)
		f.on.Store(false)
		s.Release()
		check("release hands back to a fresh trigger", want{false, "automatic", "breaker open"})

		// Every change is counted by source in the events.
		count := map[string]int{}
		for _, e := range s.Snapshot().Events {
			count[e.Source]++
		}
		if count["manual"] != 4 || count["config"] != 2 || count["automatic"] != 2 {
			t.Errorf("events by source = %v, want manual 4, config 2 (the first load was shadowed by the override), automatic 2", count)
		}
	})
}

func TestOnChange(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []string
		s    *degrade.Switch
	)
	s = degrade.NewSwitch("recs", degrade.WithOnChange(func(old, new degrade.Status) {
		mu.Lock()
		seen = append(seen, new.Source+":"+new.Reason)
		mu.Unlock()
		if new.Reason == "first" {
			// The hook may read and steer the switch; the change it
			// makes is delivered after this call returns.
			_ = s.Status()
			s.Set(false, "from the hook")
		}
		if old.Name != "recs" {
			t.Errorf("old.Name = %q, want recs", old.Name)
		}
	}), degrade.WithOnChange(nil))
	s.Set(true, "first")
	s.Release()
	mu.Lock()
	defer mu.Unlock()
	want := "manual:first,manual:from the hook,:"
	if got := strings.Join(seen, ","); got != want {
		t.Errorf("OnChange saw %s, want %s", got, want)
	}
}

func TestTriggerPanicPassesThrough(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := true
		s := degrade.NewSwitch("recs", degrade.WithTrigger(degrade.When(func() bool {
			if boom {
				panic("cond exploded")
			}
			return true
		}, degrade.WithInterval(time.Second))))
		func() {
			defer func() {
				if r := recover(); r != "cond exploded" {
					t.Fatalf("recovered %v, want the cond's panic", r)
				}
			}()
			s.On()
		}()
		// The state stays usable; the condition is asked again after the
		// interval.
		if s.On() {
			t.Fatal("on before the condition answered")
		}
		boom = false
		time.Sleep(time.Second)
		if !s.On() {
			t.Fatal("off after the condition answered true")
		}
	})
}

func TestConcurrentTriggerAndControl(t *testing.T) {
	var g gauge
	sh := degrade.NewShedder("api", degrade.WithTrigger(degrade.LevelsAbove(g.signal(), []float64{1, 2, 3}, degrade.WithInterval(0))),
		degrade.WithOnChange(func(old, new degrade.Status) {}))
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 300 {
				switch (w + i) % 5 {
				case 0:
					g.set(float64(i % 4))
				case 1:
					sh.SetLevel(i%4, "race")
				case 2:
					sh.Release()
				default:
					err := sh.Do(bulwark.WithPriority(context.Background(), bulwark.Sheddable), func(context.Context) error { return nil })
					if err != nil && !errors.Is(err, degrade.ErrShed) {
						t.Errorf("Do() = %v", err)
					}
					_ = sh.Snapshot()
				}
			}
		})
	}
	wg.Wait()
}

func TestOnChangePanicDoesNotWedge(t *testing.T) {
	var seen []string
	s := degrade.NewSwitch("recs", degrade.WithOnChange(func(old, new degrade.Status) {
		seen = append(seen, new.Reason)
		if new.Reason == "boom" {
			panic("hook exploded")
		}
	}))
	func() {
		defer func() {
			if r := recover(); r != "hook exploded" {
				t.Fatalf("recovered %v, want the hook's panic", r)
			}
		}()
		s.Set(true, "boom")
	}()
	s.Set(false, "after")
	if got := strings.Join(seen, ","); got != "boom,after" {
		t.Errorf("OnChange saw %s, want boom,after", got)
	}
	if s.On() {
		t.Error("the switch is on after Set(false)")
	}
}

func TestHugeDurations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var f flag
		f.on.Store(true)
		s := degrade.NewSwitch("recs", degrade.WithTrigger(degrade.When(f.cond,
			degrade.WithInterval(math.MaxInt64), degrade.WithHold(math.MaxInt64))))
		for range 100 {
			if !s.On() {
				t.Fatal("off")
			}
		}
		if n := f.calls.Load(); n != 1 {
			t.Errorf("cond called %d times under a MaxInt64 interval, want 1", n)
		}
		_, err := run(s, context.Background())
		if d, ok := bulwark.RetryAfter(err); !ok || d < 100*365*24*time.Hour {
			t.Errorf("RetryAfter = %v, %v under a MaxInt64 hold, want a huge hint, not an overflow", d, ok)
		}

		var g flag
		g.on.Store(true)
		h := degrade.NewSwitch("held", degrade.WithTrigger(degrade.When(g.cond, degrade.WithInterval(0), degrade.WithHold(math.MaxInt64))))
		h.On()
		g.on.Store(false)
		time.Sleep(1000 * time.Hour)
		if !h.On() {
			t.Error("a MaxInt64 hold let the switch off")
		}
	})
}
