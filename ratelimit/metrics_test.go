package ratelimit_test

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"golang.org/x/time/rate"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/ratelimit"
)

func newReader() (*sdkmetric.ManualReader, ratelimit.Option) {
	r := sdkmetric.NewManualReader()
	return r, ratelimit.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(r)))
}

// sums collects the int64 sums named name, keyed by "decision/priority"
// (or "" for a metric with the policy name only).
func sums(t *testing.T, r *sdkmetric.ManualReader, name string) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	found := false
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != "github.com/bulwark-go/bulwark/ratelimit" {
			t.Errorf("meter %q, want github.com/bulwark-go/bulwark/ratelimit", sm.Scope.Name)
		}
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			found = true
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				t.Fatalf("%s is %T, want a Sum[int64]", name, m.Data)
			}
			for _, dp := range sum.DataPoints {
				if v, _ := dp.Attributes.Value("bulwark.policy.name"); v.AsString() != "m" {
					t.Errorf("%s: bulwark.policy.name = %q, want m", name, v.AsString())
				}
				d, _ := dp.Attributes.Value(attribute.Key("bulwark.decision"))
				p, _ := dp.Attributes.Value(attribute.Key("bulwark.priority"))
				k := ""
				if d.AsString() != "" {
					k = d.AsString() + "/" + p.AsString()
				}
				got[k] = dp.Value
			}
		}
	}
	if !found {
		t.Fatalf("no metric %s", name)
	}
	return got
}

func TestMetrics(t *testing.T) {
	t.Run("Limiter", func(t *testing.T) {
		r, mp := newReader()
		l := ratelimit.New("m", rate.Every(time.Hour), 10, mp)
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
			"allowed/sheddable": 5, "limited/sheddable": 2,
			"allowed/sheddable-plus": 0, "limited/sheddable-plus": 1,
			"allowed/critical": 5, "limited/critical": 0,
			"allowed/critical-plus": 0, "limited/critical-plus": 1,
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
		r, mp := newReader()
		k := ratelimit.NewKeyed("m", rate.Every(time.Hour), 1, ratelimit.WithMaxKeys(2), mp)
		for _, key := range []string{"a", "b", "c", "d", "a"} {
			k.AllowAt(keyCtx(key), t0) // a, b own; c, d overflow (c allowed); a limited
		}
		if got := sums(t, r, "bulwark.ratelimit.decisions"); got["allowed/critical"] != 3 || got["limited/critical"] != 2 {
			t.Errorf("decisions = %v, want 3 allowed and 2 limited (critical)", got)
		}
		if got := sums(t, r, "bulwark.ratelimit.overflow"); got[""] != 2 {
			t.Errorf("overflow = %d, want 2", got[""])
		}
		var rm metricdata.ResourceMetrics
		if err := r.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		keys := int64(-1)
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if m.Name == "bulwark.ratelimit.keys" {
					if s, ok := m.Data.(metricdata.Sum[int64]); ok && len(s.DataPoints) == 1 && !s.IsMonotonic {
						keys = s.DataPoints[0].Value
					}
				}
			}
		}
		if keys != 2 {
			t.Errorf("keys = %d, want 2 (a non-monotonic sum)", keys)
		}
	})
}
