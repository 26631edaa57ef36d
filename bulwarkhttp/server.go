package bulwarkhttp

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/felixge/httpsnoop"

	"github.com/bulwark-go/bulwark"
)

// Result is how a request through [Middleware] ended, for logs
// ([WithObserver]).
type Result struct {
	// Status is the status sent: the handler's (200 when it wrote none),
	// the refusal's ([StatusCode] of Err, also with a custom
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
// Before p runs, the effective priority (the Bulwark-Priority header under
// the trust rule of [WithTrustPriority], or [WithPriorityFunc]) and the key
// ([WithKeyFunc]) go into the request's context as one
// [bulwark.CallInfo]; a request that changes nothing keeps its context. An
// unparseable header is the default tier, never an error.
//
// The handler runs inside p with a response writer wrapped by
// github.com/felixge/httpsnoop, so http.Flusher, http.Hijacker,
// io.ReaderFrom, Unwrap (for http.ResponseController) and the other
// optional interfaces of the underlying writer keep working. A status the
// classifier calls a failure ([WithFailureStatus], default >= 500) is
// reported to p as an error while the response goes out unchanged; a
// client that went away before the handler returned is reported as its
// context's error (outcome "ignored"). A panic or runtime.Goexit in the
// handler passes through p untouched, so net/http's own recovery applies.
// If p calls fn again (a retrying policy on a server), the handler is not
// served twice: the later calls return the first call's error. Should p
// return while the handler still runs on another goroutine (a
// [bulwark.Concurrent] policy giving up on an attempt), ServeHTTP waits
// for the handler to return, as net/http requires.
//
// When p refuses (or fails before the handler ran) the response is written
// by [WriteError] (or [WithRejectHandler]): 429 for [bulwark.ErrRejected],
// 503 for the other classes and [bulwark.ErrTimeout], 500 otherwise, with
// Retry-After and an RFC 9457 problem body. Nothing is written when the
// client went away; once the handler ran, the response is its own.
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

// serveState is one request's state. Its closures are built once and the
// state is reused across requests, so serving a request allocates only
// what httpsnoop.Wrap does.
type serveState struct {
	h      *handler
	r      *http.Request // the request with the call's context
	ww     http.ResponseWriter
	next   httpsnoop.WriteHeaderFunc
	status int
	// quota is this request's own recorder (WithRateLimitHeaders): it is
	// put into the request's context, which may outlive the request, so
	// it is never pooled.
	quota *bulwark.QuotaRecorder

	ran      atomic.Bool // the handler started
	finished atomic.Bool // the handler returned; err is set
	err      error
	// served is closed when the handler returned, for a policy that may
	// return while fn still runs (noReuse only; such state is not
	// pooled).
	served chan struct{}

	hooks httpsnoop.Hooks
	whFn  func(int)
	fn    func(context.Context) error
}

func newServeState(h *handler) *serveState {
	s := &serveState{h: h}
	s.whFn = s.writeHeader
	s.hooks.WriteHeader = func(next httpsnoop.WriteHeaderFunc) httpsnoop.WriteHeaderFunc {
		s.next = next
		return s.whFn
	}
	s.fn = s.run
	if h.noReuse {
		s.served = make(chan struct{})
	}
	return s
}

func (s *serveState) writeHeader(code int) {
	if s.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		s.status = code
	}
	s.next(code)
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
			setQuotaHeaders(s.ww.Header(), q)
		}
	}
	s.h.next.ServeHTTP(s.ww, r)
	var err error
	status := s.status
	if status == 0 {
		status = http.StatusOK
	}
	if cerr := s.r.Context().Err(); cerr != nil {
		err = cerr
	} else if s.h.o.failure(status) {
		err = statusFailure(status)
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
	s.r, s.ww, s.next, s.err, s.quota = nil, nil, nil, nil, nil
	s.status = 0
	s.ran.Store(false)
	s.finished.Store(false)
	h.pool.Put(s)
}

// callInfo returns the call's info and whether it differs from what the
// request's context already holds.
func (h *handler) callInfo(r *http.Request, s *serveState) (bulwark.CallInfo, bool) {
	info := bulwark.CallInfoFrom(r.Context())
	changed := false
	if h.o.priorityFunc != nil {
		p := h.o.priorityFunc(r)
		if !p.Valid() {
			p = bulwark.Critical
		}
		changed = changed || p != info.Priority
		info.Priority = p
	} else if v := r.Header[headerPriority]; len(v) > 0 {
		p, err := bulwark.ParsePriority(v[0])
		if err != nil {
			p = bulwark.Critical
		}
		if p == bulwark.CriticalPlus && (h.o.trust == nil || !h.o.trust(r)) {
			p = bulwark.Critical
		}
		changed = changed || p != info.Priority
		info.Priority = p
	}
	if h.o.keyFunc != nil {
		if k := h.o.keyFunc(r); k != "" && k != info.Key {
			info.Key = k
			changed = true
		}
	}
	if h.o.rateLimitHdrs {
		s.quota = new(bulwark.QuotaRecorder)
		info.Quota = s.quota
		changed = true
	}
	return info, changed
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.o.exempt != nil && h.o.exempt(r) {
		h.next.ServeHTTP(w, r)
		return
	}
	s := h.get()
	ctx := r.Context()
	s.r = r
	if info, changed := h.callInfo(r, s); changed {
		ctx = bulwark.WithCallInfo(ctx, info)
		s.r = r.WithContext(ctx)
	}
	s.ww = httpsnoop.Wrap(w, s.hooks)
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
	case res.HandlerRan:
		res.Status = s.status
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
		if h.o.reject != nil {
			h.o.reject(w, r, err)
		} else {
			writeError(w, err, r.Method == http.MethodHead)
		}
	}
	h.put(s)
	h.m.count(res.Outcome)
	if h.o.observer != nil {
		h.o.observer(r, res)
	}
}
