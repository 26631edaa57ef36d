package bulwarkhttp_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/internal/metrictest"
)

// idemBenchWriter is a ResponseWriter reused across requests.
type idemBenchWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *idemBenchWriter) Header() http.Header         { return w.h }
func (w *idemBenchWriter) WriteHeader(code int)        { w.status = code }
func (w *idemBenchWriter) Write(b []byte) (int, error) { w.n += len(b); return len(b), nil }
func (w *idemBenchWriter) Flush()                      {}
func (w *idemBenchWriter) reset()                      { clear(w.h); w.status, w.n = 0, 0 }
func newIdemBenchWriter() *idemBenchWriter             { return &idemBenchWriter{h: http.Header{}} }
func (r *idemRewindBody) Read(p []byte) (int, error)   { return r.Reader.Read(p) }
func (r *idemRewindBody) Close() error                 { return nil }
func (r *idemRewindBody) rewind()                      { r.Reset(r.b) }
func newIdemRewindBody(b []byte) *idemRewindBody       { r := &idemRewindBody{b: b}; r.rewind(); return r }
func (r *idemRewindBody) String() string               { return string(r.b) }
func idemBenchKeys(n int) (keys [][]string) {
	for i := range n {
		keys = append(keys, []string{"key-" + strconv.Itoa(i)})
	}
	return
}

// idemRewindBody is a request body read again on each iteration.
type idemRewindBody struct {
	bytes.Reader
	b []byte
}

var idemBenchHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write([]byte(`{"id":"ord_1","amount":1000}`))
})

// BenchmarkIdempotency: a new request (each key executes: records expire
// at once) and a replay (one key) through the middleware over the memory
// store, next to the bare handler, on a reused writer and request.
func BenchmarkIdempotency(b *testing.B) {
	payload := []byte(`{"amount":1000,"currency":"eur"}`)
	for _, mp := range metrictest.Providers(b) {
		cases := []struct {
			name string
			h    http.Handler
			keys [][]string
		}{
			{"bare", idemBenchHandler, idemBenchKeys(1)},
			{"new", bulwarkhttp.Idempotency(idempotency.NewMemoryStore(idempotency.WithMeterProvider(mp.Provider)),
				idempotency.WithRetention(time.Nanosecond), idempotency.WithMeterProvider(mp.Provider))(idemBenchHandler), idemBenchKeys(4096)},
			{"replay", bulwarkhttp.Idempotency(idempotency.NewMemoryStore(idempotency.WithMeterProvider(mp.Provider)),
				idempotency.WithMeterProvider(mp.Provider))(idemBenchHandler), idemBenchKeys(1)},
		}
		for _, c := range cases {
			b.Run(mp.Name+"/"+c.name, func(b *testing.B) {
				w, body := newIdemBenchWriter(), newIdemRewindBody(payload)
				req := httptest.NewRequest(http.MethodPost, "/orders", body)
				req.Header.Set("Authorization", "Bearer sk_test_123")
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					w.reset()
					body.rewind()
					req.Header["Idempotency-Key"] = c.keys[i%len(c.keys)]
					i++
					c.h.ServeHTTP(w, req)
					if w.status != http.StatusCreated {
						b.Fatalf("status %d", w.status)
					}
				}
			})
			b.Run(mp.Name+"/"+c.name+"/parallel", func(b *testing.B) {
				var next atomic.Int64
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					w, body := newIdemBenchWriter(), newIdemRewindBody(payload)
					req := httptest.NewRequest(http.MethodPost, "/orders", body)
					req.Header.Set("Authorization", "Bearer sk_test_"+strconv.FormatInt(next.Add(1), 10))
					i := 0
					for pb.Next() {
						w.reset()
						body.rewind()
						req.Header["Idempotency-Key"] = c.keys[i%len(c.keys)]
						i++
						c.h.ServeHTTP(w, req)
					}
				})
			})
		}
	}
}
