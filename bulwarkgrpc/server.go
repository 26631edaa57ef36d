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

// callContext puts the call's CallInfo into ctx, keeping what an earlier
// interceptor put there: its key, unless the key function gives another,
// and its tier, which the bulwark-priority metadata may only lower. A
// valid bulwark-drill marker goes in as [bulwark.WithDrill]. It returns
// the effective tier, for the metrics.
func (s *server) callContext(ctx context.Context, fullMethod string) (context.Context, bulwark.Priority) {
	info := bulwark.CallInfoFrom(ctx)
	had := info.HasPriority()
	changed := false
	if p, claimed, ok := s.metadataTier(ctx); ok {
		if had {
			p = min(p, info.Priority)
		}
		if p != info.Priority || (!had && claimed != bulwark.Critical) {
			info.Priority, info.PrioritySet = p, true
			changed = true
		}
	}
	if s.o.key != nil {
		if k := s.o.key(ctx, fullMethod); k != "" && k != info.Key {
			info.Key = k
			changed = true
		}
	}
	if changed {
		ctx = bulwark.WithCallInfo(ctx, info)
	}
	if vs := metadata.ValueFromIncomingContext(ctx, MetadataDrill); len(vs) > 0 && validMarker(vs[0]) && vs[0] != bulwark.DrillFrom(ctx) {
		ctx = bulwark.WithDrill(ctx, vs[0])
	}
	p := info.Priority
	if !p.Valid() {
		p = bulwark.Critical
	}
	return ctx, p
}

// metadataTier is the tier the bulwark-priority metadata asks for under
// the trust rule (critical-plus only from a trusted peer), and the tier it
// claimed; ok is false when it is absent or unparseable, which changes
// nothing.
func (s *server) metadataTier(ctx context.Context) (p, claimed bulwark.Priority, ok bool) {
	vs := metadata.ValueFromIncomingContext(ctx, MetadataPriority)
	if len(vs) == 0 {
		return bulwark.Critical, bulwark.Critical, false
	}
	claimed, err := bulwark.ParsePriority(vs[0])
	if err != nil {
		return bulwark.Critical, bulwark.Critical, false
	}
	p = claimed
	if p == bulwark.CriticalPlus && (s.o.trust == nil || !s.o.trust(ctx)) {
		p = bulwark.Critical
	}
	return p, claimed, true
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
// untouched, other policy errors to INTERNAL. The trailer also carries
// bulwark-degraded for a degradation switch's refusal, and pushback -1
// when a downstream said "do not retry" (and only then).
func (s *server) wire(err error, fromPolicy bool) (metadata.MD, error) {
	if err == nil {
		return nil, nil
	}
	md := trailerFor(err)
	if !isClass(err) {
		if hasStatus(err) || !fromPolicy {
			return md, err
		}
		if isContextErr(err) {
			return md, status.FromContextError(err).Err()
		}
	}
	st, hint := statusOf(err, internalCode)
	if hint > 0 && md[MetadataPushback] == nil {
		md = mdSet(md, MetadataPushback, pushbackValue(hint))
	}
	return md, st.Err()
}

// trailerFor is the trailer err calls for apart from a hint:
// bulwark-degraded, and a downstream's own "do not retry".
func trailerFor(err error) metadata.MD {
	var md metadata.MD
	if name, ok := bulwark.Degraded(err); ok && validMarker(name) {
		md = mdSet(md, MetadataDegraded, name)
	}
	if downstreamSaidNoRetry(err) {
		md = mdSet(md, MetadataPushback, "-1")
	}
	return md
}

func mdSet(md metadata.MD, k, v string) metadata.MD {
	if md == nil {
		md = metadata.MD{}
	}
	md[k] = []string{v}
	return md
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
