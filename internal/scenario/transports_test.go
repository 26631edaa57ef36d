package scenario_test

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/retry"
)

// A handler that honours its context under the server's own timeout: over
// the wire its client gets 503 problem+json "timed out" (not an empty 200),
// and the server's breaker counts each as a failure until it opens.
func TestServerTimeoutAnsweredAndCounted(t *testing.T) {
	brk := breaker.New("timeouts", breaker.WithConsecutiveFailures(2), breaker.WithBreakDuration(time.Hour))
	t.Cleanup(func() { _ = brk.Close() })
	var ran atomic.Int32
	srv := serve(t, bulwarkhttp.Middleware(bulwark.Chain(brk, bulwark.Timeout(20*time.Millisecond)))(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ran.Add(1)
			<-r.Context().Done() // gives up without writing
		})))
	for i := range 2 {
		a := send(t, srv.Client(), http.MethodGet, srv.URL)
		if a.status != http.StatusServiceUnavailable || a.contentType != "application/problem+json" || a.problem.Detail != "the request timed out" {
			t.Fatalf("request %d: %d %q %+v, want 503 problem+json, the request timed out", i+1, a.status, a.contentType, a.problem)
		}
	}
	if s := brk.State(); s != breaker.StateOpen {
		t.Fatalf("breaker state = %v after two timed-out handlers, want open", s)
	}
	a := send(t, srv.Client(), http.MethodGet, srv.URL)
	checkRefusal(t, a, http.StatusServiceUnavailable)
	if n := ran.Load(); n != 2 {
		t.Errorf("handler ran %d times, want 2 (the open breaker refuses the third)", n)
	}
}

// A drill marker crosses two hops: the client's Bulwark-Drill reaches A's
// handler as bulwark.DrillFrom, and A's Transport sends it on to B; A
// marks its degraded answer.
func TestDrillAndDegradedAcrossHops(t *testing.T) {
	var atB atomic.Value
	b := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		atB.Store(r.Header.Get("Bulwark-Drill"))
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	toB := &http.Client{Transport: bulwarkhttp.Transport(bulwark.Chain(), b.Client().Transport)}
	var atA atomic.Value
	a := serve(t, bulwarkhttp.Middleware(bulwark.Chain())(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		atA.Store(bulwark.DrillFrom(r.Context()))
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, b.URL, nil)
		resp, err := toB.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		bulwarkhttp.MarkDegraded(w, "recommendations")
		io.WriteString(w, "page without recommendations")
	})))
	req, _ := http.NewRequestWithContext(bounded(t), http.MethodGet, a.URL, nil)
	req.Header.Set("Bulwark-Drill", "game-day-7")
	resp, err := a.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Bulwark-Degraded"); got != "recommendations" {
		t.Errorf("Bulwark-Degraded = %q, want recommendations", got)
	}
	if got, _ := atA.Load().(string); got != "game-day-7" {
		t.Errorf("A's handler saw drill %q, want game-day-7", got)
	}
	if got, _ := atB.Load().(string); got != "game-day-7" {
		t.Errorf("B got Bulwark-Drill %q, want game-day-7", got)
	}
}

// SPEC's client stack: Transport(retry, Transport(Chain(breaker), base)).
// With the breaker open, the caller gets the breaker's refusal, one
// refusal of its own class, never "downstream unreachable", and no
// request reaches the downstream.
func TestStackedTransportsKeepTheRefusal(t *testing.T) {
	var hits atomic.Int32
	b := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	brk := breaker.New("b")
	t.Cleanup(func() { _ = brk.Close() })
	brk.ForceOpen()
	client := &http.Client{Transport: bulwarkhttp.Transport(
		retry.New(retry.WithMaxAttempts(3), retry.WithInitialDelay(time.Millisecond), retry.WithMaxDelay(time.Millisecond)),
		bulwarkhttp.Transport(brk, b.Client().Transport))}
	_, err := trySend(t, client, http.MethodGet, b.URL)
	if err == nil {
		t.Fatal("the call went through an open breaker")
	}
	if !bulwark.IsRefusal(err) || errors.Is(err, bulwark.ErrRemoteUnavailable) || strings.Contains(err.Error(), "unreachable") {
		t.Errorf("error = %v, want the breaker's refusal alone", err)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("downstream hit %d times, want 0", n)
	}
}
