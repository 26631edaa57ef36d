// Package retry retries failed calls with exponential backoff and jitter,
// honouring server hints, the caller's deadline, a shared retry budget and
// the replay safety of the request.
//
// A [Retrier] is a [bulwark.Policy]. Do runs fn; when fn fails with an error
// worth retrying ([DefaultRetryIf], or [WithRetryIf]) it waits and runs fn
// again, up to [WithMaxAttempts] attempts (3 by default, the first
// included). Delays come from github.com/cenkalti/backoff/v4's exponential
// backoff: the n-th retry's interval is initial × multiplier^(n-1), capped
// at the maximum delay (defaults 100 ms, 2, 5 s), and the delay is drawn
// uniformly from [interval × (1-r), min(interval × (1+r), maximum delay)]
// (r = 0.5 by default): jitter after the cap, as gRFC A6, so retries at
// the cap stay spread over [maximum × (1-r), maximum] and the maximum is
// a hard ceiling. A maximum of math.MaxInt64 means "no cap".
//
// A server hint ([bulwark.RetryAfter]: HTTP Retry-After, gRPC RetryInfo or
// grpc-retry-pushback-ms, as the transport adapters report them) replaces
// the backoff delay of the next retry; a hint longer than [WithMaxHint]
// (1 min by default) ends retrying at once. A retry whose delay would end at or
// past the caller's deadline (or past [WithMaxElapsed]) is not made: Do
// returns at once. When retrying stops while the last error was still
// worth retrying, Do returns it inside an [*ExhaustedError]; the caller's
// cancellation, during an attempt or a delay, returns the caller's
// ctx.Err() (or the attempt's error when it already wraps it); an error not
// worth retrying comes back unchanged.
//
// Replay safety: an error whose [bulwark.Retryable] says false is never
// retried. The transport adapters mark so the requests they cannot replay
// (bulwarkhttp: a non-idempotent method without an Idempotency-Key) and a
// downstream's "do not retry" (a negative grpc-retry-pushback-ms).
// Attempts after the first see their 1-based number in the context
// ([bulwark.AttemptFrom]); the adapters send it downstream
// (Bulwark-Attempt).
//
// A [Budget] shared by many Retriers caps retries at a ratio of first
// attempts over a rolling window (the SRE book's retry budget); a retry it
// refuses returns the last error at once, inside an [*ExhaustedError]; a
// retry the budget allowed but that never ran (the caller went away during
// the delay) is given back. A Budget is a [bulwark.Snapshotter] for the
// admin page.
//
// [WithOnRetry] sees each retry before its delay, for logging.
//
// Every option checks its value when it is made and panics, naming itself,
// on one that means nothing (NaN, +Inf, a negative or zero duration or
// count where a positive one is needed); math.MaxInt64 durations are valid
// "no cap" values.
//
// In a client chain put the Retrier outermost and a per-attempt timeout
// innermost: Chain(retrier, breaker, bulkhead, bulwark.Timeout(d)), or use
// [WithPerAttemptTimeout].
//
// # Metrics
//
// Meter github.com/bulwark-go/bulwark/retry:
//
//   - bulwark.retry.attempts (counter, {attempt}) {bulwark.policy.name,
//     bulwark.outcome = success|failure|ignored|refused,
//     bulwark.attempt.kind = first|retry}: every attempt, by its outcome;
//   - bulwark.retry.budget.exhausted (counter, {call})
//     {bulwark.policy.name}: calls that stopped because the budget allowed
//     no retry;
//   - bulwark.retry.delay (histogram, s) {bulwark.policy.name,
//     bulwark.reason = backoff|hint}: the delay before each retry, recorded
//     only when a retry is made.
package retry

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/bulwark-go/bulwark"
)

// Retrier retries failed calls; see the package documentation for the
// model. Make Retriers with [New]; the zero value is not usable. A Retrier
// is safe for concurrent use.
type Retrier struct {
	o       options
	timeout bulwark.Policy // per-attempt deadline, or nil
	m       *meters
}

// New returns a Retrier. Nil options are ignored and the last of each kind
// wins; the defaults are 3 attempts (the first included), an initial delay
// of 100 ms growing ×2 up to 5 s with ±50 % jitter, server hints up to
// 1 min, no per-attempt timeout, no elapsed-time cap, no budget, no
// OnRetry hook, and [DefaultRetryIf].
func New(opts ...Option) *Retrier {
	o := defaultOptions()
	for _, opt := range opts {
		if opt != nil {
			opt.apply(&o)
		}
	}
	r := &Retrier{o: o, m: newMeters(o.mp, o.name)}
	if o.perAttempt > 0 {
		r.timeout = bulwark.Timeout(o.perAttempt)
	}
	return r
}

// Do runs fn, and runs it again while it fails with an error worth
// retrying and the attempts, the budget and the deadline allow. fn runs on
// the caller's goroutine, one attempt at a time; attempts after the first
// get a context carrying their number ([bulwark.WithAttempt]).
//
// A panic or runtime.Goexit in fn is counted as a failed attempt and
// passes through.
func (r *Retrier) Do(ctx context.Context, fn func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var start time.Time
	if r.o.maxElapsed > 0 {
		start = time.Now()
	}
	if b := r.o.budget; b != nil {
		b.recordFirst()
	}
	err := r.attempt(ctx, ctx, fn, kindFirst)
	if err == nil {
		return nil
	}
	return r.retry(ctx, fn, err, start)
}

// attempt runs fn once under actx (ctx, or ctx carrying the attempt
// number) and counts its outcome.
func (r *Retrier) attempt(ctx, actx context.Context, fn func(context.Context) error, kind int) (err error) {
	returned := false
	defer func() {
		if !returned { // a panic or runtime.Goexit
			r.m.attempts.Add(kind+outcomeFailure, 1)
		}
	}()
	if r.timeout != nil {
		err = r.timeout.Do(actx, fn)
	} else {
		err = fn(actx)
	}
	returned = true
	r.m.attempts.Add(kind+outcomeOf(ctx, err), 1)
	return err
}

// retry is the slow path, entered after the first attempt failed with
// err.
func (r *Retrier) retry(ctx context.Context, fn func(context.Context) error, err error, start time.Time) error {
	var eb backoff.ExponentialBackOff // set up when the first delay is needed
	for attempts := 1; ; attempts++ {
		if cerr := ctx.Err(); cerr != nil {
			return callerErr(err, cerr)
		}
		if refusesReplay(err) || !r.o.retryIf(err) {
			return err
		}
		if attempts >= r.o.maxAttempts {
			return &ExhaustedError{Attempts: attempts, Err: err, reason: reasonAttempts}
		}
		if attempts == 1 {
			eb = backoff.ExponentialBackOff{
				InitialInterval:     r.o.initial,
				RandomizationFactor: 0, // jitter after the cap: see jitter
				Multiplier:          r.o.multiplier,
				MaxInterval:         r.o.maxDelay,
				Stop:                backoff.Stop,
				Clock:               backoff.SystemClock,
			}
			eb.Reset()
		}
		delay := r.jitter(eb.NextBackOff())
		reason := delayBackoff
		if hint, ok := bulwark.RetryAfter(err); ok {
			if hint > r.o.maxHint {
				return &ExhaustedError{Attempts: attempts, Err: err, reason: reasonHint}
			}
			delay, reason = hint, delayHint
		}
		now := time.Now()
		if dl, ok := ctx.Deadline(); ok && !now.Add(delay).Before(dl) {
			return &ExhaustedError{Attempts: attempts, Err: err, reason: reasonDeadline}
		}
		if r.o.maxElapsed > 0 && now.Add(delay).Sub(start) > r.o.maxElapsed {
			return &ExhaustedError{Attempts: attempts, Err: err, reason: reasonElapsed}
		}
		var tick int64
		if b := r.o.budget; b != nil {
			var ok bool
			if tick, ok = b.allowRetry(); !ok {
				r.m.exhausted.Add(0, 1)
				return &ExhaustedError{Attempts: attempts, Err: err, reason: reasonBudget}
			}
		}
		if r.o.onRetry != nil {
			r.o.onRetry(attempts, err, delay)
		}
		r.m.recordDelay(ctx, delay, reason)
		if cerr := sleep(ctx, delay); cerr != nil {
			if b := r.o.budget; b != nil {
				b.refund(tick) // the retry never ran
			}
			return cerr
		}
		err = r.attempt(ctx, bulwark.WithAttempt(ctx, attempts+1), fn, kindRetry)
		if err == nil {
			return nil
		}
	}
}

// jitter returns the delay before a retry whose backoff interval is
// interval: drawn uniformly from [interval·(1−r), min(interval·(1+r),
// MaxDelay)], jitter applied after the cap as gRFC A6 does, so that at the
// cap the delays spread over [MaxDelay·(1−r), MaxDelay] instead of bunching
// at MaxDelay, and MaxDelay stays a hard ceiling. The arithmetic is in
// float64 and clamped before converting back, so a MaxDelay of
// math.MaxInt64 ("no cap") never overflows into a negative delay.
func (r *Retrier) jitter(interval time.Duration) time.Duration {
	maxD := r.o.maxDelay
	interval = min(max(interval, 0), maxD)
	f := r.o.random
	if f == 0 {
		return interval
	}
	lo := float64(interval) * (1 - f)
	hi := min(float64(interval)*(1+f), float64(maxD))
	d := lo + rand.Float64()*(hi-lo)
	if d >= float64(maxD) {
		return maxD
	}
	return time.Duration(d)
}

// refusesReplay reports whether err carries Retryable() == false.
func refusesReplay(err error) bool {
	ok, found := bulwark.Retryable(err)
	return found && !ok
}

// callerErr is what Do returns when the caller's context ended (cerr)
// after an attempt failed with err: err when it already says so, else
// cerr.
func callerErr(err, cerr error) error {
	if errors.Is(err, cerr) {
		return err
	}
	return cerr
}

// sleep waits d or until ctx ends, whichever comes first; it returns
// ctx.Err() when ctx ended first, or ended at the same time.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	select {
	case <-t.C:
		return ctx.Err()
	case <-ctx.Done():
		t.Stop()
		return ctx.Err()
	}
}
