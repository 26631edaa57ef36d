package bulwarkhttp_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/health"
)

// Kubernetes probes and health+json on one mux. A breaker's b.HealthCheck
// is registered as non-critical: an open breaker downstream is reported,
// but does not take this instance out of rotation.
func ExampleHealth() {
	c := health.New()
	defer c.Close()
	c.Register("db", func(ctx context.Context) error { return nil }, health.WithComponentType("datastore"))
	c.Register("payments", func(ctx context.Context) error { // b.HealthCheck in a service
		return errors.New("breaker: open")
	}, health.WithCritical(false))
	c.Register("event-loop", func(ctx context.Context) error { return nil }, health.WithKind(health.Liveness))

	mux := http.NewServeMux()
	h := bulwarkhttp.Health(c)
	mux.Handle("/livez", h)
	mux.Handle("/readyz", h)
	mux.Handle("/readyz/", h) // one check: /readyz/db

	for _, target := range []string{"/livez", "/readyz", "/readyz?verbose", "/readyz/db", "/readyz?verbose&exclude=payments"} {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest("GET", target, nil))
		fmt.Printf("GET %s → %d\n%s", target, w.Code, w.Body)
	}

	c.StartDrain() // what Drain does first on SIGTERM
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", "/readyz", nil))
	fmt.Printf("draining: GET /readyz → %d\n%s", w.Code, w.Body)
	// Output:
	// GET /livez → 200
	// ok
	// GET /readyz → 200
	// ok
	// GET /readyz?verbose → 200
	// [+]db ok
	// [!]payments warn: breaker: open
	// readyz check passed
	// GET /readyz/db → 200
	// ok
	// GET /readyz?verbose&exclude=payments → 200
	// [+]db ok
	// [+]payments excluded: ok
	// readyz check passed
	// draining: GET /readyz → 503
	// [-]drain failed: health: draining
	// readyz check failed
}

func ExampleHealth_json() {
	c := health.New()
	defer c.Close()
	c.Register("db", func(ctx context.Context) error { return errors.New("connection refused") },
		health.WithComponentType("datastore"))

	r := httptest.NewRequest("GET", "/readyz", nil)
	r.Header.Set("Accept", "application/health+json")
	w := httptest.NewRecorder()
	bulwarkhttp.Health(c).ServeHTTP(w, r)
	fmt.Println(w.Code, w.Header().Get("Content-Type"), w.Header().Get("Cache-Control"))
	// Output: 503 application/health+json no-store
}
