package scenario_test

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulkhead"
	"github.com/bulwark-go/bulwark/bulwarkgrpc"
	"github.com/bulwark-go/bulwark/internal/policytest"
	"github.com/bulwark-go/bulwark/ratelimit"
)

// grpcService is a TestService whose UnaryCall answers with the caller's
// effective tier, the status the request asks for, or, for the payload
// "block", waits for release; FullDuplexCall echoes until the client
// closes its side.
type grpcService struct {
	testgrpc.UnimplementedTestServiceServer
	entered chan struct{}
	release chan struct{}
}

func (s *grpcService) UnaryCall(ctx context.Context, in *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	if string(in.GetPayload().GetBody()) == "block" {
		s.entered <- struct{}{}
		select {
		case <-s.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if st := in.GetResponseStatus(); st != nil {
		return nil, status.Error(codes.Code(st.GetCode()), st.GetMessage())
	}
	return &testgrpc.SimpleResponse{Username: bulwark.PriorityFrom(ctx).String()}, nil
}

func (s *grpcService) FullDuplexCall(stream testgrpc.TestService_FullDuplexCallServer) error {
	for {
		in, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(&testgrpc.StreamingOutputCallResponse{Payload: in.GetPayload()}); err != nil {
			return err
		}
	}
}

// grpcStack is grpcService on 127.0.0.1 behind the bulwarkgrpc server
// interceptors under policy, with the partition key taken from the
// "tenant" metadata. An outermost interceptor records every call the
// server was sent, refused or not.
type grpcStack struct {
	svc     *grpcService
	client  testgrpc.TestServiceClient
	mu      sync.Mutex
	unary   []string // "tenant/attempt" of each unary call
	tiers   []string // the bulwark-priority metadata of each unary call
	streams int
}

func newGRPCStack(t *testing.T, policy bulwark.Policy, copts ...grpc.DialOption) *grpcStack {
	t.Helper()
	s := &grpcStack{svc: &grpcService{entered: make(chan struct{}, 1), release: make(chan struct{})}}
	tenant := func(ctx context.Context, _ string) string {
		md, _ := metadata.FromIncomingContext(ctx)
		return strings.Join(md.Get("tenant"), ",")
	}
	record := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		s.mu.Lock()
		s.unary = append(s.unary, strings.Join(md.Get("tenant"), ",")+"/"+strings.Join(md.Get("bulwark-attempt"), ","))
		s.tiers = append(s.tiers, strings.Join(md.Get("bulwark-priority"), ","))
		s.mu.Unlock()
		return h(ctx, req)
	}
	recordStream := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		s.mu.Lock()
		s.streams++
		s.mu.Unlock()
		return h(srv, ss)
	}
	sopts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(record, bulwarkgrpc.UnaryServerInterceptor(policy, bulwarkgrpc.WithKeyFunc(tenant))),
		grpc.ChainStreamInterceptor(recordStream, bulwarkgrpc.StreamServerInterceptor(policy, bulwarkgrpc.WithKeyFunc(tenant))),
	}
	_, conn := policytest.ServeGRPC(t, func(srv *grpc.Server) { testgrpc.RegisterTestServiceServer(srv, s.svc) }, sopts, copts...)
	s.client = testgrpc.NewTestServiceClient(conn)
	return s
}

func (s *grpcStack) seen() (unary []string, streams int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.unary...), s.streams
}

// as returns a bounded context whose calls carry tenant.
func as(t *testing.T, tenant string) context.Context {
	return metadata.AppendToOutgoingContext(bounded(t), "tenant", tenant)
}

// block starts a unary call that holds its slot until release, and returns
// once the handler runs; wait returns the call's error.
func (s *grpcStack) block(t *testing.T, tenant string) (wait func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, err := s.client.UnaryCall(as(t, tenant), &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("block")}})
		errc <- err
	}()
	select {
	case <-s.svc.entered:
	case err := <-errc:
		t.Fatalf("the blocking call ended early: %v", err)
	}
	return func() error {
		close(s.svc.release)
		return <-errc
	}
}

func TestGRPCRefusalCodes(t *testing.T) {
	quota := ratelimit.NewKeyed("tenants", hourly, 1)
	s := newGRPCStack(t, bulwark.Chain(quota, bulkhead.New("grpc", 1)))

	if _, err := s.client.UnaryCall(as(t, "acme"), &testgrpc.SimpleRequest{}); err != nil {
		t.Fatalf("first call: %v", err)
	}
	var trailer metadata.MD
	_, err := s.client.UnaryCall(as(t, "acme"), &testgrpc.SimpleRequest{}, grpc.Trailer(&trailer))
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("a tenant past its quota: code = %v, want ResourceExhausted", st.Code())
	}
	var hint time.Duration
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			hint = ri.GetRetryDelay().AsDuration()
		}
	}
	if hint < 59*time.Minute || hint > time.Hour {
		t.Errorf("RetryInfo delay = %v, want about the hour until the next token", hint)
	}
	ms, err := strconv.ParseInt(strings.Join(trailer.Get("grpc-retry-pushback-ms"), ","), 10, 64)
	if d := time.Duration(ms) * time.Millisecond; err != nil || d < hint || d >= hint+time.Millisecond {
		t.Errorf("grpc-retry-pushback-ms = %q, want the RetryInfo delay %v rounded up to ms", trailer.Get("grpc-retry-pushback-ms"), hint)
	}

	// Another tenant finds the compartment full: this side cannot serve.
	wait := s.block(t, "initech")
	_, err = s.client.UnaryCall(as(t, "globex"), &testgrpc.SimpleRequest{})
	if code := status.Code(err); code != codes.Unavailable {
		t.Errorf("the compartment full: code = %v, want Unavailable", code)
	}
	if err := wait(); err != nil {
		t.Fatalf("the blocking call: %v", err)
	}
	if _, err := s.client.UnaryCall(as(t, "hooli"), &testgrpc.SimpleRequest{}); err != nil {
		t.Errorf("once the compartment drained: %v, want success", err)
	}
}

func TestGRPCRetry(t *testing.T) {
	tests := []struct {
		name     string
		retry    func() bulwark.Policy
		give     *testgrpc.EchoStatus // the handler's answer; nil: the limiter refuses the second call
		wantCode codes.Code
		want     []string // tenant/attempt of the second call's attempts, as the server saw them
	}{
		{
			// The limiter's pushback (50 ms) replaces the hour of backoff.
			name: "RESOURCE_EXHAUSTED with pushback", retry: func() bulwark.Policy { return slowRetry() },
			wantCode: codes.OK, want: []string{"t/1", "t/2"},
		},
		{
			name: "RESOURCE_EXHAUSTED without a hint", retry: func() bulwark.Policy { return fastRetry() },
			give:     &testgrpc.EchoStatus{Code: int32(codes.ResourceExhausted), Message: "downstream quota"},
			wantCode: codes.ResourceExhausted, want: []string{"t/1"},
		},
		{
			name: "UNAVAILABLE without a hint", retry: func() bulwark.Policy { return fastRetry() },
			give:     &testgrpc.EchoStatus{Code: int32(codes.Unavailable), Message: "draining"},
			wantCode: codes.Unavailable, want: []string{"t/1", "t/2", "t/3"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			limit := rate.Inf // the handler answers
			if tt.give == nil {
				limit = rate.Every(50 * time.Millisecond) // the limiter answers
			}
			quota := ratelimit.NewKeyed("tenants", limit, 1)
			s := newGRPCStack(t, quota, grpc.WithUnaryInterceptor(bulwarkgrpc.UnaryClientInterceptor(tt.retry())))
			if tt.give == nil {
				// Take the tenant's only token, so that the next call is refused.
				if _, err := s.client.UnaryCall(as(t, "t"), &testgrpc.SimpleRequest{}); err != nil {
					t.Fatalf("first call: %v", err)
				}
			}
			before, _ := s.seen()
			_, err := s.client.UnaryCall(as(t, "t"), &testgrpc.SimpleRequest{ResponseStatus: tt.give})
			if code := status.Code(err); code != tt.wantCode {
				t.Errorf("code = %v (%v), want %v", code, err, tt.wantCode)
			}
			after, _ := s.seen()
			if got := after[len(before):]; strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("server saw %q, want %q", got, tt.want)
			}
		})
	}
}

func TestGRPCStreamHoldsAdmission(t *testing.T) {
	clientPool := bulkhead.New("client", 1)
	s := newGRPCStack(t, bulkhead.New("server", 1),
		grpc.WithStreamInterceptor(bulwarkgrpc.StreamClientInterceptor(clientPool)))

	ctx := bounded(t)
	stream, err := s.client.FullDuplexCall(ctx)
	if err != nil {
		t.Fatalf("opening the stream: %v", err)
	}
	if err := stream.Send(&testgrpc.StreamingOutputCallRequest{Payload: &testgrpc.Payload{Body: []byte("ping")}}); err != nil {
		t.Fatal(err)
	}
	if in, err := stream.Recv(); err != nil || string(in.GetPayload().GetBody()) != "ping" {
		t.Fatalf("Recv() = %v, %v, want the echo", in, err)
	}

	// While the stream is open, both sides hold its slot.
	if n := clientPool.InFlight(); n != 1 {
		t.Errorf("client in flight with the stream open = %d, want 1", n)
	}
	if _, err := s.client.UnaryCall(ctx, &testgrpc.SimpleRequest{}); status.Code(err) != codes.Unavailable ||
		!strings.HasPrefix(status.Convert(err).Message(), `bulkhead "server"`) {
		t.Errorf("a call while the stream holds the server's slot: %v, want Unavailable from the server's bulkhead", err)
	}
	_, err = s.client.FullDuplexCall(ctx)
	if status.Code(err) != codes.Unavailable || !errors.Is(err, bulkhead.ErrFull) || !errors.Is(err, bulwark.ErrUnavailable) {
		t.Errorf("a second stream: %v, want Unavailable wrapping bulkhead.ErrFull", err)
	}
	if _, streams := s.seen(); streams != 1 {
		t.Errorf("server saw %d streams, want 1 (the second is refused before it is sent)", streams)
	}

	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("Recv() after CloseSend = %v, want io.EOF", err)
	}
	if n := clientPool.InFlight(); n != 0 {
		t.Errorf("client in flight once the stream ended = %d, want 0", n)
	}
	if _, err := s.client.UnaryCall(ctx, &testgrpc.SimpleRequest{}); err != nil {
		t.Errorf("a call once the stream ended: %v, want success", err)
	}
	again, err := s.client.FullDuplexCall(ctx)
	if err != nil {
		t.Fatalf("a stream once the first ended: %v", err)
	}
	if err := again.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := again.Recv(); err != io.EOF {
		t.Errorf("Recv() = %v, want io.EOF", err)
	}
}

// relay is a TestService that serves UnaryCall by making the same call to
// b with the context it was given.
type relay struct {
	testgrpc.UnimplementedTestServiceServer
	b testgrpc.TestServiceClient
}

func (r relay) UnaryCall(ctx context.Context, in *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	return r.b.UnaryCall(ctx, in)
}

// TestGRPCTwoHop: client → A (server interceptor, client interceptor with
// retry to B) → B. A answers UNAVAILABLE for B's RESOURCE_EXHAUSTED (a
// downstream's quota is never relayed as A's) and passes B's tier on as
// A's effective tier.
func TestGRPCTwoHop(t *testing.T) {
	tests := []struct {
		name       string
		giveTier   bulwark.Priority
		giveStatus *testgrpc.EchoStatus // B's answer
		wantCode   codes.Code
		wantAtB    []string // bulwark-priority of each call B saw
	}{
		{name: "B serves", giveTier: bulwark.SheddablePlus, wantCode: codes.OK, wantAtB: []string{"sheddable-plus"}},
		{name: "untrusted critical-plus", giveTier: bulwark.CriticalPlus, wantCode: codes.OK, wantAtB: []string{"critical"}},
		{
			name: "B RESOURCE_EXHAUSTED", giveTier: bulwark.Sheddable,
			giveStatus: &testgrpc.EchoStatus{Code: int32(codes.ResourceExhausted), Message: "B's quota"},
			wantCode:   codes.Unavailable, wantAtB: []string{"sheddable"},
		},
		{
			name: "B UNAVAILABLE", giveTier: bulwark.Critical,
			giveStatus: &testgrpc.EchoStatus{Code: int32(codes.Unavailable), Message: "B is down"},
			wantCode:   codes.Unavailable, wantAtB: []string{"critical", "critical", "critical"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// B, and A's client to it with retry.
			b := newGRPCStack(t, policytest.PassThrough, grpc.WithUnaryInterceptor(bulwarkgrpc.UnaryClientInterceptor(fastRetry())))
			sopts := []grpc.ServerOption{grpc.UnaryInterceptor(bulwarkgrpc.UnaryServerInterceptor(bulkhead.New("a", 4)))}
			_, conn := policytest.ServeGRPC(t, func(srv *grpc.Server) {
				testgrpc.RegisterTestServiceServer(srv, relay{b: b.client})
			}, sopts, grpc.WithUnaryInterceptor(bulwarkgrpc.UnaryClientInterceptor(bulwark.Chain())))
			a := testgrpc.NewTestServiceClient(conn)

			resp, err := a.UnaryCall(bulwark.WithPriority(bounded(t), tt.giveTier), &testgrpc.SimpleRequest{ResponseStatus: tt.giveStatus})
			if code := status.Code(err); code != tt.wantCode {
				t.Errorf("A answered %v (%v), want %v", code, err, tt.wantCode)
			}
			if err == nil && resp.GetUsername() != tt.wantAtB[0] {
				t.Errorf("B served the call as %q, want %q", resp.GetUsername(), tt.wantAtB[0])
			}
			b.mu.Lock()
			tiers := append([]string(nil), b.tiers...)
			b.mu.Unlock()
			if strings.Join(tiers, " ") != strings.Join(tt.wantAtB, " ") {
				t.Errorf("B saw bulwark-priority %q, want %q", tiers, tt.wantAtB)
			}
		})
	}
}
