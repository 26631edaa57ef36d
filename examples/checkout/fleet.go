package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwark-go/bulwark/breaker"
)

// fleet is what instances share through Redis (-redis): idempotency
// records, the catalog's rate limits and the payment breakers' state.
// Without -redis its client is nil and everything stays in memory.
type fleet struct {
	cfg    config
	client *redis.Client
}

// connectFleet connects to the -redis server, if any, and checks that it
// answers.
func connectFleet(ctx context.Context, cfg config, log *slog.Logger) (*fleet, error) {
	f := &fleet{cfg: cfg}
	if cfg.redisAddr == "" {
		return f, nil
	}
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
		f.client.Close()
		return nil, fmt.Errorf("redis %s: %w", cfg.redisAddr, err)
	}
	log.Info("connected", "redis", cfg.redisAddr)
	return f, nil
}

func (f *fleet) close() {
	if f.client != nil {
		_ = f.client.Close()
	}
}

// breakerOptions are the payment breakers' options for shared state.
func (f *fleet) breakerOptions() []breaker.Option { return nil }

// catalog returns the catalog's fleet-wide limiters, or nil in memory.
func (f *fleet) catalog() *fleetPolicies { return nil }

// register adds the fleet's own checks to s.
func (f *fleet) register(s *service) {}
