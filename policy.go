// Package bulwark is the contract every bulwark policy shares: a [Policy]
// runs a function under a resilience rule (a circuit breaker, a bulkhead, a
// rate limit, retries, a timeout) and either returns the function's error or
// refuses with an error of a documented class.
//
// Policies compose with [Chain]; the transport packages (bulwarkhttp,
// bulwarkgrpc) map the error classes to status codes and headers, so a new
// policy needs no adapter change.
//
// # Outcomes and error classes
//
// A call through a policy ends in one of four outcomes: success (fn returned
// nil), failure (fn returned an error, panicked, called runtime.Goexit, or our
// own per-attempt [ErrTimeout] fired), ignored (the caller's own context
// ended) or refused (a policy declined to run fn).
//
// Every refusal and every classified downstream answer wraps exactly one
// class:
//
//	class                 meaning                                HTTP  gRPC
//	ErrRejected           this caller asked for too much         429   RESOURCE_EXHAUSTED
//	ErrUnavailable        this side cannot serve now             503   UNAVAILABLE
//	ErrRemoteRejected     a downstream answered 429              503   UNAVAILABLE
//	ErrRemoteUnavailable  a downstream answered 502/503/504      503   UNAVAILABLE
//	ErrTimeout            our own deadline fired (no class)      503   DEADLINE_EXCEEDED
//
// [RetryAfter] reads the retry hint a refusal or a downstream answer carries.
//
// # Priority
//
// Four tiers, after the SRE practice of request criticality:
// [CriticalPlus] > [Critical] (the default) > [SheddablePlus] > [Sheddable].
// Under pressure a policy never refuses a tier while it still admits a lower
// one. The server adapters put the effective tier into the context
// ([WithPriority]); policies read it with [PriorityFrom].
//
// # Telemetry
//
// [DryRun] records bulwark.dryrun.would_refuse {bulwark.policy.name,
// bulwark.reason}; every policy package documents its own instruments.
package bulwark

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// Policy runs fn under a resilience policy. It returns fn's error, or an
// error of one of the classes [ErrRejected], [ErrUnavailable] (with a retry
// hint where one is known, see [RetryAfter]) when it refused to run fn.
//
// Every implementation keeps this contract, and package bulwarktest checks
// it:
//
//   - fn runs on the caller's goroutine, at most once per attempt, and never
//     after Do returned — not even from a timer — except in a policy that
//     declares [Concurrent] (the cancelled attempts of a hedging policy),
//     which is why a hedger must be given an fn that honours cancellation.
//   - An already-ended context is answered without calling fn, with an error
//     for which errors.Is(err, ctx.Err()) holds.
//   - A panic or runtime.Goexit in fn is recorded as a failure and passes
//     through untouched; the policy stays usable (no permit, slot or probe is
//     leaked).
//   - Do refuses at once, unless the policy was built to wait (a bulkhead
//     with a queue and a maximum wait, bulkhead.WithMaxQueue and
//     bulkhead.WithMaxWait): then Do and Admit wait in the compartment's
//     priority queue (higher tiers first, the lowest evicted first) for at
//     most that wait, and never past the caller's deadline. Otherwise only
//     methods named Wait or Acquire block.
//   - Under pressure a tier is never refused while a lower one is admitted
//     (deterministic admission, within one compartment or key).
//   - Implementations are safe for concurrent use.
type Policy interface {
	Do(ctx context.Context, fn func(context.Context) error) error
}

// PolicyFunc adapts an ordinary function to a [Policy].
type PolicyFunc func(ctx context.Context, fn func(context.Context) error) error

// Do calls f(ctx, fn).
func (f PolicyFunc) Do(ctx context.Context, fn func(context.Context) error) error {
	return f(ctx, fn)
}

// Admitter is two-step admission, for work that outlives a call to Do: an
// HTTP response body, a client stream. Admit decides at once; on success the
// caller must call done exactly once with the work's outcome (nil for
// success). Calling done more than once is harmless: only the first call
// counts. On refusal Admit returns a nil done and an error of one of the
// classes.
//
// Admission policies (breaker, bulkhead, ratelimit, degrade, drill)
// implement Admitter, and so does a [Chain] whose members all do.
type Admitter interface {
	Admit(ctx context.Context) (done func(error), err error)
}

// Concurrent is implemented by policies that may call fn on several
// goroutines at once, or after their Do returned (a hedging policy's
// cancelled attempts). [Chain] gives such policies a fresh call frame on
// every call instead of a pooled one.
type Concurrent interface {
	Policy
	// ConcurrentFn reports whether Do may call fn concurrently or late.
	ConcurrentFn() bool
}

// Chain composes policies: ps[0] is the outermost, as with
// grpc.ChainUnaryInterceptor, so Chain(retry, breaker).Do(ctx, fn) retries
// calls that the breaker admits. Nil policies are skipped, nested chains are
// flattened, Chain() is the identity (it runs fn as is, even for an ended
// context), and a chain of one policy is that policy.
//
// The result implements [Admitter] when every member does; Admit admits
// members in order and, when one refuses, releases those already admitted
// with that refusal (which no breaker counts).
//
// A chain's Do allocates nothing: the call frames linking its members are
// reused across calls.
func Chain(ps ...Policy) Policy {
	var flat []Policy
	for _, p := range ps {
		switch p := p.(type) {
		case nil:
		case *chain:
			flat = append(flat, p.ps...)
		case *admitChain:
			flat = append(flat, p.ps...)
		case identity:
		default:
			flat = append(flat, p)
		}
	}
	switch len(flat) {
	case 0:
		return identity{}
	case 1:
		return flat[0]
	}
	c := &chain{ps: flat}
	for _, p := range flat {
		if cp, ok := p.(Concurrent); ok && cp.ConcurrentFn() {
			c.concurrent = true
		}
	}
	ads := make([]Admitter, 0, len(flat))
	for _, p := range flat {
		a, ok := p.(Admitter)
		if !ok {
			return c
		}
		ads = append(ads, a)
	}
	return &admitChain{chain: c, ads: ads}
}

// identity is Chain(): it runs fn as is.
type identity struct{}

func (identity) Do(ctx context.Context, fn func(context.Context) error) error { return fn(ctx) }

func (identity) Admit(context.Context) (func(error), error) { return noopDone, nil }

func noopDone(error) {}

// chain runs its members nested. The closures that link member i to member
// i+1 are built once per frame, and frames are reused: a few fixed slots
// claimed with a CAS (which -race does not disturb, unlike sync.Pool), then a
// sync.Pool for overflow.
type chain struct {
	ps         []Policy
	concurrent bool     // some member may call fn concurrently or late
	_          [64]byte // keep the slots' writes off the line every call reads
	slots      [frameSlots]slot
	pool       sync.Pool
}

const frameSlots = 8

type slot struct {
	busy atomic.Bool
	f    *frame    // owned by whoever holds busy
	_    [112]byte // hot fields of two slots never share a cache line, however the array is aligned
}

type frame struct {
	fn     func(context.Context) error
	steps  []func(context.Context) error
	active atomic.Int32 // calls of fn now running
	taint  atomic.Bool  // fn overlapped or outlived Do: never reuse
	slot   *slot        // nil for a pooled frame
	_      [64]byte     // frames of different callers never share a line
}

func newFrame(c *chain) *frame {
	f := &frame{}
	n := len(c.ps)
	f.steps = make([]func(context.Context) error, n)
	for i := 0; i < n-1; i++ {
		p, next := c.ps[i+1], &f.steps[i+1]
		f.steps[i] = func(ctx context.Context) error { return p.Do(ctx, *next) }
	}
	f.steps[n-1] = f.tail
	return f
}

// tail calls the user's fn and notices when a member calls it concurrently.
func (f *frame) tail(ctx context.Context) error {
	fn := f.fn
	if f.active.Add(1) > 1 {
		f.taint.Store(true)
	}
	defer f.active.Add(-1)
	return fn(ctx)
}

func (c *chain) acquire() *frame {
	start := rand.Uint32() // per-P state: callers on different Ps start apart
	for i := uint32(0); i < frameSlots; i++ {
		s := &c.slots[(start+i)%frameSlots]
		if !s.busy.Load() && s.busy.CompareAndSwap(false, true) {
			if s.f == nil {
				s.f = newFrame(c)
				s.f.slot = s
			}
			return s.f
		}
	}
	if f, ok := c.pool.Get().(*frame); ok {
		return f
	}
	return newFrame(c)
}

func (c *chain) release(f *frame) {
	if f.active.Load() != 0 || f.taint.Load() {
		// A member still runs fn, or ran it concurrently: a late call
		// could reach this frame again, so it keeps its fn and is never
		// reused. Its slot gets a fresh frame next time.
		if f.slot != nil {
			s := f.slot
			s.f = nil
			s.busy.Store(false)
		}
		return
	}
	f.fn = nil
	if f.slot == nil {
		c.pool.Put(f)
		return
	}
	f.slot.busy.Store(false)
}

func (c *chain) Do(ctx context.Context, fn func(context.Context) error) error {
	if c.concurrent {
		f := newFrame(c)
		f.fn = fn
		return c.ps[0].Do(ctx, f.steps[0])
	}
	f := c.acquire()
	f.fn = fn
	defer c.release(f)
	return c.ps[0].Do(ctx, f.steps[0])
}

// ConcurrentFn reports whether a member may call fn concurrently or late.
func (c *chain) ConcurrentFn() bool { return c.concurrent }

// admitChain is a chain whose members are all Admitters.
type admitChain struct {
	*chain
	ads []Admitter
}

func (c *admitChain) Admit(ctx context.Context) (func(error), error) {
	dones := make([]func(error), 0, len(c.ads))
	for _, a := range c.ads {
		done, err := a.Admit(ctx)
		if err != nil {
			for i := len(dones) - 1; i >= 0; i-- {
				dones[i](err)
			}
			return nil, err
		}
		dones = append(dones, done)
	}
	var once atomic.Bool
	return func(err error) {
		if !once.CompareAndSwap(false, true) {
			return
		}
		for i := len(dones) - 1; i >= 0; i-- {
			dones[i](err)
		}
	}, nil
}
