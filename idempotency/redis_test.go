package idempotency_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/internal/redistest"
)

var prefixes atomic.Int64

// newPrefix returns a prefix no other test uses, so tests share a server.
func newPrefix() string { return fmt.Sprintf("test%d:", prefixes.Add(1)) }

func TestRedisStoreContract(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	storeContract(t, func(t *testing.T, f func(*testing.T)) { f(t) },
		func(*testing.T) idempotency.Store {
			return idempotency.NewRedisStore(c, idempotency.WithPrefix(newPrefix()))
		}, 500*time.Millisecond) // long enough that a loaded machine does not outlive it between two calls
}

func TestNewRedisStoreRefusesClientsWithoutContextTimeout(t *testing.T) {
	tests := []struct {
		name string
		give redis.UniversalClient
	}{
		{"client", redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})},
		{"cluster", redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}})},
		{"ring", redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}})},
		{"universal", redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{"127.0.0.1:1"}})},
		{"nil", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.give != nil {
				defer tt.give.Close()
			}
			defer func() {
				r := recover()
				msg, _ := r.(string)
				if r == nil || !strings.HasPrefix(msg, "idempotency: NewRedisStore") ||
					(tt.give != nil && !strings.Contains(msg, "ContextTimeoutEnabled")) {
					t.Fatalf("panic = %v, want one naming ContextTimeoutEnabled", r)
				}
			}()
			idempotency.NewRedisStore(tt.give)
		})
	}
	// With the option set, no panic and no I/O (the address is closed).
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}, ContextTimeoutEnabled: true})
	defer c.Close()
	idempotency.NewRedisStore(c)
}

func TestRedisStoreRoundTrips(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	counter := redistest.NewCounter()
	c.AddHook(counter)
	g := idempotency.New(idempotency.NewRedisStore(c, idempotency.WithPrefix(newPrefix())))
	ctx := context.Background()

	// The first call ever loads the script: reported separately.
	call, _, err := g.Begin(ctx, "warm", "", fpA)
	if err != nil {
		t.Fatal(err)
	}
	_ = call.Complete(ctx, &idempotency.Record{Status: 200})
	warm := counter.Trips()
	t.Logf("first request on a fresh server (scripts not loaded): %d round trips %v", warm, counter.Commands())
	if warm > 4 {
		t.Errorf("cold start = %d round trips, want at most 4 (EVALSHA+EVAL per script)", warm)
	}

	counter.Reset()
	call, _, err = g.Begin(ctx, "new", "", fpA)
	if err != nil || call == nil {
		t.Fatalf("Begin = %v, %v", call, err)
	}
	if n := counter.Trips(); n != 1 {
		t.Errorf("claim = %d round trips, want 1", n)
	}
	// A conflict while in flight: one round trip.
	counter.Reset()
	if _, _, err := g.Begin(ctx, "new", "", fpA); !errors.Is(err, idempotency.ErrInFlight) {
		t.Fatalf("duplicate = %v, want ErrInFlight", err)
	}
	if n := counter.Trips(); n != 1 {
		t.Errorf("conflict = %d round trips, want 1", n)
	}
	counter.Reset()
	if err := call.Complete(ctx, &idempotency.Record{Status: 201, Body: []byte("ok")}); err != nil {
		t.Fatal(err)
	}
	if n := counter.Trips(); n != 1 {
		t.Errorf("complete = %d round trips, want 1 (a new request: 2 in all)", n)
	}
	counter.Reset()
	_, rec, err := g.Begin(ctx, "new", "", fpA)
	if err != nil || rec == nil || string(rec.Body) != "ok" {
		t.Fatalf("replay = %v, %v", rec, err)
	}
	if n := counter.Trips(); n != 1 {
		t.Errorf("replay = %d round trips, want 1", n)
	}
	t.Logf("steady state: new request 2 round trips (claim, complete), replay 1, conflict 1; commands %v", counter.Commands())
}

func TestRedisStoreKeys(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	prefix := newPrefix()
	g := idempotency.New(idempotency.NewRedisStore(c, idempotency.WithPrefix(prefix)))
	ctx := context.Background()
	done, _, _ := g.Begin(ctx, "a", "alice", fpA)
	_ = done.Complete(ctx, &idempotency.Record{Status: 200})
	_, _, _ = g.Begin(ctx, "b", "alice", fpA) // left in flight
	keys, err := c.Keys(ctx, "*").Result()
	if err != nil || len(keys) != 2 {
		t.Fatalf("keys = %v, %v; want 2", keys, err)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix+"{") || !strings.HasSuffix(k, "}") || strings.Contains(k, "alice") {
			t.Errorf("key %q: want %s{digest}, without the scope in clear", k, prefix)
		}
		if ttl, err := c.PTTL(ctx, k).Result(); err != nil || ttl <= 0 {
			t.Errorf("key %q has TTL %v, %v; every key expires", k, ttl, err)
		}
	}
}

func TestRedisStoreOutage(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	const timeout = 100 * time.Millisecond
	store := idempotency.NewRedisStore(c, idempotency.WithPrefix(newPrefix()))
	closed := idempotency.New(store, idempotency.WithStoreTimeout(timeout))
	open := idempotency.New(store, idempotency.WithStoreTimeout(timeout), idempotency.WithFailOpen(true))
	ctx := context.Background()

	check := func(t *testing.T, wantDeadline bool) {
		t.Helper()
		_, _, err := closed.Begin(ctx, "k", "", fpA)
		if !errors.Is(err, idempotency.ErrStoreUnavailable) || !errors.Is(err, bulwark.ErrUnavailable) {
			t.Fatalf("fail closed = %v, want ErrStoreUnavailable", err)
		}
		var ne net.Error
		if wantDeadline && !errors.Is(err, context.DeadlineExceeded) && !(errors.As(err, &ne) && ne.Timeout()) {
			t.Fatalf("fail closed on a hung server = %v, want the store timeout (DeadlineExceeded)", err)
		}
		call, rec, err := open.Begin(ctx, "k", "", fpA)
		if call == nil || rec != nil || err != nil {
			t.Fatalf("fail open = %v, %v, %v; want a Call", call, rec, err)
		}
		if err := call.Complete(ctx, &idempotency.Record{Status: 200}); err != nil {
			t.Fatalf("Complete of a failed-open call = %v, want nil", err)
		}
	}
	t.Run("paused", func(t *testing.T) {
		srv.Pause()
		defer srv.Resume()
		check(t, true)
	})
	t.Run("stopped", func(t *testing.T) {
		srv.Stop()
		check(t, false)
	})
	t.Run("restarted", func(t *testing.T) {
		srv.Restart()
		// The pool may hold dead connections: the first calls may fail.
		var err error
		for range 20 {
			var call *idempotency.Call
			if call, _, err = closed.Begin(ctx, "after", "", fpA); err == nil {
				if err = call.Complete(ctx, &idempotency.Record{Status: 200}); err != nil {
					t.Fatalf("Complete after restart = %v", err)
				}
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("after restart: %v", err)
		}
		if _, rec, err := closed.Begin(ctx, "after", "", fpA); rec == nil || err != nil {
			t.Fatalf("replay after restart = %v, %v (scripts reloaded?)", rec, err)
		}
	})
}

func TestRedisStoreCorruptValue(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	prefix := newPrefix()
	g := idempotency.New(idempotency.NewRedisStore(c, idempotency.WithPrefix(prefix)))
	ctx := context.Background()
	call, _, _ := g.Begin(ctx, "k", "", fpA)
	_ = call.Complete(ctx, &idempotency.Record{Status: 200})
	keys, _ := c.Keys(ctx, prefix+"*").Result()
	c.Set(ctx, keys[0], "garbage", time.Minute)
	if _, _, err := g.Begin(ctx, "k", "", fpA); !errors.Is(err, idempotency.ErrStoreUnavailable) {
		t.Fatalf("corrupt record = %v, want ErrStoreUnavailable", err)
	}
	c.Set(ctx, keys[0], "Cshort", time.Minute)
	if _, _, err := g.Begin(ctx, "k", "", fpA); !errors.Is(err, idempotency.ErrStoreUnavailable) {
		t.Fatalf("corrupt claim = %v, want ErrStoreUnavailable", err)
	}
}
