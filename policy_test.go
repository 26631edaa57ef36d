package bulwark_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/bulwark-go/bulwark"
)

// recorder returns a policy that appends its name on the way in and out.
func recorder(name string, log *[]string) bulwark.Policy {
	return bulwark.PolicyFunc(func(ctx context.Context, fn func(context.Context) error) error {
		*log = append(*log, name+">")
		err := fn(ctx)
		*log = append(*log, "<"+name)
		return err
	})
}

func TestChainOrder(t *testing.T) {
	var log []string
	p := bulwark.Chain(recorder("a", &log), recorder("b", &log), recorder("c", &log))
	if err := p.Do(context.Background(), func(context.Context) error {
		log = append(log, "fn")
		return nil
	}); err != nil {
		t.Fatalf("Do() = %v, want nil", err)
	}
	want := []string{"a>", "b>", "c>", "fn", "<c", "<b", "<a"}
	if !equal(log, want) {
		t.Errorf("order = %v, want %v", log, want)
	}
}

func TestChainFlattens(t *testing.T) {
	var log []string
	a, b, c, d := recorder("a", &log), recorder("b", &log), recorder("c", &log), recorder("d", &log)
	p := bulwark.Chain(bulwark.Chain(a, b), nil, bulwark.Chain(), bulwark.Chain(c, bulwark.Chain(d)))
	if err := p.Do(context.Background(), func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	want := []string{"a>", "b>", "c>", "d>", "<d", "<c", "<b", "<a"}
	if !equal(log, want) {
		t.Errorf("order = %v, want %v", log, want)
	}
	// One member is that member itself.
	one := &admitter{name: "one", log: &log}
	if got := bulwark.Chain(nil, one, bulwark.Chain()); got != one {
		t.Errorf("Chain(nil, one, Chain()) = %v, want the member itself", got)
	}
	// Flattening keeps the order of nested chains' members.
	log = nil
	if err := bulwark.Chain(bulwark.Chain(a, bulwark.Chain(b, c)), d).Do(context.Background(), func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if !equal(log, want) {
		t.Errorf("order = %v, want %v", log, want)
	}
}

func TestChainIdentity(t *testing.T) {
	p := bulwark.Chain()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	want := errors.New("boom")
	calls := 0
	err := p.Do(ctx, func(got context.Context) error {
		calls++
		if got != ctx {
			t.Error("identity changed the context")
		}
		return want
	})
	if err != want || calls != 1 {
		t.Errorf("Chain().Do() = %v after %d calls, want %v after 1 (the identity runs fn as is)", err, calls, want)
	}
	if _, ok := p.(bulwark.Admitter); !ok {
		t.Error("Chain() is not an Admitter")
	}
}

func TestChainErrorAndContextPassThrough(t *testing.T) {
	type key struct{}
	outer := bulwark.PolicyFunc(func(ctx context.Context, fn func(context.Context) error) error {
		return fn(context.WithValue(ctx, key{}, "outer"))
	})
	inner := bulwark.PolicyFunc(func(ctx context.Context, fn func(context.Context) error) error {
		if ctx.Value(key{}) != "outer" {
			t.Error("inner policy did not see the outer policy's context")
		}
		return fn(ctx)
	})
	want := errors.New("fn failed")
	err := bulwark.Chain(outer, inner).Do(context.Background(), func(ctx context.Context) error {
		if ctx.Value(key{}) != "outer" {
			t.Error("fn did not see the outer policy's context")
		}
		return want
	})
	if err != want {
		t.Errorf("Do() = %v, want %v", err, want)
	}
}

// hedge calls fn on n goroutines at once and returns the first result.
type hedge struct{ n int }

func (h hedge) Do(ctx context.Context, fn func(context.Context) error) error {
	errs := make(chan error, h.n)
	var start sync.WaitGroup
	start.Add(1)
	for i := 0; i < h.n; i++ {
		go func() {
			start.Wait()
			errs <- fn(ctx)
		}()
	}
	start.Done()
	err := <-errs
	for i := 1; i < h.n; i++ {
		<-errs
	}
	return err
}

func TestChainConcurrentInnerPolicy(t *testing.T) {
	pass := bulwark.PolicyFunc(func(ctx context.Context, fn func(context.Context) error) error { return fn(ctx) })
	p := bulwark.Chain(pass, hedge{4}, pass)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				mine := int64(g*1000 + i)
				var got atomic.Int64
				var calls atomic.Int32
				if err := p.Do(context.Background(), func(context.Context) error {
					calls.Add(1)
					got.Store(mine)
					return nil
				}); err != nil {
					t.Error(err)
					return
				}
				if calls.Load() != 4 || got.Load() != mine {
					t.Errorf("call %d: fn ran %d times with %d, want 4 times with %d", mine, calls.Load(), got.Load(), mine)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// lateHedge returns at once and calls fn again afterwards, on its own
// goroutine, as a hedger's cancelled attempt may.
type lateHedge struct{ wg *sync.WaitGroup }

func (h lateHedge) Do(ctx context.Context, fn func(context.Context) error) error {
	h.wg.Add(1)
	go func() { defer h.wg.Done(); _ = fn(ctx) }()
	return fn(ctx)
}

func (lateHedge) ConcurrentFn() bool { return true }

func TestChainLateCallReachesItsOwnFn(t *testing.T) {
	var wg sync.WaitGroup
	checkLateCallsReachOwnFn(t, lateHedge{&wg}, &wg, 200)
}

// checkLateCallsReachOwnFn runs n calls through Chain(pass, p, pass), where
// p calls fn twice, once late (wg counts the late calls), and checks that
// every call's fn ran exactly twice: no late call reached another call's fn.
func checkLateCallsReachOwnFn(t *testing.T, p bulwark.Policy, wg *sync.WaitGroup, n int) {
	t.Helper()
	pass := bulwark.PolicyFunc(func(ctx context.Context, fn func(context.Context) error) error { return fn(ctx) })
	c := bulwark.Chain(pass, p, pass)
	counts := make([]atomic.Int32, n)
	for i := range counts {
		_ = c.Do(context.Background(), func(context.Context) error {
			counts[i].Add(1)
			return nil
		})
	}
	wg.Wait()
	for i := range counts {
		if got := counts[i].Load(); got != 2 {
			t.Fatalf("call %d: its fn ran %d times, want 2 (a late call reached another call's fn?)", i, got)
		}
	}
}

// admitter admits unless refuse is set, and logs admissions and releases.
type admitter struct {
	name   string
	refuse error
	log    *[]string
}

func (a *admitter) Do(ctx context.Context, fn func(context.Context) error) error {
	if a.refuse != nil {
		return a.refuse
	}
	return fn(ctx)
}

func (a *admitter) Admit(context.Context) (func(error), error) {
	if a.refuse != nil {
		*a.log = append(*a.log, a.name+":refuse")
		return nil, a.refuse
	}
	*a.log = append(*a.log, a.name+":admit")
	return func(err error) { *a.log = append(*a.log, a.name+":done("+errString(err)+")") }, nil
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}

func TestChainAdmit(t *testing.T) {
	var log []string
	a, b, c := &admitter{name: "a", log: &log}, &admitter{name: "b", log: &log}, &admitter{name: "c", log: &log}
	p, ok := bulwark.Chain(a, b, c).(bulwark.Admitter)
	if !ok {
		t.Fatal("a chain of Admitters is not an Admitter")
	}
	done, err := p.Admit(context.Background())
	if err != nil {
		t.Fatalf("Admit() = %v, want nil", err)
	}
	done(nil)
	done(nil) // harmless
	want := []string{"a:admit", "b:admit", "c:admit", "c:done(nil)", "b:done(nil)", "a:done(nil)"}
	if !equal(log, want) {
		t.Errorf("log = %v, want %v", log, want)
	}

	log = nil
	b.refuse = bulwark.ErrUnavailable
	done, err = p.Admit(context.Background())
	if !errors.Is(err, bulwark.ErrUnavailable) || done != nil {
		t.Fatalf("Admit() = (%v, %v), want (nil, ErrUnavailable)", done != nil, err)
	}
	want = []string{"a:admit", "b:refuse", "a:done(" + bulwark.ErrUnavailable.Error() + ")"}
	if !equal(log, want) {
		t.Errorf("log = %v, want %v", log, want)
	}

	plain := bulwark.PolicyFunc(func(ctx context.Context, fn func(context.Context) error) error { return fn(ctx) })
	if _, ok := bulwark.Chain(a, plain).(bulwark.Admitter); ok {
		t.Error("a chain with a non-Admitter member claims to be an Admitter")
	}
}

func TestGet(t *testing.T) {
	pass := bulwark.PolicyFunc(func(ctx context.Context, fn func(context.Context) error) error { return fn(ctx) })
	v, err := bulwark.Get(context.Background(), pass, func(context.Context) (int, error) { return 42, nil })
	if v != 42 || err != nil {
		t.Errorf("Get() = %v, %v, want 42, nil", v, err)
	}
	want := errors.New("no")
	v, err = bulwark.Get(context.Background(), pass, func(context.Context) (int, error) { return 7, want })
	if v != 0 || err != want {
		t.Errorf("Get() = %v, %v, want 0, %v", v, err, want)
	}
}

func TestGetUnderHedging(t *testing.T) {
	var next atomic.Int64
	var discarded atomic.Int64
	var sumDiscarded atomic.Int64
	for i := 0; i < 50; i++ {
		next.Store(0)
		discarded.Store(0)
		sumDiscarded.Store(0)
		v, err := bulwark.GetDiscard(context.Background(), hedge{4}, func(context.Context) (int64, error) {
			return next.Add(1), nil
		}, func(v int64) {
			discarded.Add(1)
			sumDiscarded.Add(v)
		})
		if err != nil {
			t.Fatal(err)
		}
		if discarded.Load() != 3 {
			t.Fatalf("discarded %d values, want 3", discarded.Load())
		}
		// The four values are 1..4: the kept one and the discarded ones
		// add up to 10, so no value was both kept and discarded.
		if v+sumDiscarded.Load() != 10 {
			t.Fatalf("kept %d, discarded sum %d: want a total of 10", v, sumDiscarded.Load())
		}
	}
}

func TestGetDiscardsWhenPolicyFails(t *testing.T) {
	fail := errors.New("policy failed after fn")
	p := bulwark.PolicyFunc(func(ctx context.Context, fn func(context.Context) error) error {
		_ = fn(ctx)
		return fail
	})
	var got []string
	v, err := bulwark.GetDiscard(context.Background(), p, func(context.Context) (string, error) {
		return "body", nil
	}, func(s string) { got = append(got, s) })
	if v != "" || err != fail {
		t.Errorf("GetDiscard() = %q, %v, want \"\", %v", v, err, fail)
	}
	if !equal(got, []string{"body"}) {
		t.Errorf("discarded %v, want [body]", got)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
