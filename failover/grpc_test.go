package failover_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/bulwarkgrpc"
	"github.com/bulwark-go/bulwark/failover"
	"github.com/bulwark-go/bulwark/internal/policytest"
)

// regionServer answers UnaryCall with its name, or UNAVAILABLE while down.
type regionServer struct {
	testgrpc.UnimplementedTestServiceServer
	name  string
	down  atomic.Bool
	calls atomic.Int64
}

func (s *regionServer) UnaryCall(ctx context.Context, in *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	s.calls.Add(1)
	if s.down.Load() {
		return nil, status.Error(codes.Unavailable, s.name+" is down")
	}
	return &testgrpc.SimpleResponse{Username: s.name}, nil
}

// The grpc-go model: one ClientConn per endpoint (each resolving and
// balancing its own addresses), and a Set that picks among them per call.
func TestGRPCAcrossTwoServers(t *testing.T) {
	a, b := &regionServer{name: "a"}, &regionServer{name: "b"}
	classify := grpc.WithUnaryInterceptor(bulwarkgrpc.UnaryClientInterceptor(bulwark.Chain()))
	_, connA := policytest.ServeGRPC(t, func(s *grpc.Server) { testgrpc.RegisterTestServiceServer(s, a) }, nil, classify)
	_, connB := policytest.ServeGRPC(t, func(s *grpc.Server) { testgrpc.RegisterTestServiceServer(s, b) }, nil, classify)
	clients := map[string]testgrpc.TestServiceClient{
		"eu": testgrpc.NewTestServiceClient(connA),
		"us": testgrpc.NewTestServiceClient(connB),
	}
	set := failover.New("regions", []string{"eu", "us"}, failover.WithRetryOnNext(),
		failover.WithBreakerOptions(breaker.WithConsecutiveFailures(3), breaker.WithBreakDuration(time.Minute)))
	defer set.Close()

	call := func() (string, error) {
		return bulwark.Get(context.Background(), set, func(ctx context.Context) (string, error) {
			ep, _ := failover.EndpointFrom(ctx)
			resp, err := clients[ep].UnaryCall(ctx, &testgrpc.SimpleRequest{})
			if err != nil {
				return "", err
			}
			return resp.GetUsername(), nil
		})
	}
	if got, err := call(); err != nil || got != "a" {
		t.Fatalf("call = %q, %v; want a", got, err)
	}
	a.down.Store(true)
	for i := range 10 {
		got, err := call()
		if err != nil || got != "b" {
			t.Fatalf("call %d with eu down = %q, %v; want b (retried on the next endpoint)", i, got, err)
		}
	}
	if n := a.calls.Load(); n != 1+3 {
		t.Errorf("eu served %d calls, want 4: its breaker opened after 3 failures", n)
	}
	if set.Status().Active != 1 || set.Breaker(0).State() != breaker.StateOpen {
		t.Errorf("Status() = %+v, want active us with eu's breaker open", set.Status())
	}

	// Both down: the last attempt's error comes back.
	b.down.Store(true)
	a.down.Store(true)
	_, err := call()
	if !errors.Is(err, bulwark.ErrRemoteUnavailable) {
		t.Errorf("call with both down = %v, want the downstream's UNAVAILABLE", err)
	}
}
