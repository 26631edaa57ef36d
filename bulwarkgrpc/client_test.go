package bulwarkgrpc_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarkgrpc"
	"github.com/bulwark-go/bulwark/internal/metrictest"
	"github.com/bulwark-go/bulwark/internal/policytest"
)

func clientOpts(p bulwark.Policy, opts ...bulwarkgrpc.Option) grpc.DialOption {
	return grpc.WithUnaryInterceptor(bulwarkgrpc.UnaryClientInterceptor(p, opts...))
}

func TestClientClassify(t *testing.T) {
	withRetryInfo := func(c codes.Code, d time.Duration) *status.Status {
		st, err := status.New(c, "busy").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(d)})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	tests := []struct {
		name          string
		give          *status.Status
		push          string // grpc-retry-pushback-ms sent, "" none
		wantClass     error  // nil: not classified
		wantPolicyNil bool   // the policy saw a success
		wantHint      time.Duration
		wantRetryable string // "", "true", "false"
	}{
		{name: "unavailable", give: status.New(codes.Unavailable, "down"), wantClass: bulwark.ErrRemoteUnavailable},
		{name: "unavailable with RetryInfo", give: withRetryInfo(codes.Unavailable, 2*time.Second),
			wantClass: bulwark.ErrRemoteUnavailable, wantHint: 2 * time.Second},
		{name: "resource exhausted", give: status.New(codes.ResourceExhausted, "quota"), wantClass: bulwark.ErrRemoteRejected},
		{name: "resource exhausted with pushback", give: status.New(codes.ResourceExhausted, "quota"), push: "300",
			wantClass: bulwark.ErrRemoteRejected, wantHint: 300 * time.Millisecond, wantRetryable: "true"},
		{name: "RetryInfo and pushback", give: withRetryInfo(codes.ResourceExhausted, time.Second), push: "1000",
			wantClass: bulwark.ErrRemoteRejected, wantHint: time.Second, wantRetryable: "true"},
		{name: "pushback zero", give: status.New(codes.Unavailable, "down"), push: "0",
			wantClass: bulwark.ErrRemoteUnavailable, wantRetryable: "true"},
		{name: "negative pushback", give: status.New(codes.Unavailable, "down"), push: "-1",
			wantClass: bulwark.ErrRemoteUnavailable, wantRetryable: "false"},
		{name: "unparseable pushback", give: status.New(codes.Unavailable, "down"), push: "soon",
			wantClass: bulwark.ErrRemoteUnavailable, wantRetryable: "false"},
		{name: "internal is an unclassified failure", give: status.New(codes.Internal, "bug")},
		{name: "internal with negative pushback", give: status.New(codes.Internal, "bug"), push: "-1",
			wantRetryable: "false"},
		{name: "data loss with unparseable pushback", give: status.New(codes.DataLoss, "gone"), push: "later",
			wantRetryable: "false"},
		{name: "unknown with pushback", give: status.New(codes.Unknown, "?"), push: "200",
			wantHint: 200 * time.Millisecond, wantRetryable: "true"},
		{name: "not found is an answer", give: status.New(codes.NotFound, "none"), wantPolicyNil: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := &service{
				unary: func(ctx context.Context, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
					if tt.push != "" {
						_ = grpc.SetTrailer(ctx, metadata.Pairs(bulwarkgrpc.MetadataPushback, tt.push))
					}
					return nil, tt.give.Err()
				},
			}
			rec := &policytest.Recorder{}
			h := start(t, svc, nil, clientOpts(rec))
			_, err := h.client.UnaryCall(context.Background(), &testpb.SimpleRequest{})

			// The caller sees the downstream's status, details included.
			st, ok := status.FromError(err)
			if !ok || st.Code() != tt.give.Code() || st.Message() != tt.give.Message() ||
				len(st.Details()) != len(tt.give.Details()) {
				t.Errorf("status.FromError(err) = %v, %t, want %v", st, ok, tt.give)
			}
			perr := rec.Last()
			if tt.wantPolicyNil {
				if perr != nil {
					t.Errorf("policy saw %v, want nil", perr)
				}
				return
			}
			if perr == nil {
				t.Fatal("policy saw nil, want an error")
			}
			for _, class := range []error{bulwark.ErrRemoteUnavailable, bulwark.ErrRemoteRejected} {
				if got, want := errors.Is(perr, class), class == tt.wantClass; got != want {
					t.Errorf("errors.Is(policy error, %v) = %t, want %t", class, got, want)
				}
				if got, want := errors.Is(err, class), class == tt.wantClass; got != want {
					t.Errorf("errors.Is(caller error, %v) = %t, want %t", class, got, want)
				}
			}
			if got := status.Code(perr); got != tt.give.Code() {
				t.Errorf("status.Code(policy error) = %v, want %v", got, tt.give.Code())
			}
			hint, _ := bulwark.RetryAfter(perr)
			if hint != tt.wantHint {
				t.Errorf("RetryAfter = %v, want %v", hint, tt.wantHint)
			}
			retryable, ok := bulwark.Retryable(perr)
			if got := map[bool]string{true: fmt.Sprint(retryable)}[ok]; got != tt.wantRetryable {
				t.Errorf("Retryable = %q, want %q", got, tt.wantRetryable)
			}
			if tt.wantClass != nil {
				var re *bulwarkgrpc.RemoteError
				if !errors.As(err, &re) || re.GRPCStatus().Code() != tt.give.Code() {
					t.Errorf("errors.As(err, *RemoteError) failed for %v", err)
				}
				if !strings.Contains(err.Error(), tt.give.Message()) {
					t.Errorf("Error() = %q, want it to keep %q", err.Error(), tt.give.Message())
				}
			}
		})
	}
}

func TestClientRefusal(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name     string
		ctx      context.Context
		give     error
		want     codes.Code
		wantHint time.Duration
		outcome  string
	}{
		{name: "unavailable", ctx: context.Background(), give: &hinted{bulwark.ErrUnavailable, 1200},
			want: codes.Unavailable, wantHint: 1200 * time.Millisecond, outcome: "refused"},
		{name: "rejected", ctx: context.Background(), give: fmt.Errorf("limit: %w", bulwark.ErrRejected),
			want: codes.ResourceExhausted, outcome: "refused"},
		{name: "other", ctx: context.Background(), give: errors.New("test: odd"), want: codes.Unknown, outcome: "refused"},
		{name: "cancelled caller", ctx: cancelled, give: bulwark.ErrUnavailable, want: codes.Canceled, outcome: "ignored"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var served atomic.Int32
			svc := &service{unary: func(context.Context, *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
				served.Add(1)
				return &testpb.SimpleResponse{}, nil
			}}
			m := metrictest.New(t)
			h := start(t, svc, nil, clientOpts(policytest.Refuse(tt.give), bulwarkgrpc.WithMeterProvider(m.Provider)))
			_, err := h.client.UnaryCall(tt.ctx, &testpb.SimpleRequest{})
			if got := status.Code(err); got != tt.want {
				t.Errorf("status.Code(err) = %v, want %v (err %v)", got, tt.want, err)
			}
			if tt.ctx.Err() == nil && !errors.Is(err, tt.give) {
				t.Errorf("errors.Is(err, policy's error) = false for %v, want true", err)
			}
			if hint, _ := bulwark.RetryAfter(err); hint != tt.wantHint {
				t.Errorf("RetryAfter = %v, want %v", hint, tt.wantHint)
			}
			if got, _ := retryInfo(status.Convert(err)); got != tt.wantHint {
				t.Errorf("RetryInfo = %v, want %v", got, tt.wantHint)
			}
			if n := served.Load(); n != 0 {
				t.Errorf("the server served %d calls, want 0", n)
			}
			if got := count(t, m, "bulwark.grpc.client.calls", tt.outcome, "critical"); got != 1 {
				t.Errorf("%s calls = %d, want 1", tt.outcome, got)
			}
		})
	}
}

func TestClientTimeout(t *testing.T) {
	// Whether the client's timer, the server's copy of the deadline or
	// grpc-go's reading of the clock reports it first, the error is our
	// timeout's.
	block := make(chan struct{})
	defer close(block)
	tests := []struct {
		name    string
		handler func(ctx context.Context) error
	}{
		{name: "server never answers", handler: func(ctx context.Context) error {
			<-block
			return ctx.Err()
		}},
		{name: "server answers at its deadline", handler: func(ctx context.Context) error {
			<-ctx.Done()
			return status.FromContextError(ctx.Err()).Err()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := &service{unary: func(ctx context.Context, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
				return nil, tt.handler(ctx)
			}}
			m := metrictest.New(t)
			h := start(t, svc, nil, clientOpts(bulwark.Timeout(20*time.Millisecond), bulwarkgrpc.WithMeterProvider(m.Provider)))
			for i := 0; i < 5; i++ {
				_, err := h.client.UnaryCall(context.Background(), &testpb.SimpleRequest{})
				if !errors.Is(err, bulwark.ErrTimeout) {
					t.Fatalf("call %d: errors.Is(%v, ErrTimeout) = false, want true", i, err)
				}
				if got := status.Code(err); got != codes.DeadlineExceeded {
					t.Fatalf("call %d: status.Code(err) = %v, want DeadlineExceeded", i, got)
				}
			}
			if got := count(t, m, "bulwark.grpc.client.calls", "failure", "critical"); got != 5 {
				t.Errorf("failures = %d, want 5 (our own timeout is a failure)", got)
			}
		})
	}
}

func TestClientPropagation(t *testing.T) {
	tests := []struct {
		name         string
		ctx          context.Context
		opts         []bulwarkgrpc.Option
		wantPriority []string
		wantAttempt  []string
	}{
		{name: "defaults", ctx: context.Background(), wantPriority: []string{"critical"}, wantAttempt: []string{"1"}},
		{name: "tier and attempt",
			ctx:          bulwark.WithCallInfo(context.Background(), bulwark.CallInfo{Priority: bulwark.SheddablePlus, Attempt: 3}),
			wantPriority: []string{"sheddable-plus"}, wantAttempt: []string{"3"}},
		{name: "not propagated",
			ctx: bulwark.WithPriority(context.Background(), bulwark.CriticalPlus),
			opts: []bulwarkgrpc.Option{bulwarkgrpc.WithPriorityPropagation(func(_ context.Context, method string) bool {
				return method != "/grpc.testing.TestService/UnaryCall"
			})},
			wantAttempt: []string{"1"}},
		{name: "invalid tier sent as critical", ctx: bulwark.WithPriority(context.Background(), 7),
			wantPriority: []string{"critical"}, wantAttempt: []string{"1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, got := startCapturing(t, tt.opts...)
			if _, err := h.client.UnaryCall(tt.ctx, &testpb.SimpleRequest{}); err != nil {
				t.Fatal(err)
			}
			md := <-got
			if p := md.Get(bulwarkgrpc.MetadataPriority); fmt.Sprint(p) != fmt.Sprint(tt.wantPriority) {
				t.Errorf("bulwark-priority = %q, want %q", p, tt.wantPriority)
			}
			if a := md.Get(bulwarkgrpc.MetadataAttempt); fmt.Sprint(a) != fmt.Sprint(tt.wantAttempt) {
				t.Errorf("bulwark-attempt = %q, want %q", a, tt.wantAttempt)
			}
			if a := md.Get("grpc-previous-rpc-attempts"); len(a) != 0 {
				t.Errorf("grpc-previous-rpc-attempts = %q, want none on a first attempt", a)
			}
		})
	}
}

func TestPriorityThroughCallGraph(t *testing.T) {
	// caller → front (server and client interceptors) → back. The tier
	// back sees is front's effective tier: an untrusted critical-plus
	// arrives as critical, a sheddable stays sheddable.
	seen := make(chan string, 1)
	back := start(t, &service{unary: func(ctx context.Context, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		seen <- strings.Join(incoming(ctx, bulwarkgrpc.MetadataPriority), ",")
		return &testpb.SimpleResponse{}, nil
	}}, serverOpts(bulwark.Chain()))
	conn, err := grpc.NewClient(back.conn.Target(), grpc.WithTransportCredentials(insecureCreds()),
		clientOpts(bulwark.Chain()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	downstream := testpb.NewTestServiceClient(conn)
	front := start(t, &service{unary: func(ctx context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		return downstream.UnaryCall(ctx, in)
	}}, serverOpts(bulwark.Chain()))
	for _, tt := range []struct{ give, want string }{
		{"critical-plus", "critical"},
		{"sheddable", "sheddable"},
		{"", "critical"},
	} {
		ctx := context.Background()
		if tt.give != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, bulwarkgrpc.MetadataPriority, tt.give)
		}
		if _, err := front.client.UnaryCall(ctx, &testpb.SimpleRequest{}); err != nil {
			t.Fatal(err)
		}
		if got := <-seen; got != tt.want {
			t.Errorf("sent %q: back saw bulwark-priority %q, want %q", tt.give, got, tt.want)
		}
	}
}

// retrier is a minimal retry policy: it retries ErrRemoteUnavailable up to
// n attempts, numbering them with bulwark.WithAttempt.
func retrier(n int) bulwark.Policy {
	return bulwark.PolicyFunc(func(ctx context.Context, fn func(context.Context) error) error {
		var err error
		for i := 1; i <= n; i++ {
			actx := ctx
			if i > 1 {
				actx = bulwark.WithAttempt(ctx, i)
			}
			if err = fn(actx); !errors.Is(err, bulwark.ErrRemoteUnavailable) {
				return err
			}
			if r, ok := bulwark.Retryable(err); ok && !r {
				return err
			}
		}
		return err
	})
}

func TestClientAttempts(t *testing.T) {
	tests := []struct {
		name         string
		give         []error // the server's answers, in order
		push         string
		wantAttempts string
		wantCode     codes.Code
	}{
		{name: "second attempt succeeds", give: []error{status.Error(codes.Unavailable, "x"), nil},
			wantAttempts: "1,2", wantCode: codes.OK},
		{name: "all fail", give: []error{status.Error(codes.Unavailable, "x"), status.Error(codes.Unavailable, "y"),
			status.Error(codes.Unavailable, "z")}, wantAttempts: "1,2,3", wantCode: codes.Unavailable},
		{name: "negative pushback stops", give: []error{status.Error(codes.Unavailable, "x"), nil}, push: "-1",
			wantAttempts: "1", wantCode: codes.Unavailable},
		{name: "answer is not retried", give: []error{status.Error(codes.NotFound, "x"), nil},
			wantAttempts: "1", wantCode: codes.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				mu       sync.Mutex
				attempts []string
			)
			svc := &service{unary: func(ctx context.Context, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
				mu.Lock()
				defer mu.Unlock()
				attempts = append(attempts, strings.Join(incoming(ctx, bulwarkgrpc.MetadataAttempt), ","))
				if tt.push != "" {
					_ = grpc.SetTrailer(ctx, metadata.Pairs(bulwarkgrpc.MetadataPushback, tt.push))
				}
				if err := tt.give[len(attempts)-1]; err != nil {
					return nil, err
				}
				return &testpb.SimpleResponse{Username: "ok"}, nil
			}}
			h := start(t, svc, nil, clientOpts(retrier(3)))
			resp, err := h.client.UnaryCall(context.Background(), &testpb.SimpleRequest{})
			if got := status.Code(err); got != tt.wantCode {
				t.Errorf("code = %v, want %v", got, tt.wantCode)
			}
			if err == nil && resp.GetUsername() != "ok" {
				t.Errorf("reply = %v, want the successful attempt's", resp)
			}
			mu.Lock()
			defer mu.Unlock()
			if got := strings.Join(attempts, ","); got != tt.wantAttempts {
				t.Errorf("attempts seen = %s, want %s", got, tt.wantAttempts)
			}
		})
	}
}

// hedger runs fn twice at once and returns the first success; it waits for
// both.
type hedger struct{}

func (hedger) ConcurrentFn() bool { return true }

func (hedger) Do(ctx context.Context, fn func(context.Context) error) error {
	errs := make(chan error, 2)
	for i := 1; i <= 2; i++ {
		go func() { errs <- fn(bulwark.WithAttempt(ctx, i)) }()
	}
	first, second := <-errs, <-errs
	if first == nil || second == nil {
		return nil
	}
	return first
}

func TestClientHedgingGetsOwnReplies(t *testing.T) {
	svc := &service{unary: func(ctx context.Context, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		a := incoming(ctx, bulwarkgrpc.MetadataAttempt)[0]
		if a == "1" {
			return nil, status.Error(codes.Unavailable, "x")
		}
		return &testpb.SimpleResponse{Username: "attempt " + a}, nil
	}}
	h := start(t, svc, nil, clientOpts(hedger{}))
	for i := 0; i < 20; i++ {
		resp, err := h.client.UnaryCall(context.Background(), &testpb.SimpleRequest{})
		if err != nil || resp.GetUsername() != "attempt 2" {
			t.Fatalf("UnaryCall() = %v, %v, want attempt 2's reply", resp, err)
		}
	}
}

func TestClientCallerDeadlineIsIgnored(t *testing.T) {
	svc := &service{unary: func(ctx context.Context, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}}
	m := metrictest.New(t)
	rec := &policytest.Recorder{}
	h := start(t, svc, nil, clientOpts(rec, bulwarkgrpc.WithMeterProvider(m.Provider)))
	for i := 0; i < 5; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		_, err := h.client.UnaryCall(ctx, &testpb.SimpleRequest{})
		if got := status.Code(err); got != codes.DeadlineExceeded {
			t.Errorf("status.Code(err) = %v, want DeadlineExceeded", got)
		}
		if ctx.Err() == nil {
			t.Error("the call returned before the caller's context ended")
		}
		cancel()
	}
	if got := count(t, m, "bulwark.grpc.client.calls", "ignored", "critical"); got != 5 {
		t.Errorf("ignored = %d, want 5", got)
	}
}

func TestClientReplacesCallerMetadata(t *testing.T) {
	// A proxy that forwards its incoming metadata as outgoing must not
	// pass the raw tier (or attempt) on next to the effective one: the
	// downstream would read the first value, a critical-plus its caller
	// was not trusted with, or a tier the propagation predicate withholds.
	tests := []struct {
		name         string
		opts         []bulwarkgrpc.Option
		wantPriority []string
	}{
		{name: "propagated", wantPriority: []string{"critical"}},
		{name: "not propagated", opts: []bulwarkgrpc.Option{bulwarkgrpc.WithPriorityPropagation(
			func(context.Context, string) bool { return false })}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, got := startCapturing(t, tt.opts...)
			ctx := metadata.NewOutgoingContext(context.Background(), metadata.Pairs(
				bulwarkgrpc.MetadataPriority, "critical-plus", bulwarkgrpc.MetadataAttempt, "5", "x-other", "kept"))
			ctx = metadata.AppendToOutgoingContext(ctx, bulwarkgrpc.MetadataPriority, "sheddable")
			ctx = bulwark.WithCallInfo(ctx, bulwark.CallInfo{Priority: bulwark.Critical, Attempt: 2})
			if _, err := h.client.UnaryCall(ctx, &testpb.SimpleRequest{}); err != nil {
				t.Fatal(err)
			}
			md := <-got
			if p := md.Get(bulwarkgrpc.MetadataPriority); fmt.Sprint(p) != fmt.Sprint(tt.wantPriority) {
				t.Errorf("bulwark-priority = %q, want %q", p, tt.wantPriority)
			}
			if a := md.Get(bulwarkgrpc.MetadataAttempt); fmt.Sprint(a) != "[2]" {
				t.Errorf("bulwark-attempt = %q, want [2]", a)
			}
			if o := md.Get("x-other"); fmt.Sprint(o) != "[kept]" {
				t.Errorf("x-other = %q, want [kept]", o)
			}
		})
	}
}
