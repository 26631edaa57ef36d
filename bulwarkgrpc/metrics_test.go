package bulwarkgrpc_test

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarkgrpc"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// metrics is an SDK meter provider read by hand.
type metrics struct {
	mp     *sdkmetric.MeterProvider
	reader *sdkmetric.ManualReader
}

func newMetrics(t *testing.T) *metrics {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return &metrics{mp: mp, reader: reader}
}

// count returns the value of the counter name for the outcome and tier.
func (m *metrics) count(t *testing.T, name, outcome, priority string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := m.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != "github.com/bulwark-go/bulwark/bulwarkgrpc" {
			continue
		}
		for _, mm := range sm.Metrics {
			if mm.Name != name {
				continue
			}
			sum, ok := mm.Data.(metricdata.Sum[int64])
			if !ok {
				t.Fatalf("%s is %T, want a Sum[int64]", name, mm.Data)
			}
			for _, dp := range sum.DataPoints {
				o, _ := dp.Attributes.Value(attribute.Key("bulwark.outcome"))
				p, _ := dp.Attributes.Value(attribute.Key("bulwark.priority"))
				if o.AsString() == outcome && p.AsString() == priority {
					return dp.Value
				}
			}
		}
	}
	return 0
}

func TestMetricsOutcomes(t *testing.T) {
	sm, cm := newMetrics(t), newMetrics(t)
	refuse := make(chan bool, 1)
	gateway := bulwark.PolicyFunc(func(ctx context.Context, fn func(context.Context) error) error {
		select {
		case <-refuse:
			return bulwark.ErrUnavailable
		default:
			return fn(ctx)
		}
	})
	svc := &service{unary: func(_ context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		if s := in.GetResponseStatus(); s != nil {
			return nil, status.Error(codes.Code(s.GetCode()), s.GetMessage())
		}
		return &testpb.SimpleResponse{}, nil
	}}
	h := start(t, svc, serverOpts(gateway, bulwarkgrpc.WithMeterProvider(sm.mp), bulwarkgrpc.WithName("edge")),
		clientOpts(bulwark.Chain(), bulwarkgrpc.WithMeterProvider(cm.mp)))
	sheddable := bulwark.WithPriority(context.Background(), bulwark.Sheddable)
	with := func(c codes.Code) *testpb.SimpleRequest {
		return &testpb.SimpleRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(c), Message: "x"}}
	}
	_, _ = h.client.UnaryCall(sheddable, &testpb.SimpleRequest{})         // success
	_, _ = h.client.UnaryCall(sheddable, with(codes.NotFound))            // an answer: success
	_, _ = h.client.UnaryCall(sheddable, with(codes.Unavailable))         // failure
	_, _ = h.client.UnaryCall(context.Background(), with(codes.Internal)) // failure, critical
	refuse <- true
	_, _ = h.client.UnaryCall(sheddable, &testpb.SimpleRequest{}) // refused by the server

	tests := []struct {
		name     string
		m        *metrics
		inst     string
		outcome  string
		priority string
		want     int64
	}{
		{"server success", sm, "bulwark.grpc.server.calls", "success", "sheddable", 2},
		{"server failure", sm, "bulwark.grpc.server.calls", "failure", "sheddable", 1},
		{"server failure critical", sm, "bulwark.grpc.server.calls", "failure", "critical", 1},
		{"server refused", sm, "bulwark.grpc.server.calls", "refused", "sheddable", 1},
		{"server ignored", sm, "bulwark.grpc.server.calls", "ignored", "sheddable", 0},
		{"client success", cm, "bulwark.grpc.client.calls", "success", "sheddable", 2},
		// The server's refusal reaches the client as UNAVAILABLE: a
		// failure there.
		{"client failure", cm, "bulwark.grpc.client.calls", "failure", "sheddable", 2},
		{"client failure critical", cm, "bulwark.grpc.client.calls", "failure", "critical", 1},
		{"client refused", cm, "bulwark.grpc.client.calls", "refused", "sheddable", 0},
	}
	for _, tt := range tests {
		if got := tt.m.count(t, tt.inst, tt.outcome, tt.priority); got != tt.want {
			t.Errorf("%s: %s{%s, %s} = %d, want %d", tt.name, tt.inst, tt.outcome, tt.priority, got, tt.want)
		}
	}
	if got := sm.name(t, "bulwark.grpc.server.calls"); got != "edge" {
		t.Errorf("bulwark.policy.name = %q, want %q", got, "edge")
	}
}

// name returns the bulwark.policy.name of the first data point of inst.
func (m *metrics) name(t *testing.T, inst string) string {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := m.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, mm := range sm.Metrics {
			if sum, ok := mm.Data.(metricdata.Sum[int64]); ok && mm.Name == inst && len(sum.DataPoints) > 0 {
				v, _ := sum.DataPoints[0].Attributes.Value(attribute.Key("bulwark.policy.name"))
				return v.AsString()
			}
		}
	}
	return ""
}
