package bulwarkgrpc_test

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarkgrpc"
	"github.com/bulwark-go/bulwark/internal/policytest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// service is the test service: each method runs its hook when set, else a
// plain echo.
type service struct {
	testpb.UnimplementedTestServiceServer
	unary  func(ctx context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error)
	output func(in *testpb.StreamingOutputCallRequest, s grpc.ServerStreamingServer[testpb.StreamingOutputCallResponse]) error
	bidi   func(s grpc.BidiStreamingServer[testpb.StreamingOutputCallRequest, testpb.StreamingOutputCallResponse]) error
}

func (s *service) EmptyCall(context.Context, *testpb.Empty) (*testpb.Empty, error) {
	return &testpb.Empty{}, nil
}

func (s *service) UnaryCall(ctx context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	if s.unary != nil {
		return s.unary(ctx, in)
	}
	return &testpb.SimpleResponse{Payload: in.GetPayload()}, nil
}

// StreamingOutputCall sends one response per ResponseParameters entry, each
// with a payload of that size.
func (s *service) StreamingOutputCall(in *testpb.StreamingOutputCallRequest, st grpc.ServerStreamingServer[testpb.StreamingOutputCallResponse]) error {
	if s.output != nil {
		return s.output(in, st)
	}
	for _, p := range in.GetResponseParameters() {
		if err := st.Send(&testpb.StreamingOutputCallResponse{Payload: payload(int(p.GetSize()))}); err != nil {
			return err
		}
	}
	return nil
}

// StreamingInputCall sums the sizes of the payloads it receives.
func (s *service) StreamingInputCall(st grpc.ClientStreamingServer[testpb.StreamingInputCallRequest, testpb.StreamingInputCallResponse]) error {
	var sum int32
	for {
		in, err := st.Recv()
		if err == io.EOF {
			return st.SendAndClose(&testpb.StreamingInputCallResponse{AggregatedPayloadSize: sum})
		}
		if err != nil {
			return err
		}
		sum += int32(len(in.GetPayload().GetBody()))
	}
}

// FullDuplexCall answers each request with one response per
// ResponseParameters entry.
func (s *service) FullDuplexCall(st grpc.BidiStreamingServer[testpb.StreamingOutputCallRequest, testpb.StreamingOutputCallResponse]) error {
	if s.bidi != nil {
		return s.bidi(st)
	}
	for {
		in, err := st.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		for _, p := range in.GetResponseParameters() {
			if err := st.Send(&testpb.StreamingOutputCallResponse{Payload: payload(int(p.GetSize()))}); err != nil {
				return err
			}
		}
	}
}

func payload(n int) *testpb.Payload { return &testpb.Payload{Body: make([]byte, n)} }

// harness is a real gRPC server on 127.0.0.1:0 and a client connected to it.
type harness struct {
	srv    *grpc.Server
	conn   *grpc.ClientConn
	client testpb.TestServiceClient
}

func start(t testing.TB, svc *service, sopts []grpc.ServerOption, copts ...grpc.DialOption) *harness {
	t.Helper()
	srv, conn := policytest.ServeGRPC(t, func(s *grpc.Server) { testpb.RegisterTestServiceServer(s, svc) }, sopts, copts...)
	return &harness{srv: srv, conn: conn, client: testpb.NewTestServiceClient(conn)}
}

// hinted is a refusal with a retry hint, as policies make them.
type hinted struct {
	class error
	after int64 // milliseconds
}

func (e *hinted) Error() string             { return fmt.Sprintf("test: refused (%v)", e.class) }
func (e *hinted) Unwrap() error             { return e.class }
func (e *hinted) RetryAfter() time.Duration { return time.Duration(e.after) * time.Millisecond }

// startCapturing starts a service whose UnaryCall sends the incoming
// metadata of each call to the channel returned (one call buffered), with a
// client under a pass-through policy and opts.
func startCapturing(t testing.TB, opts ...bulwarkgrpc.Option) (*harness, <-chan metadata.MD) {
	t.Helper()
	got := make(chan metadata.MD, 1)
	svc := &service{unary: func(ctx context.Context, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		got <- md
		return &testpb.SimpleResponse{}, nil
	}}
	return start(t, svc, nil, clientOpts(bulwark.Chain(), opts...)), got
}

// incoming returns the values of key in the incoming metadata of ctx.
func incoming(ctx context.Context, key string) []string {
	md, _ := metadata.FromIncomingContext(ctx)
	return md.Get(key)
}

func insecureCreds() credentials.TransportCredentials { return insecure.NewCredentials() }
