package health

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Server is a server [Checker.Drain] stops: Shutdown stops accepting and
// waits for in-flight work until ctx ends; Close forces it closed.
// *http.Server implements it; wrap a *grpc.Server with [GracefulStopper].
type Server interface {
	Shutdown(ctx context.Context) error
	Close() error
}

// GracefulStopper adapts a server with GracefulStop and Stop — a
// *grpc.Server — to [Server]: Shutdown runs GracefulStop and, when ctx
// ends first, Stop, which closes every connection and cancels the calls
// still running; it returns ctx's error then, without waiting for those
// calls' handlers to return (as http.Server.Close does not): a goroutine
// left in GracefulStop waits for them. Close is Stop.
func GracefulStopper(s interface {
	GracefulStop()
	Stop()
}) Server {
	if s == nil {
		panic("health: GracefulStopper(nil)")
	}
	return gracefulStopper{s}
}

type gracefulStopper struct {
	s interface {
		GracefulStop()
		Stop()
	}
}

func (g gracefulStopper) Shutdown(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.s.GracefulStop()
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		g.s.Stop()
		return ctx.Err()
	}
}

func (g gracefulStopper) Close() error {
	g.s.Stop()
	return nil
}

// Drain is the shutdown sequence of a service behind a load balancer:
//
//  1. readiness fails at once ([Checker.StartDrain]: HTTP /readyz answers
//     503, the gRPC bridge's readiness services — "", "readyz" and the
//     groups — NOT_SERVING), while liveness keeps passing and the servers
//     keep serving;
//  2. wait the drain delay ([WithDrainDelay], 5 s) so that load balancers
//     see it and stop sending new work;
//  3. call the [Checker.OnShutdown] functions, then stop the servers, all
//     at once: each stops accepting and finishes its in-flight work
//     (http.Server.Shutdown, grpc.Server.GracefulStop) within the drain
//     timeout ([WithDrainTimeout], 20 s);
//  4. force the servers that are still busy then closed (Close, Stop).
//
// It returns when every server stopped. graceful reports that none had to
// be forced; err joins the errors of Shutdown other than the timeout's and
// those of Close. When ctx ends, Drain skips what remains of the delay and
// forces the servers at once: pass a context that ends when a second
// signal arrives, or context.Background() to always run the whole sequence.
//
// Wire it to the process's signals with signal.NotifyContext (see the
// example): serve until the first SIGTERM, then Drain. Drain may be called
// with no servers (it then only fails readiness and waits the delay); a
// second Drain runs the sequence again for its own servers.
func (c *Checker) Drain(ctx context.Context, servers ...Server) (graceful bool, err error) {
	c.StartDrain()
	if c.opts.drainDelay > 0 {
		t := time.NewTimer(c.opts.drainDelay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	c.mu.Lock()
	hooks := c.onStop
	c.mu.Unlock()
	for _, f := range hooks {
		f()
	}
	sctx, cancel := context.WithTimeout(ctx, c.opts.drainTimeout)
	defer cancel()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		forced bool
		errs   []error
	)
	for _, s := range servers {
		if s == nil {
			continue
		}
		wg.Go(func() {
			serr := s.Shutdown(sctx)
			var cerr error
			timedOut := serr != nil && sctx.Err() != nil && errors.Is(serr, sctx.Err())
			if timedOut {
				cerr = s.Close()
				serr = nil
			}
			mu.Lock()
			defer mu.Unlock()
			forced = forced || timedOut
			errs = append(errs, serr, cerr)
		})
	}
	wg.Wait()
	return !forced, errors.Join(errs...)
}
