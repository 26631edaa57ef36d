package retry_test

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/internal/metrictest"
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

// sum returns the total of the points of the int64 sum name whose
// attributes include kv (keys and values); it fails the test when name is
// not exported as an int64 sum.
func sum(t *testing.T, r *metrictest.Reader, name string, kv ...string) int64 {
	t.Helper()
	if _, ok := r.Monotonic(name); !ok {
		t.Fatalf("metric %s not exported as an int64 sum", name)
	}
	return r.Int64Total(name, kv...)
}

// histCount returns the number and the sum of the recordings in the
// histogram name whose attributes include kv (0 if it was never recorded).
func histCount(t *testing.T, r *metrictest.Reader, name string, kv ...string) (uint64, float64) {
	t.Helper()
	var n uint64
	var s float64
	for _, dp := range r.HistogramWhere(name, kv...) {
		n += dp.Count
		s += dp.Sum
	}
	return n, s
}
