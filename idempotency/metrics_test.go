package idempotency_test

import (
	"context"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/internal/metrictest"
)

func TestMemoryStoreMetrics(t *testing.T) {
	r := metrictest.New(t)
	s := idempotency.NewMemoryStore(idempotency.WithMeterProvider(r.Provider))
	r.Keep(s)
	ctx := context.Background()
	mustClaim(t, s, "a", tok1, fpA, time.Minute, idempotency.Claimed)
	mustClaim(t, s, "b", tok1, fpA, time.Minute, idempotency.Claimed)
	if err := s.Complete(ctx, "b", tok1, make([]byte, 100), time.Hour); err != nil {
		t.Fatal(err)
	}
	n, b := s.Len()
	if got := r.Int64Total("bulwark.idempotency.store.entries"); got != 2 || int64(n) != got {
		t.Errorf("store.entries = %d, want 2 (Len %d)", got, n)
	}
	if got := r.Int64Total("bulwark.idempotency.store.bytes"); got != b || got < 100 {
		t.Errorf("store.bytes = %d, want %d (at least the record's 100)", got, b)
	}
	if mono, ok := r.Monotonic("bulwark.idempotency.store.entries"); !ok || mono {
		t.Errorf("store.entries monotonic = %v, %v; want an up-down counter", mono, ok)
	}
	_ = s.Close()
	if _, ok := r.Metric("bulwark.idempotency.store.entries"); ok {
		if got := r.Int64Total("bulwark.idempotency.store.entries"); got != 0 {
			t.Errorf("after Close store.entries = %d, want no report", got)
		}
	}
}

func TestGuardMetricsNotCountedWithoutKey(t *testing.T) {
	r := metrictest.New(t)
	g := idempotency.New(idempotency.NewMemoryStore(), idempotency.WithMeterProvider(r.Provider), idempotency.WithName("payments"))
	r.Keep(g)
	if k, err := g.Key(nil); k != "" || err != nil {
		t.Fatalf("Key(nil) = %q, %v", k, err)
	}
	if got := r.Int64Total("bulwark.idempotency.requests"); got != 0 {
		t.Fatalf("requests = %d for a request without a key, want 0", got)
	}
	_, _ = g.Key([]string{""})
	if got := r.Int64Total("bulwark.idempotency.requests", "bulwark.result", "invalid", "bulwark.policy.name", "payments"); got != 1 {
		t.Fatalf("requests{invalid, payments} = %d, want 1", got)
	}
}
