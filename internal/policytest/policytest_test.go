package policytest_test

import (
	"context"
	"errors"
	"runtime"
	"testing"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarktest"
	"github.com/bulwark-go/bulwark/internal/policytest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var errBoom = errors.New("boom")

// TestPolicyContract: a Gate and a Recorder keep the Policy contract
// (PassThrough, which runs fn even under an ended context, on purpose does
// not).
func TestPolicyContract(t *testing.T) {
	t.Run("Gate", func(t *testing.T) {
		bulwarktest.TestPolicy(t, func() bulwark.Policy { return &policytest.Gate{Limit: 100} })
	})
	t.Run("Recorder", func(t *testing.T) {
		bulwarktest.TestPolicy(t, func() bulwark.Policy { return &policytest.Recorder{} })
	})
}

func TestPassThroughAndRefuse(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		give    bulwark.Policy
		ctx     context.Context
		want    error
		wantRan bool
	}{
		{"pass-through", policytest.PassThrough, context.Background(), errBoom, true},
		{"refuse", policytest.Refuse(bulwark.ErrRejected), context.Background(), bulwark.ErrRejected, false},
		{"refuse, ended context", policytest.Refuse(bulwark.ErrRejected), cancelled, context.Canceled, false},
	}
	for _, tt := range tests {
		ran := false
		err := tt.give.Do(tt.ctx, func(context.Context) error { ran = true; return errBoom })
		if !errors.Is(err, tt.want) || ran != tt.wantRan {
			t.Errorf("%s: Do() = %v, ran %v; want %v, ran %v", tt.name, err, ran, tt.want, tt.wantRan)
		}
	}
}

func TestRecorder(t *testing.T) {
	r := &policytest.Recorder{}
	if got := r.Last(); got != policytest.ErrNeverRan {
		t.Errorf("Last() before any call = %v, want ErrNeverRan", got)
	}
	for _, give := range []error{errBoom, nil} {
		if err := r.Do(context.Background(), func(context.Context) error { return give }); err != give {
			t.Errorf("Do() = %v, want %v", err, give)
		}
		if got := r.Last(); got != give {
			t.Errorf("Last() = %v, want %v", got, give)
		}
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	if err := r.Do(cancelled, func(context.Context) error { ran = true; return errBoom }); !errors.Is(err, context.Canceled) || ran {
		t.Errorf("Do(cancelled) = %v, ran %v; want context.Canceled, not run", err, ran)
	}
	if got := r.Last(); got != nil {
		t.Errorf("Last() after a refused call = %v, want the nil of the call before", got)
	}
}

func TestGate(t *testing.T) {
	g := &policytest.Gate{Limit: 1, Notify: make(chan error, 4)}
	done, err := g.Admit(context.Background())
	if err != nil {
		t.Fatalf("Admit() = %v, want a slot", err)
	}
	if _, err := g.Admit(context.Background()); !errors.Is(err, policytest.ErrGateFull) || !errors.Is(err, bulwark.ErrUnavailable) {
		t.Errorf("Admit() when full = %v, want ErrGateFull (ErrUnavailable)", err)
	}
	if err := g.Do(context.Background(), func(context.Context) error { return nil }); !errors.Is(err, policytest.ErrGateFull) {
		t.Errorf("Do() when full = %v, want ErrGateFull", err)
	}
	if inUse, released := g.State(); inUse != 1 || len(released) != 0 {
		t.Errorf("State() = %d, %v; want 1, none", inUse, released)
	}
	done(errBoom)
	done(nil) // a second done does nothing
	if got := <-g.Notify; got != errBoom {
		t.Errorf("Notify got %v, want %v", got, errBoom)
	}
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		_ = g.Do(context.Background(), func(context.Context) error { runtime.Goexit(); return nil })
	}()
	<-exited
	func() {
		defer func() { _ = recover() }()
		_ = g.Do(context.Background(), func(context.Context) error { panic("boom") })
	}()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := g.Admit(cancelled); !errors.Is(err, context.Canceled) {
		t.Errorf("Admit(cancelled) = %v, want context.Canceled", err)
	}
	inUse, released := g.State()
	if inUse != 0 || len(released) != 3 || released[0] != errBoom || released[1] != policytest.ErrPanicked || released[2] != policytest.ErrPanicked {
		t.Errorf("State() = %d, %v; want 0, [%v %v %v]", inUse, released, errBoom, policytest.ErrPanicked, policytest.ErrPanicked)
	}
	if len(g.Notify) != 2 {
		t.Errorf("Notify holds %d, want 2 (the Goexit and the panic)", len(g.Notify))
	}
}

type echo struct {
	testpb.UnimplementedTestServiceServer
}

func (echo) UnaryCall(_ context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	return &testpb.SimpleResponse{Payload: in.GetPayload()}, nil
}

func TestServeGRPC(t *testing.T) {
	var intercepted int
	count := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		intercepted++
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	srv, conn := policytest.ServeGRPC(t, func(s *grpc.Server) { testpb.RegisterTestServiceServer(s, echo{}) }, nil,
		grpc.WithUnaryInterceptor(count))
	client := testpb.NewTestServiceClient(conn)
	resp, err := client.UnaryCall(context.Background(), &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("hi")}})
	if err != nil || string(resp.GetPayload().GetBody()) != "hi" {
		t.Fatalf("UnaryCall() = %v, %v; want the payload echoed", resp, err)
	}
	if intercepted != 1 {
		t.Errorf("client interceptor ran %d times, want 1 (copts applied)", intercepted)
	}
	if _, err := client.EmptyCall(context.Background(), &testpb.Empty{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("EmptyCall() = %v, want Unimplemented", err)
	}
	srv.Stop()
	if _, err := client.UnaryCall(context.Background(), &testpb.SimpleRequest{}); status.Code(err) != codes.Unavailable {
		t.Errorf("UnaryCall() after Stop = %v, want Unavailable", err)
	}
}
