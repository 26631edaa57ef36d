package idempotency_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/internal/metrictest"
	"github.com/bulwark-go/bulwark/internal/redistest"
)

// faultStore wraps a Store: it fails or blocks each call as told and
// records the leases it was asked for.
type faultStore struct {
	idempotency.Store
	err    error // returned by every call when set
	block  bool  // wait for the context instead
	leases []time.Duration
}

func (f *faultStore) fault(ctx context.Context) error {
	if f.block {
		<-ctx.Done()
		return ctx.Err()
	}
	return f.err
}

func (f *faultStore) Claim(ctx context.Context, key string, tok idempotency.Token, fp idempotency.Fingerprint, lease time.Duration) (idempotency.Claim, error) {
	f.leases = append(f.leases, lease)
	if err := f.fault(ctx); err != nil {
		return idempotency.Claim{}, err
	}
	return f.Store.Claim(ctx, key, tok, fp, lease)
}

func (f *faultStore) Complete(ctx context.Context, key string, tok idempotency.Token, rec []byte, retention time.Duration) error {
	if err := f.fault(ctx); err != nil {
		return err
	}
	return f.Store.Complete(ctx, key, tok, rec, retention)
}

func (f *faultStore) Release(ctx context.Context, key string, tok idempotency.Token) error {
	if err := f.fault(ctx); err != nil {
		return err
	}
	return f.Store.Release(ctx, key, tok)
}

func begin(t *testing.T, g *idempotency.Guard, key, scope string, fp idempotency.Fingerprint) (*idempotency.Call, *idempotency.Record, error) {
	t.Helper()
	return g.Begin(context.Background(), key, scope, fp)
}

func TestGuardLifecycle(t *testing.T) {
	r := metrictest.New(t)
	g := idempotency.New(idempotency.NewMemoryStore(), idempotency.WithMeterProvider(r.Provider))
	r.Keep(g)
	ctx := context.Background()

	c, rec, err := begin(t, g, "k", "alice", fpA)
	if c == nil || rec != nil || err != nil {
		t.Fatalf("first Begin = %v, %v, %v; want a Call", c, rec, err)
	}
	_, _, err = begin(t, g, "k", "alice", fpA)
	if !errors.Is(err, idempotency.ErrInFlight) {
		t.Fatalf("duplicate in flight = %v, want ErrInFlight", err)
	}
	if d, ok := bulwark.RetryAfter(err); !ok || d < time.Second {
		t.Fatalf("in-flight hint = %v, %v; want >= 1s", d, ok)
	}
	if _, _, err := begin(t, g, "k", "alice", fpB); !errors.Is(err, idempotency.ErrMismatch) {
		t.Fatalf("other request in flight = %v, want ErrMismatch", err)
	}
	want := idempotency.Record{Status: 201, Header: []idempotency.Field{{"Content-Type", "text/plain"}, {"Location", "/x/1"}}, Body: []byte("made")}
	if err := c.Complete(ctx, &want); err != nil {
		t.Fatalf("Complete = %v", err)
	}
	if err := c.Release(ctx); err != nil {
		t.Fatalf("Release after Complete = %v, want nil (the Call has ended)", err)
	}
	c2, got, err := begin(t, g, "k", "alice", fpA)
	if c2 != nil || err != nil || got == nil {
		t.Fatalf("duplicate after completion = %v, %v, %v; want a record", c2, got, err)
	}
	if got.Status != want.Status || string(got.Body) != string(want.Body) || len(got.Header) != 2 ||
		got.Header[0] != want.Header[0] || got.Header[1] != want.Header[1] || got.Oversized {
		t.Fatalf("replayed %+v, want %+v", got, want)
	}
	if _, _, err := begin(t, g, "k", "alice", fpB); !errors.Is(err, idempotency.ErrMismatch) {
		t.Fatalf("other request after completion = %v, want ErrMismatch", err)
	}
	// Another principal with the same key executes: scopes are isolated.
	if c, _, err := begin(t, g, "k", "bob", fpA); c == nil || err != nil {
		t.Fatalf("same key, other scope = %v, %v; want a Call", c, err)
	}
	if _, err := g.Key([]string{"a", "b"}); !errors.Is(err, idempotency.ErrInvalidKey) {
		t.Fatalf("Key(two values) = %v, want ErrInvalidKey", err)
	}
	got2 := r.Int64("bulwark.idempotency.requests")
	wantCounts := map[string]int64{"executed": 2, "conflict": 1, "mismatch": 2, "replayed": 1, "invalid": 1}
	for res, n := range wantCounts {
		if v := r.Int64Total("bulwark.idempotency.requests", "bulwark.result", res); v != n {
			t.Errorf("requests{result=%s} = %d, want %d (all: %v)", res, v, n, got2)
		}
	}
	if h := r.HistogramWhere("bulwark.idempotency.store.duration"); len(h) == 0 {
		t.Errorf("no store.duration recorded")
	}
}

func TestGuardRelease(t *testing.T) {
	g := idempotency.New(idempotency.NewMemoryStore())
	c, _, _ := begin(t, g, "k", "", fpA)
	if err := c.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c, _, err := begin(t, g, "k", "", fpA); c == nil || err != nil {
		t.Fatalf("after Release = %v, %v; want a Call (a retry executes)", c, err)
	}
}

func TestGuardKey(t *testing.T) {
	tests := []struct {
		name     string
		required bool
		give     []string
		want     string
		wantErr  error
	}{
		{name: "absent passes", give: nil, want: ""},
		{name: "absent required", required: true, give: nil, wantErr: idempotency.ErrKeyRequired},
		{name: "present", give: []string{`"k"`}, want: "k"},
		{name: "malformed", give: []string{`"k`}, wantErr: idempotency.ErrInvalidKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := idempotency.New(idempotency.NewMemoryStore(), idempotency.WithKeyRequired(tt.required))
			got, err := g.Key(tt.give)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) || got != tt.want {
				t.Fatalf("Key(%q) = %q, %v; want %q, %v", tt.give, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestGuardOptions(t *testing.T) {
	t.Run("scope from context", func(t *testing.T) {
		type userKey struct{}
		g := idempotency.New(idempotency.NewMemoryStore(), idempotency.WithScope(func(ctx context.Context) string {
			u, _ := ctx.Value(userKey{}).(string)
			return u
		}))
		alice := context.WithValue(context.Background(), userKey{}, "alice")
		bob := context.WithValue(context.Background(), userKey{}, "bob")
		if c, _, err := g.Begin(alice, "k", "same credential", fpA); c == nil || err != nil {
			t.Fatalf("alice = %v, %v", c, err)
		}
		if c, _, err := g.Begin(bob, "k", "same credential", fpA); c == nil || err != nil {
			t.Fatalf("bob, same key = %v, %v; want a Call of his own", c, err)
		}
		if _, _, err := g.Begin(alice, "k", "other credential", fpA); !errors.Is(err, idempotency.ErrInFlight) {
			t.Fatalf("alice again = %v, want ErrInFlight (the scope function decides)", err)
		}
	})
	t.Run("fingerprint off", func(t *testing.T) {
		g := idempotency.New(idempotency.NewMemoryStore(), idempotency.WithFingerprint(false))
		c, _, _ := begin(t, g, "k", "", fpA)
		_ = c.Complete(context.Background(), &idempotency.Record{Status: 200})
		if _, rec, err := begin(t, g, "k", "", fpB); err != nil || rec == nil {
			t.Fatalf("other payload, fingerprint off = %v, %v; want a replay", rec, err)
		}
	})
	t.Run("methods", func(t *testing.T) {
		def := []string{"POST", "PATCH"}
		g := idempotency.New(idempotency.NewMemoryStore())
		if !g.Applies("POST", def) || g.Applies("PUT", def) || !g.Applies("/any", nil) {
			t.Fatal("default methods wrong")
		}
		g = idempotency.New(idempotency.NewMemoryStore(), idempotency.WithMethods("PUT"))
		if g.Applies("POST", def) || !g.Applies("PUT", def) || g.Applies("/any", nil) {
			t.Fatal("WithMethods not applied")
		}
	})
	t.Run("nil and non-positive options keep defaults", func(t *testing.T) {
		g := idempotency.New(idempotency.NewMemoryStore(), nil, idempotency.WithMaxRequestBytes(-1),
			idempotency.WithMaxResponseBytes(0), idempotency.WithLease(-time.Second), idempotency.WithScope(nil),
			idempotency.WithMeterProvider(nil), idempotency.WithStoreTimeout(0), idempotency.WithRetention(0))
		if g.MaxRequestBytes() != idempotency.DefaultMaxRequestBytes || g.MaxResponseBytes() != idempotency.DefaultMaxResponseBytes {
			t.Fatalf("sizes = %d, %d; want the defaults", g.MaxRequestBytes(), g.MaxResponseBytes())
		}
		c, _, err := begin(t, g, "k", "", fpA)
		if err != nil || time.Until(c.Deadline()) < idempotency.DefaultLease-time.Second {
			t.Fatalf("Begin = %v, deadline in %v; want the default lease", err, time.Until(c.Deadline()))
		}
	})
	t.Run("nil store panics", func(t *testing.T) {
		defer func() {
			if r := recover(); r == nil {
				t.Fatal("New(nil) did not panic")
			}
		}()
		idempotency.New(nil)
	})
}

func TestGuardLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := &faultStore{Store: idempotency.NewMemoryStore()}
		g := idempotency.New(fs, idempotency.WithLease(10*time.Second), idempotency.WithStoreTimeout(50*time.Millisecond))
		c, _, _ := g.Begin(context.Background(), "a", "", fpA)
		if got, want := time.Until(c.Deadline()), 10*time.Second; got != want {
			t.Errorf("deadline in %v, want the lease %v", got, want)
		}
		if got, want := fs.leases[0], 10*time.Second+100*time.Millisecond; got != want {
			t.Errorf("store lease = %v, want lease + 2 timeouts = %v", got, want)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c, _, _ = g.Begin(ctx, "b", "", fpA)
		if got, want := time.Until(c.Deadline()), 2*time.Second; got != want {
			t.Errorf("deadline in %v, want the request's %v", got, want)
		}
		hctx, hcancel := c.Context(context.Background())
		defer hcancel()
		if dl, ok := hctx.Deadline(); !ok || !dl.Equal(c.Deadline()) {
			t.Errorf("handler context deadline = %v, %v; want %v", dl, ok, c.Deadline())
		}
		// The handler's context ends with the lease; a duplicate is still
		// in conflict until the store's lease ends, then takes over.
		<-hctx.Done()
		if _, _, err := g.Begin(context.Background(), "b", "", fpA); !errors.Is(err, idempotency.ErrInFlight) {
			t.Fatalf("duplicate right after the handler's deadline = %v, want ErrInFlight", err)
		}
		time.Sleep(100 * time.Millisecond)
		c2, _, err := g.Begin(context.Background(), "b", "", fpA)
		if c2 == nil || err != nil {
			t.Fatalf("duplicate after the lease = %v, %v; want a takeover", c2, err)
		}
		if err := c.Complete(context.Background(), &idempotency.Record{Status: 200}); !errors.Is(err, idempotency.ErrNotOwner) {
			t.Fatalf("dead owner's late Complete = %v, want ErrNotOwner", err)
		}
	})
}

func TestGuardStoreFailure(t *testing.T) {
	boom := errors.New("connection refused")
	t.Run("fail closed", func(t *testing.T) {
		g := idempotency.New(&faultStore{Store: idempotency.NewMemoryStore(), err: boom})
		c, rec, err := begin(t, g, "k", "", fpA)
		if c != nil || rec != nil || !errors.Is(err, idempotency.ErrStoreUnavailable) ||
			!errors.Is(err, bulwark.ErrUnavailable) || !errors.Is(err, boom) {
			t.Fatalf("Begin on a failing store = %v, %v, %v; want ErrStoreUnavailable wrapping the cause", c, rec, err)
		}
		if d, ok := bulwark.RetryAfter(err); !ok || d != time.Second {
			t.Fatalf("hint = %v, %v; want 1s", d, ok)
		}
	})
	t.Run("fail open", func(t *testing.T) {
		g := idempotency.New(&faultStore{Store: idempotency.NewMemoryStore(), err: boom}, idempotency.WithFailOpen(true))
		c, _, err := begin(t, g, "k", "", fpA)
		if c == nil || err != nil {
			t.Fatalf("Begin failing open = %v, %v; want a Call", c, err)
		}
		if err := c.Complete(context.Background(), &idempotency.Record{Status: 200}); err != nil {
			t.Fatalf("Complete of a failed-open Call = %v, want nil", err)
		}
	})
	t.Run("slow store times out", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			g := idempotency.New(&faultStore{Store: idempotency.NewMemoryStore(), block: true},
				idempotency.WithStoreTimeout(250*time.Millisecond))
			start := time.Now()
			_, _, err := g.Begin(context.Background(), "k", "", fpA)
			if !errors.Is(err, idempotency.ErrStoreUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Begin on a hung store = %v, want ErrStoreUnavailable (deadline)", err)
			}
			if d := time.Since(start); d != 250*time.Millisecond {
				t.Fatalf("gave up after %v, want the store timeout 250ms", d)
			}
		})
	})
	t.Run("caller gone", func(t *testing.T) {
		g := idempotency.New(idempotency.NewMemoryStore())
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, _, err := g.Begin(ctx, "k", "", fpA); !errors.Is(err, context.Canceled) {
			t.Fatalf("Begin with a cancelled context = %v, want context.Canceled", err)
		}
	})
	t.Run("complete after the client left", func(t *testing.T) {
		fs := &faultStore{Store: idempotency.NewMemoryStore()}
		g := idempotency.New(fs)
		ctx, cancel := context.WithCancel(context.Background())
		c, _, _ := g.Begin(ctx, "k", "", fpA)
		cancel()
		if err := c.Complete(ctx, &idempotency.Record{Status: 200}); err != nil {
			t.Fatalf("Complete under a cancelled context = %v, want it stored", err)
		}
		if _, rec, err := begin(t, g, "k", "", fpA); rec == nil || err != nil {
			t.Fatalf("duplicate = %v, %v; want a replay", rec, err)
		}
	})
}

func TestGuardOversized(t *testing.T) {
	t.Run("over the response limit", func(t *testing.T) {
		g := idempotency.New(idempotency.NewMemoryStore(), idempotency.WithMaxResponseBytes(10))
		c, _, _ := begin(t, g, "k", "", fpA)
		if err := c.Complete(context.Background(), &idempotency.Record{Status: 200, Body: make([]byte, 11)}); err != nil {
			t.Fatal(err)
		}
		_, rec, err := begin(t, g, "k", "", fpA)
		if !errors.Is(err, idempotency.ErrNotReplayable) || rec == nil || !rec.Oversized || rec.Status != 200 || rec.Body != nil {
			t.Fatalf("duplicate of an oversized response = %+v, %v; want ErrNotReplayable and the status", rec, err)
		}
	})
	t.Run("store with no room keeps a marker", func(t *testing.T) {
		g := idempotency.New(idempotency.NewMemoryStore(idempotency.WithMaxBytes(1024)))
		c, _, _ := begin(t, g, "k", "", fpA)
		if err := c.Complete(context.Background(), &idempotency.Record{Status: 200, Body: make([]byte, 2048)}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := begin(t, g, "k", "", fpA); !errors.Is(err, idempotency.ErrNotReplayable) {
			t.Fatalf("duplicate = %v, want ErrNotReplayable (no second execution)", err)
		}
	})
}

func TestGuardHugeDurations(t *testing.T) {
	for _, name := range []string{"memory", "redis"} {
		t.Run(name, func(t *testing.T) {
			var store idempotency.Store = idempotency.NewMemoryStore()
			if name == "redis" {
				store = idempotency.NewRedisStore(redistest.Start(t).Client())
			}
			g := idempotency.New(store, idempotency.WithLease(math.MaxInt64),
				idempotency.WithRetention(math.MaxInt64), idempotency.WithStoreTimeout(math.MaxInt64))
			ctx := context.Background()
			c, _, err := g.Begin(ctx, "k", "", fpA)
			if err != nil || c == nil {
				t.Fatalf("Begin with MaxInt64 durations = %v, %v", c, err)
			}
			if !c.Deadline().After(time.Now().Add(100 * 365 * 24 * time.Hour)) {
				t.Fatalf("deadline %v: want far in the future, not wrapped around", c.Deadline())
			}
			if _, _, err := g.Begin(ctx, "k", "", fpA); !errors.Is(err, idempotency.ErrInFlight) {
				t.Fatalf("duplicate = %v, want ErrInFlight (the claim is live)", err)
			}
			if err := c.Complete(ctx, &idempotency.Record{Status: 200}); err != nil {
				t.Fatalf("Complete = %v", err)
			}
			if _, rec, err := g.Begin(ctx, "k", "", fpA); rec == nil || err != nil {
				t.Fatalf("replay = %v, %v", rec, err)
			}
		})
	}
}

func TestGuardExpiredDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := idempotency.New(idempotency.NewMemoryStore())
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		time.Sleep(time.Second)
		if _, _, err := g.Begin(ctx, "k", "", fpA); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Begin past the deadline = %v, want DeadlineExceeded", err)
		}
	})
}
