package bulwarkgrpc

import (
	"context"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/bulwark-go/bulwark/health"
)

// The services RegisterHealth reports besides the groups.
const (
	healthLivez    = "livez"
	healthReadyz   = "readyz"
	healthStartupz = "startupz"
)

// RegisterHealth registers the standard grpc.health.v1.Health service on
// s, answering from c. It is google.golang.org/grpc/health's server, whose
// statuses a loop owned by c keeps current (every poll interval, 1 s by
// default — see [health.WithPollInterval], which opts may set — and as soon
// as a check's status changes); [health.Checker.Close] stops it. The
// services:
//
//	""          readiness: SERVING while it passes (warnings included), as /readyz
//	"readyz"    the same
//	"livez"     liveness, as /livez
//	"startupz"  startup, as /startupz
//	<group>     the readiness checks put in that group with health.WithGroup:
//	            name a group after the gRPC service it gates ("shop.v1.Checkout")
//
// Until the first evaluation every service is NOT_SERVING. Check of an
// unknown service answers NOT_FOUND; Watch of one sends SERVICE_UNKNOWN
// and keeps the stream open (the service may appear later), as the
// protocol says.
//
// When a drain starts ([health.Checker.Drain]), "", "readyz" and every
// group turn NOT_SERVING at once and stay so; "livez" and "startupz" go on
// answering as their HTTP twins do, so that a liveness probe does not kill
// the draining process. When Drain's delay ends, open Watch streams end
// with UNAVAILABLE: a Watch never ends by itself, and an open one would
// hold grpc.Server.GracefulStop until the drain timeout forced it.
//
// Register at most one health service per gRPC server.
func RegisterHealth(s grpc.ServiceRegistrar, c *health.Checker, opts ...health.Option) {
	if s == nil || c == nil {
		panic("bulwarkgrpc: RegisterHealth with a nil server or Checker")
	}
	b := &healthBridge{
		c:     c,
		srv:   &healthServer{Server: grpchealth.NewServer(), stopc: make(chan struct{})},
		last:  map[string]healthpb.HealthCheckResponse_ServingStatus{},
		group: map[string]bool{},
	}
	for _, svc := range []string{"", healthReadyz, healthLivez, healthStartupz} {
		b.setLocked(svc, healthpb.HealthCheckResponse_NOT_SERVING)
	}
	healthpb.RegisterHealthServer(s, b.srv)
	c.OnDrain(b.drain)
	c.OnShutdown(b.srv.stopWatches)
	c.Watch(b.update, opts...)
}

// healthBridge publishes a Checker's answers on a grpc health server.
type healthBridge struct {
	c   *health.Checker
	srv *healthServer

	mu    sync.Mutex
	last  map[string]healthpb.HealthCheckResponse_ServingStatus
	group map[string]bool // services that are groups
}

func servingStatus(s health.Status) healthpb.HealthCheckResponse_ServingStatus {
	if s == health.StatusFail {
		return healthpb.HealthCheckResponse_NOT_SERVING
	}
	return healthpb.HealthCheckResponse_SERVING
}

// update probes the Checker and publishes the statuses; it runs on the
// Checker's watch loop.
func (b *healthBridge) update(ctx context.Context) {
	var live, ready, start health.Report
	var wg sync.WaitGroup // the three at once: a slow readiness check does not delay liveness
	wg.Go(func() { live = b.c.Check(ctx, health.Liveness) })
	wg.Go(func() { start = b.c.Check(ctx, health.Startup) })
	ready = b.c.Check(ctx, health.Readiness)
	wg.Wait()
	groups := map[string]health.Status{}
	for _, r := range ready.Checks {
		for _, g := range r.Groups {
			groups[g] = max(groups[g], r.Status)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	// Draining is read under mu, after the probes: a drain that started
	// during them has already flipped the readiness services (under mu),
	// and must not be undone by answers taken before it.
	draining := b.c.Draining()
	readiness := servingStatus(ready.Status)
	if draining {
		readiness = healthpb.HealthCheckResponse_NOT_SERVING
	}
	b.setLocked("", readiness)
	b.setLocked(healthReadyz, readiness)
	b.setLocked(healthLivez, servingStatus(live.Status))
	b.setLocked(healthStartupz, servingStatus(start.Status))
	for g, st := range groups {
		b.group[g] = true
		if draining {
			st = health.StatusFail
		}
		b.setLocked(g, servingStatus(st))
	}
}

// drain flips every readiness service to NOT_SERVING; it runs
// synchronously in StartDrain.
func (b *healthBridge) drain() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.setLocked("", healthpb.HealthCheckResponse_NOT_SERVING)
	b.setLocked(healthReadyz, healthpb.HealthCheckResponse_NOT_SERVING)
	for g := range b.group {
		b.setLocked(g, healthpb.HealthCheckResponse_NOT_SERVING)
	}
}

// setLocked sets a service's status when it changed. b.mu is held.
func (b *healthBridge) setLocked(svc string, st healthpb.HealthCheckResponse_ServingStatus) {
	if old, ok := b.last[svc]; ok && old == st {
		return
	}
	b.last[svc] = st
	b.srv.SetServingStatus(svc, st)
}

// healthServer is grpc/health's server with Watch streams that end when
// the server is about to stop.
type healthServer struct {
	*grpchealth.Server
	once  sync.Once
	stopc chan struct{}
}

func (h *healthServer) stopWatches() { h.once.Do(func() { close(h.stopc) }) }

// Watch runs grpc/health's Watch on a stream whose context also ends when
// the watches are stopped.
func (h *healthServer) Watch(in *healthpb.HealthCheckRequest, stream healthpb.Health_WatchServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	stopped := make(chan struct{})
	go func() {
		select {
		case <-h.stopc:
			close(stopped)
			cancel()
		case <-ctx.Done():
		}
	}()
	err := h.Server.Watch(in, &watchStream{Health_WatchServer: stream, ctx: ctx})
	cancel()
	select {
	case <-stopped:
		return status.Error(codes.Unavailable, "health: server stopping")
	default:
		return err
	}
}

// watchStream is a Watch stream with its own context.
type watchStream struct {
	healthpb.Health_WatchServer
	ctx context.Context
}

func (w *watchStream) Context() context.Context { return w.ctx }
