package breaker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/internal/telemetry"
)

// Defaults of an [Adaptive] throttle, after the SRE book: K = 2 (1.1 is
// aggressive), statistics over the last 2 minutes, kept in 12 buckets of
// 10 s so that old outcomes age out in small steps.
const (
	DefaultK               = 2.0
	DefaultAdaptiveWindow  = 2 * time.Minute
	DefaultAdaptiveBuckets = 12
	// DefaultAdaptiveMinCalls is the number of requests a tier's window
	// must hold before it is throttled: the formula gives 0.5 after a
	// single failure, which at low traffic is noise, not overload.
	DefaultAdaptiveMinCalls = 20
)

// Adaptive is client-side adaptive throttling after the SRE book
// ("Handling Overload"): it refuses calls locally, without calling, with
// probability
//
//	max(0, (requests − K·accepts) / (requests + 1))
//
// over a rolling window, where requests are the calls attempted (those it
// refused itself included) and accepts the calls the backend accepted.
// While the backend accepts everything the probability is 0; as it rejects
// more, the client sheds the excess before it reaches the network, yet
// keeps sending a trickle that notices recovery — there is no open state
// and no probe.
//
// An accepted call is one that returned nil, or an error that is neither
// bulwark.ErrRemoteRejected, bulwark.ErrRemoteUnavailable, bulwark.ErrTimeout
// nor a failure by the [WithFailure] classifier (whose default counts every
// error but ErrRemoteRejected, so an unclassified error is not an accept
// either). The caller's own cancellation and inner policies' refusals are
// not counted at all. A panic or runtime.Goexit in fn is a non-accepted
// request and passes through.
//
// Statistics are kept per priority tier (bulwark.PriorityFrom): each tier's
// probability comes from its own requests and accepts, and a tier is
// refused with at least the probability of every higher tier (SPEC's rule
// for probabilistic throttles), so a Sheddable flood cannot hide behind the
// accepts of Critical traffic and vice versa.
//
// A tier is not throttled until its window holds [WithMinCalls] requests
// (default 20): at low traffic the formula is noise (one failure alone
// gives 0.5).
//
// A refusal wraps [ErrThrottled] and bulwark.ErrUnavailable, with one
// window bucket as its retry hint (the soonest the statistics move).
//
// Options: [WithWindow] (default 2 min in 12 buckets), [WithK],
// [WithMinCalls] (default 20), [WithRandom], [WithFailure],
// [WithMeterProvider]. It ignores the others (ratios, consecutive failures, slow calls, break duration,
// probes, state-change callbacks, keys, shared state, pause on hint): it
// has no states.
//
// Metrics: bulwark.breaker.calls (success: accepted, failure: not
// accepted, ignored, refused) and bulwark.breaker.throttle.probability
// (gauge, 1, {bulwark.policy.name, bulwark.priority}): the probability a
// call of each tier is refused now.
//
// Make one with [NewAdaptive]; the zero value is not usable. It is safe for
// concurrent use and starts no goroutines.
type Adaptive struct {
	name  string
	k     float64
	min   uint64
	epoch time.Time
	win   *ring // per tier: requests at i, accepts at NumPriorities+i
	isF   func(error) bool
	rnd   func() float64
	errs  [bulwark.NumPriorities]*RefusalError

	calls    *telemetry.Counters
	callsI   metric.Int64ObservableCounter
	probI    metric.Float64ObservableGauge
	tierSets [bulwark.NumPriorities]telemetry.Set
	reg      *telemetry.Registration
}

// ErrThrottled is the refusal of an [Adaptive] throttle. The error it
// returns wraps it and bulwark.ErrUnavailable.
var ErrThrottled = fmt.Errorf("breaker: throttled: %w", bulwark.ErrUnavailable)

// NewAdaptive returns an adaptive throttle named name (the
// bulwark.policy.name of its metrics) with empty statistics. Call
// [Adaptive.Close] to stop reporting its metrics before it is dropped.
func NewAdaptive(name string, opts ...Option) *Adaptive {
	o := defaultOptions()
	o.window, o.buckets = DefaultAdaptiveWindow, DefaultAdaptiveBuckets
	o.k = DefaultK
	o.minCalls = DefaultAdaptiveMinCalls
	for _, opt := range opts {
		if opt != nil {
			opt.apply(&o)
		}
	}
	a := &Adaptive{
		name:  name,
		k:     o.k,
		min:   uint64(o.minCalls),
		epoch: time.Now(),
		win:   newRing(o.window, o.buckets, 2*bulwark.NumPriorities),
		isF:   o.isFailure,
		rnd:   o.rand,
	}
	if a.rnd == nil {
		a.rnd = rand.Float64
	}
	msg := "breaker: " + strconv.Quote(name) + " is throttling"
	for i := range a.errs {
		a.errs[i] = &RefusalError{kind: refusedThrottled, msg: msg, hint: a.win.width}
	}
	m := telemetry.Meter(o.mp, "breaker")
	nameKV := telemetry.KeyPolicyName.String(name)
	outs := make([]telemetry.Set, len(telemetry.Outcomes))
	for i, out := range telemetry.Outcomes {
		outs[i] = telemetry.NewSet(nameKV, telemetry.KeyOutcome.String(out))
	}
	a.calls = telemetry.NewCounters(outs...)
	for _, p := range bulwark.Priorities {
		a.tierSets[p.Index()] = telemetry.NewSet(nameKV, telemetry.KeyPriority.String(p.String()))
	}
	a.callsI = telemetry.Int64ObservableCounter(m, "bulwark.breaker.calls",
		"Calls through the breaker, by how it counted them.", "{call}")
	g, err := m.Float64ObservableGauge("bulwark.breaker.throttle.probability",
		metric.WithDescription("Probability that an adaptive throttle refuses a call of the tier."), metric.WithUnit("1"))
	if err != nil || g == nil {
		telemetry.Handle(err)
		g, _ = noop.Meter{}.Float64ObservableGauge("bulwark.breaker.throttle.probability")
	}
	a.probI = g
	a.reg = telemetry.Register(m, a, (*Adaptive).observe, a.callsI, a.probI)
	return a
}

func (a *Adaptive) observe(o metric.Observer) {
	a.calls.Observe(o, a.callsI)
	var ps [bulwark.NumPriorities]float64
	a.probabilities(a.since(), &ps)
	for i, p := range ps {
		o.ObserveFloat64(a.probI, p, a.tierSets[i].Observe...)
	}
}

// Name returns the throttle's name.
func (a *Adaptive) Name() string { return a.name }

// Close stops reporting the throttle's metrics. It keeps working.
func (a *Adaptive) Close() error {
	a.reg.Unregister()
	return nil
}

func (a *Adaptive) since() time.Duration { return time.Since(a.epoch) }

// probability is the SRE formula.
func probability(requests, accepts uint64, k float64) float64 {
	return max(0, (float64(requests)-k*float64(accepts))/(float64(requests)+1))
}

// tierP is one tier's own probability: 0 below the minimum of requests.
func (a *Adaptive) tierP(r *ring, i int) float64 {
	req := r.totals[i]
	if req < a.min {
		return 0
	}
	return probability(req, r.totals[bulwark.NumPriorities+i], a.k)
}

// probabilities fills ps, by tier index, with the probability a call of
// each tier is refused: its own, raised to that of any higher tier.
func (a *Adaptive) probabilities(now time.Duration, ps *[bulwark.NumPriorities]float64) {
	r := a.win
	r.mu.Lock()
	r.advanceLocked(now)
	for i := range ps {
		ps[i] = a.tierP(r, i)
	}
	r.mu.Unlock()
	for i := bulwark.NumPriorities - 2; i >= 0; i-- {
		ps[i] = max(ps[i], ps[i+1])
	}
}

// Probability returns the probability that a call of tier p is refused now.
func (a *Adaptive) Probability(p bulwark.Priority) float64 {
	var ps [bulwark.NumPriorities]float64
	a.probabilities(a.since(), &ps)
	return ps[p.Index()]
}

// tierProbability is probabilities for one tier, without the array
// copies: the highest of its own and the higher tiers'.
func (a *Adaptive) tierProbability(now time.Duration, tier int) float64 {
	r := a.win
	p := 0.0
	r.mu.Lock()
	r.advanceLocked(now)
	for i := tier; i < bulwark.NumPriorities; i++ {
		p = max(p, a.tierP(r, i))
	}
	r.mu.Unlock()
	return p
}

// admit decides; a refusal counts as a request of the tier.
func (a *Adaptive) admit(ctx context.Context) (int, error) {
	tier := bulwark.PriorityFrom(ctx).Index()
	now := a.since()
	if p := a.tierProbability(now, tier); p > 0 && a.rnd() < p {
		a.win.add(now, tier, 1)
		a.calls.Add(outRefused, 1)
		return tier, a.errs[tier]
	}
	return tier, nil
}

// classify: outSuccess for an accept, outFailure for a request the backend
// did not accept, outIgnored for calls not counted.
func (a *Adaptive) classify(ctx context.Context, err error) int {
	if err == nil {
		return outSuccess
	}
	if cerr := ctx.Err(); cerr != nil && errors.Is(err, cerr) {
		cause := context.Cause(ctx)
		if !errors.Is(cause, bulwark.ErrTimeout) {
			return outIgnored
		}
		err = cause
	}
	if bulwark.IsRefusal(err) {
		return outIgnored
	}
	if errors.Is(err, bulwark.ErrRemoteRejected) || errors.Is(err, bulwark.ErrRemoteUnavailable) ||
		errors.Is(err, bulwark.ErrTimeout) || a.isF(err) {
		return outFailure
	}
	return outSuccess
}

func (a *Adaptive) finish(tier, out int) {
	switch out {
	case outSuccess:
		r := a.win
		now := a.since()
		r.mu.Lock()
		r.advanceLocked(now)
		b := int(r.head%int64(r.n)) * r.k
		r.vals[b+tier]++
		r.vals[b+bulwark.NumPriorities+tier]++
		r.totals[tier]++
		r.totals[bulwark.NumPriorities+tier]++
		r.mu.Unlock()
	case outFailure:
		a.win.add(a.since(), tier, 1)
	}
	a.calls.Add(out, 1)
}

// Do runs fn unless the throttle refuses it, and counts the outcome; it
// returns fn's error unchanged, or an error wrapping [ErrThrottled] when it
// refused. An ended ctx is answered with ctx.Err() without calling fn.
func (a *Adaptive) Do(ctx context.Context, fn func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		a.calls.Add(outIgnored, 1)
		return err
	}
	tier, err := a.admit(ctx)
	if err != nil {
		return err
	}
	returned := false
	defer func() {
		if !returned {
			a.finish(tier, outFailure)
		}
	}()
	err = fn(ctx)
	returned = true
	a.finish(tier, a.classify(ctx, err))
	return err
}

// Admit is two-step admission for work that outlives a call: on admission
// the caller must call done with the work's outcome; only the first call
// of done counts. It refuses as [Adaptive.Do] does, with a nil done.
func (a *Adaptive) Admit(ctx context.Context) (done func(error), err error) {
	if err := ctx.Err(); err != nil {
		a.calls.Add(outIgnored, 1)
		return nil, err
	}
	tier, err := a.admit(ctx)
	if err != nil {
		return nil, err
	}
	ad := &adaptiveAdmission{a: a, ctx: ctx, tier: tier}
	return ad.done, nil
}

type adaptiveAdmission struct {
	a    *Adaptive
	ctx  context.Context
	tier int
	once atomic.Bool
}

func (d *adaptiveAdmission) done(err error) {
	if d.once.Swap(true) {
		return
	}
	d.a.finish(d.tier, d.a.classify(d.ctx, err))
}

// Snapshot reports the throttle for the admin page (bulwark.Snapshotter):
// kind "throttle", state "ok" or "throttling" (health warn) when some tier
// is refused with a probability above 0, and each tier's probability,
// requests and accepts in the window.
func (a *Adaptive) Snapshot() bulwark.Snapshot {
	now := a.since()
	var ps [bulwark.NumPriorities]float64
	a.probabilities(now, &ps)
	var tot [2 * bulwark.NumPriorities]uint64
	a.win.mu.Lock()
	a.win.advanceLocked(now)
	copy(tot[:], a.win.totals)
	a.win.mu.Unlock()
	s := bulwark.Snapshot{Name: a.name, Kind: "throttle", State: "ok", Health: "ok"}
	for _, p := range bulwark.Priorities {
		i := p.Index()
		if ps[i] > 0 {
			s.State, s.Health = "throttling", "warn"
		}
		s.Figures = append(s.Figures,
			bulwark.Figure{Name: p.String() + " refusal probability", Value: ps[i], Unit: "1"},
			bulwark.Figure{Name: p.String() + " requests", Value: float64(tot[i]), Unit: "{call}"},
			bulwark.Figure{Name: p.String() + " accepts", Value: float64(tot[bulwark.NumPriorities+i]), Unit: "{call}"},
		)
	}
	return s
}

// WithK sets the SRE book's K for an [Adaptive] throttle: calls are refused
// once requests exceed K × accepts. Lower is more aggressive (1.1 starts
// shedding as soon as a tenth of the calls are rejected); higher lets more
// doomed calls reach the backend. Breakers ignore it. It panics unless
// 1 ≤ k < +Inf (below 1 a healthy backend would be throttled).
//
// Default: 2.
func WithK(k float64) Option {
	if !(k >= 1) || math.IsInf(k, 1) {
		panic("breaker: WithK: k must be in [1, +Inf), got " + strconv.FormatFloat(k, 'g', -1, 64))
	}
	return optionFunc(func(o *options) { o.k = k })
}

// WithRandom sets the source of an [Adaptive] throttle's random decisions:
// f returns a value in [0, 1), like math/rand/v2's Float64, and must be
// safe for concurrent use (tests pass a seeded source behind a mutex).
// Breakers ignore it. A nil f is ignored.
//
// Default: math/rand/v2.Float64.
func WithRandom(f func() float64) Option {
	return optionFunc(func(o *options) {
		if f != nil {
			o.rand = f
		}
	})
}

var (
	_ bulwark.Policy      = (*Adaptive)(nil)
	_ bulwark.Admitter    = (*Adaptive)(nil)
	_ bulwark.Snapshotter = (*Adaptive)(nil)
)
