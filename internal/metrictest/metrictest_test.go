package metrictest

import (
	"context"
	"maps"
	"slices"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestInt64(t *testing.T) {
	r := New(t)
	c, err := r.Provider.Meter("test").Int64Counter("bulwark.test.calls")
	if err != nil {
		t.Fatal(err)
	}
	c.Add(context.Background(), 2, metric.WithAttributes(
		attribute.String("bulwark.policy.name", "api"), attribute.String("bulwark.outcome", "success")))
	c.Add(context.Background(), 5, metric.WithAttributes(
		attribute.String("bulwark.policy.name", "api"), attribute.String("bulwark.outcome", "failure")))
	got := r.Int64("bulwark.test.calls")
	if got[Key("bulwark.outcome", "success", "bulwark.policy.name", "api")] != 2 ||
		got[Key("bulwark.policy.name", "api", "bulwark.outcome", "failure")] != 5 || len(got) != 2 {
		t.Errorf("Int64() = %v", got)
	}
	if got := r.Int64("bulwark.test.absent"); len(got) != 0 {
		t.Errorf("Int64(absent) = %v, want empty", got)
	}
}

func TestInt64Where(t *testing.T) {
	r := New(t)
	c, err := r.Provider.Meter("test").Int64Counter("bulwark.test.calls")
	if err != nil {
		t.Fatal(err)
	}
	add := func(n int64, name, outcome string) {
		c.Add(context.Background(), n, metric.WithAttributes(
			attribute.String("bulwark.policy.name", name), attribute.String("bulwark.outcome", outcome)))
	}
	add(2, "api", "success")
	add(5, "api", "failure")
	add(7, "db", "success")
	tests := []struct {
		name string
		give []string
		want map[string]int64
	}{
		{"no filter", nil, map[string]int64{
			Key("bulwark.policy.name", "api", "bulwark.outcome", "success"): 2,
			Key("bulwark.policy.name", "api", "bulwark.outcome", "failure"): 5,
			Key("bulwark.policy.name", "db", "bulwark.outcome", "success"):  7,
		}},
		{"one key", []string{"bulwark.policy.name", "api"}, map[string]int64{
			"bulwark.outcome=success": 2, "bulwark.outcome=failure": 5,
		}},
		{"every key", []string{"bulwark.outcome", "success", "bulwark.policy.name", "db"}, map[string]int64{"": 7}},
		{"no match", []string{"bulwark.policy.name", "none"}, map[string]int64{}},
		{"unknown key", []string{"bulwark.priority", "critical"}, map[string]int64{}},
	}
	for _, tt := range tests {
		got := r.Int64Where("bulwark.test.calls", tt.give...)
		if !maps.Equal(got, tt.want) {
			t.Errorf("%s: Int64Where(%q) = %v, want %v", tt.name, tt.give, got, tt.want)
		}
	}
	if got, want := r.Int64Total("bulwark.test.calls", "bulwark.outcome", "success"), int64(9); got != want {
		t.Errorf("Int64Total(success) = %d, want %d", got, want)
	}
	if got := r.Int64Total("bulwark.test.absent"); got != 0 {
		t.Errorf("Int64Total(absent) = %d, want 0", got)
	}
}

func TestMonotonicAndScopes(t *testing.T) {
	r := New(t)
	if got := r.Scopes(); len(got) != 0 {
		t.Errorf("Scopes() before any instrument = %v, want none", got)
	}
	c, _ := r.Provider.Meter("b").Int64Counter("bulwark.test.calls")
	u, _ := r.Provider.Meter("a").Int64UpDownCounter("bulwark.test.keys")
	h, _ := r.Provider.Meter("a").Float64Histogram("bulwark.test.wait")
	c.Add(context.Background(), 1)
	u.Add(context.Background(), 1)
	h.Record(context.Background(), 1)
	tests := []struct {
		name          string
		give          string
		wantMonotonic bool
		wantOK        bool
	}{
		{"counter", "bulwark.test.calls", true, true},
		{"up-down counter", "bulwark.test.keys", false, true},
		{"histogram", "bulwark.test.wait", false, false},
		{"absent", "bulwark.test.absent", false, false},
	}
	for _, tt := range tests {
		if m, ok := r.Monotonic(tt.give); m != tt.wantMonotonic || ok != tt.wantOK {
			t.Errorf("%s: Monotonic(%s) = %v, %v, want %v, %v", tt.name, tt.give, m, ok, tt.wantMonotonic, tt.wantOK)
		}
	}
	if got, want := r.Scopes(), []string{"a", "b"}; !slices.Equal(got, want) {
		t.Errorf("Scopes() = %v, want %v", got, want)
	}
}

func TestHistogramWhere(t *testing.T) {
	r := New(t)
	h, err := r.Provider.Meter("test").Float64Histogram("bulwark.test.wait")
	if err != nil {
		t.Fatal(err)
	}
	rec := func(v float64, outcome string) {
		h.Record(context.Background(), v, metric.WithAttributes(
			attribute.String("bulwark.policy.name", "api"), attribute.String("bulwark.outcome", outcome)))
	}
	rec(1, "success")
	rec(2, "success")
	rec(5, "refused")
	got := r.HistogramWhere("bulwark.test.wait", "bulwark.policy.name", "api")
	if len(got) != 2 {
		t.Fatalf("HistogramWhere(api) has %d points, want 2: %v", len(got), got)
	}
	if dp := got["bulwark.outcome=success"]; dp.Count != 2 || dp.Sum != 3 {
		t.Errorf("success point: count %d sum %v, want count 2 sum 3", dp.Count, dp.Sum)
	}
	exact := r.HistogramWhere("bulwark.test.wait", "bulwark.outcome", "refused", "bulwark.policy.name", "api")
	if dp, ok := exact[""]; !ok || dp.Count != 1 || dp.Sum != 5 || len(exact) != 1 {
		t.Errorf("HistogramWhere(exact refused) = %v, want one point, count 1 sum 5", exact)
	}
	if got := r.HistogramWhere("bulwark.test.absent"); len(got) != 0 {
		t.Errorf("HistogramWhere(absent) = %v, want empty", got)
	}
}

func TestProviders(t *testing.T) {
	ps := Providers(t)
	if len(ps) != 2 || ps[0].Name != "noop" || ps[1].Name != "sdk" {
		t.Fatalf("Providers() = %v, want noop and sdk", ps)
	}
	if _, ok := ps[0].Provider.(noop.MeterProvider); !ok {
		t.Errorf("noop provider is %T, want noop.MeterProvider", ps[0].Provider)
	}
	if _, ok := ps[1].Provider.(*sdkmetric.MeterProvider); !ok {
		t.Errorf("sdk provider is %T, want *sdkmetric.MeterProvider", ps[1].Provider)
	}
}
