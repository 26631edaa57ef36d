package bulwarkgrpc

import (
	"context"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bulwark-go/bulwark"
)

// server is what the server interceptors share.
type server struct {
	p          bulwark.Policy
	o          options
	calls      *calls
	concurrent bool      // p may call fn concurrently or late
	pool       sync.Pool // of *serverCall
}

func newServer(fn string, p bulwark.Policy, opts []Option) *server {
	if p == nil {
		panic("bulwarkgrpc: " + fn + ": nil policy")
	}
	s := &server{p: p, o: newOptions(opts)}
	if cp, ok := p.(bulwark.Concurrent); ok && cp.ConcurrentFn() {
		s.concurrent = true
	}
	s.calls = newCalls(&s.o, "bulwark.grpc.server.calls",
		"Calls served through the bulwark gRPC server interceptors, by outcome and effective tier.")
	return s
}

// callContext puts the call's CallInfo into ctx: the effective tier under
// the trust rule and the key.
func (s *server) callContext(ctx context.Context, fullMethod string) (context.Context, bulwark.Priority) {
	info := bulwark.CallInfo{Priority: s.priority(ctx)}
	if s.o.key != nil {
		info.Key = s.o.key(ctx, fullMethod)
	}
	return bulwark.WithCallInfo(ctx, info), info.Priority
}

// priority is the effective tier of the call: the bulwark-priority
// metadata, critical when absent or unparseable, and critical-plus only
// from a trusted peer.
func (s *server) priority(ctx context.Context) bulwark.Priority {
	vs := metadata.ValueFromIncomingContext(ctx, MetadataPriority)
	if len(vs) == 0 {
		return bulwark.Critical
	}
	p, err := bulwark.ParsePriority(vs[0])
	if err != nil {
		return bulwark.Critical
	}
	if p == bulwark.CriticalPlus && (s.o.trust == nil || !s.o.trust(ctx)) {
		return bulwark.Critical
	}
	return p
}

// failure reports whether the handler's answer herr is a failure for the
// policies.
func (s *server) failure(ctx context.Context, herr error) bool {
	if herr == nil {
		return false
	}
	if ctx.Err() != nil {
		return true // the policies see the ended context and ignore it
	}
	if isClass(herr) {
		return true
	}
	st, ok := status.FromError(herr)
	if !ok {
		// A plain error: grpc-go sends it as UNKNOWN, or as the code
		// of a context error.
		st = status.FromContextError(herr)
	}
	return s.o.failures.has(st.Code())
}

// answer is what the server sends: out is the handler's answer when it ran
// (herr), else the policy's error. It also counts the outcome.
func (s *server) answer(ctx context.Context, prio bulwark.Priority, ran bool, err, herr error) (metadata.MD, error) {
	switch {
	case !ran:
		if cerr := ctx.Err(); cerr != nil {
			s.calls.add(outcomeIgnored, prio)
			return nil, status.FromContextError(cerr).Err()
		}
		s.calls.add(outcomeRefused, prio)
		if err == nil {
			return nil, status.Error(codes.Internal, "bulwarkgrpc: the policy returned without running the handler")
		}
		return s.wire(err, true)
	case ctx.Err() != nil:
		s.calls.add(outcomeIgnored, prio)
	case err != nil:
		s.calls.add(outcomeFailure, prio)
	default:
		s.calls.add(outcomeSuccess, prio)
	}
	switch {
	case err != nil && herr != nil && !hasStatus(herr) && errorsIsTimeout(err):
		return s.wire(err, true) // our deadline cut the handler short: DEADLINE_EXCEEDED
	case err != nil && herr == nil:
		return s.wire(err, true) // a policy failed a call the handler served
	}
	return s.wire(herr, false)
}

// wire maps err to the error sent to the client: classes to their codes
// (with the retry hint as RetryInfo and trailer), other errors with a status
// untouched, other policy errors to INTERNAL.
func (s *server) wire(err error, fromPolicy bool) (metadata.MD, error) {
	if err == nil {
		return nil, nil
	}
	if !isClass(err) {
		if hasStatus(err) || !fromPolicy {
			return nil, err
		}
		if isContextErr(err) {
			return nil, status.FromContextError(err).Err()
		}
	}
	st, hint := statusOf(err, internalCode)
	if hint > 0 {
		return pushbackMD(hint), st.Err()
	}
	return nil, st.Err()
}

// UnaryServerInterceptor returns an interceptor that runs each unary
// handler under p. See the package documentation for the priority, the
// failure codes and the mapping of refusals. p should neither retry nor
// hedge: the handler would run more than once. It panics if p is nil.
func UnaryServerInterceptor(p bulwark.Policy, opts ...Option) grpc.UnaryServerInterceptor {
	s := newServer("UnaryServerInterceptor", p, opts)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, prio := s.callContext(ctx, info.FullMethod)
		c := s.getCall()
		c.req, c.handler = req, handler
		ok := false // returned normally
		defer func() {
			if !ok && c.ran {
				s.calls.add(outcomeFailure, prio) // a panic or Goexit passes through
			}
		}()
		err := s.p.Do(ctx, c.fn)
		ok = true
		resp, herr, ran := c.resp, c.herr, c.ran
		s.putCall(c)
		trailer, out := s.answer(ctx, prio, ran, err, herr)
		if trailer != nil {
			_ = grpc.SetTrailer(ctx, trailer)
		}
		if out != nil {
			return nil, out
		}
		return resp, nil
	}
}

// serverCall is the state of one unary server call, reused across calls when the
// policy never calls fn after Do returned.
type serverCall struct {
	s       *server
	req     any
	handler grpc.UnaryHandler
	resp    any
	herr    error
	ran     bool
	fn      func(context.Context) error // c.run, bound once
}

func (c *serverCall) run(ctx context.Context) error {
	c.ran = true
	c.resp, c.herr = c.handler(ctx, c.req)
	if c.s.failure(ctx, c.herr) {
		return c.herr
	}
	return nil
}

func (s *server) getCall() *serverCall {
	if !s.concurrent {
		if c, ok := s.pool.Get().(*serverCall); ok {
			return c
		}
	}
	c := &serverCall{s: s}
	c.fn = c.run
	return c
}

func (s *server) putCall(c *serverCall) {
	if s.concurrent {
		return // a late fn may still reach it
	}
	c.req, c.handler, c.resp, c.herr, c.ran = nil, nil, nil, nil, false
	s.pool.Put(c)
}

// StreamServerInterceptor returns an interceptor that runs each stream
// handler under p; the handler's stream reports the context the policy
// gave it (with its CallInfo and any deadline). See
// [UnaryServerInterceptor]. It panics if p is nil.
func StreamServerInterceptor(p bulwark.Policy, opts ...Option) grpc.StreamServerInterceptor {
	s := newServer("StreamServerInterceptor", p, opts)
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, prio := s.callContext(ss.Context(), info.FullMethod)
		ws := &serverStream{ServerStream: ss}
		var (
			herr error
			ran  bool
			ok   bool
		)
		defer func() {
			if ran && !ok {
				s.calls.add(outcomeFailure, prio)
			}
		}()
		err := s.p.Do(ctx, func(ctx context.Context) error {
			ran = true
			ws.ctx = ctx
			herr = handler(srv, ws)
			if s.failure(ctx, herr) {
				return herr
			}
			return nil
		})
		ok = true
		trailer, out := s.answer(ctx, prio, ran, err, herr)
		if trailer != nil {
			ss.SetTrailer(trailer)
		}
		return out
	}
}

// serverStream is a grpc.ServerStream whose Context is the one the policy
// passed to the handler.
type serverStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *serverStream) Context() context.Context { return s.ctx }
