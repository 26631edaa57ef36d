package degrade_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/degrade"
)

var errFn = errors.New("fn failed")

// run calls p.Do and reports whether fn ran and what Do returned.
func run(p bulwark.Policy, ctx context.Context) (ran bool, err error) {
	err = p.Do(ctx, func(context.Context) error {
		ran = true
		return nil
	})
	return ran, err
}

func TestSwitchDo(t *testing.T) {
	tests := []struct {
		name    string
		give    func(s *degrade.Switch)
		wantOn  bool
		wantSrc string
	}{
		{"new", func(*degrade.Switch) {}, false, ""},
		{"set on", func(s *degrade.Switch) { s.Set(true, "incident") }, true, "manual"},
		{"set off", func(s *degrade.Switch) { s.Set(false, "all clear") }, false, "manual"},
		{"on then off", func(s *degrade.Switch) { s.Set(true, "a"); s.Set(false, "b") }, false, "manual"},
		{"on then release", func(s *degrade.Switch) { s.Set(true, "a"); s.Release() }, false, ""},
		{"release without override", func(s *degrade.Switch) { s.Release() }, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := degrade.NewSwitch("recs")
			tt.give(s)
			if got := s.On(); got != tt.wantOn {
				t.Fatalf("On() = %v, want %v", got, tt.wantOn)
			}
			if got := s.Status().Source; got != tt.wantSrc {
				t.Errorf("Status().Source = %q, want %q", got, tt.wantSrc)
			}
			ran, err := run(s, context.Background())
			if tt.wantOn {
				if ran || !errors.Is(err, degrade.ErrDegraded) || !errors.Is(err, bulwark.ErrUnavailable) {
					t.Fatalf("Do() ran fn = %v, err = %v; want a refusal wrapping ErrDegraded and ErrUnavailable", ran, err)
				}
				if name, ok := bulwark.Degraded(err); !ok || name != "recs" {
					t.Errorf("bulwark.Degraded(err) = %q, %v, want \"recs\", true", name, ok)
				}
				if _, ok := bulwark.RetryAfter(err); ok {
					t.Error("a manual refusal carries a retry hint; want none without WithRetryAfter")
				}
				done, err := s.Admit(context.Background())
				if done != nil || !errors.Is(err, degrade.ErrDegraded) {
					t.Errorf("Admit() = %v, %v, want nil, ErrDegraded", done != nil, err)
				}
				return
			}
			if !ran || err != nil {
				t.Fatalf("Do() ran fn = %v, err = %v; want fn run and nil", ran, err)
			}
			done, err := s.Admit(context.Background())
			if done == nil || err != nil {
				t.Fatalf("Admit() = %v, %v, want a done, nil", done != nil, err)
			}
			done(nil)
			done(errFn)
		})
	}
}

func TestSwitchStatusAndEvents(t *testing.T) {
	s := degrade.NewSwitch("recs")
	before := time.Now()
	s.Set(true, "INC-1")
	st := s.Status()
	if !st.On || st.Level != 1 || st.Source != "manual" || st.Reason != "INC-1" || !st.Overridden || st.Changed.Before(before) || st.Name != "recs" {
		t.Fatalf("Status() = %+v, want on, level 1, manual, INC-1, overridden, changed now", st)
	}
	s.Release()
	snap := s.Snapshot()
	if snap.Kind != "switch" || snap.State != "off" || snap.Health != "ok" || snap.Name != "recs" {
		t.Errorf("Snapshot() = %+v, want switch recs off ok", snap)
	}
	if len(snap.Events) != 2 {
		t.Fatalf("Snapshot().Events = %+v, want 2 events", snap.Events)
	}
	if e := snap.Events[0]; e.From != "off" || e.To != "on" || e.Source != "manual" || e.Reason != "INC-1" {
		t.Errorf("event 0 = %+v, want off → on manual INC-1", e)
	}
	if e := snap.Events[1]; e.From != "on" || e.To != "off" || e.Source != "manual" || !strings.Contains(e.Reason, "released") {
		t.Errorf("event 1 = %+v, want on → off manual released", e)
	}
}

func TestSwitchFallback(t *testing.T) {
	cached := errors.New("served from cache")
	var gotErr error
	s := degrade.NewSwitch("recs", degrade.WithFallback(func(ctx context.Context, err error) error {
		gotErr = err
		return cached
	}), degrade.WithFallback(nil))
	if ran, err := run(s, context.Background()); !ran || err != nil {
		t.Fatalf("off: Do() ran = %v, err = %v, want fn run, nil", ran, err)
	}
	if gotErr != nil {
		t.Fatal("the fallback ran while the switch was off")
	}
	s.Set(true, "test")
	ran, err := run(s, context.Background())
	if ran || err != cached {
		t.Fatalf("on: Do() ran = %v, err = %v, want the fallback's %v", ran, err, cached)
	}
	if !errors.Is(gotErr, degrade.ErrDegraded) {
		t.Errorf("the fallback got %v, want the refusal", gotErr)
	}
	// Admit cannot run a fallback.
	if done, err := s.Admit(context.Background()); done != nil || !errors.Is(err, degrade.ErrDegraded) {
		t.Errorf("Admit() = %v, %v, want a refusal", done != nil, err)
	}
}

func TestSwitchRetryAfter(t *testing.T) {
	s := degrade.NewSwitch("recs", degrade.WithRetryAfter(30*time.Second))
	s.Set(true, "test")
	_, err := run(s, context.Background())
	if d, ok := bulwark.RetryAfter(err); !ok || d != 30*time.Second {
		t.Errorf("RetryAfter = %v, %v, want 30s", d, ok)
	}
}

func TestEndedContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	sw := degrade.NewSwitch("s")
	sw.Set(true, "x") // the context's error wins over the refusal
	for _, p := range []bulwark.Policy{sw, degrade.NewSwitch("off"), degrade.NewShedder("sh")} {
		if ran, err := run(p, ctx); ran || !errors.Is(err, context.Canceled) {
			t.Errorf("%T: Do() ran = %v, err = %v, want context.Canceled without fn", p, ran, err)
		}
		if done, err := p.(bulwark.Admitter).Admit(ctx); done != nil || !errors.Is(err, context.Canceled) {
			t.Errorf("%T: Admit() = %v, %v, want nil, context.Canceled", p, done != nil, err)
		}
	}
}

func TestSwitchControl(t *testing.T) {
	s := degrade.NewSwitch("recs")
	var c bulwark.Controller = s
	var names []string
	for _, a := range c.Actions() {
		names = append(names, a.Name)
	}
	if got := strings.Join(names, ","); got != "on,off,release" {
		t.Errorf("Actions() = %s, want on,off,release", got)
	}
	steps := []struct {
		action  string
		wantErr bool
		wantOn  bool
		wantSrc string
	}{
		{"on", false, true, "manual"},
		{"explode", true, true, "manual"},
		{"", true, true, "manual"},
		{"off", false, false, "manual"},
		{"release", false, false, ""},
	}
	for _, st := range steps {
		err := c.Control(context.Background(), st.action, nil, "admin "+st.action)
		if st.wantErr != errors.Is(err, bulwark.ErrInvalidControl) {
			t.Fatalf("Control(%q) = %v, want ErrInvalidControl: %v", st.action, err, st.wantErr)
		}
		if got := s.Status(); got.On != st.wantOn || got.Source != st.wantSrc {
			t.Fatalf("after Control(%q): Status() = %+v, want on %v source %q", st.action, got, st.wantOn, st.wantSrc)
		}
	}
	if got := s.Status().Reason; got != "" {
		t.Errorf("after release to the default: Reason = %q, want empty", got)
	}
	last := s.Snapshot().Events
	if e := last[len(last)-1]; e.Reason != "admin release" || e.Source != "manual" {
		t.Errorf("the release event = %+v, want reason \"admin release\", manual", e)
	}
}

func TestConstructorPanics(t *testing.T) {
	tests := []struct {
		name string
		give func()
	}{
		{"NewSwitch empty name", func() { degrade.NewSwitch("") }},
		{"NewShedder empty name", func() { degrade.NewShedder("") }},
		{"WithRetryAfter negative", func() { degrade.WithRetryAfter(-1) }},
		{"When nil", func() { degrade.When(nil) }},
		{"WhenAbove nil", func() { degrade.WhenAbove(nil, 1, 0) }},
		{"WhenAbove off > on", func() { degrade.WhenAbove(func() float64 { return 0 }, 0.5, 0.6) }},
		{"WhenAbove NaN", func() { degrade.WhenAbove(func() float64 { return 0 }, nan(), 0) }},
		{"LevelsAbove none", func() { degrade.LevelsAbove(func() float64 { return 0 }, nil) }},
		{"LevelsAbove four", func() { degrade.LevelsAbove(func() float64 { return 0 }, []float64{1, 2, 3, 4}) }},
		{"LevelsAbove not increasing", func() { degrade.LevelsAbove(func() float64 { return 0 }, []float64{1, 1}) }},
		{"LevelsAbove nil", func() { degrade.LevelsAbove(nil, []float64{1}) }},
		{"WithHold negative", func() { degrade.WithHold(-time.Second) }},
		{"WithInterval negative", func() { degrade.WithInterval(-time.Second) }},
		{"WithLevel 0", func() { degrade.WithLevel(0) }},
		{"WithLevel 4", func() { degrade.WithLevel(4) }},
		{"WithHysteresis negative", func() { degrade.WithHysteresis(-0.1) }},
		{"WithHysteresis NaN", func() { degrade.WithHysteresis(nan()) }},
		{"Load nil registry", func() { _ = degrade.Load(nil, strings.NewReader("{}")) }},
		{"Watch zero interval", func() { _ = degrade.Watch(context.Background(), bulwark.NewRegistry(), "x", 0) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if r == nil {
					t.Fatal("did not panic")
				}
				if s, ok := r.(string); !ok || !strings.HasPrefix(s, "degrade: ") {
					t.Errorf("panic %v, want a message naming the package", r)
				}
			}()
			tt.give()
		})
	}
}
