package bulwarkhttp_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/internal/policytest"
)

// TestMiddlewareAddedAllocs counts what the middleware allocates per
// request beyond the bare handler (not timed): nothing on the plain path
// (its writer and state are pooled), one when the request's context
// changes (the request, its context and the quota recorder together).
func TestMiddlewareAddedAllocs(t *testing.T) {
	tests := []struct {
		name string
		hdr  http.Header
		opts []bulwarkhttp.Option
		want float64
	}{
		{"plain", http.Header{}, nil, 0},
		{"critical header", http.Header{"Bulwark-Priority": {"critical"}}, nil, 0},
		{"priority header", http.Header{"Bulwark-Priority": {"sheddable"}}, nil, 1},
		{"rate-limit headers", http.Header{}, []bulwarkhttp.Option{bulwarkhttp.WithRateLimitHeaders(true)}, 1},
		{"both", http.Header{"Bulwark-Priority": {"sheddable"}}, []bulwarkhttp.Option{bulwarkhttp.WithRateLimitHeaders(true)}, 1},
		{"key", http.Header{"X-Tenant": {"acme"}}, []bulwarkhttp.Option{bulwarkhttp.WithKeyFunc(func(r *http.Request) string { return r.Header.Get("X-Tenant") })}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := bulwarkhttp.Handler(benchHandler, policytest.PassThrough, tt.opts...)
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.Header = tt.hdr
			w := &reusableWriter{h: http.Header{}}
			bare := testing.AllocsPerRun(200, func() { w.status = 0; benchHandler.ServeHTTP(w, req) })
			got := testing.AllocsPerRun(200, func() { w.status = 0; h.ServeHTTP(w, req) })
			if added := got - bare; added != tt.want && !raceEnabled {
				t.Errorf("added allocs = %v, want %v", added, tt.want)
			}
		})
	}
}
