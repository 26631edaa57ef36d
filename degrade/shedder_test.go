package degrade_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/degrade"
)

func nan() float64 { return math.NaN() }

func TestShedderTable(t *testing.T) {
	tiers := []bulwark.Priority{bulwark.Sheddable, bulwark.SheddablePlus, bulwark.Critical, bulwark.CriticalPlus}
	// served[level][tier index]
	served := [4][4]bool{
		{true, true, true, true},
		{false, true, true, true},
		{false, false, true, true},
		{false, false, false, true},
	}
	for level := range 4 {
		for ti, tier := range tiers {
			t.Run("level "+strconv.Itoa(level)+"/"+tier.String(), func(t *testing.T) {
				s := degrade.NewShedder("api")
				s.SetLevel(level, "test")
				if got := s.Level(); got != level {
					t.Fatalf("Level() = %d, want %d", got, level)
				}
				ctx := bulwark.WithPriority(context.Background(), tier)
				want := served[level][ti]
				ran, err := run(s, ctx)
				if ran != want {
					t.Fatalf("Do() ran fn = %v (err %v), want %v", ran, err, want)
				}
				if got := s.Sheds(tier); got == want {
					t.Errorf("Sheds(%v) = %v, want %v", tier, got, !want)
				}
				done, aerr := s.Admit(ctx)
				if want {
					if err != nil || aerr != nil || done == nil {
						t.Fatalf("served tier: Do() = %v, Admit() = %v", err, aerr)
					}
					done(nil)
					return
				}
				for _, e := range []error{err, aerr} {
					if !errors.Is(e, degrade.ErrShed) || !errors.Is(e, degrade.ErrDegraded) || !errors.Is(e, bulwark.ErrUnavailable) {
						t.Errorf("refusal %v, want ErrShed, ErrDegraded, ErrUnavailable", e)
					}
					if name, ok := bulwark.Degraded(e); name != "api" || !ok {
						t.Errorf("bulwark.Degraded = %q, %v, want api", name, ok)
					}
				}
				if done != nil {
					t.Error("a refused Admit returned a done")
				}
			})
		}
	}
}

func TestShedderClampsLevel(t *testing.T) {
	s := degrade.NewShedder("api")
	for _, tt := range []struct{ give, want int }{{-5, 0}, {math.MaxInt, 3}, {math.MinInt, 0}, {4, 3}, {2, 2}} {
		s.SetLevel(tt.give, "clamp")
		if got := s.Level(); got != tt.want {
			t.Errorf("SetLevel(%d): Level() = %d, want %d", tt.give, got, tt.want)
		}
	}
	// A tier outside the four is treated as Critical.
	s.SetLevel(2, "x")
	if ran, _ := run(s, bulwark.WithPriority(context.Background(), bulwark.Priority(99))); !ran {
		t.Error("an invalid tier was shed at level 2; want it served as Critical")
	}
	s.SetLevel(3, "x")
	if ran, _ := run(s, bulwark.WithPriority(context.Background(), bulwark.Priority(-99))); ran {
		t.Error("an invalid tier was served at level 3; want it shed as Critical")
	}
}

// TestShedderNeverShedsAboveServed is the property "never refuse a tier
// while serving a lower one", over random levels set by every source.
func TestShedderNeverShedsAboveServed(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	reg := bulwark.NewRegistry()
	s := degrade.NewShedder("api")
	reg.Register(s)
	tiers := []bulwark.Priority{bulwark.Sheddable, bulwark.SheddablePlus, bulwark.Critical, bulwark.CriticalPlus}
	for i := range 500 {
		switch rng.IntN(4) {
		case 0:
			s.SetLevel(rng.IntN(9)-3, "random")
		case 1:
			s.Release()
		case 2:
			_ = degrade.Load(reg, stringsReader(`{"shedders":{"api":{"level":`+strconv.Itoa(rng.IntN(4))+`}}}`), quiet())
		case 3:
			_ = degrade.Load(reg, stringsReader(`{}`), quiet())
		}
		servedBelow := false
		for _, tier := range tiers { // lowest first
			ran, _ := run(s, bulwark.WithPriority(context.Background(), tier))
			if servedBelow && !ran {
				t.Fatalf("step %d, level %d: %v shed while a lower tier was served", i, s.Level(), tier)
			}
			servedBelow = servedBelow || ran
			if tier == bulwark.CriticalPlus && !ran {
				t.Fatalf("step %d, level %d: CriticalPlus shed", i, s.Level())
			}
		}
	}
}

func TestShedderControl(t *testing.T) {
	s := degrade.NewShedder("api")
	var c bulwark.Controller = s
	acts := c.Actions()
	if len(acts) != 2 || acts[0].Name != "set-level" || len(acts[0].Params) != 1 || acts[0].Params[0].Name != "level" || acts[1].Name != "release" {
		t.Fatalf("Actions() = %+v, want set-level(level), release", acts)
	}
	for _, bad := range []map[string]string{nil, {}, {"level": "4"}, {"level": "-1"}, {"level": "two"}, {"level": "99999999999999999999"}} {
		if err := c.Control(context.Background(), "set-level", bad, "x"); !errors.Is(err, bulwark.ErrInvalidControl) {
			t.Errorf("Control(set-level, %v) = %v, want ErrInvalidControl", bad, err)
		}
	}
	if s.Level() != 0 || s.Status().Source != "" {
		t.Fatalf("a rejected control changed the shedder: %+v", s.Status())
	}
	if err := c.Control(context.Background(), "set-level", map[string]string{"level": " 2 "}, "load test"); err != nil {
		t.Fatal(err)
	}
	if st := s.Status(); st.Level != 2 || st.Source != "manual" || st.Reason != "load test" {
		t.Errorf("Status() = %+v, want level 2 manual \"load test\"", st)
	}
	snap := s.Snapshot()
	if snap.Kind != "shedder" || snap.State != "level 2" || snap.Health != "warn" {
		t.Errorf("Snapshot() = %+v, want shedder level 2 warn", snap)
	}
	if err := c.Control(context.Background(), "unknown", nil, "x"); !errors.Is(err, bulwark.ErrInvalidControl) {
		t.Errorf("Control(unknown) = %v, want ErrInvalidControl", err)
	}
	if err := c.Control(context.Background(), "release", nil, "done"); err != nil || s.Level() != 0 {
		t.Errorf("Control(release) = %v, Level() = %d, want nil, 0", err, s.Level())
	}
	s.SetLevel(3, "all hands")
	if h := s.Snapshot().Health; h != "fail" {
		t.Errorf("level 3: Health = %q, want fail", h)
	}
}
