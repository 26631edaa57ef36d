package retry_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/internal/metrictest"
	"github.com/bulwark-go/bulwark/retry"
)

// backend is a real loopback HTTP server that records every request and
// answers the n-th (1-based) with respond(n, w).
type backend struct {
	*httptest.Server
	mu       sync.Mutex
	attempts []string // Bulwark-Attempt of each request
	bodies   [][]byte
	respond  func(n int, w http.ResponseWriter)
}

func newBackend(t *testing.T, respond func(n int, w http.ResponseWriter)) *backend {
	t.Helper()
	b := &backend{respond: respond}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("backend: reading the body: %v", err)
		}
		b.mu.Lock()
		b.attempts = append(b.attempts, r.Header.Get("Bulwark-Attempt"))
		b.bodies = append(b.bodies, body)
		n := len(b.attempts)
		b.mu.Unlock()
		b.respond(n, w)
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *backend) seen() ([]string, [][]byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.attempts...), append([][]byte(nil), b.bodies...)
}

// answerHTTP answers every request with code and the header kv pairs, except
// that requests from okFrom on (when > 0) get 200.
func answerHTTP(code, okFrom int, kv ...string) func(int, http.ResponseWriter) {
	return func(n int, w http.ResponseWriter) {
		if okFrom > 0 && n >= okFrom {
			_, _ = io.WriteString(w, "ok")
			return
		}
		for i := 0; i+1 < len(kv); i += 2 {
			w.Header().Set(kv[i], kv[i+1])
		}
		w.WriteHeader(code)
	}
}

// httpClient is a client whose requests go through bulwarkhttp.Transport
// under r (over http.DefaultTransport), its idle connections closed at the
// end of the test.
func httpClient(t *testing.T, r *retry.Retrier) *http.Client {
	c := &http.Client{Transport: bulwarkhttp.Transport(r, nil)}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func TestHTTPRetryAfter(t *testing.T) {
	for _, tt := range []struct {
		name       string
		give       func() func(int, http.ResponseWriter)
		wantCalls  int
		wantStatus int
		minDelay   time.Duration // the hint the server sent, as measured
		maxDelay   time.Duration
	}{
		{name: "503 delta-seconds", give: func() func(int, http.ResponseWriter) {
			return answerHTTP(503, 2, "Retry-After", "1")
		}, wantCalls: 2, wantStatus: 200, minDelay: time.Second, maxDelay: time.Second},
		{name: "503 HTTP-date", give: func() func(int, http.ResponseWriter) {
			// Whole seconds: the date lies 1 to 2 s ahead.
			return answerHTTP(503, 2, "Retry-After", time.Now().Add(2*time.Second).UTC().Format(http.TimeFormat))
		}, wantCalls: 2, wantStatus: 200, minDelay: 900 * time.Millisecond, maxDelay: 2 * time.Second},
		{name: "429 delta-seconds", give: func() func(int, http.ResponseWriter) {
			return answerHTTP(429, 2, "Retry-After", "1")
		}, wantCalls: 2, wantStatus: 200, minDelay: time.Second, maxDelay: time.Second},
		{name: "429 without hint", give: func() func(int, http.ResponseWriter) {
			return answerHTTP(429, 2)
		}, wantCalls: 1, wantStatus: 429},
		{name: "503 hint past the deadline", give: func() func(int, http.ResponseWriter) {
			return answerHTTP(503, 2, "Retry-After", "120")
		}, wantCalls: 1, wantStatus: 503},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reader := metrictest.New(t)
			mp := reader.Provider
			// Without the hint the backoff (an hour) would end past the
			// deadline and stop the call after one attempt.
			r := retry.New(retry.WithInitialDelay(time.Hour), retry.WithMaxDelay(time.Hour), retry.WithMeterProvider(mp))
			reader.Keep(r)
			srv := newBackend(t, tt.give())
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
			start := time.Now()
			resp, err := httpClient(t, r).Do(req)
			if err != nil {
				t.Fatalf("Do() = %v, want a response", err)
			}
			_ = resp.Body.Close()
			el := time.Since(start)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			attempts, _ := srv.seen()
			if len(attempts) != tt.wantCalls {
				t.Errorf("server saw %d requests, want %d", len(attempts), tt.wantCalls)
			}
			n, sum := histCount(t, reader, "bulwark.retry.delay", "bulwark.reason", "hint")
			if tt.wantCalls == 1 {
				if el > 500*time.Millisecond {
					t.Errorf("Do took %v, want it to return at once", el)
				}
				if n != 0 {
					t.Errorf("%d delays recorded, want none", n)
				}
				return
			}
			if n != 1 || sum < tt.minDelay.Seconds() || sum > tt.maxDelay.Seconds() {
				t.Errorf("hint delays = %d summing %vs, want 1 within [%v, %v]", n, sum, tt.minDelay, tt.maxDelay)
			}
			if el < tt.minDelay {
				t.Errorf("Do took %v, want at least the hint %v", el, tt.minDelay)
			}
		})
	}
}

func TestHTTPReplay(t *testing.T) {
	payload := make([]byte, 64<<10)
	_, _ = rand.Read(payload)
	for _, tt := range []struct {
		name         string
		method       string
		body         func() io.Reader
		key          string
		respond      func(int, http.ResponseWriter)
		wantStatus   int
		wantAttempts []string
	}{
		{name: "GET retried", method: http.MethodGet, respond: answerHTTP(503, 3), wantStatus: 200,
			wantAttempts: []string{"1", "2", "3"}},
		{name: "PUT body replayed", method: http.MethodPut, body: func() io.Reader { return bytes.NewReader(payload) },
			respond: answerHTTP(503, 3), wantStatus: 200, wantAttempts: []string{"1", "2", "3"}},
		{name: "PUT gives up after 3", method: http.MethodPut, body: func() io.Reader { return bytes.NewReader(payload) },
			respond: answerHTTP(502, 0), wantStatus: 502, wantAttempts: []string{"1", "2", "3"}},
		{name: "POST without key sent once", method: http.MethodPost, body: func() io.Reader { return bytes.NewReader(payload) },
			respond: answerHTTP(503, 0), wantStatus: 503, wantAttempts: []string{"1"}},
		{name: "POST without key, 429 with hint, sent once", method: http.MethodPost, body: func() io.Reader { return bytes.NewReader(payload) },
			respond: answerHTTP(429, 0, "Retry-After", "1"), wantStatus: 429, wantAttempts: []string{"1"}},
		{name: "POST with key replayed", method: http.MethodPost, body: func() io.Reader { return bytes.NewReader(payload) },
			key: `"8e03978e-40d5-43e8-bc93-6894a57f9324"`, respond: answerHTTP(503, 2), wantStatus: 200, wantAttempts: []string{"1", "2"}},
		{name: "PUT body that cannot be rewound sent once", method: http.MethodPut,
			body:    func() io.Reader { return io.MultiReader(bytes.NewReader(payload)) }, // no GetBody
			respond: answerHTTP(503, 0), wantStatus: 503, wantAttempts: []string{"1"}},
		{name: "500 not retried", method: http.MethodGet, respond: answerHTTP(500, 0), wantStatus: 500, wantAttempts: []string{"1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := retry.New(retry.WithInitialDelay(time.Millisecond))
			srv := newBackend(t, tt.respond)
			var body io.Reader
			if tt.body != nil {
				body = tt.body()
			}
			req, err := http.NewRequest(tt.method, srv.URL, body)
			if err != nil {
				t.Fatal(err)
			}
			if tt.key != "" {
				req.Header.Set("Idempotency-Key", tt.key)
			}
			resp, err := httpClient(t, r).Do(req)
			if err != nil {
				t.Fatalf("Do() = %v, want a response", err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			attempts, bodies := srv.seen()
			if strings.Join(attempts, ",") != strings.Join(tt.wantAttempts, ",") {
				t.Errorf("Bulwark-Attempt per request = %q, want %q", attempts, tt.wantAttempts)
			}
			if tt.body == nil {
				return
			}
			for i, b := range bodies {
				if !bytes.Equal(b, payload) {
					t.Errorf("request %d: body of %d bytes differs from the %d bytes sent", i+1, len(b), len(payload))
				}
			}
		})
	}
}

func TestHTTPUnreachable(t *testing.T) {
	// A port nobody listens on: every attempt fails to connect.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	r := retry.New(retry.WithInitialDelay(time.Millisecond))
	for _, tt := range []struct {
		name         string
		method       string
		wantAttempts int
	}{
		{"GET retried", http.MethodGet, 3},
		{"POST sent once", http.MethodPost, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, "http://"+addr+"/", strings.NewReader("x"))
			_, err := httpClient(t, r).Do(req)
			var te *bulwarkhttp.TransportError
			if !errors.As(err, &te) {
				t.Fatalf("Do() = %v, want a *bulwarkhttp.TransportError inside", err)
			}
			var ex *retry.ExhaustedError
			if tt.wantAttempts > 1 {
				if !errors.As(err, &ex) || ex.Attempts != tt.wantAttempts {
					t.Errorf("Do() = %v, want *ExhaustedError after %d attempts", err, tt.wantAttempts)
				}
			} else if errors.As(err, &ex) || te.Attempt != 1 {
				t.Errorf("Do() = %v, want the first attempt's error unchanged", err)
			}
		})
	}
}
