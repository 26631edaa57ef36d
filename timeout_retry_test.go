package bulwark_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/retry"
)

// noReplayErr is fn's answer "do not replay me".
type noReplayErr struct{}

func (noReplayErr) Error() string   { return "non-idempotent write half done" }
func (noReplayErr) Retryable() bool { return false }

// hintErr is a downstream's answer with a retry hint.
type hintErr struct{ d time.Duration }

func (hintErr) Error() string               { return "downstream busy" }
func (e hintErr) RetryAfter() time.Duration { return e.d }

// bothErr says "retry, after d".
type bothErr struct{ d time.Duration }

func (bothErr) Error() string               { return "downstream busy" }
func (bothErr) Retryable() bool             { return true }
func (e bothErr) RetryAfter() time.Duration { return e.d }

// TestTimeoutKeepsReplayAndHint: the error of our deadline answers
// Retryable and RetryAfter as fn's own error did, wraps no class, and
// grows no answer fn's error did not give.
func TestTimeoutKeepsReplayAndHint(t *testing.T) {
	for _, tt := range []struct {
		name          string
		give          error
		wantRetryable bool
		wantFound     bool
		wantHint      time.Duration
	}{
		{name: "plain", give: errors.New("read: i/o timeout")},
		{name: "no replay", give: noReplayErr{}, wantFound: true},
		{name: "wrapped no replay", give: errors.Join(errors.New("x"), noReplayErr{}), wantFound: true},
		{name: "hint", give: hintErr{3 * time.Second}, wantHint: 3 * time.Second},
		{name: "zero hint", give: hintErr{0}},
		{name: "both", give: bothErr{2 * time.Second}, wantRetryable: true, wantFound: true, wantHint: 2 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				err := bulwark.Timeout(time.Second).Do(context.Background(), func(ctx context.Context) error {
					<-ctx.Done()
					return tt.give
				})
				if !errors.Is(err, bulwark.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("Do() = %v, want ErrTimeout", err)
				}
				if errors.Is(err, tt.give) || bulwark.IsRefusal(err) || errors.Is(err, bulwark.ErrRemoteUnavailable) || errors.Is(err, bulwark.ErrRemoteRejected) {
					t.Errorf("Do() = %v unwraps to fn's error or a class, want ErrTimeout only", err)
				}
				r, found := bulwark.Retryable(err)
				if r != tt.wantRetryable || found != tt.wantFound {
					t.Errorf("Retryable() = %v, %v, want %v, %v", r, found, tt.wantRetryable, tt.wantFound)
				}
				h, _ := bulwark.RetryAfter(err)
				if h != tt.wantHint {
					t.Errorf("RetryAfter() = %v, want %v", h, tt.wantHint)
				}
			})
		})
	}
}

// TestTimeoutUnderRetry: "Retryable false is never retried" and a
// downstream's hint hold through a per-attempt timeout, whether the
// Retrier sets it or the chain stacks bulwark.Timeout under the Retrier.
func TestTimeoutUnderRetry(t *testing.T) {
	stacks := map[string]func() bulwark.Policy{
		"WithPerAttemptTimeout": func() bulwark.Policy {
			return retry.New(retry.WithMaxAttempts(3), retry.WithPerAttemptTimeout(time.Second))
		},
		"Chain": func() bulwark.Policy {
			return bulwark.Chain(retry.New(retry.WithMaxAttempts(3)), bulwark.Timeout(time.Second))
		},
	}
	for name, stack := range stacks {
		t.Run(name+"/NoReplay", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				calls := 0
				err := stack().Do(context.Background(), func(ctx context.Context) error {
					calls++
					<-ctx.Done()
					return noReplayErr{}
				})
				if calls != 1 {
					t.Errorf("fn ran %d times, want 1: it said do not replay", calls)
				}
				if !errors.Is(err, bulwark.ErrTimeout) {
					t.Errorf("Do() = %v, want ErrTimeout", err)
				}
			})
		})
		t.Run(name+"/Hint", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var starts []time.Time
				_ = stack().Do(context.Background(), func(ctx context.Context) error {
					starts = append(starts, time.Now())
					<-ctx.Done()
					return bothErr{3 * time.Second}
				})
				if len(starts) != 3 {
					t.Fatalf("fn ran %d times, want 3", len(starts))
				}
				for i := 1; i < len(starts); i++ {
					// one second of attempt, then the 3 s hint
					if got := starts[i].Sub(starts[i-1]); got != 4*time.Second {
						t.Errorf("attempt %d began %v after the one before, want 4s (1s timeout + 3s hint)", i+1, got)
					}
				}
			})
		})
	}
}

// TestTimeoutValidation: an impossible duration panics naming Timeout; a
// huge one is a valid "no cap".
func TestTimeoutValidation(t *testing.T) {
	for _, d := range []time.Duration{0, -1, math.MinInt64} {
		t.Run(d.String(), func(t *testing.T) {
			defer func() {
				if s, _ := recover().(string); !strings.HasPrefix(s, "bulwark: Timeout") {
					t.Errorf("Timeout(%v) panicked with %q, want a message naming bulwark: Timeout", d, s)
				}
			}()
			bulwark.Timeout(d)
		})
	}
	t.Run("MaxInt64", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			err := bulwark.Timeout(math.MaxInt64).Do(context.Background(), func(ctx context.Context) error {
				if dl, ok := ctx.Deadline(); !ok || !dl.After(time.Now().Add(100*365*24*time.Hour)) {
					t.Errorf("deadline %v, %v, want one centuries away", dl, ok)
				}
				time.Sleep(time.Hour)
				return ctx.Err()
			})
			if err != nil {
				t.Errorf("Do() = %v, want nil", err)
			}
		})
	})
}
