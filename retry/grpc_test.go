package retry_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarkgrpc"
	"github.com/bulwark-go/bulwark/internal/metrictest"
	"github.com/bulwark-go/bulwark/internal/policytest"
	"github.com/bulwark-go/bulwark/retry"
)

// grpcBackend is a real gRPC server on 127.0.0.1 whose UnaryCall answers
// the n-th call (1-based) with respond(ctx, n) and records the
// bulwark-attempt metadata of each.
type grpcBackend struct {
	testgrpc.UnimplementedTestServiceServer
	respond  func(ctx context.Context, n int) error
	mu       sync.Mutex
	attempts []string
}

func (b *grpcBackend) UnaryCall(ctx context.Context, in *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	b.mu.Lock()
	b.attempts = append(b.attempts, strings.Join(md.Get("bulwark-attempt"), ","))
	n := len(b.attempts)
	b.mu.Unlock()
	if err := b.respond(ctx, n); err != nil {
		return nil, err
	}
	return &testgrpc.SimpleResponse{Payload: in.GetPayload()}, nil
}

func (b *grpcBackend) seen() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.attempts...)
}

// grpcClient starts b on 127.0.0.1:0 and returns a client whose unary
// calls go through the bulwarkgrpc client interceptor under r.
func grpcClient(t *testing.T, b *grpcBackend, r *retry.Retrier) testgrpc.TestServiceClient {
	t.Helper()
	_, conn := policytest.ServeGRPC(t, func(s *grpc.Server) { testgrpc.RegisterTestServiceServer(s, b) }, nil,
		grpc.WithUnaryInterceptor(bulwarkgrpc.UnaryClientInterceptor(r)))
	return testgrpc.NewTestServiceClient(conn)
}

// answer fails calls before okFrom (all when okFrom is 0) with code, and
// the grpc-retry-pushback-ms trailer when pushback is not "".
func answer(code codes.Code, okFrom int, pushback string) func(context.Context, int) error {
	return func(ctx context.Context, n int) error {
		if okFrom > 0 && n >= okFrom {
			return nil
		}
		if pushback != "" {
			_ = grpc.SetTrailer(ctx, metadata.Pairs("grpc-retry-pushback-ms", pushback))
		}
		return status.Error(code, "test: "+code.String())
	}
}

// retryInfo fails calls before okFrom with UNAVAILABLE carrying a RetryInfo
// detail of d.
func retryInfo(d time.Duration, okFrom int) func(context.Context, int) error {
	return func(ctx context.Context, n int) error {
		if n >= okFrom {
			return nil
		}
		st, err := status.New(codes.Unavailable, "test: busy").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(d)})
		if err != nil {
			return err
		}
		return st.Err()
	}
}

func TestGRPCPushback(t *testing.T) {
	const hint = 300 * time.Millisecond
	for _, tt := range []struct {
		name         string
		give         func(context.Context, int) error
		initial      time.Duration // backoff initial delay
		wantCode     codes.Code
		wantAttempts []string
		wantHint     bool          // a hint delay was recorded
		minElapsed   time.Duration // measured wait
		exhausted    bool          // want an *ExhaustedError
	}{
		{name: "pushback replaces backoff", give: answer(codes.Unavailable, 2, "300"), initial: time.Hour,
			wantCode: codes.OK, wantAttempts: []string{"1", "2"}, wantHint: true, minElapsed: hint},
		{name: "RetryInfo replaces backoff", give: retryInfo(hint, 2), initial: time.Hour,
			wantCode: codes.OK, wantAttempts: []string{"1", "2"}, wantHint: true, minElapsed: hint},
		{name: "resource exhausted with pushback retried", give: answer(codes.ResourceExhausted, 3, "300"), initial: time.Hour,
			wantCode: codes.OK, wantAttempts: []string{"1", "2", "3"}, wantHint: true, minElapsed: 2 * hint},
		{name: "negative pushback: do not retry", give: answer(codes.Unavailable, 0, "-1"), initial: time.Millisecond,
			wantCode: codes.Unavailable, wantAttempts: []string{"1"}},
		{name: "unparseable pushback: do not retry", give: answer(codes.Unavailable, 0, "soon"), initial: time.Millisecond,
			wantCode: codes.Unavailable, wantAttempts: []string{"1"}},
		{name: "zero pushback keeps backoff", give: answer(codes.Unavailable, 0, "0"), initial: time.Millisecond,
			wantCode: codes.Unavailable, wantAttempts: []string{"1", "2", "3"}},
		{name: "unavailable without hint backs off", give: answer(codes.Unavailable, 0, ""), initial: time.Millisecond,
			wantCode: codes.Unavailable, wantAttempts: []string{"1", "2", "3"}},
		{name: "resource exhausted without hint not retried", give: answer(codes.ResourceExhausted, 0, ""), initial: time.Millisecond,
			wantCode: codes.ResourceExhausted, wantAttempts: []string{"1"}},
		{name: "pushback past the deadline stops at once", give: answer(codes.Unavailable, 0, "60000"), initial: time.Millisecond,
			wantCode: codes.Unavailable, wantAttempts: []string{"1"}, exhausted: true},
		{name: "internal not retried", give: answer(codes.Internal, 0, ""), initial: time.Millisecond,
			wantCode: codes.Internal, wantAttempts: []string{"1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reader := metrictest.New(t)
			mp := reader.Provider
			r := retry.New(retry.WithInitialDelay(tt.initial), retry.WithMaxDelay(max(tt.initial, time.Second)),
				retry.WithRandomization(0), retry.WithMeterProvider(mp))
			reader.Keep(r)
			b := &grpcBackend{respond: tt.give}
			client := grpcClient(t, b, r)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			_, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{})
			el := time.Since(start)
			if got := status.Code(err); got != tt.wantCode {
				t.Errorf("UnaryCall() = %v (code %v), want code %v", err, got, tt.wantCode)
			}
			if got := b.seen(); strings.Join(got, " ") != strings.Join(tt.wantAttempts, " ") {
				t.Errorf("bulwark-attempt per call = %q, want %q", got, tt.wantAttempts)
			}
			n, _ := histCount(t, reader, "bulwark.retry.delay", "bulwark.reason", "hint")
			if got := n > 0; got != tt.wantHint {
				t.Errorf("hint delays recorded = %d, want some: %v", n, tt.wantHint)
			}
			if el < tt.minElapsed {
				t.Errorf("call took %v, want at least %v", el, tt.minElapsed)
			}
			if len(tt.wantAttempts) == 1 && el > time.Second {
				t.Errorf("call took %v, want it to return at once", el)
			}
			if tt.wantCode == codes.Unavailable && len(tt.wantAttempts) == 3 || tt.exhausted {
				var ex *retry.ExhaustedError
				if !errors.As(err, &ex) || ex.Attempts != len(tt.wantAttempts) || !errors.Is(err, bulwark.ErrRemoteUnavailable) {
					t.Errorf("UnaryCall() = %v, want *ExhaustedError{%d} around ErrRemoteUnavailable", err, len(tt.wantAttempts))
				}
			}
		})
	}
}
