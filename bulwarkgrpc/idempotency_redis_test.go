package bulwarkgrpc_test

import (
	"context"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/internal/redistest"
)

// Two gRPC servers with their own Redis clients share one redis-server: a
// call executed on one is replayed by the other, and a mismatch is seen
// across them.
func TestIdempotencyInterceptorRedisTwoServers(t *testing.T) {
	rs := redistest.Start(t)
	svcA, svcB := &idemService{}, &idemService{}
	a := serveIdem(t, idempotency.NewRedisStore(rs.Client()), svcA)
	b := serveIdem(t, idempotency.NewRedisStore(rs.Client()), svcB)
	ctx := withIdemKey(context.Background(), "idempotency-key", "k")
	first, err := a.UnaryCall(ctx, idemMsg("pay"))
	if err != nil {
		t.Fatal(err)
	}
	var hdr metadata.MD
	again, err := b.UnaryCall(ctx, idemMsg("pay"), grpc.Header(&hdr))
	if err != nil || !proto.Equal(first, again) || svcB.runs.Load() != 0 || len(hdr.Get("idempotent-replayed")) != 1 {
		t.Fatalf("replay on the other server = %v, %v (runs %d, header %v); want %v replayed", again, err, svcB.runs.Load(), hdr, first)
	}
	if _, err := b.UnaryCall(ctx, idemMsg("other")); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("other request on the other server = %v, want FAILED_PRECONDITION", err)
	}
	rs.Stop()
	if _, err := b.UnaryCall(withIdemKey(context.Background(), "idempotency-key", "k2"), idemMsg("x")); status.Code(err) != codes.Unavailable {
		t.Fatalf("Redis stopped = %v, want UNAVAILABLE", err)
	}
}
