package ratelimit_test

import (
	"context"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/ratelimit"
)

func keyCtx(key string) context.Context { return bulwark.WithKey(context.Background(), key) }

// takeAll takes CriticalPlus tokens of key at t until refused and returns
// how many it took.
func takeAll(k *ratelimit.Keyed, key string, t time.Time) int {
	ctx := bulwark.WithCallInfo(context.Background(), bulwark.CallInfo{Priority: bulwark.CriticalPlus, Key: key})
	n := 0
	for k.AllowAt(ctx, t) {
		n++
		if n > 1000 {
			panic("takeAll: no end")
		}
	}
	return n
}

func TestKeyedPerKey(t *testing.T) {
	k := ratelimit.NewKeyed("tenants", rate.Every(time.Hour), 10)
	tests := []struct {
		name string
		give string
		tier bulwark.Priority
		want int
	}{
		{"sheddable of a", "a", bulwark.Sheddable, 5},
		{"critical of a after it", "a", bulwark.Critical, 5},
		{"b has its own bucket", "b", bulwark.CriticalPlus, 10},
		{"no key", "", bulwark.Critical, 10},
		{"no key is one shared bucket", "", bulwark.CriticalPlus, 0},
	}
	for _, tt := range tests {
		ctx := bulwark.WithCallInfo(context.Background(), bulwark.CallInfo{Priority: tt.tier, Key: tt.give})
		got := 0
		for k.AllowAt(ctx, t0) {
			got++
		}
		if got != tt.want {
			t.Errorf("%s: admitted %d, want %d", tt.name, got, tt.want)
		}
	}
	if k.Keys() != 2 {
		t.Errorf("Keys() = %d, want 2 (the no-key bucket is not a key)", k.Keys())
	}
}

func TestKeyedKeyFunc(t *testing.T) {
	type tenantKey struct{}
	k := ratelimit.NewKeyed("tenants", rate.Every(time.Hour), 1, ratelimit.WithKeyFunc(func(ctx context.Context) string {
		s, _ := ctx.Value(tenantKey{}).(string)
		return s
	}), ratelimit.WithKeyFunc(nil))
	a := context.WithValue(context.Background(), tenantKey{}, "a")
	b := context.WithValue(keyCtx("a"), tenantKey{}, "b") // bulwark's key is ignored
	if !k.AllowAt(a, t0) || !k.AllowAt(b, t0) {
		t.Fatal("first calls of a and b refused, want admitted")
	}
	if k.AllowAt(a, t0) {
		t.Error("second call of a admitted, want refused")
	}
}

// TestKeyedOverflow fills the key table with partly spent buckets: new keys
// then share the overflow bucket, and a spent key is never refilled by
// eviction.
func TestKeyedOverflow(t *testing.T) {
	k := ratelimit.NewKeyed("tenants", 1, 2, ratelimit.WithMaxKeys(3))
	for i := 0; i < 3; i++ {
		if n := takeAll(k, "k"+strconv.Itoa(i), t0); n != 2 {
			t.Fatalf("k%d took %d, want 2", i, n)
		}
	}
	// k3 and k4 share the overflow bucket of 2 tokens.
	if n := takeAll(k, "k3", t0) + takeAll(k, "k4", t0); n != 2 {
		t.Errorf("k3 and k4 took %d from the overflow bucket, want 2 together", n)
	}
	if k.Keys() != 3 {
		t.Errorf("Keys() = %d, want 3", k.Keys())
	}
	// After 1 s every bucket holds 1 token: none is full, none evicted.
	t1 := t0.Add(time.Second)
	if n := takeAll(k, "k5", t1); n != 1 {
		t.Errorf("k5 at +1s took %d from the refilling overflow bucket, want 1", n)
	}
	if n := takeAll(k, "k0", t1); n != 1 {
		t.Errorf("k0 at +1s took %d, want 1: a spent key is never refilled by eviction", n)
	}
	// At +2.5 s k1 and k2 are full (k0 spent at +1 s holds 1.5): a new key
	// evicts a full one and gets its own bucket, and so does the next.
	t2 := t0.Add(2500 * time.Millisecond)
	if n := takeAll(k, "k6", t2); n != 2 {
		t.Errorf("k6 at +2.5s took %d, want its own full bucket of 2", n)
	}
	if n := takeAll(k, "k7", t2); n != 2 {
		t.Errorf("k7 at +2.5s took %d, want its own full bucket of 2", n)
	}
	if k.Keys() != 3 {
		t.Errorf("Keys() = %d, want 3 (k0, k6, k7; k1, k2 evicted)", k.Keys())
	}
	if n := takeAll(k, "k0", t2); n != 1 {
		t.Errorf("k0 at +2.5s took %d, want 1 (1.5 tokens)", n)
	}
	if n := takeAll(k, "k1", t2); n != 1 {
		t.Errorf("k1 after its eviction took %d, want the 1 token of the overflow bucket: the table is full of spent buckets", n)
	}
	t3 := t0.Add(4 * time.Second)
	if n := takeAll(k, "k1", t3); n != 2 {
		t.Errorf("k1 at +4s took %d, want a fresh bucket of 2 in place of a refilled one", n)
	}
	if got := k.QuotaAt("k1", bulwark.CriticalPlus, t2); got.Remaining != 0 {
		t.Errorf("QuotaAt(k1).Remaining = %d, want 0", got.Remaining)
	}
	if got := k.QuotaAt("absent", bulwark.CriticalPlus, t2); got.Remaining != 2 {
		t.Errorf("QuotaAt(absent).Remaining = %d, want a fresh bucket's 2", got.Remaining)
	}
}

// TestKeyedEvictionRace runs calls of two keys concurrently against a table
// of one key, so that sweeps evict buckets other calls are about to take
// from. At one instant the two keys may be admitted at most once each by
// their own buckets (burst 1) and once by the overflow bucket: a take from
// an evicted bucket must not be lost.
func TestKeyedEvictionRace(t *testing.T) {
	for round := 0; round < 200; round++ {
		k := ratelimit.NewKeyed("race", rate.Every(time.Hour), 1, ratelimit.WithMaxKeys(1))
		var wg sync.WaitGroup
		var mu sync.Mutex
		admitted := 0
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				ctx := keyCtx([]string{"a", "b"}[g%2])
				for i := 0; i < 3; i++ {
					if k.AllowAt(ctx, t0) {
						mu.Lock()
						admitted++
						mu.Unlock()
					}
				}
			}(g)
		}
		wg.Wait()
		if admitted > 3 {
			t.Fatalf("round %d: admitted %d at one instant, want at most 3", round, admitted)
		}
	}
}

// TestKeyedMillionKeys sends one call each for 1 000 000 distinct keys, 1 µs
// apart, through a table capped at 10 000 keys whose buckets refill in
// 20 ms (while 20 000 new keys arrive): the table stays under its cap, full
// buckets are evicted as they refill, the keys that find the table full of
// partly spent buckets share the overflow bucket, and the heap stays
// bounded. Under the race detector (or -short) it sends 100 000 keys: five
// refill periods, which still fill the table, evict and overflow.
func TestKeyedMillionKeys(t *testing.T) {
	const maxKeys = 10_000
	keys := 1_000_000
	if raceEnabled || testing.Short() {
		keys = 100_000
	}
	var key string
	k := ratelimit.NewKeyed("million", 50, 1, ratelimit.WithMaxKeys(maxKeys),
		ratelimit.WithKeyFunc(func(context.Context) string { return key }))
	ctx := context.Background()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	buf := make([]byte, 0, 16)
	maxLive := 0
	refused := 0
	for i := 0; i < keys; i++ {
		buf = strconv.AppendInt(append(buf[:0], "user-"...), int64(i), 10)
		key = string(buf)
		if !k.AllowAt(ctx, t0.Add(time.Duration(i)*time.Microsecond)) {
			refused++
		}
		if i%1000 == 0 {
			maxLive = max(maxLive, k.Keys())
		}
	}
	elapsed := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d keys in %v: %d live at the end (max seen %d), %d refused by the overflow bucket, heap growth %.1f MB",
		keys, elapsed, k.Keys(), maxLive, refused, float64(growth)/(1<<20))
	if maxLive > maxKeys || k.Keys() > maxKeys {
		t.Errorf("live keys reached %d, want at most %d", max(maxLive, k.Keys()), maxKeys)
	}
	if refused == 0 || refused > keys-maxKeys {
		t.Errorf("%d calls refused, want some (the overflow bucket) but not all", refused)
	}
	// A bucket refills in 20 ms, 20 000 keys: about every other new key
	// finds a full bucket to evict. Without eviction all but the first
	// 10 000 would share the overflow bucket and nearly all be refused.
	if refused > keys*3/4 {
		t.Errorf("%d of %d calls refused, want at most 3/4: evicting refilled buckets makes room", refused, keys)
	}
	if k.Keys() < maxKeys/2 {
		t.Errorf("Keys() = %d at the end, want the table in use (≥ %d)", k.Keys(), maxKeys/2)
	}
	if growth > 32<<20 {
		t.Errorf("heap grew by %d bytes for a table of %d keys, want under 32 MB", growth, maxKeys)
	}
	runtime.KeepAlive(k)
}

// TestKeyedEvictionTimeGoesBack: a key evicted at a late instant that comes
// back with an earlier one (callers race to the table, or AllowAt is given
// times out of order) must not get a bucket that lets it exceed burst +
// limit × elapsed: its new bucket has seen the instant of the eviction, as
// the old one had.
func TestKeyedEvictionTimeGoesBack(t *testing.T) {
	k := ratelimit.NewKeyed("back", 1, 2, ratelimit.WithMaxKeys(2))
	admitted := takeAll(k, "a", t0)
	if admitted != 2 {
		t.Fatalf("a took %d at t0, want 2", admitted)
	}
	if !k.AllowAt(keyCtx("c"), t0) {
		t.Fatal("c refused at t0, want admitted")
	}
	// At +3s a is full again: x evicts it.
	if !k.AllowAt(keyCtx("x"), t0.Add(3*time.Second)) {
		t.Fatal("x refused at +3s, want admitted")
	}
	// a comes back at +1s (c, full by then, is evicted for it), then at
	// +3.5s.
	admitted += takeAll(k, "a", t0.Add(time.Second))
	admitted += takeAll(k, "a", t0.Add(3500*time.Millisecond))
	if k.Keys() != 2 {
		t.Fatalf("Keys() = %d, want 2 (x and a): a must have had a bucket of its own", k.Keys())
	}
	if admitted > 5 {
		t.Errorf("a admitted %d times within 3.5 s, want at most burst + limit × 3.5 s = 5.5", admitted)
	}
}
