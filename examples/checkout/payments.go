package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync/atomic"
	"time"
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
