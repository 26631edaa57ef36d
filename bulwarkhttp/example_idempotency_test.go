package bulwarkhttp_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/idempotency"
)

type idemUserKey struct{}

// Idempotency-Key on a payment endpoint: the first POST executes, its
// duplicate replays the stored answer with Idempotent-Replayed: true, and
// the same key with another body is refused with 422. The scope comes
// from the user that authentication put in the context (by default it is
// the Authorization header, and anonymous callers share one scope).
func ExampleIdempotency() {
	var payments int
	pay := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		payments++
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Location", fmt.Sprintf("/payments/%d", payments))
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"payment":%d}`, payments)
	})
	idem := bulwarkhttp.Idempotency(idempotency.NewMemoryStore(),
		idempotency.WithScope(func(ctx context.Context) string {
			user, _ := ctx.Value(idemUserKey{}).(string)
			return user
		}))
	authenticate := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			user := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), idemUserKey{}, user)))
		})
	}
	srv := httptest.NewServer(authenticate(idem(pay)))
	defer srv.Close()

	post := func(body string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/payments", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer alice")
		req.Header.Set("Idempotency-Key", `"8e03978e-40d5-43e8-bc93-6894a57f9324"`)
		resp, err := srv.Client().Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		fmt.Println(resp.StatusCode, resp.Header.Get("Location"), resp.Header.Get("Idempotent-Replayed"), resp.Header.Get("Content-Type"))
		if resp.StatusCode == http.StatusCreated {
			fmt.Println(string(b))
		}
	}
	post(`{"amount":1000}`)
	post(`{"amount":1000}`)
	post(`{"amount":9999}`)
	// Output:
	// 201 /payments/1  application/json
	// {"payment":1}
	// 201 /payments/1 true application/json
	// {"payment":1}
	// 422   application/problem+json
}
