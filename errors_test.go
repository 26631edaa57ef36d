package bulwark_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark"
)

type hinted struct {
	d   time.Duration
	err error
}

func (h hinted) Error() string             { return "hinted: " + h.err.Error() }
func (h hinted) Unwrap() error             { return h.err }
func (h hinted) RetryAfter() time.Duration { return h.d }

type noRetry struct{ error }

func (noRetry) Retryable() bool { return false }

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		name   string
		give   error
		want   time.Duration
		wantOK bool
	}{
		{"nil", nil, 0, false},
		{"plain", errors.New("x"), 0, false},
		{"direct", hinted{2 * time.Second, bulwark.ErrUnavailable}, 2 * time.Second, true},
		{"wrapped", fmt.Errorf("outer: %w", hinted{time.Second, bulwark.ErrRejected}), time.Second, true},
		{"joined", errors.Join(errors.New("a"), hinted{3 * time.Second, bulwark.ErrUnavailable}), 3 * time.Second, true},
		{"zero is no hint", hinted{0, bulwark.ErrUnavailable}, 0, false},
		{"negative is no hint", hinted{-time.Second, bulwark.ErrUnavailable}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := bulwark.RetryAfter(tt.give)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("RetryAfter() = %v, %v, want %v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestRetryAfterAllocatesNothing(t *testing.T) {
	err := fmt.Errorf("outer: %w", hinted{time.Second, bulwark.ErrRejected})
	if n := testing.AllocsPerRun(100, func() { bulwark.RetryAfter(err) }); n != 0 {
		t.Errorf("RetryAfter allocs = %v, want 0", n)
	}
}

func TestRetryable(t *testing.T) {
	if r, ok := bulwark.Retryable(fmt.Errorf("w: %w", noRetry{errors.New("x")})); r || !ok {
		t.Errorf("Retryable() = %v, %v, want false, true", r, ok)
	}
	if _, ok := bulwark.Retryable(errors.New("x")); ok {
		t.Error("Retryable() found a verdict in a plain error")
	}
}

func TestClasses(t *testing.T) {
	timeout := bulwark.ErrTimeout
	if !errors.Is(timeout, context.DeadlineExceeded) {
		t.Error("ErrTimeout does not wrap context.DeadlineExceeded")
	}
	classes := []error{bulwark.ErrRejected, bulwark.ErrUnavailable, bulwark.ErrRemoteRejected, bulwark.ErrRemoteUnavailable}
	for _, c := range classes {
		for e := timeout; e != nil; e = errors.Unwrap(e) {
			if e == c {
				t.Errorf("ErrTimeout wraps class %v, want none", c)
			}
		}
		for _, d := range classes {
			if c != d && errors.Is(c, d) {
				t.Errorf("class %v wraps class %v", c, d)
			}
		}
	}
	if !bulwark.IsRefusal(fmt.Errorf("x: %w", bulwark.ErrRejected)) || bulwark.IsRefusal(bulwark.ErrRemoteUnavailable) {
		t.Error("IsRefusal misclassifies")
	}
}

type quotaErr struct{ q bulwark.Quota }

// replayUnsafe says "do not retry" and wraps another error.
type replayUnsafe struct{ err error }

func (e replayUnsafe) Error() string   { return "replay unsafe: " + e.err.Error() }
func (e replayUnsafe) Unwrap() error   { return e.err }
func (e replayUnsafe) Retryable() bool { return false }

func (e quotaErr) Error() string        { return "quota" }
func (e quotaErr) Quota() bulwark.Quota { return e.q }

// TestFindWalksTrees: RetryAfter, Retryable and QuotaFrom find their
// interface deep in a tree of joined and multiply wrapped errors, depth
// first as errors.As does, without allocating.
func TestFindWalksTrees(t *testing.T) {
	want := bulwark.Quota{Name: "api", Limit: 10}
	leaf := hinted{time.Second, replayUnsafe{quotaErr{want}}}
	err := fmt.Errorf("outer: %w", errors.Join(
		errors.New("first"),
		fmt.Errorf("two: %w and %w", errors.New("second"), leaf),
		hinted{time.Minute, bulwark.ErrUnavailable}, // later in the walk: not the one found
	))
	if d, ok := bulwark.RetryAfter(err); d != time.Second || !ok {
		t.Errorf("RetryAfter() = %v, %v, want 1s, true", d, ok)
	}
	if r, ok := bulwark.Retryable(err); r || !ok {
		t.Errorf("Retryable() = %v, %v, want false, true", r, ok)
	}
	if q, ok := bulwark.QuotaFrom(err); q != want || !ok {
		t.Errorf("QuotaFrom() = %+v, %v, want %+v, true", q, ok, want)
	}
	if _, ok := bulwark.QuotaFrom(errors.Join(errors.New("x"), nil)); ok {
		t.Error("QuotaFrom() found a quota in an error without one")
	}
	if n := testing.AllocsPerRun(100, func() {
		bulwark.RetryAfter(err)
		bulwark.Retryable(err)
		bulwark.QuotaFrom(err)
	}); n != 0 {
		t.Errorf("walking the tree allocates %v times, want 0", n)
	}
}
