package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"

	"golang.org/x/time/rate"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulkhead"
	"github.com/bulwark-go/bulwark/degrade"
	"github.com/bulwark-go/bulwark/health"
	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/ratelimit"
)

// service is the checkout service: its policies, the payment client and
// the demonstration counters. The HTTP and gRPC faces (http.go, grpc.go)
// both call into it, so they share every policy.
type service struct {
	cfg config
	log *slog.Logger
	reg *bulwark.Registry

	payments *paymentClient

	// charges caps the charges in flight (-concurrency); it runs after the
	// idempotency layer, so duplicates never take a slot.
	charges *bulkhead.Bulkhead
	// clientQuota and capacity guard the catalog, in that order.
	clientQuota bulwark.Policy
	capacity    bulwark.Policy
	// recs is the "recommendations" switch: on, the catalog leaves them out.
	recs *degrade.Switch
	// checker answers the health probes and runs the drain.
	checker *health.Checker
	// idem holds the charges' idempotency records (in memory, or in Redis).
	idem idempotency.Store

	executed     atomic.Int64  // runs of a charge handler's body (HTTP or gRPC)
	paymentCalls *atomic.Int64 // calls that reached a provider
}

// newService builds the service's policies around a payment client and
// registers everything an operator may see on the admin page.
func newService(cfg config, log *slog.Logger, payments *paymentClient, paymentCalls *atomic.Int64, idem idempotency.Store, fleet *fleetPolicies) *service {
	s := &service{
		cfg:          cfg,
		log:          log,
		reg:          bulwark.NewRegistry(),
		payments:     payments,
		paymentCalls: paymentCalls,
		idem:         idem,
	}
	s.charges = bulkhead.New("charges", cfg.concurrency)
	burst := func(r float64) int { return max(1, int(r)) }
	if fleet != nil {
		s.clientQuota, s.capacity = fleet.clientQuota, fleet.capacity
	} else {
		s.clientQuota = ratelimit.NewKeyed("catalog-client", rate.Limit(cfg.clientRate), burst(cfg.clientRate))
		s.capacity = ratelimit.New("catalog", rate.Limit(cfg.catalogRate), burst(cfg.catalogRate))
	}
	// Recommendations are the first thing to give up while payments are in
	// trouble: the switch is on while any payment breaker is open (and the
	// admin page or the config file can set it either way meanwhile).
	s.recs = degrade.NewSwitch("recommendations",
		degrade.WithTrigger(degrade.When(payments.breakersOpen,
			degrade.WithReason("a payment breaker is open"),
			// The condition is two breaker state reads: cheap enough to
			// evaluate on every use, so the catalog follows the
			// breakers at once.
			degrade.WithInterval(0))),
		degrade.WithOnChange(func(old, new degrade.Status) {
			log.Info("switch changed", "switch", "recommendations", "on", new.On, "source", new.Source, "reason", new.Reason)
		}))

	s.checker = newChecker(cfg, payments)

	s.reg.RegisterAs("charges", s.charges)
	s.reg.RegisterAs("catalog-client", s.clientQuota)
	s.reg.RegisterAs("catalog", s.capacity)
	s.reg.RegisterAs("recommendations", s.recs)
	s.reg.RegisterAs("payments", payments.set)
	s.reg.Register(payments.set.Breaker(0), payments.set.Breaker(1)) // payments/0, payments/1
	s.reg.RegisterAs("payments-bulkhead", payments.bulk)
	s.reg.RegisterAs("payments-retry-budget", payments.budget)
	s.reg.RegisterAs("payments-drill", payments.drill)
	s.reg.RegisterAs("health", s.checker)
	return s
}

// fleetPolicies are the catalog's limiters when they live in Redis.
type fleetPolicies struct {
	clientQuota bulwark.Policy
	capacity    bulwark.Policy
}

// catalogPolicy is the catalog's admission: the caller's own quota first,
// so that a greedy client's refused calls spend none of the shared
// capacity, then the tiered capacity limiter, which sheds the lowest
// priorities first.
func (s *service) catalogPolicy() bulwark.Policy {
	return bulwark.Chain(s.clientQuota, s.capacity)
}

// charge is a successful charge, as both faces answer it.
type charge struct {
	ID       string `json:"id"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	Status   string `json:"status"`
}

// errBadCharge is a charge request with invalid values.
var errBadCharge = errors.New("invalid charge")

// validateCharge checks a charge's amount and currency.
func validateCharge(amount int64, currency string) error {
	if amount <= 0 {
		return fmt.Errorf("%w: amount %d: want a positive integer (minor units)", errBadCharge, amount)
	}
	if len(currency) != 3 {
		return fmt.Errorf("%w: currency %q: want a three-letter code", errBadCharge, currency)
	}
	for i := range len(currency) {
		if c := currency[i] | 0x20; c < 'a' || c > 'z' {
			return fmt.Errorf("%w: currency %q: want three letters (an ISO 4217 code)", errBadCharge, currency)
		}
	}
	return nil
}

// charge runs a valid charge: call the provider, and make the charge that
// the handler answers. key is the caller's idempotency key,
// passed on to the provider.
func (s *service) charge(ctx context.Context, key string, amount int64, currency string) (charge, error) {
	if _, err := s.payments.charge(ctx, key, amount, currency); err != nil {
		return charge{}, err
	}
	return charge{ID: newID("ch_"), Amount: amount, Currency: currency, Status: "succeeded"}, nil
}

// newID returns prefix and 16 random hex digits.
func newID(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// item is one catalog entry.
type item struct {
	SKU   string `json:"sku"`
	Name  string `json:"name"`
	Price int64  `json:"price"`
}

var (
	catalogItems = []item{
		{SKU: "tea-01", Name: "Green tea, 100 g", Price: 650},
		{SKU: "cup-02", Name: "Stoneware cup", Price: 1800},
		{SKU: "pot-03", Name: "Cast-iron teapot", Price: 5400},
	}
	recommendedItems = []item{
		{SKU: "tea-07", Name: "Oolong, 50 g", Price: 900},
		{SKU: "mat-04", Name: "Bamboo tray", Price: 2200},
	}
)

// catalogAnswer is the catalog; recommendations are left out while the
// switch is on (degraded reports it).
func (s *service) catalogAnswer() (items, recs []item, degraded bool) {
	if s.recs.On() {
		return catalogItems, nil, true
	}
	return catalogItems, recommendedItems, false
}

// clientKey is the catalog quota's key: the client's id when it gives one
// of reasonable length, else its address without the port.
func clientKey(id, remote string) string {
	if id != "" && len(id) <= 64 {
		return "id:" + id
	}
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return "ip:" + host
	}
	return "ip:" + remote
}

// stats are the demonstration counters of GET /v1/stats.
type stats struct {
	ChargesExecuted int64 `json:"charges_executed"`
	PaymentCalls    int64 `json:"payment_calls"`
}

func (s *service) stats() stats {
	return stats{ChargesExecuted: s.executed.Load(), PaymentCalls: s.paymentCalls.Load()}
}

// serveLogged runs serve and logs how it ended, unless by a shutdown.
func serveLogged(log *slog.Logger, name string, serve func() error) {
	if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("server stopped", "server", name, "err", err)
	}
}
