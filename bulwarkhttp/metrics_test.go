package bulwarkhttp_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/internal/metrictest"
)

// counts returns the points of the counter name of the policy called
// policy, keyed by bulwark.outcome. It fails the test unless name is a
// monotonic int64 sum and this package's meter is the only one.
func counts(t *testing.T, r *metrictest.Reader, name, policy string) map[string]int64 {
	t.Helper()
	if mono, ok := r.Monotonic(name); !ok || !mono {
		t.Fatalf("%s is not a monotonic Int64 sum", name)
	}
	if got, want := r.Scopes(), []string{"github.com/bulwark-go/bulwark/bulwarkhttp"}; !slices.Equal(got, want) {
		t.Errorf("meters = %v, want %v", got, want)
	}
	out := map[string]int64{}
	for k, v := range r.Int64Where(name, "bulwark.policy.name", policy) {
		out[strings.TrimPrefix(k, "bulwark.outcome=")] = v
	}
	return out
}

func TestServerMetrics(t *testing.T) {
	reader := metrictest.New(t)
	mp := reader.Provider

	p := bulwark.PolicyFunc(func(ctx context.Context, fn func(context.Context) error) error {
		if ctx.Value(refuseKey{}) != nil {
			return &refusal{class: bulwark.ErrRejected}
		}
		return fn(ctx)
	})
	h := bulwarkhttp.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}), p, bulwarkhttp.WithMeterProvider(mp), bulwarkhttp.WithName("api"))
	serveOne := func(path string, refuse bool) {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if refuse {
			req = req.WithContext(context.WithValue(req.Context(), refuseKey{}, true))
		}
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	serveOne("/", false)
	serveOne("/", false)
	serveOne("/fail", false)
	serveOne("/", true)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil).WithContext(cancelled))

	got := counts(t, reader, "bulwark.http.server.requests", "api")
	want := map[string]int64{"success": 2, "failure": 1, "refused": 1, "ignored": 1}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("bulwark.http.server.requests{outcome=%s} = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
}

type refuseKey struct{}

func TestClientMetrics(t *testing.T) {
	reader := metrictest.New(t)
	mp := reader.Provider

	s := &scripted{statuses: []int{200, 503}}
	srv, c := serve(t, s)
	p := bulwark.PolicyFunc(func(ctx context.Context, fn func(context.Context) error) error {
		if ctx.Value(refuseKey{}) != nil {
			return &refusal{class: bulwark.ErrUnavailable}
		}
		return fn(ctx)
	})
	client := &http.Client{Transport: bulwarkhttp.Transport(p, c.Transport, bulwarkhttp.WithMeterProvider(mp))}
	for _, refuse := range []bool{false, false, true} {
		ctx := context.Background()
		if refuse {
			ctx = context.WithValue(ctx, refuseKey{}, true)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		resp, err := client.Do(req)
		if err == nil {
			readAll(t, resp)
		} else if !errors.Is(err, bulwark.ErrUnavailable) {
			t.Fatal(err)
		}
	}
	got := counts(t, reader, "bulwark.http.client.requests", "client")
	want := map[string]int64{"success": 1, "failure": 1, "refused": 1, "ignored": 0}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("bulwark.http.client.requests{outcome=%s} = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
}
