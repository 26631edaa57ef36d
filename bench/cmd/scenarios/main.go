// Command scenarios runs bulwark and its peers under fire over real HTTP
// on loopback — overload by tier, a downstream outage, a retry storm,
// idempotent duplicates across two instances — and writes the tables into
// RESULTS.md (between its scenarios markers) and the charts beside it.
//
//	go run ./cmd/scenarios            # every scenario, each under a minute
//	go run ./cmd/scenarios -quick     # short runs, for CI
//	go run ./cmd/scenarios -only overload,outage
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/bulwark-go/bulwark/bench/scenarios"
)

func main() {
	quick := flag.Bool("quick", false, "short runs (CI)")
	out := flag.String("out", "RESULTS.md", "the results file to update")
	only := flag.String("only", "", "comma-separated scenarios to run (default all)")
	redis := flag.String("redis", "", "a redis-server host:port for the idempotency scenario (default: start one if redis-server is on PATH)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	o := scenarios.Options{Quick: *quick, Log: os.Stderr, RedisAddr: *redis}
	if o.RedisAddr == "" {
		addr, stopRedis, err := scenarios.StartRedis()
		if err != nil {
			fmt.Fprintln(os.Stderr, "scenarios: no redis-server for the idempotency scenario:", err)
		} else {
			defer stopRedis()
			o.RedisAddr = addr
		}
	}
	var names []string
	if *only != "" {
		names = strings.Split(*only, ",")
	}
	r := scenarios.Run(ctx, o, names...)
	if err := scenarios.Write(*out, r, *quick); err != nil {
		fmt.Fprintln(os.Stderr, "scenarios:", err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "scenarios: wrote", *out)
}
