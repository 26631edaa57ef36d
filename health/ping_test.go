package health_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/health"
	"github.com/bulwark-go/bulwark/internal/redistest"
)

type cmd struct{ err error }

func (c *cmd) Err() error { return c.err }

func TestPingCheckShapes(t *testing.T) {
	ctx := context.Background()
	if err := health.PingCheck(func(context.Context) error { return nil })(ctx); err != nil {
		t.Errorf("error-returning ping, nil: %v", err)
	}
	if err := health.PingCheck(func(context.Context) error { return errBoom })(ctx); !errors.Is(err, errBoom) {
		t.Errorf("error-returning ping: %v, want boom", err)
	}
	if err := health.PingCheck(func(context.Context) *cmd { return &cmd{errBoom} })(ctx); !errors.Is(err, errBoom) {
		t.Errorf("Err()-returning ping: %v, want boom", err)
	}
	if err := health.PingCheck(func(context.Context) *cmd { return &cmd{} })(ctx); err != nil {
		t.Errorf("Err()-returning ping, nil: %v", err)
	}
	// A nil command panics in Err; registered, that is a failed check.
	c := newChecker(t)
	c.Register("nilcmd", health.PingCheck(func(context.Context) *cmd { return nil }))
	if r, _ := c.CheckOne(ctx, health.Readiness, "nilcmd"); !errors.Is(r.Err, health.ErrPanic) {
		t.Errorf("nil command: %v, want ErrPanic", r.Err)
	}
}

// TestPingCheckRedis pings a real redis-server: up, paused (SIGSTOP: the
// check times out), stopped (refused).
func TestPingCheckRedis(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client() // ContextTimeoutEnabled, as PingCheck's doc asks

	c := newChecker(t)
	c.Register("redis", health.PingCheck(rdb.Ping), health.WithMinInterval(0),
		health.WithTimeout(300*time.Millisecond), health.WithComponentType("datastore"))
	ctx := context.Background()
	if rep := c.Check(ctx, health.Readiness); rep.Status != health.StatusPass {
		t.Fatalf("redis up: %v %v, want pass", rep.Status, rep.Checks[0].Err)
	}
	srv.Pause()
	r, _ := c.CheckOne(ctx, health.Readiness, "redis")
	srv.Resume()
	if r.Status != health.StatusFail || !errors.Is(r.Err, health.ErrTimeout) {
		t.Errorf("redis paused: %v %v, want fail with ErrTimeout", r.Status, r.Err)
	}
	srv.Stop()
	if r, _ := c.CheckOne(ctx, health.Readiness, "redis"); r.Status != health.StatusFail || r.Err == nil {
		t.Errorf("redis stopped: %v %v, want fail", r.Status, r.Err)
	}
}
