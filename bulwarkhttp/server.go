package bulwarkhttp

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/bulwark-go/bulwark"
)

// Result is how a request through [Middleware] ended, for logs
// ([WithObserver]).
type Result struct {
	// Status is the status sent: the handler's (the first one it wrote,
	// 200 when it wrote none; a superfluous later WriteHeader is not what
	// was sent), the refusal's ([StatusCode] of Err, also with a custom
	// [WithRejectHandler]), or 499 when the client went away before a
	// status was written, by the handler or the middleware (499 is for
	// logs only, never on the wire).
	Status int
	// Outcome is "success", "failure", "ignored" (the client went away)
	// or "refused".
	Outcome string
	// Err is the policies' error; nil on success.
	Err error
	// HandlerRan reports whether the handler ran. When it did, the
	// response is the handler's: a later policy error is recorded, not
	// sent.
	HandlerRan bool
}

// StatusClientClosedRequest is the status [Result] reports when the client
// went away before it got an answer (nginx's 499); it is never sent.
const StatusClientClosedRequest = 499

// Middleware returns net/http middleware that serves each request under p.
//
// Before p runs, the effective priority and the key go into the request's
// context as one [bulwark.CallInfo], and a valid Bulwark-Drill marker (1 to
// 64 characters of visible ASCII; anything else is ignored) as
// [bulwark.WithDrill]; a request that changes nothing keeps its context.
// The tier is [WithPriorityFunc]'s, else the Bulwark-Priority header under
// the trust rule of [WithTrustPriority]; when the context already holds a
// tier (an outer layer set one), the header may only lower it. A missing,
// empty or unparseable header changes nothing, never an error. A key
// already in the context is kept unless [WithKeyFunc] gives another.
//
// The handler runs inside p with a response writer of the package's own,
// kept in the pooled per-request state, that has exactly the optional
// interfaces of the underlying writer among http.Flusher (with
// FlushError), http.Hijacker, io.ReaderFrom, http.Pusher and
// http.CloseNotifier, plus io.StringWriter and Unwrap, so
// http.ResponseController reaches the rest (deadlines, full duplex). It
// records what was sent: the first status written, or 200 once a Write,
// ReadFrom or Flush sent it implicitly. A later WriteHeader cannot change
// that status; when the request came through an http.Server it is logged
// as net/http does (naming the handler's call site) and not passed on.
//
// A status the classifier calls a failure ([WithFailureStatus], default
// >= 500) is reported to p as an error while the response goes out
// unchanged; a client that went away before the handler returned is
// reported as its context's error (outcome "ignored"). When our own
// deadline ([bulwark.Timeout] in p: the context's cause is
// [bulwark.ErrTimeout]) ended the handler before it sent anything, p sees
// the timeout (breakers count it as a failure) and the client gets the
// answer for it, 503 with a problem body, rather than an empty 200. A
// panic or runtime.Goexit in the handler passes through p untouched, so
// net/http's own recovery applies. If p calls fn again (a retrying policy
// on a server), the handler is not served twice: the later calls return
// the first call's error. Should p return while the handler still runs on
// another goroutine (a [bulwark.Concurrent] policy giving up on an
// attempt), ServeHTTP waits for the handler to return, as net/http
// requires.
//
// When p refuses (or fails before the handler ran, or the handler timed
// out without sending anything) the response is written by [WriteError]
// (or [WithRejectHandler]): 429 for [bulwark.ErrRejected], 503 for the
// other classes and [bulwark.ErrTimeout], 500 otherwise, with Retry-After,
// Bulwark-Degraded for a degradation switch's refusal, and an RFC 9457
// problem body. Nothing is written when the client went away; once the
// handler sent anything, the response is its own.
//
// Per-request state is reused, so the handler must not use its
// ResponseWriter after it returned (net/http's own rule). Middleware panics
// if p is nil.
func Middleware(p bulwark.Policy, opts ...Option) func(http.Handler) http.Handler {
	if p == nil {
		panic("bulwarkhttp: Middleware: nil policy")
	}
	o := newOptions("server", opts)
	m := newServerMetrics(o)
	return func(h http.Handler) http.Handler {
		if h == nil {
			panic("bulwarkhttp: Middleware: nil handler")
		}
		return newHandler(h, p, o, m)
	}
}

// Handler returns h served under p: Middleware(p, opts...)(h). It panics if
// h or p is nil.
func Handler(h http.Handler, p bulwark.Policy, opts ...Option) http.Handler {
	if h == nil {
		panic("bulwarkhttp: Handler: nil handler")
	}
	if p == nil {
		panic("bulwarkhttp: Handler: nil policy")
	}
	o := newOptions("server", opts)
	return newHandler(h, p, o, newServerMetrics(o))
}

type handler struct {
	next    http.Handler
	p       bulwark.Policy
	o       options
	m       *serverMetrics
	noReuse bool // p may call fn concurrently or late: no pooled state
	pool    sync.Pool
}

func newHandler(h http.Handler, p bulwark.Policy, o options, m *serverMetrics) *handler {
	if o.failure == nil {
		o.failure = defaultFailure
	}
	hd := &handler{next: h, p: p, o: o, m: m}
	if c, ok := p.(bulwark.Concurrent); ok && c.ConcurrentFn() {
		hd.noReuse = true
	}
	return hd
}

func defaultFailure(status int) bool { return status >= 500 }

// serveState is one request's state. Its closures and its response
// writer are built once and the state is reused across requests, so
// serving a request allocates nothing of its own.
type serveState struct {
	h  *handler
	r  *http.Request // the request with the call's context
	rw writer        // what the handler writes through
	ww http.ResponseWriter
	// quota is this request's own recorder (WithRateLimitHeaders): it is
	// put into the request's context, which may outlive the request, so
	// it is never pooled.
	quota *bulwark.QuotaRecorder

	ran      atomic.Bool // the handler started
	finished atomic.Bool // the handler returned; err is set
	err      error
	// timedOut: the handler returned without sending anything after our
	// own deadline (a bulwark.Timeout in p) ended its context; the
	// middleware answers with the refusal for err.
	timedOut bool
	// served is closed when the handler returned, for a policy that may
	// return while fn still runs (noReuse only; such state is not
	// pooled).
	served chan struct{}

	fn func(context.Context) error
}

func newServeState(h *handler) *serveState {
	s := &serveState{h: h}
	s.rw.s = s
	s.fn = s.run
	if h.noReuse {
		s.served = make(chan struct{})
	}
	return s
}

// run is the fn given to the policy: it serves the request once.
func (s *serveState) run(ctx context.Context) error {
	if !s.ran.CompareAndSwap(false, true) {
		if s.finished.Load() {
			return s.err
		}
		return errHandlerRunning
	}
	if s.served != nil {
		defer close(s.served)
	}
	r := s.r
	if ctx != r.Context() {
		r = r.WithContext(ctx)
	}
	if s.quota != nil {
		if q, ok := s.quota.Quota(); ok {
			setQuotaHeaders(s.rw.Header(), q)
		}
	}
	s.h.next.ServeHTTP(s.ww, r)
	var err error
	switch {
	case s.r.Context().Err() != nil:
		// The client went away (or an outer layer's deadline ended
		// the request): ignored.
		err = s.r.Context().Err()
	case !s.rw.sent() && ctx.Err() != nil && errors.Is(context.Cause(ctx), bulwark.ErrTimeout):
		// Our own deadline ended the handler before it sent anything:
		// a failure the breakers count, answered as SPEC says for
		// ErrTimeout rather than as an empty 200.
		err = context.Cause(ctx)
		s.timedOut = true
	default:
		status := s.rw.status
		if status == 0 {
			status = http.StatusOK
		}
		if s.h.o.failure(status) {
			err = statusFailure(status)
		}
	}
	s.err = err
	s.finished.Store(true)
	return err
}

var errHandlerRunning = &handlerError{msg: "bulwarkhttp: the handler is already serving this request"}

func (h *handler) get() *serveState {
	if !h.noReuse {
		if s, ok := h.pool.Get().(*serveState); ok {
			return s
		}
	}
	return newServeState(h)
}

func (h *handler) put(s *serveState) {
	if h.noReuse {
		return
	}
	s.r, s.ww, s.err, s.quota = nil, nil, nil, nil
	s.rw = writer{s: s}
	s.timedOut = false
	s.ran.Store(false)
	s.finished.Store(false)
	h.pool.Put(s)
}

// callInfo returns the call's info and whether it differs from what the
// request's context already holds. The context's tier, when an outer
// layer set one, is the effective tier so far: the header may only lower
// it.
func (h *handler) callInfo(r *http.Request) (bulwark.CallInfo, bool) {
	info := bulwark.CallInfoFrom(r.Context())
	had := info.HasPriority()
	changed := false
	if h.o.priorityFunc != nil {
		p := h.o.priorityFunc(r)
		if !p.Valid() {
			p = bulwark.Critical
		}
		changed = p != info.Priority || !had
		info.Priority, info.PrioritySet = p, true
	} else if v := r.Header[headerPriority]; len(v) > 0 {
		if p, claimed, ok := headerTier(v[0], h.o.trust, r); ok {
			if had {
				p = min(p, info.Priority)
			}
			// A bare "critical" on a request with no tier yet changes
			// nothing and costs nothing; anything else is recorded
			// as set, so that an inner adapter may only lower it.
			if p != info.Priority || (!had && claimed != bulwark.Critical) {
				info.Priority, info.PrioritySet = p, true
				changed = true
			}
		}
	}
	if h.o.keyFunc != nil {
		if k := h.o.keyFunc(r); k != "" && k != info.Key {
			info.Key = k
			changed = true
		}
	}
	if h.o.rateLimitHdrs {
		changed = true // the recorder goes in: see ServeHTTP
	}
	return info, changed
}

// callRequest is what a request whose context changes needs, in one
// allocation: the request with the new context, the context, and the
// quota recorder of WithRateLimitHeaders. The context may outlive the
// request (a handler may keep it), so it is never pooled.
type callRequest struct {
	r     http.Request
	ctx   bulwark.CallContext
	quota bulwark.QuotaRecorder
}

// headerTier is the tier a Bulwark-Priority value asks for under the trust
// rule, and the tier it claimed; ok is false for a value that is no tier
// (empty, garbage), which is ignored.
func headerTier(v string, trust func(*http.Request) bool, r *http.Request) (p, claimed bulwark.Priority, ok bool) {
	claimed, err := bulwark.ParsePriority(v)
	if err != nil {
		return bulwark.Critical, bulwark.Critical, false
	}
	p = claimed
	if p == bulwark.CriticalPlus && (trust == nil || !trust(r)) {
		p = bulwark.Critical
	}
	return p, claimed, true
}

// drillFromHeader returns the Bulwark-Drill marker of r when it is a
// valid one (see [validMarker]).
func drillFromHeader(r *http.Request) (string, bool) {
	v := r.Header[headerDrill]
	if len(v) == 0 || !validMarker(v[0]) {
		return "", false
	}
	return v[0], true
}

// validMarker reports whether s may be a drill or degradation marker: 1
// to 64 characters of visible ASCII.
func validMarker(s string) bool {
	if len(s) == 0 || len(s) > maxMarker {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

const maxMarker = 64

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.o.exempt != nil && h.o.exempt(r) {
		h.next.ServeHTTP(w, r)
		return
	}
	s := h.get()
	ctx := r.Context()
	s.r = r
	d, drill := drillFromHeader(r)
	drill = drill && d != bulwark.DrillFrom(ctx)
	if info, ok := h.callInfo(r); ok || drill {
		x := new(callRequest)
		if ok {
			if h.o.rateLimitHdrs {
				info.Quota, s.quota = &x.quota, &x.quota
			}
			x.ctx.Init(ctx, info)
			ctx = &x.ctx
		}
		if drill {
			ctx = bulwark.WithDrill(ctx, d)
		}
		// WithContext inlines: its copy stays on the stack, and the
		// request lives in x.
		x.r = *r.WithContext(ctx)
		s.r = &x.r
	}
	s.rw.w = w
	s.ww = s.rw.wrap(kind(w))
	err := h.p.Do(ctx, s.fn)
	// Reached only when p returned: a panic or Goexit in the handler
	// unwinds through here untouched (and s is not reused).
	if s.served != nil && s.ran.Load() {
		// p may return while the handler still runs on another
		// goroutine (a hedger giving up on it); net/http forbids
		// using w after ServeHTTP returned, so wait for the handler.
		<-s.served
	}
	res := Result{Err: err, HandlerRan: s.ran.Load()}
	switch {
	case res.HandlerRan && s.timedOut && r.Context().Err() == nil:
		// Our deadline ended the handler before it sent anything: the
		// answer is the refusal for the timeout, as if it had not run.
		if err == nil {
			err = s.err // a policy that swallowed it: still nothing sent
		}
		res.Status = StatusCode(err)
		res.Outcome = outcomeFailure
		if bulwark.IsRefusal(err) {
			res.Outcome = outcomeRefused
		}
		h.refuse(w, r, err)
	case res.HandlerRan:
		res.Status = s.rw.status
		switch {
		case res.Status != 0:
		case r.Context().Err() != nil:
			// The handler wrote nothing and the client went away:
			// nothing was sent.
			res.Status = StatusClientClosedRequest
		default:
			res.Status = http.StatusOK
		}
		switch {
		case err == nil:
			res.Outcome = outcomeSuccess
		case r.Context().Err() != nil:
			res.Outcome = outcomeIgnored
		case bulwark.IsRefusal(err):
			res.Outcome = outcomeRefused
		default:
			res.Outcome = outcomeFailure
		}
	case r.Context().Err() != nil:
		// The client went away: nobody reads an answer.
		res.Status, res.Outcome = StatusClientClosedRequest, outcomeIgnored
	case err == nil:
		// p returned nil without running the handler: nothing to
		// add; net/http sends its default empty 200.
		res.Status, res.Outcome = http.StatusOK, outcomeSuccess
	default:
		res.Status = StatusCode(err)
		res.Outcome = outcomeFailure
		if bulwark.IsRefusal(err) {
			res.Outcome = outcomeRefused
		}
		h.refuse(w, r, err)
	}
	h.put(s)
	h.m.count(res.Outcome)
	if h.o.observer != nil {
		h.o.observer(r, res)
	}
}

// refuse writes the answer to err, the policies' refusal or failure.
func (h *handler) refuse(w http.ResponseWriter, r *http.Request, err error) {
	if h.o.reject != nil {
		h.o.reject(w, r, err)
		return
	}
	writeError(w, err, r.Method == http.MethodHead)
}
