package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/bulkhead"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/drill"
	"github.com/bulwark-go/bulwark/failover"
	"github.com/bulwark-go/bulwark/retry"
)

// provider is the simulated payment provider: one instance per region
// (primary and standby), each on its own loopback listener. A share of the
// primary's answers are 503s (-payments-fail-rate), and every answer can
// be slowed down (-payments-latency).
type provider struct {
	name     string
	failRate atomic.Uint64 // math.Float64bits of the share of 503s
	latency  time.Duration
	calls    *atomic.Int64 // every call that reached a provider
	seq      atomic.Int64
}

func (p *provider) setFailRate(f float64) { p.failRate.Store(uint64(f * 1e6)) }
func (p *provider) failShare() float64    { return float64(p.failRate.Load()) / 1e6 }

func (p *provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.calls.Add(1)
	if r.Method != http.MethodPost || r.URL.Path != "/charge" {
		http.NotFound(w, r)
		return
	}
	var req struct {
		Amount   int64  `json:"amount"`
		Currency string `json:"currency"`
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if p.latency > 0 {
		t := time.NewTimer(p.latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if f := p.failShare(); f > 0 && rand.Float64() < f {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, p.name+" is unavailable\n")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"id":       fmt.Sprintf("pay_%s_%d_%d", p.name, time.Now().UnixNano(), p.seq.Add(1)),
		"provider": p.name,
	})
}

// startProvider serves p on addr ("" for a free loopback port) and
// returns its base URL and server.
func startProvider(p *provider, addr string) (string, *http.Server, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("payments %s: %w", p.name, err)
	}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return "http://" + l.Addr().String(), srv, nil
}

// paymentClient charges through the payment provider over HTTP, under the
// client-side policies, outermost first:
//
//	retry (3 attempts, with a budget) → failover (primary, standby; a
//	breaker each) → bulkhead → per-attempt timeout → the network
//
// A drill (armed on the admin page) can inject faults into each attempt.
// Retry sits outside failover so that one retry can land on the other
// endpoint, and its budget caps the extra load retries add to a provider
// in trouble; the breakers are per endpoint, so the primary's failures move
// traffic to the standby instead of refusing it; the bulkhead and timeout
// are per attempt, so a slow provider holds neither a slot nor a caller
// longer than one attempt. Each layer is a bulwarkhttp.Transport, the
// outer ones stacked on the inner ones, so every layer sees a provider's
// 503 as a bulwark.ErrRemoteUnavailable.
type paymentClient struct {
	client *http.Client
	set    *failover.Set
	budget *retry.Budget
	bulk   *bulkhead.Bulkhead
	drill  *drill.Drill
}

// newPaymentClient returns a client of the providers at primary and
// standby (base URLs).
func newPaymentClient(primary, standby string, cfg config, breakerOpts ...breaker.Option) *paymentClient {
	bopts := append([]breaker.Option{
		breaker.WithConsecutiveFailures(5),
		breaker.WithBreakDuration(cfg.breakDuration),
	}, breakerOpts...)
	set := failover.New("payments", []string{primary, standby},
		failover.WithBreakerOptions(bopts...),
		// A failed attempt moves to the other endpoint at once, before
		// the primary's breaker has seen enough failures to open.
		failover.WithRetryOnNext(),
		// Once the primary's breaker opened, traffic stays on the standby
		// for a break's length after the primary heals, so that a
		// flapping primary does not drag it back and forth.
		failover.WithMinDwell(cfg.breakDuration))
	// The provider's compartment: at most -concurrency attempts in flight,
	// whoever makes them (here only charges, which the charges bulkhead
	// already caps; in a larger service, refunds and captures would share
	// it), queueing up to a second for a slot.
	bulk := bulkhead.New("payments-bulkhead", cfg.concurrency,
		bulkhead.WithMaxQueue(cfg.concurrency), bulkhead.WithMaxWait(time.Second))
	budget := retry.NewBudget()
	retrier := retry.New(
		retry.WithName("payments"),
		retry.WithBudget(budget),
		retry.WithMaxAttempts(3),
		retry.WithInitialDelay(20*time.Millisecond),
		retry.WithMaxDelay(500*time.Millisecond))
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = cfg.concurrency
	// The drill is armed from the admin page to rehearse a failing
	// provider: it sits inside failover, so its injected errors count
	// against the endpoints' breakers as a real outage would.
	dr := drill.New("payments-drill")
	attempt := bulwarkhttp.Transport(bulwark.Chain(dr, bulk, bulwark.Timeout(cfg.attemptTimeout)), base)
	rt := bulwarkhttp.Transport(retrier, bulwarkhttp.FailoverTransport(set, attempt))
	return &paymentClient{client: &http.Client{Transport: rt}, set: set, budget: budget, bulk: bulk, drill: dr}
}

// errPayment is a provider's answer that is neither a success nor a
// failure the policies classify (a 4xx, a malformed body).
var errPayment = errors.New("payment provider: unexpected answer")

// charge asks the provider to charge amount in currency, under key (sent
// as the provider's Idempotency-Key, which also lets the transports replay
// the POST on another attempt or endpoint). It returns the provider's
// payment id.
func (c *paymentClient) charge(ctx context.Context, key string, amount int64, currency string) (string, error) {
	body, _ := json.Marshal(map[string]any{"amount": amount, "currency": currency})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://payments/charge", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := c.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// The policies gave up on this answer: it is the last one, handed
		// over intact. Classify it as the transports did, so the caller
		// answers 503 with the provider's Retry-After.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			return "", bulwarkhttp.NewStatusError(resp, time.Now())
		}
		return "", fmt.Errorf("%w: status %d", errPayment, resp.StatusCode)
	}
	var out struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&out); err != nil || out.ID == "" {
		return "", fmt.Errorf("%w: %v", errPayment, err)
	}
	return out.ID, nil
}

// breakersOpen reports whether a payment endpoint's breaker refuses every
// call: open (here, or by another instance through the shared state),
// forced open or paused.
func (c *paymentClient) breakersOpen() bool {
	for i := range 2 { // primary, standby
		if c.set.Breaker(i).HealthCheck(context.Background()) != nil {
			return true
		}
	}
	return false
}
