package degrade_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarkgrpc"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/degrade"
	"github.com/bulwark-go/bulwark/internal/policytest"
)

// checkDegradedMarker asserts the degraded marker of a refused call: the
// server adapters send bulwark.Degraded(err) as the Bulwark-Degraded header
// / bulwark-degraded metadata.
func checkDegradedMarker(t *testing.T, got []string, want string) {
	t.Helper()
	if len(got) != 1 || got[0] != want {
		t.Errorf("degraded marker = %q, want [%q]", got, want)
	}
}

func TestHTTPLoopback(t *testing.T) {
	sh := degrade.NewShedder("api")
	sw := degrade.NewSwitch("recommendations", degrade.WithRetryAfter(90*time.Second))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "served") })
	srv := httptest.NewServer(bulwarkhttp.Handler(h, bulwark.Chain(sh, sw),
		bulwarkhttp.WithTrustPriority(func(*http.Request) bool { return true })))
	defer srv.Close()
	get := func(tier string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		if tier != "" {
			req.Header.Set("Bulwark-Priority", tier)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}

	tiers := []string{"sheddable", "sheddable-plus", "critical", "critical-plus"}
	for level := range 4 {
		sh.SetLevel(level, "loopback")
		for i, tier := range tiers {
			resp := get(tier)
			want := http.StatusOK
			if i < level {
				want = http.StatusServiceUnavailable
			}
			if resp.StatusCode != want {
				t.Fatalf("level %d, %s: status %d, want %d", level, tier, resp.StatusCode, want)
			}
			if want == http.StatusServiceUnavailable {
				if ra := resp.Header.Get("Retry-After"); ra != "" {
					t.Errorf("level %d, %s: Retry-After %q from a manual level, want none", level, tier, ra)
				}
				checkDegradedMarker(t, resp.Header.Values("Bulwark-Degraded"), "api")
			} else if v := resp.Header.Values("Bulwark-Degraded"); len(v) != 0 {
				t.Errorf("level %d, %s: a served response carries Bulwark-Degraded %q", level, tier, v)
			}
		}
	}
	sh.Release()
	sw.Set(true, "loopback")
	resp := get("critical-plus")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "90" {
		t.Fatalf("switch on: status %d, Retry-After %q, want 503, 90", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	checkDegradedMarker(t, resp.Header.Values("Bulwark-Degraded"), "recommendations")
	sw.Release()
	if resp := get(""); resp.StatusCode != http.StatusOK {
		t.Fatalf("after release: status %d, want 200", resp.StatusCode)
	}
}

type echoService struct {
	testpb.UnimplementedTestServiceServer
}

func (echoService) EmptyCall(context.Context, *testpb.Empty) (*testpb.Empty, error) {
	return &testpb.Empty{}, nil
}

func TestGRPCLoopback(t *testing.T) {
	sh := degrade.NewShedder("api")
	sw := degrade.NewSwitch("recommendations", degrade.WithRetryAfter(1500*time.Millisecond))
	_, conn := policytest.ServeGRPC(t, func(s *grpc.Server) { testpb.RegisterTestServiceServer(s, echoService{}) },
		[]grpc.ServerOption{grpc.ChainUnaryInterceptor(bulwarkgrpc.UnaryServerInterceptor(bulwark.Chain(sh, sw),
			bulwarkgrpc.WithTrustPriority(func(context.Context) bool { return true })))})
	client := testpb.NewTestServiceClient(conn)
	call := func(tier string) (codes.Code, metadata.MD, metadata.MD) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		if tier != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "bulwark-priority", tier)
		}
		var hdr, trl metadata.MD
		_, err := client.EmptyCall(ctx, &testpb.Empty{}, grpc.Header(&hdr), grpc.Trailer(&trl))
		return status.Code(err), hdr, trl
	}
	tiers := []string{"sheddable", "sheddable-plus", "critical", "critical-plus"}
	for level := range 4 {
		sh.SetLevel(level, "loopback")
		for i, tier := range tiers {
			code, hdr, trl := call(tier)
			want := codes.OK
			if i < level {
				want = codes.Unavailable
			}
			if code != want {
				t.Fatalf("level %d, %s: code %v, want %v", level, tier, code, want)
			}
			if want == codes.Unavailable {
				checkDegradedMarker(t, append(hdr.Get("bulwark-degraded"), trl.Get("bulwark-degraded")...), "api")
			}
		}
	}
	sh.Release()
	sw.Set(true, "loopback")
	code, hdr, trl := call("critical-plus")
	if code != codes.Unavailable {
		t.Fatalf("switch on: code %v, want Unavailable", code)
	}
	if p := trl.Get("grpc-retry-pushback-ms"); len(p) != 1 || p[0] != "1500" {
		t.Errorf("grpc-retry-pushback-ms = %q, want [1500]", p)
	}
	checkDegradedMarker(t, append(hdr.Get("bulwark-degraded"), trl.Get("bulwark-degraded")...), "recommendations")
	sw.Release()
	if code, _, _ := call(""); code != codes.OK {
		t.Fatalf("after release: code %v, want OK", code)
	}
}
