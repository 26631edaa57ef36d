package bulwarktest_test

import (
	"context"
	"os"
	"os/exec"
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

var broken = map[string]func() bulwark.Policy{
	"ignoresEndedContext": func() bulwark.Policy { return &slotPolicy{ignoreCtx: true} },
	"leaksSlotOnPanic":    func() bulwark.Policy { return &slotPolicy{leakOnPanic: true} },
	"swallowsPanic":       func() bulwark.Policy { return &slotPolicy{swallowPanic: true} },
	"changesFnError":      func() bulwark.Policy { return &slotPolicy{wrapErrors: true} },
	"leaksGoroutine":      func() bulwark.Policy { return &slotPolicy{leakGoroutine: true} },
	"releasesOnEveryDone": func() bulwark.Policy { return &semAdmitter{doubleDone: true} },
	"leaksSlotOnGoexit":   func() bulwark.Policy { return &semAdmitter{leakOnGoexit: true} },
	"callsFnAfterReturn":  func() bulwark.Policy { return &semAdmitter{callsFnLate: true} },
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

func TestBrokenPoliciesFail(t *testing.T) {
	for name := range broken {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenPolicy$", "-test.count=1")
			cmd.Env = append(os.Environ(), "BULWARKTEST_BROKEN="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the contract suite passed a policy that %s:\n%s", name, out)
			}
			if !strings.Contains(string(out), "--- FAIL: TestBrokenPolicy/") {
				t.Errorf("the child failed without a failing subtest:\n%s", out)
			}
		})
	}
}
