package bulwark_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bulwark-go/bulwark"
)

func TestTimeout(t *testing.T) {
	p := bulwark.Timeout(time.Second)
	waitCtx := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	run := func(name string, f func(t *testing.T)) {
		t.Run(name, func(t *testing.T) { synctest.Test(t, f) })
	}
	{

		run("DeadlineFires", func(t *testing.T) {
			start := time.Now()
			err := p.Do(context.Background(), waitCtx)
			if !errors.Is(err, bulwark.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Do() = %v, want ErrTimeout wrapping DeadlineExceeded", err)
			}
			if got := time.Since(start); got != time.Second {
				t.Errorf("returned after %v, want 1s", got)
			}
			if bulwark.IsRefusal(err) || errors.Is(err, bulwark.ErrRemoteUnavailable) {
				t.Errorf("Do() = %v carries a class, want none", err)
			}
		})

		run("LateSuccessSucceeds", func(t *testing.T) {
			err := p.Do(context.Background(), func(context.Context) error {
				time.Sleep(2 * time.Second) // ignores its context
				return nil
			})
			if err != nil {
				t.Errorf("Do() = %v, want nil for an fn that succeeded late", err)
			}
		})

		run("FnErrorAfterOurDeadlineKeepsMessage", func(t *testing.T) {
			err := p.Do(context.Background(), func(ctx context.Context) error {
				<-ctx.Done()
				return errors.New("dial tcp: i/o timeout")
			})
			if !errors.Is(err, bulwark.ErrTimeout) || !strings.Contains(err.Error(), "i/o timeout") {
				t.Errorf("Do() = %v, want ErrTimeout keeping fn's message", err)
			}
		})

		run("CallerDeadlineFirst", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			err := p.Do(ctx, waitCtx)
			if err != ctx.Err() || errors.Is(err, bulwark.ErrTimeout) {
				t.Errorf("Do() = %v, want the caller's %v", err, ctx.Err())
			}
		})

		run("CallerCancelled", func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			err := p.Do(ctx, waitCtx)
			if err != context.Canceled {
				t.Errorf("Do() = %v, want context.Canceled", err)
			}
		})

		run("FnErrorBeforeDeadline", func(t *testing.T) {
			want := errors.New("fn failed")
			if err := p.Do(context.Background(), func(context.Context) error { return want }); err != want {
				t.Errorf("Do() = %v, want %v", err, want)
			}
		})
	}
}

func TestTimeoutPanicsOnBadDuration(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "bulwark: Timeout") {
			t.Errorf("recover() = %v, want a panic naming bulwark: Timeout", r)
		}
	}()
	bulwark.Timeout(0)
}

// TestTimeoutFnSeesDeadlineFirst: fn reads the clock itself and gives up at
// the deadline, usually before the context's timer has fired; the error is
// still ErrTimeout, every time.
func TestTimeoutFnSeesDeadlineFirst(t *testing.T) {
	p := bulwark.Timeout(2 * time.Millisecond)
	for i := 0; i < 20; i++ {
		err := p.Do(context.Background(), func(ctx context.Context) error {
			dl, _ := ctx.Deadline()
			for time.Now().Before(dl) {
			}
			return fmt.Errorf("read: %w", context.DeadlineExceeded)
		})
		if !errors.Is(err, bulwark.ErrTimeout) {
			t.Fatalf("run %d: Do() = %v, want ErrTimeout", i, err)
		}
	}
}

// TestTimeoutUnderAnEarlierBulwarkDeadline: when the caller's context ends
// first, the caller's error comes back even if that context was ended by
// bulwark's own deadline (an outer Timeout, a Retrier's per-attempt
// timeout): this Timeout did not fire, so it must not claim it did (with
// its own, longer, duration in the message).
func TestTimeoutUnderAnEarlierBulwarkDeadline(t *testing.T) {
	waitCtx := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	t.Run("caller's context", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithTimeoutCause(context.Background(), time.Second, bulwark.ErrTimeout)
			defer cancel()
			err := bulwark.Timeout(time.Hour).Do(ctx, waitCtx)
			if err != ctx.Err() {
				t.Errorf("Do() = %v, want the caller's %v", err, ctx.Err())
			}
		})
	})
	t.Run("nested", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := bulwark.Chain(bulwark.Timeout(time.Second), bulwark.Timeout(time.Hour))
			err := p.Do(context.Background(), waitCtx)
			if !errors.Is(err, bulwark.ErrTimeout) || !strings.Contains(err.Error(), "after 1s") {
				t.Errorf("Do() = %v, want the outer ErrTimeout, after 1s", err)
			}
		})
	})
}
