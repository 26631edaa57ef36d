package degrade

import (
	"context"
	"strconv"

	"github.com/bulwark-go/bulwark"
)

const (
	kindSwitch  = "switch"
	kindShedder = "shedder"
)

// Switch is a named degradation switch: while it is on, the service gives
// up one non-essential thing — recommendations, fresh data, batch traffic —
// rather than falling over as a whole.
//
// Code paths ask [Switch.On] ("omit recommendations while degraded"); as a
// [bulwark.Policy] and [bulwark.Admitter] a Switch refuses calls with
// [ErrDegraded] while on, or runs the fallback of [WithFallback] instead.
//
// Three sources steer it, the first that has a say wins: a manual override
// ([Switch.Set], the admin page's controls) until [Switch.Release]; a
// config value ([Load], [Watch]) until the config no longer names the
// switch; a trigger ([WithTrigger]), evaluated lazily on use. With none of
// them the switch is off. Every change is recorded with its source, reason
// and time ([Switch.Status], [Switch.Snapshot], [WithOnChange]).
//
// Use [NewSwitch]; the zero value is not usable. A Switch is safe for
// concurrent use; Do and Admit while off allocate nothing.
type Switch struct {
	c *core
}

// NewSwitch returns a switch named name, off. The name is its registry name,
// its metric attribute and what refusals carry (the Bulwark-Degraded
// header). It panics if name is empty.
func NewSwitch(name string, opts ...Option) *Switch {
	if name == "" {
		panic("degrade: NewSwitch: empty name")
	}
	c, o := newCore(name, kindSwitch, 1, opts)
	r := &refusal{c: c, err: ErrDegraded, msg: "degrade: switch " + strconv.Quote(name) + " is on"}
	for i := range c.refusals {
		c.refusals[i] = r
	}
	s := &Switch{c: c}
	c.m = newMetrics(c, o.mp)
	return s
}

// Name returns the switch's name.
func (s *Switch) Name() string { return s.c.name }

// On reports whether the switch is on.
func (s *Switch) On() bool {
	s.c.poll()
	return s.c.level.Load() > 0
}

// Set turns the switch on or off by hand, overriding config and trigger
// until [Switch.Release]; reason is recorded with the change.
func (s *Switch) Set(on bool, reason string) {
	s.c.set(srcManual, layer{set: true, level: b2i(on), reason: reason}, "")
}

// Release ends a manual override: config, else the trigger, else "off"
// decides again. It does nothing but record an event when there is no
// override.
func (s *Switch) Release() { s.release("manual override released") }

func (s *Switch) release(reason string) { s.c.set(srcManual, layer{}, reason) }

// Status returns the switch's state and the change that put it there.
func (s *Switch) Status() Status { return s.c.statusNow() }

// Do runs fn unless the switch is on; then it returns the refusal (wrapping
// [ErrDegraded], with the switch's name for [bulwark.Degraded]) or the
// fallback's answer. An ended context is answered with its error.
func (s *Switch) Do(ctx context.Context, fn func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.c.poll()
	if s.c.level.Load() == 0 {
		return fn(ctx)
	}
	return s.c.refuse(ctx, bulwark.PriorityFrom(ctx))
}

// Admit admits the call unless the switch is on; see [bulwark.Admitter]. It
// never runs the fallback.
func (s *Switch) Admit(ctx context.Context) (func(error), error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.c.poll()
	if s.c.level.Load() == 0 {
		return noopDone, nil
	}
	p := bulwark.PriorityFrom(ctx)
	s.c.m.refuse(reasonRefused, p)
	return nil, s.c.refusals[p.Index()]
}

// Snapshot returns the switch's state for the admin page: kind "switch",
// state "on" or "off", the figure "refused", and its recent changes.
func (s *Switch) Snapshot() bulwark.Snapshot {
	return s.c.snapshot([]bulwark.Figure{{Name: "refused", Value: float64(s.c.m.refusedTotal()), Unit: "{call}"}})
}

// Actions declares the controls of a switch: "on", "off" and "release".
func (s *Switch) Actions() []bulwark.Action {
	return []bulwark.Action{
		{Name: "on", Label: "Turn on"},
		{Name: "off", Label: "Turn off"},
		{Name: "release", Label: "Release override"},
	}
}

// Control performs "on", "off" (manual overrides, as [Switch.Set]) or
// "release" ([Switch.Release]) with reason; args are not used. Another
// action returns an error wrapping [bulwark.ErrInvalidControl].
func (s *Switch) Control(_ context.Context, action string, _ map[string]string, reason string) error {
	switch action {
	case "on", "off":
		s.Set(action == "on", reason)
	case "release":
		if reason == "" {
			reason = "manual override released"
		}
		s.release(reason)
	default:
		return invalid("switch %q: unknown action %q", s.c.name, action)
	}
	return nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
