package retry_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/retry"
)

func ok(context.Context) error { return nil }

// okFn keeps the direct call a real call through a func value, as Do makes it.
var okFn = ok

// BenchmarkFirstAttemptSuccess compares a call that succeeds at once made
// directly and through a Retrier, with the no-op and an SDK MeterProvider,
// with and without a budget.
func BenchmarkFirstAttemptSuccess(b *testing.B) {
	sdk := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	for _, bb := range []struct {
		name string
		p    bulwark.Policy
	}{
		{"direct", nil},
		{"noop", retry.New(retry.WithMeterProvider(noop.NewMeterProvider()))},
		{"sdk", retry.New(retry.WithMeterProvider(sdk))},
		{"sdk+budget", retry.New(retry.WithMeterProvider(sdk), retry.WithBudget(retry.NewBudget()))},
	} {
		ctx := context.Background()
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			if bb.p == nil {
				for b.Loop() {
					_ = okFn(ctx)
				}
				return
			}
			for b.Loop() {
				_ = bb.p.Do(ctx, okFn)
			}
		})
		b.Run(bb.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if bb.p == nil {
						_ = okFn(ctx)
					} else {
						_ = bb.p.Do(ctx, okFn)
					}
				}
			})
		})
	}
}

// BenchmarkOneRetry measures the slow path: a failure, one retry after a
// 1 ns delay, then success.
func BenchmarkOneRetry(b *testing.B) {
	sdk := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	r := retry.New(retry.WithMeterProvider(sdk), retry.WithInitialDelay(1), retry.WithRandomization(0))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		_ = r.Do(ctx, func(context.Context) error {
			n++
			if n == 1 {
				return bulwark.ErrRemoteUnavailable
			}
			return nil
		})
	}
}
