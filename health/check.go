package health

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/internal/telemetry"
)

// check is one registered check: its settings, its last result and the run
// in flight, if any.
type check struct {
	name string
	fn   func(context.Context) error
	checkOptions
	durSet     telemetry.Set
	statusSets [len(kinds)]telemetry.Set

	mu   sync.Mutex
	last Result // valid when has
	has  bool
	run  *run // in flight; nil when none
}

// run is one execution of a check. res is written under the check's mu
// before done is closed; finished and timedOut are guarded by it too.
type run struct {
	done     chan struct{}
	started  time.Time
	deadline time.Time
	res      Result
	finished bool
	timedOut bool
}

func newCheck(name string, fn func(context.Context) error, o checkOptions) *check {
	ch := &check{name: name, fn: fn, checkOptions: o}
	kv := keyCheck.String(name)
	ch.durSet = telemetry.NewSet(kv)
	for i, k := range kinds {
		ch.statusSets[i] = telemetry.NewSet(kv, keyCheckKind.String(k.String()))
	}
	return ch
}

// result makes the Result of a run that ended at end after d with err.
func (ch *check) result(err error, end time.Time, d time.Duration) Result {
	st := StatusPass
	if err != nil {
		var w *warning
		switch {
		case errors.As(err, &w), !ch.critical:
			st = StatusWarn
		default:
			st = StatusFail
		}
	}
	return Result{
		Name: ch.name, Status: st, Critical: ch.critical, Err: err, Time: end, Duration: d,
		ComponentType: ch.componentType, Groups: ch.groups,
	}
}

// cached returns the last result, or a pending one when the check never
// ran.
func (ch *check) cached() Result {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.has {
		return ch.last
	}
	return ch.result(ErrNotRun, time.Time{}, 0)
}

// begin returns the check's cached result when it is fresh enough, or else
// the run to wait for: the one in flight, or a new one started with base
// as its parent context. background is true for the check's own loop,
// which always runs it.
func (c *Checker) begin(ch *check, base context.Context, background bool) (Result, *run) {
	now := time.Now()
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if r := ch.run; r != nil {
		if r.timedOut {
			return ch.last, nil // hung past its timeout: its failure stands
		}
		return Result{}, r
	}
	looped := ch.interval > 0 && c.ctx.Err() == nil // after Close, on demand
	if ch.has && !background && (looped || now.Sub(ch.last.Time) < ch.minInterval) {
		return ch.last, nil
	}
	r := &run{done: make(chan struct{}), started: now, deadline: now.Add(ch.timeout)}
	ch.run = r
	go c.exec(ch, r, base)
	return Result{}, r
}

// wait waits for r until it ends, its deadline passes or ctx ends.
func (c *Checker) wait(ctx context.Context, ch *check, r *run) Result {
	select {
	case <-r.done:
		return r.res
	default:
	}
	t := time.NewTimer(time.Until(r.deadline))
	defer t.Stop()
	select {
	case <-r.done:
		return r.res
	case <-t.C:
		return c.timeout(ch, r)
	case <-ctx.Done():
		return ch.result(fmt.Errorf("%w: %w", ErrNotRun, context.Cause(ctx)), time.Now(), 0)
	}
}

// timeout records that r is still running at its deadline.
func (c *Checker) timeout(ch *check, r *run) Result {
	ch.mu.Lock()
	if r.finished || r.timedOut {
		res := r.res
		ch.mu.Unlock()
		return res
	}
	r.timedOut = true
	r.res = ch.result(fmt.Errorf("%w after %v", ErrTimeout, ch.timeout), r.deadline, ch.timeout)
	prev, changed := ch.record(r.res)
	res := r.res
	ch.mu.Unlock()
	c.m.recordDuration(ch, ch.timeout)
	if changed {
		c.changed(prev, res)
	}
	return res
}

// record stores res as the last result and reports whether the status
// changed, and from what (a zero Result when the check never ran). ch.mu
// is held.
func (ch *check) record(res Result) (prev Result, changed bool) {
	if ch.has {
		prev = ch.last
	}
	changed = !ch.has || ch.last.Status != res.Status
	ch.last, ch.has = res, true
	return prev, changed
}

// changed logs a change of a check's status (a first result only when it
// is not a pass) and wakes the watchers.
func (c *Checker) changed(prev, res Result) {
	if !prev.Time.IsZero() || res.Status != StatusPass {
		e := bulwark.Event{Time: res.Time, To: res.Status.String(), Source: "automatic", Reason: res.Name}
		if !prev.Time.IsZero() {
			e.From = prev.Status.String()
		}
		if res.Err != nil {
			e.Reason += ": " + res.Err.Error()
		}
		c.events.Add(e)
	}
	c.kick()
}

// errGoexit is what a run that called runtime.Goexit ends with.
var errGoexit = fmt.Errorf("%w: runtime.Goexit", ErrPanic)

// exec runs the check once, on its own goroutine.
func (c *Checker) exec(ch *check, r *run, base context.Context) {
	ctx, cancel := context.WithDeadline(base, r.deadline)
	obs := &observed{}
	ctx = context.WithValue(ctx, observeKey{}, obs)
	err := errGoexit
	defer func() { // also on runtime.Goexit
		cancel()
		c.finish(ch, r, err, obs, base.Err() != nil)
	}()
	err = call(ctx, ch.fn)
}

// call runs fn, turning a panic into an error.
func call(ctx context.Context, fn func(context.Context) error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%w: %v", ErrPanic, v)
		}
	}()
	return fn(ctx)
}

// finish records the end of r. A run cut short by the Checker's Close
// (stopped) answers its waiters but is not recorded: it says nothing of
// the check.
func (c *Checker) finish(ch *check, r *run, err error, obs *observed, stopped bool) {
	end := time.Now()
	d := end.Sub(r.started)
	ch.mu.Lock()
	r.finished = true
	var prev Result
	changed, timedOut := false, r.timedOut
	if !timedOut {
		if !end.Before(r.deadline) {
			r.res = ch.result(fmt.Errorf("%w after %v", ErrTimeout, ch.timeout), r.deadline, ch.timeout)
			d = ch.timeout
		} else {
			r.res = ch.result(err, end, d)
			obs.mu.Lock()
			r.res.ObservedValue, r.res.ObservedUnit = obs.value, obs.unit
			obs.mu.Unlock()
		}
		if !stopped {
			prev, changed = ch.record(r.res)
		}
	}
	ch.run = nil
	ch.mu.Unlock()
	close(r.done)
	if !timedOut && !stopped {
		c.m.recordDuration(ch, d)
	}
	if changed {
		c.changed(prev, r.res)
	}
}

// loop runs a check with WithInterval every interval until the Checker is
// closed or its context ends.
func (c *Checker) loop(ch *check) {
	defer c.wg.Done()
	t := time.NewTicker(ch.interval)
	defer t.Stop()
	for {
		if _, r := c.begin(ch, c.ctx, true); r != nil {
			c.wait(c.ctx, ch, r)
		}
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
	}
}
