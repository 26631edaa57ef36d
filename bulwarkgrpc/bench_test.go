package bulwarkgrpc_test

import (
	"context"
	"testing"

	"google.golang.org/grpc"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"

	"github.com/bulwark-go/bulwark/bulwarkgrpc"
	"github.com/bulwark-go/bulwark/internal/metrictest"
	"github.com/bulwark-go/bulwark/internal/policytest"
)

// benchCalls makes b.N EmptyCalls, in a loop and in parallel.
func benchCalls(b *testing.B, h *harness) {
	benchCallsCtx(b, h, metadata.AppendToOutgoingContext(context.Background(), bulwarkgrpc.MetadataPriority, "sheddable"))
}

func benchCallsCtx(b *testing.B, h *harness, ctx context.Context) {
	b.Run("loop", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := h.client.EmptyCall(ctx, &testpb.Empty{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := h.client.EmptyCall(ctx, &testpb.Empty{}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkUnaryServer measures the server interceptor over a real loopback
// connection: none, and a pass-through policy.
func BenchmarkUnaryServer(b *testing.B) {
	b.Run("none", func(b *testing.B) { benchCalls(b, start(b, &service{}, nil)) })
	for _, p := range metrictest.Providers(b) {
		b.Run("passthrough/"+p.Name, func(b *testing.B) {
			in := bulwarkgrpc.UnaryServerInterceptor(policytest.PassThrough, bulwarkgrpc.WithMeterProvider(p.Provider))
			benchCalls(b, start(b, &service{}, []grpc.ServerOption{grpc.UnaryInterceptor(in)}))
		})
	}
}

// BenchmarkUnaryClient measures the client interceptor over a real loopback
// connection: none, and a pass-through policy.
func BenchmarkUnaryClient(b *testing.B) {
	b.Run("none", func(b *testing.B) { benchCallsCtx(b, start(b, &service{}, nil), context.Background()) })
	// The two headers the interceptor sends, set by hand: what they cost on
	// the wire, apart from the interceptor.
	b.Run("none+headers", func(b *testing.B) {
		ctx := metadata.AppendToOutgoingContext(context.Background(),
			bulwarkgrpc.MetadataPriority, "critical", bulwarkgrpc.MetadataAttempt, "1")
		benchCallsCtx(b, start(b, &service{}, nil), ctx)
	})
	for _, p := range metrictest.Providers(b) {
		b.Run("passthrough/"+p.Name, func(b *testing.B) {
			in := bulwarkgrpc.UnaryClientInterceptor(policytest.PassThrough, bulwarkgrpc.WithMeterProvider(p.Provider))
			benchCallsCtx(b, start(b, &service{}, nil, grpc.WithUnaryInterceptor(in)), context.Background())
		})
	}
}

// BenchmarkUnaryServerDirect is the server interceptor alone, called
// without a network: what it adds to a call.
func BenchmarkUnaryServerDirect(b *testing.B) {
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(bulwarkgrpc.MetadataPriority, "sheddable"))
	handler := func(context.Context, any) (any, error) { return nil, nil }
	in := bulwarkgrpc.UnaryServerInterceptor(policytest.PassThrough)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := in(ctx, nil, unaryInfo, handler); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnaryClientDirect is the client interceptor alone, with an
// invoker that does nothing.
func BenchmarkUnaryClientDirect(b *testing.B) {
	ctx := context.Background()
	invoker := func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error { return nil }
	in := bulwarkgrpc.UnaryClientInterceptor(policytest.PassThrough)
	b.ReportAllocs()
	for b.Loop() {
		if err := in(ctx, "/test.Service/Method", nil, nil, nil, invoker); err != nil {
			b.Fatal(err)
		}
	}
}
