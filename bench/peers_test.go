package bench

import (
	"context"
	"os"
	"path/filepath"
	"sync"

	sentinel "github.com/alibaba/sentinel-golang/api"
	"github.com/alibaba/sentinel-golang/core/base"
	sncb "github.com/alibaba/sentinel-golang/core/circuitbreaker"
	sncfg "github.com/alibaba/sentinel-golang/core/config"
	snflow "github.com/alibaba/sentinel-golang/core/flow"
	sniso "github.com/alibaba/sentinel-golang/core/isolation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/bulkhead"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/ratelimit"
)

// sentinel-golang (v1.0.4) keeps its rules and statistics in globals and
// starts its own goroutines once; each scenario uses a resource of its own.
var sentinelOnce sync.Once

func initSentinel() {
	sentinelOnce.Do(func() {
		conf := sncfg.NewDefaultConfig()
		conf.Sentinel.Log.Dir = filepath.Join(os.TempDir(), "bulwark-bench-sentinel")
		conf.Sentinel.Log.Metric.FlushIntervalSec = 0 // no metric log files
		if err := sentinel.InitWithConfig(conf); err != nil {
			panic(err)
		}
	})
}

// sentinelEntry loads rules for resource and returns an op that runs nop
// inside an Entry / Exit pair, as sentinel's users do.
func sentinelEntry(resource string, flow bool, iso bool, cb bool) func() func() error {
	initSentinel()
	if flow {
		if _, err := snflow.LoadRules([]*snflow.Rule{{Resource: resource, TokenCalculateStrategy: snflow.Direct,
			ControlBehavior: snflow.Reject, Threshold: hugeRate, StatIntervalInMs: 1000}}); err != nil {
			panic(err)
		}
	}
	if iso {
		if _, err := sniso.LoadRules([]*sniso.Rule{{Resource: resource, MetricType: sniso.Concurrency, Threshold: slots}}); err != nil {
			panic(err)
		}
	}
	if cb {
		if _, err := sncb.LoadRules([]*sncb.Rule{{Resource: resource, Strategy: sncb.ErrorRatio, RetryTimeoutMs: 30000,
			MinRequestAmount: 20, StatIntervalMs: 60000, Threshold: 0.5}}); err != nil {
			panic(err)
		}
	}
	ctx := context.Background()
	return same(func() error {
		e, blocked := sentinel.Entry(resource, sentinel.WithTrafficType(base.Inbound))
		if blocked != nil {
			return errRefused
		}
		err := nop(ctx)
		e.Exit()
		return err
	})
}

// sdkProvider is an OpenTelemetry SDK MeterProvider with a manual reader,
// as in production, shut down when the scenario ends: SPEC's speed targets
// hold with an SDK installed, not only with the no-op provider.
func sdkProvider(tb cleaner) *sdkmetric.MeterProvider {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	tb.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return mp
}

func newStackSDK(tb cleaner) bulwark.Policy {
	mp := sdkProvider(tb)
	b := breaker.New("bench", breaker.WithMeterProvider(mp))
	tb.Cleanup(func() { _ = b.Close() })
	return bulwark.Chain(
		ratelimit.New("bench", hugeRate, hugeBurst, ratelimit.WithMeterProvider(mp)),
		bulkhead.New("bench", slots, bulkhead.WithMeterProvider(mp)),
		b,
	)
}

func init() {
	add := func(group string, ss ...scenario) {
		for i := range groups {
			if groups[i].name == group {
				groups[i].scenarios = append(groups[i].scenarios, ss...)
				return
			}
		}
		panic("bench: no group " + group)
	}
	add("Stack",
		scenario{"bulwark.Chain/sdk", func(tb cleaner) func() func() error {
			ctx, p := context.Background(), newStackSDK(tb)
			return same(func() error { return p.Do(ctx, nop) })
		}},
		scenario{"sentinel.Entry", func(cleaner) func() func() error { return sentinelEntry("bench-stack", true, true, true) }},
	)
	add("Breaker", scenario{"sentinel.Entry", func(cleaner) func() func() error { return sentinelEntry("bench-breaker", false, false, true) }})
	add("Bulkhead", scenario{"sentinel.Entry", func(cleaner) func() func() error { return sentinelEntry("bench-bulkhead", false, true, false) }})
	add("RateLimit", scenario{"sentinel.Entry", func(cleaner) func() func() error { return sentinelEntry("bench-ratelimit", true, false, false) }})
	add("HTTP", scenario{"bulwarkhttp.Middleware/sdk", func(tb cleaner) func() func() error {
		return serve(bulwarkhttp.Middleware(newStackSDK(tb))(hello))
	}})
}
