package degrade

import (
	"context"
	"strconv"
	"strings"

	"github.com/bulwark-go/bulwark"
)

// Shedder refuses the less important tiers of work ([bulwark.PriorityFrom])
// by level, the way an overloaded service sheds load:
//
//	level  refuses                                 serves
//	0      nothing                                 every tier
//	1      Sheddable                               SheddablePlus, Critical, CriticalPlus
//	2      Sheddable, SheddablePlus                Critical, CriticalPlus
//	3      Sheddable, SheddablePlus, Critical      CriticalPlus
//
// [bulwark.CriticalPlus] is never shed by a level, and a tier is never
// refused while a lower one is served. Refusals wrap [ErrShed] (and
// [ErrDegraded]) and carry the shedder's name for [bulwark.Degraded].
//
// The level is steered as a [Switch] is: manual ([Shedder.SetLevel], the
// admin page) over config ([Load], [Watch]) over a trigger ([WithTrigger],
// typically [LevelsAbove] or [WhenAbove] on [CPUUsage]), else 0.
//
// Use [NewShedder]; the zero value is not usable. A Shedder is safe for
// concurrent use; Do and Admit of an admitted call allocate nothing.
type Shedder struct {
	c *core
}

// NewShedder returns a shedder named name at level 0. It panics if name is
// empty.
func NewShedder(name string, opts ...Option) *Shedder {
	if name == "" {
		panic("degrade: NewShedder: empty name")
	}
	c, o := newCore(name, kindShedder, MaxLevel, opts)
	for i := range c.refusals {
		tier := bulwark.Priority(i + int(bulwark.Sheddable))
		c.refusals[i] = &refusal{c: c, err: ErrShed,
			msg: "degrade: shedder " + strconv.Quote(name) + " sheds " + tier.String()}
	}
	s := &Shedder{c: c}
	c.m = newMetrics(c, o.mp)
	return s
}

// Name returns the shedder's name.
func (s *Shedder) Name() string { return s.c.name }

// Level returns the shed level in force, 0 … 3.
func (s *Shedder) Level() int {
	s.c.poll()
	return int(s.c.level.Load())
}

// SetLevel sets the level by hand, overriding config and trigger until
// [Shedder.Release]; reason is recorded with the change. A level below 0 is
// 0 and one above 3 is 3.
func (s *Shedder) SetLevel(level int, reason string) {
	s.c.set(srcManual, layer{set: true, level: clampLevel(level), reason: reason}, "")
}

// Release ends a manual override: config, else the trigger, else level 0
// decides again.
func (s *Shedder) Release() { s.c.set(srcManual, layer{}, "manual override released") }

// Status returns the shedder's level and the change that put it there.
func (s *Shedder) Status() Status { return s.c.statusNow() }

// Sheds reports whether the level in force refuses tier p.
func (s *Shedder) Sheds(p bulwark.Priority) bool {
	s.c.poll()
	return p.Index() < int(s.c.level.Load())
}

// Do runs fn unless the level sheds the tier of ctx; then it returns the
// refusal (wrapping [ErrShed]) or the fallback's answer. An ended context
// is answered with its error.
func (s *Shedder) Do(ctx context.Context, fn func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.c.poll()
	if l := s.c.level.Load(); l > 0 {
		if p := bulwark.PriorityFrom(ctx); p.Index() < int(l) {
			return s.c.refuse(ctx, p)
		}
	}
	return fn(ctx)
}

// Admit admits the call unless the level sheds the tier of ctx; see
// [bulwark.Admitter]. It never runs the fallback.
func (s *Shedder) Admit(ctx context.Context) (func(error), error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.c.poll()
	if l := s.c.level.Load(); l > 0 {
		if p := bulwark.PriorityFrom(ctx); p.Index() < int(l) {
			s.c.m.refuse(reasonRefused, p)
			return nil, s.c.refusals[p.Index()]
		}
	}
	return noopDone, nil
}

// Snapshot returns the shedder's state for the admin page: kind "shedder",
// state "level N", the figures "level" and "refused", and its recent
// changes.
func (s *Shedder) Snapshot() bulwark.Snapshot {
	st := s.c.statusNow()
	return s.c.snapshot([]bulwark.Figure{
		{Name: "level", Value: float64(st.Level)},
		{Name: "refused", Value: float64(s.c.m.refusedTotal()), Unit: "{call}"},
	})
}

var levelChoices = []string{"0", "1", "2", "3"}

// Actions declares the controls of a shedder: "set-level" (parameter
// "level", 0 … 3) and "release".
func (s *Shedder) Actions() []bulwark.Action {
	return []bulwark.Action{
		{Name: "set-level", Label: "Set level", Params: []bulwark.Param{{
			Name: "level", Label: "Level", Kind: bulwark.ParamChoice, Choices: levelChoices, Required: true,
			Help: "1 sheds sheddable, 2 also sheddable-plus, 3 also critical; critical-plus is never shed",
		}}},
		{Name: "release", Label: "Release override"},
	}
}

// Control performs "set-level" (args["level"] in 0 … 3, as
// [Shedder.SetLevel]) or "release" ([Shedder.Release]) with reason. An
// unknown action or a bad level returns an error wrapping
// [bulwark.ErrInvalidControl].
func (s *Shedder) Control(_ context.Context, action string, args map[string]string, reason string) error {
	switch action {
	case "set-level":
		l, err := strconv.Atoi(strings.TrimSpace(args["level"]))
		if err != nil || l < 0 || l > MaxLevel {
			return invalid("shedder %q: level must be 0, 1, 2 or 3, got %q", s.c.name, args["level"])
		}
		s.SetLevel(l, reason)
	case "release":
		if reason == "" {
			reason = "manual override released"
		}
		s.c.set(srcManual, layer{}, reason)
	default:
		return invalid("shedder %q: unknown action %q", s.c.name, action)
	}
	return nil
}

func clampLevel(l int) int { return min(max(l, 0), MaxLevel) }
