package health

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark"
)

// Kind is the probe a check answers for; checks may answer for several
// (Liveness|Readiness).
type Kind uint8

// The kinds of probe, after Kubernetes.
const (
	// Liveness: is the process able to make progress at all? A failure
	// means "restart me" (/livez).
	Liveness Kind = 1 << iota
	// Readiness: should this instance receive traffic now? A failure takes
	// it out of rotation (/readyz, the gRPC health service "").
	Readiness
	// Startup: has the instance finished starting? Latched: once every
	// critical startup check passed, Startup passes for good (/startupz).
	Startup

	allKinds = Liveness | Readiness | Startup
)

// kinds lists the three kinds in a fixed order, for metric slots.
var kinds = [...]Kind{Liveness, Readiness, Startup}

func kindIndex(k Kind) int {
	for i, kk := range kinds {
		if kk == k {
			return i
		}
	}
	return -1
}

// String returns "liveness", "readiness" or "startup" (the values of the
// bulwark.check.kind attribute), joined with "|" for a combination.
func (k Kind) String() string {
	var parts []string
	for _, kk := range kinds {
		if k&kk == 0 {
			continue
		}
		switch kk {
		case Liveness:
			parts = append(parts, "liveness")
		case Readiness:
			parts = append(parts, "readiness")
		case Startup:
			parts = append(parts, "startup")
		}
	}
	if k&^allKinds != 0 || len(parts) == 0 {
		return fmt.Sprintf("Kind(%d)", uint8(k))
	}
	return strings.Join(parts, "|")
}

// Status is the outcome of a check or of a probe, ordered from best to
// worst so that a probe's status is the worst of its checks'.
type Status uint8

const (
	// StatusPass: healthy.
	StatusPass Status = iota
	// StatusWarn: healthy, with a concern — a non-critical check failed, or
	// a check returned a [Warning]. Probes pass.
	StatusWarn
	// StatusFail: unhealthy. Probes fail.
	StatusFail
)

// String returns "pass", "warn" or "fail", as application/health+json
// spells them.
func (s Status) String() string {
	switch s {
	case StatusPass:
		return "pass"
	case StatusWarn:
		return "warn"
	case StatusFail:
		return "fail"
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// Errors a check's result may carry.
var (
	// ErrTimeout: the check was still running when its timeout
	// ([WithTimeout]) passed. The result's error wraps it and says after
	// how long.
	ErrTimeout = errors.New("health: check timed out")
	// ErrPanic: the check panicked or called runtime.Goexit; the result's
	// error wraps it with the panic value. The panic does not propagate: a
	// check runs on a goroutine of its own, where it would end the process.
	ErrPanic = errors.New("health: check panicked")
	// ErrDraining is the error of the "drain" entry that readiness reports
	// fail with once a drain started ([Checker.Drain], [Checker.StartDrain]).
	ErrDraining = errors.New("health: draining")
	// ErrNotRun: the probe's own context ended before the check answered.
	ErrNotRun = errors.New("health: probe ended before the check answered")
)

// DrainCheck is the name of the entry readiness reports while draining.
// No check may be registered under it, and it cannot be excluded.
const DrainCheck = "drain"

type warning struct{ err error }

func (w *warning) Error() string {
	if w.err == nil {
		return "warning"
	}
	return w.err.Error()
}
func (w *warning) Unwrap() error { return w.err }

// Warning marks err as a concern rather than a failure: a check that
// returns Warning(err) reports [StatusWarn] even when it is critical, and
// its probes pass. Warning(nil) is nil.
func Warning(err error) error {
	if err == nil {
		return nil
	}
	return &warning{err: err}
}

// Result is the outcome of one run of one check.
type Result struct {
	// Name is the check's name.
	Name string
	// Status is the check's own status: StatusPass when it returned nil,
	// StatusWarn when it returned a [Warning] or failed as a non-critical
	// check, StatusFail otherwise.
	Status Status
	// Critical is the check's [WithCritical] setting.
	Critical bool
	// Err is what the check returned (nil on a pass), or an error wrapping
	// [ErrTimeout], [ErrPanic] or [ErrNotRun].
	Err error
	// Time is when the run ended (for a timeout, its deadline); zero when
	// the check never ran.
	Time time.Time
	// Duration is how long the run took.
	Duration time.Duration
	// ComponentType is the check's [WithComponentType].
	ComponentType string
	// ObservedValue and ObservedUnit are what the check reported with
	// [Observe] during the run; nil and "" when it did not.
	ObservedValue any
	ObservedUnit  string
	// Groups are the check's [WithGroup] names. Do not modify.
	Groups []string
}

// Report is the answer of one probe: the worst status of the checks it ran.
type Report struct {
	// Kind is the probe's kind.
	Kind Kind
	// Status is StatusFail when any critical check failed (or, for
	// readiness, when draining), StatusWarn when any check warned, else
	// StatusPass. A probe with no checks passes.
	Status Status
	// Checks are the results, the "drain" entry first when there is one,
	// then in registration order.
	Checks []Result
	// Excluded are the checks left out at the caller's request.
	Excluded []string
	// Unmatched are the names asked to be excluded that match no check of
	// this kind.
	Unmatched []string
}

// Checker holds a service's health checks and answers probes from them:
// liveness, readiness and startup, after Kubernetes; the HTTP endpoints
// (bulwarkhttp.Health) and the gRPC health service
// (bulwarkgrpc.RegisterHealth) are faces of one Checker. It also drives the
// drain sequence at shutdown ([Checker.Drain]).
//
// Checks run concurrently, each under its timeout; results are cached per
// check (see [WithInterval] and [WithMinInterval]) and concurrent probes
// share one run, so a probe storm never hammers a dependency. At most one
// run of a check is in flight at any time: a check that ignores its
// context and hangs holds one goroutine until it returns, and its probes
// fail with [ErrTimeout] meanwhile.
//
// A Checker is safe for concurrent use. The zero value is not usable; use
// [New]. Call [Checker.Close] to stop its background loops.
type Checker struct {
	opts   options
	ctx    context.Context // the lifetime of the loops
	cancel context.CancelFunc
	m      *meters

	mu       sync.Mutex
	checks   []*check // append-only: a copy of the header is a stable snapshot
	byName   map[string]*check
	watchers []*watcher
	onDrain  []func()
	onStop   []func()
	closed   bool
	wg       sync.WaitGroup // background loops

	draining atomic.Bool
	started  atomic.Bool // the startup latch
	events   bulwark.EventLog
}

// New returns a Checker with no checks: every probe passes until checks are
// registered.
func New(opts ...Option) *Checker {
	o := defaultOptions()
	o.with(opts)
	ctx, cancel := context.WithCancel(o.ctx)
	c := &Checker{opts: o, ctx: ctx, cancel: cancel, byName: map[string]*check{}}
	c.m = newMeters(o.mp, c)
	return c
}

// Close stops the Checker's background loops (checks with [WithInterval],
// watchers) and waits for them, and ends its metrics' registration. Probes
// keep working, running every check on demand. Close always returns nil;
// later calls do nothing.
func (c *Checker) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	c.m.unregister()
	return nil
}

// validName reports whether name may name a check: 1 to 128 letters,
// digits, '-', '_' and '.', so that it is safe in a URL path, a metric
// attribute and a health+json key.
func validName(name string) bool {
	if name == "" || len(name) > 128 {
		return false
	}
	for i := 0; i < len(name); i++ {
		switch b := name[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9', b == '-', b == '_', b == '.':
		default:
			return false
		}
	}
	return true
}

// Register adds a check under name. A check is any func(context.Context)
// error: nil is a pass, an error a failure, a [Warning] a concern; it must
// honour its context, which ends at its timeout. Policies that can speak
// for readiness offer one (a breaker's HealthCheck, failing while open);
// [PingCheck] makes one of a Ping method.
//
// By default a check is a critical readiness check, run on demand with a
// 1 s timeout and a 1 s minimum re-run interval; see the [CheckOption]s.
// A check with [WithInterval] starts running at once on the Checker's loop.
//
// Register panics, as http.ServeMux.Handle does, on a nil check, a name
// registered twice, the reserved name "drain" or a name that is not 1 to
// 128 letters, digits, '-', '_' or '.'.
func (c *Checker) Register(name string, check func(context.Context) error, opts ...CheckOption) {
	if !validName(name) {
		panic(fmt.Sprintf("health: Register(%q): a name is 1 to 128 letters, digits, '-', '_' or '.'", name))
	}
	if name == DrainCheck {
		panic(`health: Register("drain"): the name is reserved for the drain entry`)
	}
	if check == nil {
		panic(fmt.Sprintf("health: Register(%q) of a nil check", name))
	}
	o := defaultCheckOptions()
	for _, opt := range opts {
		if opt != nil {
			opt.applyCheck(&o)
		}
	}
	ch := newCheck(name, check, o)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, dup := c.byName[name]; dup {
		panic(fmt.Sprintf("health: Register(%q): registered twice", name))
	}
	c.byName[name] = ch
	c.checks = append(c.checks, ch)
	if o.interval > 0 && !c.closed {
		c.wg.Add(1)
		go c.loop(ch)
	}
}

// list returns the checks of kind k, in registration order.
func (c *Checker) list(k Kind) []*check {
	c.mu.Lock()
	all := c.checks
	c.mu.Unlock()
	var out []*check
	for _, ch := range all {
		if ch.kinds&k != 0 {
			out = append(out, ch)
		}
	}
	return out
}

func (c *Checker) all() []*check {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.checks
}

// Names returns the names of the checks of kind k in registration order;
// k may combine kinds.
func (c *Checker) Names(k Kind) []string {
	var out []string
	for _, ch := range c.list(k) {
		out = append(out, ch.name)
	}
	return out
}

func checkOneKind(method string, k Kind) {
	if kindIndex(k) < 0 {
		panic(fmt.Sprintf("health: %s(%v): want exactly one of Liveness, Readiness and Startup", method, k))
	}
}

// Check answers a probe of kind k (exactly one of Liveness, Readiness and
// Startup), leaving out the checks named in exclude: it runs, concurrently,
// every check whose cached result is stale, waits for them (each at most
// its timeout, and no longer than ctx), and aggregates. A check that had
// not answered when ctx ended fails with [ErrNotRun]; it goes on running
// and its result serves the next probe.
//
// While draining, readiness fails with a "drain" entry that cannot be
// excluded; liveness and startup are unaffected. Once every critical
// startup check passed, Startup passes for good and its checks are no
// longer run. Check panics when k is not exactly one kind.
func (c *Checker) Check(ctx context.Context, k Kind, exclude ...string) Report {
	checkOneKind("Check", k)
	rep := Report{Kind: k}
	checks := c.list(k)
	if len(exclude) > 0 {
		kept := checks[:0:0]
		for _, ch := range checks {
			if containsName(exclude, ch.name) {
				rep.Excluded = append(rep.Excluded, ch.name)
			} else {
				kept = append(kept, ch)
			}
		}
		checks = kept
		for _, n := range exclude {
			if !containsName(rep.Excluded, n) && !containsName(rep.Unmatched, n) {
				rep.Unmatched = append(rep.Unmatched, n)
			}
		}
	}
	if k == Readiness && c.draining.Load() {
		rep.Checks = append(rep.Checks, Result{
			Name: DrainCheck, Status: StatusFail, Critical: true, Err: ErrDraining, ComponentType: "system",
		})
	}
	if k == Startup && c.started.Load() {
		for _, ch := range checks {
			rep.Checks = append(rep.Checks, ch.cached())
		}
		return rep // Status: StatusPass, latched
	}
	rep.Checks = append(rep.Checks, c.results(ctx, checks)...)
	for _, r := range rep.Checks {
		rep.Status = max(rep.Status, r.Status)
	}
	if k == Startup && rep.Status != StatusFail {
		c.started.Store(true)
	}
	return rep
}

func containsName(names []string, name string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}

// CheckOne answers a probe of one check: the check called name, if it is
// of kind k. It runs the check when its cached result is stale, as
// [Checker.Check] does. ok is false when there is no such check. It panics
// when k is not exactly one kind.
func (c *Checker) CheckOne(ctx context.Context, k Kind, name string) (r Result, ok bool) {
	checkOneKind("CheckOne", k)
	c.mu.Lock()
	ch := c.byName[name]
	c.mu.Unlock()
	if ch == nil || ch.kinds&k == 0 {
		return Result{}, false
	}
	return c.results(ctx, []*check{ch})[0], true
}

// results runs what is stale among checks concurrently and waits for all.
func (c *Checker) results(ctx context.Context, checks []*check) []Result {
	out := make([]Result, len(checks))
	runs := make([]*run, len(checks))
	base := context.WithoutCancel(ctx)
	for i, ch := range checks {
		out[i], runs[i] = c.begin(ch, base, false)
	}
	for i, r := range runs {
		if r != nil {
			out[i] = c.wait(ctx, checks[i], r)
		}
	}
	return out
}

// Draining reports whether a drain started.
func (c *Checker) Draining() bool { return c.draining.Load() }

// OnDrain registers f to be called when a drain starts, synchronously,
// before [Checker.StartDrain] returns (so before Drain's delay): the gRPC
// bridge flips its services to NOT_SERVING this way. Functions run in
// registration order; one registered after the drain started runs at once.
func (c *Checker) OnDrain(f func()) {
	if f == nil {
		return
	}
	c.mu.Lock()
	if !c.draining.Load() {
		c.onDrain = append(c.onDrain, f)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	f()
}

// OnShutdown registers f to be called by [Checker.Drain] when its delay
// has passed, just before it stops the servers. Functions run in
// registration order, once per Drain. The gRPC bridge ends its open health
// Watch streams there: a stream never ends by itself, and one left open
// would hold grpc.Server.GracefulStop until the drain timeout forced it.
func (c *Checker) OnShutdown(f func()) {
	if f == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onStop = append(c.onStop, f)
}

// StartDrain makes readiness fail from now on, calls the [Checker.OnDrain]
// functions and wakes the watchers; liveness keeps passing. It is the first
// step of [Checker.Drain], for servers Drain does not know how to stop.
// Later calls do nothing. There is no way back: a drain ends in shutdown.
func (c *Checker) StartDrain() {
	c.mu.Lock()
	if c.draining.Load() {
		c.mu.Unlock()
		return
	}
	c.draining.Store(true)
	c.events.Add(bulwark.Event{Time: time.Now(), From: "serving", To: "draining", Source: "automatic", Reason: "drain started"})
	hooks := c.onDrain
	c.onDrain = nil
	c.mu.Unlock()
	for _, f := range hooks {
		f()
	}
	c.kick()
}

// Observe reports a value the running check measured (a queue depth, a
// replication lag, a pool's free connections) and its unit; health+json
// answers show it as the check's observedValue and observedUnit. Call it
// from the check, with the context the check was given, before the check
// returns; elsewhere it does nothing.
func Observe(ctx context.Context, value any, unit string) {
	if o, ok := ctx.Value(observeKey{}).(*observed); ok {
		o.mu.Lock()
		o.value, o.unit = value, unit
		o.mu.Unlock()
	}
}

type observeKey struct{}

type observed struct {
	mu    sync.Mutex
	value any
	unit  string
}

// Snapshot implements bulwark.Snapshotter for the admin page, from the
// checks' last results (it runs none): State "ready", "not ready" or
// "draining"; Health "ok", "warn" or "fail" after the worst readiness
// result (draining is "fail"); one Figure per check that ran (1 pass,
// 0.5 warn, 0 fail); Events are the recent status changes of the checks
// and the start of a drain. Register it with reg.RegisterAs("health", c).
func (c *Checker) Snapshot() bulwark.Snapshot {
	s := bulwark.Snapshot{Name: "health", Kind: "health"}
	worst := StatusPass
	for _, ch := range c.all() {
		ch.mu.Lock()
		has, st := ch.has, ch.last.Status
		ch.mu.Unlock()
		if !has {
			continue
		}
		if ch.kinds&Readiness != 0 {
			worst = max(worst, st)
		}
		s.Figures = append(s.Figures, bulwark.Figure{Name: ch.name, Value: statusValue(st), Unit: "1"})
	}
	switch {
	case c.draining.Load():
		s.State, s.Health = "draining", "fail"
	case worst == StatusFail:
		s.State, s.Health = "not ready", "fail"
	case worst == StatusWarn:
		s.State, s.Health = "ready", "warn"
	default:
		s.State, s.Health = "ready", "ok"
	}
	s.Events = c.events.Events()
	if last, ok := c.events.Last(); ok {
		s.Changed, s.Source, s.Reason = last.Time, last.Source, last.Reason
	}
	return s
}
