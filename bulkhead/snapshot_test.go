package bulkhead_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulkhead"
)

func figures(s bulwark.Snapshot) map[string]float64 {
	m := map[string]float64{}
	for _, f := range s.Figures {
		m[f.Name] = f.Value
	}
	return m
}

func TestSnapshot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var b bulwark.Snapshotter = newQuiet(2, bulkhead.WithMaxQueue(1), bulkhead.WithMaxWait(time.Second))
		bh := b.(*bulkhead.Bulkhead)
		s := b.Snapshot()
		if s.Name != "test" || s.Kind != "bulkhead" || s.State != "ok" || (s.Health != "" && s.Health != "ok") {
			t.Errorf("idle Snapshot() = %+v, want name test, kind bulkhead, state ok, health ok", s)
		}
		want := map[string]float64{"limit": 2, "in-flight": 0, "queued": 0, "refused": 0,
			"refused full": 0, "refused timeout": 0, "refused evicted": 0}
		if got := figures(s); !mapsEqual(got, want) {
			t.Errorf("idle figures = %v, want %v", got, want)
		}

		p1, _ := bh.TryAcquire()
		p2, _ := bh.TryAcquire()
		out := make(chan result, 2)
		queueCaller(prioCtx(sh), bh, 0, out, nil)
		synctest.Wait()
		if _, ok := bh.TryAcquire(); ok { // refused at critical: evicts the sheddable
			t.Fatal("TryAcquire() on a full bulkhead succeeded")
		}
		if r := <-out; !errors.Is(r.err, bulkhead.ErrEvicted) {
			t.Fatalf("queued caller: %v, want ErrEvicted", r.err)
		}
		queueCaller(context.Background(), bh, 1, out, nil)
		synctest.Wait()
		s = b.Snapshot()
		if s.State != "full" || s.Health != "warn" {
			t.Errorf("full Snapshot() state %q health %q, want full, warn", s.State, s.Health)
		}
		want = map[string]float64{"limit": 2, "in-flight": 2, "queued": 1, "refused": 2,
			"refused full": 1, "refused timeout": 0, "refused evicted": 1}
		if got := figures(s); !mapsEqual(got, want) {
			t.Errorf("full figures = %v, want %v", got, want)
		}
		time.Sleep(time.Second) // caller 1 runs out of time
		if r := <-out; !errors.Is(r.err, bulkhead.ErrMaxWait) {
			t.Fatalf("queued caller: %v, want ErrMaxWait", r.err)
		}
		p1.Release()
		p2.Release()
		s = b.Snapshot()
		if got := figures(s); got["refused timeout"] != 1 || got["refused"] != 3 || got["in-flight"] != 0 || s.State != "ok" {
			t.Errorf("after: state %q figures %v, want ok, 3 refused, 1 timeout, 0 in flight", s.State, got)
		}
	})
}

func mapsEqual(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
