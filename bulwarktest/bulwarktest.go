// Package bulwarktest checks that a [bulwark.Policy] keeps the contract
// every bulwark policy shares, as testing/fstest does for file systems. Every
// policy package runs [TestPolicy]; so can users' own policies.
package bulwarktest

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/bulwark-go/bulwark"
)

// TestPolicy runs the contract suite against fresh policies from newPolicy
// (one per subtest, so a subtest's failures do not trip the next one's
// breaker):
//
//   - fn's error comes back unchanged, and a success returns nil after one
//     call of fn; fn never runs after Do returned;
//   - an ended context (cancelled, or past its deadline) does not call fn
//     and returns an error for which errors.Is(err, ctx.Err()) holds;
//   - a panic and a runtime.Goexit in fn pass through, and the policy stays
//     usable afterwards (no slot, permit or probe leaked);
//   - concurrent use is race-free (run the tests with -race), and every
//     call either runs fn or is refused with a class error;
//   - no goroutine remains once the calls returned;
//   - for an [bulwark.Admitter]: a refused Admit returns a nil done, a
//     cancelled context is refused, and calling done twice is harmless.
func TestPolicy(t *testing.T, newPolicy func() bulwark.Policy) {
	t.Helper()
	leakOpt := goleak.IgnoreCurrent()

	t.Run("ReturnsFnError", func(t *testing.T) {
		p := newPolicy()
		want := errors.New("bulwarktest: fn failed")
		calls := 0
		if err := p.Do(context.Background(), func(context.Context) error {
			calls++
			return want
		}); err != want {
			t.Errorf("Do() = %v, want fn's error %v unchanged", err, want)
		}
		if calls != 1 {
			t.Errorf("fn ran %d times for one failing call, want 1", calls)
		}
	})

	t.Run("Success", func(t *testing.T) {
		p := newPolicy()
		var returned, late atomic.Bool
		for i := 0; i < 3; i++ {
			calls := 0
			err := p.Do(context.Background(), func(ctx context.Context) error {
				if returned.Load() {
					late.Store(true)
				}
				calls++
				return nil
			})
			if err != nil {
				t.Fatalf("call %d: Do() = %v, want nil", i, err)
			}
			if calls != 1 {
				t.Fatalf("call %d: fn ran %d times, want 1", i, calls)
			}
		}
		returned.Store(true)
		if late.Load() {
			t.Error("fn ran after Do returned")
		}
	})

	t.Run("EndedContext", func(t *testing.T) {
		cancelled, cancel := context.WithCancel(context.Background())
		cancel()
		expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		defer cancel2()
		for _, tt := range []struct {
			name string
			ctx  context.Context
		}{{"cancelled", cancelled}, {"deadline", expired}} {
			t.Run(tt.name, func(t *testing.T) {
				p := newPolicy()
				called := false
				err := p.Do(tt.ctx, func(context.Context) error {
					called = true
					return nil
				})
				if called {
					t.Error("fn ran under an ended context")
				}
				if !errors.Is(err, tt.ctx.Err()) {
					t.Errorf("Do() = %v, want an error that errors.Is %v", err, tt.ctx.Err())
				}
				if a, ok := p.(bulwark.Admitter); ok {
					done, err := a.Admit(tt.ctx)
					if !errors.Is(err, tt.ctx.Err()) {
						t.Errorf("Admit() error = %v, want an error that errors.Is %v", err, tt.ctx.Err())
					}
					if err != nil && done != nil {
						t.Error("Admit refused but returned a non-nil done")
					}
					if err == nil && done != nil {
						done(nil)
					}
				}
			})
		}
	})

	t.Run("Panic", func(t *testing.T) {
		p := newPolicy()
		type marker struct{ s string }
		want := &marker{"bulwarktest: panic"}
		got := func() (v any) {
			defer func() { v = recover() }()
			_ = p.Do(context.Background(), func(context.Context) error { panic(want) })
			return nil
		}()
		if got != want {
			t.Fatalf("recovered %v, want the panic value %v passed through", got, want)
		}
		stillUsable(t, p)
	})

	t.Run("Goexit", func(t *testing.T) {
		p := newPolicy()
		var returned bool
		ended := make(chan struct{})
		go func() {
			defer close(ended)
			_ = p.Do(context.Background(), func(context.Context) error {
				runtime.Goexit()
				return nil
			})
			returned = true
		}()
		<-ended
		if returned {
			t.Fatal("Do returned normally after fn called runtime.Goexit")
		}
		stillUsable(t, p)
	})

	t.Run("Concurrent", func(t *testing.T) {
		p := newPolicy()
		const workers, calls = 8, 50
		var ran, ok, refused atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, workers*calls)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < calls; i++ {
					err := p.Do(context.Background(), func(context.Context) error {
						ran.Add(1)
						runtime.Gosched()
						return nil
					})
					switch {
					case err == nil:
						ok.Add(1)
					case bulwark.IsRefusal(err):
						refused.Add(1)
					default:
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("concurrent Do() = %v, want nil or a refusal", err)
		}
		if ok.Load() == 0 {
			t.Error("no concurrent call succeeded")
		}
		if ran.Load() != ok.Load() {
			t.Errorf("fn ran %d times for %d successful calls", ran.Load(), ok.Load())
		}
		stillUsable(t, p)
	})

	if _, isAdmitter := newPolicy().(bulwark.Admitter); isAdmitter {
		t.Run("AdmitDoneTwice", func(t *testing.T) {
			a := newPolicy().(bulwark.Admitter)
			for i := 0; i < 3; i++ {
				done, err := a.Admit(context.Background())
				if err != nil {
					t.Fatalf("round %d: Admit() = %v, want admission", i, err)
				}
				if done == nil {
					t.Fatalf("round %d: Admit admitted with a nil done", i)
				}
				done(nil)
				done(nil)
				done(errors.New("bulwarktest: late"))
			}
			// The extra calls released nothing twice: admitting still
			// works and a failure-free round trip leaves it usable.
			stillUsable(t, a.(bulwark.Policy))
		})
	}

	t.Run("NoGoroutineLeft", func(t *testing.T) {
		p := newPolicy()
		for i := 0; i < 5; i++ {
			_ = p.Do(context.Background(), func(context.Context) error { return nil })
		}
		goleak.VerifyNone(t, leakOpt)
	})
}

// stillUsable checks that p admits and runs a few calls one after another.
func stillUsable(t *testing.T, p bulwark.Policy) {
	t.Helper()
	for i := 0; i < 3; i++ {
		calls := 0
		err := p.Do(context.Background(), func(context.Context) error {
			calls++
			return nil
		})
		if err != nil || calls != 1 {
			t.Fatalf("after the previous calls: Do() = %v with %d calls of fn, want nil and 1 (a slot or probe leaked?)", err, calls)
		}
	}
}
