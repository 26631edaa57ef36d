package drill_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarkgrpc"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/drill"
	"github.com/bulwark-go/bulwark/internal/policytest"
)

// markerHTTP stands in for the server adapters' Bulwark-Drill hook (SPEC's
// wire table), which is wired in bulwarkhttp separately: it puts the
// header's drill name into the request's context.
func markerHTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if name := r.Header.Get("Bulwark-Drill"); name != "" {
			r = r.WithContext(bulwark.WithDrill(r.Context(), name))
		}
		next.ServeHTTP(w, r)
	})
}

// markerGRPC is markerHTTP for the bulwark-drill metadata.
func markerGRPC(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("bulwark-drill"); len(v) > 0 && v[0] != "" {
			ctx = bulwark.WithDrill(ctx, v[0])
		}
	}
	return h(ctx, req)
}

type selectorCase struct {
	name    string
	match   drill.Match
	headers map[string]string // header (HTTP) / metadata (gRPC), lower case
	hit     bool
}

var selectorCases = []selectorCase{
	{"tier hit", drill.Match{Tiers: []bulwark.Priority{bulwark.Sheddable}}, map[string]string{"bulwark-priority": "sheddable"}, true},
	{"tier miss", drill.Match{Tiers: []bulwark.Priority{bulwark.Sheddable}}, map[string]string{"bulwark-priority": "critical"}, false},
	{"tier miss without header", drill.Match{Tiers: []bulwark.Priority{bulwark.Sheddable}}, nil, false},
	{"key hit", drill.Match{Keys: []string{"acme"}}, map[string]string{"x-tenant": "acme"}, true},
	{"key miss", drill.Match{Keys: []string{"acme"}}, map[string]string{"x-tenant": "globex"}, false},
	{"marker hit", drill.Match{Marked: true}, map[string]string{"bulwark-drill": "checkout"}, true},
	{"marker of another drill", drill.Match{Marked: true}, map[string]string{"bulwark-drill": "search"}, false},
	{"marker miss", drill.Match{Marked: true}, nil, false},
	{"all hit", drill.Match{Tiers: []bulwark.Priority{bulwark.Sheddable}, Keys: []string{"acme"}, Marked: true},
		map[string]string{"bulwark-priority": "sheddable", "x-tenant": "acme", "bulwark-drill": "checkout"}, true},
	{"all but the tier", drill.Match{Tiers: []bulwark.Priority{bulwark.Sheddable}, Keys: []string{"acme"}, Marked: true},
		map[string]string{"x-tenant": "acme", "bulwark-drill": "checkout"}, false},
}

func TestSelectorsOverHTTP(t *testing.T) {
	d := drill.New("checkout")
	handled := 0
	h := markerHTTP(bulwarkhttp.Middleware(d, bulwarkhttp.WithKeyFunc(func(r *http.Request) string { return r.Header.Get("X-Tenant") }))(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			handled++
			_, _ = io.WriteString(w, "ok")
		})))
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, tt := range selectorCases {
		t.Run(tt.name, func(t *testing.T) {
			mustArm(t, d, drill.Spec{Refusal: drill.Refusal{Probability: 1}, Match: tt.match}, 0)
			before := handled
			req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			want, wantHandled := http.StatusOK, 1
			if tt.hit {
				want, wantHandled = http.StatusServiceUnavailable, 0
			}
			if res.StatusCode != want || handled-before != wantHandled {
				t.Errorf("status %d with %d handler runs, want %d and %d", res.StatusCode, handled-before, want, wantHandled)
			}
		})
	}
	// An injected downstream error is a 503 too; disarmed, every request passes.
	mustArm(t, d, drill.Spec{Error: drill.Error{Err: drill.ErrRemoteUnavailable, Probability: 1}}, 0)
	if res, err := srv.Client().Get(srv.URL); err != nil || res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET with an injected downstream 503 = %v, %v, want 503", res, err)
	} else {
		res.Body.Close()
	}
	d.Disarm()
	if res, err := srv.Client().Get(srv.URL); err != nil || res.StatusCode != http.StatusOK {
		t.Errorf("GET disarmed = %v, %v, want 200", res, err)
	} else {
		res.Body.Close()
	}
}

type echo struct {
	testgrpc.UnimplementedTestServiceServer
}

func (echo) UnaryCall(_ context.Context, in *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	return &testgrpc.SimpleResponse{Payload: in.GetPayload()}, nil
}

func TestSelectorsOverGRPC(t *testing.T) {
	d := drill.New("checkout")
	key := func(ctx context.Context, _ string) string {
		md, _ := metadata.FromIncomingContext(ctx)
		if v := md.Get("x-tenant"); len(v) > 0 {
			return v[0]
		}
		return ""
	}
	_, conn := policytest.ServeGRPC(t, func(s *grpc.Server) { testgrpc.RegisterTestServiceServer(s, echo{}) },
		[]grpc.ServerOption{grpc.ChainUnaryInterceptor(markerGRPC, bulwarkgrpc.UnaryServerInterceptor(d, bulwarkgrpc.WithKeyFunc(key)))})
	client := testgrpc.NewTestServiceClient(conn)
	for _, tt := range selectorCases {
		t.Run(tt.name, func(t *testing.T) {
			mustArm(t, d, drill.Spec{Refusal: drill.Refusal{Probability: 1}, Match: tt.match}, 0)
			ctx := context.Background()
			for k, v := range tt.headers {
				ctx = metadata.AppendToOutgoingContext(ctx, k, v)
			}
			_, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{})
			want := codes.OK
			if tt.hit {
				want = codes.Unavailable
			}
			if got := status.Code(err); got != want {
				t.Errorf("UnaryCall() = %v, want %v", err, want)
			}
		})
	}
	mustArm(t, d, drill.Spec{Error: drill.Error{Err: drill.ErrTimeout, Probability: 1}}, 0)
	if _, err := client.UnaryCall(context.Background(), &testgrpc.SimpleRequest{}); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("UnaryCall() with an injected timeout = %v, want DeadlineExceeded", err)
	}
}
