package bulwarktest

import "time"

// Option configures [TestPolicy]. Nil options are ignored; when an option
// is given twice, the last one wins.
type Option interface{ apply(*options) }

type options struct {
	maxWait   time.Duration
	lateWatch time.Duration
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// DefaultMaxWait is how long a Do on a saturated policy may take before
// [TestPolicy] fails it, unless [WithMaxWait] says otherwise.
const DefaultMaxWait = time.Second

// DefaultLateCallWatch is how long [TestPolicy] keeps watching for calls of
// fn after its subtests, unless [WithLateCallWatch] says otherwise.
const DefaultLateCallWatch = 2500 * time.Millisecond

// WithMaxWait sets how long a Do (or Admit) under context.Background() may
// take on a saturated policy before the suite fails it: a policy that
// refuses at once passes with any d; one built to wait (a queueing
// bulkhead, an armed latency drill) passes when its own bound is below d.
// It panics if d ≤ 0.
// Default: [DefaultMaxWait] (1 s).
func WithMaxWait(d time.Duration) Option {
	if d <= 0 {
		panic("bulwarktest: WithMaxWait: d must be > 0, got " + d.String())
	}
	return optionFunc(func(o *options) { o.maxWait = d })
}

// WithLateCallWatch sets how long the suite keeps watching, after its
// subtests, for calls of fn made after Do returned (a timer the policy
// left behind). A policy known to arm no timer may shorten it to speed up
// its tests; 0 checks only the calls made by the end of the subtests. It
// panics if d < 0.
// Default: [DefaultLateCallWatch] (2.5 s).
func WithLateCallWatch(d time.Duration) Option {
	if d < 0 {
		panic("bulwarktest: WithLateCallWatch: d must be >= 0, got " + d.String())
	}
	return optionFunc(func(o *options) { o.lateWatch = d })
}
