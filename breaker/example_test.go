package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
)

// A breaker around an HTTP client call: the downstream's 503s are
// classified as bulwark.ErrRemoteUnavailable, three in a row open the
// breaker, and later calls are refused at once with a retry hint.
func Example() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	client := srv.Client()
	defer client.CloseIdleConnections()

	b := breaker.New("inventory", breaker.WithConsecutiveFailures(3))
	defer b.Close()

	get := func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("inventory: %w: %v", bulwark.ErrRemoteUnavailable, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode >= 500 {
			return fmt.Errorf("inventory: %s: %w", resp.Status, bulwark.ErrRemoteUnavailable)
		}
		return nil
	}

	for range 4 {
		err := b.Do(context.Background(), get)
		fmt.Println(err)
		if errors.Is(err, breaker.ErrOpen) {
			d, _ := bulwark.RetryAfter(err)
			fmt.Println("retry in", d.Round(time.Second))
		}
	}
	fmt.Println(b.State())
	// Output:
	// inventory: 503 Service Unavailable: bulwark: remote unavailable
	// inventory: 503 Service Unavailable: bulwark: remote unavailable
	// inventory: 503 Service Unavailable: bulwark: remote unavailable
	// breaker: "inventory" is open
	// retry in 30s
	// open
}

// A Group keeps one breaker per host: the failing host is cut off, the
// others are not. The key comes from the context (bulwark.WithKey); metrics
// carry the Group's name, never the hosts.
func ExampleGroup() {
	g := breaker.NewGroup("upstreams",
		breaker.WithConsecutiveFailures(2),
		breaker.WithOnStateChange(func(host string, from, to breaker.State) {
			fmt.Printf("%s: %v -> %v\n", host, from, to)
		}))
	defer g.Close()

	call := func(host string, fail bool) error {
		ctx := bulwark.WithKey(context.Background(), host)
		return g.Do(ctx, func(context.Context) error {
			if fail {
				return fmt.Errorf("%s: %w", host, bulwark.ErrRemoteUnavailable)
			}
			return nil
		})
	}

	_ = call("eu.example", true)
	_ = call("eu.example", true)
	fmt.Println(call("eu.example", false))
	fmt.Println(call("us.example", false))
	// Output:
	// eu.example: closed -> open
	// breaker: "upstreams" is open
	// <nil>
}

// Two-step admission covers work that outlives a call, such as a response
// body: done reports the outcome once the work ended.
func ExampleBreaker_Admit() {
	b := breaker.New("stream")
	defer b.Close()

	done, err := b.Admit(context.Background())
	if err != nil {
		fmt.Println("refused:", err)
		return
	}
	// ... read the stream ...
	done(nil)
	fmt.Println(b.Counts().Successes)
	// Output: 1
}

// An operator can force a breaker open during an incident, or disable it so
// that it only records metrics, and reset it afterwards.
func ExampleBreaker_ForceOpen() {
	b := breaker.New("payments")
	defer b.Close()

	b.ForceOpen()
	err := b.Do(context.Background(), func(context.Context) error { return nil })
	fmt.Println(errors.Is(err, breaker.ErrOpen), errors.Is(err, bulwark.ErrUnavailable), b.State())

	b.Reset()
	fmt.Println(b.Do(context.Background(), func(context.Context) error { return nil }), b.State())
	// Output:
	// true true forced_open
	// <nil> closed
}
