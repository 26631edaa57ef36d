// Package bulwarktest checks that a [bulwark.Policy] keeps the contract
// every bulwark policy shares, as testing/fstest does for file systems. Every
// policy package runs [TestPolicy]; so can users' own policies.
//
// The contract (see [bulwark.Policy]): fn runs on the caller's goroutine, at
// most once per attempt and never after Do returned (unless the policy
// declares [bulwark.Concurrent]); an ended context is answered without
// calling fn; a panic or runtime.Goexit in fn passes through and leaks
// nothing; Do refuses at once unless the policy was built to wait (a
// bulkhead with a queue and a maximum wait), and then it waits a bounded
// time ([WithMaxWait] is the bound the suite accepts).
//
// The suite takes a few seconds: it watches for late calls of fn for
// [WithLateCallWatch] after its subtests, and waits up to [WithMaxWait] on
// a saturated policy.
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
//     call of fn; fn runs on the caller's goroutine and never after Do
//     returned (unless the policy says it may, see [bulwark.Concurrent]).
//     Late calls are watched for during the whole suite and for
//     [WithLateCallWatch] (default 2.5 s) after its subtests;
//   - an ended context (cancelled, or past its deadline) does not call fn
//     and returns an error for which errors.Is(err, ctx.Err()) holds;
//   - a panic and a runtime.Goexit in fn pass through, and the policy stays
//     usable afterwards (no slot, permit or probe leaked: an Admitter
//     admits as many calls at once as after an fn that failed, probing up
//     to 1024 admissions or the first refusal);
//   - Do refuses at once, or waits a bounded time: on a policy saturated by
//     calls that hold it (up to 1024 of them, or until one is refused),
//     another Do (and Admit) under context.Background() must return within
//     [WithMaxWait] (default 1 s). A bulkhead built to wait passes when its
//     own maximum wait is shorter;
//   - concurrent use is race-free (run the tests with -race), and every
//     call either runs fn or is refused with a class error;
//   - no goroutine remains once the calls returned;
//   - for an [bulwark.Admitter]: a refused Admit returns a nil done, a
//     cancelled context is refused, and calling done twice is harmless
//     (only the first call counts, and it frees one admission).
func TestPolicy(t *testing.T, newPolicy func() bulwark.Policy, opts ...Option) {
	t.Helper()
	leakOpt := goleak.IgnoreCurrent()
	s := newSuite(newPolicy, opts)
	// The suite's own Do calls go through s.do, which watches fn's calls.
	newPolicy = s.newPolicy

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
		var calls [3]atomic.Int32
		for i := range calls {
			err := p.Do(context.Background(), func(ctx context.Context) error {
				calls[i].Add(1)
				return nil
			})
			if err != nil {
				t.Fatalf("call %d: Do() = %v, want nil", i, err)
			}
			if n := calls[i].Load(); n != 1 {
				t.Fatalf("call %d: fn ran %d times, want 1", i, n)
			}
		}
		if s.concurrent {
			return // a hedger's cancelled attempts may call fn late
		}
		// Let any goroutine the calls left behind run (NoGoroutineLeft
		// reports those that remain), then look for late calls of fn.
		_ = goleak.Find(leakOpt)
		for i := range calls {
			if n := calls[i].Load(); n != 1 {
				t.Errorf("call %d: fn ran %d times in all, %d of them after Do returned", i, n, n-1)
			}
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
		if !s.consumable() {
			asAfterFailure(t, p, newPolicy)
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
		if !s.consumable() {
			asAfterFailure(t, p, newPolicy)
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
				// Two late failures after a success: a breaker that
				// counted them would open (two in a row).
				done(nil)
				done(errors.New("bulwarktest: late"))
				done(errors.New("bulwarktest: late"))
			}
			// The extra calls released nothing twice: once every admission
			// is taken, a done called twice frees one admission, not two.
			var held []func(error)
			full := false
			if !s.consumable() { // draining a rate limit would leave it unusable
				held, full = admitAll(a)
			}
			if full && len(held) > 0 {
				held[0](nil)
				held[0](nil)
				more, _ := admitUpTo(a, 2)
				if len(more) > 1 {
					t.Errorf("a full policy admitted %d more calls after one done ran twice, want at most 1 (done released twice)", len(more))
				}
				held = append(held[1:], more...)
			}
			for _, done := range held {
				done(nil)
			}
			stillUsable(t, a.(bulwark.Policy))
		})
	}

	t.Run("CallerGoroutine", func(t *testing.T) {
		if s.concurrent {
			t.Skip("the policy declares bulwark.Concurrent: fn may run on other goroutines")
		}
		p := s.newRaw() // unwatched: this subtest checks directly
		caller := goid()
		var got int64
		err := p.Do(context.Background(), func(context.Context) error {
			got = goid()
			return nil
		})
		if err != nil {
			t.Fatalf("Do() = %v, want nil", err)
		}
		if got != caller {
			t.Errorf("fn ran on goroutine %d, want the caller's, %d (a policy that runs fn elsewhere must declare bulwark.Concurrent)", got, caller)
		}
	})

	t.Run("SaturatedDoReturns", func(t *testing.T) {
		s.saturated(t, newPolicy())
	})

	t.Run("NoGoroutineLeft", func(t *testing.T) {
		p := newPolicy()
		for i := 0; i < 5; i++ {
			_ = p.Do(context.Background(), func(context.Context) error { return nil })
		}
		goleak.VerifyNone(t, leakOpt)
	})

	t.Run("NoLateCalls", func(t *testing.T) {
		if s.concurrent {
			t.Skip("the policy declares bulwark.Concurrent: fn may run late")
		}
		// A timer the policy armed may call fn seconds after Do returned.
		time.Sleep(s.o.lateWatch)
		if n := s.late.Load(); n > 0 {
			t.Errorf("fn ran %d times after Do returned (within %v of the last call)", n, s.o.lateWatch)
		}
		if n := s.other.Load(); n > 0 {
			t.Errorf("fn ran %d times on a goroutine other than Do's caller's (a policy that does so must declare bulwark.Concurrent)", n)
		}
	})
}

// saturated fills p with calls that hold it (fn blocks until released),
// until one is refused or maxProbe are held, and checks that Do and Admit
// under context.Background() return within the suite's maximum wait.
func (s *suite) saturated(t *testing.T, p bulwark.Policy) {
	t.Helper()
	release := make(chan struct{})
	var wg sync.WaitGroup
	defer func() {
		close(release)
		wg.Wait()
	}()
	hold := func(ctx context.Context) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}
	for held := 0; held < maxProbe; held++ {
		entered := make(chan struct{}, 1)
		returned := make(chan error, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			returned <- p.Do(context.Background(), func(ctx context.Context) error {
				select {
				case entered <- struct{}{}:
				default:
				}
				return hold(ctx)
			})
		}()
		timer := time.NewTimer(s.o.maxWait)
		select {
		case <-entered:
			timer.Stop()
			continue
		case <-returned:
			timer.Stop()
		case <-timer.C:
			t.Errorf("with %d calls holding the policy, Do under context.Background() neither ran fn nor returned within %v: Do must refuse at once, or wait a bounded time (see WithMaxWait)", held, s.o.maxWait)
			return
		}
		// Saturated: Admit must not block either.
		a, ok := p.(bulwark.Admitter)
		if !ok {
			return
		}
		admitted := make(chan func(error), 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			done, err := a.Admit(context.Background())
			if err != nil {
				done = nil
			}
			admitted <- done
		}()
		timer = time.NewTimer(s.o.maxWait)
		defer timer.Stop()
		select {
		case done := <-admitted:
			if done != nil {
				done(nil)
			}
		case <-timer.C:
			t.Errorf("with %d calls holding the policy, Admit under context.Background() did not return within %v", held, s.o.maxWait)
			go func() { // let it go once released, for wg
				if done := <-admitted; done != nil {
					done(nil)
				}
			}()
		}
		return
	}
}

// maxProbe bounds how many admissions admitAll takes (and how many calls
// the saturation check holds); a policy that admits more (a closed
// breaker, a generous rate limit) is taken to have no limit worth probing.
const maxProbe = 1024

// admitAll takes admissions from a until it refuses or maxProbe were taken;
// full reports a refusal.
func admitAll(a bulwark.Admitter) (held []func(error), full bool) {
	return admitUpTo(a, maxProbe)
}

// admitUpTo takes at most n admissions from a; refused reports that it
// stopped at a refusal.
func admitUpTo(a bulwark.Admitter, n int) (held []func(error), refused bool) {
	for len(held) < n {
		done, err := a.Admit(context.Background())
		if err != nil {
			return held, true
		}
		held = append(held, done)
	}
	return held, false
}

// consumable reports whether the policy's admissions are used up rather
// than held (a rate limit: done gives nothing back). Such a policy, once
// drained, admits nothing until it refills, so counting its admissions
// before and after a panic measures only the clock; the leak checks apply
// to the policies that give admissions back. It probes a fresh policy once
// per suite: drained to its first refusal and released, a policy that
// gives admissions back admits as many again.
func (s *suite) consumable() bool {
	s.consumableOnce.Do(func() {
		a, ok := s.newRaw().(bulwark.Admitter)
		if !ok {
			return
		}
		first, refused := admitAll(a)
		for _, done := range first {
			done(nil)
		}
		if !refused {
			return
		}
		second, _ := admitAll(a)
		for _, done := range second {
			done(nil)
		}
		s.isConsumable = len(second) < len(first)
	})
	return s.isConsumable
}

// asAfterFailure checks, for an Admitter, that a panic or Goexit in fn left
// p with as many admissions as a fresh policy has after one failing call
// (a slot, permit or probe not freed shows as one admission fewer).
func asAfterFailure(t *testing.T, p bulwark.Policy, newPolicy func() bulwark.Policy) {
	t.Helper()
	a, ok := p.(bulwark.Admitter)
	if !ok {
		return
	}
	control := newPolicy()
	_ = control.Do(context.Background(), func(context.Context) error { return errors.New("bulwarktest: fn failed") })
	want, _ := admitAll(control.(bulwark.Admitter))
	got, _ := admitAll(a)
	for _, done := range append(want, got...) {
		done(nil)
	}
	if len(got) < len(want) {
		t.Errorf("afterwards the policy admits %d calls at once, want %d as after a failing fn (a slot or permit leaked?)", len(got), len(want))
	}
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
