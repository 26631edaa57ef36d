package bulwarktest_test

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestGoodPolicyPasses(t *testing.T) {
	bulwarktest.TestPolicy(t, func() bulwark.Policy { return bulwark.Timeout(time.Second) })
}

// slotPolicy is a one-slot bulkhead; its broken variants each break one
// rule of the contract.
type slotPolicy struct {
	busy          atomic.Bool
	ignoreCtx     bool // calls fn under an ended context
	leakOnPanic   bool // forgets to free the slot when fn panics
	swallowPanic  bool // recovers fn's panic
	wrapErrors    bool // changes fn's error
	leakGoroutine bool // leaves a goroutine behind
}

func (p *slotPolicy) Do(ctx context.Context, fn func(context.Context) error) error {
	if !p.ignoreCtx {
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if !p.busy.CompareAndSwap(false, true) {
		return bulwark.ErrUnavailable
	}
	if p.leakGoroutine {
		go func() { select {} }()
	}
	if p.swallowPanic {
		defer func() { _ = recover() }()
	}
	if !p.leakOnPanic {
		defer p.busy.Store(false)
	}
	err := fn(ctx)
	if p.leakOnPanic {
		p.busy.Store(false)
	}
	if err != nil && p.wrapErrors {
		return context.Canceled
	}
	return err
}

// semAdmitter is a two-slot bulkhead with two-step admission; its broken
// variants each break one rule of the contract.
type semAdmitter struct {
	mu           sync.Mutex
	n            int
	doubleDone   bool // done releases a slot every time it is called
	leakOnGoexit bool // frees the slot on return and, by recover, on panic only
	callsFnLate  bool // calls fn once more after Do returned
}

const semLimit = 2

func (a *semAdmitter) take() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n >= semLimit {
		return false
	}
	a.n++
	return true
}

func (a *semAdmitter) put() {
	a.mu.Lock()
	a.n--
	a.mu.Unlock()
}

func (a *semAdmitter) Do(ctx context.Context, fn func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !a.take() {
		return bulwark.ErrUnavailable
	}
	if a.callsFnLate {
		defer func() {
			go func() {
				defer func() { _ = recover() }() // the suite's panicking fn
				_ = fn(ctx)
			}()
		}()
	}
	if a.leakOnGoexit {
		defer func() {
			if r := recover(); r != nil {
				a.put()
				panic(r)
			}
		}()
		err := fn(ctx)
		a.put()
		return err
	}
	defer a.put()
	return fn(ctx)
}

func (a *semAdmitter) Admit(ctx context.Context) (func(error), error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !a.take() {
		return nil, bulwark.ErrUnavailable
	}
	if a.doubleDone {
		return func(error) { a.put() }, nil
	}
	var once sync.Once
	return func(error) { once.Do(a.put) }, nil
}

// lateTimer calls fn again from a timer, 2 s after Do returned: the kind
// of late call a quick look after the subtests misses.
type lateTimer struct{ semAdmitter }

func (a *lateTimer) Do(ctx context.Context, fn func(context.Context) error) error {
	defer time.AfterFunc(2*time.Second, func() {
		defer func() { _ = recover() }() // the suite's panicking fn
		_ = fn(context.Background())
	})
	return a.semAdmitter.Do(ctx, fn)
}

// bigLeaky is a 100-slot admitter whose Do frees its slot only when fn
// returns normally: a panic or Goexit leaks one slot of many.
type bigLeaky struct {
	mu sync.Mutex
	n  int
}

const bigLimit = 100

func (a *bigLeaky) take() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n >= bigLimit {
		return false
	}
	a.n++
	return true
}

func (a *bigLeaky) put() {
	a.mu.Lock()
	a.n--
	a.mu.Unlock()
}

func (a *bigLeaky) Do(ctx context.Context, fn func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !a.take() {
		return bulwark.ErrUnavailable
	}
	err := fn(ctx)
	a.put()
	return err
}

func (a *bigLeaky) Admit(ctx context.Context) (func(error), error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !a.take() {
		return nil, bulwark.ErrUnavailable
	}
	var once sync.Once
	return func(error) { once.Do(a.put) }, nil
}

// blocking is a one-slot policy whose Do waits for the slot, without
// bound, instead of refusing.
type blocking struct{ sem chan struct{} }

func newBlocking() *blocking { return &blocking{sem: make(chan struct{}, 1)} }

func (p *blocking) Do(ctx context.Context, fn func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p.sem <- struct{}{}
	defer func() { <-p.sem }()
	return fn(ctx)
}

// elsewhere runs fn on a goroutine of its own and mirrors its panic and
// Goexit on the caller's, without declaring bulwark.Concurrent.
type elsewhere struct{}

func (elsewhere) Do(ctx context.Context, fn func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	type outcome struct {
		err      error
		panicked bool
		value    any
		returned bool
	}
	ch := make(chan outcome, 1)
	go func() {
		var o outcome
		defer func() {
			if !o.returned {
				if v := recover(); v != nil {
					o.panicked, o.value = true, v
				}
			}
			ch <- o
		}()
		o.err = fn(ctx)
		o.returned = true
	}()
	o := <-ch
	switch {
	case o.panicked:
		panic(o.value)
	case !o.returned:
		runtime.Goexit()
	}
	return o.err
}

// boundedWait is a one-slot policy that waits for its slot at most wait,
// then refuses: a queueing bulkhead in miniature.
type boundedWait struct {
	sem  chan struct{}
	wait time.Duration
}

func newBoundedWait(wait time.Duration) *boundedWait {
	return &boundedWait{sem: make(chan struct{}, 1), wait: wait}
}

func (p *boundedWait) Do(ctx context.Context, fn func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t := time.NewTimer(p.wait)
	defer t.Stop()
	select {
	case p.sem <- struct{}{}:
	case <-t.C:
		return bulwark.ErrUnavailable
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-p.sem }()
	return fn(ctx)
}

func TestBoundedWaitPasses(t *testing.T) {
	bulwarktest.TestPolicy(t, func() bulwark.Policy { return newBoundedWait(100 * time.Millisecond) },
		bulwarktest.WithLateCallWatch(0))
	bulwarktest.TestPolicy(t, func() bulwark.Policy { return newBoundedWait(1500 * time.Millisecond) },
		bulwarktest.WithMaxWait(3*time.Second), bulwarktest.WithLateCallWatch(0), nil)
}

func TestOptionsPanic(t *testing.T) {
	for _, tt := range []struct {
		name string
		give func()
		want string
	}{
		{"max wait zero", func() { bulwarktest.WithMaxWait(0) }, "bulwarktest: WithMaxWait"},
		{"max wait negative", func() { bulwarktest.WithMaxWait(-time.Second) }, "bulwarktest: WithMaxWait"},
		{"late watch negative", func() { bulwarktest.WithLateCallWatch(-1) }, "bulwarktest: WithLateCallWatch"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if s, _ := r.(string); !strings.HasPrefix(s, tt.want) {
					t.Errorf("panic %v, want a message starting with %q", r, tt.want)
				}
			}()
			tt.give()
		})
	}
}

var broken = map[string]func() bulwark.Policy{
	"waitsPastMaxWait":     func() bulwark.Policy { return newBoundedWait(1500 * time.Millisecond) },
	"callsFnFromLateTimer": func() bulwark.Policy { return &lateTimer{} },
	"leaksOneOf100Slots":   func() bulwark.Policy { return &bigLeaky{} },
	"blocksForSlot":        func() bulwark.Policy { return newBlocking() },
	"runsFnElsewhere":      func() bulwark.Policy { return elsewhere{} },
	"ignoresEndedContext":  func() bulwark.Policy { return &slotPolicy{ignoreCtx: true} },
	"leaksSlotOnPanic":     func() bulwark.Policy { return &slotPolicy{leakOnPanic: true} },
	"swallowsPanic":        func() bulwark.Policy { return &slotPolicy{swallowPanic: true} },
	"changesFnError":       func() bulwark.Policy { return &slotPolicy{wrapErrors: true} },
	"leaksGoroutine":       func() bulwark.Policy { return &slotPolicy{leakGoroutine: true} },
	"releasesOnEveryDone":  func() bulwark.Policy { return &semAdmitter{doubleDone: true} },
	"leaksSlotOnGoexit":    func() bulwark.Policy { return &semAdmitter{leakOnGoexit: true} },
	"callsFnAfterReturn":   func() bulwark.Policy { return &semAdmitter{callsFnLate: true} },
}

func TestSlotPolicyPasses(t *testing.T) {
	bulwarktest.TestPolicy(t, func() bulwark.Policy { return &slotPolicy{} })
}

func TestSemAdmitterPasses(t *testing.T) {
	bulwarktest.TestPolicy(t, func() bulwark.Policy { return &semAdmitter{} })
}

// TestBrokenPolicy runs the suite on one broken policy when asked to by
// TestBrokenPoliciesFail, in a child process.
func TestBrokenPolicy(t *testing.T) {
	name := os.Getenv("BULWARKTEST_BROKEN")
	if name == "" {
		t.Skip("run by TestBrokenPoliciesFail")
	}
	bulwarktest.TestPolicy(t, func() bulwark.Policy { return broken[name]() })
}

// failsIn names the subtest that must fail for the broken policies the
// suite once passed.
var failsIn = map[string]string{
	"callsFnFromLateTimer": "NoLateCalls",
	"leaksOneOf100Slots":   "Panic",
	"blocksForSlot":        "SaturatedDoReturns",
	"runsFnElsewhere":      "CallerGoroutine",
	"waitsPastMaxWait":     "SaturatedDoReturns",
}

func TestBrokenPoliciesFail(t *testing.T) {
	for name := range broken {
		t.Run(name, func(t *testing.T) {
			t.Parallel() // each in a child process, mostly asleep
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenPolicy$", "-test.count=1")
			cmd.Env = append(os.Environ(), "BULWARKTEST_BROKEN="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the contract suite passed a policy that %s:\n%s", name, out)
			}
			if !strings.Contains(string(out), "--- FAIL: TestBrokenPolicy/") {
				t.Errorf("the child failed without a failing subtest:\n%s", out)
			}
			if sub, ok := failsIn[name]; ok && !strings.Contains(string(out), "--- FAIL: TestBrokenPolicy/"+sub+" ") {
				t.Errorf("subtest %s passed a policy that %s:\n%s", sub, name, out)
			}
		})
	}
}
