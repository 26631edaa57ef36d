package bulwarkhttp_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/internal/metrictest"
	"github.com/bulwark-go/bulwark/internal/policytest"
)

// stallingFailure answers 503 with a Content-Length and a body that sends
// a few bytes and then stalls until the test ends it.
type stallingFailure struct {
	mu    sync.Mutex
	pipes []*io.PipeWriter
}

func (s *stallingFailure) RoundTrip(req *http.Request) (*http.Response, error) {
	pr, pw := io.Pipe()
	s.mu.Lock()
	s.pipes = append(s.pipes, pw)
	s.mu.Unlock()
	go func() { _, _ = pw.Write([]byte("part")) }()
	return &http.Response{StatusCode: 503, Header: http.Header{"Content-Length": {"1000"}},
		ContentLength: 1000, Body: pr, Request: req}, nil
}

func (s *stallingFailure) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, pw := range s.pipes {
		_ = pw.Close()
	}
}

// A replayable request whose 503 body stalls: RoundTrip returns within the
// bound (250 ms), with a context that never ends, and the permit is free.
func TestTransportStalledFailureBodyIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &stallingFailure{}
		gate := &policytest.Gate{Limit: 1}
		rt := bulwarkhttp.Transport(gate, base)
		start := time.Now()
		var (
			resp    *http.Response
			err     error
			elapsed time.Duration
		)
		done := make(chan struct{})
		go func() {
			defer close(done)
			req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
			resp, err = rt.RoundTrip(req)
			elapsed = time.Since(start)
		}()
		time.Sleep(time.Hour)
		synctest.Wait()
		select {
		case <-done:
		default:
			base.closeAll()
			<-done
			t.Fatal("RoundTrip still blocked on the stalled failure body after an hour")
		}
		defer base.closeAll()
		if err != nil {
			t.Fatalf("RoundTrip() = %v, want the 503", err)
		}
		if elapsed > 250*time.Millisecond {
			t.Errorf("RoundTrip took %v, want at most 250ms", elapsed)
		}
		if inUse, released := gate.State(); inUse != 0 || len(released) != 1 || !errors.Is(released[0], bulwark.ErrRemoteUnavailable) {
			t.Errorf("gate: %d in use, released %v; want the permit released with the 503's class", inUse, released)
		}
		b, rerr := io.ReadAll(resp.Body)
		if string(b) != "part" || !errors.Is(rerr, bulwarkhttp.ErrBodyStalled) {
			t.Errorf("body = %q, %v; want what arrived, then ErrBodyStalled", b, rerr)
		}
		_ = resp.Body.Close()
	})
}

// nilBody is a base RoundTripper whose answers have a nil Body, as net/http
// tolerates.
func nilBody(status int) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: status, Header: http.Header{}, Request: req}, nil
	})
}

func TestTransportNilResponseBody(t *testing.T) {
	for _, status := range []int{200, 503} {
		for _, p := range []struct {
			name string
			p    func() bulwark.Policy
		}{
			{"Do", func() bulwark.Policy { return policytest.PassThrough }},
			{"Admit", func() bulwark.Policy { return &policytest.Gate{Limit: 1} }},
		} {
			t.Run(p.name+"/"+http.StatusText(status), func(t *testing.T) {
				pol := p.p()
				rt := bulwarkhttp.Transport(pol, nilBody(status))
				req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
				resp, err := rt.RoundTrip(req)
				if err != nil {
					t.Fatalf("RoundTrip() = %v", err)
				}
				if resp.StatusCode != status {
					t.Errorf("status = %d, want %d", resp.StatusCode, status)
				}
				if b, err := io.ReadAll(resp.Body); len(b) != 0 || err != nil {
					t.Errorf("body = %q, %v; want empty", b, err)
				}
				_ = resp.Body.Close()
				if g, ok := pol.(*policytest.Gate); ok {
					if inUse, _ := g.State(); inUse != 0 {
						t.Errorf("%d permits still held", inUse)
					}
				}
			})
		}
	}
	t.Run("neither response nor error", func(t *testing.T) {
		rt := bulwarkhttp.Transport(policytest.PassThrough, roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, nil }))
		req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
		if resp, err := rt.RoundTrip(req); resp != nil || err == nil {
			t.Errorf("RoundTrip() = %v, %v; want an error", resp, err)
		}
	})
}

// SPEC's stack: an inner chain's refusal, seen through the outer
// Transport, is one refusal of its own class, with its own message, and
// counted as a refusal by the outer layer.
func TestTransportStackedRefusalStaysARefusal(t *testing.T) {
	reader := metrictest.New(t)
	inner := bulwarkhttp.Transport(policytest.Refuse(policytest.ErrGateFull), nilBody(200),
		bulwarkhttp.WithName("inner"), bulwarkhttp.WithMeterProvider(reader.Provider))
	outer := bulwarkhttp.Transport(&retrier{n: 3}, inner,
		bulwarkhttp.WithName("outer"), bulwarkhttp.WithMeterProvider(reader.Provider))
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
	_, err := outer.RoundTrip(req)
	if !errors.Is(err, bulwark.ErrUnavailable) || !errors.Is(err, policytest.ErrGateFull) {
		t.Errorf("RoundTrip() = %v, want the inner refusal", err)
	}
	if errors.Is(err, bulwark.ErrRemoteUnavailable) {
		t.Errorf("RoundTrip() = %v: a refusal also classed as an unreachable downstream", err)
	}
	var te *bulwarkhttp.TransportError
	if errors.As(err, &te) || strings.Contains(err.Error(), "unreachable") {
		t.Errorf("RoundTrip() = %v, want no TransportError", err)
	}
	if got := counts(t, reader, "bulwark.http.client.requests", "outer"); got["refused"] != 1 || got["failure"] != 0 {
		t.Errorf("outer counts = %v, want one refusal", got)
	}
}

// An inner TransportError is not wrapped a second time.
func TestTransportStackedUnreachableOnce(t *testing.T) {
	dial := errors.New("dial tcp: connection refused")
	inner := bulwarkhttp.Transport(policytest.PassThrough, roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, dial }))
	outer := bulwarkhttp.Transport(policytest.PassThrough, inner)
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
	_, err := outer.RoundTrip(req)
	var te *bulwarkhttp.TransportError
	if !errors.As(err, &te) || te.Err != dial {
		t.Fatalf("RoundTrip() = %v, want a TransportError of the dial error", err)
	}
	if n := strings.Count(err.Error(), "unreachable"); n != 1 {
		t.Errorf("message %q says unreachable %d times, want once", err, n)
	}
}

func TestTransportPriorityHeader(t *testing.T) {
	no := bulwarkhttp.WithPropagatePriority(func(*http.Request) bool { return false })
	tests := []struct {
		name string
		ctx  context.Context
		give []string // the caller's own header
		opts []bulwarkhttp.Option
		want []string
	}{
		{"no tier, no header", context.Background(), nil, nil, []string{"critical"}},
		{"no tier, hand-set sheddable", context.Background(), []string{"sheddable"}, nil, []string{"sheddable"}},
		{"no tier, hand-set critical-plus capped", context.Background(), []string{"critical-plus"}, nil, []string{"critical"}},
		{"no tier, hand-set garbage", context.Background(), []string{"urgent"}, nil, []string{"critical"}},
		{"context tier wins", bulwark.WithPriority(context.Background(), bulwark.SheddablePlus), []string{"sheddable"}, nil, []string{"sheddable-plus"}},
		{"key alone is no tier", bulwark.WithKey(context.Background(), "t"), []string{"sheddable"}, nil, []string{"sheddable"}},
		{"out of range", bulwark.WithPriority(context.Background(), 7), nil, nil, []string{"critical"}},
		{"not propagated strips a raw header", bulwark.WithPriority(context.Background(), bulwark.Sheddable), []string{"critical-plus"}, []bulwarkhttp.Option{no}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			var present bool
			rt := bulwarkhttp.Transport(policytest.PassThrough, roundTripFunc(func(r *http.Request) (*http.Response, error) {
				got, present = r.Header["Bulwark-Priority"]
				return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
			}), tt.opts...)
			req, _ := http.NewRequestWithContext(tt.ctx, http.MethodGet, "http://127.0.0.1/", nil)
			if tt.give != nil {
				req.Header["Bulwark-Priority"] = tt.give
			}
			if _, err := rt.RoundTrip(req); err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") || present != (tt.want != nil) {
				t.Errorf("Bulwark-Priority = %q (present %v), want %q", got, present, tt.want)
			}
			if tt.give != nil && req.Header["Bulwark-Priority"][0] != tt.give[0] {
				t.Error("the caller's request was modified")
			}
		})
	}
}

func TestTransportPropagatesDrill(t *testing.T) {
	for _, tt := range []struct {
		name string
		ctx  context.Context
		want string
	}{
		{"drill", bulwark.WithDrill(context.Background(), "game-day"), "game-day"},
		{"none", context.Background(), ""},
		{"invalid", bulwark.WithDrill(context.Background(), "a\r\nb"), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			rt := bulwarkhttp.Transport(policytest.PassThrough, roundTripFunc(func(r *http.Request) (*http.Response, error) {
				got = r.Header.Get("Bulwark-Drill")
				return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
			}))
			req, _ := http.NewRequestWithContext(tt.ctx, http.MethodGet, "http://127.0.0.1/", nil)
			if _, err := rt.RoundTrip(req); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Bulwark-Drill = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNewStatusErrorIsUntypedNil(t *testing.T) {
	var err error = bulwarkhttp.NewStatusError(&http.Response{StatusCode: 200}, time.Now())
	if err != nil {
		t.Errorf("NewStatusError(200) = %#v, want an untyped nil error", err)
	}
}
