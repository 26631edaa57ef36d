package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bulwark-go/bulwark/examples/checkout/checkoutpb"
	"github.com/bulwark-go/bulwark/idempotency"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testConfig is the default command line.
func testConfig(t *testing.T, args ...string) config {
	t.Helper()
	cfg, err := parseFlags(args, io.Discard)
	if err != nil {
		t.Fatalf("parseFlags(%q): %v", args, err)
	}
	return cfg
}

// testService builds the service on two loopback providers; the primary
// fails the share failRate of its answers.
func testService(t *testing.T, cfg config) (*service, *provider) {
	t.Helper()
	var calls atomic.Int64
	primary := &provider{name: "primary", calls: &calls}
	primary.setFailRate(cfg.failRate)
	standby := &provider{name: "standby", calls: &calls}
	pURL, pSrv, err := startProvider(primary, "")
	if err != nil {
		t.Fatal(err)
	}
	sURL, sSrv, err := startProvider(standby, "")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	payments := newPaymentClient(pURL, sURL, cfg)
	store := idempotency.NewMemoryStore()
	s := newService(cfg, log, payments, &calls, store, nil)
	t.Cleanup(func() {
		store.Close()
		s.checker.Close()
		payments.set.Close()
		payments.client.CloseIdleConnections()
		pSrv.Close()
		sSrv.Close()
	})
	return s, standby
}

func TestCheckoutParseFlags(t *testing.T) {
	cfg := testConfig(t)
	if cfg.httpAddr != "127.0.0.1:8080" || cfg.grpcAddr != "127.0.0.1:9090" || cfg.catalogRate != 200 ||
		cfg.clientRate != 20 || cfg.concurrency != 32 || cfg.drainDelay != 5*time.Second || cfg.adminToken != "" || cfg.redisAddr != "" {
		t.Fatalf("defaults = %+v, want the documented ones", cfg)
	}
	for _, tt := range []struct {
		name string
		give []string
		want string
	}{
		{"fail rate above 1", []string{"-payments-fail-rate", "1.5"}, "-payments-fail-rate"},
		{"fail rate NaN", []string{"-payments-fail-rate", "NaN"}, "-payments-fail-rate"},
		{"negative latency", []string{"-payments-latency", "-1s"}, "-payments-latency"},
		{"zero catalog rate", []string{"-catalog-rate", "0"}, "-catalog-rate"},
		{"infinite client rate", []string{"-client-rate", "-Inf"}, "-client-rate"},
		{"no concurrency", []string{"-concurrency", "0"}, "-concurrency"},
		{"huge concurrency", []string{"-concurrency", "9999999999"}, "-concurrency"},
		{"negative drain delay", []string{"-drain-delay", "-1ms"}, "-drain-delay"},
		{"redis without a port", []string{"-redis", "localhost"}, "-redis"},
		{"redis without a host", []string{"-redis", ":6379"}, "-redis"},
		{"stray argument", []string{"serve"}, "unexpected"},
		{"unknown flag", []string{"-nope"}, "nope"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFlags(tt.give, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("parseFlags(%q) = %v, want an error naming %s", tt.give, err, tt.want)
			}
		})
	}
	if _, err := parseFlags([]string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("parseFlags(-h) = %v, want flag.ErrHelp", err)
	}
}

func TestCheckoutValidateCharge(t *testing.T) {
	for _, tt := range []struct {
		amount   int64
		currency string
		ok       bool
	}{
		{1, "EUR", true},
		{math.MaxInt64, "JPY", true},
		{0, "EUR", false},
		{-1, "EUR", false},
		{math.MinInt64, "EUR", false},
		{10, "eur", true},
		{10, "E1R", false},
		{10, "E@R", false},
		{10, "E[R", false},
		{10, "EU", false},
		{10, "EURO", false},
		{10, "", false},
		{10, "E\x00R", false},
		{10, "€UR", false},
	} {
		err := validateCharge(tt.amount, tt.currency)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, errBadCharge)) {
			t.Errorf("validateCharge(%d, %q) = %v, want ok %v", tt.amount, tt.currency, err, tt.ok)
		}
	}
}

func TestCheckoutClientKey(t *testing.T) {
	for _, tt := range []struct{ id, remote, want string }{
		{"acme", "10.0.0.1:5555", "id:acme"},
		{"", "10.0.0.1:5555", "ip:10.0.0.1"},
		{"", "[::1]:5555", "ip:::1"},
		{strings.Repeat("x", 65), "10.0.0.1:1", "ip:10.0.0.1"},
		{"", "garbage", "ip:garbage"},
	} {
		if got := clientKey(tt.id, tt.remote); got != tt.want {
			t.Errorf("clientKey(%q, %q) = %q, want %q", tt.id, tt.remote, got, tt.want)
		}
	}
}

// serve runs one request through the service's HTTP handler.
func serve(h http.Handler, method, path, body string, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestCheckoutChargeHandler(t *testing.T) {
	s, _ := testService(t, testConfig(t))
	h := s.httpHandler(http.NotFoundHandler(), http.NotFoundHandler())

	w := serve(h, "POST", "/v1/charges", `{"amount": 250, "currency": "GBP"}`, "Idempotency-Key", "u-1")
	if w.Code != http.StatusCreated {
		t.Fatalf("charge = %d %s, want 201", w.Code, w.Body)
	}
	var ch charge
	if err := json.Unmarshal(w.Body.Bytes(), &ch); err != nil || !strings.HasPrefix(ch.ID, "ch_") ||
		ch.Amount != 250 || ch.Currency != "GBP" || ch.Status != "succeeded" {
		t.Fatalf("charge body = %s (%v)", w.Body, err)
	}
	if got := s.stats(); got.ChargesExecuted != 1 || got.PaymentCalls != 1 {
		t.Fatalf("stats = %+v, want 1 executed, 1 payment call", got)
	}
	replay := serve(h, "POST", "/v1/charges", `{"amount": 250, "currency": "GBP"}`, "Idempotency-Key", "u-1")
	if replay.Code != http.StatusCreated || replay.Header().Get("Idempotent-Replayed") != "true" || replay.Body.String() != w.Body.String() {
		t.Fatalf("replay = %d %v %s, want the first answer replayed", replay.Code, replay.Header(), replay.Body)
	}
	if w := serve(h, "POST", "/v1/charges", `{"amount": 251, "currency": "GBP"}`, "Idempotency-Key", "u-1"); w.Code != http.StatusUnprocessableEntity {
		t.Fatalf("key reused for another charge = %d, want 422", w.Code)
	}
	if w := serve(h, "POST", "/v1/charges", `{"amount": 250, "currency": "GBP"}`); w.Code != http.StatusBadRequest {
		t.Fatalf("charge without a key = %d, want 400", w.Code)
	}
	if got := s.stats(); got.ChargesExecuted != 1 {
		t.Fatalf("charges_executed = %d after a replay, a 422 and a 400, want 1", got.ChargesExecuted)
	}
	for i, body := range []string{
		``, `{`, `[]`, `{"amount": "12", "currency": "EUR"}`, `{"currency": "EUR"}`,
		`{"amount": 1.5, "currency": "EUR"}`, `{"amount": 10, "currency": "EUR"} {}`,
		`{"amount": 10, "currency": "EUR", "extra": true}`, `{"amount": 99999999999999999999, "currency": "EUR"}`,
		`{"amount": 10, "currency": "EUR", "pad": "` + strings.Repeat("x", maxChargeBytes) + `"}`,
	} {
		w := serve(h, "POST", "/v1/charges", body, "Idempotency-Key", fmt.Sprintf("u-bad-%d", i))
		if w.Code != http.StatusBadRequest || w.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("charge %.40q = %d %q, want 400 problem+json", body, w.Code, w.Header().Get("Content-Type"))
		}
	}
	if w := serve(h, "GET", "/v1/charges", ""); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/charges = %d, want 405", w.Code)
	}
}

func TestCheckoutChargeFailover(t *testing.T) {
	cfg := testConfig(t, "-payments-fail-rate", "1", "-payments-break", "1h")
	s, _ := testService(t, cfg)
	h := s.httpHandler(http.NotFoundHandler(), http.NotFoundHandler())
	for i := range 6 {
		if w := serve(h, "POST", "/v1/charges", `{"amount": 1, "currency": "EUR"}`, "Idempotency-Key", fmt.Sprintf("f-%d", i)); w.Code != http.StatusCreated {
			t.Fatalf("charge with a failing primary = %d %s, want 201 from the standby", w.Code, w.Body)
		}
	}
	if !s.payments.breakersOpen() {
		t.Fatal("the primary's breaker is not open after its failures")
	}
	w := serve(h, "GET", "/v1/catalog", "")
	if w.Code != 200 || w.Header().Get("Bulwark-Degraded") != "recommendations" || strings.Contains(w.Body.String(), "recommendations") {
		t.Fatalf("catalog while a payment breaker is open = %d %v %s", w.Code, w.Header(), w.Body)
	}
	// Both out: a charge is refused fast, with a hint.
	s.payments.set.Breaker(1).ForceOpen()
	w = serve(h, "POST", "/v1/charges", `{"amount": 1, "currency": "EUR"}`, "Idempotency-Key", "f2")
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("charge with both breakers open = %d %v %s, want 503 with Retry-After", w.Code, w.Header(), w.Body)
	}
}

func TestCheckoutCatalogLimits(t *testing.T) {
	s, _ := testService(t, testConfig(t, "-client-rate", "2", "-catalog-rate", "1000"))
	h := s.httpHandler(http.NotFoundHandler(), http.NotFoundHandler())
	codes := []int{}
	for range 4 {
		codes = append(codes, serve(h, "GET", "/v1/catalog", "", "X-Client-Id", "greedy").Code)
	}
	if codes[0] != 200 || codes[3] != http.StatusTooManyRequests {
		t.Fatalf("greedy client's answers = %v, want 200 first and 429 last", codes)
	}
	if w := serve(h, "GET", "/v1/catalog", "", "X-Client-Id", "other"); w.Code != 200 {
		t.Fatalf("another client = %d, want 200", w.Code)
	}
}

func TestCheckoutGRPC(t *testing.T) {
	s, _ := testService(t, testConfig(t))
	srv := s.grpcServer()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = srv.Serve(l); close(done) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cl := checkoutpb.NewCheckoutClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	ch, err := cl.CreateCharge(metadata.AppendToOutgoingContext(ctx, "idempotency-key", "g-1"),
		&checkoutpb.CreateChargeRequest{Amount: 100, Currency: "CHF"})
	if err != nil || ch.GetStatus() != "succeeded" || ch.GetAmount() != 100 || ch.GetCurrency() != "CHF" {
		t.Fatalf("CreateCharge = %v, %v", ch, err)
	}
	var hdr metadata.MD
	again, err := cl.CreateCharge(metadata.AppendToOutgoingContext(ctx, "idempotency-key", "g-1"),
		&checkoutpb.CreateChargeRequest{Amount: 100, Currency: "CHF"}, grpc.Header(&hdr))
	if err != nil || again.GetId() != ch.GetId() || strings.Join(hdr.Get("idempotent-replayed"), "") != "true" {
		t.Fatalf("CreateCharge again = %v, %v, header %v, want %q replayed", again, err, hdr, ch.GetId())
	}
	if _, err := cl.CreateCharge(ctx, &checkoutpb.CreateChargeRequest{Amount: 100, Currency: "CHF"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("CreateCharge without a key = %v, want InvalidArgument", err)
	}
	_, err = cl.CreateCharge(metadata.AppendToOutgoingContext(ctx, "idempotency-key", "g-2"),
		&checkoutpb.CreateChargeRequest{Amount: -1, Currency: "CHF"})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("CreateCharge(-1) = %v, want InvalidArgument", err)
	}

	hdr = nil
	cat, err := cl.ListCatalog(ctx, &checkoutpb.ListCatalogRequest{}, grpc.Header(&hdr))
	if err != nil || len(cat.GetItems()) == 0 || len(cat.GetRecommendations()) == 0 || len(hdr.Get("bulwark-degraded")) != 0 {
		t.Fatalf("ListCatalog = %v, %v, header %v", cat, err, hdr)
	}
	s.recs.Set(true, "test")
	cat, err = cl.ListCatalog(ctx, &checkoutpb.ListCatalogRequest{}, grpc.Header(&hdr))
	if err != nil || len(cat.GetRecommendations()) != 0 || strings.Join(hdr.Get("bulwark-degraded"), ",") != "recommendations" {
		t.Fatalf("ListCatalog with the switch on = %v, %v, header %v", cat, err, hdr)
	}
}
