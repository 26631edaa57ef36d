package bulwarkgrpc_test

import (
	"context"
	"fmt"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bulwark-go/bulwark/bulwarkgrpc"
	"github.com/bulwark-go/bulwark/idempotency"
)

type idemPaymentService struct {
	testpb.UnimplementedTestServiceServer
	payments int
}

func (s *idemPaymentService) UnaryCall(ctx context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	s.payments++
	return &testpb.SimpleResponse{Username: fmt.Sprintf("payment %d", s.payments)}, nil
}

// The idempotency-key metadata on a unary call: the duplicate is answered
// from the store with the header idempotent-replayed: true, and another
// request under the same key gets FAILED_PRECONDITION.
func ExampleIdempotencyUnaryServerInterceptor() {
	srv := grpc.NewServer(grpc.UnaryInterceptor(
		bulwarkgrpc.IdempotencyUnaryServerInterceptor(idempotency.NewMemoryStore())))
	testpb.RegisterTestServiceServer(srv, &idemPaymentService{})
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(lis)
	defer srv.Stop()
	conn, _ := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	defer conn.Close()
	client := testpb.NewTestServiceClient(conn)

	ctx := metadata.AppendToOutgoingContext(context.Background(), "idempotency-key", `"pay-7"`)
	for _, amount := range []string{"1000", "1000", "9999"} {
		var header metadata.MD
		resp, err := client.UnaryCall(ctx, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte(amount)}}, grpc.Header(&header))
		if err != nil {
			fmt.Println(status.Code(err))
			continue
		}
		fmt.Println(resp.GetUsername(), header.Get("idempotent-replayed"))
	}
	// Output:
	// payment 1 []
	// payment 1 [true]
	// FailedPrecondition
}
