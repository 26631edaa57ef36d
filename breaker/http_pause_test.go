package breaker_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
)

// End to end over loopback HTTP: a downstream's 429 + Retry-After, decoded
// by bulwarkhttp.Transport, pauses the breaker for every caller; the
// downstream sees no more calls until then.
func TestPauseOnHintOverHTTP(t *testing.T) {
	for _, status := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			var hits atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				hits.Add(1)
				w.Header().Set("Retry-After", "120")
				w.WriteHeader(status)
			}))
			defer srv.Close()
			b := breaker.New("partner", breaker.WithPauseOnHint())
			defer b.Close()
			client := &http.Client{Transport: bulwarkhttp.Transport(b, srv.Client().Transport)}
			defer client.CloseIdleConnections()

			get := func() (*http.Response, error) {
				req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL, nil)
				return client.Do(req)
			}
			resp, err := get()
			if err != nil {
				t.Fatalf("first call: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != status {
				t.Fatalf("first call: status %d, want %d", resp.StatusCode, status)
			}
			if got := b.State(); got != breaker.StatePaused {
				t.Fatalf("State() after %d + Retry-After = %v, want paused", status, got)
			}
			for range 5 {
				resp, err := get()
				if err == nil {
					resp.Body.Close()
					t.Fatalf("call while paused: status %d, want a local refusal", resp.StatusCode)
				}
				if !errors.Is(err, breaker.ErrPaused) || !errors.Is(err, bulwark.ErrUnavailable) {
					t.Fatalf("call while paused: %v, want %v", err, breaker.ErrPaused)
				}
				if d, _ := bulwark.RetryAfter(err); d <= 100*time.Second || d > 120*time.Second {
					t.Errorf("hint while paused = %v, want about 120s", d)
				}
			}
			if n := hits.Load(); n != 1 {
				t.Errorf("downstream hits = %d, want 1: the pause let calls through", n)
			}
		})
	}
}
