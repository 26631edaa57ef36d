package idempotency_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/idempotency"
)

// The engine on its own, as a face uses it: the first request executes
// and is completed; a duplicate replays; another request under the same
// key is refused.
func ExampleGuard() {
	g := idempotency.New(idempotency.NewMemoryStore())
	ctx := context.Background()
	key, _ := g.Key([]string{`"8e03978e-40d5-43e8-bc93-6894a57f9324"`})
	fp := idempotency.Fingerprint{1} // a digest of the request

	call, _, _ := g.Begin(ctx, key, "Bearer alice", fp)
	// ... run the request under call.Context(ctx), then:
	_ = call.Complete(ctx, &idempotency.Record{Status: 201, Body: []byte("order 1")})

	_, rec, _ := g.Begin(ctx, key, "Bearer alice", fp)
	fmt.Println(rec.Status, string(rec.Body))

	_, _, err := g.Begin(ctx, key, "Bearer alice", idempotency.Fingerprint{2})
	fmt.Println(errors.Is(err, idempotency.ErrMismatch))
	// Output:
	// 201 order 1
	// true
}

func ExampleParseKey() {
	for _, v := range []string{`"a1b2-c3"`, `a1b2-c3`, `"a1b2-c3";client=7`, `"a", "b"`} {
		k, err := idempotency.ParseKey([]string{v})
		fmt.Printf("%-20s %q %v\n", v, k, err)
	}
	// Output:
	// "a1b2-c3"            "a1b2-c3" <nil>
	// a1b2-c3              "a1b2-c3" <nil>
	// "a1b2-c3";client=7   "a1b2-c3" <nil>
	// "a", "b"             "" idempotency: invalid key: a list; send one key
}

// Records in Redis are shared by every instance of a fleet: here two
// servers, each with its own client, and a duplicate sent to the second.
// The client must set ContextTimeoutEnabled.
func ExampleNewRedisStore() {
	var orders int
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		orders++
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "order %d", orders)
	})
	var urls []string
	for range 2 {
		client := redis.NewClient(&redis.Options{Addr: redisAddr, ContextTimeoutEnabled: true})
		defer client.Close()
		srv := httptest.NewServer(bulwarkhttp.Idempotency(idempotency.NewRedisStore(client,
			idempotency.WithPrefix("example:")))(handler))
		defer srv.Close()
		urls = append(urls, srv.URL)
	}
	for _, url := range urls {
		req, _ := http.NewRequest(http.MethodPost, url+"/orders", strings.NewReader(`{"amount":1000}`))
		req.Header.Set("Idempotency-Key", `"order-7"`)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, resp.Header.Get("Idempotent-Replayed"), string(body))
	}
	http.DefaultClient.CloseIdleConnections()
	// Output:
	// 201  order 1
	// 201 true order 1
}
