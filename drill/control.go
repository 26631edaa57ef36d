package drill

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/bulwark-go/bulwark"
)

// The choices of the "arm" action's error parameter.
const (
	choiceNone              = "none"
	choiceRemoteUnavailable = "remote-unavailable"
	choiceTimeout           = "timeout"
)

// Snapshot returns the drill's state for the admin page: kind "drill",
// state "armed" (health "warn", so that an armed drill stands out) or
// "disarmed", the figures of the current arming (seconds until it expires,
// each fault's probability, the latency bounds) and the faults injected
// since the drill was made, and the recent arming and disarming events
// with their source and reason. An arming past its expiry shows as
// disarmed (and is ended).
func (d *Drill) Snapshot() bulwark.Snapshot {
	now := time.Now()
	a := d.live(now)
	s := bulwark.Snapshot{Name: d.name, Kind: "drill", State: "disarmed", Health: "ok"}
	if a != nil {
		sp := &a.spec
		s.State, s.Health = "armed", "warn"
		s.Figures = append(s.Figures,
			bulwark.Figure{Name: "expires in", Value: a.until.Sub(now).Seconds(), Unit: "s"},
			bulwark.Figure{Name: "latency probability", Value: sp.Latency.Probability, Unit: "1"},
			bulwark.Figure{Name: "latency min", Value: sp.Latency.Min.Seconds(), Unit: "s"},
			bulwark.Figure{Name: "latency max", Value: max(sp.Latency.Max, sp.Latency.Min).Seconds(), Unit: "s"},
			bulwark.Figure{Name: "error probability", Value: sp.Error.Probability, Unit: "1"},
			bulwark.Figure{Name: "refusal probability", Value: sp.Refusal.Probability, Unit: "1"},
		)
	}
	s.Figures = append(s.Figures,
		bulwark.Figure{Name: "injected latency", Value: float64(d.m.injected.Load(slotLatency)), Unit: "{fault}"},
		bulwark.Figure{Name: "injected errors", Value: float64(d.m.injected.Load(slotError)), Unit: "{fault}"},
		bulwark.Figure{Name: "injected refusals", Value: float64(d.m.injected.Load(slotRefusal)), Unit: "{fault}"},
	)
	d.mu.Lock()
	s.Changed, s.Source, s.Reason = d.changed, d.source, d.reason
	d.mu.Unlock()
	s.Events = d.events.Events()
	return s
}

// Actions declares the admin page's controls: "arm", whose parameters
// make a [Spec] (latency and its upper bound, each fault's probability,
// the error kind, the refusal, the tiers, keys and marker that scope it)
// and its expiry, and "disarm".
func (d *Drill) Actions() []bulwark.Action {
	tiers := make([]string, 0, bulwark.NumPriorities)
	for _, p := range bulwark.Priorities {
		tiers = append(tiers, p.String())
	}
	return []bulwark.Action{
		{Name: "arm", Label: "Arm", Params: []bulwark.Param{
			{Name: "latency", Label: "Latency", Kind: bulwark.ParamDuration, Default: "0s",
				Help: "delay added before the call; 0 for none"},
			{Name: "latency-max", Label: "Latency up to", Kind: bulwark.ParamDuration, Default: "0s",
				Help: "draw the delay uniformly up to this; 0 for a fixed delay"},
			{Name: "latency-probability", Label: "Latency probability", Kind: bulwark.ParamFloat, Default: "1",
				Help: "in [0, 1]"},
			{Name: "error", Label: "Error", Kind: bulwark.ParamChoice, Default: choiceNone,
				Choices: []string{choiceNone, choiceRemoteUnavailable, choiceTimeout},
				Help:    "remote-unavailable looks like a downstream 503 / UNAVAILABLE"},
			{Name: "error-probability", Label: "Error probability", Kind: bulwark.ParamFloat, Default: "1",
				Help: "in [0, 1]"},
			{Name: "refusal-probability", Label: "Refusal probability", Kind: bulwark.ParamFloat, Default: "0",
				Help: "refuse with 503 (ErrUnavailable); in [0, 1]"},
			{Name: "tiers", Label: "Tiers", Kind: bulwark.ParamString,
				Help: "comma-separated, of " + strings.Join(tiers, ", ") + "; empty for all"},
			{Name: "keys", Label: "Keys", Kind: bulwark.ParamString,
				Help: "comma-separated partition keys (tenants); empty for all"},
			{Name: "marked", Label: "Marked calls only", Kind: bulwark.ParamBool, Default: "false",
				Help: "only calls sent with Bulwark-Drill: " + d.name},
			{Name: "expiry", Label: "Expiry", Kind: bulwark.ParamDuration, Default: min(DefaultExpiry, d.maxExpiry).String(),
				Help: "at most " + d.maxExpiry.String()},
		}},
		{Name: "disarm", Label: "Disarm"},
	}
}

// Control runs an action of [Drill.Actions] and records it as a manual
// change with reason. A bad argument, a spec [Drill.Arm] refuses, or an
// unknown action return an error wrapping [bulwark.ErrInvalidControl].
func (d *Drill) Control(_ context.Context, action string, args map[string]string, reason string) error {
	switch action {
	case "arm":
		spec, expiry, err := parseArm(args)
		if err != nil {
			return fmt.Errorf("%w: drill %s: arm: %w", bulwark.ErrInvalidControl, d.name, err)
		}
		if err := d.arm(spec, expiry, "manual", reason); err != nil {
			return fmt.Errorf("%w: drill %s: arm: %w", bulwark.ErrInvalidControl, d.name, err)
		}
		return nil
	case "disarm":
		d.disarm("manual", reason)
		return nil
	}
	return fmt.Errorf("%w: drill %s: unknown action %q", bulwark.ErrInvalidControl, d.name, action)
}

// parseArm makes the spec and expiry of an "arm" action's arguments;
// absent arguments take the declared defaults.
func parseArm(args map[string]string) (Spec, time.Duration, error) {
	var spec Spec
	var err error
	arg := func(name, def string) string {
		if v, ok := args[name]; ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
		return def
	}
	dur := func(name string) time.Duration {
		if err != nil {
			return 0
		}
		v, e := time.ParseDuration(arg(name, "0s"))
		if e != nil {
			err = fmt.Errorf("%s: %w", name, e)
		}
		return v
	}
	prob := func(name, def string) float64 {
		if err != nil {
			return 0
		}
		v, e := strconv.ParseFloat(arg(name, def), 64)
		if e != nil {
			err = fmt.Errorf("%s: %w", name, e)
		}
		return v
	}
	spec.Latency.Min = dur("latency")
	spec.Latency.Max = dur("latency-max")
	if spec.Latency.Min != 0 || spec.Latency.Max != 0 {
		spec.Latency.Probability = prob("latency-probability", "1")
	}
	switch e := arg("error", choiceNone); e {
	case choiceNone:
	case choiceRemoteUnavailable, choiceTimeout:
		spec.Error.Err = ErrRemoteUnavailable
		if e == choiceTimeout {
			spec.Error.Err = ErrTimeout
		}
		spec.Error.Probability = prob("error-probability", "1")
	default:
		return Spec{}, 0, fmt.Errorf("error: %q is none of %s, %s, %s", e, choiceNone, choiceRemoteUnavailable, choiceTimeout)
	}
	spec.Refusal.Probability = prob("refusal-probability", "0")
	expiry := dur("expiry")
	if err != nil {
		return Spec{}, 0, err
	}
	if t := arg("tiers", ""); t != "" {
		for _, s := range strings.Split(t, ",") {
			p, e := bulwark.ParsePriority(strings.TrimSpace(s))
			if e != nil {
				return Spec{}, 0, fmt.Errorf("tiers: %w", e)
			}
			spec.Match.Tiers = append(spec.Match.Tiers, p)
		}
	}
	if k := arg("keys", ""); k != "" {
		for _, s := range strings.Split(k, ",") {
			spec.Match.Keys = append(spec.Match.Keys, strings.TrimSpace(s))
		}
	}
	if m := arg("marked", "false"); m != "" {
		b, e := strconv.ParseBool(m)
		if e != nil {
			return Spec{}, 0, fmt.Errorf("marked: %w", e)
		}
		spec.Match.Marked = b
	}
	return spec, expiry, nil
}
