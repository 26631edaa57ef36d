package bulwarkgrpc

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/bulwark-go/bulwark"
)

// client is what the client interceptors share.
type client struct {
	p          bulwark.Policy
	o          options
	calls      *calls
	concurrent bool      // p may run attempts concurrently (hedging)
	pool       sync.Pool // of *unaryCall
}

func newClient(fn string, p bulwark.Policy, opts []Option) *client {
	if p == nil {
		panic("bulwarkgrpc: " + fn + ": nil policy")
	}
	c := &client{p: p, o: newOptions(opts)}
	if cp, ok := p.(bulwark.Concurrent); ok && cp.ConcurrentFn() {
		c.concurrent = true
	}
	c.calls = newCalls(&c.o, "bulwark.grpc.client.calls",
		"Calls made through the bulwark gRPC client interceptors, by outcome and effective tier.")
	return c
}

// outgoing adds the attempt number, unless told not to the effective tier,
// and the drill marker ([bulwark.DrillFrom]) to the outgoing metadata of
// one attempt, in place of any value the caller's outgoing metadata
// already had (a proxy forwarding its incoming metadata would otherwise
// pass the raw tier on, first, to a downstream that reads the first
// value). When the context has no tier ([bulwark.LookupPriority]), a tier
// the caller put into the outgoing metadata by hand is kept, capped at
// critical; an unparseable one is replaced by critical.
func (c *client) outgoing(ctx context.Context, method string) context.Context {
	info := bulwark.CallInfoFrom(ctx)
	p := info.Priority
	if !info.HasPriority() {
		if vs := metadata.ValueFromOutgoingContext(ctx, MetadataPriority); len(vs) > 0 {
			if hp, err := bulwark.ParsePriority(vs[0]); err == nil {
				p = min(hp, bulwark.Critical)
			}
		}
	}
	if !p.Valid() {
		p = bulwark.Critical
	}
	drill := bulwark.DrillFrom(ctx)
	if !validMarker(drill) {
		drill = ""
	}
	ctx = withoutOwnMetadata(ctx, drill != "")
	attempt := "1"
	if info.Attempt > 1 {
		attempt = strconv.Itoa(info.Attempt)
	}
	send := c.o.propagate == nil || c.o.propagate(ctx, method)
	switch {
	case send && drill != "":
		return metadata.AppendToOutgoingContext(ctx, MetadataPriority, p.String(), MetadataAttempt, attempt, MetadataDrill, drill)
	case send:
		return metadata.AppendToOutgoingContext(ctx, MetadataPriority, p.String(), MetadataAttempt, attempt)
	case drill != "":
		return metadata.AppendToOutgoingContext(ctx, MetadataAttempt, attempt, MetadataDrill, drill)
	}
	return metadata.AppendToOutgoingContext(ctx, MetadataAttempt, attempt)
}

// withoutOwnMetadata returns ctx without bulwark-priority and
// bulwark-attempt (and bulwark-drill when drill) in its outgoing metadata.
// It costs a context lookup when ctx has no outgoing metadata, and copies
// the metadata only when it has one of them.
func withoutOwnMetadata(ctx context.Context, drill bool) context.Context {
	if metadata.ValueFromOutgoingContext(ctx, MetadataPriority) == nil &&
		metadata.ValueFromOutgoingContext(ctx, MetadataAttempt) == nil &&
		(!drill || metadata.ValueFromOutgoingContext(ctx, MetadataDrill) == nil) {
		return ctx
	}
	md, _ := metadata.FromOutgoingContext(ctx)
	md.Delete(MetadataPriority)
	md.Delete(MetadataAttempt)
	if drill {
		md.Delete(MetadataDrill)
	}
	return metadata.NewOutgoingContext(ctx, md)
}

// policyError is what the policies see of err, the error of one downstream
// call: a RemoteError for UNAVAILABLE and RESOURCE_EXHAUSTED; err itself
// when it is a failure or ctx ended; nil when err is an answer with a code
// that is not a failure.
func (c *client) policyError(ctx context.Context, err error, trailer metadata.MD) error {
	awaitDeadline(ctx, err)
	cerr, classified := classify(err, trailer)
	if classified || ctx.Err() != nil {
		return cerr
	}
	st, ok := status.FromError(err)
	if !ok || c.o.failures.has(st.Code()) {
		return cerr // err, with the pushback when there was one
	}
	return nil
}

// awaitDeadline waits for ctx to end when err is DEADLINE_EXCEEDED and
// ctx's deadline has passed. grpc-go may report a deadline a moment before
// ctx's own timer ends ctx (it reads the clock, or the server's copy of the
// deadline fired first); the policies tell a deadline of theirs (a
// per-attempt timeout) from the caller's, and both from a downstream's
// answer, by ctx, so ctx must have ended by the time they see the error.
// The wait is bounded: the deadline has already passed.
func awaitDeadline(ctx context.Context, err error) {
	if status.Code(err) != codes.DeadlineExceeded || ctx.Err() != nil {
		return
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		<-ctx.Done()
	}
}

func (c *client) count(ctx context.Context, prio bulwark.Priority, ran bool, err error) {
	switch {
	case err == nil:
		c.calls.add(outcomeSuccess, prio)
	case ctx.Err() != nil:
		c.calls.add(outcomeIgnored, prio)
	case !ran:
		c.calls.add(outcomeRefused, prio)
	default:
		c.calls.add(outcomeFailure, prio)
	}
}

// UnaryClientInterceptor returns an interceptor that runs each unary call
// under p: each attempt sends bulwark-priority and bulwark-attempt, and its
// error is classified for the policies (see the package documentation).
//
// The error returned keeps gRPC's meaning: the downstream's status (inside
// a [*RemoteError] for UNAVAILABLE and RESOURCE_EXHAUSTED), or, for an
// error of the policy, an error that wraps it and carries the status of its
// class. When p runs attempts concurrently (a hedging policy, see
// [bulwark.Concurrent]) and the reply is a proto.Message, each attempt
// decodes into a message of its own and the winner's is merged into reply.
// It panics if p is nil.
func UnaryClientInterceptor(p bulwark.Policy, opts ...Option) grpc.UnaryClientInterceptor {
	c := newClient("UnaryClientInterceptor", p, opts)
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		u := c.getCall()
		u.method, u.req, u.reply, u.cc, u.invoker, u.opts = method, req, reply, cc, invoker, opts
		err := c.p.Do(ctx, u.fn)
		u.mu.Lock()
		u.closed = true
		answer, ran := u.answer, u.ran
		u.mu.Unlock()
		c.putCall(u)
		c.count(ctx, bulwark.PriorityFrom(ctx), ran, err)
		if err == nil {
			return answer
		}
		return clientError(err)
	}
}

// unaryCall is one call through UnaryClientInterceptor, reused across calls
// when the policy never calls fn concurrently or after Do returned.
type unaryCall struct {
	c       *client
	method  string
	req     any
	reply   any
	cc      *grpc.ClientConn
	invoker grpc.UnaryInvoker
	opts    []grpc.CallOption
	fn      func(context.Context) error // u.attempt, bound once

	// For sequential attempts only: the trailer, its call option and the
	// options slice, reused.
	trailer    metadata.MD
	trailerOpt grpc.CallOption
	optBuf     []grpc.CallOption

	mu      sync.Mutex
	ran     bool  // an attempt ran
	settled bool  // an attempt returned nil to the policies
	answer  error // its answer: nil or a code that is not a failure
	closed  bool  // Do returned
}

func (c *client) getCall() *unaryCall {
	if !c.concurrent {
		if u, ok := c.pool.Get().(*unaryCall); ok {
			return u
		}
	}
	u := &unaryCall{c: c}
	u.fn = u.attempt
	if !c.concurrent {
		u.trailerOpt = grpc.Trailer(&u.trailer)
	}
	return u
}

func (c *client) putCall(u *unaryCall) {
	if c.concurrent {
		return // a late attempt may still reach it
	}
	clear(u.optBuf)
	u.optBuf = u.optBuf[:0]
	u.method, u.req, u.reply, u.cc, u.invoker, u.opts, u.trailer = "", nil, nil, nil, nil, nil, nil
	u.ran, u.settled, u.answer, u.closed = false, false, nil, false
	c.pool.Put(u)
}

// invokeOwn makes one of several concurrent attempts, into a reply and a
// trailer of its own.
func (u *unaryCall) invokeOwn(ctx context.Context) (reply any, own bool, trailer metadata.MD, err error) {
	// The winner merges into u.reply under u.mu; reading u.reply's type
	// here must not race with that.
	u.mu.Lock()
	reply = u.reply
	if m, ok := reply.(proto.Message); ok {
		reply, own = m.ProtoReflect().New().Interface(), true
	}
	u.mu.Unlock()
	opts := append(u.opts[:len(u.opts):len(u.opts)], grpc.Trailer(&trailer))
	err = u.invoker(ctx, u.method, u.req, reply, u.cc, opts...)
	return reply, own, trailer, err
}

func (u *unaryCall) attempt(ctx context.Context) error {
	u.mu.Lock()
	u.ran = true
	u.mu.Unlock()
	ctx = u.c.outgoing(ctx, u.method)
	var (
		reply   = u.reply
		own     bool // reply is this attempt's own message
		trailer metadata.MD
		err     error
	)
	if u.c.concurrent {
		reply, own, trailer, err = u.invokeOwn(ctx)
	} else {
		u.trailer = nil
		u.optBuf = append(append(u.optBuf[:0], u.opts...), u.trailerOpt)
		err = u.invoker(ctx, u.method, u.req, reply, u.cc, u.optBuf...)
		trailer = u.trailer
	}
	if err != nil {
		if perr := u.c.policyError(ctx, err, trailer); perr != nil {
			return perr
		}
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.settled && !u.closed {
		u.settled, u.answer = true, err
		if err == nil && own {
			dst := u.reply.(proto.Message)
			proto.Reset(dst)
			proto.Merge(dst, reply.(proto.Message))
		}
	}
	return nil
}

// StreamClientInterceptor returns an interceptor that holds admission by p
// for the whole life of each stream: from its creation until RecvMsg
// returns io.EOF or an error (for a stream without server streaming: until
// RecvMsg returns the response), or the stream's context ends, whichever
// comes first; the admission is released exactly once, with the stream's
// outcome as the policies see it (see [UnaryClientInterceptor]). The
// stream sends bulwark-priority and bulwark-attempt as unary calls do, and
// RecvMsg returns a [*RemoteError] for UNAVAILABLE and RESOURCE_EXHAUSTED.
//
// As with any gRPC stream, the caller must read it to the end or cancel
// its context; a stream abandoned otherwise holds its admission.
//
// StreamClientInterceptor panics unless p is a [bulwark.Admitter]: retries,
// timeouts and hedging cannot cover work that outlives Do, so pass
// admission policies only (a breaker, a bulkhead, a [bulwark.Chain] of
// them).
func StreamClientInterceptor(p bulwark.Policy, opts ...Option) grpc.StreamClientInterceptor {
	a, ok := p.(bulwark.Admitter)
	if !ok && p != nil {
		panic(fmt.Sprintf("bulwarkgrpc: StreamClientInterceptor: policy %T is not a bulwark.Admitter: "+
			"a stream outlives Do, so pass admission policies only (a breaker, a bulkhead, "+
			"a bulwark.Chain of them), not retries, timeouts or hedging", p))
	}
	c := newClient("StreamClientInterceptor", p, opts)
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		prio := bulwark.PriorityFrom(ctx)
		done, err := a.Admit(ctx)
		if err != nil {
			c.count(ctx, prio, false, err)
			return nil, clientError(err)
		}
		cs, err := streamer(c.outgoing(ctx, method), desc, cc, method, opts...)
		if err != nil {
			perr := c.policyError(ctx, err, nil)
			if cerr := ctx.Err(); cerr != nil {
				perr = cerr
			}
			done(perr)
			c.count(ctx, prio, true, perr)
			cerr, _ := classify(err, nil)
			return nil, cerr
		}
		s := &clientStream{ClientStream: cs, c: c, ctx: ctx, prio: prio, done: done, unary: !desc.ServerStreams}
		s.stop = context.AfterFunc(ctx, func() { s.finish(ctx.Err()) })
		return s, nil
	}
}

// clientStream holds its admission until the stream ends.
type clientStream struct {
	grpc.ClientStream
	c     *client
	ctx   context.Context
	prio  bulwark.Priority
	done  func(error)
	unary bool // no server streaming: the first response ends the stream
	stop  func() bool
	ended atomic.Bool
}

// finish releases the admission once, with the stream's outcome.
func (s *clientStream) finish(err error) {
	if !s.ended.CompareAndSwap(false, true) {
		return
	}
	s.done(err)
	s.c.count(s.ctx, s.prio, true, err)
}

func (s *clientStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	switch {
	case err == nil:
		if s.unary {
			s.stop()
			s.finish(nil)
		}
		return nil
	case err == io.EOF:
		s.stop()
		s.finish(nil)
		return err
	}
	trailer := s.ClientStream.Trailer()
	perr := s.c.policyError(s.ctx, err, trailer)
	if cerr := s.ctx.Err(); cerr != nil {
		perr = cerr
	}
	s.stop()
	s.finish(perr)
	cerr, _ := classify(err, trailer)
	return cerr
}
