package metrictest

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
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
