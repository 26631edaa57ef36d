package redistest

import (
	"context"
	"errors"
	"github.com/redis/go-redis/v9"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestServerLifecycle(t *testing.T) {
	s := Start(t)
	c := s.Client()
	cnt := NewCounter()
	c.AddHook(cnt)
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", time.Minute).Err(); err != nil {
		t.Fatalf("SET = %v, want nil", err)
	}
	if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET = %q, %v, want v, nil", got, err)
	}
	if got := cnt.Trips(); got != 2 {
		t.Logf("commands: %v", cnt.Commands())
		t.Errorf("Trips() = %d, want 2", got)
	}
	if got := cnt.Commands()["set"]; got != 1 {
		t.Errorf(`Commands()["set"] = %d, want 1`, got)
	}

	// Paused: a call ends at its deadline, it does not hang.
	s.Pause()
	pctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	start := time.Now()
	err := c.Ping(pctx).Err()
	cancel()
	if err == nil {
		t.Fatal("PING on a paused server = nil, want an error")
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("PING on a paused server took %v, want about the 100ms deadline", el)
	}
	s.Resume()

	s.Stop()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING on a stopped server = nil, want an error")
	}
	s.Restart()
	var perr error
	for range 20 { // the pool may hold a dead connection or two
		if perr = c.Ping(ctx).Err(); perr == nil {
			break
		}
	}
	if perr != nil {
		t.Fatalf("PING after Restart = %v, want nil", perr)
	}
	if err := c.Get(ctx, "k").Err(); !errors.Is(err, errNil()) {
		t.Errorf("GET after Restart = %v, want redis.Nil (no persistence)", err)
	}
}

func errNil() error { return redisNil }

var redisNil = redis.Nil
