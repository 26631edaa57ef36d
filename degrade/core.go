package degrade

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark"
)

// The sources of a change, SPEC's bulwark.source values.
const (
	SourceManual    = "manual"
	SourceConfig    = "config"
	SourceAutomatic = "automatic"
)

const (
	srcManual = iota
	srcConfig
	srcAutomatic
	numSources
)

var sourceNames = [numSources]string{SourceManual, SourceConfig, SourceAutomatic}

// MaxLevel is the highest shed level: it refuses every tier but
// [bulwark.CriticalPlus].
const MaxLevel = 3

// Status is the state of a [Switch] or a [Shedder] and the change that put
// it there.
type Status struct {
	// Name is the switch's or shedder's name.
	Name string
	// On reports whether the switch is on, or the shedder sheds (Level > 0).
	On bool
	// Level is the shed level, 0 … 3; a switch's is 1 while on.
	Level int
	// Source is who holds the state: "manual" (Set, SetLevel, the admin
	// page), "config" (Load, Watch) or "automatic" (a trigger); empty
	// while nothing ever set it.
	Source string
	// Reason is the reason given with the change in force.
	Reason string
	// Overridden reports whether a manual or config value overrides the
	// trigger (whatever the trigger says meanwhile).
	Overridden bool
	// Changed is when the last change was recorded; zero if never.
	Changed time.Time
}

// layer is one source's say on the level.
type layer struct {
	set    bool
	level  int
	reason string
}

// core is what a Switch and a Shedder share: a level held by three layers
// (manual over config over automatic), a lazily evaluated trigger, the
// event log and the metrics.
type core struct {
	level    atomic.Int32 // the level in force; the hot path reads only this
	nextEval atomic.Int64 // ns since epoch of the next trigger evaluation
	_        [48]byte

	name        string
	kind        string // "switch" or "shedder"
	max         int
	trig        *Trigger
	epoch       time.Time
	fallback    func(ctx context.Context, err error) error
	hint        time.Duration
	onChange    func(old, new Status)
	refusals    [bulwark.NumPriorities]*refusal // by Priority.Index
	status      atomic.Pointer[Status]
	events      bulwark.EventLog
	m           *metrics
	heldUntil   atomic.Int64 // ns since epoch until which the trigger's hold lasts
	autoInForce atomic.Bool  // the automatic layer holds the level in force

	mu       sync.Mutex
	layers   [numSources]layer // guarded by mu
	raw      int               // the trigger's raw level; guarded by mu
	raisedAt time.Duration     // since epoch, of the last sample that called for the raw level; guarded by mu
	pending  []change          // changes not yet delivered to onChange; guarded by mu
	hookMu   sync.Mutex        // held while delivering to onChange
}

type change struct{ old, new Status }

func newCore(name, kind string, max int, opts []Option) (*core, options) {
	var o options
	for _, opt := range opts {
		if opt != nil {
			opt.apply(&o)
		}
	}
	c := &core{
		name:     name,
		kind:     kind,
		max:      max,
		trig:     o.trigger,
		epoch:    time.Now(),
		fallback: o.fallback,
		hint:     o.retryAfter,
		onChange: o.onChange,
	}
	c.status.Store(&Status{Name: name})
	return c, o
}

// poll evaluates the trigger when its interval has passed.
func (c *core) poll() {
	if c.trig == nil {
		return
	}
	now := time.Since(c.epoch)
	if int64(now) < c.nextEval.Load() {
		return
	}
	c.evaluate(now)
}

// evaluate samples the trigger, unless another caller is at it (it keeps
// the state in force meanwhile).
func (c *core) evaluate(now time.Duration) {
	if !c.mu.TryLock() {
		return
	}
	delivered := false
	defer func() {
		c.mu.Unlock()
		if delivered {
			c.deliver()
		}
	}()
	if int64(now) < c.nextEval.Load() {
		return
	}
	// The next evaluation is scheduled before sampling, so a panicking
	// signal is not called again by every caller at once.
	c.nextEval.Store(int64(satAdd(now, c.trig.interval)))
	next, up, v, ok := c.trig.eval(c.raw)
	if !ok {
		return
	}
	first := !c.layers[srcAutomatic].set
	if next < c.raw && now-c.raisedAt < c.trig.hold {
		next = c.raw // held
	}
	if up > 0 && up >= min(next, c.raw) {
		// The sample calls for the level held (or a higher one): the
		// hold starts again.
		c.raisedAt = now
		c.heldUntil.Store(int64(satAdd(now, c.trig.hold)))
	}
	if next == c.raw && !first {
		return
	}
	from := c.raw
	c.raw = next
	l := min(c.trig.level(next), c.max)
	c.layers[srcAutomatic] = layer{set: true, level: l, reason: c.trig.why(from, next, v)}
	if first && l == 0 {
		// The first sample finds nothing to do: the automatic layer
		// now holds the default state, without an event.
		c.autoInForce.Store(!c.layers[srcManual].set && !c.layers[srcConfig].set)
		return
	}
	delivered = c.recomputeLocked(srcAutomatic, "", now)
}

// set sets or clears (set false) the layer of source src and records the
// change; actionReason, when not empty, is the reason recorded instead of
// the layer's (for a release).
func (c *core) set(src int, l layer, actionReason string) {
	c.poll() // so that a release hands back to a fresh automatic state
	c.mu.Lock()
	prev := c.layers[src]
	c.layers[src] = l
	var delivered bool
	if prev != l || src == srcManual {
		delivered = c.recomputeLocked(src, actionReason, time.Since(c.epoch))
	}
	c.mu.Unlock()
	if delivered {
		c.deliver()
	}
}

// recomputeLocked publishes the state in force after a change by source
// src, and records it when the state or its holder changed (always for a
// manual action). It reports whether a change awaits delivery to onChange.
func (c *core) recomputeLocked(src int, actionReason string, now time.Duration) bool {
	var in layer
	holder := -1
	for s := range numSources {
		if c.layers[s].set {
			in, holder = c.layers[s], s
			break
		}
	}
	old := c.status.Load()
	st := &Status{Name: c.name, Level: in.level, On: in.level > 0, Reason: in.reason,
		Overridden: holder == srcManual || holder == srcConfig, Changed: old.Changed}
	if holder >= 0 {
		st.Source = sourceNames[holder]
	}
	c.autoInForce.Store(holder == srcAutomatic)
	if st.Level == old.Level && st.Source == old.Source && st.Reason == old.Reason &&
		st.Overridden == old.Overridden && src != srcManual {
		return false
	}
	t := c.epoch.Add(now)
	st.Changed = t
	c.level.Store(int32(st.Level))
	c.status.Store(st)
	reason := in.reason
	if actionReason != "" {
		reason = actionReason
	}
	c.events.Add(bulwark.Event{Time: t, From: c.stateName(old.Level), To: c.stateName(st.Level),
		Source: sourceNames[src], Reason: reason})
	c.m.changed(src)
	if c.onChange == nil {
		return false
	}
	c.pending = append(c.pending, change{*old, *st})
	return true
}

// deliver hands pending changes to onChange, in order, one at a time. A
// panicking onChange passes through; the changes after it are delivered
// by the next change.
func (c *core) deliver() {
	for c.hookMu.TryLock() { // else the holder delivers ours too
		c.deliverLocked()
		c.mu.Lock()
		more := len(c.pending) > 0
		c.mu.Unlock()
		if !more {
			return
		}
	}
}

func (c *core) deliverLocked() {
	defer c.hookMu.Unlock()
	for {
		c.mu.Lock()
		if len(c.pending) == 0 {
			c.mu.Unlock()
			return
		}
		ch := c.pending[0]
		c.pending = c.pending[1:]
		c.mu.Unlock()
		c.onChange(ch.old, ch.new)
	}
}

func (c *core) stateName(level int) string {
	if c.kind == kindSwitch {
		if level > 0 {
			return "on"
		}
		return "off"
	}
	return "level " + strconv.Itoa(level)
}

// Status returns the state in force and the change that put it there.
func (c *core) statusNow() Status {
	c.poll()
	return *c.status.Load()
}

// refuse answers a call the state refuses: the refusal, or the fallback's
// answer.
func (c *core) refuse(ctx context.Context, p bulwark.Priority) error {
	err := c.refusals[p.Index()]
	if c.fallback != nil {
		c.m.refuse(reasonFallback, p)
		return c.fallback(ctx, err)
	}
	c.m.refuse(reasonRefused, p)
	return err
}

func (c *core) retryAfter() time.Duration {
	if c.hint > 0 {
		return c.hint
	}
	if c.trig == nil || !c.autoInForce.Load() {
		return 0
	}
	now := int64(time.Since(c.epoch))
	d := max(c.heldUntil.Load()-now, c.nextEval.Load()-now)
	if d <= 0 {
		return 0
	}
	return time.Duration(d)
}

func (c *core) snapshot(figures []bulwark.Figure) bulwark.Snapshot {
	st := c.statusNow()
	s := bulwark.Snapshot{
		Name:    c.name,
		Kind:    c.kind,
		State:   c.stateName(st.Level),
		Figures: figures,
		Changed: st.Changed,
		Source:  st.Source,
		Reason:  st.Reason,
		Events:  c.events.Events(),
	}
	switch {
	case st.Level == 0:
		s.Health = "ok"
	case c.kind == kindShedder && st.Level >= MaxLevel:
		s.Health = "fail" // only CriticalPlus is served
	default:
		s.Health = "warn" // degraded, not down
	}
	return s
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("degrade: "+format+": %w", append(args, bulwark.ErrInvalidControl)...)
}

var noopDone = func(error) {}

// satAdd is a + b for b >= 0, saturating at the largest Duration.
func satAdd(a, b time.Duration) time.Duration {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
