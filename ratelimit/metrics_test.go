package ratelimit_test

import (
	"context"
	"runtime"
	"slices"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/internal/metrictest"
	"github.com/bulwark-go/bulwark/ratelimit"
)

// sums returns the points of the int64 sum name, keyed by their attributes
// other than bulwark.policy.name, which must be "m" on every point; it
// checks that every meter is this package's.
func sums(t *testing.T, r *metrictest.Reader, name string) map[string]int64 {
	t.Helper()
	if got, want := r.Scopes(), []string{"github.com/bulwark-go/bulwark/ratelimit"}; !slices.Equal(got, want) {
		t.Errorf("meters = %v, want %v", got, want)
	}
	if _, ok := r.Monotonic(name); !ok {
		t.Fatalf("no int64 sum %s", name)
	}
	got := r.Int64Where(name, "bulwark.policy.name", "m")
	if all := r.Int64(name); len(all) != len(got) {
		t.Errorf("%s = %v, want bulwark.policy.name = m on every point", name, all)
	}
	return got
}

// decision renders the attributes of a decisions point besides the name.
func decision(d string, p bulwark.Priority) string {
	return metrictest.Key("bulwark.decision", d, "bulwark.priority", p.String())
}

func TestMetrics(t *testing.T) {
	t.Run("Limiter", func(t *testing.T) {
		r := metrictest.New(t)
		l := ratelimit.New("m", rate.Every(time.Hour), 10, ratelimit.WithMeterProvider(r.Provider))
		for i := 0; i < 7; i++ {
			l.Allow(tierCtx(bulwark.Sheddable)) // 5 allowed, 2 limited
		}
		for i := 0; i < 5; i++ {
			_ = l.Do(context.Background(), okFn) // 5 allowed (Critical)
		}
		_, _ = l.Admit(tierCtx(bulwark.CriticalPlus)) // limited
		ctx, cancel := context.WithTimeout(tierCtx(bulwark.SheddablePlus), time.Millisecond)
		defer cancel()
		_ = l.Wait(ctx) // one limited decision, not one per try
		got := sums(t, r, "bulwark.ratelimit.decisions")
		want := map[string]int64{
			decision("allowed", bulwark.Sheddable): 5, decision("limited", bulwark.Sheddable): 2,
			decision("allowed", bulwark.SheddablePlus): 0, decision("limited", bulwark.SheddablePlus): 1,
			decision("allowed", bulwark.Critical): 5, decision("limited", bulwark.Critical): 0,
			decision("allowed", bulwark.CriticalPlus): 0, decision("limited", bulwark.CriticalPlus): 1,
		}
		for k, w := range want {
			if got[k] != w {
				t.Errorf("decisions %s = %d, want %d", k, got[k], w)
			}
		}
		if len(got) != len(want) {
			t.Errorf("decisions has %d series, want %d: %v", len(got), len(want), got)
		}
	})
	t.Run("Keyed", func(t *testing.T) {
		r := metrictest.New(t)
		k := ratelimit.NewKeyed("m", rate.Every(time.Hour), 1, ratelimit.WithMaxKeys(2), ratelimit.WithMeterProvider(r.Provider))
		for _, key := range []string{"a", "b", "c", "d", "a"} {
			k.AllowAt(keyCtx(key), t0) // a, b own; c, d overflow (c allowed); a limited
		}
		if got := sums(t, r, "bulwark.ratelimit.decisions"); got[decision("allowed", bulwark.Critical)] != 3 || got[decision("limited", bulwark.Critical)] != 2 {
			t.Errorf("decisions = %v, want 3 allowed and 2 limited (critical)", got)
		}
		if got := sums(t, r, "bulwark.ratelimit.overflow"); got[""] != 2 {
			t.Errorf("overflow = %d, want 2", got[""])
		}
		mono, ok := r.Monotonic("bulwark.ratelimit.keys")
		if keys := r.Int64("bulwark.ratelimit.keys"); !ok || mono || len(keys) != 1 || r.Int64Total("bulwark.ratelimit.keys") != 2 {
			t.Errorf("keys = %v (an int64 sum: %v, monotonic: %v), want one point of 2 (a non-monotonic sum)", keys, ok, mono)
		}
		runtime.KeepAlive(k) // its metrics are held weakly
	})
}
