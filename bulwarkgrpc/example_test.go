package bulwarkgrpc_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarkgrpc"
)

// echo is a TestService whose UnaryCall answers with the caller's
// effective tier, or with the status the request asks for.
type echo struct {
	testpb.UnimplementedTestServiceServer
}

func (echo) UnaryCall(ctx context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	if s := in.GetResponseStatus(); s != nil {
		return nil, status.Error(codes.Code(s.GetCode()), s.GetMessage())
	}
	return &testpb.SimpleResponse{Username: bulwark.PriorityFrom(ctx).String()}, nil
}

// serve runs srv on a loopback port and returns a client connection to it
// and a function that stops both.
func serve(srv *grpc.Server, opts ...grpc.DialOption) (testpb.TestServiceClient, func()) {
	testpb.RegisterTestServiceServer(srv, echo{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go func() { _ = srv.Serve(lis) }()
	opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	conn, err := grpc.NewClient(lis.Addr().String(), opts...)
	if err != nil {
		panic(err)
	}
	return testpb.NewTestServiceClient(conn), func() { conn.Close(); srv.Stop() }
}

// busy is a refusal with a retry hint, as a rate limiter's would be.
type busy struct{}

func (busy) Error() string             { return "quota used up" }
func (busy) Unwrap() error             { return bulwark.ErrRejected }
func (busy) RetryAfter() time.Duration { return 1500 * time.Millisecond }

func ExampleUnaryServerInterceptor() {
	// A policy that refuses every call, as an exhausted rate limit does.
	refuse := bulwark.PolicyFunc(func(context.Context, func(context.Context) error) error { return busy{} })
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(bulwarkgrpc.UnaryServerInterceptor(refuse)),
		grpc.ChainStreamInterceptor(bulwarkgrpc.StreamServerInterceptor(refuse)),
	)
	client, stop := serve(srv)
	defer stop()

	_, err := client.UnaryCall(context.Background(), &testpb.SimpleRequest{})
	st := status.Convert(err)
	fmt.Println(st.Code(), st.Message())
	hint, _ := retryInfo(st)
	fmt.Println("RetryInfo:", hint)
	// Output:
	// ResourceExhausted quota used up
	// RetryInfo: 1.5s
}

func ExampleWithTrustPriority() {
	// Honour critical-plus only from callers on this host.
	trust := func(ctx context.Context) bool {
		p, ok := peer.FromContext(ctx)
		if !ok {
			return false
		}
		a, ok := p.Addr.(*net.TCPAddr)
		return ok && a.IP.IsLoopback()
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(
		bulwarkgrpc.UnaryServerInterceptor(bulwark.Chain(), bulwarkgrpc.WithTrustPriority(trust))))
	// The client interceptor sends the tier of its context.
	client, stop := serve(srv, grpc.WithUnaryInterceptor(bulwarkgrpc.UnaryClientInterceptor(bulwark.Chain())))
	defer stop()

	for _, p := range []bulwark.Priority{bulwark.CriticalPlus, bulwark.Sheddable} {
		resp, err := client.UnaryCall(bulwark.WithPriority(context.Background(), p), &testpb.SimpleRequest{})
		if err != nil {
			panic(err)
		}
		fmt.Println("sent", p, "served as", resp.GetUsername())
	}
	// Output:
	// sent critical-plus served as critical-plus
	// sent sheddable served as sheddable
}

func ExampleUnaryClientInterceptor() {
	client, stop := serve(grpc.NewServer(),
		grpc.WithUnaryInterceptor(bulwarkgrpc.UnaryClientInterceptor(bulwark.Timeout(time.Second))))
	defer stop()

	_, err := client.UnaryCall(context.Background(), &testpb.SimpleRequest{
		ResponseStatus: &testpb.EchoStatus{Code: int32(codes.Unavailable), Message: "draining"},
	})
	// The downstream's answer is classified for the policies, and keeps
	// its gRPC status for the caller.
	fmt.Println(errors.Is(err, bulwark.ErrRemoteUnavailable), status.Code(err), status.Convert(err).Message())
	// Output:
	// true Unavailable draining
}

func ExampleStreamClientInterceptor() {
	// Streams need two-step admission: a policy that is not a
	// bulwark.Admitter (here a timeout) is refused at construction.
	defer func() { fmt.Println(recover()) }()
	bulwarkgrpc.StreamClientInterceptor(bulwark.Timeout(time.Second))
	// Output:
	// bulwarkgrpc: StreamClientInterceptor: policy bulwark.timeout is not a bulwark.Admitter: a stream outlives Do, so pass admission policies only (a breaker, a bulkhead, a bulwark.Chain of them), not retries, timeouts or hedging
}
