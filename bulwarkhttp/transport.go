package bulwarkhttp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark"
)

// Transport returns an http.RoundTripper that sends each request through
// base under p (a nil base is http.DefaultTransport).
//
// Each attempt (each call of the policy's fn) sends a clone of the request —
// the caller's *http.Request is never modified — with Bulwark-Attempt set to
// the attempt's number ([bulwark.AttemptFrom], or the Transport's own count
// of fn's calls when p does not set it), Bulwark-Priority to the effective
// tier of its context ([bulwark.LookupPriority]; a tier outside the four is
// sent as critical) or, when the context has none, to the tier the caller
// set in the header by hand, capped at critical (an unparseable one is
// replaced by critical), and Bulwark-Drill to the context's drill marker
// ([bulwark.DrillFrom]), if any. Under [WithPropagatePriority] returning
// false, no Bulwark-Priority goes out, not even one the caller's request
// already had. From the second attempt on, the body is rewound with
// GetBody.
//
// Downstream answers are classified for the policies: 502, 503 and 504 are
// a [*StatusError] wrapping [bulwark.ErrRemoteUnavailable], 429 one
// wrapping [bulwark.ErrRemoteRejected], other 5xx one with no class (an
// unclassified failure); a downstream that cannot be reached is a
// [*TransportError] wrapping [bulwark.ErrRemoteUnavailable]. They carry the
// server's Retry-After (delta-seconds or HTTP-date) and whether the request
// may be replayed: it may when its method is idempotent (GET, HEAD, OPTIONS,
// TRACE, PUT, DELETE) or it carries an Idempotency-Key header, and its body
// (if any) can be rewound (GetBody). A request that may not be replayed is
// never sent twice: its errors report Retryable() == false, and should p
// call fn again, fn returns the previous error without sending.
//
// When the policies give up on such an answer, RoundTrip returns that last
// response, body intact, with a nil error; the bodies of the answers that
// were retried are closed. When p refuses without any answer, RoundTrip
// returns p's error (http.Client wraps it in a *url.Error; errors.Is still
// finds the class). A base RoundTripper that is itself a Transport (or
// returns a refusal or [bulwark.ErrTimeout]) has its error passed on as is:
// a refusal stays one refusal, of its own class, through any number of
// layers, and each layer counts it as refused. A nil Body in the base's
// response is taken as empty, as net/http does.
//
// The response body stays readable after the policies returned: a
// per-attempt deadline (a [bulwark.Timeout] in p) applies until the
// response headers arrive, after which only the caller's own context can
// cancel the body read. When p is a [bulwark.Admitter] (a chain of
// admission policies: breaker, bulkhead, rate limit), the Transport uses
// Admit instead of Do and holds admission until the body is closed or read
// to EOF (a response without a body, http.NoBody, releases it at once),
// reporting the answer's class (or a read error) to done. A failed answer
// to a request that may be replayed has its body (up to 64 KiB) read
// before RoundTrip returns, so that its admission ends at once rather than
// after an outer retry's backoff; the caller still gets the body intact.
// That read takes at most 250 ms: a body that stalls is cut there, and the
// caller reads what arrived, then [ErrBodyStalled]. A p that is not an
// Admitter (it contains a retry or a timeout) covers the exchange up to
// the headers only; to cover bodies as well, stack two:
//
//	Transport(retry, Transport(bulwark.Chain(breaker, bulkhead), base))
//
// Transport panics if p is nil.
func Transport(p bulwark.Policy, base http.RoundTripper, opts ...Option) http.RoundTripper {
	if p == nil {
		panic("bulwarkhttp: Transport: nil policy")
	}
	if base == nil {
		base = http.DefaultTransport
	}
	o := newOptions("client", opts)
	t := &transport{p: p, base: base, o: o, m: newClientMetrics(o)}
	if a, ok := p.(bulwark.Admitter); ok {
		t.a = a
	}
	return t
}

type transport struct {
	p    bulwark.Policy
	a    bulwark.Admitter // p, when it is an Admitter
	base http.RoundTripper
	o    options
	m    *requestMetrics
}

// CloseIdleConnections closes the idle connections of the base transport,
// when it has any (http.Client.CloseIdleConnections calls it).
func (t *transport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// replayable reports whether req may be sent more than once.
func replayable(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return false
	}
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace,
		http.MethodPut, http.MethodDelete:
		return true
	}
	return len(req.Header[headerIdempotencyKey]) > 0
}

func closeRequestBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// discard closes a response that will not be returned, after reading a
// little of it so that its connection may be reused. The read is bounded
// in time too: once its headers arrived, a body is covered by the
// caller's context only, and a body that stalls must not hold the next
// attempt.
func discard(resp *http.Response) {
	if resp == nil {
		return
	}
	if resp.Body != http.NoBody {
		stop := time.AfterFunc(discardTimeout, func() { _ = resp.Body.Close() })
		_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
		stop.Stop()
	}
	_ = resp.Body.Close()
}

// discardTimeout bounds the draining of a discarded body.
const discardTimeout = 250 * time.Millisecond

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.a != nil {
		return t.roundTripAdmit(req)
	}
	return t.roundTripDo(req)
}

func (t *transport) roundTripAdmit(req *http.Request) (*http.Response, error) {
	caller := req.Context()
	done, err := t.a.Admit(caller)
	if err != nil {
		closeRequestBody(req)
		t.m.count(t.refusalOutcome(caller, err))
		return nil, err
	}
	// A panic (or runtime.Goexit) in the base RoundTripper passes
	// through untouched, but releases the admission as a failure: a
	// server's recovery would otherwise keep the permit for good.
	returned := false
	defer func() {
		if !returned {
			done(errBasePanicked)
		}
	}()
	resp, ferr := t.send(caller, caller, req, 1, replayable(req), done)
	returned = true
	if resp == nil {
		done(ferr)
		if bulwark.IsRefusal(ferr) {
			t.m.count(t.refusalOutcome(caller, ferr))
		} else {
			t.m.count(t.failureOutcome(caller))
		}
		return nil, ferr
	}
	if ferr != nil {
		t.m.count(outcomeFailure)
	} else {
		t.m.count(outcomeSuccess)
	}
	return resp, nil
}

var errBasePanicked = errors.New("bulwarkhttp: the base RoundTripper panicked or exited")

func (t *transport) refusalOutcome(caller context.Context, err error) string {
	switch {
	case caller.Err() != nil:
		return outcomeIgnored
	case bulwark.IsRefusal(err):
		return outcomeRefused
	}
	return outcomeFailure
}

func (t *transport) failureOutcome(caller context.Context) string {
	if caller.Err() != nil {
		return outcomeIgnored
	}
	return outcomeFailure
}

// exchange is one RoundTrip under Do: its attempts and the response kept
// for the caller.
type exchange struct {
	t          *transport
	req        *http.Request
	caller     context.Context
	replayable bool

	mu       sync.Mutex
	attempts int
	lastErr  error
	resp     *http.Response // the response to return: a success, or the latest failure
	ok       bool           // resp is a success
	done     bool           // Do returned: later responses are discarded
}

var errLate = errors.New("bulwarkhttp: attempt started after the call returned")

// attempt is the fn given to the policy.
func (x *exchange) attempt(actx context.Context) error {
	x.mu.Lock()
	if x.done {
		x.mu.Unlock()
		return errLate
	}
	if x.attempts > 0 && !x.replayable {
		err := x.lastErr
		x.mu.Unlock()
		if err == nil {
			err = &notReplayableError{}
		}
		return err
	}
	x.attempts++
	n := x.attempts
	var old *http.Response
	if x.resp != nil && !x.ok {
		old, x.resp = x.resp, nil // retried: it will not be returned
	}
	x.mu.Unlock()
	discard(old)

	resp, ferr := x.t.send(actx, x.caller, x.req, n, x.replayable, nil)

	x.mu.Lock()
	if x.done || x.ok {
		// Do returned, or a concurrent attempt already succeeded.
		x.mu.Unlock()
		discard(resp)
		return ferr
	}
	old = nil
	if resp != nil {
		old, x.resp, x.ok = x.resp, resp, ferr == nil
	}
	x.lastErr = ferr
	x.mu.Unlock()
	discard(old)
	return ferr
}

func (t *transport) roundTripDo(req *http.Request) (*http.Response, error) {
	caller := req.Context()
	x := &exchange{t: t, req: req, caller: caller, replayable: replayable(req)}
	err := t.p.Do(caller, x.attempt)

	x.mu.Lock()
	x.done = true
	resp, ok, n := x.resp, x.ok, x.attempts
	x.resp = nil
	x.mu.Unlock()

	if n == 0 {
		closeRequestBody(req)
	}
	if resp != nil {
		if !ok && caller.Err() != nil {
			discard(resp)
			t.m.count(outcomeIgnored)
			return nil, caller.Err()
		}
		if ok {
			t.m.count(outcomeSuccess)
		} else {
			t.m.count(outcomeFailure)
		}
		return resp, nil
	}
	if err == nil {
		// p returned nil without a response: it did not run fn.
		err = errNoResponse
	}
	if n == 0 || bulwark.IsRefusal(err) {
		t.m.count(t.refusalOutcome(caller, err))
	} else {
		t.m.count(t.failureOutcome(caller))
	}
	return nil, err
}

var errNoResponse = errors.New("bulwarkhttp: the policy returned without sending the request")

var errNilResponse = errors.New("bulwarkhttp: the base RoundTripper returned neither a response nor an error")

// setPriorityHeader sets Bulwark-Priority for an attempt under ctx: the
// context's effective tier when it has one (a tier outside the four is
// Critical); else a tier the caller set by hand in the header, capped at
// Critical (a client may not raise itself), or Critical in place of an
// unparseable one.
func setPriorityHeader(h http.Header, ctx context.Context) {
	p, ok := bulwark.LookupPriority(ctx)
	if !ok {
		p = bulwark.Critical
		if v := h[headerPriority]; len(v) > 0 {
			if hp, err := bulwark.ParsePriority(v[0]); err == nil {
				p = min(hp, bulwark.Critical)
			}
		}
	}
	if !p.Valid() {
		p = bulwark.Critical
	}
	h[headerPriority] = []string{p.String()}
}

// transportError is the error of an attempt whose base RoundTripper
// failed. A refusal or timeout of an inner layer (a stacked Transport)
// stays what it is, of its own class, and an inner layer's TransportError
// is not wrapped twice: a refusal stays one refusal through any number
// of layers.
func transportError(err error, attempt int, replay bool) error {
	if bulwark.IsRefusal(err) || errors.Is(err, bulwark.ErrTimeout) {
		return err
	}
	var te *TransportError
	if errors.As(err, &te) {
		return &TransportError{Err: te.Err, Attempt: attempt, replayable: replay && te.replayable}
	}
	return &TransportError{Err: err, Attempt: attempt, replayable: replay}
}

// send sends one attempt of req under actx. caller is the RoundTrip's own
// context. It returns the response with its classification (a
// *StatusError or nil), or no response and the attempt's error. A non-nil
// done is called when the response body is finished (or at once, by the
// caller, when there is no response).
func (t *transport) send(actx, caller context.Context, req *http.Request, n int, replay bool, done func(error)) (*http.Response, error) {
	// The request runs under rctx: ended by actx until the headers
	// arrive, by the caller's context only afterwards. When actx has no
	// cancellation of its own (it only adds values), it serves as is.
	rctx := actx
	var (
		cancel       context.CancelCauseFunc
		stopA, stopC func() bool
	)
	if actx.Done() != caller.Done() {
		rctx, cancel = context.WithCancelCause(context.WithoutCancel(actx))
		stopA = context.AfterFunc(actx, func() { cancel(context.Cause(actx)) })
		stopC = context.AfterFunc(caller, func() { cancel(context.Cause(caller)) })
	}
	release := func() {
		if cancel != nil {
			stopA()
			stopC()
			cancel(nil)
		}
	}

	r2 := req.Clone(rctx)
	if r2.Header == nil {
		r2.Header = make(http.Header)
	}
	if n > 1 && req.Body != nil && req.Body != http.NoBody {
		if req.GetBody == nil {
			release()
			return nil, &notReplayableError{}
		}
		b, err := req.GetBody()
		if err != nil {
			release()
			return nil, &notReplayableError{err: err}
		}
		r2.Body = b
	}
	// The attempt's number: the context's (a retry policy sets it, and a
	// stacked Transport gets it from the outer one), or this exchange's
	// own count when p calls fn again without saying so.
	attempt := max(bulwark.AttemptFrom(actx), n)
	r2.Header.Set(headerAttempt, strconv.Itoa(attempt))
	if t.o.propagate == nil || t.o.propagate(req) {
		setPriorityHeader(r2.Header, actx)
	} else {
		// Not for this destination, not even a raw header the caller's
		// request already had (copied by a reverse proxy).
		delete(r2.Header, headerPriority)
	}
	if d := bulwark.DrillFrom(actx); validMarker(d) {
		r2.Header[headerDrill] = []string{d}
	}

	resp, err := t.base.RoundTrip(r2)
	if err == nil && resp == nil {
		err = errNilResponse
	}
	if err != nil {
		release()
		if cerr := actx.Err(); cerr != nil {
			// A context ended the attempt: its error, not the
			// downstream's fault.
			if !errors.Is(err, cerr) {
				err = context.Cause(actx)
			}
			return nil, err
		}
		return nil, transportError(err, attempt, replay)
	}
	if resp.Body == nil {
		// net/http's own client tolerates it (and test doubles rely on
		// that): an empty body.
		resp.Body = http.NoBody
	}
	if stopA != nil && !stopA() {
		// actx ended just as the headers arrived: the body is cut.
		_ = resp.Body.Close()
		stopC()
		cancel(nil)
		return nil, context.Cause(actx)
	}
	ferr := newStatusError(resp, attempt, replay, time.Now())
	if resp.Body == http.NoBody {
		// No body (HEAD, 204, 304): the exchange ends with the
		// headers, whether or not the caller closes http.NoBody.
		if cancel != nil {
			stopC()
			cancel(nil)
		}
		if done != nil {
			done(ferr)
		}
		return resp, ferr
	}
	if done != nil && ferr != nil && replay && bufferFailure(resp, ferr, done) {
		return resp, ferr
	}
	if cancel != nil || done != nil {
		resp.Body = wrapBody(resp.Body, cancel, stopC, done, ferr)
	}
	return resp, ferr
}

// failureBodyMax bounds the body of a failed answer that the Admit path
// buffers.
const failureBodyMax = 64 << 10

// bufferFailure reads the body of a failed answer that may be retried, so
// that its admission ends now rather than when an outer retry closes it at
// its next attempt, after a backoff (a bulkhead would fill with sleeping
// retries, a half-open breaker would wait for its probe). The body stays
// intact for the caller. It reports whether the exchange is finished
// (done called); a body past failureBodyMax is left streaming, with what
// was read put back in front of it. The read is bounded in time as
// discard's is: a body that stalls is cut after failureBodyTimeout (the
// caller gets what arrived, then [ErrBodyStalled]), so that it never holds
// RoundTrip, nor the admission, past that.
func bufferFailure(resp *http.Response, ferr error, done func(error)) bool {
	var stalled atomic.Bool
	stop := time.AfterFunc(failureBodyTimeout, func() {
		stalled.Store(true)
		_ = resp.Body.Close()
	})
	buf, err := io.ReadAll(io.LimitReader(resp.Body, failureBodyMax+1))
	if !stop.Stop() && err != nil && stalled.Load() {
		err = ErrBodyStalled
	}
	switch {
	case err == nil && len(buf) <= failureBodyMax:
		_ = resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(buf))
		done(ferr)
		return true
	case err != nil:
		// The body broke off (or a context ended it, or it stalled):
		// the caller gets what arrived, then err. The answer's class
		// was settled by its status, so that is what admission hears.
		_ = resp.Body.Close()
		resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(buf), errReader{err}))
		done(ferr)
		return true
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(buf), resp.Body), resp.Body}
	return false
}

// failureBodyTimeout bounds the read of a failed answer's body.
const failureBodyTimeout = discardTimeout

// ErrBodyStalled is what reading the body of a failed answer returns, after
// the part that arrived, when [Transport] cut it: a downstream's failure
// body that stalls is read for at most 250 ms before RoundTrip returns.
var ErrBodyStalled = errors.New("bulwarkhttp: the failure body stalled and was cut")

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// body finishes an exchange when the response body is read to EOF, fails,
// or is closed: it ends the request's context and calls done.
type body struct {
	rc     io.ReadCloser
	cancel context.CancelCauseFunc // nil when the request had no own context
	stopC  func() bool
	done   func(error) // nil when there is no admission to release
	ferr   error       // the answer's classification, reported to done

	mu       sync.Mutex
	finished bool
	closing  bool // Close was called: a read error it causes is no failure
}

// rwBody keeps the io.Writer of a 101 Switching Protocols body.
type rwBody struct{ *body }

func (b rwBody) Write(p []byte) (int, error) { return b.rc.(io.Writer).Write(p) }

func wrapBody(rc io.ReadCloser, cancel context.CancelCauseFunc, stopC func() bool, done func(error), ferr error) io.ReadCloser {
	b := &body{rc: rc, cancel: cancel, stopC: stopC, done: done, ferr: ferr}
	if _, ok := rc.(io.Writer); ok {
		return rwBody{b}
	}
	return b
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil {
		if err == io.EOF {
			b.finish(nil)
		} else {
			b.finish(err)
		}
	}
	return n, err
}

func (b *body) Close() error {
	b.mu.Lock()
	b.closing = true
	b.mu.Unlock()
	err := b.rc.Close()
	b.finish(nil)
	return err
}

func (b *body) finish(err error) {
	b.mu.Lock()
	if b.finished {
		b.mu.Unlock()
		return
	}
	b.finished = true
	if b.closing {
		// A Read that failed because of a concurrent Close.
		err = nil
	}
	b.mu.Unlock()
	if b.cancel != nil {
		b.stopC()
		b.cancel(nil)
	}
	if b.done != nil {
		if b.ferr != nil {
			err = b.ferr
		}
		b.done(err)
	}
}
