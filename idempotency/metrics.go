package idempotency

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/bulwark-go/bulwark/internal/telemetry"
)

// keyResult is bulwark.result (SPEC.md's attribute vocabulary).
const keyResult = attribute.Key("bulwark.result")

// The values of bulwark.result, in counter-slot order.
const (
	resultExecuted = iota
	resultReplayed
	resultConflict
	resultMismatch
	resultInvalid
	resultStoreError
)

var resultNames = []string{"executed", "replayed", "conflict", "mismatch", "invalid", "store_error"}

type metrics struct {
	requests *telemetry.Counters
	duration metric.Float64Histogram
	durOpts  []metric.RecordOption
}

// storeBuckets are boundaries in seconds for store calls: 50 µs to 1 s.
var storeBuckets = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1}

func newMetrics(o options) *metrics {
	m := telemetry.Meter(o.mp, "idempotency")
	name := telemetry.KeyPolicyName.String(o.name)
	sets := make([]telemetry.Set, len(resultNames))
	for i, r := range resultNames {
		sets[i] = telemetry.NewSet(name, keyResult.String(r))
	}
	return &metrics{
		requests: telemetry.ObservedCounters(m, "bulwark.idempotency.requests",
			"Requests that carried an Idempotency-Key, by result.", "{request}", sets...),
		duration: telemetry.Float64Histogram(m, "bulwark.idempotency.store.duration",
			"Duration of idempotency store calls.", "s", storeBuckets),
		durOpts: telemetry.NewSet(name).Record,
	}
}

func (m *metrics) count(result int) { m.requests.Add(result, 1) }

func (m *metrics) storeDuration(start time.Time) {
	m.duration.Record(context.Background(), time.Since(start).Seconds(), m.durOpts...)
}
