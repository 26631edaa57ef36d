package retry

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark"
)

// Budget caps retries relative to first attempts, so a failing downstream
// sees at most about (1 + ratio) times its normal load instead of
// MaxAttempts times (the SRE book's per-client retry budget). A retry is
// allowed only while, over a rolling window,
//
//	retries ≤ ratio × first attempts + minimum rate × window
//
// where the minimum rate lets a quiet client, which has few first
// attempts to earn retries with, still retry a little.
//
// A Budget is shared by handing it to many Retriers ([WithBudget]),
// typically one Budget per downstream service. Recording a first attempt
// costs an atomic add (every 16th also reads the clock); deciding about a
// retry reads the clock and takes a short lock. The window is kept in ten
// buckets that age out lazily; no goroutine runs. Make Budgets with [NewBudget]; the zero value is not
// usable. A Budget is safe for concurrent use.
type Budget struct {
	name    string
	ratio   float64
	minRate float64
	window  time.Duration
	reserve float64 // minimum rate × window
	width   time.Duration
	base    time.Time

	pending atomic.Int64 // first attempts not yet put in a bucket
	_       [56]byte

	mu      sync.Mutex // serializes bucket resets and retry decisions
	buckets [budgetBuckets]bucket
	spent   int64 // retries allowed and not given back, ever; under mu
	refused int64 // retries refused, ever; under mu
}

const (
	budgetBuckets = 10
	// flushEvery first attempts, one reads the clock and moves the
	// pending count into the current bucket; a retry decision moves it
	// too. So a first attempt costs an atomic add, and the count of a
	// bucket may include up to flushEvery-1 first attempts made earlier.
	flushEvery = 16
)

type bucket struct {
	tick    atomic.Int64 // which tick (time since base / width) the counts belong to
	firsts  atomic.Int64
	retries atomic.Int64
	_       [40]byte
}

// BudgetOption configures a [Budget]; see [NewBudget].
type BudgetOption interface{ applyBudget(*budgetOptions) }

type budgetOptions struct {
	name    string
	ratio   float64
	minRate float64
	window  time.Duration
}

type budgetOptionFunc func(*budgetOptions)

func (f budgetOptionFunc) applyBudget(o *budgetOptions) { f(o) }

// WithBudgetName names the Budget on the admin page ([Budget.Name],
// [Budget.Snapshot]). It panics if name is empty. Default: "retry-budget".
func WithBudgetName(name string) BudgetOption {
	if name == "" {
		panic("retry: WithBudgetName: name must not be empty")
	}
	return budgetOptionFunc(func(o *budgetOptions) { o.name = name })
}

// WithRatio sets how many retries each first attempt earns. It panics if
// r < 0, NaN or +Inf. Default: 0.1 (the SRE book's 10 %, which keeps the worst case
// near 1.1× the normal load).
func WithRatio(r float64) BudgetOption {
	if !(r >= 0) || math.IsInf(r, 1) {
		panic(fmt.Sprintf("retry: WithRatio: r must be finite and >= 0, got %v", r))
	}
	return budgetOptionFunc(func(o *budgetOptions) { o.ratio = r })
}

// WithMinRetriesPerSecond sets the retries allowed regardless of the
// ratio, per second of the window, for quiet clients. It panics if n < 0,
// NaN or +Inf. Default: 3.
func WithMinRetriesPerSecond(n float64) BudgetOption {
	if !(n >= 0) || math.IsInf(n, 1) {
		panic(fmt.Sprintf("retry: WithMinRetriesPerSecond: n must be finite and >= 0, got %v", n))
	}
	return budgetOptionFunc(func(o *budgetOptions) { o.minRate = n })
}

// WithWindow sets the length of the rolling window the budget counts over
// (in ten buckets). It panics if d < 10 ns; math.MaxInt64 is valid.
// Default: 10 s.
func WithWindow(d time.Duration) BudgetOption {
	if d < budgetBuckets {
		panic("retry: WithWindow: d must be >= 10ns, got " + d.String())
	}
	return budgetOptionFunc(func(o *budgetOptions) { o.window = d })
}

// NewBudget returns a retry budget; see [Budget]. Nil options are ignored
// and the last of each kind wins.
func NewBudget(opts ...BudgetOption) *Budget {
	o := budgetOptions{name: "retry-budget", ratio: 0.1, minRate: 3, window: 10 * time.Second}
	for _, opt := range opts {
		if opt != nil {
			opt.applyBudget(&o)
		}
	}
	b := &Budget{
		name:    o.name,
		ratio:   o.ratio,
		minRate: o.minRate,
		window:  o.window,
		reserve: o.minRate * o.window.Seconds(),
		width:   o.window / budgetBuckets,
		base:    time.Now(),
	}
	for i := range b.buckets {
		b.buckets[i].tick.Store(-1)
	}
	return b
}

// tickAt returns the bucket tick of t; a t before the budget's creation
// (a clock that went backwards) counts as tick 0.
func (b *Budget) tickAt(t time.Time) int64 {
	d := t.Sub(b.base)
	if d < 0 {
		return 0
	}
	return int64(d / b.width)
}

// current returns the bucket of tick, emptied first when it still holds
// an older tick's counts.
func (b *Budget) current(tick int64) *bucket {
	bk := &b.buckets[tick%budgetBuckets]
	if bk.tick.Load() != tick {
		b.mu.Lock()
		b.resetLocked(bk, tick)
		b.mu.Unlock()
	}
	return bk
}

func (b *Budget) resetLocked(bk *bucket, tick int64) {
	if bk.tick.Load() < tick {
		bk.firsts.Store(0)
		bk.retries.Store(0)
		bk.tick.Store(tick)
	}
}

// recordFirst counts a first attempt.
func (b *Budget) recordFirst() {
	if b.pending.Add(1)%flushEvery == 0 {
		if n := b.pending.Swap(0); n != 0 {
			b.current(b.tickAt(time.Now())).firsts.Add(n)
		}
	}
}

// allowRetry reports whether the budget allows one more retry, and counts
// it in the bucket of the returned tick when it does.
func (b *Budget) allowRetry() (tick int64, ok bool) {
	tick = b.tickAt(time.Now())
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.availableLocked(tick) < 1 {
		b.refused++
		return tick, false
	}
	b.buckets[tick%budgetBuckets].retries.Add(1)
	b.spent++
	return tick, true
}

// refund gives back a retry allowed at tick that never ran. When the
// bucket of tick was since reused by a later tick, the retry has already
// aged out of the window and nothing is left to give back there.
func (b *Budget) refund(tick int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.spent--
	if bk := &b.buckets[tick%budgetBuckets]; bk.tick.Load() == tick && bk.retries.Load() > 0 {
		bk.retries.Add(-1)
	}
}

// availableLocked returns the retries the window still allows at tick:
// ratio × first attempts + minimum rate × window − retries. It moves the
// pending first attempts into the bucket of tick.
func (b *Budget) availableLocked(tick int64) float64 {
	cur := &b.buckets[tick%budgetBuckets]
	b.resetLocked(cur, tick)
	cur.firsts.Add(b.pending.Swap(0))
	var firsts, retries int64
	for i := range b.buckets {
		bk := &b.buckets[i]
		if t := bk.tick.Load(); t > tick-budgetBuckets && t <= tick {
			firsts += bk.firsts.Load()
			retries += bk.retries.Load()
		}
	}
	return b.ratio*float64(firsts) + b.reserve - float64(retries)
}

// Name returns the Budget's name ([WithBudgetName]), so that a
// [bulwark.Registry] can register it.
func (b *Budget) Name() string { return b.name }

// Snapshot returns the Budget's state for the admin page: kind
// "retry-budget", state "ok" while at least one retry is available and
// "exhausted" (health "warn") when none is, and the figures ratio, min
// retries per second, window, available retries (ratio × first attempts +
// minimum rate × window − retries, over the current window), first
// attempts and retries in the window, and retries spent and refused since
// the Budget was made (a retry given back is not spent).
func (b *Budget) Snapshot() bulwark.Snapshot {
	tick := b.tickAt(time.Now())
	b.mu.Lock()
	avail := max(b.availableLocked(tick), 0)
	var firsts, retries int64
	for i := range b.buckets {
		bk := &b.buckets[i]
		if t := bk.tick.Load(); t > tick-budgetBuckets && t <= tick {
			firsts += bk.firsts.Load()
			retries += bk.retries.Load()
		}
	}
	spent, refused := b.spent, b.refused
	b.mu.Unlock()
	s := bulwark.Snapshot{
		Name:  b.name,
		Kind:  "retry-budget",
		State: "ok",
		Figures: []bulwark.Figure{
			{Name: "ratio", Value: b.ratio, Unit: "1"},
			{Name: "min retries per second", Value: b.minRate, Unit: "{retry}/s"},
			{Name: "window", Value: b.window.Seconds(), Unit: "s"},
			{Name: "available retries", Value: math.Floor(avail), Unit: "{retry}"},
			{Name: "first attempts in window", Value: float64(firsts), Unit: "{attempt}"},
			{Name: "retries in window", Value: float64(retries), Unit: "{retry}"},
			{Name: "retries spent", Value: float64(spent), Unit: "{retry}"},
			{Name: "retries refused", Value: float64(refused), Unit: "{retry}"},
		},
	}
	if avail < 1 {
		s.State, s.Health = "exhausted", "warn"
	}
	return s
}
