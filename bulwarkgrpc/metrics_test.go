package bulwarkgrpc_test

import (
	"context"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarkgrpc"
	"github.com/bulwark-go/bulwark/internal/metrictest"
)

// count returns the value of the counter inst for the outcome and tier (0
// when inst was never collected); it fails the test when inst is not a
// Sum[int64].
func count(t *testing.T, r *metrictest.Reader, inst, outcome, priority string) int64 {
	t.Helper()
	if _, found := r.Metric(inst); found {
		if _, ok := r.Monotonic(inst); !ok {
			t.Fatalf("%s is not a Sum[int64]", inst)
		}
	}
	return r.Int64Total(inst, "bulwark.outcome", outcome, "bulwark.priority", priority)
}

func TestMetricsOutcomes(t *testing.T) {
	sm, cm := metrictest.New(t), metrictest.New(t)
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
	h := start(t, svc, serverOpts(gateway, bulwarkgrpc.WithMeterProvider(sm.Provider), bulwarkgrpc.WithName("edge")),
		clientOpts(bulwark.Chain(), bulwarkgrpc.WithMeterProvider(cm.Provider)))
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
		m        *metrictest.Reader
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
		if got := count(t, tt.m, tt.inst, tt.outcome, tt.priority); got != tt.want {
			t.Errorf("%s: %s{%s, %s} = %d, want %d", tt.name, tt.inst, tt.outcome, tt.priority, got, tt.want)
		}
	}
	all, edge := sm.Int64("bulwark.grpc.server.calls"), sm.Int64Where("bulwark.grpc.server.calls", "bulwark.policy.name", "edge")
	if len(all) == 0 || len(edge) != len(all) {
		t.Errorf("bulwark.grpc.server.calls = %v, want bulwark.policy.name = edge on every point", all)
	}
	for _, m := range []struct {
		r    *metrictest.Reader
		inst string
	}{{sm, "bulwark.grpc.server.calls"}, {cm, "bulwark.grpc.client.calls"}} {
		if got, want := m.r.Scopes(), []string{"github.com/bulwark-go/bulwark/bulwarkgrpc"}; !slices.Equal(got, want) {
			t.Errorf("%s: meters = %v, want %v", m.inst, got, want)
		}
	}
}
