package main

import (
	"context"
	"net/http"

	"google.golang.org/grpc"

	"github.com/bulwark-go/bulwark/bulwarkgrpc"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/health"
)

// newChecker returns the service's health checks: the payment breakers
// are readiness warnings (an instance whose provider is down should stay
// in rotation: the catalog still works, and taking every instance out
// would turn a partial outage into a full one); Redis, when used, is
// critical (fleet-wide idempotency is not optional).
func newChecker(cfg config, payments *paymentClient) *health.Checker {
	c := health.New(
		health.WithDrainDelay(cfg.drainDelay),
		health.WithDrainTimeout(cfg.drainTimeout))
	for i, name := range []string{"payments-primary", "payments-standby"} {
		c.Register(name, payments.set.Breaker(i).HealthCheck,
			health.WithCritical(false), health.WithComponentType("component"),
			// A state read: cheap enough to run on every probe, so
			// readiness follows the breaker at once.
			health.WithMinInterval(0))
	}
	return c
}

// healthRoutes mounts /livez, /readyz and /startupz (and their per-check
// paths).
func (s *service) healthRoutes(mux *http.ServeMux) {
	h := bulwarkhttp.Health(s.checker)
	for _, p := range []string{"/livez", "/readyz", "/startupz"} {
		mux.Handle("GET "+p, h)
		mux.Handle("GET "+p+"/", h)
	}
}

// registerGRPCHealth registers the standard grpc.health.v1.Health
// service, answering from the same checks.
func (s *service) registerGRPCHealth(srv *grpc.Server) {
	bulwarkgrpc.RegisterHealth(srv, s.checker)
}

// drain runs the drain sequence: readiness fails, the delay passes, the
// servers stop gracefully. force ending (a second signal) cuts it short.
func (s *service) drain(force context.Context, h *http.Server, g *grpc.Server) (bool, error) {
	return s.checker.Drain(force, h, health.GracefulStopper(g))
}
