package bulwarkhttp_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/bulwark-go/bulwark"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// refusal is a refusal of a class with an optional hint and quota.
type refusal struct {
	class error
	hint  time.Duration
}

func (e *refusal) Error() string { return "test: refused: " + e.class.Error() }
func (e *refusal) Unwrap() error { return e.class }
func (e *refusal) RetryAfter() time.Duration {
	return e.hint
}

// quotaRefusal is a refusal carrying a quota.
type quotaRefusal struct {
	refusal
	q bulwark.Quota
}

func (e *quotaRefusal) Quota() bulwark.Quota { return e.q }

// retrier is a minimal retrying policy: up to n attempts while fn fails
// and the error does not say Retryable() == false; attempts after the
// first get bulwark.WithAttempt.
type retrier struct {
	n     int
	force bool // retry even errors that say they must not be
	mu    sync.Mutex
	errs  []error
}

func (r *retrier) Do(ctx context.Context, fn func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var err error
	for i := 1; i <= r.n; i++ {
		actx := ctx
		if i > 1 {
			actx = bulwark.WithAttempt(ctx, i)
		}
		err = fn(actx)
		r.mu.Lock()
		r.errs = append(r.errs, err)
		r.mu.Unlock()
		if err == nil {
			return nil
		}
		if ok, found := bulwark.Retryable(err); found && !ok && !r.force {
			return err
		}
	}
	return err
}

func (r *retrier) seen() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errs...)
}
