package idempotency_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/idempotency"
)

var (
	tok1 = idempotency.Token{1}
	tok2 = idempotency.Token{2}
	fpA  = idempotency.Fingerprint{0xa}
	fpB  = idempotency.Fingerprint{0xb}
)

func mustClaim(t *testing.T, s idempotency.Store, key string, tok idempotency.Token, fp idempotency.Fingerprint, lease time.Duration, want idempotency.State) idempotency.Claim {
	t.Helper()
	c, err := s.Claim(context.Background(), key, tok, fp, lease)
	if err != nil {
		t.Fatalf("Claim(%s) error %v", key, err)
	}
	if c.State != want {
		t.Fatalf("Claim(%s) state = %v, want %v", key, c.State, want)
	}
	return c
}

// storeContract runs the rules every Store keeps. Each case runs inside
// bubble (synctest.Test for the memory store) with a store from newStore;
// lease is short enough to wait out with time.Sleep (fake time in a
// bubble, real time on Redis).
func storeContract(t *testing.T, bubble func(*testing.T, func(*testing.T)), newStore func(*testing.T) idempotency.Store, lease time.Duration) {
	ctx := context.Background()
	key := func(name string) string { return fmt.Sprintf("%064x", name) }
	sleep := time.Sleep
	run := func(name string, f func(t *testing.T, s idempotency.Store)) {
		t.Run(name, func(t *testing.T) {
			bubble(t, func(t *testing.T) { f(t, newStore(t)) })
		})
	}

	run("claim, in flight, complete, replay", func(t *testing.T, s idempotency.Store) {
		k := key("a")
		mustClaim(t, s, k, tok1, fpA, time.Minute, idempotency.Claimed)
		c := mustClaim(t, s, k, tok2, fpB, time.Minute, idempotency.InFlight)
		if c.Fingerprint != fpA || c.Lease <= 0 || c.Lease > time.Minute {
			t.Fatalf("in flight = %+v, want the owner's fingerprint and a lease in (0, 1m]", c)
		}
		if err := s.Complete(ctx, k, tok2, []byte("stolen"), time.Hour); !errors.Is(err, idempotency.ErrNotOwner) {
			t.Fatalf("Complete by a non-owner = %v, want ErrNotOwner", err)
		}
		if err := s.Release(ctx, k, tok2); !errors.Is(err, idempotency.ErrNotOwner) {
			t.Fatalf("Release by a non-owner = %v, want ErrNotOwner", err)
		}
		if err := s.Complete(ctx, k, tok1, []byte("record"), time.Hour); err != nil {
			t.Fatalf("Complete = %v", err)
		}
		c = mustClaim(t, s, k, tok2, fpA, time.Minute, idempotency.Done)
		if string(c.Record) != "record" {
			t.Fatalf("record = %q, want %q", c.Record, "record")
		}
		if err := s.Complete(ctx, k, tok1, []byte("again"), time.Hour); !errors.Is(err, idempotency.ErrNotOwner) {
			t.Fatalf("second Complete = %v, want ErrNotOwner", err)
		}
		if err := s.Release(ctx, k, tok1); !errors.Is(err, idempotency.ErrNotOwner) {
			t.Fatalf("Release after Complete = %v, want ErrNotOwner", err)
		}
	})
	run("release lets the next claim run", func(t *testing.T, s idempotency.Store) {
		k := key("b")
		mustClaim(t, s, k, tok1, fpA, time.Minute, idempotency.Claimed)
		if err := s.Release(ctx, k, tok1); err != nil {
			t.Fatalf("Release = %v", err)
		}
		mustClaim(t, s, k, tok2, fpA, time.Minute, idempotency.Claimed)
	})
	run("dead owner taken over, its late completion discarded", func(t *testing.T, s idempotency.Store) {
		k := key("c")
		mustClaim(t, s, k, tok1, fpA, lease, idempotency.Claimed)
		sleep(lease + lease/2)
		mustClaim(t, s, k, tok2, fpA, time.Minute, idempotency.Claimed)
		if err := s.Complete(ctx, k, tok1, []byte("late"), time.Hour); !errors.Is(err, idempotency.ErrNotOwner) {
			t.Fatalf("late Complete = %v, want ErrNotOwner", err)
		}
		if err := s.Complete(ctx, k, tok2, []byte("new"), time.Hour); err != nil {
			t.Fatalf("new owner's Complete = %v", err)
		}
		c := mustClaim(t, s, k, tok1, fpA, time.Minute, idempotency.Done)
		if string(c.Record) != "new" {
			t.Fatalf("record = %q, want the new owner's", c.Record)
		}
	})
	run("completion after the lease ended is discarded", func(t *testing.T, s idempotency.Store) {
		k := key("d")
		mustClaim(t, s, k, tok1, fpA, lease, idempotency.Claimed)
		sleep(lease + lease/2)
		if err := s.Complete(ctx, k, tok1, []byte("late"), time.Hour); !errors.Is(err, idempotency.ErrNotOwner) {
			t.Fatalf("Complete after the lease = %v, want ErrNotOwner", err)
		}
		mustClaim(t, s, k, tok2, fpA, time.Minute, idempotency.Claimed)
	})
	run("records expire after the retention", func(t *testing.T, s idempotency.Store) {
		k := key("e")
		mustClaim(t, s, k, tok1, fpA, time.Minute, idempotency.Claimed)
		if err := s.Complete(ctx, k, tok1, []byte("r"), lease); err != nil {
			t.Fatal(err)
		}
		mustClaim(t, s, k, tok2, fpA, time.Minute, idempotency.Done)
		sleep(lease + lease/2)
		mustClaim(t, s, k, tok2, fpA, time.Minute, idempotency.Claimed)
	})
	run("empty and binary records", func(t *testing.T, s idempotency.Store) {
		for i, rec := range [][]byte{{}, {0, 1, 2, 0xff, 'C'}} {
			k := key(fmt.Sprint("f", i))
			mustClaim(t, s, k, tok1, fpA, time.Minute, idempotency.Claimed)
			if err := s.Complete(ctx, k, tok1, rec, time.Hour); err != nil {
				t.Fatal(err)
			}
			c := mustClaim(t, s, k, tok2, fpA, time.Minute, idempotency.Done)
			if string(c.Record) != string(rec) {
				t.Fatalf("record = %x, want %x", c.Record, rec)
			}
		}
	})
}

func TestMemoryStoreContract(t *testing.T) {
	storeContract(t, synctest.Test,
		func(*testing.T) idempotency.Store { return idempotency.NewMemoryStore() }, 30*time.Second)
}

func TestMemoryStoreEvictsOldestRecordsNeverClaims(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		s := idempotency.NewMemoryStore(idempotency.WithMaxEntries(3))
		key := func(i int) string { return fmt.Sprintf("%064d", i) }
		for i := range 2 {
			mustClaim(t, s, key(i), tok1, fpA, time.Minute, idempotency.Claimed)
			if err := s.Complete(ctx, key(i), tok1, []byte{byte(i)}, time.Hour); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second)
		}
		// Full: a live claim, then the oldest record makes room.
		mustClaim(t, s, key(2), tok1, fpA, time.Minute, idempotency.Claimed)
		mustClaim(t, s, key(3), tok1, fpA, time.Minute, idempotency.Claimed)
		mustClaim(t, s, key(1), tok2, fpA, time.Minute, idempotency.Done)
		mustClaim(t, s, key(0), tok2, fpA, time.Minute, idempotency.Claimed) // evicted: claimable again; evicts 1
		// Now three live claims: a new key is refused, no claim evicted.
		if _, err := s.Claim(ctx, key(4), tok1, fpA, time.Minute); !errors.Is(err, idempotency.ErrStoreFull) ||
			!errors.Is(err, bulwark.ErrUnavailable) {
			t.Fatalf("Claim on a store full of claims = %v, want ErrStoreFull (ErrUnavailable)", err)
		}
		for _, i := range []int{0, 2, 3} {
			mustClaim(t, s, key(i), tok2, fpA, time.Minute, idempotency.InFlight)
		}
		// Dead claims make room once their lease ended.
		time.Sleep(2 * time.Minute)
		mustClaim(t, s, key(4), tok1, fpA, time.Minute, idempotency.Claimed)
		if n, _ := s.Len(); n > 3 {
			t.Fatalf("entries = %d, want at most 3", n)
		}
	})
}

func TestMemoryStoreBytesCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		const max = 4096
		s := idempotency.NewMemoryStore(idempotency.WithMaxBytes(max))
		for i := range 100 {
			k := fmt.Sprintf("%064d", i)
			mustClaim(t, s, k, tok1, fpA, time.Minute, idempotency.Claimed)
			if err := s.Complete(ctx, k, tok1, make([]byte, 500), time.Hour); err != nil {
				t.Fatalf("Complete %d = %v", i, err)
			}
			if _, b := s.Len(); b > max {
				t.Fatalf("bytes = %d after %d records, want <= %d", b, i, max)
			}
		}
		// A record that cannot fit even alone is refused, the claim kept.
		k := fmt.Sprintf("%064d", 1000)
		mustClaim(t, s, k, tok1, fpA, time.Minute, idempotency.Claimed)
		if err := s.Complete(ctx, k, tok1, make([]byte, max), time.Hour); !errors.Is(err, idempotency.ErrStoreFull) {
			t.Fatalf("Complete of a record over the cap = %v, want ErrStoreFull", err)
		}
		if err := s.Complete(ctx, k, tok1, []byte("small"), time.Hour); err != nil {
			t.Fatalf("Complete after ErrStoreFull = %v; the claim should still be owned", err)
		}
	})
}

func TestMemoryStoreCancelledClaim(t *testing.T) {
	s := idempotency.NewMemoryStore()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Claim(ctx, "k", tok1, fpA, time.Minute); !errors.Is(err, context.Canceled) {
		t.Fatalf("Claim with a cancelled context = %v, want context.Canceled", err)
	}
	if n, _ := s.Len(); n != 0 {
		t.Fatalf("entries = %d, want 0", n)
	}
}

// manyKeys claims and completes n distinct keys and checks the caps hold
// all along.
func manyKeys(t *testing.T, n int) {
	ctx := context.Background()
	const maxEntries, maxBytes = 10_000, 1 << 20
	s := idempotency.NewMemoryStore(idempotency.WithMaxEntries(maxEntries), idempotency.WithMaxBytes(maxBytes))
	rec := make([]byte, 64)
	var buf [64]byte
	for i := range n {
		k := string(fmt.Appendf(buf[:0], "%064d", i))
		if _, err := s.Claim(ctx, k, tok1, fpA, time.Minute); err != nil {
			t.Fatalf("Claim %d = %v", i, err)
		}
		if err := s.Complete(ctx, k, tok1, rec, time.Hour); err != nil {
			t.Fatalf("Complete %d = %v", i, err)
		}
		if i%1000 == 0 {
			if e, b := s.Len(); e > maxEntries || b > maxBytes {
				t.Fatalf("after %d keys: %d entries, %d bytes; caps %d, %d", i, e, b, maxEntries, maxBytes)
			}
		}
	}
	e, b := s.Len()
	if e > maxEntries || b > maxBytes || e == 0 {
		t.Fatalf("after %d keys: %d entries, %d bytes; caps %d, %d", n, e, b, maxEntries, maxBytes)
	}
	// The newest record is still there.
	c, err := s.Claim(ctx, fmt.Sprintf("%064d", n-1), tok2, fpA, time.Minute)
	if err != nil || c.State != idempotency.Done {
		t.Fatalf("newest key = %v, %v; want Done", c.State, err)
	}
}
