// Command checkout is bulwark's reference service: a small checkout API
// whose every call goes through the library's policies, over HTTP and gRPC,
// as a production service would compose them.
//
//	go run ./examples/checkout
//
// starts it on its in-memory defaults: HTTP on 127.0.0.1:8080, gRPC on
// 127.0.0.1:9090, and a simulated payment provider (a primary and a
// standby, each on a free loopback port) that charges are sent to over
// real HTTP. The README's tour drives it with curl, grpcurl and
// grpc-health-probe.
//
// How the pieces compose:
//
//   - POST /v1/charges (and gRPC CreateCharge): idempotency keys first, so
//     a duplicate is answered from the store and never takes a slot; then
//     the charges bulkhead (-concurrency); then the handler, which calls the
//     payment provider through retry (with a budget) → failover across
//     primary and standby (a breaker each) → a drill (armed on the admin
//     page to rehearse an outage) → a bulkhead → a per-attempt timeout.
//   - GET /v1/catalog (and gRPC ListCatalog): a per-client quota (429),
//     checked before a tiered capacity limiter (503, lowest priority shed
//     first), and a degradation switch, "recommendations", that turns on
//     while a payment breaker is open, or by hand on the admin page, or from
//     the -degrade-config file.
//   - /livez, /readyz, /startupz and the gRPC health service; /metrics
//     (Prometheus, through the OpenTelemetry exporter); /debug/bulwark (the
//     admin page); /v1/stats (demonstration counters).
//
// With -redis host:port, idempotency records, the catalog's rate limits and
// the payment breakers' state live in Redis, so that several instances
// share them. On SIGTERM or SIGINT the service drains: readiness fails,
// it waits -drain-delay for load balancers to notice, then stops gracefully
// and exits 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// config is the service's command line.
type config struct {
	httpAddr        string
	grpcAddr        string
	paymentsAddr    string
	standbyAddr     string
	failRate        float64
	latency         time.Duration
	redisAddr       string
	catalogRate     float64
	clientRate      float64
	concurrency     int
	adminToken      string
	degradeConfig   string
	drainDelay      time.Duration
	drainTimeout    time.Duration
	attemptTimeout  time.Duration
	breakDuration   time.Duration
	degradeInterval time.Duration
}

// parseFlags reads the command line into a config, checking the values.
func parseFlags(args []string, out io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("checkout", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.httpAddr, "http", "127.0.0.1:8080", "HTTP listen address (port 0: a free port, logged at start)")
	fs.StringVar(&c.grpcAddr, "grpc", "127.0.0.1:9090", "gRPC listen address (port 0: a free port, logged at start)")
	fs.StringVar(&c.paymentsAddr, "payments", "", "listen address of the simulated primary payment provider (default: a free loopback port)")
	fs.StringVar(&c.standbyAddr, "payments-standby", "", "listen address of the simulated standby payment provider (default: a free loopback port)")
	fs.Float64Var(&c.failRate, "payments-fail-rate", 0, "share of the primary provider's answers that are 503s, 0..1")
	fs.DurationVar(&c.latency, "payments-latency", 0, "delay added to every payment provider answer")
	fs.StringVar(&c.redisAddr, "redis", "", "host:port of a Redis server for idempotency records, the catalog's rate limits and the payment breakers' state (default: in memory)")
	fs.Float64Var(&c.catalogRate, "catalog-rate", 200, "catalog capacity, requests per second, all clients together")
	fs.Float64Var(&c.clientRate, "client-rate", 20, "catalog quota per client (X-Client-Id, else the remote address), requests per second")
	fs.IntVar(&c.concurrency, "concurrency", 32, "charges in flight at once")
	fs.StringVar(&c.adminToken, "admin-token", "", "bearer token for the admin page's actions (default: actions disabled)")
	fs.StringVar(&c.degradeConfig, "degrade-config", "", "JSON file of degradation switches, watched for changes")
	fs.DurationVar(&c.drainDelay, "drain-delay", 5*time.Second, "on SIGTERM, how long readiness fails before the servers stop")
	fs.DurationVar(&c.drainTimeout, "drain-timeout", 20*time.Second, "on SIGTERM, how long in-flight work may take to finish")
	fs.DurationVar(&c.attemptTimeout, "payments-attempt-timeout", 2*time.Second, "timeout of one attempt to call the payment provider")
	fs.DurationVar(&c.breakDuration, "payments-break", 5*time.Second, "how long a payment breaker stays open before it probes")
	fs.DurationVar(&c.degradeInterval, "degrade-interval", time.Second, "how often the -degrade-config file is read")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	switch {
	case c.failRate < 0 || c.failRate > 1 || c.failRate != c.failRate:
		return c, fmt.Errorf("-payments-fail-rate %v: want a share between 0 and 1", c.failRate)
	case c.latency < 0:
		return c, fmt.Errorf("-payments-latency %v: want 0 or more", c.latency)
	case !(c.catalogRate > 0):
		return c, fmt.Errorf("-catalog-rate %v: want a positive rate", c.catalogRate)
	case !(c.clientRate > 0):
		return c, fmt.Errorf("-client-rate %v: want a positive rate", c.clientRate)
	case c.concurrency < 1 || c.concurrency > 1<<20:
		return c, fmt.Errorf("-concurrency %d: want 1 to %d", c.concurrency, 1<<20)
	case c.drainDelay < 0:
		return c, fmt.Errorf("-drain-delay %v: want 0 or more", c.drainDelay)
	case c.drainTimeout <= 0:
		return c, fmt.Errorf("-drain-timeout %v: want a positive duration", c.drainTimeout)
	case c.attemptTimeout <= 0:
		return c, fmt.Errorf("-payments-attempt-timeout %v: want a positive duration", c.attemptTimeout)
	case c.breakDuration <= 0:
		return c, fmt.Errorf("-payments-break %v: want a positive duration", c.breakDuration)
	case c.redisAddr != "" && !isHostPort(c.redisAddr):
		return c, fmt.Errorf("-redis %q: want host:port", c.redisAddr)
	case c.degradeInterval <= 0:
		return c, fmt.Errorf("-degrade-interval %v: want a positive duration", c.degradeInterval)
	}
	return c, nil
}

// isHostPort reports whether s is host:port with a host and a port.
func isHostPort(s string) bool {
	host, port, err := net.SplitHostPort(s)
	return err == nil && host != "" && port != ""
}

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		log.Error("bad command line", "err", err)
		os.Exit(2)
	}
	// The first SIGTERM or SIGINT starts the drain; a second one cuts its
	// delay short and forces the servers closed.
	stop, stopStop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stopStop()
	if err := run(stop, cfg, log); err != nil {
		log.Error("checkout stopped", "err", err)
		os.Exit(1)
	}
}
