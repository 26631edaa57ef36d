package scenario_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/bulkhead"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/ratelimit"
	"github.com/bulwark-go/bulwark/retry"
)

// inProcess is a RoundTripper that serves each request with h on the
// caller's goroutine, no network involved, so that the client stack runs in
// a synctest bubble where time is fake and exact.
type inProcess struct {
	h    http.Handler
	mu   sync.Mutex
	hits []time.Time
}

func (p *inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	p.mu.Lock()
	p.hits = append(p.hits, time.Now())
	p.mu.Unlock()
	rec := httptest.NewRecorder()
	p.h.ServeHTTP(rec, r)
	if r.Body != nil {
		r.Body.Close()
	}
	return rec.Result(), nil
}

func (p *inProcess) seen() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.hits...)
}

func getVia(t *testing.T, rt http.RoundTripper) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://downstream.test/", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp, err
}

// TestClientHintExactInFakeTime: the retry waits exactly the downstream's
// Retry-After, not its hour of backoff.
func TestClientHintExactInFakeTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n int
		down := &inProcess{h: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n++; n == 1 {
				answerWith(http.StatusServiceUnavailable, "2")(n, w, r)
				return
			}
			io.WriteString(w, "ok")
		})}
		rt := bulwarkhttp.Transport(bulwark.Chain(slowRetry(), breaker.New("down"), bulwark.Timeout(time.Second)), down)
		resp, err := getVia(t, rt)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("got %v, %v, want 200", resp, err)
		}
		hits := down.seen()
		if len(hits) != 2 || hits[1].Sub(hits[0]) != 2*time.Second {
			t.Errorf("attempts at %v, want two, 2s apart", hits)
		}
	})
}

// TestClientBreakerCycleInFakeTime: repeated 503s open the breaker, which
// fails fast with the rest of its break as the hint, then lets one probe
// through once the break is over and closes when the downstream is back.
func TestClientBreakerCycleInFakeTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := false
		down := &inProcess{h: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !up {
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
			io.WriteString(w, "ok")
		})}
		b := breaker.New("down", breaker.WithConsecutiveFailures(3), breaker.WithBreakDuration(10*time.Second))
		r := retry.New(retry.WithMaxAttempts(3), retry.WithInitialDelay(time.Second), retry.WithRandomization(0))
		rt := bulwarkhttp.Transport(bulwark.Chain(r, b, bulwark.Timeout(time.Second)), down)

		resp, err := getVia(t, rt)
		if err != nil || resp.StatusCode != http.StatusServiceUnavailable || len(down.seen()) != 3 {
			t.Fatalf("first call: %v, %v after %d requests, want the downstream's 503 after 3", resp, err, len(down.seen()))
		}
		opened := time.Now() // the third failure opened it: no time passed since
		for _, wait := range []time.Duration{0, 4 * time.Second, 5 * time.Second} {
			time.Sleep(wait)
			_, err := getVia(t, rt)
			if !errors.Is(err, breaker.ErrOpen) {
				t.Fatalf("%v after opening: err = %v, want breaker.ErrOpen", time.Since(opened), err)
			}
			want := 10*time.Second - time.Since(opened)
			if h, _ := bulwark.RetryAfter(err); h != want {
				t.Errorf("%v after opening: hint = %v, want %v", time.Since(opened), h, want)
			}
		}
		if n := len(down.seen()); n != 3 {
			t.Fatalf("downstream saw %d requests while open, want 3", n)
		}

		up = true
		// The break is over just past its end: at its very instant gobreaker
		// still refuses (while the hint already reads 0).
		time.Sleep(time.Second + time.Nanosecond)
		resp, err = getVia(t, rt)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("the probe: %v, %v, want 200", resp, err)
		}
		if n, st := len(down.seen()), b.State(); n != 4 || st != breaker.StateClosed {
			t.Errorf("downstream saw %d requests, breaker %v, want 4 and closed", n, st)
		}
	})
}

// TestClientPerAttemptTimeoutInFakeTime: a hung attempt ends at its own
// deadline and the retry is served; the caller waited exactly that long
// plus the backoff.
func TestClientPerAttemptTimeoutInFakeTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n int
		down := &inProcess{h: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n++; n == 1 {
				<-r.Context().Done()
				return
			}
			io.WriteString(w, "ok")
		})}
		r := retry.New(retry.WithMaxAttempts(3), retry.WithInitialDelay(time.Second), retry.WithRandomization(0))
		rt := bulwarkhttp.Transport(bulwark.Chain(r, breaker.New("down"), bulwark.Timeout(5*time.Second)), down)
		start := time.Now()
		resp, err := getVia(t, rt)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("got %v, %v, want 200", resp, err)
		}
		if took := time.Since(start); took != 6*time.Second {
			t.Errorf("took %v, want 6s (a 5s attempt deadline and 1s of backoff)", took)
		}
	})
}

// TestServerRetryAfterIsHonestInFakeTime: a refused request that waits
// less than its Retry-After is refused again; one that waits the
// Retry-After is served.
func TestServerRetryAfterIsHonestInFakeTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A token every 2s, bursts of 4: sheddable must leave 2.
		limiter := ratelimit.New("api", rate.Every(2*time.Second), 4)
		h := bulwarkhttp.Middleware(bulwark.Chain(limiter, bulkhead.New("api", 4)))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "ok")
		}))
		serveOne := func() *httptest.ResponseRecorder {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("Bulwark-Priority", "sheddable")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			return w
		}
		for i := range 2 {
			if w := serveOne(); w.Code != http.StatusOK {
				t.Fatalf("request %d: status = %d, want 200", i+1, w.Code)
			}
		}
		w := serveOne()
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "2" {
			t.Fatalf("request 3: status %d, Retry-After %q, want 503 and 2", w.Code, w.Header().Get("Retry-After"))
		}
		time.Sleep(time.Second)
		if w := serveOne(); w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "1" {
			t.Errorf("1s later: status %d, Retry-After %q, want 503 and 1", w.Code, w.Header().Get("Retry-After"))
		}
		time.Sleep(time.Second)
		if w := serveOne(); w.Code != http.StatusOK {
			t.Errorf("after the Retry-After: status %d, want 200", w.Code)
		}
	})
}
