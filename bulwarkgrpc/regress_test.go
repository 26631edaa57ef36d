package bulwarkgrpc_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarkgrpc"
	"github.com/bulwark-go/bulwark/internal/policytest"
)

// An earlier interceptor (authentication, tenant) put a CallInfo into the
// context: its key is kept, and its tier may only be lowered by metadata.
func TestServerKeepsUpstreamCallInfo(t *testing.T) {
	tests := []struct {
		name     string
		upstream func(context.Context) context.Context
		give     string // bulwark-priority metadata; "" for none
		opts     []bulwarkgrpc.Option
		wantKey  string
		wantTier bulwark.Priority
	}{
		{"key kept", func(ctx context.Context) context.Context { return bulwark.WithKey(ctx, "tenant-a") },
			"sheddable", nil, "tenant-a", bulwark.Sheddable},
		{"key alone sets no tier: trusted critical-plus honoured", func(ctx context.Context) context.Context { return bulwark.WithKey(ctx, "tenant-a") },
			"critical-plus", []bulwarkgrpc.Option{bulwarkgrpc.WithTrustPriority(trustLoopback)}, "tenant-a", bulwark.CriticalPlus},
		{"lower tier not raised", func(ctx context.Context) context.Context { return bulwark.WithPriority(ctx, bulwark.Sheddable) },
			"critical", nil, "", bulwark.Sheddable},
		{"lower tier not raised by trusted critical-plus", func(ctx context.Context) context.Context { return bulwark.WithPriority(ctx, bulwark.SheddablePlus) },
			"critical-plus", []bulwarkgrpc.Option{bulwarkgrpc.WithTrustPriority(trustLoopback)}, "", bulwark.SheddablePlus},
		{"set critical not raised", func(ctx context.Context) context.Context { return bulwark.WithPriority(ctx, bulwark.Critical) },
			"critical-plus", []bulwarkgrpc.Option{bulwarkgrpc.WithTrustPriority(trustLoopback)}, "", bulwark.Critical},
		{"garbage changes nothing", func(ctx context.Context) context.Context { return bulwark.WithPriority(ctx, bulwark.Sheddable) },
			"urgent!!", nil, "", bulwark.Sheddable},
		{"metadata lowers", func(ctx context.Context) context.Context { return bulwark.WithPriority(ctx, bulwark.SheddablePlus) },
			"sheddable", nil, "", bulwark.Sheddable},
		{"key func overrides", func(ctx context.Context) context.Context { return bulwark.WithKey(ctx, "tenant-a") },
			"", []bulwarkgrpc.Option{bulwarkgrpc.WithKeyFunc(func(context.Context, string) string { return "tenant-b" })}, "tenant-b", bulwark.Critical},
		{"empty key func keeps", func(ctx context.Context) context.Context { return bulwark.WithKey(ctx, "tenant-a") },
			"", []bulwarkgrpc.Option{bulwarkgrpc.WithKeyFunc(func(context.Context, string) string { return "" })}, "tenant-a", bulwark.Critical},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			type seen struct {
				key  string
				tier bulwark.Priority
			}
			policySaw := make(chan seen, 2)
			p := bulwark.PolicyFunc(func(ctx context.Context, fn func(context.Context) error) error {
				policySaw <- seen{bulwark.KeyFrom(ctx), bulwark.PriorityFrom(ctx)}
				return fn(ctx)
			})
			upU := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
				return h(tt.upstream(ctx), req)
			}
			upS := func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
				return h(srv, &ctxStream{ServerStream: ss, ctx: tt.upstream(ss.Context())})
			}
			h := start(t, &service{}, []grpc.ServerOption{
				grpc.ChainUnaryInterceptor(upU, bulwarkgrpc.UnaryServerInterceptor(p, tt.opts...)),
				grpc.ChainStreamInterceptor(upS, bulwarkgrpc.StreamServerInterceptor(p, tt.opts...)),
			})
			ctx := context.Background()
			if tt.give != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, bulwarkgrpc.MetadataPriority, tt.give)
			}
			if _, err := h.client.UnaryCall(ctx, &testpb.SimpleRequest{}); err != nil {
				t.Fatal(err)
			}
			st, err := h.client.StreamingOutputCall(ctx, &testpb.StreamingOutputCallRequest{})
			if err != nil {
				t.Fatal(err)
			}
			for {
				if _, err := st.Recv(); err != nil {
					break
				}
			}
			for _, kind := range []string{"unary", "stream"} {
				got := <-policySaw
				if got.key != tt.wantKey || got.tier != tt.wantTier {
					t.Errorf("%s: policy saw key %q tier %v, want %q %v", kind, got.key, got.tier, tt.wantKey, tt.wantTier)
				}
			}
		})
	}
}

type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *ctxStream) Context() context.Context { return s.ctx }

// A hint near the largest Duration is sent as a huge pushback, never a
// negative one ("never retry") next to a RetryInfo that says "wait".
func TestServerPushbackDoesNotOverflow(t *testing.T) {
	for _, hint := range []time.Duration{1<<63 - 1, 1<<63 - 1 - 500*time.Microsecond} {
		h := start(t, &service{}, serverOpts(policytest.Refuse(&hintedD{bulwark.ErrUnavailable, hint})))
		var trailer metadata.MD
		_, err := h.client.UnaryCall(context.Background(), &testpb.SimpleRequest{}, grpc.Trailer(&trailer))
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("code = %v, want Unavailable", status.Code(err))
		}
		vs := trailer.Get(bulwarkgrpc.MetadataPushback)
		if len(vs) != 1 {
			t.Fatalf("pushback = %q, want one value", vs)
		}
		if ms, err := strconv.ParseInt(vs[0], 10, 64); err != nil || ms < int64(hint/time.Millisecond) {
			t.Errorf("pushback = %q, want at least %d", vs[0], int64(hint/time.Millisecond))
		}
	}
}

type hintedD struct {
	class error
	hint  time.Duration
}

func (e *hintedD) Error() string             { return "test: refused" }
func (e *hintedD) Unwrap() error             { return e.class }
func (e *hintedD) RetryAfter() time.Duration { return e.hint }

// A server whose handler calls a downstream: the downstream's own pushback
// goes through the client interceptor; the server relays "do not retry"
// (and only that) and never turns a huge pushback negative.
func TestServerRelaysDownstreamPushback(t *testing.T) {
	tests := []struct {
		name       string
		downstream string // the downstream's pushback
		code       codes.Code
		policy     bulwark.Policy // the client's
		want       []string
	}{
		{"negative", "-1", codes.Unavailable, bulwark.Chain(), []string{"-1"}},
		{"unparseable", "soon", codes.Unavailable, bulwark.Chain(), []string{"-1"}},
		{"negative, unclassified code", "-5", codes.Internal, bulwark.Chain(), []string{"-1"}},
		{"huge", "9223372036854775807", codes.Unavailable, bulwark.Chain(), []string{strconv.FormatInt(int64((1<<63-1)/time.Millisecond), 10)}},
		{"retry exhausted is not the downstream's word", "", codes.Unavailable, retrier(2), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			down := start(t, &service{unary: func(ctx context.Context, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
				if tt.downstream != "" {
					_ = grpc.SetTrailer(ctx, metadata.Pairs(bulwarkgrpc.MetadataPushback, tt.downstream))
				}
				return nil, status.Error(tt.code, "down")
			}}, nil, clientOpts(tt.policy))
			up := start(t, &service{unary: func(ctx context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
				return down.client.UnaryCall(ctx, in)
			}}, serverOpts(bulwark.Chain()))
			var trailer metadata.MD
			_, err := up.client.UnaryCall(context.Background(), &testpb.SimpleRequest{}, grpc.Trailer(&trailer))
			if err == nil {
				t.Fatal("the call succeeded")
			}
			if got := trailer.Get(bulwarkgrpc.MetadataPushback); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("pushback = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestClientPriorityHandSet(t *testing.T) {
	tests := []struct {
		name string
		ctx  context.Context
		give string // hand-set outgoing bulwark-priority
		want string
	}{
		{"no tier keeps a hand-set lower tier", context.Background(), "sheddable", "sheddable"},
		{"no tier caps a hand-set critical-plus", context.Background(), "critical-plus", "critical"},
		{"no tier replaces garbage", context.Background(), "urgent", "critical"},
		{"a key alone is no tier", bulwark.WithKey(context.Background(), "t"), "sheddable-plus", "sheddable-plus"},
		{"the context's tier wins", bulwark.WithPriority(context.Background(), bulwark.Critical), "sheddable", "critical"},
		{"out of range", bulwark.WithPriority(context.Background(), 7), "", "critical"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, got := startCapturing(t)
			ctx := tt.ctx
			if tt.give != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, bulwarkgrpc.MetadataPriority, tt.give)
			}
			if _, err := h.client.UnaryCall(ctx, &testpb.SimpleRequest{}); err != nil {
				t.Fatal(err)
			}
			if p := (<-got).Get(bulwarkgrpc.MetadataPriority); fmt.Sprint(p) != "["+tt.want+"]" {
				t.Errorf("bulwark-priority = %q, want [%s]", p, tt.want)
			}
		})
	}
}

func TestDrillThroughGRPC(t *testing.T) {
	tests := []struct {
		name string
		give string // the incoming bulwark-drill
		want string // what the server's handler sees and the next hop gets
	}{
		{"token", "game-day", "game-day"},
		{"none", "", ""},
		{"space", "game day", ""},
		{"too long", strings.Repeat("a", 65), ""},
		{"longest", strings.Repeat("a", 64), strings.Repeat("a", 64)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next, got := startCapturing(t)
			var handlerSaw string
			up := start(t, &service{unary: func(ctx context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
				handlerSaw = bulwark.DrillFrom(ctx)
				return next.client.UnaryCall(ctx, in)
			}}, serverOpts(bulwark.Chain()))
			ctx := context.Background()
			if tt.give != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, bulwarkgrpc.MetadataDrill, tt.give)
			}
			if _, err := up.client.UnaryCall(ctx, &testpb.SimpleRequest{}); err != nil {
				t.Fatal(err)
			}
			md := <-got
			if handlerSaw != tt.want {
				t.Errorf("handler saw drill %q, want %q", handlerSaw, tt.want)
			}
			var want []string
			if tt.want != "" {
				want = []string{tt.want}
			}
			if d := md.Get(bulwarkgrpc.MetadataDrill); fmt.Sprint(d) != fmt.Sprint(want) {
				t.Errorf("next hop got bulwark-drill %q, want %q", d, want)
			}
		})
	}
}

// degradedRefusal is a degradation switch's refusal.
type degradedRefusal struct {
	name string
	hint time.Duration
}

func (e *degradedRefusal) Error() string             { return "degrade: " + e.name + " is off" }
func (e *degradedRefusal) Unwrap() error             { return bulwark.ErrUnavailable }
func (e *degradedRefusal) Degraded() string          { return e.name }
func (e *degradedRefusal) RetryAfter() time.Duration { return e.hint }

func TestServerDegradedRefusal(t *testing.T) {
	tests := []struct {
		name     string
		give     error
		wantName []string
		wantPush []string
	}{
		{"with a hint", &degradedRefusal{name: "recommendations", hint: 1500 * time.Millisecond}, []string{"recommendations"}, []string{"1500"}},
		{"without a hint", &degradedRefusal{name: "search"}, []string{"search"}, nil},
		{"not degraded", &hinted{bulwark.ErrUnavailable, 0}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t, &service{}, serverOpts(policytest.Refuse(tt.give)))
			var trailer metadata.MD
			_, err := h.client.UnaryCall(context.Background(), &testpb.SimpleRequest{}, grpc.Trailer(&trailer))
			if status.Code(err) != codes.Unavailable {
				t.Errorf("code = %v, want Unavailable", status.Code(err))
			}
			if got := trailer.Get(bulwarkgrpc.MetadataDegraded); fmt.Sprint(got) != fmt.Sprint(tt.wantName) {
				t.Errorf("bulwark-degraded = %q, want %q", got, tt.wantName)
			}
			if got := trailer.Get(bulwarkgrpc.MetadataPushback); fmt.Sprint(got) != fmt.Sprint(tt.wantPush) {
				t.Errorf("pushback = %q, want %q", got, tt.wantPush)
			}
			st, serr := h.client.StreamingOutputCall(context.Background(), &testpb.StreamingOutputCallRequest{})
			if serr != nil {
				t.Fatal(serr)
			}
			_, serr = st.Recv()
			if status.Code(serr) != codes.Unavailable {
				t.Errorf("stream code = %v, want Unavailable", status.Code(serr))
			}
			if got := st.Trailer().Get(bulwarkgrpc.MetadataDegraded); fmt.Sprint(got) != fmt.Sprint(tt.wantName) {
				t.Errorf("stream bulwark-degraded = %q, want %q", got, tt.wantName)
			}
		})
	}
}

func TestMarkDegraded(t *testing.T) {
	var markErrs []error
	h := start(t, &service{unary: func(ctx context.Context, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		markErrs = append(markErrs,
			bulwarkgrpc.MarkDegraded(ctx, "reviews"),
			bulwarkgrpc.MarkDegraded(ctx, "images"),
			bulwarkgrpc.MarkDegraded(ctx, "bad name"),
			bulwarkgrpc.MarkDegraded(ctx, ""))
		return &testpb.SimpleResponse{}, nil
	}}, serverOpts(bulwark.Chain()))
	var header metadata.MD
	if _, err := h.client.UnaryCall(context.Background(), &testpb.SimpleRequest{}, grpc.Header(&header)); err != nil {
		t.Fatal(err)
	}
	if got := header.Get(bulwarkgrpc.MetadataDegraded); fmt.Sprint(got) != "[reviews images]" {
		t.Errorf("bulwark-degraded = %q, want [reviews images]", got)
	}
	if markErrs[0] != nil || markErrs[1] != nil || markErrs[2] == nil || markErrs[3] == nil {
		t.Errorf("MarkDegraded errors = %v, want nil, nil, error, error", markErrs)
	}
	if err := bulwarkgrpc.MarkDegraded(context.Background(), "x"); err == nil {
		t.Error("MarkDegraded outside a server call = nil, want an error")
	}
}
