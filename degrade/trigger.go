package degrade

import (
	"math"
	"strconv"
	"time"
)

// DefaultInterval is a trigger's sampling interval unless [WithInterval]
// says otherwise.
const DefaultInterval = time.Second

// Trigger turns a [Switch] on and off, or sets a [Shedder]'s level, from a
// condition or a signal; give it with [WithTrigger]. Make one with [When],
// [WhenAbove] or [LevelsAbove].
//
// A trigger runs no goroutine: it is evaluated lazily, when the switch or
// shedder is used (Do, Admit, On, Level, Status, Snapshot) and at least its
// sampling interval ([WithInterval]) has passed since the last evaluation,
// as x/time/rate refills its bucket. The condition or signal is called on
// the caller's goroutine, by one caller at a time (the others keep the
// state in force meanwhile); it must be fast and safe for concurrent use.
//
// A trigger raises the state as soon as an evaluation calls for it, and
// lowers it only when the signal fell below the lower threshold
// (hysteresis) and the state has been held at least the minimum hold time
// ([WithHold]).
//
// A Trigger is an immutable description: each switch or shedder given the
// same Trigger keeps its own state.
type Trigger struct {
	cond     func() bool
	signal   func() float64
	ons      []float64 // level i+1 at or above ons[i]
	offs     []float64 // level i+1 kept while at or above offs[i]
	onLevel  int       // the level of a When or WhenAbove trigger when on
	levels   bool      // LevelsAbove: raw levels are the policy's levels
	gap      float64   // LevelsAbove's hysteresis
	hold     time.Duration
	interval time.Duration
	reason   string
}

// TriggerOption configures a [Trigger]. Nil options are ignored; the last
// one wins.
type TriggerOption interface{ applyTrigger(*Trigger) }

type triggerOptionFunc func(*Trigger)

func (f triggerOptionFunc) applyTrigger(t *Trigger) { f(t) }

// WithHold sets the minimum time a trigger keeps a raised state before it
// lowers it, counted from the last sample that called for that state (the
// condition true, the signal at or above the level's threshold), so that a
// signal hovering at the threshold does not flap. It panics if d is
// negative.
// Default: 0.
func WithHold(d time.Duration) TriggerOption {
	if d < 0 {
		panic("degrade: WithHold: d must be >= 0, got " + d.String())
	}
	return triggerOptionFunc(func(t *Trigger) { t.hold = d })
}

// WithInterval sets the minimum time between two evaluations of the
// trigger's condition or signal; between them the state in force holds. 0
// evaluates on every use (for a condition as cheap as an atomic load). It
// panics if d is negative.
// Default: [DefaultInterval] (1 s).
func WithInterval(d time.Duration) TriggerOption {
	if d < 0 {
		panic("degrade: WithInterval: d must be >= 0, got " + d.String())
	}
	return triggerOptionFunc(func(t *Trigger) { t.interval = d })
}

// WithReason sets the reason recorded with the trigger's changes (see
// [Status]), such as "payments breaker open".
// Default: a description of the condition or of the signal's value and
// threshold.
func WithReason(reason string) TriggerOption {
	return triggerOptionFunc(func(t *Trigger) { t.reason = reason })
}

// WithLevel sets the shedder level a [When] or [WhenAbove] trigger sets
// while on; on a switch any level is "on". It panics unless level is in
// [1, 3]. It has no effect on [LevelsAbove], whose levels are its
// thresholds'.
// Default: 1.
func WithLevel(level int) TriggerOption {
	if level < 1 || level > MaxLevel {
		panic("degrade: WithLevel: level must be in [1, 3], got " + strconv.Itoa(level))
	}
	return triggerOptionFunc(func(t *Trigger) { t.onLevel = level })
}

// WithHysteresis sets the gap of a [LevelsAbove] trigger: level i is left
// when the signal falls below thresholds[i-1] - gap. It panics if gap is
// negative or NaN. It has no effect on When and WhenAbove.
// Default: 0 (a level is left as soon as the signal falls below its
// threshold).
func WithHysteresis(gap float64) TriggerOption {
	if !(gap >= 0) {
		panic("degrade: WithHysteresis: gap must be >= 0, got " + strconv.FormatFloat(gap, 'g', -1, 64))
	}
	return triggerOptionFunc(func(t *Trigger) { t.gap = gap })
}

func newTrigger(t *Trigger, opts []TriggerOption) *Trigger {
	t.interval = DefaultInterval
	t.onLevel = 1
	for _, o := range opts {
		if o != nil {
			o.applyTrigger(t)
		}
	}
	return t
}

// When returns a trigger that is on while cond returns true, as in
// degrade.When(func() bool { return b.State() == breaker.StateOpen }). It
// panics if cond is nil.
func When(cond func() bool, opts ...TriggerOption) *Trigger {
	if cond == nil {
		panic("degrade: When: nil cond")
	}
	return newTrigger(&Trigger{cond: cond}, opts)
}

// WhenAbove returns a trigger that turns on when signal is at or above on
// and off again when it falls below off (hysteresis: off <= on), as in
// degrade.WhenAbove(degrade.CPUUsage(), 0.9, 0.8). A NaN signal changes
// nothing. It panics if signal is nil, a threshold is NaN or off > on.
func WhenAbove(signal func() float64, on, off float64, opts ...TriggerOption) *Trigger {
	if signal == nil {
		panic("degrade: WhenAbove: nil signal")
	}
	if math.IsNaN(on) || math.IsNaN(off) || off > on {
		panic("degrade: WhenAbove: want off <= on, got on " + ftoa(on) + ", off " + ftoa(off))
	}
	return newTrigger(&Trigger{signal: signal, ons: []float64{on}, offs: []float64{off}}, opts)
}

// LevelsAbove returns a shedder trigger with one level per threshold: level
// i while signal is at or above thresholds[i-1], so
// degrade.LevelsAbove(degrade.CPUUsage(), []float64{0.8, 0.9, 0.95})
// sheds Sheddable from 80% CPU, SheddablePlus from 90% and Critical from
// 95%. A level is left when the signal falls below its threshold minus the
// gap of [WithHysteresis]. A NaN signal changes nothing. On a switch, any
// level is "on".
//
// The thresholds are a slice, not variadic, so that the trigger options can
// follow them. It panics if signal is nil, if there are no thresholds or
// more than three, or if they are NaN or not strictly increasing.
func LevelsAbove(signal func() float64, thresholds []float64, opts ...TriggerOption) *Trigger {
	if signal == nil {
		panic("degrade: LevelsAbove: nil signal")
	}
	if len(thresholds) == 0 || len(thresholds) > MaxLevel {
		panic("degrade: LevelsAbove: want 1 to 3 thresholds, got " + strconv.Itoa(len(thresholds)))
	}
	for i, th := range thresholds {
		if math.IsNaN(th) || i > 0 && !(th > thresholds[i-1]) {
			panic("degrade: LevelsAbove: thresholds must be strictly increasing numbers")
		}
	}
	t := newTrigger(&Trigger{signal: signal, ons: append([]float64(nil), thresholds...), levels: true}, opts)
	t.offs = make([]float64, len(t.ons))
	for i, th := range t.ons {
		t.offs[i] = th - t.gap
	}
	return t
}

// eval samples the condition or signal and returns the trigger's next raw
// level after cur (0 … len(ons); 0 or 1 for a condition), the level the
// sample alone calls for, the sampled value, and false when the sample was
// NaN (no change).
func (t *Trigger) eval(cur int) (next, up int, v float64, ok bool) {
	if t.cond != nil {
		if t.cond() {
			return 1, 1, 1, true
		}
		return 0, 0, 0, true
	}
	v = t.signal()
	if math.IsNaN(v) {
		return cur, cur, v, false
	}
	sticky := 0
	for i := range t.ons {
		if v >= t.ons[i] {
			up = i + 1
		}
		if v >= t.offs[i] {
			sticky = i + 1
		}
	}
	if up > cur {
		return up, up, v, true
	}
	return max(up, min(cur, sticky)), up, v, true
}

// level maps a raw level to the policy's level.
func (t *Trigger) level(raw int) int {
	if t.levels || raw == 0 {
		return raw
	}
	return t.onLevel
}

// why describes a change of the raw level from → to after sampling v.
func (t *Trigger) why(from, to int, v float64) string {
	if t.reason != "" {
		return t.reason
	}
	if t.cond != nil {
		if to > 0 {
			return "trigger: condition true"
		}
		return "trigger: condition false"
	}
	switch {
	case to > from || to == from && to > 0:
		return "trigger: signal " + ftoa(v) + " at or above " + ftoa(t.ons[to-1])
	case to < from:
		return "trigger: signal " + ftoa(v) + " below " + ftoa(t.offs[from-1])
	}
	return "trigger: signal " + ftoa(v) + " below " + ftoa(t.ons[0])
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', 4, 64) }
