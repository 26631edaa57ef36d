package bulwarkgrpc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarkgrpc"
	"github.com/bulwark-go/bulwark/internal/metrictest"
	"github.com/bulwark-go/bulwark/internal/policytest"
)

// serverOpts wraps a server in both server interceptors.
func serverOpts(p bulwark.Policy, opts ...bulwarkgrpc.Option) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.UnaryInterceptor(bulwarkgrpc.UnaryServerInterceptor(p, opts...)),
		grpc.StreamInterceptor(bulwarkgrpc.StreamServerInterceptor(p, opts...)),
	}
}

func trustLoopback(ctx context.Context) bool {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return false
	}
	a, ok := p.Addr.(*net.TCPAddr)
	return ok && a.IP.IsLoopback()
}

func TestServerPriority(t *testing.T) {
	tests := []struct {
		name  string
		give  []string // bulwark-priority values sent
		trust func(context.Context) bool
		want  bulwark.Priority
	}{
		{name: "absent", want: bulwark.Critical},
		{name: "sheddable", give: []string{"sheddable"}, want: bulwark.Sheddable},
		{name: "upper case and underscore", give: []string{"SHEDDABLE_PLUS"}, want: bulwark.SheddablePlus},
		{name: "critical", give: []string{"critical"}, want: bulwark.Critical},
		{name: "critical-plus untrusted", give: []string{"critical-plus"}, want: bulwark.Critical},
		{name: "critical-plus from a peer not trusted", give: []string{"critical-plus"},
			trust: func(context.Context) bool { return false }, want: bulwark.Critical},
		{name: "critical-plus trusted", give: []string{"critical-plus"}, trust: trustLoopback, want: bulwark.CriticalPlus},
		{name: "lower tier from a trusted peer", give: []string{"sheddable"}, trust: trustLoopback, want: bulwark.Sheddable},
		{name: "unparseable", give: []string{"urgent"}, want: bulwark.Critical},
		{name: "first value wins", give: []string{"sheddable", "critical"}, want: bulwark.Sheddable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := make(chan bulwark.CallInfo, 2)
			svc := &service{
				unary: func(ctx context.Context, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
					got <- bulwark.CallInfoFrom(ctx)
					return &testpb.SimpleResponse{}, nil
				},
				output: func(_ *testpb.StreamingOutputCallRequest, s grpc.ServerStreamingServer[testpb.StreamingOutputCallResponse]) error {
					got <- bulwark.CallInfoFrom(s.Context())
					return nil
				},
			}
			opts := []bulwarkgrpc.Option{
				bulwarkgrpc.WithTrustPriority(tt.trust), // nil is ignored
				bulwarkgrpc.WithKeyFunc(func(ctx context.Context, method string) string {
					return method
				}),
			}
			h := start(t, svc, serverOpts(bulwark.Chain(), opts...))
			ctx := context.Background()
			for _, v := range tt.give {
				ctx = metadata.AppendToOutgoingContext(ctx, bulwarkgrpc.MetadataPriority, v)
			}
			if _, err := h.client.UnaryCall(ctx, &testpb.SimpleRequest{}); err != nil {
				t.Fatalf("UnaryCall() = %v, want nil", err)
			}
			if info := <-got; info.Priority != tt.want || info.Key != "/grpc.testing.TestService/UnaryCall" {
				t.Errorf("unary handler saw %+v, want priority %v and the method as key", info, tt.want)
			}
			st, err := h.client.StreamingOutputCall(ctx, &testpb.StreamingOutputCallRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.Recv(); err != io.EOF {
				t.Fatalf("Recv() = %v, want io.EOF", err)
			}
			if info := <-got; info.Priority != tt.want {
				t.Errorf("stream handler saw priority %v, want %v", info.Priority, tt.want)
			}
		})
	}
}

// retryInfo returns the RetryInfo delay in st's details.
func retryInfo(st *status.Status) (time.Duration, bool) {
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration(), true
		}
	}
	return 0, false
}

func TestServerRefusal(t *testing.T) {
	tests := []struct {
		name     string
		give     error
		want     codes.Code
		wantHint time.Duration // 0: no RetryInfo
		wantPush string        // "": no trailer
	}{
		{name: "rejected with hint", give: &hinted{bulwark.ErrRejected, 1500},
			want: codes.ResourceExhausted, wantHint: 1500 * time.Millisecond, wantPush: "1500"},
		{name: "unavailable", give: fmt.Errorf("test: open: %w", bulwark.ErrUnavailable), want: codes.Unavailable},
		{name: "unavailable with hint", give: &hinted{bulwark.ErrUnavailable, 2000},
			want: codes.Unavailable, wantHint: 2 * time.Second, wantPush: "2000"},
		{name: "remote rejected is never relayed", give: &hinted{bulwark.ErrRemoteRejected, 10},
			want: codes.Unavailable, wantHint: 10 * time.Millisecond, wantPush: "10"},
		{name: "remote unavailable", give: bulwark.ErrRemoteUnavailable, want: codes.Unavailable},
		{name: "timeout", give: bulwark.ErrTimeout, want: codes.DeadlineExceeded},
		{name: "other policy error", give: errors.New("test: broken policy"), want: codes.Internal},
		{name: "policy's own status passes", give: status.Error(codes.PermissionDenied, "no"), want: codes.PermissionDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ran := false
			svc := &service{
				unary: func(context.Context, *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
					ran = true
					return &testpb.SimpleResponse{}, nil
				},
				output: func(*testpb.StreamingOutputCallRequest, grpc.ServerStreamingServer[testpb.StreamingOutputCallResponse]) error {
					ran = true
					return nil
				},
			}
			h := start(t, svc, serverOpts(policytest.Refuse(tt.give)))
			check := func(t *testing.T, err error, trailer metadata.MD) {
				t.Helper()
				st := status.Convert(err)
				if st.Code() != tt.want {
					t.Errorf("code = %v, want %v (err %v)", st.Code(), tt.want, err)
				}
				hint, ok := retryInfo(st)
				if ok != (tt.wantHint > 0) || hint != tt.wantHint {
					t.Errorf("RetryInfo = %v (present %t), want %v", hint, ok, tt.wantHint)
				}
				if got := trailer.Get(bulwarkgrpc.MetadataPushback); len(got) > 0 != (tt.wantPush != "") ||
					len(got) > 0 && got[0] != tt.wantPush {
					t.Errorf("pushback trailer = %q, want %q", got, tt.wantPush)
				}
			}
			t.Run("unary", func(t *testing.T) {
				var trailer metadata.MD
				_, err := h.client.UnaryCall(context.Background(), &testpb.SimpleRequest{}, grpc.Trailer(&trailer))
				check(t, err, trailer)
			})
			t.Run("stream", func(t *testing.T) {
				st, err := h.client.StreamingOutputCall(context.Background(), &testpb.StreamingOutputCallRequest{})
				if err != nil {
					t.Fatal(err)
				}
				_, err = st.Recv()
				check(t, err, st.Trailer())
			})
			if ran {
				t.Error("the handler ran for a refused call")
			}
		})
	}
}

func TestServerFailureCodes(t *testing.T) {
	plain := errors.New("test: plain")
	tests := []struct {
		name        string
		opts        []bulwarkgrpc.Option
		give        error // the handler's answer
		wantFailure bool  // the policy saw an error
		wantCode    codes.Code
	}{
		{name: "ok", give: nil, wantCode: codes.OK},
		{name: "not found is an answer", give: status.Error(codes.NotFound, "x"), wantCode: codes.NotFound},
		{name: "invalid argument is an answer", give: status.Error(codes.InvalidArgument, "x"), wantCode: codes.InvalidArgument},
		{name: "unavailable", give: status.Error(codes.Unavailable, "x"), wantFailure: true, wantCode: codes.Unavailable},
		{name: "internal", give: status.Error(codes.Internal, "x"), wantFailure: true, wantCode: codes.Internal},
		{name: "data loss", give: status.Error(codes.DataLoss, "x"), wantFailure: true, wantCode: codes.DataLoss},
		{name: "plain error is unknown", give: plain, wantFailure: true, wantCode: codes.Unknown},
		{name: "configured: not found fails", opts: []bulwarkgrpc.Option{bulwarkgrpc.WithFailureCodes(codes.NotFound)},
			give: status.Error(codes.NotFound, "x"), wantFailure: true, wantCode: codes.NotFound},
		{name: "configured: unavailable is an answer", opts: []bulwarkgrpc.Option{bulwarkgrpc.WithFailureCodes(codes.NotFound)},
			give: status.Error(codes.Unavailable, "x"), wantCode: codes.Unavailable},
		{name: "handler's refusal is mapped", give: fmt.Errorf("db: %w", bulwark.ErrRejected),
			wantFailure: true, wantCode: codes.ResourceExhausted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &policytest.Recorder{}
			svc := &service{
				unary: func(context.Context, *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
					if tt.give != nil {
						return nil, tt.give
					}
					return &testpb.SimpleResponse{}, nil
				},
				bidi: func(grpc.BidiStreamingServer[testpb.StreamingOutputCallRequest, testpb.StreamingOutputCallResponse]) error {
					return tt.give
				},
			}
			h := start(t, svc, serverOpts(rec, tt.opts...))
			_, err := h.client.UnaryCall(context.Background(), &testpb.SimpleRequest{})
			if got := status.Code(err); got != tt.wantCode {
				t.Errorf("unary code = %v, want %v", got, tt.wantCode)
			}
			if got := rec.Last(); (got != nil) != tt.wantFailure {
				t.Errorf("unary: policy saw %v, want failure %t", got, tt.wantFailure)
			}
			if err != nil && tt.give != nil && status.Convert(err).Message() != status.Convert(tt.give).Message() {
				t.Errorf("message = %q, want the handler's %q", status.Convert(err).Message(), status.Convert(tt.give).Message())
			}
			st, err := h.client.FullDuplexCall(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			_ = st.CloseSend()
			if _, err := st.Recv(); status.Code(err) != tt.wantCode && !(tt.wantCode == codes.OK && err == io.EOF) {
				t.Errorf("stream Recv() = %v, want code %v", err, tt.wantCode)
			}
			if got := rec.Last(); (got != nil) != tt.wantFailure {
				t.Errorf("stream: policy saw %v, want failure %t", got, tt.wantFailure)
			}
		})
	}
}

func TestServerHandlerRemoteRejectedBecomesUnavailable(t *testing.T) {
	// The handler's own downstream answered RESOURCE_EXHAUSTED with a
	// hint; the client interceptor classified it and the handler returned
	// it. Our caller must see UNAVAILABLE, never the downstream's quota.
	down := start(t, &service{
		unary: func(ctx context.Context, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
			_ = grpc.SetTrailer(ctx, metadata.Pairs(bulwarkgrpc.MetadataPushback, "250"))
			return nil, status.Error(codes.ResourceExhausted, "downstream quota")
		},
	}, nil, grpc.WithUnaryInterceptor(bulwarkgrpc.UnaryClientInterceptor(bulwark.Chain())))
	up := start(t, &service{
		unary: func(ctx context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
			return down.client.UnaryCall(ctx, in)
		},
	}, serverOpts(bulwark.Chain()))
	var trailer metadata.MD
	_, err := up.client.UnaryCall(context.Background(), &testpb.SimpleRequest{}, grpc.Trailer(&trailer))
	st := status.Convert(err)
	if st.Code() != codes.Unavailable || st.Message() != "downstream quota" {
		t.Errorf("status = %v, want UNAVAILABLE with the downstream's message", st)
	}
	if hint, _ := retryInfo(st); hint != 250*time.Millisecond {
		t.Errorf("RetryInfo = %v, want 250ms", hint)
	}
	if got := trailer.Get(bulwarkgrpc.MetadataPushback); len(got) != 1 || got[0] != "250" {
		t.Errorf("pushback trailer = %q, want [250]", got)
	}
}

func TestServerTimeout(t *testing.T) {
	svc := &service{
		unary: func(ctx context.Context, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		},
	}
	h := start(t, svc, serverOpts(bulwark.Timeout(time.Millisecond)))
	_, err := h.client.UnaryCall(context.Background(), &testpb.SimpleRequest{})
	if got := status.Code(err); got != codes.DeadlineExceeded {
		t.Errorf("code = %v, want DeadlineExceeded (err %v)", got, err)
	}
}

// unaryInfo is the info of a direct call of a unary server interceptor.
var unaryInfo = &grpc.UnaryServerInfo{FullMethod: "/test.Service/Method"}

func TestServerTimeoutKeepsHandlerStatus(t *testing.T) {
	// Timing under synctest: the interceptor is called directly.
	synctest.Test(t, func(t *testing.T) {
		tests := []struct {
			name string
			give func(ctx context.Context) error
			want codes.Code
		}{
			{name: "plain error becomes deadline exceeded", give: func(ctx context.Context) error {
				<-ctx.Done()
				return errors.New("db: gave up")
			}, want: codes.DeadlineExceeded},
			{name: "handler's status passes", give: func(ctx context.Context) error {
				<-ctx.Done()
				return status.Error(codes.Aborted, "aborted")
			}, want: codes.Aborted},
		}
		for _, tt := range tests {
			in := bulwarkgrpc.UnaryServerInterceptor(bulwark.Timeout(time.Second))
			start := time.Now()
			_, err := in(context.Background(), nil, unaryInfo, func(ctx context.Context, _ any) (any, error) {
				return nil, tt.give(ctx)
			})
			if got := status.Code(err); got != tt.want {
				t.Errorf("%s: code = %v, want %v", tt.name, got, tt.want)
			}
			if d := time.Since(start); d != time.Second {
				t.Errorf("%s: took %v, want 1s", tt.name, d)
			}
		}
	})
}

func TestServerCallerWentAway(t *testing.T) {
	tests := []struct {
		name string
		ctx  func() context.Context
		want codes.Code
	}{
		{name: "cancelled", ctx: func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}, want: codes.Canceled},
		{name: "deadline", ctx: func() context.Context {
			ctx, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
			cancel()
			return ctx
		}, want: codes.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := metrictest.New(t)
			in := bulwarkgrpc.UnaryServerInterceptor(policytest.Refuse(bulwark.ErrUnavailable), bulwarkgrpc.WithMeterProvider(m.Provider))
			_, err := in(tt.ctx(), nil, unaryInfo, func(context.Context, any) (any, error) {
				t.Error("handler ran")
				return nil, nil
			})
			if got := status.Code(err); got != tt.want {
				t.Errorf("code = %v, want %v", got, tt.want)
			}
			if got := count(t, m, "bulwark.grpc.server.calls", "ignored", "critical"); got != 1 {
				t.Errorf("ignored calls = %d, want 1", got)
			}
		})
	}
}

func TestServerCancelledWhileServing(t *testing.T) {
	m := metrictest.New(t)
	rec := &policytest.Recorder{}
	entered := make(chan struct{})
	svc := &service{
		unary: func(ctx context.Context, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
			close(entered)
			<-ctx.Done()
			return nil, status.FromContextError(ctx.Err()).Err()
		},
	}
	h := start(t, svc, serverOpts(rec, bulwarkgrpc.WithMeterProvider(m.Provider)))
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-entered
		cancel()
	}()
	_, err := h.client.UnaryCall(ctx, &testpb.SimpleRequest{})
	if got := status.Code(err); got != codes.Canceled {
		t.Errorf("code = %v, want Canceled", got)
	}
	h.srv.GracefulStop() // the handler has returned and been counted
	if got := status.Code(rec.Last()); got != codes.Canceled {
		t.Errorf("policy saw %v, want the handler's CANCELED (so it can ignore it)", rec.Last())
	}
	if got := count(t, m, "bulwark.grpc.server.calls", "ignored", "critical"); got != 1 {
		t.Errorf("ignored calls = %d, want 1", got)
	}
}

func TestServerPanicPassesThrough(t *testing.T) {
	m := metrictest.New(t)
	type marker struct{}
	want := &marker{}
	in := bulwarkgrpc.UnaryServerInterceptor(bulwark.Timeout(time.Minute), bulwarkgrpc.WithMeterProvider(m.Provider))
	got := func() (v any) {
		defer func() { v = recover() }()
		_, _ = in(context.Background(), nil, unaryInfo, func(context.Context, any) (any, error) { panic(want) })
		return nil
	}()
	if got != want {
		t.Errorf("recovered %v, want the handler's panic value %v", got, want)
	}
	if got := count(t, m, "bulwark.grpc.server.calls", "failure", "critical"); got != 1 {
		t.Errorf("failure calls = %d, want 1", got)
	}
}

func TestServerNilPolicyPanics(t *testing.T) {
	for name, f := range map[string]func(){
		"UnaryServerInterceptor":  func() { bulwarkgrpc.UnaryServerInterceptor(nil) },
		"StreamServerInterceptor": func() { bulwarkgrpc.StreamServerInterceptor(nil) },
		"UnaryClientInterceptor":  func() { bulwarkgrpc.UnaryClientInterceptor(nil) },
		"StreamClientInterceptor": func() { bulwarkgrpc.StreamClientInterceptor(nil) },
	} {
		got := func() (v any) {
			defer func() { v = recover() }()
			f()
			return nil
		}()
		if want := "bulwarkgrpc: " + name + ": nil policy"; got != want {
			t.Errorf("%s(nil) panicked with %v, want %q", name, got, want)
		}
	}
}
