package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/degrade"
)

// run serves until stop ends, then drains; it returns nil after a
// graceful drain, and an error when the service cannot start or the drain
// had to force the servers closed.
func run(stop context.Context, cfg config, log *slog.Logger) error {
	mp, metricsHandler, err := newMetrics()
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	defer func() { _ = mp.Shutdown(context.Background()) }()

	// The simulated payment provider: a primary, which fails a share of
	// its answers (-payments-fail-rate), and a standby.
	var calls atomic.Int64
	primary := &provider{name: "primary", latency: cfg.latency, calls: &calls}
	primary.setFailRate(cfg.failRate)
	standby := &provider{name: "standby", latency: cfg.latency, calls: &calls}
	primaryURL, primarySrv, err := startProvider(primary, cfg.paymentsAddr)
	if err != nil {
		return err
	}
	defer primarySrv.Close()
	standbyURL, standbySrv, err := startProvider(standby, cfg.standbyAddr)
	if err != nil {
		return err
	}
	defer standbySrv.Close()
	log.Info("listening", "server", "payments-primary", "url", primaryURL, "fail_rate", cfg.failRate, "latency", cfg.latency)
	log.Info("listening", "server", "payments-standby", "url", standbyURL, "latency", cfg.latency)

	fleet := connectFleet(stop, cfg, log)
	defer fleet.close()

	payments := newPaymentClient(primaryURL, standbyURL, cfg, fleet.breakerOptions()...)
	defer payments.set.Close()
	store := fleet.store()
	if c, ok := store.(io.Closer); ok {
		defer c.Close()
	}
	s := newService(cfg, log, payments, &calls, store, fleet.catalog())
	defer s.checker.Close()
	fleet.register(s)

	admin := bulwarkhttp.Admin(s.reg,
		bulwarkhttp.WithAdminToken(cfg.adminToken),
		bulwarkhttp.WithAdminLogger(log),
		bulwarkhttp.WithAdminTitle("checkout"))

	httpL, err := net.Listen("tcp", cfg.httpAddr)
	if err != nil {
		return fmt.Errorf("http: %w", err)
	}
	grpcL, err := net.Listen("tcp", cfg.grpcAddr)
	if err != nil {
		httpL.Close()
		return fmt.Errorf("grpc: %w", err)
	}
	httpSrv := &http.Server{
		Handler:           s.httpHandler(metricsHandler, admin),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	grpcSrv := s.grpcServer()

	var wg sync.WaitGroup
	wg.Go(func() { serveLogged(log, "http", func() error { return httpSrv.Serve(httpL) }) })
	wg.Go(func() { serveLogged(log, "grpc", func() error { return grpcSrv.Serve(grpcL) }) })
	log.Info("listening", "server", "http", "addr", httpL.Addr().String())
	log.Info("listening", "server", "grpc", "addr", grpcL.Addr().String())

	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	if cfg.degradeConfig != "" {
		wg.Go(func() {
			err := degrade.Watch(watchCtx, s.reg, cfg.degradeConfig, cfg.degradeInterval, degrade.WithLogger(log))
			if err != nil && !errors.Is(err, context.Canceled) {
				log.Error("degrade config", "err", err)
			}
		})
		log.Info("watching", "degrade_config", cfg.degradeConfig, "interval", cfg.degradeInterval)
	}

	<-stop.Done()
	// A second signal during the drain cuts its delay short and forces
	// the servers closed.
	force, stopForce := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stopForce()
	log.Info("draining", "delay", cfg.drainDelay, "timeout", cfg.drainTimeout)
	graceful, err := s.drain(force, httpSrv, grpcSrv)
	stopWatch()
	wg.Wait()
	log.Info("stopped", "graceful", graceful, "err", err)
	if !graceful {
		return errors.Join(errors.New("drain: servers forced closed"), err)
	}
	return nil
}
