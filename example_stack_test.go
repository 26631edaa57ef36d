package bulwark_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/bulkhead"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/ratelimit"
	"github.com/bulwark-go/bulwark/retry"
)

// A server sheds load before it reaches the handler: a tiered rate limit,
// then a compartment. Refusals are 503 with Retry-After and a problem+json
// body; sheddable work is refused first.
func Example_server() {
	limiter := ratelimit.New("api", 1, 4) // 1 req/s, bursts of 4: sheddable keeps 2 in reserve
	pool := bulkhead.New("api", 64)
	checkout := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ordered")
	})
	h := bulwarkhttp.Handler(checkout, bulwark.Chain(limiter, pool))

	for _, tier := range []string{"sheddable", "sheddable", "sheddable", "critical", "critical"} {
		r := httptest.NewRequest(http.MethodPost, "/checkout", nil)
		r.Header.Set("Bulwark-Priority", tier)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if ra := w.Header().Get("Retry-After"); ra != "" {
			fmt.Println(tier, w.Code, "Retry-After:", ra)
			continue
		}
		fmt.Println(tier, w.Code)
	}
	// Output:
	// sheddable 200
	// sheddable 200
	// sheddable 503 Retry-After: 1
	// critical 200
	// critical 200
}

// A client retries a flaky downstream with a budget, around a breaker, each
// attempt under its own timeout. The downstream's 503 + Retry-After: 0 is
// retried after the backoff delay; the caller sees the final answer.
func Example_client() {
	var calls atomic.Int32
	downstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "0")
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "paid on attempt %s", r.Header.Get("Bulwark-Attempt"))
	}))
	defer downstream.Close()

	policy := bulwark.Chain(
		retry.New(retry.WithBudget(retry.NewBudget()), retry.WithInitialDelay(time.Millisecond)),
		breaker.New("payments"),
		bulwark.Timeout(2*time.Second),
	)
	client := &http.Client{Transport: bulwarkhttp.Transport(policy, nil)}
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, downstream.URL, nil)
	resp, err := client.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	// Output: 200 paid on attempt 2
}
