package main

import (
	"net/http"

	"google.golang.org/grpc"

	"github.com/bulwark-go/bulwark/bulwarkgrpc"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/idempotency"
)

// idempotent gives POST /v1/charges Idempotency-Key semantics: the key is
// required (400 without it), a duplicate is answered from the store with
// Idempotent-Replayed: true (409 while the first is in flight, 422 when
// the key is reused for another charge), and only the first runs the
// handler. It runs before the charges bulkhead, so duplicates never take
// a slot.
func (s *service) idempotent(h http.Handler) http.Handler {
	return bulwarkhttp.Idempotency(s.idem,
		idempotency.WithKeyRequired(true),
		idempotency.WithName("charges"))(h)
}

// idempotentGRPC is the same for CreateCharge, from the idempotency-key
// metadata, on the same store: a key means one charge whichever face it
// came through.
func (s *service) idempotentGRPC() []grpc.UnaryServerInterceptor {
	return []grpc.UnaryServerInterceptor{
		bulwarkgrpc.IdempotencyUnaryServerInterceptor(s.idem,
			idempotency.WithKeyRequired(true),
			idempotency.WithName("charges-grpc")),
	}
}
