package bulwarkhttp_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
)

// counts collects the data points of an Int64 sum by bulwark.outcome.
func counts(t *testing.T, r *sdkmetric.ManualReader, name, policy string) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != "github.com/bulwark-go/bulwark/bulwarkhttp" {
			continue
		}
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok || !sum.IsMonotonic {
				t.Fatalf("%s is %T, want a monotonic Int64 sum", name, m.Data)
			}
			for _, dp := range sum.DataPoints {
				if v, _ := dp.Attributes.Value("bulwark.policy.name"); v.AsString() != policy {
					continue
				}
				oc, _ := dp.Attributes.Value(attribute.Key("bulwark.outcome"))
				out[oc.AsString()] = dp.Value
			}
		}
	}
	return out
}

func TestServerMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()

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
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()

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
