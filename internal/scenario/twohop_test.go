package scenario_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/bulkhead"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
)

// serviceA serves behind Middleware and calls b through
// Transport(Chain(retry, breaker, Timeout)) under a budget of 2s taken from
// its own request: a downstream's failure comes back to its caller as
// bulwarkhttp.WriteError maps it, the way a handler is meant to use it.
func serviceA(t *testing.T, b *downstream, brk *breaker.Breaker) *httptest.Server {
	t.Helper()
	toB := clientFor(b, fastRetry(), brk, time.Second)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.url+"/orders?token=secret", nil)
		if err != nil {
			t.Error(err)
			return
		}
		resp, err := toB.Do(req)
		if err != nil {
			bulwarkhttp.WriteError(w, err)
			return
		}
		defer resp.Body.Close()
		if se := bulwarkhttp.NewStatusError(resp, time.Now()); se != nil {
			bulwarkhttp.WriteError(w, se)
			return
		}
		io.WriteString(w, "A: ")
		io.Copy(w, resp.Body)
	})
	return serve(t, bulwarkhttp.Middleware(bulkhead.New("a", 8), bulwarkhttp.WithName("a"))(handler))
}

func TestTwoHop(t *testing.T) {
	tests := []struct {
		name           string
		give           func(int, http.ResponseWriter, *http.Request) // B's answer
		giveTier       string                                        // the client's Bulwark-Priority
		wantStatus     int
		wantRetryAfter string
		wantHitsB      int
		wantTierAtB    string
	}{
		{
			name:       "B up",
			give:       func(_ int, w http.ResponseWriter, r *http.Request) { io.WriteString(w, "B") },
			giveTier:   "sheddable-plus",
			wantStatus: http.StatusOK, wantHitsB: 1, wantTierAtB: "sheddable-plus",
		},
		{
			name:       "B 503 with a hint past A's deadline",
			give:       answerWith(http.StatusServiceUnavailable, "7"),
			giveTier:   "sheddable",
			wantStatus: http.StatusServiceUnavailable, wantRetryAfter: "7", wantHitsB: 1, wantTierAtB: "sheddable",
		},
		{
			name:       "B 503 without a hint",
			give:       answerWith(http.StatusServiceUnavailable, ""),
			giveTier:   "critical-plus", // untrusted: critical downstream
			wantStatus: http.StatusServiceUnavailable, wantHitsB: 3, wantTierAtB: "critical",
		},
		{
			name:       "B 429 without a hint",
			give:       answerWith(http.StatusTooManyRequests, ""),
			wantStatus: http.StatusServiceUnavailable, wantHitsB: 1, wantTierAtB: "critical",
		},
		{
			name:       "B 429 with a hint past A's deadline",
			give:       answerWith(http.StatusTooManyRequests, "5"),
			giveTier:   "sheddable-plus",
			wantStatus: http.StatusServiceUnavailable, wantRetryAfter: "5", wantHitsB: 1, wantTierAtB: "sheddable-plus",
		},
		{
			name:       "B 502",
			give:       answerWith(http.StatusBadGateway, ""),
			giveTier:   "critical",
			wantStatus: http.StatusServiceUnavailable, wantHitsB: 3, wantTierAtB: "critical",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newDownstream(t, tt.give)
			a := serviceA(t, b, breaker.New("b"))
			var hdr []string
			if tt.giveTier != "" {
				hdr = []string{"Bulwark-Priority", tt.giveTier}
			}
			got := send(t, a.Client(), http.MethodGet, a.URL, hdr...)
			if got.status != tt.wantStatus || got.retryAfter != tt.wantRetryAfter {
				t.Errorf("A answered %d with Retry-After %q, want %d with %q (body %q)",
					got.status, got.retryAfter, tt.wantStatus, tt.wantRetryAfter, got.body)
			}
			if got.status == http.StatusOK && got.body != "A: B" {
				t.Errorf("body = %q, want %q", got.body, "A: B")
			}
			if got.status != http.StatusOK && (got.problem.Status != got.status || got.contentType != "application/problem+json") {
				t.Errorf("problem %+v with Content-Type %q, want problem+json with status %d", got.problem, got.contentType, got.status)
			}
			hits := b.seen()
			if len(hits) != tt.wantHitsB {
				t.Fatalf("B saw %d requests, want %d", len(hits), tt.wantHitsB)
			}
			for i, h := range hits {
				if h.priority != tt.wantTierAtB || h.attempt != strconv.Itoa(i+1) {
					t.Errorf("B's request %d: Bulwark-Priority %q, Bulwark-Attempt %q, want %q and %d",
						i+1, h.priority, h.attempt, tt.wantTierAtB, i+1)
				}
			}
		})
	}
}

// TestTwoHopBreakerOpen: once A's breaker for B is open, A answers 503 with
// the rest of the break as Retry-After without calling B, and its problem
// body names the refusal without the downstream's address.
func TestTwoHopBreakerOpen(t *testing.T) {
	b := newDownstream(t, answerWith(http.StatusServiceUnavailable, ""))
	brk := breaker.New("b", breaker.WithConsecutiveFailures(3), breaker.WithBreakDuration(time.Minute))
	a := serviceA(t, b, brk)

	if got := send(t, a.Client(), http.MethodGet, a.URL); got.status != http.StatusServiceUnavailable || got.retryAfter != "" {
		t.Fatalf("A answered %d with Retry-After %q, want 503 without one", got.status, got.retryAfter)
	}
	if n := len(b.seen()); n != 3 || brk.State() != breaker.StateOpen {
		t.Fatalf("B saw %d requests, breaker %v, want 3 and open", n, brk.State())
	}
	got := send(t, a.Client(), http.MethodGet, a.URL)
	checkRefusal(t, got, http.StatusServiceUnavailable)
	if s, _ := strconv.Atoi(got.retryAfter); s > 60 {
		t.Errorf("Retry-After = %q, want at most the minute's break", got.retryAfter)
	}
	if n := len(b.seen()); n != 3 {
		t.Errorf("B saw %d requests, want still 3", n)
	}
	if d := got.problem.Detail; !strings.Contains(d, `breaker: "b" is open`) || strings.Contains(d, "127.0.0.1") || strings.Contains(d, "secret") {
		t.Errorf("problem detail = %q, want the breaker's message without the downstream's URL", d)
	}
}
