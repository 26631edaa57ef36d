package breaker

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/bulwark-go/bulwark"
)

// Name returns the breaker's name, as given to [New].
func (b *Breaker) Name() string { return b.c.name }

// Name returns the group's name, as given to [NewGroup].
func (g *Group) Name() string { return g.c.name }

// HealthCheck fails while the breaker refuses every call because it is
// open, forced open or paused, with the error a call would get (it wraps [ErrOpen] and
// carries the time until the next probe); it passes when the breaker is
// closed, half-open (probes are finding out) or disabled. An ended ctx is
// answered with ctx.Err(). It is a plain func(context.Context) error, for
// health checks, and advances the state as [Breaker.State] does.
func (b *Breaker) HealthCheck(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var err error
	switch b.State() {
	case StateForcedOpen:
		err = b.forcedErr
	case StatePaused:
		err = b.refusal(&b.lastPause, refusedPaused, b.pauseLeft())
	case StateOpen:
		err = b.refusal(&b.lastOpen, refusedOpen, b.untilProbe())
	}
	return err
}

// health is how the admin page colours a state: closed ok, half-open and
// disabled warn, open fail.
func (s State) health() string {
	switch s {
	case StateHalfOpen, StateDisabled:
		return "warn"
	case StateOpen, StateForcedOpen, StatePaused:
		return "fail"
	}
	return "ok"
}

// Snapshot reports the breaker for the admin page (bulwark.Snapshotter):
// kind "breaker", its state (closed, half-open, open, forced-open,
// disabled) and health, the counts of its window, the failure ratio, the
// seconds until the next probe, and its recent transitions with their
// source (automatic or manual) and reason.
func (b *Breaker) Snapshot() bulwark.Snapshot {
	s := b.State()
	n := b.Counts()
	figs := []bulwark.Figure{
		{Name: "requests", Value: float64(n.Requests), Unit: "{call}"},
		{Name: "successes", Value: float64(n.Successes), Unit: "{call}"},
		{Name: "failures", Value: float64(n.Failures), Unit: "{call}"},
		{Name: "excluded", Value: float64(n.Excluded), Unit: "{call}"},
	}
	if b.c.o.slowRatio > 0 {
		figs = append(figs, bulwark.Figure{Name: "slow", Value: float64(n.Slow), Unit: "{call}"})
	}
	ratio := 0.0
	if c := n.Successes + n.Failures; c > 0 {
		ratio = float64(n.Failures) / float64(c)
	}
	figs = append(figs,
		bulwark.Figure{Name: "failure ratio", Value: ratio, Unit: "1"},
		bulwark.Figure{Name: "until probe", Value: b.untilProbe().Seconds(), Unit: "s"},
	)
	if b.c.o.pauseOnHint {
		figs = append(figs, bulwark.Figure{Name: "pause left", Value: b.pauseLeft().Seconds(), Unit: "s"})
	}
	snap := bulwark.Snapshot{
		Name:    b.c.name,
		Kind:    "breaker",
		State:   s.label(),
		Health:  s.health(),
		Figures: figs,
		Events:  b.c.log.Events(),
	}
	if e, ok := b.c.log.Last(); ok {
		snap.Changed, snap.Source, snap.Reason = e.Time, e.Source, e.Reason
	}
	return snap
}

// Snapshot reports the group for the admin page (bulwark.Snapshotter):
// kind "breaker-group"; its state is "closed" when no member refuses or
// probes, else the number of members in each such state ("2 open,
// 1 half-open"); figures are the live members by state and the calls by
// outcome; events are its members' transitions, each reason naming the key.
func (g *Group) Snapshot() bulwark.Snapshot {
	t := g.c.tel
	var by [numStates]int64
	for s := range State(numStates) {
		by[s] = t.members[s].Load()
	}
	var parts []string
	health := "ok"
	for _, s := range []State{StateOpen, StateForcedOpen, StatePaused, StateHalfOpen, StateDisabled} {
		if by[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", by[s], s.label()))
			if h := s.health(); h == "fail" || health == "ok" {
				health = h
			}
		}
	}
	state := "closed"
	if len(parts) > 0 {
		state = strings.Join(parts, ", ")
	}
	var figs []bulwark.Figure
	for s := range State(numStates) {
		figs = append(figs, bulwark.Figure{Name: s.label(), Value: float64(by[s]), Unit: "{breaker}"})
	}
	outs := [...]string{outSuccess: "successes", outFailure: "failures", outIgnored: "ignored", outRefused: "refused"}
	for i, name := range outs {
		figs = append(figs, bulwark.Figure{Name: name, Value: float64(t.calls.Load(i)), Unit: "{call}"})
	}
	snap := bulwark.Snapshot{
		Name:    g.c.name,
		Kind:    "breaker-group",
		State:   state,
		Health:  health,
		Figures: figs,
		Events:  g.c.log.Events(),
	}
	if e, ok := g.c.log.Last(); ok {
		snap.Changed, snap.Source, snap.Reason = e.Time, e.Source, e.Reason
	}
	return snap
}

// The actions of a breaker and a group.
const (
	actionForceOpen = "force-open"
	actionDisable   = "disable"
	actionReset     = "reset"
)

var breakerActions = []bulwark.Action{
	{Name: actionForceOpen, Label: "Force open"},
	{Name: actionDisable, Label: "Disable"},
	{Name: actionReset, Label: "Reset"},
}

// Actions declares force-open, disable and reset (bulwark.Controller),
// none with parameters.
func (b *Breaker) Actions() []bulwark.Action {
	return slices.Clone(breakerActions)
}

// Control performs force-open ([Breaker.ForceOpen]), disable
// ([Breaker.Disable]) or reset ([Breaker.Reset]), recording it as a manual
// change with reason (bulwark.Controller). An unknown action or any
// argument returns an error wrapping bulwark.ErrInvalidControl; an ended
// ctx returns ctx.Err() and changes nothing.
func (b *Breaker) Control(ctx context.Context, action string, args map[string]string, reason string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(args) > 0 {
		return fmt.Errorf("%w: breaker %q: %s takes no parameters, got %s", bulwark.ErrInvalidControl, b.c.name, action, strings.Join(slices.Sorted(maps.Keys(args)), ", "))
	}
	switch action {
	case actionForceOpen:
		b.setMode(modeForced, StateForcedOpen, reason)
	case actionDisable:
		b.setMode(modeDisabled, StateDisabled, reason)
	case actionReset:
		b.reset(reason)
	default:
		return fmt.Errorf("%w: breaker %q: unknown action %q", bulwark.ErrInvalidControl, b.c.name, action)
	}
	b.notify()
	return nil
}

var groupKeyParam = []bulwark.Param{{
	Name: "key", Label: "Key", Kind: bulwark.ParamString, Required: true,
	Help: "the member's key (host, tenant); \"\" is a key like any other",
}}

// Actions declares force-open, disable and reset of one member, each with a
// required "key" parameter (bulwark.Controller).
func (g *Group) Actions() []bulwark.Action {
	out := slices.Clone(breakerActions)
	for i := range out {
		out[i].Params = slices.Clone(groupKeyParam)
	}
	return out
}

// Control performs force-open ([Group.ForceOpen]), disable
// ([Group.Disable]) or reset ([Group.Reset]) on the member args["key"],
// recording it as a manual change with reason (bulwark.Controller). An
// unknown action, a missing key or another argument returns an error
// wrapping bulwark.ErrInvalidControl; an ended ctx returns ctx.Err() and
// changes nothing.
func (g *Group) Control(ctx context.Context, action string, args map[string]string, reason string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	switch action {
	case actionForceOpen, actionDisable, actionReset:
	default:
		return fmt.Errorf("%w: breaker group %q: unknown action %q", bulwark.ErrInvalidControl, g.c.name, action)
	}
	key, ok := args["key"]
	if !ok {
		return fmt.Errorf("%w: breaker group %q: %s needs the parameter key", bulwark.ErrInvalidControl, g.c.name, action)
	}
	if len(args) > 1 {
		extra := slices.DeleteFunc(slices.Sorted(maps.Keys(args)), func(k string) bool { return k == "key" })
		return fmt.Errorf("%w: breaker group %q: %s takes only key, got %s", bulwark.ErrInvalidControl, g.c.name, action, strings.Join(extra, ", "))
	}
	switch action {
	case actionForceOpen:
		g.setMode(key, modeForced, StateForcedOpen, reason)
	case actionDisable:
		g.setMode(key, modeDisabled, StateDisabled, reason)
	case actionReset:
		g.mu.RLock()
		b := g.members[key]
		g.mu.RUnlock()
		if b == nil {
			return nil // no breaker: it is closed already
		}
		b.reset(reason)
		b.notify()
	}
	return nil
}

var (
	_ bulwark.Snapshotter = (*Breaker)(nil)
	_ bulwark.Controller  = (*Breaker)(nil)
	_ bulwark.Named       = (*Breaker)(nil)
	_ bulwark.Snapshotter = (*Group)(nil)
	_ bulwark.Controller  = (*Group)(nil)
	_ bulwark.Named       = (*Group)(nil)
)
