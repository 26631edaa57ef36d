package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/health"
	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/ratelimit"
)

// fleet is what instances share through Redis (-redis): idempotency
// records, the catalog's rate limits and the payment breakers' state.
// Without -redis its client is nil and everything stays in memory.
type fleet struct {
	cfg     config
	client  *redis.Client
	local   *ratelimit.Limiter  // the capacity's fallback while Redis is out
	breaker *breaker.RedisState // the payment breakers' shared state
}

// connectFleet makes the client of the -redis server, if any, and checks
// whether it answers.
func connectFleet(ctx context.Context, cfg config, log *slog.Logger) *fleet {
	f := &fleet{cfg: cfg}
	if cfg.redisAddr == "" {
		return f
	}
	// go-redis logs every failed dial on its own; the redis readiness
	// check and the stores' metrics already report an outage, so its
	// lines go to the service's log at debug level.
	redis.SetLogger(redisLogger{log})
	f.client = redis.NewClient(&redis.Options{
		Addr: cfg.redisAddr,
		// The stores' per-call timeouts hold on socket reads only with
		// this on (see the Redis section of the bulwark SPEC).
		ContextTimeoutEnabled: true,
		DialTimeout:           time.Second,
		ReadTimeout:           time.Second,
		WriteTimeout:          time.Second,
	})
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := f.client.Ping(pctx).Err(); err != nil {
		// Start anyway: readiness fails (the redis check is critical)
		// until Redis answers, and every store handles the outage as its
		// package documents, so the instance heals without a restart.
		log.Warn("redis is not answering; not ready until it does", "redis", cfg.redisAddr, "err", err)
	} else {
		log.Info("connected", "redis", cfg.redisAddr)
	}
	return f
}

func (f *fleet) close() {
	if f.breaker != nil {
		_ = f.breaker.Close()
	}
	if f.client != nil {
		_ = f.client.Close()
	}
}

// breakerOptions are the payment breakers' options for shared state: the
// instance whose calls open a breaker ("payments/0", the primary's) opens
// it for the fleet, so the others stop sending to that endpoint within a
// refresh interval instead of each paying its own failures to find out.
func (f *fleet) breakerOptions() []breaker.Option {
	if f.client == nil {
		return nil
	}
	f.breaker = breaker.NewRedisState(f.client, breaker.WithRedisPrefix("checkout:breaker:"))
	return []breaker.Option{breaker.WithSharedState(f.breaker)}
}

// store returns the idempotency store: Redis, shared by the fleet, or a
// bounded memory store.
func (f *fleet) store() idempotency.Store {
	if f.client == nil {
		return idempotency.NewMemoryStore()
	}
	return idempotency.NewRedisStore(f.client, idempotency.WithPrefix("checkout:idem:"))
}

// catalog returns the catalog's fleet-wide limiters, or nil in memory:
// one GCRA decision in Redis per call, for every client's quota and for
// the shared capacity. While Redis is out, the capacity falls back to a
// local limiter at the same rate (one instance's share would be better
// when the fleet's size is known), and client quotas fail open: the local
// capacity still bounds the load.
func (f *fleet) catalog() *fleetPolicies {
	if f.client == nil {
		return nil
	}
	burst := func(r float64) int { return max(1, int(r)) }
	f.local = ratelimit.New("catalog-local", rate.Limit(f.cfg.catalogRate), burst(f.cfg.catalogRate))
	return &fleetPolicies{
		clientQuota: ratelimit.NewKeyedRedis("catalog-client", f.client,
			rate.Limit(f.cfg.clientRate), burst(f.cfg.clientRate),
			ratelimit.WithPrefix("checkout:")),
		capacity: ratelimit.NewRedis("catalog", f.client,
			rate.Limit(f.cfg.catalogRate), burst(f.cfg.catalogRate),
			ratelimit.WithPrefix("checkout:"), ratelimit.WithFallback(f.local)),
	}
}

// register adds the fleet's own checks to s: Redis is critical, since
// without it the fleet's idempotency guarantee does not hold.
func (f *fleet) register(s *service) {
	if f.client == nil {
		return
	}
	s.reg.RegisterAs("catalog-local", f.local)
	s.checker.Register("redis", health.PingCheck(f.client.Ping), health.WithComponentType("datastore"))
}

// redisLogger routes go-redis's log lines to slog, at debug level.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, fmt.Sprintf(format, v...), "component", "go-redis")
}
