package bulwarkhttp_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
)

// overloaded stands for any admission policy (a bulkhead, a rate limit)
// that refuses with a class error and a retry hint.
type overloaded struct{}

func (overloaded) Error() string             { return "example: overloaded: " + bulwark.ErrUnavailable.Error() }
func (overloaded) Unwrap() error             { return bulwark.ErrUnavailable }
func (overloaded) RetryAfter() time.Duration { return 1500 * time.Millisecond }

func ExampleMiddleware() {
	shed := bulwark.PolicyFunc(func(ctx context.Context, fn func(context.Context) error) error {
		if bulwark.PriorityFrom(ctx) < bulwark.Critical {
			return overloaded{} // shed sheddable work
		}
		return fn(ctx)
	})
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello\n") })
	h := bulwarkhttp.Middleware(shed)(mux)

	for _, tier := range []string{"critical", "sheddable"} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Bulwark-Priority", tier)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		fmt.Println(tier, rec.Code, rec.Header().Get("Retry-After"), rec.Header().Get("Content-Type"))
		fmt.Print(rec.Body.String())
	}
	// Output:
	// critical 200  text/plain; charset=utf-8
	// hello
	// sheddable 503 2 application/problem+json
	// {"type":"about:blank","title":"Service Unavailable","status":503,"detail":"example: overloaded: bulwark: unavailable"}
}

func ExampleTransport() {
	var calls int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if calls == 1 {
			w.Header().Set("Retry-After", "0")
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "attempt %s, priority %s\n", r.Header.Get("Bulwark-Attempt"), r.Header.Get("Bulwark-Priority"))
	}))
	defer srv.Close()

	// A tiny retry policy; use package retry in real code.
	retryOnce := bulwark.PolicyFunc(func(ctx context.Context, fn func(context.Context) error) error {
		err := fn(ctx)
		var se *bulwarkhttp.StatusError
		if errors.As(err, &se) && errors.Is(err, bulwark.ErrRemoteUnavailable) && se.Retryable() {
			fmt.Println("retrying after", se.StatusCode)
			err = fn(bulwark.WithAttempt(ctx, 2))
		}
		return err
	})
	client := &http.Client{Transport: bulwarkhttp.Transport(retryOnce, srv.Client().Transport)}
	ctx := bulwark.WithPriority(context.Background(), bulwark.SheddablePlus)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	resp, err := client.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Print(resp.StatusCode, " ", string(body))
	// Output:
	// retrying after 503
	// 200 attempt 2, priority sheddable-plus
}

func ExampleMarkDegraded() {
	h := bulwarkhttp.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The reviews service is down: serve the page without them.
		bulwarkhttp.MarkDegraded(w, "reviews")
		io.WriteString(w, "product page, no reviews\n")
	}), bulwark.Chain())
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	fmt.Println(rec.Code, rec.Header().Get("Bulwark-Degraded"))
	// Output:
	// 200 reviews
}

// A handler that honours its context under the middleware's own timeout:
// the client gets the answer for the timeout, not an empty 200.
func ExampleMiddleware_timeout() {
	h := bulwarkhttp.Middleware(bulwark.Timeout(time.Millisecond))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // gives up without writing
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	fmt.Print(rec.Body.String())
	// Output:
	// 503 application/problem+json
	// {"type":"about:blank","title":"Service Unavailable","status":503,"detail":"the request timed out"}
}
