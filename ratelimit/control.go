package ratelimit

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/bulwark-go/bulwark"
)

// tunable is the run-time configuration of a limiter: the current config,
// the changes made to it, and the snapshot and control they serve.
type tunable struct {
	mu     sync.Mutex // serializes changes of cfg
	cfg    atomic.Pointer[config]
	events bulwark.EventLog
}

// set makes limit and burst (nil: unchanged) the config from t on, and
// records the change.
func (u *tunable) set(what string, t time.Time, limit *rate.Limit, burst *int, source, reason string) error {
	if limit != nil {
		if err := validLimit(what, *limit); err != nil {
			return err
		}
	}
	if burst != nil {
		if err := validBurst(what, *burst); err != nil {
			return err
		}
	}
	u.mu.Lock()
	old := u.cfg.Load()
	l, b := old.limit, old.burst
	if limit != nil {
		l = *limit
	}
	if burst != nil {
		b = *burst
	}
	c := old.with(l, b, t)
	u.cfg.Store(c)
	u.mu.Unlock()
	u.events.Add(bulwark.Event{Time: t, From: describe(old), To: describe(c), Source: source, Reason: reason})
	return nil
}

// describe renders the limit and burst of d.
func describe(d *config) string {
	return "limit " + formatLimit(d.limit) + "/s, burst " + strconv.Itoa(d.burst)
}

func formatLimit(l rate.Limit) string {
	if l == rate.Inf {
		return "inf"
	}
	return strconv.FormatFloat(float64(l), 'g', -1, 64)
}

// actions declares set-limit with the current values as defaults.
func (u *tunable) actions() []bulwark.Action {
	c := u.cfg.Load()
	return []bulwark.Action{{
		Name:  "set-limit",
		Label: "Set limit",
		Params: []bulwark.Param{
			{Name: "limit", Label: "Limit", Kind: bulwark.ParamFloat, Default: formatLimit(c.limit),
				Help: "tokens per second, > 0; inf for no limit; empty keeps the current one"},
			{Name: "burst", Label: "Burst", Kind: bulwark.ParamInt, Default: strconv.Itoa(c.burst),
				Help: "tokens the bucket holds, >= 1; empty keeps the current one"},
		},
	}}
}

// control performs set-limit: limit (float) and burst (int), at least one
// of them, both applied at once, recorded as a manual change.
func (u *tunable) control(_ context.Context, action string, args map[string]string, reason string) error {
	if action != "set-limit" {
		return fmt.Errorf("%w: ratelimit: unknown action %q (want set-limit)", bulwark.ErrInvalidControl, action)
	}
	var (
		limit *rate.Limit
		burst *int
	)
	for name, v := range args {
		switch name {
		case "limit":
			if v == "" {
				continue
			}
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || math.IsNaN(f) || math.IsInf(f, -1) {
				return fmt.Errorf("%w: ratelimit: set-limit: limit %q is not a number of tokens per second", bulwark.ErrInvalidControl, v)
			}
			l := rate.Limit(f)
			limit = &l
		case "burst":
			if v == "" {
				continue
			}
			b, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("%w: ratelimit: set-limit: burst %q is not a whole number", bulwark.ErrInvalidControl, v)
			}
			burst = &b
		default:
			return fmt.Errorf("%w: ratelimit: set-limit: unknown parameter %q", bulwark.ErrInvalidControl, name)
		}
	}
	if limit == nil && burst == nil {
		return fmt.Errorf("%w: ratelimit: set-limit: give limit, burst or both", bulwark.ErrInvalidControl)
	}
	if err := u.set("set-limit", time.Now(), limit, burst, "manual", reason); err != nil {
		return fmt.Errorf("%w: %w", bulwark.ErrInvalidControl, err)
	}
	return nil
}

// snapshot fills in what every limiter's snapshot shows: name, kind,
// limit and burst, the decisions, and the changes.
func (u *tunable) snapshot(c *config, n [2 * bulwark.NumPriorities]int64) bulwark.Snapshot {
	s := bulwark.Snapshot{Name: c.name, Kind: "ratelimit", State: "ok"}
	lim := float64(c.limit)
	if c.inf {
		lim = math.Inf(1)
		s.State = "unlimited"
	}
	var allowed, refused int64
	for i := range bulwark.NumPriorities {
		allowed += n[slotAllowed+i]
		refused += n[slotLimited+i]
	}
	s.Figures = append(s.Figures,
		bulwark.Figure{Name: "limit", Value: lim, Unit: "{token}/s"},
		bulwark.Figure{Name: "burst", Value: float64(c.burst), Unit: "{token}"},
		bulwark.Figure{Name: "allowed", Value: float64(allowed), Unit: "{decision}"},
		bulwark.Figure{Name: "refused", Value: float64(refused), Unit: "{decision}"},
	)
	for _, p := range bulwark.Priorities {
		s.Figures = append(s.Figures, bulwark.Figure{Name: "refused " + p.String(), Value: float64(n[slotLimited+p.Index()]), Unit: "{decision}"})
	}
	if e, ok := u.events.Last(); ok {
		s.Changed, s.Source, s.Reason = e.Time, e.Source, e.Reason
	}
	s.Events = u.events.Events()
	return s
}

// state sets the state and health of s for a bucket holding tokens:
// "shedding" (warn) when Sheddable calls are refused, "empty" (fail) when
// every tier is.
func state(s *bulwark.Snapshot, c *config, tokens float64) {
	if c.inf {
		return
	}
	switch {
	case tokens < 1:
		s.State, s.Health = "empty", "fail"
	case tokens < c.reserve[0]+1:
		s.State, s.Health = "shedding", "warn"
	}
}

// Snapshot returns the limiter's state for the admin page: kind
// "ratelimit"; state "ok", "shedding" (warn: the tokens left are within
// the Sheddable reserve), "empty" (fail) or "unlimited"; figures limit,
// burst, tokens, allowed, refused and refused per tier; the changes made by
// SetLimit, SetBurst and Control.
func (l *Limiter) Snapshot() bulwark.Snapshot {
	c, tokens := l.b.peek(l.cfg.Load(), time.Now())
	s := l.snapshot(c, l.b.counts())
	s.Figures = append(s.Figures[:2:2], append([]bulwark.Figure{{Name: "tokens", Value: tokens, Unit: "{token}"}}, s.Figures[2:]...)...)
	state(&s, c, tokens)
	return s
}

// Actions declares "set-limit", with parameters limit (float, tokens per
// second) and burst (int).
func (l *Limiter) Actions() []bulwark.Action { return l.actions() }

// Control performs "set-limit": limit, burst or both, applied at once from
// now on, recorded in the snapshot's events as a manual change with
// reason. An unknown action, an unknown parameter or a bad value returns an
// error wrapping [bulwark.ErrInvalidControl] and changes nothing.
func (l *Limiter) Control(ctx context.Context, action string, args map[string]string, reason string) error {
	return l.control(ctx, action, args, reason)
}

// Snapshot returns the limiter's state for the admin page: kind
// "ratelimit"; state "ok", "overflow" (warn: the overflow bucket decided a
// call within the last window, burst/limit, at least 1 s) or "unlimited";
// figures limit, burst, keys (with a bucket of their own), max keys,
// overflow (decisions of the overflow bucket), allowed, refused and
// refused per tier; the changes made by SetLimit, SetBurst and Control.
func (k *Keyed) Snapshot() bulwark.Snapshot {
	c := k.cfg.Load()
	s := k.snapshot(c, k.decisions())
	s.Figures = append(s.Figures[:2:2], append([]bulwark.Figure{
		{Name: "keys", Value: float64(k.keys.Load()), Unit: "{key}"},
		{Name: "max keys", Value: float64(k.maxKeys), Unit: "{key}"},
		{Name: "overflow", Value: float64(k.overflowed.Load()), Unit: "{decision}"},
	}, s.Figures[2:]...)...)
	if last := k.overLast.Load(); last != 0 && !c.inf {
		recent := max(c.window, time.Second)
		if time.Since(time.Unix(0, last)) < recent {
			s.State, s.Health = "overflow", "warn"
		}
	}
	return s
}

// Actions declares "set-limit", with parameters limit (float, tokens per
// second) and burst (int), for every bucket.
func (k *Keyed) Actions() []bulwark.Action { return k.actions() }

// Control performs "set-limit" on every bucket, as [Limiter.Control] does.
func (k *Keyed) Control(ctx context.Context, action string, args map[string]string, reason string) error {
	return k.control(ctx, action, args, reason)
}
