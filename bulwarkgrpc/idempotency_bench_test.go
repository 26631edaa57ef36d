package bulwarkgrpc_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"

	"github.com/bulwark-go/bulwark/bulwarkgrpc"
	"github.com/bulwark-go/bulwark/idempotency"
)

// BenchmarkIdempotencyInterceptor calls the interceptor in process: a new
// call (records expire at once) and a replay, next to the bare handler.
func BenchmarkIdempotencyInterceptor(b *testing.B) {
	info := &grpc.UnaryServerInfo{FullMethod: "/grpc.testing.TestService/UnaryCall"}
	in := &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte(`{"amount":1000}`)}}
	out := &testpb.SimpleResponse{Username: "payment 1"}
	handler := func(ctx context.Context, req any) (any, error) { return out, nil }
	bare := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		return h(ctx, req)
	}
	ctxs := make([]context.Context, 4096)
	for i := range ctxs {
		ctxs[i] = metadata.NewIncomingContext(context.Background(),
			metadata.Pairs("idempotency-key", "key-"+strconv.Itoa(i), "authorization", "Bearer sk_test_123"))
	}
	for _, c := range []struct {
		name string
		icp  grpc.UnaryServerInterceptor
		ctxs []context.Context
	}{
		{"bare", bare, ctxs[:1]},
		{"new", bulwarkgrpc.IdempotencyUnaryServerInterceptor(idempotency.NewMemoryStore(), idempotency.WithRetention(time.Nanosecond)), ctxs},
		{"replay", bulwarkgrpc.IdempotencyUnaryServerInterceptor(idempotency.NewMemoryStore()), ctxs[:1]},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := c.icp(c.ctxs[i%len(c.ctxs)], in, info, handler); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
