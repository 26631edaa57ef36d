package bulwarkgrpc_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarkgrpc"
	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/internal/policytest"
)

// idemService counts UnaryCall runs and answers with unary, or with a
// response that changes on every run.
type idemService struct {
	testpb.UnimplementedTestServiceServer
	runs  atomic.Int64
	unary func(ctx context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error)
}

func (s *idemService) UnaryCall(ctx context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	n := s.runs.Add(1)
	if s.unary != nil {
		return s.unary(ctx, in)
	}
	return &testpb.SimpleResponse{Username: fmt.Sprintf("run %d", n), Payload: in.GetPayload()}, nil
}

func (s *idemService) EmptyCall(context.Context, *testpb.Empty) (*testpb.Empty, error) {
	s.runs.Add(1)
	return &testpb.Empty{}, nil
}

// idemRecover turns a handler panic into INTERNAL, as a server's
// recovery middleware would, so a test can panic.
func idemRecover(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = status.Errorf(codes.Internal, "panic: %v", r)
		}
	}()
	return h(ctx, req)
}

func serveIdem(t *testing.T, store idempotency.Store, svc *idemService, opts ...idempotency.Option) testpb.TestServiceClient {
	t.Helper()
	_, conn := policytest.ServeGRPC(t, func(s *grpc.Server) { testpb.RegisterTestServiceServer(s, svc) },
		[]grpc.ServerOption{grpc.ChainUnaryInterceptor(idemRecover, bulwarkgrpc.IdempotencyUnaryServerInterceptor(store, opts...))})
	return testpb.NewTestServiceClient(conn)
}

func withIdemKey(ctx context.Context, kv ...string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, kv...)
}

func idemMsg(body string) *testpb.SimpleRequest {
	return &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte(body)}}
}

func TestIdempotencyInterceptorReplay(t *testing.T) {
	svc := &idemService{}
	c := serveIdem(t, idempotency.NewMemoryStore(), svc)
	ctx := withIdemKey(context.Background(), "idempotency-key", `"k1"`)
	var h1, h2 metadata.MD
	first, err := c.UnaryCall(ctx, idemMsg("pay"), grpc.Header(&h1))
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.UnaryCall(ctx, idemMsg("pay"), grpc.Header(&h2))
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(first, again) || svc.runs.Load() != 1 {
		t.Fatalf("replay = %v (runs %d), want %v from one run", again, svc.runs.Load(), first)
	}
	if len(h1.Get("idempotent-replayed")) != 0 || strings.Join(h2.Get("idempotent-replayed"), ",") != "true" {
		t.Fatalf("replay headers: first %v, again %v; want idempotent-replayed: true on the replay only", h1, h2)
	}
}

func TestIdempotencyInterceptorRules(t *testing.T) {
	type step struct {
		ctx      func(context.Context) context.Context
		req      *testpb.SimpleRequest
		wantCode codes.Code
		wantRuns int64
		replayed bool
	}
	key := func(k string) func(context.Context) context.Context {
		return func(ctx context.Context) context.Context {
			if k == "" {
				return ctx
			}
			return withIdemKey(ctx, "idempotency-key", k)
		}
	}
	answer := func(err error) func(context.Context, *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		return func(context.Context, *testpb.SimpleRequest) (*testpb.SimpleResponse, error) { return nil, err }
	}
	tests := []struct {
		name  string
		unary func(context.Context, *testpb.SimpleRequest) (*testpb.SimpleResponse, error)
		opts  []idempotency.Option
		steps []step
	}{
		{name: "no key passes", steps: []step{
			{ctx: key(""), req: idemMsg("a"), wantRuns: 1},
			{ctx: key(""), req: idemMsg("a"), wantRuns: 2},
		}},
		{name: "key required", opts: []idempotency.Option{idempotency.WithKeyRequired(true)}, steps: []step{
			{ctx: key(""), req: idemMsg("a"), wantCode: codes.InvalidArgument},
		}},
		{name: "malformed", steps: []step{{ctx: key(`"abc`), req: idemMsg("a"), wantCode: codes.InvalidArgument}}},
		{name: "two values", steps: []step{{ctx: func(ctx context.Context) context.Context {
			return withIdemKey(ctx, "idempotency-key", "a", "idempotency-key", "b")
		}, req: idemMsg("a"), wantCode: codes.InvalidArgument}}},
		{name: "request over the limit", opts: []idempotency.Option{idempotency.WithMaxRequestBytes(8)}, steps: []step{
			{ctx: key("k"), req: idemMsg(strings.Repeat("x", 64)), wantCode: codes.InvalidArgument},
		}},
		{name: "other request", steps: []step{
			{ctx: key("k"), req: idemMsg("a"), wantRuns: 1},
			{ctx: key("k"), req: idemMsg("b"), wantCode: codes.FailedPrecondition, wantRuns: 1},
		}},
		{name: "scopes are isolated", steps: []step{
			{ctx: func(ctx context.Context) context.Context {
				return withIdemKey(ctx, "idempotency-key", "k", "authorization", "alice")
			}, req: idemMsg("a"), wantRuns: 1},
			{ctx: func(ctx context.Context) context.Context {
				return withIdemKey(ctx, "idempotency-key", "k", "authorization", "bob")
			}, req: idemMsg("a"), wantRuns: 2},
			{ctx: func(ctx context.Context) context.Context {
				return withIdemKey(ctx, "idempotency-key", "k", "authorization", "alice")
			}, req: idemMsg("a"), wantRuns: 2, replayed: true},
		}},
		{name: "methods", opts: []idempotency.Option{idempotency.WithMethods("/grpc.testing.TestService/EmptyCall")}, steps: []step{
			{ctx: key("k"), req: idemMsg("a"), wantRuns: 1},
			{ctx: key("k"), req: idemMsg("a"), wantRuns: 2},
		}},
		{name: "NOT_FOUND stored", unary: answer(status.Error(codes.NotFound, "no such order")), steps: []step{
			{ctx: key("k"), req: idemMsg("a"), wantCode: codes.NotFound, wantRuns: 1},
			{ctx: key("k"), req: idemMsg("a"), wantCode: codes.NotFound, wantRuns: 1, replayed: true},
		}},
		{name: "UNAVAILABLE released", unary: answer(status.Error(codes.Unavailable, "later")), steps: []step{
			{ctx: key("k"), req: idemMsg("a"), wantCode: codes.Unavailable, wantRuns: 1},
			{ctx: key("k"), req: idemMsg("a"), wantCode: codes.Unavailable, wantRuns: 2},
		}},
		{name: "INTERNAL released", unary: answer(status.Error(codes.Internal, "bug")), steps: []step{
			{ctx: key("k"), req: idemMsg("a"), wantCode: codes.Internal, wantRuns: 1},
			{ctx: key("k"), req: idemMsg("a"), wantCode: codes.Internal, wantRuns: 2},
		}},
		{name: "INTERNAL stored with WithStoreServerErrors", unary: answer(status.Error(codes.Internal, "bug")),
			opts: []idempotency.Option{idempotency.WithStoreServerErrors(true)}, steps: []step{
				{ctx: key("k"), req: idemMsg("a"), wantCode: codes.Internal, wantRuns: 1},
				{ctx: key("k"), req: idemMsg("a"), wantCode: codes.Internal, wantRuns: 1, replayed: true},
			}},
		{name: "a refusal released even with WithStoreServerErrors", unary: answer(fmt.Errorf("policy: %w", bulwark.ErrRejected)),
			opts: []idempotency.Option{idempotency.WithStoreServerErrors(true)}, steps: []step{
				{ctx: key("k"), req: idemMsg("a"), wantCode: codes.Unknown, wantRuns: 1},
				{ctx: key("k"), req: idemMsg("a"), wantCode: codes.Unknown, wantRuns: 2},
			}},
		{name: "panic released", unary: func(context.Context, *testpb.SimpleRequest) (*testpb.SimpleResponse, error) { panic("boom") }, steps: []step{
			{ctx: key("k"), req: idemMsg("a"), wantCode: codes.Internal, wantRuns: 1},
			{ctx: key("k"), req: idemMsg("a"), wantCode: codes.Internal, wantRuns: 2},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := &idemService{unary: tt.unary}
			c := serveIdem(t, idempotency.NewMemoryStore(), svc, tt.opts...)
			for i, st := range tt.steps {
				var hdr metadata.MD
				ctx := st.ctx(context.Background())
				_, err := c.UnaryCall(ctx, st.req, grpc.Header(&hdr))
				if code := status.Code(err); code != st.wantCode {
					t.Fatalf("step %d: code = %v (%v), want %v", i, code, err, st.wantCode)
				}
				if got := len(hdr.Get("idempotent-replayed")) > 0; got != st.replayed && st.wantCode == codes.OK {
					t.Fatalf("step %d: replayed = %v, want %v", i, got, st.replayed)
				}
				if n := svc.runs.Load(); n != st.wantRuns {
					t.Fatalf("step %d: handler ran %d times, want %d", i, n, st.wantRuns)
				}
			}
		})
	}
}

func TestIdempotencyInterceptorStoredErrorKeepsDetails(t *testing.T) {
	st, _ := status.New(codes.FailedPrecondition, "card declined").WithDetails(&errdetails.ErrorInfo{Reason: "DECLINED"})
	svc := &idemService{unary: func(context.Context, *testpb.SimpleRequest) (*testpb.SimpleResponse, error) { return nil, st.Err() }}
	c := serveIdem(t, idempotency.NewMemoryStore(), svc)
	ctx := withIdemKey(context.Background(), "idempotency-key", "k")
	_, err1 := c.UnaryCall(ctx, idemMsg("a"))
	_, err2 := c.UnaryCall(ctx, idemMsg("a"))
	s1, s2 := status.Convert(err1), status.Convert(err2)
	if !proto.Equal(s1.Proto(), s2.Proto()) || svc.runs.Load() != 1 || len(s2.Details()) != 1 {
		t.Fatalf("replayed %v, want %v with its detail from one run (runs %d)", s2.Proto(), s1.Proto(), svc.runs.Load())
	}
}

func TestIdempotencyInterceptorInFlight(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	svc := &idemService{unary: func(ctx context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		close(entered)
		<-release
		return &testpb.SimpleResponse{Username: "done"}, nil
	}}
	c := serveIdem(t, idempotency.NewMemoryStore(), svc)
	ctx := withIdemKey(context.Background(), "idempotency-key", "k")
	done := make(chan error, 1)
	go func() { _, err := c.UnaryCall(ctx, idemMsg("a")); done <- err }()
	<-entered
	var tr metadata.MD
	_, err := c.UnaryCall(ctx, idemMsg("a"), grpc.Trailer(&tr))
	st := status.Convert(err)
	if st.Code() != codes.Aborted {
		t.Fatalf("duplicate in flight = %v, want ABORTED", err)
	}
	var hint time.Duration
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			hint = ri.GetRetryDelay().AsDuration()
		}
	}
	if hint != time.Second || strings.Join(tr.Get("grpc-retry-pushback-ms"), "") != "1000" {
		t.Fatalf("RetryInfo %v, pushback %v; want 1s and 1000", hint, tr.Get("grpc-retry-pushback-ms"))
	}
	if _, err := c.UnaryCall(ctx, idemMsg("b")); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("other request in flight = %v, want FAILED_PRECONDITION", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestIdempotencyInterceptorConcurrentDuplicates(t *testing.T) {
	svc := &idemService{}
	c := serveIdem(t, idempotency.NewMemoryStore(), svc)
	ctx := withIdemKey(context.Background(), "idempotency-key", "dup")
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		codes_ = map[codes.Code]int{}
		names  = map[string]int{}
	)
	for range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.UnaryCall(ctx, idemMsg("pay"))
			mu.Lock()
			defer mu.Unlock()
			codes_[status.Code(err)]++
			if err == nil {
				names[resp.GetUsername()]++
			}
		}()
	}
	wg.Wait()
	if svc.runs.Load() != 1 || codes_[codes.OK]+codes_[codes.Aborted] != 1000 || len(names) != 1 {
		t.Fatalf("runs %d, codes %v, responses %v; want one run, OK (one response) or ABORTED", svc.runs.Load(), codes_, names)
	}
}

func TestIdempotencyInterceptorClientGone(t *testing.T) {
	entered, returned := make(chan struct{}, 1), make(chan struct{}, 1)
	var first atomic.Bool
	svc := &idemService{unary: func(ctx context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		if first.Swap(true) {
			return &testpb.SimpleResponse{}, nil
		}
		entered <- struct{}{}
		<-ctx.Done()
		returned <- struct{}{}
		return nil, ctx.Err()
	}}
	c := serveIdem(t, idempotency.NewMemoryStore(), svc)
	ctx, cancel := context.WithCancel(withIdemKey(context.Background(), "idempotency-key", "k"))
	go func() { <-entered; cancel() }()
	if _, err := c.UnaryCall(ctx, idemMsg("a")); status.Code(err) != codes.Canceled {
		t.Fatalf("cancelled call = %v, want CANCELED", err)
	}
	<-returned
	ctx = withIdemKey(context.Background(), "idempotency-key", "k")
	var err error
	for range 100 { // the release follows the handler's return by a moment
		if _, err = c.UnaryCall(ctx, idemMsg("a")); status.Code(err) != codes.Aborted {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil || svc.runs.Load() != 2 {
		t.Fatalf("retry = %v, runs %d; want it executed", err, svc.runs.Load())
	}
}

func TestIdempotencyInterceptorOversized(t *testing.T) {
	svc := &idemService{unary: func(ctx context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		return &testpb.SimpleResponse{Username: strings.Repeat("x", 100)}, nil
	}}
	c := serveIdem(t, idempotency.NewMemoryStore(), svc, idempotency.WithMaxResponseBytes(16))
	ctx := withIdemKey(context.Background(), "idempotency-key", "k")
	resp, err := c.UnaryCall(ctx, idemMsg("a"))
	if err != nil || len(resp.GetUsername()) != 100 {
		t.Fatalf("first = %v, %v; want the full response", resp, err)
	}
	if _, err := c.UnaryCall(ctx, idemMsg("a")); status.Code(err) != codes.AlreadyExists || svc.runs.Load() != 1 {
		t.Fatalf("duplicate = %v (runs %d), want ALREADY_EXISTS without a second run", err, svc.runs.Load())
	}
}

type idemDownStore struct{ idempotency.Store }

func (idemDownStore) Claim(context.Context, string, idempotency.Token, idempotency.Fingerprint, time.Duration) (idempotency.Claim, error) {
	return idempotency.Claim{}, errors.New("dial tcp 10.0.0.7:6379: connection refused")
}

func TestIdempotencyInterceptorStoreDown(t *testing.T) {
	svc := &idemService{}
	c := serveIdem(t, idemDownStore{idempotency.NewMemoryStore()}, svc)
	ctx := withIdemKey(context.Background(), "idempotency-key", "k")
	_, err := c.UnaryCall(ctx, idemMsg("a"))
	st := status.Convert(err)
	if st.Code() != codes.Unavailable || strings.Contains(st.Message(), "10.0.0.7") || svc.runs.Load() != 0 || len(st.Details()) != 1 {
		t.Fatalf("store down = %v %v (runs %d); want UNAVAILABLE with RetryInfo, no address, handler not run", st.Code(), st.Proto(), svc.runs.Load())
	}
	open := serveIdem(t, idemDownStore{idempotency.NewMemoryStore()}, svc, idempotency.WithFailOpen(true))
	if _, err := open.UnaryCall(ctx, idemMsg("a")); err != nil || svc.runs.Load() != 1 {
		t.Fatalf("fail open = %v (runs %d), want the handler's answer", err, svc.runs.Load())
	}
}

func TestIdempotencyInterceptorLease(t *testing.T) {
	svc := &idemService{unary: func(ctx context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		dl, ok := ctx.Deadline()
		if !ok || time.Until(dl) > 5*time.Second {
			return nil, status.Errorf(codes.Internal, "deadline %v, %v; want within the 5s lease", dl, ok)
		}
		return &testpb.SimpleResponse{}, nil
	}}
	c := serveIdem(t, idempotency.NewMemoryStore(), svc, idempotency.WithLease(5*time.Second))
	if _, err := c.UnaryCall(withIdemKey(context.Background(), "idempotency-key", "k"), idemMsg("a")); err != nil {
		t.Fatal(err)
	}
}
