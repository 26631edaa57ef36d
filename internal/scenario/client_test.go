package scenario_test

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/bulkhead"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/retry"
)

// hit is one request a downstream received.
type hit struct {
	method, attempt, priority, key, body string
	at                                   time.Time
}

// downstream is a test server on 127.0.0.1 that answers its n-th request
// (1-based) with respond and records every request.
type downstream struct {
	url     string
	client  *http.Client
	mu      sync.Mutex
	hits    []hit
	respond func(n int, w http.ResponseWriter, r *http.Request)
}

func newDownstream(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request)) *downstream {
	t.Helper()
	d := &downstream{respond: respond}
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		d.mu.Lock()
		d.hits = append(d.hits, hit{
			method: r.Method, attempt: r.Header.Get("Bulwark-Attempt"), priority: r.Header.Get("Bulwark-Priority"),
			key: r.Header.Get("Idempotency-Key"), body: string(b), at: time.Now(),
		})
		n := len(d.hits)
		d.mu.Unlock()
		d.respond(n, w, r)
	}))
	d.url, d.client = srv.URL, srv.Client()
	return d
}

func (d *downstream) seen() []hit {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]hit(nil), d.hits...)
}

// answerWith answers every request with code, and Retry-After when hint is not
// "".
func answerWith(code int, hint string) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) {
		if hint != "" {
			w.Header().Set("Retry-After", hint)
		}
		http.Error(w, http.StatusText(code), code)
	}
}

// clientFor returns a client that sends to d through
// Transport(Chain(r, b, Timeout(perAttempt))).
func clientFor(d *downstream, r *retry.Retrier, b *breaker.Breaker, perAttempt time.Duration) *http.Client {
	return &http.Client{Transport: bulwarkhttp.Transport(bulwark.Chain(r, b, bulwark.Timeout(perAttempt)), d.client.Transport)}
}

// fastRetry retries three attempts in all, a millisecond apart.
func fastRetry() *retry.Retrier {
	return retry.New(retry.WithMaxAttempts(3), retry.WithInitialDelay(time.Millisecond), retry.WithMaxDelay(time.Millisecond))
}

// slowRetry's backoff is an hour, past every caller's deadline here: only a
// server hint can make it retry.
func slowRetry() *retry.Retrier {
	return retry.New(retry.WithMaxAttempts(3), retry.WithInitialDelay(time.Hour), retry.WithMaxDelay(time.Hour))
}

func TestClientHonoursRetryAfter(t *testing.T) {
	d := newDownstream(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			answerWith(http.StatusServiceUnavailable, "1")(n, w, r)
			return
		}
		io.WriteString(w, "ok")
	})
	c := clientFor(d, slowRetry(), breaker.New("down"), 5*time.Second)
	a, err := trySendCtx(t, bounded(t), c, http.MethodGet, d.url)
	if err != nil {
		t.Fatal(err)
	}
	hits := d.seen()
	if a.status != http.StatusOK || len(hits) != 2 {
		t.Fatalf("status = %d after %d requests, want 200 after 2 (the hint replaces the hour of backoff)", a.status, len(hits))
	}
	if hits[0].attempt != "1" || hits[1].attempt != "2" {
		t.Errorf("Bulwark-Attempt = %q, %q, want 1, 2", hits[0].attempt, hits[1].attempt)
	}
	if gap := hits[1].at.Sub(hits[0].at); gap < time.Second {
		t.Errorf("retried after %v, want at least the Retry-After of 1s", gap)
	}
}

func TestClientHintPastDeadlineStops(t *testing.T) {
	d := newDownstream(t, answerWith(http.StatusServiceUnavailable, "3600"))
	c := clientFor(d, fastRetry(), breaker.New("down"), 5*time.Second)
	a, err := trySendCtx(t, bounded(t), c, http.MethodGet, d.url)
	if err != nil {
		t.Fatal(err)
	}
	if a.status != http.StatusServiceUnavailable || a.retryAfter != "3600" {
		t.Errorf("status = %d, Retry-After = %q, want the downstream's 503 and 3600", a.status, a.retryAfter)
	}
	if n := len(d.seen()); n != 1 {
		t.Errorf("downstream saw %d requests, want 1 (an hour's hint is past the caller's deadline)", n)
	}
}

func TestClientRemoteRejectedWithoutHint(t *testing.T) {
	d := newDownstream(t, answerWith(http.StatusTooManyRequests, ""))
	b := breaker.New("down", breaker.WithConsecutiveFailures(2), breaker.WithMinCalls(2))
	c := clientFor(d, fastRetry(), b, 5*time.Second)
	const calls = 5
	for i := range calls {
		a := send(t, c, http.MethodGet, d.url)
		if a.status != http.StatusTooManyRequests {
			t.Fatalf("call %d: status = %d, want the downstream's 429", i+1, a.status)
		}
	}
	if n := len(d.seen()); n != calls {
		t.Errorf("downstream saw %d requests for %d calls, want %d (a 429 without a hint is not retried)", n, calls, calls)
	}
	if st, cn := b.State(), b.Counts(); st != breaker.StateClosed || cn.Failures != 0 {
		t.Errorf("breaker state = %v with %d failures, want closed with 0 (a 429 is not a failure)", st, cn.Failures)
	}
}

func TestClientBreakerOpensAndFailsFast(t *testing.T) {
	d := newDownstream(t, answerWith(http.StatusServiceUnavailable, ""))
	b := breaker.New("down", breaker.WithConsecutiveFailures(3))
	c := clientFor(d, fastRetry(), b, 5*time.Second)

	a := send(t, c, http.MethodGet, d.url)
	if a.status != http.StatusServiceUnavailable {
		t.Fatalf("first call: status = %d, want the downstream's 503", a.status)
	}
	if n := len(d.seen()); n != 3 {
		t.Fatalf("first call: downstream saw %d requests, want 3 (503 is retried)", n)
	}
	if st := b.State(); st != breaker.StateOpen {
		t.Fatalf("breaker state after 3 failures = %v, want open", st)
	}
	for i := range 3 {
		_, err := trySend(t, c, http.MethodGet, d.url)
		if !errors.Is(err, breaker.ErrOpen) || !errors.Is(err, bulwark.ErrUnavailable) {
			t.Fatalf("call %d with the breaker open: err = %v, want breaker.ErrOpen and bulwark.ErrUnavailable", i+2, err)
		}
		if h, ok := bulwark.RetryAfter(err); !ok || h <= 0 || h > 30*time.Second {
			t.Errorf("call %d: retry hint = %v, %v, want the rest of the 30s break", i+2, h, ok)
		}
	}
	if n := len(d.seen()); n != 3 {
		t.Errorf("downstream saw %d requests, want still 3 (an open breaker fails fast)", n)
	}
}

func TestClientNeverReplaysNonIdempotent(t *testing.T) {
	tests := []struct {
		name   string
		method string
		hdr    []string
		want   int
	}{
		{name: "POST", method: http.MethodPost, want: 1},
		{name: "POST with Idempotency-Key", method: http.MethodPost, hdr: []string{"Idempotency-Key", `"k-1"`}, want: 3},
		{name: "PUT", method: http.MethodPut, want: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDownstream(t, answerWith(http.StatusServiceUnavailable, ""))
			c := clientFor(d, fastRetry(), breaker.New("down"), 5*time.Second)
			a := send(t, c, tt.method, d.url, tt.hdr...)
			if a.status != http.StatusServiceUnavailable {
				t.Errorf("status = %d, want the downstream's 503", a.status)
			}
			hits := d.seen()
			if len(hits) != tt.want {
				t.Fatalf("downstream saw %d requests, want %d", len(hits), tt.want)
			}
			for i, h := range hits {
				if h.body != "payload" || h.attempt != strconv.Itoa(i+1) {
					t.Errorf("request %d: body %q, Bulwark-Attempt %q, want %q and %d", i+1, h.body, h.attempt, "payload", i+1)
				}
			}
		})
	}
}

func TestClientPerAttemptTimeout(t *testing.T) {
	d := newDownstream(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			<-r.Context().Done() // hang until the attempt's deadline cuts the request
			return
		}
		io.WriteString(w, "ok")
	})
	b := breaker.New("down")
	c := clientFor(d, fastRetry(), b, time.Second)
	a, err := trySendCtx(t, bounded(t), c, http.MethodGet, d.url)
	if err != nil {
		t.Fatal(err)
	}
	if a.status != http.StatusOK || a.body != "ok" || len(d.seen()) != 2 {
		t.Errorf("status %d, body %q after %d requests, want 200 ok after 2", a.status, a.body, len(d.seen()))
	}
	if cn := b.Counts(); cn.Failures != 1 || cn.Successes != 1 {
		t.Errorf("breaker counted %d failures and %d successes, want 1 (the timed-out attempt) and 1", cn.Failures, cn.Successes)
	}
}

// TestClientHoldsAdmissionUntilBodyClosed: with the admission policies in
// an inner Transport, a response body still open holds its slot, so the
// next request is refused locally and never sent.
func TestClientHoldsAdmissionUntilBodyClosed(t *testing.T) {
	d := newDownstream(t, func(_ int, w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "body") })
	pool := bulkhead.New("down", 1)
	inner := bulwarkhttp.Transport(bulwark.Chain(breaker.New("down"), pool), d.client.Transport)
	c := &http.Client{Transport: bulwarkhttp.Transport(fastRetry(), inner)}

	req, _ := http.NewRequestWithContext(bounded(t), http.MethodGet, d.url, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if n := pool.InFlight(); n != 1 {
		t.Errorf("in flight with the body open = %d, want 1", n)
	}
	_, err = trySend(t, c, http.MethodGet, d.url)
	if !errors.Is(err, bulkhead.ErrFull) || !errors.Is(err, bulwark.ErrUnavailable) {
		t.Errorf("a second request with the body open: err = %v, want bulkhead.ErrFull", err)
	}
	if n := len(d.seen()); n != 1 {
		t.Errorf("downstream saw %d requests, want 1 (a refusal is not sent, nor retried)", n)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(b) != "body" {
		t.Errorf("body = %q, %v, want %q", b, err, "body")
	}
	if n := pool.InFlight(); n != 0 {
		t.Errorf("in flight once the body is closed = %d, want 0", n)
	}
	if a := send(t, c, http.MethodGet, d.url); a.status != http.StatusOK || len(d.seen()) != 2 {
		t.Errorf("once the body is closed: status %d after %d requests, want 200 after 2", a.status, len(d.seen()))
	}
}
