package bulwarkhttp_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/internal/policytest"
)

// reusableWriter is a ResponseWriter that allocates nothing per request.
type reusableWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *reusableWriter) Header() http.Header { return w.h }
func (w *reusableWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *reusableWriter) Write(b []byte) (int, error) { w.n += len(b); return len(b), nil }
func (w *reusableWriter) Flush()                      {}

var benchHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("ok"))
})

func benchHandlers(b *testing.B) []struct {
	name string
	h    http.Handler
} {
	sdk := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() { _ = sdk.Shutdown(context.Background()) })
	return []struct {
		name string
		h    http.Handler
	}{
		{"bare", benchHandler},
		{"middleware", bulwarkhttp.Handler(benchHandler, policytest.PassThrough)},
		{"middleware-sdk", bulwarkhttp.Handler(benchHandler, policytest.PassThrough, bulwarkhttp.WithMeterProvider(sdk))},
	}
}

func BenchmarkMiddleware(b *testing.B) {
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, bh := range benchHandlers(b) {
		b.Run("recorder/"+bh.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bh.h.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
		b.Run("reusable/"+bh.name, func(b *testing.B) {
			w := &reusableWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				w.status = 0
				bh.h.ServeHTTP(w, req)
			}
		})
		b.Run("parallel/"+bh.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				w := &reusableWriter{h: http.Header{}}
				for pb.Next() {
					w.status = 0
					bh.h.ServeHTTP(w, req)
				}
			})
		})
	}
	for _, bc := range []struct {
		name string
		hdr  http.Header
		opts []bulwarkhttp.Option
	}{
		{"priority-header", http.Header{"Bulwark-Priority": {"sheddable"}}, nil},
		{"ratelimit-headers", nil, []bulwarkhttp.Option{bulwarkhttp.WithRateLimitHeaders(true)}},
		{"priority-and-ratelimit-headers", http.Header{"Bulwark-Priority": {"sheddable"}}, []bulwarkhttp.Option{bulwarkhttp.WithRateLimitHeaders(true)}},
		{"drill-header", http.Header{"Bulwark-Drill": {"game-day"}}, nil},
	} {
		h := bulwarkhttp.Handler(benchHandler, policytest.PassThrough, bc.opts...)
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header = bc.hdr
		if req.Header == nil {
			req.Header = http.Header{}
		}
		b.Run("reusable/middleware-"+bc.name, func(b *testing.B) {
			w := &reusableWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				w.status = 0
				h.ServeHTTP(w, req)
			}
		})
		b.Run("parallel/middleware-"+bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				w := &reusableWriter{h: http.Header{}}
				for pb.Next() {
					w.status = 0
					h.ServeHTTP(w, req)
				}
			})
		})
	}
}

func BenchmarkTransport(b *testing.B) {
	srv := httptest.NewServer(benchHandler)
	defer srv.Close()
	for _, bt := range []struct {
		name string
		rt   func(base http.RoundTripper) http.RoundTripper
	}{
		{"bare", func(base http.RoundTripper) http.RoundTripper { return base }},
		{"transport", func(base http.RoundTripper) http.RoundTripper {
			return bulwarkhttp.Transport(policytest.PassThrough, base)
		}},
		{"transport-admitter", func(base http.RoundTripper) http.RoundTripper {
			return bulwarkhttp.Transport(&policytest.Gate{Limit: 1 << 20}, base)
		}},
		{"transport-timeout", func(base http.RoundTripper) http.RoundTripper {
			return bulwarkhttp.Transport(bulwark.Timeout(10e9), base)
		}},
	} {
		b.Run(bt.name, func(b *testing.B) {
			base := &http.Transport{}
			defer base.CloseIdleConnections()
			client := &http.Client{Transport: bt.rt(base)}
			b.ReportAllocs()
			for b.Loop() {
				resp, err := client.Get(srv.URL)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			}
		})
	}
}
