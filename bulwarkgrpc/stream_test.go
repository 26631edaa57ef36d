package bulwarkgrpc_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarkgrpc"
	"github.com/bulwark-go/bulwark/internal/metrictest"
	"github.com/bulwark-go/bulwark/internal/policytest"
)

// allFour wraps server and client in all four interceptors.
func allFour(t *testing.T, svc *service, server bulwark.Policy, client bulwark.Policy, stream bulwark.Policy, opts ...bulwarkgrpc.Option) *harness {
	return start(t, svc, serverOpts(server, opts...),
		grpc.WithUnaryInterceptor(bulwarkgrpc.UnaryClientInterceptor(client, opts...)),
		grpc.WithStreamInterceptor(bulwarkgrpc.StreamClientInterceptor(stream, opts...)))
}

func TestStreamShapes(t *testing.T) {
	g := &policytest.Gate{Limit: 10}
	h := allFour(t, &service{}, bulwark.Timeout(time.Minute), bulwark.Timeout(time.Minute), g)
	ctx := context.Background()

	t.Run("unary", func(t *testing.T) {
		resp, err := h.client.UnaryCall(ctx, &testpb.SimpleRequest{Payload: payload(271828)})
		if err != nil || len(resp.GetPayload().GetBody()) != 271828 {
			t.Fatalf("UnaryCall() = %d bytes, %v, want 271828 bytes", len(resp.GetPayload().GetBody()), err)
		}
	})
	t.Run("server streaming", func(t *testing.T) {
		sizes := []int32{31415, 9, 2653, 58979}
		req := &testpb.StreamingOutputCallRequest{}
		for _, n := range sizes {
			req.ResponseParameters = append(req.ResponseParameters, &testpb.ResponseParameters{Size: n})
		}
		st, err := h.client.StreamingOutputCall(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		for i, n := range sizes {
			resp, err := st.Recv()
			if err != nil || len(resp.GetPayload().GetBody()) != int(n) {
				t.Fatalf("Recv() %d = %d bytes, %v, want %d bytes", i, len(resp.GetPayload().GetBody()), err, n)
			}
		}
		if _, err := st.Recv(); err != io.EOF {
			t.Fatalf("last Recv() = %v, want io.EOF", err)
		}
	})
	t.Run("client streaming", func(t *testing.T) {
		st, err := h.client.StreamingInputCall(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{27182, 8, 1828, 45904} {
			if err := st.Send(&testpb.StreamingInputCallRequest{Payload: payload(n)}); err != nil {
				t.Fatal(err)
			}
		}
		resp, err := st.CloseAndRecv()
		if err != nil || resp.GetAggregatedPayloadSize() != 74922 {
			t.Fatalf("CloseAndRecv() = %v, %v, want 74922", resp, err)
		}
	})
	t.Run("bidi", func(t *testing.T) {
		st, err := h.client.FullDuplexCall(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int32{31415, 9, 2653} {
			req := &testpb.StreamingOutputCallRequest{ResponseParameters: []*testpb.ResponseParameters{{Size: n}}}
			if err := st.Send(req); err != nil {
				t.Fatal(err)
			}
			resp, err := st.Recv()
			if err != nil || len(resp.GetPayload().GetBody()) != int(n) {
				t.Fatalf("Recv() = %v, want %d bytes", err, n)
			}
		}
		_ = st.CloseSend()
		if _, err := st.Recv(); err != io.EOF {
			t.Fatalf("last Recv() = %v, want io.EOF", err)
		}
	})
	inUse, released := g.State()
	if inUse != 0 || len(released) != 3 {
		t.Errorf("gate: %d in use, %d released, want 0 and 3 (one per stream)", inUse, len(released))
	}
	for _, err := range released {
		if err != nil {
			t.Errorf("stream released with %v, want nil", err)
		}
	}
}

func TestStreamClientHoldsAdmission(t *testing.T) {
	// A bulkhead of one: the second stream is refused while the first is
	// open, and admitted once the first ended — however it ended.
	svc := &service{bidi: func(st grpc.BidiStreamingServer[testpb.StreamingOutputCallRequest, testpb.StreamingOutputCallResponse]) error {
		for {
			in, err := st.Recv()
			if err != nil {
				return nil
			}
			if len(in.GetResponseParameters()) == 0 {
				return status.Error(codes.Unavailable, "going away")
			}
			if err := st.Send(&testpb.StreamingOutputCallResponse{}); err != nil {
				return err
			}
		}
	}}
	tests := []struct {
		name        string
		end         func(t *testing.T, st grpc.BidiStreamingClient[testpb.StreamingOutputCallRequest, testpb.StreamingOutputCallResponse], cancel context.CancelFunc)
		wantRelease func(error) bool
	}{
		{name: "read to EOF", end: func(t *testing.T, st grpc.BidiStreamingClient[testpb.StreamingOutputCallRequest, testpb.StreamingOutputCallResponse], _ context.CancelFunc) {
			_ = st.CloseSend()
			if _, err := st.Recv(); err != io.EOF {
				t.Fatalf("Recv() = %v, want io.EOF", err)
			}
		}, wantRelease: func(err error) bool { return err == nil }},
		{name: "ended by an error", end: func(t *testing.T, st grpc.BidiStreamingClient[testpb.StreamingOutputCallRequest, testpb.StreamingOutputCallResponse], _ context.CancelFunc) {
			_ = st.Send(&testpb.StreamingOutputCallRequest{})
			_, err := st.Recv()
			if status.Code(err) != codes.Unavailable || !errors.Is(err, bulwark.ErrRemoteUnavailable) {
				t.Fatalf("Recv() = %v, want UNAVAILABLE classified as ErrRemoteUnavailable", err)
			}
		}, wantRelease: func(err error) bool { return errors.Is(err, bulwark.ErrRemoteUnavailable) }},
		{name: "context cancelled", end: func(t *testing.T, _ grpc.BidiStreamingClient[testpb.StreamingOutputCallRequest, testpb.StreamingOutputCallResponse], cancel context.CancelFunc) {
			cancel()
		}, wantRelease: func(err error) bool { return errors.Is(err, context.Canceled) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &policytest.Gate{Limit: 1, Notify: make(chan error, 4)}
			m := metrictest.New(t)
			h := start(t, svc, nil, grpc.WithStreamInterceptor(
				bulwarkgrpc.StreamClientInterceptor(g, bulwarkgrpc.WithMeterProvider(m.Provider))))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			first, err := h.client.FullDuplexCall(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// The first stream is open and working.
			if err := first.Send(&testpb.StreamingOutputCallRequest{ResponseParameters: []*testpb.ResponseParameters{{}}}); err != nil {
				t.Fatal(err)
			}
			if _, err := first.Recv(); err != nil {
				t.Fatal(err)
			}
			_, err = h.client.FullDuplexCall(context.Background())
			if !errors.Is(err, policytest.ErrGateFull) || status.Code(err) != codes.Unavailable {
				t.Fatalf("second stream: %v, want the gate's refusal as UNAVAILABLE", err)
			}
			tt.end(t, first, cancel)
			// Released by RecvMsg at once, or by context.AfterFunc.
			select {
			case err := <-g.Notify:
				if !tt.wantRelease(err) {
					t.Fatalf("released with %v, want a release matching the stream's end", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the first stream's admission was never released")
			}
			second, err := h.client.FullDuplexCall(context.Background())
			if err != nil {
				t.Fatalf("second stream after the first ended: %v, want admitted", err)
			}
			_ = second.CloseSend()
			if _, err := second.Recv(); err != io.EOF {
				t.Fatalf("Recv() = %v, want io.EOF", err)
			}
			if _, released := g.State(); len(released) != 2 {
				t.Errorf("released %d times, want 2 (each stream once)", len(released))
			}
			if got := count(t, m, "bulwark.grpc.client.calls", "refused", "critical"); got != 1 {
				t.Errorf("refused streams = %d, want 1", got)
			}
		})
	}
}

func TestStreamClientStreamingReleasesOnResponse(t *testing.T) {
	g := &policytest.Gate{Limit: 1}
	h := start(t, &service{}, nil, grpc.WithStreamInterceptor(bulwarkgrpc.StreamClientInterceptor(g)))
	for i := 0; i < 3; i++ {
		st, err := h.client.StreamingInputCall(context.Background())
		if err != nil {
			t.Fatalf("stream %d: %v, want admitted (the previous one ended)", i, err)
		}
		if _, err := st.CloseAndRecv(); err != nil {
			t.Fatal(err)
		}
		if inUse, _ := g.State(); inUse != 0 {
			t.Fatalf("stream %d: %d admissions held after the response, want 0", i, inUse)
		}
	}
}

func TestStreamClientRequiresAdmitter(t *testing.T) {
	got := func() (v any) {
		defer func() { v = recover() }()
		bulwarkgrpc.StreamClientInterceptor(bulwark.Timeout(time.Second))
		return nil
	}()
	msg, _ := got.(string)
	if !strings.Contains(msg, "bulwarkgrpc: StreamClientInterceptor") || !strings.Contains(msg, "not a bulwark.Admitter") {
		t.Errorf("panic = %v, want a message naming StreamClientInterceptor and bulwark.Admitter", got)
	}
}

func TestStreamServerRefusalBeforeHandler(t *testing.T) {
	ran := false
	svc := &service{bidi: func(grpc.BidiStreamingServer[testpb.StreamingOutputCallRequest, testpb.StreamingOutputCallResponse]) error {
		ran = true
		return nil
	}}
	h := start(t, svc, serverOpts(policytest.Refuse(&hinted{bulwark.ErrRejected, 40})))
	st, err := h.client.FullDuplexCall(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.Recv()
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("Recv() = %v, want RESOURCE_EXHAUSTED", err)
	}
	if got := st.Trailer().Get(bulwarkgrpc.MetadataPushback); len(got) != 1 || got[0] != "40" {
		t.Errorf("pushback trailer = %q, want [40]", got)
	}
	if ran {
		t.Error("handler ran for a refused stream")
	}
}
