package retry_test

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"

	"github.com/bulwark-go/bulwark"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// hinted wraps a class with a RetryAfter hint.
type hinted struct {
	error
	d time.Duration
}

func (h hinted) Unwrap() error             { return h.error }
func (h hinted) RetryAfter() time.Duration { return h.d }

// noReplay wraps an error with Retryable() == false.
type noReplay struct{ error }

func (n noReplay) Unwrap() error   { return n.error }
func (n noReplay) Retryable() bool { return false }

var (
	errRemote   = &wrapped{"downstream 503", bulwark.ErrRemoteUnavailable}
	errRejected = &wrapped{"downstream 429", bulwark.ErrRemoteRejected}
)

type wrapped struct {
	msg   string
	class error
}

func (w *wrapped) Error() string { return w.msg }
func (w *wrapped) Unwrap() error { return w.class }

// collect reads the metrics of r.
func collect(t *testing.T, r *sdkmetric.ManualReader) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("Collect() = %v", err)
	}
	return rm
}

func find(rm metricdata.ResourceMetrics, name string) (metricdata.Aggregation, bool) {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m.Data, true
			}
		}
	}
	return nil, false
}

// sum returns the value of the counter name for the data point whose
// attributes include kv.
func sum(t *testing.T, rm metricdata.ResourceMetrics, name string, kv ...attribute.KeyValue) int64 {
	t.Helper()
	data, ok := find(rm, name)
	if !ok {
		t.Fatalf("metric %s not exported", name)
	}
	s, ok := data.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("metric %s is %T, want an int64 sum", name, data)
	}
	var total int64
	for _, dp := range s.DataPoints {
		if hasAll(dp.Attributes, kv) {
			total += dp.Value
		}
	}
	return total
}

// histCount returns the number of recordings in the histogram name whose
// attributes include kv (0 if it was never recorded).
func histCount(t *testing.T, rm metricdata.ResourceMetrics, name string, kv ...attribute.KeyValue) (uint64, float64) {
	t.Helper()
	data, ok := find(rm, name)
	if !ok {
		return 0, 0
	}
	h, ok := data.(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("metric %s is %T, want a float64 histogram", name, data)
	}
	var n uint64
	var s float64
	for _, dp := range h.DataPoints {
		if hasAll(dp.Attributes, kv) {
			n += dp.Count
			s += dp.Sum
		}
	}
	return n, s
}

func hasAll(set attribute.Set, kv []attribute.KeyValue) bool {
	for _, want := range kv {
		got, ok := set.Value(want.Key)
		if !ok || got != want.Value {
			return false
		}
	}
	return true
}
