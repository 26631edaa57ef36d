package bulwarkgrpc_test

import (
	"context"
	"fmt"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarkgrpc"
)

// withoutReviews answers every call, degraded: its reviews are down.
type withoutReviews struct {
	testpb.UnimplementedTestServiceServer
}

func (withoutReviews) UnaryCall(ctx context.Context, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	if err := bulwarkgrpc.MarkDegraded(ctx, "reviews"); err != nil {
		return nil, err
	}
	return &testpb.SimpleResponse{Username: "product page, no reviews"}, nil
}

func ExampleMarkDegraded() {
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(bulwarkgrpc.UnaryServerInterceptor(bulwark.Chain())))
	testpb.RegisterTestServiceServer(srv, withoutReviews{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	defer conn.Close()

	var header metadata.MD
	resp, err := testpb.NewTestServiceClient(conn).UnaryCall(context.Background(), &testpb.SimpleRequest{}, grpc.Header(&header))
	fmt.Println(resp.GetUsername(), err, header.Get(bulwarkgrpc.MetadataDegraded))
	// Output:
	// product page, no reviews <nil> [reviews]
}
