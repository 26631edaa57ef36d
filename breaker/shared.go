package breaker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric"

	"github.com/bulwark-go/bulwark/internal/redisopt"
	"github.com/bulwark-go/bulwark/internal/telemetry"
)

// SharedState is where breakers share their state with the other instances
// of a fleet ([WithSharedState]). [NewRedisState] makes the one bulwark
// provides.
type SharedState interface {
	link(name string, b *Breaker) *sharedLink
}

// Defaults of a [RedisState].
const (
	DefaultRefreshInterval = time.Second
	DefaultStoreTimeout    = 250 * time.Millisecond
	DefaultRedisPrefix     = "bulwark:breaker:"
)

// RedisState shares breaker state across a fleet through Redis: when one
// instance opens a breaker, the others refuse its calls within one refresh
// interval, until the owner's probes succeed; a pause ([WithPauseOnHint])
// reaches every instance the same way.
//
// Only transitions and a periodic read touch Redis, on a goroutine the
// RedisState owns: a breaker's calls never wait on Redis and never hold a
// lock across it. The instance that opens a breaker writes
// <prefix>{<name>}:open with its instance ID, expiring after the break
// duration plus one refresh interval (so an owner that died cannot hold the
// fleet open), and deletes it when its probes close the breaker; a pause
// writes <prefix>{<name>}:pause, expiring when the pause ends (a longer
// pause is never shortened). Every refresh interval one pipelined read
// (GET and PTTL, Redis's clock deciding what is left) brings every linked
// breaker up to date: open while another instance owns the open key,
// paused while the pause key lives. An instance that opened a breaker
// itself goes on probing; the others refuse with [ErrOpen] and do not probe.
//
// Every Redis command runs under [WithStoreTimeout]. When Redis fails or
// hangs, the error is counted in bulwark.breaker.shared.errors and every
// breaker goes on with its local state alone: what the fleet had opened is
// dropped at the first failed refresh (pauses run to their end); writes
// that failed are tried again, in order, at every refresh until Redis
// answers (at most 4096 are kept; the oldest are dropped and counted as
// errors).
//
// The goroutine starts when the first breaker links to the state and stops
// with [RedisState.Close]; after Close, breakers keep working locally. The
// client must have ContextTimeoutEnabled (see [NewRedisState]).
//
// Metrics (meter github.com/bulwark-go/bulwark/breaker):
// bulwark.breaker.shared.errors (counter, {error}) and
// bulwark.breaker.shared.transitions (counter, {transition},
// {bulwark.to_state}: open, closed, paused), the changes the fleet's state
// made to this instance's breakers.
type RedisState struct {
	client   redis.UniversalClient
	prefix   string
	interval time.Duration
	timeout  time.Duration
	id       string

	mu      sync.Mutex
	links   map[string]map[*sharedLink]struct{} // by name: every breaker of that name here
	queue   []sharedWrite
	running bool
	closed  bool
	base    context.Context // cancelled by Close
	cancel  context.CancelFunc
	done    chan struct{}
	wake    chan struct{} // size 1

	errs  atomic.Int64
	trans *telemetry.Counters // by toOpen, toClosed, toPaused
	errI  metric.Int64ObservableCounter
	tranI metric.Int64ObservableCounter
	reg   *telemetry.Registration
}

const (
	toOpen = iota
	toClosed
	toPaused
)

// maxQueue bounds the writes waiting for the goroutine; past it the oldest
// are dropped and counted as errors.
const maxQueue = 4096

type writeKind uint8

const (
	writeOpen writeKind = iota
	writeClose
	writePause
)

type sharedWrite struct {
	kind writeKind
	name string
	ttl  time.Duration
}

// NewRedisState returns a state store on client. It does no I/O: the
// refresh starts with the first breaker linked to it. Options:
// [WithRefreshInterval], [WithStoreTimeout], [WithRedisPrefix],
// [WithInstanceID], [WithMeterProvider]; the others are ignored.
//
// It panics on a nil client, and on a client whose options do not set
// ContextTimeoutEnabled (redis.Options, redis.ClusterOptions,
// redis.RingOptions, redis.UniversalOptions): without it go-redis ignores
// context deadlines on socket reads, and a hung Redis would hold the
// refresh past its timeout. A client of another type, whose options
// cannot be checked, panics too.
func NewRedisState(client redis.UniversalClient, opts ...Option) *RedisState {
	if client == nil {
		panic("breaker: NewRedisState: nil client")
	}
	ok, known := redisopt.ContextTimeoutEnabled(client)
	if !known {
		panic("breaker: NewRedisState: cannot check ContextTimeoutEnabled on a client of type " +
			typeName(client) + "; pass a *redis.Client, *redis.ClusterClient or *redis.Ring")
	}
	if !ok {
		panic("breaker: NewRedisState: the client needs ContextTimeoutEnabled: true in its options " +
			"(else a hung Redis blocks past every timeout)")
	}
	o := buildOptions(opts)
	s := &RedisState{
		client:   client,
		prefix:   o.redisPrefix,
		interval: o.refresh,
		timeout:  o.storeTimeout,
		id:       o.instanceID,
		links:    map[string]map[*sharedLink]struct{}{},
		wake:     make(chan struct{}, 1),
	}
	if s.id == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		s.id = hex.EncodeToString(b[:])
	}
	m := telemetry.Meter(o.mp, "breaker")
	s.trans = telemetry.NewCounters(
		telemetry.NewSet(telemetry.KeyToState.String(StateOpen.String())),
		telemetry.NewSet(telemetry.KeyToState.String(StateClosed.String())),
		telemetry.NewSet(telemetry.KeyToState.String(StatePaused.String())),
	)
	s.errI = telemetry.Int64ObservableCounter(m, "bulwark.breaker.shared.errors",
		"Failed or timed-out Redis round trips of a shared breaker state.", "{error}")
	s.tranI = telemetry.Int64ObservableCounter(m, "bulwark.breaker.shared.transitions",
		"Changes the fleet's shared state made to this instance's breakers.", "{transition}")
	s.reg = telemetry.Register(m, s, (*RedisState).observe, s.errI, s.tranI)
	return s
}

func typeName(v any) string {
	return strconv.Quote(fmtType(v))
}

func (s *RedisState) observe(o metric.Observer) {
	o.ObserveInt64(s.errI, s.errs.Load())
	s.trans.Observe(o, s.tranI)
}

// ID returns the instance ID this store writes as the owner of the
// breakers it opens.
func (s *RedisState) ID() string { return s.id }

// Close stops the refresh goroutine and waits for it; breakers linked to
// the state go on with their local state. It is safe to call more than
// once.
func (s *RedisState) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	running := s.running
	s.mu.Unlock()
	if running {
		s.cancel()
		<-s.done
	}
	s.reg.Unregister()
	return nil
}

func (s *RedisState) openKey(name string) string  { return s.prefix + "{" + name + "}:open" }
func (s *RedisState) pauseKey(name string) string { return s.prefix + "{" + name + "}:pause" }

// sharedLink ties one breaker to a store under a name.
type sharedLink struct {
	s    *RedisState
	name string
	b    *Breaker
}

func (s *RedisState) link(name string, b *Breaker) *sharedLink {
	l := &sharedLink{s: s, name: name, b: b}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return l
	}
	if s.links[name] == nil {
		s.links[name] = map[*sharedLink]struct{}{}
	}
	s.links[name][l] = struct{}{}
	if !s.running {
		s.running = true
		s.base, s.cancel = context.WithCancel(context.Background())
		s.done = make(chan struct{})
		go s.run(s.base, s.done)
	}
	return l
}

// unlink stops refreshing l's breaker.
func (l *sharedLink) unlink() {
	s := l.s
	s.mu.Lock()
	if set := s.links[l.name]; set != nil {
		delete(set, l)
		if len(set) == 0 {
			delete(s.links, l.name)
		}
	}
	s.mu.Unlock()
}

// publishState queues the write a transition to t calls for. It runs under
// the breaker's locks: it only queues.
func (l *sharedLink) publishState(t State, brk time.Duration) {
	switch t {
	case StateOpen:
		l.s.enqueue(sharedWrite{kind: writeOpen, name: l.name, ttl: satAdd(brk, l.s.interval)})
	case StateClosed:
		l.s.enqueue(sharedWrite{kind: writeClose, name: l.name})
	}
}

func (l *sharedLink) publishPause(d time.Duration) {
	l.s.enqueue(sharedWrite{kind: writePause, name: l.name, ttl: d})
}

func (s *RedisState) enqueue(w sharedWrite) {
	s.mu.Lock()
	if s.closed || len(s.links[w.name]) == 0 {
		s.mu.Unlock()
		return
	}
	if len(s.queue) >= maxQueue {
		s.queue = append(s.queue[:0], s.queue[1:]...)
		s.errs.Add(1)
	}
	s.queue = append(s.queue, w)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *RedisState) run(base context.Context, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(s.interval)
	defer t.Stop()
	s.refresh(base)
	for {
		select {
		case <-base.Done():
			return
		case <-s.wake:
			s.flush(base)
		case <-t.C:
			s.flush(base)
			s.refresh(base)
		}
	}
}

// Compare-and-delete: the owner that opened a breaker closes it, and no one
// else.
const closeScript = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`

// Set unless a longer pause is already there.
const pauseScript = `local t = redis.call('PTTL', KEYS[1])
if t < tonumber(ARGV[2]) then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end return 0`

// flush writes the queued transitions in one pipeline.
func (s *RedisState) flush(base context.Context) {
	s.mu.Lock()
	q := s.queue
	s.queue = nil
	s.mu.Unlock()
	if len(q) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(base, s.timeout)
	defer cancel()
	pipe := s.client.Pipeline()
	for _, w := range q {
		switch w.kind {
		case writeOpen:
			pipe.Set(ctx, s.openKey(w.name), s.id, max(w.ttl, time.Millisecond))
		case writeClose:
			pipe.Eval(ctx, closeScript, []string{s.openKey(w.name)}, s.id)
		case writePause:
			pipe.Eval(ctx, pauseScript, []string{s.pauseKey(w.name)}, s.id, max(w.ttl, time.Millisecond).Milliseconds())
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) && base.Err() == nil {
		s.errs.Add(1)
		// Try again at the next tick, before what was queued since, so
		// that an open written during an outage reaches the fleet once
		// Redis is back; the queue stays bounded.
		s.mu.Lock()
		s.queue = append(q, s.queue...)
		if over := len(s.queue) - maxQueue; over > 0 {
			s.queue = s.queue[over:]
			s.errs.Add(int64(over))
		}
		s.mu.Unlock()
	}
}

// refresh reads the fleet's state of every linked breaker in one pipeline
// and applies it.
func (s *RedisState) refresh(base context.Context) {
	s.mu.Lock()
	names := make([]string, 0, len(s.links))
	links := make([][]*sharedLink, 0, len(s.links))
	for name, set := range s.links {
		names = append(names, name)
		ls := make([]*sharedLink, 0, len(set))
		for l := range set {
			ls = append(ls, l)
		}
		links = append(links, ls)
	}
	s.mu.Unlock()
	if len(names) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(base, s.timeout)
	defer cancel()
	pipe := s.client.Pipeline()
	owners := make([]*redis.StringCmd, len(names))
	opens := make([]*redis.DurationCmd, len(names))
	pauses := make([]*redis.DurationCmd, len(names))
	for i, name := range names {
		owners[i] = pipe.Get(ctx, s.openKey(name))
		opens[i] = pipe.PTTL(ctx, s.openKey(name))
		pauses[i] = pipe.PTTL(ctx, s.pauseKey(name))
	}
	_, err := pipe.Exec(ctx)
	if err != nil && !errors.Is(err, redis.Nil) {
		if base.Err() != nil {
			return // closed
		}
		s.errs.Add(1)
		for _, ls := range links {
			for _, l := range ls {
				if l.b.applyShared(0, "") {
					s.trans.Add(toClosed, 1)
				}
			}
		}
		return
	}
	for i, ls := range links {
		owner, gerr := owners[i].Result()
		var open time.Duration
		if gerr == nil && owner != s.id {
			open = opens[i].Val()
		}
		pause := pauses[i].Val()
		for _, l := range ls {
			if l.b.applyShared(open, owner) {
				if open > 0 {
					s.trans.Add(toOpen, 1)
				} else {
					s.trans.Add(toClosed, 1)
				}
			}
			if pause > 0 {
				if _, began := l.b.startPause(pause, "the fleet is paused: a downstream asked another instance to wait"); began {
					s.trans.Add(toPaused, 1)
				}
			}
		}
	}
}

// applyShared holds the breaker open for open from now on behalf of owner,
// or releases it when open ≤ 0. It reports whether the hold started or
// ended.
func (b *Breaker) applyShared(open time.Duration, owner string) bool {
	now := b.c.since()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dead {
		return false
	}
	was := b.sharedUntil.Load() != 0
	from := b.visible()
	if open > 0 {
		b.sharedUntil.Store(int64(satAdd(now, open)))
	} else {
		b.sharedUntil.Store(0)
	}
	if b.mode.Load() == modeNormal {
		reason := "the instance that opened it closed it, or its open state expired"
		if open > 0 {
			reason = "opened by instance " + owner
		}
		b.transitionLocked(from, b.visible(), sourceAutomatic, reason)
	}
	return was != (open > 0)
}

// WithSharedState shares the breaker's state (a [Group]'s: each member's,
// under "<group name>:<key>") with a fleet through s; see [RedisState].
// Breakers with the same name on every instance share one state: an open
// state (its owner's trip, until the owner's probes or [Breaker.Reset]
// close it) and a pause ([WithPauseOnHint]). ForceOpen and Disable stay
// local to the instance. A Group member learns the fleet's state once its
// key exists on this instance (after its first call); a Group's overflow
// breaker is not shared. Close the breaker (or the group) to stop
// refreshing it. A nil s is ignored.
//
// Default: none (state is local).
func WithSharedState(s SharedState) Option {
	return optionFunc(func(o *options) {
		if s != nil {
			o.shared = s
		}
	})
}

// WithRefreshInterval is how often a [RedisState] reads the fleet's state:
// the longest another instance takes to follow an open or close, and the
// slack added to the expiry of an open state. Breakers ignore it. It panics
// if d ≤ 0.
//
// Default: 1 s.
func WithRefreshInterval(d time.Duration) Option {
	if d <= 0 {
		panic("breaker: WithRefreshInterval: d must be > 0, got " + d.String())
	}
	return optionFunc(func(o *options) { o.refresh = d })
}

// WithStoreTimeout bounds every Redis round trip of a [RedisState].
// Breakers ignore it. It panics if d ≤ 0.
//
// Default: 250 ms.
func WithStoreTimeout(d time.Duration) Option {
	if d <= 0 {
		panic("breaker: WithStoreTimeout: d must be > 0, got " + d.String())
	}
	return optionFunc(func(o *options) { o.storeTimeout = d })
}

// WithRedisPrefix sets the prefix of a [RedisState]'s keys. Breakers ignore
// it. It panics on an empty prefix.
//
// Default: "bulwark:breaker:".
func WithRedisPrefix(p string) Option {
	if p == "" {
		panic("breaker: WithRedisPrefix: empty prefix")
	}
	return optionFunc(func(o *options) { o.redisPrefix = p })
}

// WithInstanceID sets the ID a [RedisState] writes as the owner of the
// breakers this instance opens (a pod name, say); it must differ between
// instances. Breakers ignore it. It panics on an empty id.
//
// Default: 16 random hex digits.
func WithInstanceID(id string) Option {
	if id == "" {
		panic("breaker: WithInstanceID: empty id")
	}
	return optionFunc(func(o *options) { o.instanceID = id })
}

func fmtType(v any) string { return fmt.Sprintf("%T", v) }
