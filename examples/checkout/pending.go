package main

import (
	"context"
	"net/http"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// Until the idempotency, health and marker packages land on main, these
// leave their layers out. Each is replaced by the package's own face.

func (s *service) idempotent(h http.Handler) http.Handler        { return h }
func (s *service) idempotentGRPC() []grpc.UnaryServerInterceptor { return nil }
func (s *service) healthRoutes(mux *http.ServeMux)               {}
func (s *service) registerGRPCHealth(srv *grpc.Server)           {}

func markDegraded(w http.ResponseWriter, name string) { w.Header().Set("Bulwark-Degraded", name) }

func markDegradedGRPC(ctx context.Context, name string) error {
	return grpc.SetHeader(ctx, metadata.Pairs("bulwark-degraded", name))
}

// drain stops the servers after the drain delay.
func (s *service) drain(h *http.Server, g *grpc.Server) bool {
	time.Sleep(s.cfg.drainDelay)
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.drainTimeout)
	defer cancel()
	go g.GracefulStop()
	return h.Shutdown(ctx) == nil
}
