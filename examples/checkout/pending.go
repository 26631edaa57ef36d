package main

import (
	"net/http"

	"google.golang.org/grpc"
)

// Until the idempotency package lands on main, these leave its layer out;
// they are replaced by its HTTP and gRPC faces.

func (s *service) idempotent(h http.Handler) http.Handler        { return h }
func (s *service) idempotentGRPC() []grpc.UnaryServerInterceptor { return nil }
